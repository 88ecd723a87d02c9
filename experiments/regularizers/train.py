"""Dropout vs other regularizers on Fashion-MNIST (Srivastava et al. 2014, Table 9).

The same ReLU MLP trained with SGD + momentum under eleven regimes (``config.ARMS``). Every
arm's seeds train as one vmapped program (``experiments._images``); all arms share its
single compilation because the regularizer strengths are traced. Early stopping keeps the
parameters of the epoch with the lowest validation error (the validation split is carved
from the training set and held out for every arm, so all arms train on the same examples).
Writes ``regularizers.json``, ``regularizers.md``, ``regularizers_curves.png`` and
``arms/*.json`` (per-arm results; a finished arm is skipped on restart) into the workdir.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from experiments import _images as im
from experiments.regularizers import config as configs

DROPOUT_ARMS = ("dropout", "dropout_l2", "dropout_max_norm", "dropout_augmentation")
LABELS = {"none": "none", "l2": "L2", "l1": "L1", "l1_l2": "L1 + L2", "max_norm": "max-norm",
          "early_stopping": "early stopping", "augmentation": "augmentation",
          "dropout": "dropout", "dropout_l2": "dropout + L2",
          "dropout_max_norm": "dropout + max-norm",
          "dropout_augmentation": "dropout + augmentation"}
PAPER_MNIST = {"l2": 1.62, "l1_l2": 1.60, "max_norm": 1.35, "dropout_l2": 1.25,
               "dropout_max_norm": 1.05}  # Table 9 test error (%), MNIST, 784-1024-1024-2048


def arm_hypers(name: str, c: configs.Config) -> dict[str, float]:
    """The traced hyper-parameters of arm ``name``."""
    hp = {"lr": c.learning_rate}
    if name.startswith("dropout"):
        hp.update(in_rate=c.in_rate, hid_rate=c.hid_rate)
    if name in ("l2", "l1_l2", "dropout_l2"):
        hp["l2"] = c.l2
    if name in ("l1", "l1_l2"):
        hp["l1"] = c.l1
    if name.endswith("max_norm"):
        hp["max_norm"] = c.max_norm
    if name.endswith("augmentation"):
        hp["shift"] = c.shift
    return hp


def check_config(c: configs.Config) -> None:
    unknown = set(c.arms) - set(configs.ARMS)
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; choose from {configs.ARMS}")
    if not 0 <= c.shift <= im.PAD:
        raise ValueError(f"shift must be in 0..{im.PAD}, got shift={c.shift}")


def train_and_evaluate(c: configs.Config, workdir) -> dict:
    """Trains every arm (resuming), writes the JSON, the table and the plot; returns the JSON."""
    check_config(c)
    start = time.perf_counter()
    data = im.load_images(num_val=c.num_val, max_train=c.num_train, data_dir=c.data_dir)
    n = int(data.x_train.shape[0])
    trainer = im.trainer_for(im.mlp_apply, data, c)
    init = functools.partial(im.init_mlp, sizes=(784, *c.hidden, 10))
    arms = {}
    for name in c.arms:
        hypers, seeds = im.grid([arm_hypers(name, c)], c.seeds)
        select = "best_val" if name == "early_stopping" else "last"
        arms[name] = im.run_arm(trainer, init, name, hypers, seeds, workdir, select=select,
                                progress=c.progress)
    result = {"experiment": "regularizers", "config": c.__dict__ | {"arms": list(c.arms)},
              "num_train": n, "arms": {}}
    for name, arm in arms.items():
        result["arms"][name] = {**im.summarize(arm["models"]), "seconds": arm["seconds"],
                                "models": im.strip_curves(arm)["models"]}
    result["goals"] = goals(result["arms"])
    if c.measure_speedup:
        result["vmap_speedup"] = [im.measure_vmap_speedup(sizes=sizes)
                                  for sizes in ((784, 32, 32, 10), (784, 128, 128, 10))]
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["arm_seconds"] = round(sum(a["seconds"] for a in arms.values()), 1)
    im.write_outputs(workdir, "regularizers", result, markdown(result, c))
    plot(arms, Path(workdir) / "regularizers_curves.png")
    return result


def goals(arms: dict) -> dict:
    """The paper's ordering: dropout + max-norm best; every dropout arm ahead of every other."""
    err = {k: v["test_error_mean"] for k, v in arms.items()}
    out = {"best_arm": min(err, key=err.get)}
    out["dropout_max_norm_best"] = out["best_arm"] == "dropout_max_norm"
    drop = [err[k] for k in err if k in DROPOUT_ARMS]
    rest = [err[k] for k in err if k not in DROPOUT_ARMS]
    if drop and rest:
        out["worst_dropout_arm_error"] = max(drop)
        out["best_non_dropout_arm_error"] = min(rest)
        out["every_dropout_arm_ahead"] = max(drop) < min(rest)
    return out


