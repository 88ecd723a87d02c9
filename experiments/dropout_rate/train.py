"""Choosing the drop rate (Srivastava et al. 2014, Figure 9) on Fashion-MNIST.

Three sweeps of a ReLU MLP, each one vmapped program over its points and seeds:

* ``fixed_n``: hidden width ``n`` fixed, hidden drop rate ``p`` from 0 to 0.9;
* ``fixed_pn``: ``(1 - p) * n`` (expected kept units) fixed, so ``n = kept / (1 - p)``.
  The points differ in width, so every model is built at the largest width and the units
  at or beyond its own ``n`` are switched off (a traced per-model ``width``; switched-off
  units get no gradient and contribute nothing);
* ``grid``: input rate x hidden rate at a fixed width (a heatmap).

(The paper's Figure 9 uses the retention probability ``p``; here ``p`` is the drop rate.)
Writes ``dropout_rate.json``, ``.md``, ``dropout_rate_sweeps.png``,
``dropout_rate_grid.png`` and per-sweep ``arms/*.json`` into the workdir.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from experiments import _images as im
from experiments.dropout_rate import config as configs

PARTS = ("fixed_n", "fixed_pn", "grid")


def check_config(c: configs.Config) -> None:
    unknown = set(c.parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    if any(not 0 <= r < 1 for r in c.rates_fixed_pn):
        raise ValueError(f"rates_fixed_pn must be in [0, 1), got {c.rates_fixed_pn}")


def kept_width(kept: int, rate: float) -> int:
    """Hidden units ``n`` with ``(1 - rate) * n = kept`` (rounded)."""
    return int(round(kept / (1.0 - rate)))


def sweep(part: str, c: configs.Config) -> tuple[list[dict], int]:
    """The points ``(hyper-parameters)`` of sweep ``part`` and the width its models are built at."""
    lr = c.learning_rate
    if part == "fixed_n":
        return [{"in_rate": c.sweep_in_rate, "hid_rate": r, "lr": lr}
                for r in c.rates_fixed_n], c.width
    if part == "fixed_pn":
        points = [{"in_rate": c.sweep_in_rate, "hid_rate": r, "lr": lr,
                   "width": kept_width(c.kept_units, r)} for r in c.rates_fixed_pn]
        return points, max(p["width"] for p in points)
    return [{"in_rate": a, "hid_rate": b, "lr": lr} for a in c.grid_in_rates
            for b in c.grid_hid_rates], c.grid_width


def train_and_evaluate(c: configs.Config, workdir) -> dict:
    check_config(c)
    start = time.perf_counter()
    data = im.load_images(num_val=c.num_val, max_train=c.num_train, data_dir=c.data_dir)
    trainer = im.trainer_for(im.mlp_apply, data, c)
    result = {"experiment": "dropout_rate", "config": c.__dict__,
              "num_train": int(data.x_train.shape[0]), "parts": {}}
    arms = {}
    for part in c.parts:
        points, width = sweep(part, c)
        init = functools.partial(im.init_mlp, sizes=(784, *[width] * c.num_layers, 10))
        hypers, seeds = im.grid(points, c.seeds)
        arms[part] = im.run_arm(trainer, init, part, hypers, seeds, workdir,
                                progress=c.progress)
        keys = ["in_rate", "hid_rate"] + (["width"] if part == "fixed_pn" else [])
        rows = []
        for point, models in im.by_point(arms[part], keys).items():
            rows.append({**dict(zip(keys, point, strict=True)), **im.summarize(models),
                         "models": im.strip_curves({"models": models})["models"]})
        best = min(rows, key=lambda r: r["test_error_mean"])
        result["parts"][part] = {"built_width": width, "seconds": arms[part]["seconds"],
                                 "points": rows,
                                 "optimum": {k: best[k] for k in (*keys, "test_error_mean")}}
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["arm_seconds"] = round(sum(a["seconds"] for a in arms.values()), 1)
    im.write_outputs(workdir, "dropout_rate", result, markdown(result, c))
    plot(result, Path(workdir))
    return result


def _err(r, split):
    return im.pct(r[f"{split}_error_mean"], r[f"{split}_error_std"] if r[f"{split}_error_std"]
                  else None)


def markdown(result: dict, c: configs.Config) -> str:
    parts = result["parts"]
    lines = [f"## Drop rate (Fashion-MNIST MLP, {c.num_layers} hidden layers, "
             f"{result['num_train']} training examples, {len(c.seeds)} seed(s))", ""]
    if "fixed_n" in parts:
        rows = [[r["hid_rate"], _err(r, "train"), _err(r, "test")]
                for r in parts["fixed_n"]["points"]]
        o = parts["fixed_n"]["optimum"]
        lines += [f"(a) fixed n = {c.width} hidden units, input rate {c.sweep_in_rate}:", "",
                  im.markdown_table(["hidden drop rate", "train error %", "test error %"],
                                    rows), "",
                  f"Optimum: rate {o['hid_rate']} ({im.pct(o['test_error_mean'])}%).", ""]
    if "fixed_pn" in parts:
        rows = [[r["hid_rate"], int(r["width"]), _err(r, "train"), _err(r, "test")]
                for r in parts["fixed_pn"]["points"]]
        o = parts["fixed_pn"]["optimum"]
        lines += [f"(b) fixed (1 - rate) * n = {c.kept_units} kept units:", "",
                  im.markdown_table(["hidden drop rate", "n", "train error %", "test error %"],
                                    rows), "",
                  f"Optimum: rate {o['hid_rate']}, n = {int(o['width'])} "
                  f"({im.pct(o['test_error_mean'])}%).", ""]
    if "grid" in parts:
        table = {(r["in_rate"], r["hid_rate"]): r for r in parts["grid"]["points"]}
        rows = [[a] + [im.pct(table[a, b]["test_error_mean"]) for b in c.grid_hid_rates]
                for a in c.grid_in_rates]
        o = parts["grid"]["optimum"]
        lines += [f"(c) test error % by input rate (rows) x hidden rate (columns), "
                  f"n = {c.grid_width}:", "",
                  im.markdown_table(["input \\ hidden", *map(str, c.grid_hid_rates)], rows), "",
                  f"Optimum: input {o['in_rate']}, hidden {o['hid_rate']} "
                  f"({im.pct(o['test_error_mean'])}%).", ""]
    lines.append(f"Training time of the sweeps: {result['arm_seconds'] / 60:.1f} min; "
                 + im.run_note("dropout_rate", c, result["wall_seconds"]))
    return "\n".join(lines)


def plot(result: dict, workdir: Path) -> None:
    plt = im.pyplot()
    sweeps = [p for p in ("fixed_n", "fixed_pn") if p in result["parts"]]
    if sweeps:
        fig, axes = plt.subplots(1, len(sweeps), figsize=(5 * len(sweeps), 4), squeeze=False)
        for ax, part in zip(axes[0], sweeps, strict=True):
            pts = result["parts"][part]["points"]
            rates = [r["hid_rate"] for r in pts]
            for split in ("train", "test"):
                ax.errorbar(rates, [100 * r[f"{split}_error_mean"] for r in pts],
                            [100 * r[f"{split}_error_std"] for r in pts], marker="o",
                            label=split)
            ax.set(xlabel="hidden drop rate", ylabel="error %",
                   title="fixed n" if part == "fixed_n" else "fixed (1 - rate) * n")
            ax.legend()
        fig.tight_layout()
        fig.savefig(workdir / "dropout_rate_sweeps.png", dpi=110)
        plt.close(fig)
    if "grid" in result["parts"]:
        cfg = result["config"]
        table = {(r["in_rate"], r["hid_rate"]): r["test_error_mean"]
                 for r in result["parts"]["grid"]["points"]}
        grid = np.array([[100 * table[a, b] for b in cfg["grid_hid_rates"]]
                         for a in cfg["grid_in_rates"]])
        fig, ax = plt.subplots(figsize=(5, 4))
        image = ax.imshow(grid, cmap="viridis_r", origin="lower")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=8)
        ax.set(xticks=range(len(cfg["grid_hid_rates"])), xticklabels=cfg["grid_hid_rates"],
               yticks=range(len(cfg["grid_in_rates"])), yticklabels=cfg["grid_in_rates"],
               xlabel="hidden drop rate", ylabel="input drop rate", title="test error %")
        fig.colorbar(image)
        fig.tight_layout()
        fig.savefig(workdir / "dropout_rate_grid.png", dpi=110)
        plt.close(fig)
