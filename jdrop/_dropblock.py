"""DropBlock: dropout of contiguous regions of convolutional feature maps.

Block seeds are drawn with probability ``gamma`` over the positions where a whole block
fits (``d`` spatial axes), and every seed is grown into a ``block_size**d`` block (a
max-pool of the seeds). A position covered by ``n(p)`` possible seeds is dropped with
probability ``1 - (1 - gamma)**n(p)``, so ``gamma`` is solved (bisection) from

    mean_p (1 - gamma)**n(p) = 1 - rate,

which makes the expected dropped fraction exactly ``rate``, block overlaps and borders
included, for every ``rate`` in ``[0, 1]`` (``rate == 1`` drops everything, concrete or
traced). The paper's closed form ``rate / block_size**d * prod size / prod (size -
block_size + 1)`` (:func:`dropblock_seed_rate`) ignores overlaps and drops less (0.39
for a target 0.5 on 16 x 16 maps with 3 x 3 blocks). The kept activations are rescaled by
the realised keep fraction of each example:

    y = x * M * count(M) / sum(M).

Each channel has its own blocks (the paper's default). A per-example normalisation
keeps the op local to a batch shard (no cross-device reduction).

References:
  Ghiasi, Lin, Le. "DropBlock: A regularization method for convolutional networks".
  NeurIPS 2018.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._dropout import spatial_axes
from jdrop._masks import compute_dtype, keep_mask, maskless_output
from jdrop._validation import (
    check_float_array,
    concrete_rate,
    is_concrete,
    normalize_axis,
    poison_invalid_rate,
)

__all__ = ["dropblock", "dropblock_gamma", "dropblock_seed_rate"]

_BISECTION_STEPS = 40


def _coverage(spatial_shape, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``n(p)`` (valid seeds whose block covers ``p``) and their frequencies."""
    per_axis = []
    for size in spatial_shape:
        p = np.arange(size)
        per_axis.append(np.minimum(p, size - block_size) - np.maximum(0, p - block_size + 1) + 1)
    counts = functools.reduce(np.multiply.outer, per_axis).ravel()
    values, freq = np.unique(counts, return_counts=True)
    return values.astype(np.float64), freq / counts.size


def dropblock_gamma(rate, spatial_shape, block_size: int):
    r"""The seed probability whose blocks drop exactly ``rate`` of a map in expectation.

    Solves :math:`\frac{1}{|I|} \sum_{i \in I} (1 - \gamma)^{n(i)} = 1 - p` for
    :math:`\gamma` by bisection, where :math:`n(i)` is the number of valid seeds whose block
    covers position :math:`i` (see :func:`dropblock`); a Python float for a concrete
    ``rate``, a float32 array for a traced one.

    Examples:
      >>> round(dropblock_gamma(0.5, (16, 16), 3), 4)
      0.1011
      >>> dropblock_gamma(1.0, (16, 16), 3)
      1.0
    """
    values, freq = _coverage(spatial_shape, block_size)
    if is_concrete(rate):
        target = 1.0 - float(rate)
        lo, hi = 0.0, 1.0  # bisection on q = 1 - gamma: mean q**n is increasing in q
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if float(np.sum(freq * mid**values)) < target else (lo, mid)
        return 1.0 if rate >= 1 else 1.0 - 0.5 * (lo + hi)
    rate32 = jax.lax.stop_gradient(jnp.asarray(rate)).astype(jnp.float32)
    values32, freq32 = jnp.asarray(values, jnp.float32), jnp.asarray(freq, jnp.float32)

    def step(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = jnp.sum(freq32 * mid**values32) < 1 - rate32
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _BISECTION_STEPS, step,
                               (jnp.float32(0), jnp.float32(1)))
    return jnp.where(rate32 >= 1, jnp.float32(1), jnp.clip(1 - 0.5 * (lo + hi), 0, 1))


def dropblock_seed_rate(rate, spatial_shape, block_size: int):
    r"""The paper's closed-form :math:`\gamma` (ignores block overlaps: drops less than ``rate``).

    .. math::

       \gamma = \frac{p}{b^d} \prod_{k=1}^{d} \frac{s_k}{s_k - b + 1}

    for spatial sizes :math:`s_k` and block side :math:`b` (Ghiasi et al. 2018, eq. 1).

    Kept for reference and comparison; :func:`dropblock` uses :func:`dropblock_gamma`.
    """
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
    r"""Drops ``block_size x block_size`` regions of each feature map.

    Block seeds are drawn with probability :math:`\gamma` (solved by bisection) at the
    positions where a whole block of side :math:`b` = ``block_size`` fits, independently per
    example and channel; each seed is grown into a :math:`b^d` block (:math:`d` spatial axes)
    and the block union is the drop mask :math:`1 - M`. A position :math:`i` covered by
    :math:`n(i)` possible seeds is dropped with probability :math:`1 - (1 - \gamma)^{n(i)}`,
    and :math:`\gamma` solves

    .. math::

       \frac{1}{|I|} \sum_{i \in I} (1 - \gamma)^{n(i)} = 1 - p

    (:math:`p` = ``rate``, :math:`I` the positions of a map), so the expected dropped
    fraction is exactly :math:`p`, block overlaps and borders included. The kept activations
    are rescaled by the realised keep fraction of each example:

    .. math::

       y = x \odot M \, \frac{\operatorname{count}(M)}{\sum M}.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: ``(batch, *spatial, channels)`` floating-point array, 1 to 3 spatial axes.
      rate: the expected fraction of dropped activations, in ``[0, 1]`` (exact in
        expectation, overlaps and borders included; a traced rate that is NaN or outside
        ``[0, 1]`` gives NaN everywhere).
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
    if (not isinstance(block_size, int | np.integer) or isinstance(block_size, bool)
            or block_size < 1):
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
    gamma = dropblock_gamma(rate, spatial_shape, block_size)
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
