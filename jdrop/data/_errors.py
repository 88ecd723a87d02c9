"""The two errors every loader raises: data that is absent, and data that is broken."""

from __future__ import annotations

from collections.abc import Sequence


class DataNotFoundError(FileNotFoundError):
    """A data set could not be found in any of the places searched.

    The message names the data set, every place that was looked in (and why each one
    did not do), and how to provide the data.

    Attributes:
      dataset: the data set's name, e.g. ``"fashion_mnist"``.
      looked: one line per place searched, in search order.
      how_to_provide: what the user can do about it.

    Examples:
      >>> error = DataNotFoundError("toy", ["/nowhere (no such folder)"], "pass data_dir")
      >>> print(error)
      toy: data not found. Looked in:
        - /nowhere (no such folder)
      To provide it: pass data_dir
      >>> isinstance(error, FileNotFoundError)
      True
    """

    def __init__(self, dataset: str, looked: Sequence[str], how_to_provide: str):
        self.dataset = dataset
        self.looked = tuple(looked)
        self.how_to_provide = how_to_provide
        lines = [f"{dataset}: data not found. Looked in:"]
        lines += [f"  - {place}" for place in self.looked] or ["  (nowhere)"]
        lines.append(f"To provide it: {how_to_provide}")
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return type(self), (self.dataset, self.looked, self.how_to_provide)

    def __str__(self) -> str:
        return self.args[0]


class DataFormatError(ValueError):
    """A data file exists but is corrupt, truncated or not in the expected format.

    The message starts with the file's path.
    """
