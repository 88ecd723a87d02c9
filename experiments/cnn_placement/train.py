"""Where dropout goes in a CNN, on Fashion-MNIST.

Two networks (``experiments._images``): a LeNet-style CNN and a batch-norm-free ResNet-20
(Fixup-style zero-initialised branches). Placements: ``none``; ``fc``: dropout on the dense
hidden layer (LeNet) or the pooled features (ResNet) only, the AlexNet/LeNet placement;
``conv`` / ``spatial`` / ``dropblock``: elementwise dropout / spatial dropout / DropBlock
after the convolutions, *in addition to* the ``fc`` dropout; ``stochastic_depth``
(ResNet): ``jdrop.drop_path`` on the residual branches, with the ``fc`` dropout. Every arm
also trains with small random translations and L2; the ResNet arms clip the gradient's
global norm at ``resnet_clip`` (without batch norm, the first full run at learning rate 0.05
sat at chance for two epochs before recovering). On a CPU an arm's seeds and steps
are a host loop over one compiled SGD step (``_images.conv_models_axis``: XLA:CPU runs a
convolution's gradient inside ``lax.scan`` about 10x slower, and vmapping kernels makes
grouped convolutions); elsewhere they are one program (a ``lax.map`` over seeds of a
``lax.scan`` over steps). Only the dropout ops an arm uses are built into its step (a
traced zero rate would still pay for DropBlock's mask). Writes
``cnn_placement.json``, ``.md``, ``cnn_placement.png`` and ``arms/*.json``.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from experiments import _images as im
from experiments.cnn_placement import config as configs


def check_config(c: configs.Config) -> None:
    unknown = set(c.arms) - set(configs.ARMS)
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; choose from {configs.ARMS}")
    if not 0 <= c.shift <= im.PAD:
        raise ValueError(f"shift must be in 0..{im.PAD}, got shift={c.shift}")
    if not 0 <= c.flip <= 1:
        raise ValueError(f"flip must be a probability in [0, 1], got flip={c.flip}")
    if c.lenet_depth < 1 or c.lenet_kernel < 1:
        raise ValueError(f"lenet_depth and lenet_kernel must be >= 1, got lenet_depth="
                         f"{c.lenet_depth}, lenet_kernel={c.lenet_kernel}")
    if not c.resnet_clip > 0:
        raise ValueError(f"resnet_clip must be > 0 (inf: no clipping), got {c.resnet_clip}")


def arm_hypers(name: str, c: configs.Config) -> dict[str, float]:
    net, placement = name.split("_", 1)
    hp = {"lr": c.learning_rate, "l2": c.l2, "shift": c.shift, "flip": c.flip}
    if net == "resnet":  # without batch norm, lr 0.05 collapsed to chance for two epochs
        hp["clip"] = c.resnet_clip
    if placement != "none":
        hp["hid_rate"] = c.fc_rate
    extra = {"conv": ("conv_rate", c.conv_rate), "spatial": ("spatial_rate", c.spatial_rate),
             "dropblock": ("block_rate", c.block_rate),
             "stochastic_depth": ("path_rate", c.path_rate)}
    if placement in extra:
        key, value = extra[placement]
        hp[key] = value
    return hp


def train_and_evaluate(c: configs.Config, workdir) -> dict:
    check_config(c)
    start = time.perf_counter()
    data = im.load_images(num_val=0, max_train=c.num_train, data_dir=c.data_dir)
    networks = {
        "lenet": (functools.partial(im.cnn_apply, depth=c.lenet_depth),
                  functools.partial(im.init_cnn, channels=c.lenet_channels,
                                    hidden=c.lenet_hidden, kernel=c.lenet_kernel,
                                    depth=c.lenet_depth)),
        "resnet": (im.resnet_apply, functools.partial(im.init_resnet, blocks=c.resnet_blocks,
                                                      widths=c.resnet_widths)),
    }
    trainers = {}
    arms = {}
    for name in c.arms:
        net = name.split("_", 1)[0]
        apply_fn, init = networks[net]
        hp = arm_hypers(name, c)
        ops = im.conv_ops(hp)  # only the arm's ops are built in: one program per op set
        if (net, ops) not in trainers:
            trainers[net, ops] = im.trainer_for(functools.partial(apply_fn, ops=ops), data, c,
                                                models_axis=im.conv_models_axis())
        hypers, seeds = im.grid([hp], c.seeds)
        arms[name] = im.run_arm(trainers[net, ops], init, name, hypers, seeds, workdir,
                                progress=c.progress)
    result = {"experiment": "cnn_placement", "config": c.__dict__,
              "num_train": int(data.x_train.shape[0]), "arms": {}}
    for name, arm in arms.items():
        result["arms"][name] = {**im.summarize(arm["models"]), "seconds": arm["seconds"],
                                "models": im.strip_curves(arm)["models"]}
    best = max(result["arms"], key=lambda k: result["arms"][k]["test_accuracy_mean"])
    result["goal"] = {"best_arm": best,
                      "best_test_accuracy": result["arms"][best]["test_accuracy_mean"],
                      "target": c.target_accuracy,
                      "met": result["arms"][best]["test_accuracy_mean"] >= c.target_accuracy}
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["arm_seconds"] = round(sum(a["seconds"] for a in arms.values()), 1)
    im.write_outputs(workdir, "cnn_placement", result, markdown(result, c))
    plot(arms, Path(workdir) / "cnn_placement.png")
    return result


def markdown(result: dict, c: configs.Config) -> str:
    rows = [[name, im.pct(a["train_error_mean"]), im.pct(a["test_error_mean"],
             a["test_error_std"] or None), im.pct(a["test_accuracy_mean"]),
             f"{a['seconds'] / 60:.1f}"] for name, a in result["arms"].items()]
    g = result["goal"]
    return "\n".join([
        f"## Dropout placement in CNNs (Fashion-MNIST, {result['num_train']} training "
        f"images, {c.num_epochs} epochs, {len(c.seeds)} seed(s))", "",
        im.markdown_table(["arm", "train error %", "test error %", "test accuracy %",
                           "minutes"], rows), "",
        f"Best: {g['best_arm']} at {im.pct(g['best_test_accuracy'])}% test accuracy; goal "
        f">= {im.pct(g['target'])}%: {'met' if g['met'] else 'missed'}.",
        f"Training time: {result['arm_seconds'] / 60:.1f} min; "
        + im.run_note("cnn_placement", c, result["wall_seconds"])])


def plot(arms: dict, path: Path) -> None:
    plt = im.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, arm) in enumerate(arms.items()):
        for split, style in (("test_error", "-"), ("train_error", "--")):
            curve = np.mean([m["curves"][split] for m in arm["models"]], axis=0)
            ax.plot(np.arange(1, len(curve) + 1), 100 * curve, style, color=f"C{i}",
                    label=name if split == "test_error" else None)
    ax.set(xlabel="epoch", ylabel="error % (solid: test, dashed: train)",
           title="Fashion-MNIST CNNs: dropout placement")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
