"""Argument checks for the data package (numpy only; messages name the argument and value)."""

from __future__ import annotations

import numpy as np


def check_int(name: str, value, minimum: int | None = None) -> int:
    """Returns ``value`` as an ``int`` after checking its type and lower bound."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value!r}")
    return int(value)


def check_process(process_index, process_count) -> tuple[int, int]:
    """Checks ``0 <= process_index < process_count``."""
    process_count = check_int("process_count", process_count, 1)
    process_index = check_int("process_index", process_index, 0)
    if process_index >= process_count:
        raise ValueError(
            f"process_index must be < process_count, got process_index={process_index} "
            f"with process_count={process_count}"
        )
    return process_index, process_count
