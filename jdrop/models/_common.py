"""Small helpers shared by the jdrop models (per-layer settings, optional dropout layers)."""

from __future__ import annotations

from collections.abc import Sequence

from jdrop._validation import check_choice
from jdrop.nn._layers import Dropout, SpatialDropout

__all__ = ["DROPOUT_KINDS", "call_optional", "optional_dropout", "per_layer"]

DROPOUT_KINDS = ("standard", "spatial")


def per_layer(value, n: int, name: str) -> tuple:
    """``value`` repeated ``n`` times, or ``value`` itself when it is a length-``n`` sequence.

    Examples:
      >>> per_layer(0.5, 2, "rate"), per_layer((1, 2), 2, "width")
      ((0.5, 0.5), (1, 2))
    """
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n:
            raise ValueError(f"{name} needs {n} entries (one per layer), got {name}={value!r}")
        return tuple(value)
    return (value,) * n


def optional_dropout(rate: float, kind: str = "standard", name: str = "kind"):
    """A :class:`Dropout` (``"standard"``) or :class:`SpatialDropout` (``"spatial"``) layer,
    or ``None`` when ``rate == 0`` (no key is spent on it)."""
    check_choice(kind, name, DROPOUT_KINDS)
    layer = Dropout(rate) if kind == "standard" else SpatialDropout(rate)
    return layer if layer.rate > 0 else None


def call_optional(layer, x, key, deterministic: bool):
    """``layer(x, key=key, deterministic=deterministic)``, or ``x`` when ``layer`` is ``None``."""
    return x if layer is None else layer(x, key=key, deterministic=deterministic)
