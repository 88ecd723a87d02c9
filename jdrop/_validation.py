"""Argument validation shared by every dropout function (messages name the argument and value)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(value) -> bool:
    """True when ``value`` is a Python number or a concrete (non-traced) array."""
    return not isinstance(value, jax.core.Tracer)


def concrete_rate(rate, name: str = "rate", *, allow_one: bool = True) -> float | None:
    """Returns ``rate`` as a Python float after checking it, or ``None`` when it is traced.

    Raises:
      ValueError: if a concrete ``rate`` is NaN or outside ``[0, 1]`` (``[0, 1)`` when
        ``allow_one`` is false).
    """
    if not is_concrete(rate):
        return None
    array = np.asarray(rate)
    if array.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {array.shape}")
    value = float(array)
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if math.isnan(value) or value < 0.0 or not upper_ok:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {name}={rate!r}")
    return value


def check_float_array(x, name: str = "x") -> jax.Array:
    """Returns ``x`` as a JAX array, raising ``TypeError`` unless it has a floating dtype."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name} must have a floating dtype (float32, bfloat16, float16, ...), got "
            f"{name}.dtype={x.dtype}"
        )
    return x


def normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Normalises a possibly negative axis, raising ``ValueError`` when out of range."""
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise TypeError(f"{name} must be an int, got {name}={axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an input with x.ndim={ndim}")
    return int(axis) % ndim


def normalize_axes(axes: Sequence[int] | int, ndim: int, name: str) -> tuple[int, ...]:
    """Normalises a tuple of axes (duplicates are an error)."""
    if isinstance(axes, int | np.integer):
        axes = (axes,)
    out = tuple(normalize_axis(a, ndim, name) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has repeated axes: {name}={tuple(axes)}")
    return out


def require_key(key, deterministic: bool, function: str):
    """Raises a ``ValueError`` that says what to pass when a key is needed but missing."""
    if key is None and not deterministic:
        raise ValueError(
            f"{function} needs a PRNG key while training: pass key=jax.random.key(seed) "
            "(or a key split from one), or set deterministic=True for inference."
        )
