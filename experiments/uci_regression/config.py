"""Configuration of the UCI regression experiment (``experiments.uci_regression``).

Each field is also a flag of ``python -m experiments.uci_regression`` (``--splits 2``).
The protocol's constants (one hidden layer, lengthscale, Adam, batch 128) and each data
set's grids of dropout rates and precisions come from Gal's repository
(:func:`jdrop.data.load_uci`), not from here.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    datasets: tuple[str, ...] | None = None  # data set names; None: all nine
    splits: int | None = None  # run only this many splits of each data set; None: all
    first_split: int = 0  # the first split to run (to share one data set between runs)
    num_samples: int = 10_000  # MC samples T for validation and test
    chunk_size: int = 500  # MC samples evaluated at once (bounds memory)
    epochs_multiplier: float = 10.0  # x the data sets' epoch counts (40; 20 for protein)
    data_dir: str | None = None  # the folder holding <name>/data.txt ...; None: search
    seed: int = 0  # initialisation, data order and dropout masks derive from it
    table_only: bool = False  # only assemble the table from the data sets already run


def default() -> Config:
    """Gal & Ghahramani's protocol on every split of all nine data sets (hours on a CPU)::

        python -m experiments.uci_regression
    """
    return Config()


def smoke() -> Config:
    """Two splits of yacht, T = 200, a fifth of the epochs (about a minute)::

        python -m experiments.uci_regression --smoke --workdir /tmp/uci_smoke
    """
    return dataclasses.replace(
        Config(), datasets=("yacht",), splits=2, num_samples=200, epochs_multiplier=2.0
    )
