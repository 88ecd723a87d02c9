"""SpecAugment's time and frequency masking: structured dropout on a spectrogram.

For every example, ``num_time_masks`` bands of ``w ~ U{0, ..., max_time_width}``
consecutive frames, starting at ``s ~ U{0, ..., T - w}``, and ``num_freq_masks`` bands of
``U{0, ..., max_freq_width}`` consecutive channels are set to ``mask_value`` (Park et al.
2019, policies LB/LD; time warping is not included). Unlike dropout, nothing is rescaled:
the masked spectrogram is a plausible input, and inference uses the input unchanged.

The draws come from jdrop's counter-based generator (:func:`jdrop.uniform`), so masks are
a function of the key and the position only, like every jdrop mask.

References:
  Park, D. S., Chan, W., Zhang, Y., Chiu, C.-C., Zoph, B., Cubuk, E. D. and Le, Q. V.
  "SpecAugment: A Simple Data Augmentation Method for Automatic Speech Recognition".
  Interspeech 2019.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._keys import as_key
from jdrop._masks import uniform
from jdrop._validation import check_float_array, normalize_axes, normalize_axis, require_key

__all__ = ["spec_augment", "spec_augment_mask"]


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {name}={value!r}")
    return int(value)


def _bands(key, shape, axis: int, draw_shape, num: int, max_width: int) -> jax.Array:
    """Boolean mask, True inside any of ``num`` random bands along ``axis``."""
    length = shape[axis]
    max_width = min(max_width, length)
    if num == 0 or max_width == 0:
        return jnp.zeros(draw_shape, bool)
    u = uniform(key, (2, num, *draw_shape))
    width = jnp.floor(u[0] * (max_width + 1)).astype(jnp.int32)
    start = jnp.floor(u[1] * (length - width + 1).astype(jnp.float32)).astype(jnp.int32)
    pos_shape = [1] * len(shape)
    pos_shape[axis] = length
    pos = jax.lax.broadcasted_iota(jnp.int32, tuple(pos_shape), axis)
    inside = (pos >= start) & (pos < start + width)  # (num, ..., length along axis, ...)
    return inside.any(axis=0)


def spec_augment_mask(
    key,
    shape: Sequence[int],
    *,
    num_time_masks: int = 2,
    max_time_width: int = 10,
    num_freq_masks: int = 2,
    max_freq_width: int = 8,
    time_axis: int = -2,
    freq_axis: int = -1,
    broadcast_dims: Sequence[int] = (),
) -> jax.Array:
    """The boolean SpecAugment mask (``True`` = masked) for an input of ``shape``.

    Args and Raises: as :func:`spec_augment`.

    Returns:
      A ``bool`` array broadcastable to ``shape`` (size 1 along ``broadcast_dims``).

    Examples:
      >>> import jax
      >>> m = spec_augment_mask(jax.random.key(0), (4, 50, 32), num_time_masks=1,
      ...                       max_time_width=5, num_freq_masks=0, max_freq_width=0)
      >>> m.shape, bool((m.all(axis=-1) | ~m.any(axis=-1)).all())   # whole frames
      ((4, 50, 32), True)
    """
    shape = tuple(int(d) for d in shape)
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"spec_augment needs at least 2 axes (time, freq), got shape {shape}")
    t_ax = normalize_axis(time_axis, ndim, "time_axis")
    f_ax = normalize_axis(freq_axis, ndim, "freq_axis")
    if t_ax == f_ax:
        raise ValueError(f"time_axis and freq_axis must differ, got both = {t_ax}")
    bdims = normalize_axes(broadcast_dims, ndim, "broadcast_dims")
    if t_ax in bdims or f_ax in bdims:
        raise ValueError(
            f"broadcast_dims={tuple(broadcast_dims)} must not hold the time or freq axis"
        )
    num_time_masks = _count(num_time_masks, "num_time_masks")
    max_time_width = _count(max_time_width, "max_time_width")
    num_freq_masks = _count(num_freq_masks, "num_freq_masks")
    max_freq_width = _count(max_freq_width, "max_freq_width")
    key = as_key(key)
    draw_shape = tuple(1 if a in bdims or a in (t_ax, f_ax) else d for a, d in enumerate(shape))
    time_key, freq_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    masked = _bands(time_key, shape, t_ax, draw_shape, num_time_masks, max_time_width)
    masked = masked | _bands(freq_key, shape, f_ax, draw_shape, num_freq_masks, max_freq_width)
    return jnp.broadcast_to(
        masked, tuple(1 if a in bdims else d for a, d in enumerate(shape))
    )


def spec_augment(
    key,
    x,
    *,
    num_time_masks: int = 2,
    max_time_width: int = 10,
    num_freq_masks: int = 2,
    max_freq_width: int = 8,
    time_axis: int = -2,
    freq_axis: int = -1,
    broadcast_dims: Sequence[int] = (),
    mask_value: float = 0.0,
    deterministic: bool = False,
) -> jax.Array:
    """SpecAugment time and frequency masking of spectrograms ``x`` (``(..., T, F)``).

    Every index of the axes other than ``time_axis`` and ``freq_axis`` (e.g. the batch)
    gets its own masks, except ``broadcast_dims``, which share one (e.g. a channel axis).
    Band widths are drawn uniformly from ``0 .. max_width`` (clipped to the axis length),
    start positions uniformly among those that fit; masked entries become ``mask_value``
    (0 for normalised features, Park et al.'s choice).

    Args:
      key: PRNG key (``None`` allowed when ``deterministic``).
      x: floating-point spectrograms.
      num_time_masks: time bands per example (``>= 0``).
      max_time_width: largest time band, in frames (``>= 0``).
      num_freq_masks: frequency bands per example (``>= 0``).
      max_freq_width: largest frequency band, in channels (``>= 0``).
      time_axis: the time axis (default ``-2``).
      freq_axis: the frequency axis (default ``-1``).
      broadcast_dims: other axes that share one mask.
      mask_value: the value written into masked entries.
      deterministic: inference: return ``x`` unchanged.

    Returns:
      An array like ``x`` (same shape and dtype).

    Raises:
      TypeError: ``x`` not floating point.
      ValueError: a negative or non-int count or width (the message names it), bad axes,
        or a missing ``key`` while not deterministic.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.ones((8, 40, 20))
      >>> y = spec_augment(jax.random.key(0), x, num_time_masks=1, max_time_width=10,
      ...                  num_freq_masks=1, max_freq_width=5)
      >>> y.shape, y.dtype, bool((y <= x).all())
      ((8, 40, 20), dtype('float32'), True)
      >>> bool((spec_augment(None, x, deterministic=True) == x).all())
      True

    References:
      Park et al. "SpecAugment: A Simple Data Augmentation Method for Automatic Speech
      Recognition". Interspeech 2019.
    """
    x = check_float_array(x)
    for name, value in (
        ("num_time_masks", num_time_masks), ("max_time_width", max_time_width),
        ("num_freq_masks", num_freq_masks), ("max_freq_width", max_freq_width),
    ):
        _count(value, name)
    if deterministic:
        return x
    require_key(key, deterministic, "spec_augment")
    masked = spec_augment_mask(
        key, x.shape, num_time_masks=num_time_masks, max_time_width=max_time_width,
        num_freq_masks=num_freq_masks, max_freq_width=max_freq_width, time_axis=time_axis,
        freq_axis=freq_axis, broadcast_dims=broadcast_dims,
    )
    return jnp.where(masked, jnp.asarray(mask_value, x.dtype), x)
