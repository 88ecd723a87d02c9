"""DropBlock: dropout of contiguous regions of convolutional feature maps.

Block seeds are drawn with probability

    gamma = rate / block_size**d * prod_i size_i / prod_i (size_i - block_size + 1)

over the positions where a whole block fits (``d`` spatial axes), every seed is grown
into a ``block_size**d`` block (a max-pool of the seeds), and the kept activations are
rescaled by the realised keep fraction of each example:

    y = x * M * count(M) / sum(M).

Each channel has its own blocks (the paper's default). A per-example normalisation
keeps the op local to a batch shard (no cross-device reduction).

References:
  Ghiasi, Lin, Le. "DropBlock: A regularization method for convolutional networks".
  NeurIPS 2018.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._dropout import spatial_axes
from jdrop._masks import compute_dtype, keep_mask, maskless_output
from jdrop._validation import (
    check_float_array,
    concrete_rate,
    normalize_axis,
    poison_invalid_rate,
)

__all__ = ["dropblock", "dropblock_seed_rate"]


def dropblock_seed_rate(rate, spatial_shape, block_size: int):
    """``gamma``, the per-position seed probability that drops about ``rate`` of a map."""
    valid = math.prod(s - block_size + 1 for s in spatial_shape)
    return rate / block_size ** len(spatial_shape) * math.prod(spatial_shape) / valid


def dropblock(
    key,
    x,
    rate,
    *,
    block_size: int = 7,
    channel_axis: int = -1,
    batch_axis: int = 0,
    deterministic: bool = False,
    impl: str = "counter",
) -> jax.Array:
    """Drops ``block_size x block_size`` regions of each feature map (see module docstring).

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: ``(batch, *spatial, channels)`` floating-point array, 1 to 3 spatial axes.
      rate: the target fraction of dropped activations, in ``[0, 1]``.
      block_size: side of a block; at most the smallest spatial size.
      channel_axis: the channel axis (default last).
      batch_axis: the batch axis.
      deterministic: return ``x`` unchanged (inference).
      impl: mask generator, see :func:`jdrop.keep_mask`.

    Returns:
      An array like ``x``.

    Raises:
      ValueError: bad ``rate``, ``block_size`` < 1 or larger than a spatial axis, no
        spatial axis, missing key.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = dropblock(jax.random.key(0), jnp.ones((8, 16, 16, 4)), 0.2, block_size=3)
      >>> y.shape, round(float((y == 0).mean()), 1)
      ((8, 16, 16, 4), 0.2)

    References:
      Ghiasi, Lin, Le. "DropBlock". NeurIPS 2018.
    """
    x = check_float_array(x)
    rate_value = concrete_rate(rate)
    if not isinstance(block_size, int | np.integer) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got block_size={block_size!r}")
    if x.ndim < 3:
        raise ValueError(
            f"dropblock expects (batch, *spatial, channels), got x.ndim={x.ndim} ({x.shape})"
        )
    if batch_axis is None:
        raise TypeError(
            "dropblock normalises per example and needs a batch axis: batch_axis must be an "
            "int, got batch_axis=None (add one with x[None] for a single example)"
        )
    batch_axis = normalize_axis(batch_axis, x.ndim, "batch_axis")
    axes = spatial_axes(x.ndim, channel_axis, batch_axis)
    spatial_shape = tuple(x.shape[a] for a in axes)
    if block_size > min(spatial_shape):
        raise ValueError(
            f"block_size={block_size} exceeds the spatial shape {spatial_shape} of x"
        )
    out = maskless_output(key, x, rate_value, deterministic=deterministic, function="dropblock")
    if out is not None:
        return out
    if rate_value is not None:
        gamma = min(dropblock_seed_rate(rate_value, spatial_shape, block_size), 1.0)
    else:
        rate32 = jax.lax.stop_gradient(jnp.asarray(rate)).astype(jnp.float32)
        gamma = jnp.clip(dropblock_seed_rate(rate32, spatial_shape, block_size), 0.0, 1.0)
    seeds = ~keep_mask(key, x.shape, gamma, impl=impl)
    for axis in axes:  # a seed only where the whole block fits
        position = jax.lax.broadcasted_iota(jnp.int32, x.shape, axis)
        seeds &= position <= x.shape[axis] - block_size
    window = tuple(block_size if a in axes else 1 for a in range(x.ndim))
    padding = tuple((block_size - 1, 0) if a in axes else (0, 0) for a in range(x.ndim))
    blocked = jax.lax.reduce_window(seeds, False, jax.lax.bitwise_or, window, (1,) * x.ndim,
                                    padding)
    keep = ~blocked
    reduce_axes = tuple(a for a in range(x.ndim) if a != batch_axis % x.ndim)
    dtype = compute_dtype(x.dtype)
    kept = jnp.sum(keep, axis=reduce_axes, keepdims=True, dtype=jnp.float32).astype(dtype)
    total = np.asarray(math.prod(x.shape[a] for a in reduce_axes), dtype)
    scale = total / jnp.maximum(kept, np.asarray(1, dtype))
    y = jnp.where(keep, (x.astype(dtype) * scale).astype(x.dtype), jnp.zeros((), x.dtype))
    return poison_invalid_rate(y, rate)
