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
    # NAME=MULTIPLIER: a data set trained on its own schedule instead of epochs_multiplier.
    # yacht=100 (4,000 epochs) is the `--epochx 100` of Gal's repository's grid-search
    # results (yaringal/DropoutUncertaintyExps, UCI_Datasets/yacht/results/
    # *_100_xepochs_1_hidden_layers.txt: MC RMSE 0.67 +- 0.05): with 277 points and batch
    # 128, the 400 epochs of 10x are only 1,200 Adam steps and yacht underfits (RMSE 2.70).
    epochs_overrides: tuple[str, ...] = ("yacht=100",)
    data_dir: str | None = None  # the folder holding <name>/data.txt ...; None: search
    seed: int = 0  # initialisation, data order and dropout masks derive from it
    table_only: bool = False  # only assemble the table from the data sets already run


def default() -> Config:
    """Gal & Ghahramani's protocol on every split of all nine data sets (hours on a CPU);
    yacht on the 100x schedule of their repository's results::

        python -m experiments.uci_regression
    """
    return Config()


def smoke() -> Config:
    """Two splits of yacht, T = 200, 80 epochs (about a minute)::

        python -m experiments.uci_regression --smoke --workdir /tmp/uci_smoke
    """
    return dataclasses.replace(
        Config(), datasets=("yacht",), splits=2, num_samples=200, epochs_overrides=("yacht=2",)
    )


def epochs_multiplier(config: Config, name: str) -> float:
    """The epochs multiplier of data set ``name``: its ``epochs_overrides`` entry, else
    ``epochs_multiplier``.

    Raises:
      ValueError: for an entry not of the form ``NAME=MULTIPLIER``.
    """
    found = config.epochs_multiplier
    for entry in config.epochs_overrides:
        key, sep, value = entry.partition("=")
        try:
            multiplier = float(value)
        except ValueError:
            multiplier = None
        if not sep or multiplier is None or not multiplier > 0:
            raise ValueError(
                f"--epochs_overrides entries are NAME=MULTIPLIER (> 0), got {entry!r}")
        if key == name:
            found = multiplier
    return found
