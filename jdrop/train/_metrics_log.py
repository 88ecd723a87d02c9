"""Metrics: running means on the device, a JSONL log file and a tqdm progress bar.

Every logged step or evaluation becomes one JSON object on its own line of
``<workdir>/metrics.jsonl``::

    {"step": 100, "epoch": 0, "split": "train", "loss": 0.41, "accuracy": 0.88}
    {"step": 125, "epoch": 0, "split": "val", "loss": 0.45, "accuracy": 0.86}

``step`` is the number of optimiser updates done when the record was made, ``epoch`` the
(0-based) epoch it belongs to, ``split`` ``"train"`` or an evaluation set's name.
"""

from __future__ import annotations

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["MetricsWriter", "RunningMean", "progress_bar", "read_metrics"]


@jax.jit
def _weighted(metrics, weight):
    return jax.tree.map(lambda m: jnp.asarray(m).astype(jnp.float32) * weight, metrics)


@jax.jit
def _accumulate(sums, metrics, weight):
    return jax.tree.map(lambda s, m: s + jnp.asarray(m).astype(jnp.float32) * weight, sums, metrics)


class RunningMean:
    """Weighted means of dicts of scalars, summed on the device (no sync per step).

    Examples:
      >>> import jax.numpy as jnp
      >>> mean = RunningMean()
      >>> mean.add({"loss": jnp.float32(1.0)})
      >>> mean.add({"loss": jnp.float32(3.0)}, weight=3)
      >>> mean.result()
      {'loss': 2.5}
    """

    def __init__(self):
        self._sums = None
        self._weight = 0.0

    def add(self, metrics: dict, weight: float = 1.0) -> None:
        """Adds one step's metrics with the given weight (e.g. the batch's rows)."""
        w = np.float32(weight)
        if self._sums is None:
            self._sums = _weighted(dict(metrics), w)
        else:
            self._sums = _accumulate(self._sums, dict(metrics), w)
        self._weight += float(weight)

    def __bool__(self) -> bool:
        return self._sums is not None

    def result(self) -> dict[str, float]:
        """The means as Python floats (fetches from the device); ``{}`` when empty."""
        if self._sums is None:
            return {}
        return {k: float(np.asarray(v)) / self._weight for k, v in self._sums.items()}

    def reset(self) -> None:
        """Forgets everything added so far."""
        self._sums, self._weight = None, 0.0


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsWriter:
    """Appends records to ``metrics.jsonl`` (process 0 only) and keeps them in memory.

    Args:
      path: the JSONL file, or ``None`` to keep the records in memory only.
      enabled: write to the file (``False`` on processes other than 0).

    Examples:
      >>> import os, tempfile
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     writer = MetricsWriter(os.path.join(tmp, "metrics.jsonl"))
      ...     writer.write({"step": 1, "epoch": 0, "split": "train", "loss": 0.5})
      ...     read_metrics(os.path.join(tmp, "metrics.jsonl"))
      [{'step': 1, 'epoch': 0, 'split': 'train', 'loss': 0.5}]
    """

    def __init__(self, path: str | os.PathLike | None, *, enabled: bool = True):
        self.path = None if path is None else os.fspath(path)
        self.enabled = enabled and self.path is not None
        self.records: list[dict] = []

    def write(self, record: dict) -> None:
        """Records one step's or evaluation's metrics (non-finite floats as strings)."""
        record = {k: _json_value(v) for k, v in record.items()}
        self.records.append(record)
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drops the file's records with ``step`` greater than ``step`` (used on resume).

        A run resumed from the checkpoint at ``step`` logs the later steps again; this
        keeps the file free of the stopped run's duplicates.
        """
        if not self.enabled or not os.path.exists(self.path):
            return
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        with open(self.path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The records of a ``metrics.jsonl`` file, in order."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, values: dict) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(enabled: bool, *, initial: int = 0):
    """A tqdm bar (imported here, lazily) or a stand-in that does nothing.

    Examples:
      >>> bar = progress_bar(False)
      >>> bar.update(1); bar.close()
    """
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(initial=initial, unit="step", dynamic_ncols=True)
