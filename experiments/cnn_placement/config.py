"""Configuration of ``experiments.cnn_placement``.

    python -m experiments.cnn_placement --workdir /tmp/cnn --smoke
"""

from __future__ import annotations

import dataclasses

ARMS = ("lenet_none", "lenet_fc", "lenet_conv", "lenet_spatial", "lenet_dropblock",
        "resnet_none", "resnet_fc", "resnet_conv", "resnet_spatial", "resnet_dropblock",
        "resnet_stochastic_depth")


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "default"  # label written into the results
    arms: tuple[str, ...] = ARMS  # <model>_<placement> (see ARMS)
    lenet_channels: tuple[int, ...] = (32, 64)  # LeNet-style: channels of each stage
    lenet_kernel: int = 5  # LeNet-style: convolution size (3 with lenet_depth 2: VGG-style)
    lenet_depth: int = 1  # LeNet-style: convolutions per stage, each stage ends in a 2x2 pool
    lenet_hidden: int = 256  # LeNet-style: units of the dense hidden layer
    resnet_blocks: int = 3  # residual blocks per stage (3: ResNet-20)
    resnet_widths: tuple[int, ...] = (8, 16, 32)  # stage channels (He et al.: 16 32 64)
    fc_rate: float = 0.5  # dropout on the dense / pooled features (every arm but *_none)
    conv_rate: float = 0.1  # elementwise dropout after convolutions (*_conv)
    spatial_rate: float = 0.1  # spatial dropout after convolutions (*_spatial)
    block_rate: float = 0.1  # DropBlock (3x3 blocks) after convolutions (*_dropblock)
    path_rate: float = 0.2  # stochastic depth: rate of the last residual branch
    resnet_clip: float = 1.0  # global-norm gradient clipping of the (batch-norm-free) ResNets
    shift: int = 1  # random translations of up to this many pixels (every arm, <= 3)
    flip: float = 0.0  # probability of a left-right mirror per training image (every arm)
    num_train: int | None = None  # training examples (None: all 60,000)
    num_epochs: int = 5  # passes over the training set
    batch_size: int = 128  # examples per SGD step
    learning_rate: float = 0.05  # SGD learning rate (peak)
    schedule: str = "cosine"  # learning-rate schedule: "cosine" (to 0 at the end) or "constant"
    momentum: float = 0.9  # SGD momentum
    l2: float = 5e-5  # coefficient of sum(w**2) on every kernel
    seeds: tuple[int, ...] = (0,)  # one model per seed per arm
    eval_examples: int = 2_000  # train / test examples of the per-epoch curves
    target_accuracy: float = 0.935  # the goal for the best arm
    data_dir: str | None = None  # folder with the Fashion-MNIST IDX files (None: searched)
    progress: bool = True  # one line per epoch


def default() -> Config:
    """The issue's run sized to fit 90 minutes on 2 CPU cores: LeNet-style 32-64-256 and a
    half-width ResNet-20 (8-16-32), 5 epochs of all 60,000 images, every arm. On 2 idle
    cores one epoch costs ~1.1 min (LeNet) and ~1.3 min (ResNet-20 8-16-32); He et al.'s
    ResNet-20 (16-32-64) costs ~4 min, so the accelerator run is
    ``--resnet_widths 16 32 64 --num_epochs 30``."""
    return Config()


def cpu() -> Config:
    """What this session ran: LeNet-style 8-16-64 only, 10,000 images, 3 epochs (a CNN
    step costs ~0.5 s at 16-32-128 on this shared CPU)."""
    return dataclasses.replace(
        Config(), name="cpu", arms=ARMS[:5], lenet_channels=(8, 16), lenet_hidden=64,
        num_train=10_000, num_epochs=3)


def smoke() -> Config:
    """Seconds: tiny LeNet and a 1-block ResNet, 300 images, 1 epoch, three arms."""
    return dataclasses.replace(
        Config(), name="smoke", arms=("lenet_none", "lenet_dropblock",
                                      "resnet_stochastic_depth"),
        lenet_channels=(4, 4), lenet_hidden=16, resnet_blocks=1, resnet_widths=(4, 8),
        num_train=300, num_epochs=1, eval_examples=200, progress=False)