def markdown(result: dict, c: configs.Config) -> str:
    rows = []
    for name, a in sorted(result["arms"].items(), key=lambda kv: kv[1]["test_error_mean"]):
        rows.append([LABELS[name], im.pct(a["train_error_mean"], a["train_error_std"]),
                     im.pct(a["test_error_mean"], a["test_error_std"]),
                     f"{a['test_nll_mean']:.3f}",
                     f"{PAPER_MNIST[name]:.2f}" if name in PAPER_MNIST else ""])
    g = result["goals"]
    lines = [f"## Regularizers (Fashion-MNIST, 784-{'-'.join(map(str, c.hidden))}-10, "
             f"{result['num_train']} training examples, {len(c.seeds)} seeds)", "",
             im.markdown_table(["arm", "train error %", "test error %", "test NLL",
                                "paper (MNIST) %"], rows), "",
             f"Best arm: {LABELS[g['best_arm']]}. Dropout + max-norm best: "
             f"{'met' if g['dropout_max_norm_best'] else 'missed'}."]
    if "every_dropout_arm_ahead" in g:
        lines.append(f"Every dropout arm ahead of every non-dropout arm: "
                     f"{'met' if g['every_dropout_arm_ahead'] else 'missed'} (worst dropout "
                     f"arm {im.pct(g['worst_dropout_arm_error'])}%, best other arm "
                     f"{im.pct(g['best_non_dropout_arm_error'])}%).")
    for s in result.get("vmap_speedup", []):
        lines.append(f"vmap over {s['config']['num_models']} seeds vs a loop of single runs "
                     f"({'-'.join(map(str, s['config']['sizes']))}, {s['config']['steps']} "
                     f"steps): {s['speedup']:.2f}x ({s['vmapped_s']:.2f} s vs "
                     f"{s['loop_s']:.2f} s, compile excluded; with compile "
                     f"{s['speedup_first_call']:.2f}x).")
    lines.append(f"Training time of the arms: {result['arm_seconds'] / 60:.1f} min; "
                 f"{im.run_note('regularizers', c, result['wall_seconds'])}")
    return "\n".join(lines)


def plot(arms: dict, path: Path) -> None:
    """Test (solid) and train (dashed) error vs epoch, mean over seeds, one line per arm."""
    plt = im.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (name, arm) in enumerate(arms.items()):
        color = plt.cm.tab20(i / max(len(arms) - 1, 1))
        for split, style in (("test_error", "-"), ("train_error", "--")):
            curve = np.mean([m["curves"][split] for m in arm["models"]], axis=0)
            epochs = np.arange(1, len(curve) + 1)
            ax.plot(epochs, 100 * curve, style, color=color,
                    label=LABELS[name] if split == "test_error" else None)
    ax.set(xlabel="epoch", ylabel="error % (solid: test, dashed: train)",
           title="Fashion-MNIST MLP: regularizers", ylim=(0, None))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
