"""Interleaved timing helpers shared by the benchmark scripts.

This module does not import JAX at import time, so a benchmark can call
:func:`single_thread_xla_if_asked` before its first ``import jax``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

SINGLE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def threads_from_argv(argv: Sequence[str] | None = None) -> int | None:
    """The value of ``--threads N`` / ``--threads=N`` in ``argv`` (default ``sys.argv``)."""
    argv = sys.argv if argv is None else argv
    for index, arg in enumerate(argv):
        if arg == "--threads" and index + 1 < len(argv):
            return int(argv[index + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return None


def single_thread_xla_if_asked(argv: Sequence[str] | None = None) -> bool:
    """Makes XLA:CPU single-threaded when ``argv`` asks for ``--threads 1``.

    XLA reads ``XLA_FLAGS`` once, when its CPU backend starts, so this must run before JAX
    is first used (a benchmark calls it before ``import jax``). Returns whether it did.
    """
    if threads_from_argv(argv) != 1:
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if SINGLE_THREAD_XLA_FLAGS not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {SINGLE_THREAD_XLA_FLAGS}".strip()
    return True


def block(value):
    """Waits for JAX (or returns torch / numpy) results so that timings are honest."""
    if type(value).__module__.startswith("torch"):
        return value  # PyTorch CPU ops are synchronous
    import jax

    return jax.block_until_ready(value)


def interleaved_medians(
    candidates: dict[str, Callable[[], object]], *, repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Median seconds per call of every candidate, run round-robin so load noise is shared."""
    for fn in candidates.values():
        for _ in range(warmup):
            block(fn())
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            block(fn())
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
