"""Configuration of ``experiments.regularizers`` (Srivastava et al. 2014, Table 9).

    python -m experiments.regularizers --workdir /tmp/reg --smoke
"""

from __future__ import annotations

import dataclasses

ARMS = ("none", "l2", "l1", "l1_l2", "max_norm", "early_stopping", "augmentation",
        "dropout", "dropout_l2", "dropout_max_norm", "dropout_augmentation")


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "default"  # label written into the results
    hidden: tuple[int, ...] = (512, 512)  # hidden ReLU layers (paper: 1024-1024-2048, scaled down)
    num_train: int | None = None  # training examples (None: all 50,000 left after validation)
    num_val: int = 10_000  # validation examples carved from the training set (early stopping)
    num_epochs: int = 40  # passes over the training set (one evaluation each)
    batch_size: int = 100  # examples per SGD step
    learning_rate: float = 0.05  # SGD learning rate (peak)
    schedule: str = "cosine"  # learning-rate schedule: "cosine" (to 0 at the end) or "constant"
    momentum: float = 0.9  # SGD momentum
    in_rate: float = 0.2  # input drop rate of the dropout arms
    hid_rate: float = 0.5  # hidden drop rate of the dropout arms
    l2: float = 1e-4  # coefficient of sum(w**2) in the L2 arms
    l1: float = 1e-5  # coefficient of sum(|w|) in the L1 arms
    max_norm: float = 3.0  # radius c of the max-norm arms (paper: 3-4)
    shift: int = 2  # random translations of up to this many pixels (augmentation arms, <= 3)
    arms: tuple[str, ...] = ARMS  # arms to run (see ARMS)
    seeds: tuple[int, ...] = (0, 1, 2)  # one model per seed per arm
    eval_examples: int = 2_000  # train / val / test examples of the per-epoch curves
    measure_speedup: bool = True  # time vmapped seeds vs a loop of single runs (small net)
    data_dir: str | None = None  # folder with the Fashion-MNIST IDX files (None: searched)
    progress: bool = True  # one line per epoch


def default() -> Config:
    """The issue's configuration, width scaled to 784-512-512-10 to fit ~75 min on 2 cores."""
    return Config()


def cpu() -> Config:
    """What this session ran: 784-256-256-10, 20,000 training examples, 30 epochs, constant
    learning rate (the schedule was added after this run; the other experiments use cosine)."""
    return dataclasses.replace(Config(), name="cpu", hidden=(256, 256), num_train=20_000,
                               num_epochs=30, schedule="constant")


def smoke() -> Config:
    """Seconds: 784-16-10, 500 examples, 2 epochs, 2 seeds, three arms."""
    return dataclasses.replace(
        Config(), name="smoke", hidden=(16,), num_train=500, num_val=200, num_epochs=2,
        arms=("none", "early_stopping", "dropout_max_norm"), seeds=(0, 1),
        eval_examples=200, measure_speedup=False, progress=False)
