"""Dropout's gain vs training-set size (Srivastava et al. 2014, Figure 10) on Fashion-MNIST.

At each size the models train for the same number of steps on batches drawn with
replacement from the first ``size`` examples of a fixed shuffle of the 60,000 training
images. The size is a traced hyper-parameter, so every size runs the same compiled program
(one vmapped program per size: seeds x {no dropout, dropout}). Writes ``dataset_size.json``,
``.md``, ``dataset_size.png`` and per-size ``arms/*.json`` into the workdir.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from experiments import _images as im
from experiments.dataset_size import config as configs


def check_config(c: configs.Config) -> None:
    if not c.sizes or min(c.sizes) < 1 or max(c.sizes) > 60_000:
        raise ValueError(f"sizes must be in 1..60000, got {c.sizes}")
    if c.hid_rate <= 0:
        raise ValueError(f"hid_rate must be > 0 (it tells the two arms apart), got {c.hid_rate}")
    if c.num_steps % c.num_evals:
        raise ValueError(f"num_steps ({c.num_steps}) must be a multiple of num_evals "
                         f"({c.num_evals})")


def train_and_evaluate(c: configs.Config, workdir) -> dict:
    check_config(c)
    start = time.perf_counter()
    data = im.load_images(num_val=0, max_train=max(c.sizes), data_dir=c.data_dir)
    trainer = im.trainer_for(im.mlp_apply, data, c, num_epochs=c.num_evals,
                             steps_per_epoch=c.num_steps // c.num_evals)
    init = functools.partial(im.init_mlp, sizes=(784, *c.hidden, 10))
    arms = {"none": {"lr": c.learning_rate},
            "dropout": {"in_rate": c.in_rate, "hid_rate": c.hid_rate, "lr": c.learning_rate}}
    result = {"experiment": "dataset_size", "config": c.__dict__, "sizes": []}
    seconds = 0.0
    for size in c.sizes:
        points = [{**hp, "num_train": size} for hp in arms.values()]
        hypers, seeds = im.grid(points, c.seeds)
        arm = im.run_arm(trainer, init, f"size_{size}", hypers, seeds, workdir,
                         progress=c.progress)
        seconds += arm["seconds"]
        groups = list(im.by_point(arm, ["hid_rate"]).values())  # point-major: none, dropout
        row = {"size": size}
        for name, models in zip(arms, groups, strict=True):
            row[name] = {**im.summarize(models),
                         "models": im.strip_curves({"models": models})["models"]}
        row["gain"] = row["none"]["test_error_mean"] - row["dropout"]["test_error_mean"]
        result["sizes"].append(row)
    hurt = [r["size"] for r in result["sizes"] if r["gain"] < 0]
    result["dropout_hurts_at"] = hurt
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["arm_seconds"] = round(seconds, 1)
    im.write_outputs(workdir, "dataset_size", result, markdown(result, c))
    plot(result, Path(workdir) / "dataset_size.png")
    return result


def markdown(result: dict, c: configs.Config) -> str:
    rows = []
    several = len(c.seeds) > 1  # a std only over several seeds
    for r in result["sizes"]:
        n, d = r["none"], r["dropout"]
        rows.append([r["size"], im.pct(n["train_error_mean"]), im.pct(
                     n["test_error_mean"], n["test_error_std"] if several else None),
                     im.pct(d["train_error_mean"]), im.pct(
                     d["test_error_mean"], d["test_error_std"] if several else None),
                     f"{100 * r['gain']:+.2f}"])
    return "\n".join([
        f"## Data-set size (Fashion-MNIST, 784-{'-'.join(map(str, c.hidden))}-10, "
        f"{c.num_steps} steps at every size, {len(c.seeds)} seed(s))", "",
        im.markdown_table(["training examples", "no dropout: train %", "no dropout: test %",
                           "dropout: train %", "dropout: test %",
                           "gain (points)"], rows), "",
        f"Dropout hurts (negative gain) at sizes: {result['dropout_hurts_at'] or 'none'}.",
        f"Training time: {result['arm_seconds'] / 60:.1f} min; "
        + im.run_note("dataset_size", c, result["wall_seconds"])])


def plot(result: dict, path: Path) -> None:
    plt = im.pyplot()
    sizes = [r["size"] for r in result["sizes"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("none", "dropout"):
        for split, style in (("test", "-o"), ("train", "--.")):
            axes[0].plot(sizes, [100 * r[name][f"{split}_error_mean"] for r in result["sizes"]],
                         style, label=f"{name} ({split})")
    axes[0].set(xscale="log", xlabel="training examples", ylabel="error %",
                title="error vs data-set size")
    axes[0].legend(fontsize=8)
    axes[1].plot(sizes, [100 * r["gain"] for r in result["sizes"]], "-o")
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].set(xscale="log", xlabel="training examples",
                ylabel="test error without - with dropout (points)", title="dropout's gain")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
