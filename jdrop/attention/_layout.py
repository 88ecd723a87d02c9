"""Where each attention-weight element's mask bits come from: its position ``(b, h, i, j)``.

The dropout mask of the weights array ``(*batch, heads, q_len, kv_len)`` is
``jdrop.keep_mask(dropout_key, mask_shape, rate)``, broadcast, where ``mask_shape`` is the
weights' shape with a 1 on every broadcast axis. Its bits are a keyed hash of each
element's row-major linear index, split in two 32-bit words ``(lo, hi)`` exactly as the
generator splits it (``lo`` over the longest suffix of axes with at most ``2**32``
elements). A :class:`MaskLayout` holds, per axis, which word it counts in and its stride,
so the bits of any block at any offsets are computed without the rest of the array: the
same bits whatever the block sizes, the loop order, the kernel or the sharding.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from jdrop._masks import counter_bits, counter_split

__all__ = ["MaskLayout", "block_keep"]

_TWO_32 = 2**32


@dataclasses.dataclass(frozen=True)
class MaskLayout:
    """Static description of the mask counters of a ``(*batch, H, Lq, Lk)`` weights array.

    Attributes:
      batch_shape: the leading batch axes (the computation flattens them into one).
      mask_shape: the weights' shape with 1 on broadcast axes.
      split: the first axis counted in the low word (axes before it count in ``hi``).
    """

    batch_shape: tuple[int, ...]
    mask_shape: tuple[int, ...]
    split: int

    @classmethod
    def create(cls, weights_shape, broadcast_dims) -> MaskLayout:
        shape = tuple(int(d) for d in weights_shape)
        mask_shape = tuple(1 if a in broadcast_dims else d for a, d in enumerate(shape))
        return cls(shape[:-3], mask_shape, counter_split(mask_shape))

    def _stride(self, axis: int) -> tuple[int, int]:
        """(word, stride): word 0 is ``lo``, 1 is ``hi``; stride 0 on broadcast axes."""
        if self.mask_shape[axis] == 1:
            return 0, 0
        end = len(self.mask_shape) if axis >= self.split else self.split
        return (0 if axis >= self.split else 1), math.prod(self.mask_shape[axis + 1:end])

    @property
    def has_hi(self) -> bool:
        return self.split > 0

    def terms(self, num_heads: int) -> np.ndarray:
        """``uint32[B, H, 2]``: the (lo, hi) counter terms of batch element b and head h."""
        n = len(self.mask_shape)
        batch_size = math.prod(self.batch_shape)
        terms = np.zeros((batch_size, num_heads, 2), np.uint64)
        if self.batch_shape:
            index = np.unravel_index(np.arange(batch_size), self.batch_shape)
            for axis, position in enumerate(index):
                word, stride = self._stride(axis)
                terms[:, :, word] += (position.astype(np.uint64) * np.uint64(stride))[:, None]
        word, stride = self._stride(n - 3)
        terms[:, :, word] += np.arange(num_heads, dtype=np.uint64)[None, :] * np.uint64(stride)
        return (terms % np.uint64(_TWO_32)).astype(np.uint32)

    def q_stride(self) -> tuple[int, int]:
        return self._stride(len(self.mask_shape) - 2)

    def kv_stride(self) -> tuple[int, int]:
        return self._stride(len(self.mask_shape) - 1)


def _add_position(lo, hi, pos, word: int, stride: int):
    """Adds ``pos * stride`` to counter word ``word`` (0: ``lo``, 1: ``hi``); no-op at stride 0."""
    if not stride:
        return lo, hi
    term = pos * np.uint32(stride)
    return (lo + term, hi) if word == 0 else (lo, hi + term)


def block_keep(layout: MaskLayout, row_lo, row_hi, words, threshold, live, q_pos, kv_pos):
    """Keep bits of a block: (b, h) rows x ``q_pos`` x ``kv_pos``.

    Args:
      layout: the weights' :class:`MaskLayout`.
      row_lo, row_hi: the ``lo`` and ``hi`` counter terms of the block's (b, h) rows (see
        :meth:`MaskLayout.terms`): ``uint32[B, H]`` arrays, or scalars for one row.
      words, threshold, live: the generator's key words (an array or a pair of scalars),
        drop threshold and live flag (:class:`jdrop._masks.MaskPlan`).
      q_pos: global query positions of the block, ``int32[bq]``.
      kv_pos: global key positions of the block, ``int32[bk]``.

    Returns:
      ``bool[*row_shape, bq, bk]``: ``True`` where kept.
    """
    lo = jnp.expand_dims(row_lo, (-2, -1))
    hi = jnp.expand_dims(row_hi, (-2, -1))
    q = q_pos.astype(jnp.uint32)[:, None]
    k = kv_pos.astype(jnp.uint32)[None, :]
    lo, hi = _add_position(lo, hi, q, *layout.q_stride())
    lo, hi = _add_position(lo, hi, k, *layout.kv_stride())
    shape = jnp.broadcast_shapes(jnp.shape(row_lo) + (1, 1), (q_pos.shape[0], kv_pos.shape[0]))
    lo = jnp.broadcast_to(lo, shape)
    hi = jnp.broadcast_to(hi, shape) if layout.has_hi else None
    return (counter_bits(words, lo, hi) >= threshold) & live

