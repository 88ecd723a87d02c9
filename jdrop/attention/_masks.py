"""The attention-dropout mask of any tile of the weights array, from the one generator."""

from __future__ import annotations

import jax.numpy as jnp

from jdrop._masks import mask_plan
from jdrop._validation import concrete_rate, normalize_axes

from ._layout import MaskLayout, block_keep

__all__ = ["keep_mask_block"]


def keep_mask_block(
    dropout_key,
    weights_shape,
    rate,
    *,
    q_offset=0,
    kv_offset=0,
    q_size: int | None = None,
    kv_size: int | None = None,
    broadcast_dims=(),
):
    """The keep mask of the tile ``[..., q_offset:q_offset+q_size, kv_offset:kv_offset+kv_size]``.

    Element ``(b, h, i, j)`` of the attention weights ``(*batch, heads, q_len, kv_len)``
    is kept iff its position's counter-based bits clear the drop threshold: the tile is
    exactly the same slice of ``jdrop.keep_mask(dropout_key, mask_shape, rate)`` (with
    ``mask_shape`` the weights' shape with 1 on ``broadcast_dims``), computed without the
    rest of the array. This is the mask :func:`dot_product_attention` applies, in every
    implementation; a custom kernel can call it per tile with traced offsets.

    Args:
      dropout_key: PRNG key (typed or legacy ``uint32[2]``).
      weights_shape: ``(*batch, heads, q_len, kv_len)`` of the whole weights array.
      rate: drop probability in ``[0, 1]``.
      q_offset, kv_offset: the tile's first query and key position (ints, or traced int32
        scalars).
      q_size, kv_size: the tile's extent (default: to the end of the array).
      broadcast_dims: weights axes sharing one mask value.

    Returns:
      ``bool[*batch, heads, q_size, kv_size]``, ``True`` where kept.

    Raises:
      ValueError: ``weights_shape`` with fewer than 3 axes, a bad ``rate`` or
        ``broadcast_dims``.

    Examples:
      >>> import jax, jdrop
      >>> from jdrop.attention import keep_mask_block
      >>> key = jax.random.key(0)
      >>> full = jdrop.keep_mask(key, (2, 4, 64, 64), 0.1)
      >>> tile = keep_mask_block(key, (2, 4, 64, 64), 0.1, q_offset=16, kv_offset=32,
      ...                        q_size=8, kv_size=16)
      >>> bool((tile == full[:, :, 16:24, 32:48]).all())
      True
    """
    shape = tuple(int(d) for d in weights_shape)
    if len(shape) < 3:
        raise ValueError(
            f"weights_shape must be (*batch, heads, q_len, kv_len), got weights_shape={shape}"
        )
    concrete_rate(rate)
    dims = normalize_axes(broadcast_dims, len(shape), "broadcast_dims")
    layout = MaskLayout.create(shape, dims)
    q_size = shape[-2] - int(q_offset) if q_size is None else int(q_size)
    kv_size = shape[-1] - int(kv_offset) if kv_size is None else int(kv_size)
    plan = mask_plan(dropout_key, rate)
    terms = jnp.asarray(layout.terms(shape[-3]))
    q_pos = q_offset + jnp.arange(q_size, dtype=jnp.int32)
    kv_pos = kv_offset + jnp.arange(kv_size, dtype=jnp.int32)
    keep = block_keep(
        layout, terms[..., 0], terms[..., 1], plan.words, jnp.asarray(plan.threshold, jnp.uint32),
        jnp.asarray(plan.live), q_pos, kv_pos,
    )
    return keep.reshape(shape[:-2] + (q_size, kv_size))
