"""Attention with dropout: fused, memory-light, the same mask bits in every implementation.

:func:`dot_product_attention` takes Flax's and JAX's shapes (``(*batch, length, heads,
head_dim)``) and applies dropout to the attention weights with jdrop's counter-based
masks: the keep bit of weight ``(b, h, i, j)`` is a keyed hash of its position, so the
explicit reference (``"xla"``), the memory-light ``"blockwise"`` path and the ``"pallas"``
flash-attention kernel draw identical masks, under any sharding. :func:`keep_mask_block`
gives the mask of any tile of the weights array.
"""

from jdrop.attention._api import dot_product_attention as dot_product_attention
from jdrop.attention._common import IMPLEMENTATIONS as IMPLEMENTATIONS
from jdrop.attention._common import VARIANTS as VARIANTS
from jdrop.attention._masks import keep_mask_block as keep_mask_block

__all__ = ["IMPLEMENTATIONS", "VARIANTS", "dot_product_attention", "keep_mask_block"]
