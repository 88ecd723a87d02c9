"""Configuration of ``experiments.dataset_size`` (Srivastava et al. 2014, Figure 10).

    python -m experiments.dataset_size --workdir /tmp/size --smoke
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "default"  # label written into the results
    sizes: tuple[int, ...] = (500, 1_000, 5_000, 10_000, 30_000, 60_000)  # training-set sizes
    hidden: tuple[int, ...] = (512, 512)  # hidden ReLU layers
    in_rate: float = 0.2  # input drop rate of the dropout models
    hid_rate: float = 0.5  # hidden drop rate of the dropout models
    num_steps: int = 20_000  # SGD steps at every size (the same compute for each)
    num_evals: int = 40  # evaluations (and checkpoints) along the run
    batch_size: int = 100  # examples per step (drawn with replacement from the subset)
    learning_rate: float = 0.05  # SGD learning rate (peak)
    schedule: str = "cosine"  # learning-rate schedule: "cosine" (to 0 at the end) or "constant"
    momentum: float = 0.9  # SGD momentum
    seeds: tuple[int, ...] = (0, 1, 2)  # one model per seed per size and arm
    eval_examples: int = 2_000  # train / test examples of the per-evaluation curves
    data_dir: str | None = None  # folder with the Fashion-MNIST IDX files (None: searched)
    progress: bool = True  # one line per evaluation


def default() -> Config:
    """The issue's configuration (784-512-512-10, 20,000 steps at every size, 3 seeds)."""
    return Config()


def cpu() -> Config:
    """What this session ran: 784-256-256-10, 2,000 steps at every size, 1 seed."""
    return dataclasses.replace(Config(), name="cpu", hidden=(256, 256), num_steps=2_000,
                               num_evals=10, seeds=(0,))


def smoke() -> Config:
    """Seconds: 784-16-10, sizes 100 and 500, 20 steps."""
    return dataclasses.replace(Config(), name="smoke", sizes=(100, 500), hidden=(16,),
                               num_steps=20, num_evals=2, eval_examples=200, progress=False)
