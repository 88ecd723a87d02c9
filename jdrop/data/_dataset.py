"""In-memory data sets: named numpy arrays that share a leading (example) axis."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from jdrop.data._vocab import Vocabulary


@dataclasses.dataclass(frozen=True, eq=False)
class ArrayDataset:
    """Named numpy arrays with one row per example.

    The arrays are stored as read-only views (no copy), so a data set that a loader
    caches cannot be changed by accident; batches are fresh, writable copies.

    Attributes:
      arrays: name -> array; every array has the same length along axis 0.

    Examples:
      >>> import numpy as np
      >>> ds = ArrayDataset({"inputs": np.zeros((5, 3), np.float32),
      ...                    "labels": np.arange(5, dtype=np.int32)})
      >>> len(ds), ds["inputs"].shape
      (5, (5, 3))
      >>> ds
      ArrayDataset(5 examples: inputs=float32[5, 3], labels=int32[5])
      >>> ds.take([4, 0])["labels"]
      array([4, 0], dtype=int32)
    """

    arrays: Mapping[str, np.ndarray]

    def __post_init__(self):
        if not isinstance(self.arrays, Mapping) or not self.arrays:
            raise ValueError(
                "arrays must be a non-empty mapping from names to arrays, got "
                f"arrays={self.arrays!r}"
            )
        frozen: dict[str, np.ndarray] = {}
        length = None
        for name, value in self.arrays.items():
            if not isinstance(name, str):
                raise TypeError(f"array names must be strings, got {name!r}")
            array = np.asarray(value)
            if array.ndim == 0:
                raise ValueError(f"arrays[{name!r}] must have a leading example axis, got a scalar")
            if length is None:
                length, first = len(array), name
            elif len(array) != length:
                raise ValueError(
                    f"all arrays must have the same length along axis 0, got "
                    f"len(arrays[{name!r}])={len(array)} but len(arrays[{first!r}])={length}"
                )
            view = array.view()
            view.flags.writeable = False
            frozen[name] = view
        object.__setattr__(self, "arrays", frozen)

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self.arrays

    @property
    def names(self) -> tuple[str, ...]:
        """The array names, in insertion order."""
        return tuple(self.arrays)

    def take(self, indices) -> dict[str, np.ndarray]:
        """Rows ``indices`` of every array, as a dict of new (writable) arrays."""
        indices = np.asarray(indices)
        return {name: array[indices] for name, array in self.arrays.items()}

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={a.dtype}[{', '.join(map(str, a.shape))}]" for name, a in self.arrays.items()
        )
        return f"ArrayDataset({len(self)} examples: {fields})"


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetSplits:
    """What every ``load_*`` function returns: the splits of one data set and its metadata.

    Classification sets hold ``{"inputs", "labels"}`` in each split (``inputs`` float32,
    ``labels`` int32); text corpora hold ``{"tokens"}`` (int32, 1-D, one token per row,
    ready for :func:`~jdrop.data.lm_batches`) and a :attr:`vocab`.

    Attributes:
      name: the data set's name, e.g. ``"fashion_mnist"``.
      train: the training split.
      test: the test split.
      validation: the validation split, where the data set has one, else ``None``.
      num_classes: number of classes for classification sets, else ``None``.
      vocab: the token vocabulary for text corpora, else ``None``.
      source: where the data came from (a folder, a file, ``"tfds:<name>"``, ...).

    Examples:
      >>> import numpy as np
      >>> split = ArrayDataset({"labels": np.arange(3, dtype=np.int32)})
      >>> data = DatasetSplits("toy", train=split, test=split, num_classes=3)
      >>> data.split("test") is split, data.split_names
      (True, ('train', 'test'))
    """

    name: str
    train: ArrayDataset
    test: ArrayDataset
    validation: ArrayDataset | None = None
    num_classes: int | None = None
    vocab: Vocabulary | None = None
    source: str = ""

    @property
    def split_names(self) -> tuple[str, ...]:
        """The names of the splits present (``"validation"`` only where it exists)."""
        names = ("train", "validation", "test")
        return tuple(n for n in names if getattr(self, n) is not None)

    def split(self, name: str) -> ArrayDataset:
        """The split called ``name`` (one of :attr:`split_names`)."""
        if name not in self.split_names:
            raise ValueError(
                f"split must be one of {self.split_names} for {self.name}, got split={name!r}"
            )
        return getattr(self, name)
