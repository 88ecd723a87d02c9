"""Deterministic, resumable, per-process batching of in-memory data sets.

Two layouts:

* :func:`batches` — examples shuffled once per epoch by ``np.random.default_rng([seed,
  epoch])``; each process takes its contiguous slice of every global batch.
* :func:`lm_batches` — the contiguous language-modelling layout, in which row ``b`` of
  consecutive batches continues the same stream, so an RNN's state can be carried from
  one batch to the next (truncated backpropagation through time).

Both take ``start_step``: a run stopped after ``k`` steps of an epoch resumes with
``start_step=k`` and gets exactly the batches the uninterrupted run would have seen,
without producing the skipped ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from jdrop._validation import check_int
from jdrop.data._dataset import ArrayDataset


def check_process(process_index, process_count) -> tuple[int, int]:
    """Checks ``0 <= process_index < process_count`` and returns both as ints.

    Examples:
      >>> check_process(1, 2)
      (1, 2)
    """
    process_count = check_int(process_count, "process_count", 1)
    process_index = check_int(process_index, "process_index", 0)
    if process_index >= process_count:
        raise ValueError(
            f"process_index must be < process_count, got process_index={process_index} "
            f"with process_count={process_count}"
        )
    return process_index, process_count


def check_process_batch(batch_size, process_index, process_count) -> tuple[int, int, int]:
    """Checks a global ``batch_size >= 1`` that ``process_count`` processes split evenly.

    Returns:
      ``(batch_size, process_index, process_count)`` as ints.

    Raises:
      ValueError: as :func:`check_process`, or when ``process_count`` does not divide
        ``batch_size``.

    Examples:
      >>> check_process_batch(8, 1, 2)
      (8, 1, 2)
    """
    batch_size = check_int(batch_size, "batch_size", 1)
    process_index, process_count = check_process(process_index, process_count)
    if batch_size % process_count:
        raise ValueError(
            f"batch_size must be divisible by process_count (each process gets "
            f"batch_size/process_count rows), got batch_size={batch_size} with "
            f"process_count={process_count}"
        )
    return batch_size, process_index, process_count


def epoch_order(num_examples: int, *, seed: int, epoch: int = 0) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the examples.

    Args:
      num_examples: the data set's size.
      seed: a non-negative int; the same seed gives the same order on every host.
      epoch: the epoch number (non-negative); each epoch has its own order.

    Returns:
      ``np.random.default_rng([seed, epoch]).permutation(num_examples)`` (int64).

    Examples:
      >>> epoch_order(5, seed=0, epoch=0).tolist() == epoch_order(5, seed=0).tolist()
      True
      >>> sorted(epoch_order(5, seed=0, epoch=1).tolist())
      [0, 1, 2, 3, 4]
    """
    num_examples = check_int(num_examples, "num_examples", 0)
    seed = check_int(seed, "seed", 0)
    epoch = check_int(epoch, "epoch", 0)
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def num_batches(
    dataset: ArrayDataset | int, batch_size: int, *, drop_remainder: bool = True
) -> int:
    """Number of (global) batches in one epoch.

    Args:
      dataset: an :class:`ArrayDataset` or its number of examples.
      batch_size: the global batch size (all processes together).
      drop_remainder: whether a last, smaller batch is dropped.

    Returns:
      ``n // batch_size`` when dropping the remainder, else ``ceil(n / batch_size)``.

    Examples:
      >>> num_batches(10, 4), num_batches(10, 4, drop_remainder=False)
      (2, 3)
    """
    n = len(dataset) if isinstance(dataset, ArrayDataset) else check_int(dataset, "dataset", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    return n // batch_size if drop_remainder else -(-n // batch_size)


def batches(
    dataset: ArrayDataset,
    batch_size: int,
    *,
    seed: int | None = None,
    epoch: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = True,
    process_index: int = 0,
    process_count: int = 1,
    start_step: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields one epoch of batches (this process's share of each global batch).

    Global batch ``i`` holds examples ``order[i*B:(i+1)*B]``, where ``order`` is
    :func:`epoch_order` (``seed``, ``epoch``) when shuffling and ``0..n-1`` otherwise.
    Process ``p`` of ``P`` gets rows ``[p*B/P, (p+1)*B/P)`` of it, so the processes'
    shards, concatenated in process order, are the global batch. A last partial batch
    of ``b`` rows (``drop_remainder=False``) is split at ``p*b//P`` (shards then differ
    in size by at most one row).

    Arguments are checked when the function is called, not at the first ``next``.

    Args:
      dataset: the examples.
      batch_size: the global batch size ``B``; must be divisible by ``process_count``.
      seed: the shuffling seed (non-negative int); required when ``shuffle`` is true.
      epoch: the epoch number; each epoch has its own order.
      shuffle: whether to shuffle (``False``: the data set's order, e.g. for evaluation).
      drop_remainder: drop the last batch when it would be smaller than ``batch_size``.
      process_index: this process's index ``p`` (``jax.process_index()``).
      process_count: the number of processes ``P`` (``jax.process_count()``).
      start_step: the first batch to yield; the earlier ones are skipped without being
        built, so a run stopped after ``k`` steps of this epoch resumes with
        ``start_step=k``.

    Returns:
      An iterator of dicts with the data set's names and ``B/P`` rows in each array.

    Raises:
      ValueError: for a batch size below 1, not divisible by ``process_count``, or
        larger than the data set with ``drop_remainder``; a ``start_step`` beyond the
        epoch; a missing seed; a bad process index.

    Examples:
      >>> import numpy as np
      >>> ds = ArrayDataset({"x": np.arange(10)})
      >>> [b["x"].tolist() for b in batches(ds, 4, shuffle=False)]
      [[0, 1, 2, 3], [4, 5, 6, 7]]
      >>> [b["x"].tolist() for b in batches(ds, 4, shuffle=False, drop_remainder=False,
      ...                                   process_index=1, process_count=2)]
      [[2, 3], [6, 7], [9]]
      >>> full = [b["x"] for b in batches(ds, 2, seed=0, epoch=3)]
      >>> resumed = [b["x"] for b in batches(ds, 2, seed=0, epoch=3, start_step=2)]
      >>> all(np.array_equal(a, b) for a, b in zip(full[2:], resumed, strict=True))
      True
    """
    if not isinstance(dataset, ArrayDataset):
        raise TypeError(f"dataset must be an ArrayDataset, got {type(dataset).__name__}")
    n = len(dataset)
    batch_size, process_index, process_count = check_process_batch(
        batch_size, process_index, process_count
    )
    if drop_remainder and batch_size > n:
        raise ValueError(
            f"batch_size={batch_size} exceeds the data set's {n} examples, so "
            "drop_remainder=True would yield no batch; lower batch_size or pass "
            "drop_remainder=False"
        )
    epoch = check_int(epoch, "epoch", 0)
    if shuffle:
        if seed is None:
            raise ValueError(
                "batches(shuffle=True) needs a seed: pass seed=<int> (the same on every "
                "process), or shuffle=False to keep the data set's order"
            )
        seed = check_int(seed, "seed", 0)
    steps = num_batches(n, batch_size, drop_remainder=drop_remainder)
    start_step = check_int(start_step, "start_step", 0)
    if start_step > steps:
        raise ValueError(
            f"start_step must be <= the {steps} batches of an epoch, got start_step={start_step}"
        )
    order = epoch_order(n, seed=seed, epoch=epoch) if shuffle else None
    return _batches(dataset, batch_size, order, steps, start_step, process_index, process_count)


def _batches(dataset, batch_size, order, steps, start_step, process_index, process_count):
    n = len(dataset)
    for step in range(start_step, steps):
        begin = step * batch_size
        size = min(batch_size, n - begin)
        lo = begin + process_index * size // process_count
        hi = begin + (process_index + 1) * size // process_count
        rows = np.arange(lo, hi) if order is None else order[lo:hi]
        yield dataset.take(rows)


def num_lm_batches(num_tokens: int, batch_size: int, seq_len: int) -> int:
    """Number of batches :func:`lm_batches` yields for a corpus of ``num_tokens`` tokens.

    Returns:
      ``(num_tokens // batch_size - 1) // seq_len``.

    Examples:
      >>> num_lm_batches(100, 4, 6)
      4
    """
    num_tokens = check_int(num_tokens, "num_tokens", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    seq_len = check_int(seq_len, "seq_len", 1)
    return max(num_tokens // batch_size - 1, 0) // seq_len


def lm_batches(
    tokens: np.ndarray,
    batch_size: int,
    seq_len: int,
    *,
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields language-modelling batches in the contiguous (stateful RNN) layout.

    The corpus is cut into ``B = batch_size`` streams of ``S = len(tokens) // B``
    consecutive tokens (the last ``len(tokens) % B`` tokens are dropped): stream ``b``
    is ``tokens[b*S:(b+1)*S]``. Batch ``i`` is the window ``[i*L, (i+1)*L)`` of every
    stream, ``L = seq_len``::

        inputs[b, t]  = tokens[b*S + i*L + t]
        targets[b, t] = tokens[b*S + i*L + t + 1]

    for ``(S - 1) // L`` batches. Row ``b`` of batch ``i + 1`` continues row ``b`` of
    batch ``i``, so the hidden state at the end of one batch is the right initial
    state for the next. Process ``p`` of ``P`` gets streams ``[p*B/P, (p+1)*B/P)``.

    Args:
      tokens: the corpus, a 1-D integer array.
      batch_size: the global number of streams ``B``; divisible by ``process_count``.
      seq_len: the window length ``L`` (truncated-BPTT length).
      start_step: the first batch to yield (to resume in the middle of an epoch).
      process_index: this process's index.
      process_count: the number of processes.

    Returns:
      An iterator of ``{"inputs": (B/P, L) int32, "targets": (B/P, L) int32}``.

    Raises:
      ValueError: for a non-1-D or non-integer ``tokens``, a bad size, a corpus shorter
        than ``batch_size * (seq_len + 1)`` tokens, or a ``start_step`` beyond the epoch.

    Examples:
      >>> import numpy as np
      >>> it = lm_batches(np.arange(20, dtype=np.int32), batch_size=2, seq_len=3)
      >>> first = next(it)
      >>> first["inputs"].tolist(), first["targets"].tolist()
      ([[0, 1, 2], [10, 11, 12]], [[1, 2, 3], [11, 12, 13]])
      >>> next(it)["inputs"].tolist()
      [[3, 4, 5], [13, 14, 15]]
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(
            f"tokens must be a 1-D integer array, got shape {tokens.shape} and dtype {tokens.dtype}"
        )
    if tokens.size and (tokens.min() < 0 or tokens.max() > np.iinfo(np.int32).max):
        raise ValueError(
            f"tokens must be in [0, 2**31), got values in [{tokens.min()}, {tokens.max()}]"
        )
    batch_size, process_index, process_count = check_process_batch(
        batch_size, process_index, process_count
    )
    seq_len = check_int(seq_len, "seq_len", 1)
    steps = num_lm_batches(len(tokens), batch_size, seq_len)
    if steps == 0:
        raise ValueError(
            f"tokens has {len(tokens)} tokens, too few for batch_size={batch_size} and "
            f"seq_len={seq_len}: need at least batch_size * (seq_len + 1) = "
            f"{batch_size * (seq_len + 1)}"
        )
    start_step = check_int(start_step, "start_step", 0)
    if start_step > steps:
        raise ValueError(
            f"start_step must be <= the {steps} batches of an epoch, got start_step={start_step}"
        )
    stream_len = len(tokens) // batch_size
    streams = tokens[: batch_size * stream_len].reshape(batch_size, stream_len)
    per_process = batch_size // process_count
    mine = streams[process_index * per_process : (process_index + 1) * per_process]
    return _lm_batches(mine, seq_len, start_step, steps)


def _lm_batches(streams, seq_len, start_step, steps):
    for step in range(start_step, steps):
        begin = step * seq_len
        yield {
            "inputs": streams[:, begin : begin + seq_len].astype(np.int32),
            "targets": streams[:, begin + 1 : begin + seq_len + 1].astype(np.int32),
        }
