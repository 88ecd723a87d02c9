"""Configuration of ``experiments.dropout_rate`` (Srivastava et al. 2014, Figure 9).

    python -m experiments.dropout_rate --workdir /tmp/rate --smoke
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "default"  # label written into the results
    num_layers: int = 2  # hidden ReLU layers (paper: 3)
    width: int = 512  # (a) hidden units per layer, fixed while the rate varies (paper: 2048)
    kept_units: int = 128  # (b) p * n, expected kept units per layer (paper: 256)
    rates_fixed_n: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # (a)
    rates_fixed_pn: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # (b)
    sweep_in_rate: float = 0.0  # input drop rate of sweeps (a) and (b) (hidden rate varies)
    grid_in_rates: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5)  # (c) input rates
    grid_hid_rates: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)  # (c) hidden rates
    grid_width: int = 512  # (c) hidden units per layer
    parts: tuple[str, ...] = ("fixed_n", "fixed_pn", "grid")  # which sweeps to run
    num_train: int | None = None  # training examples (None: all 50,000 left after validation)
    num_val: int = 10_000  # validation examples carved from the training set
    num_epochs: int = 30  # passes over the training set
    batch_size: int = 100  # examples per SGD step
    learning_rate: float = 0.05  # SGD learning rate (peak)
    schedule: str = "cosine"  # learning-rate schedule: "cosine" (to 0 at the end) or "constant"
    momentum: float = 0.9  # SGD momentum
    seeds: tuple[int, ...] = (0,)  # one model per seed per sweep point
    eval_examples: int = 2_000  # train / val / test examples of the per-epoch curves
    data_dir: str | None = None  # folder with the Fashion-MNIST IDX files (None: searched)
    progress: bool = True  # one line per epoch


def default() -> Config:
    """The issue's configuration (two hidden layers of 512, p * n = 128, 30 epochs)."""
    return Config()


def cpu() -> Config:
    """What this session ran: width 256, p * n = 64, 10,000 examples, 15 epochs, fewer points."""
    return dataclasses.replace(
        Config(), name="cpu", width=256, kept_units=64, grid_width=256,
        rates_fixed_pn=(0.0, 0.2, 0.4, 0.6, 0.8), grid_in_rates=(0.0, 0.2, 0.5),
        num_train=10_000, num_epochs=15)


def smoke() -> Config:
    """Seconds: width 16, three points per sweep, 500 examples, 1 epoch."""
    return dataclasses.replace(
        Config(), name="smoke", width=16, kept_units=8, grid_width=16,
        rates_fixed_n=(0.0, 0.5, 0.9), rates_fixed_pn=(0.0, 0.5), grid_in_rates=(0.0, 0.2),
        grid_hid_rates=(0.0, 0.5), num_train=500, num_val=100, num_epochs=1,
        eval_examples=200, progress=False)
