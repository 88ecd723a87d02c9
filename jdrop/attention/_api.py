"""``dot_product_attention`` with dropout: one API over the three implementations."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdrop._validation import poison_invalid_rate

from ._blockwise import blockwise_attention, choose_blocks
from ._common import IMPLEMENTATIONS, canonical, output
from ._reference import reference_attention

__all__ = ["dot_product_attention"]


def dot_product_attention(
    query,
    key,
    value,
    *,
    dropout_key=None,
    rate=0.0,
    bias=None,
    mask=None,
    is_causal: bool = False,
    scale: float | None = None,
    broadcast_dims=(),
    variant: str = "weights",
    deterministic: bool = False,
    implementation: str | None = None,
    block_q: int | None = None,
    block_kv: int | None = None,
):
    r"""Scaled dot-product attention with dropout on the attention weights.

    .. math::

       \mathrm{out} = \frac{M \odot A}{1 - p}\, V, \qquad
       A = \operatorname{softmax}\!\left(s\, Q K^\top + B\right), \quad
       M \sim \mathrm{Bernoulli}(1 - p),

    per batch entry and head, with :math:`s` = ``scale``, :math:`B` = ``bias`` (masked
    logits set to :math:`-\infty`) and :math:`p` = ``rate``: inverted dropout on the
    attention weights :math:`A` (rows are not renormalised, as in every framework). The
    keep bit :math:`M_{bhij}` of weight ``(b, h, i, j)`` is jdrop's counter-based hash of
    its position in the ``(*batch, heads, q_len, kv_len)`` weights array
    (``jdrop.keep_mask(dropout_key, weights_shape, rate)``), so every implementation,
    block order, device count and sharding draws the same mask, and no ``(q, kv)``-sized
    mask is ever stored.

    Implementations (all give the same mask bits):

    * ``"xla"``: explicit weights, the reference; :math:`O(L^2)` memory.
    * ``"blockwise"``: online softmax over ``block_q x block_kv`` tiles (default 512 x 512)
      in plain JAX with a custom VJP that recomputes each tile's scores and mask in the
      backward pass: :math:`O(L d)` memory in both passes, any backend.
    * ``"pallas"``: a flash-attention Pallas kernel hashing the mask in the kernel (GPU
      Triton, TPU Mosaic; CPU runs it in interpret mode, slow: for tests); its backward
      pass is the blockwise one.

    ``implementation=None`` (default) picks ``"blockwise"`` when dropout is active,
    ``"xla"`` when the sequences fit one tile (the same computation), and
    ``jax.nn.dot_product_attention`` (cuDNN flash attention on GPU where it applies) when
    no dropout is applied and no jdrop-only option (``variant``) is in play.

    Variants (``variant``):

    * ``"weights"``: standard attention dropout on the softmax output (Vaswani et al.).
    * ``"dropkey"``: DropKey (Li et al. 2023): the mask drops keys *before* the softmax
      (their logits set to the masked value), so each row renormalises; no rescaling.
    * ``"head"``: DropHead-style (Zhou et al. 2020): one bit per ``(b, h)`` drops a whole
      head's output (scaled by :math:`1 / (1 - p)`); ``broadcast_dims`` adds the query and
      key axes.

    ``broadcast_dims`` are axes of the weights array ``(*batch, heads, q_len, kv_len)``
    (negative allowed) that share one mask value: ``(0, 1)`` for a 4-D weights array is
    Flax's ``broadcast_dropout=True`` (one mask for every example and head).

    Args:
      query: ``(*batch, q_len, heads, head_dim)``.
      key: ``(*batch, kv_len, kv_heads, head_dim)``; ``kv_heads`` divides ``heads``
        (grouped-query attention).
      value: ``(*batch, kv_len, kv_heads, value_dim)``.
      dropout_key: PRNG key for the dropout mask (typed or legacy ``uint32[2]``).
      rate: drop probability in ``[0, 1]`` (Python float or traced scalar). A traced rate
        that is NaN or outside ``[0, 1]`` makes the whole output NaN when dropout is
        applied (wrap with :func:`jdrop.checked` to raise).
      bias: additive logits bias broadcastable to ``(*batch, heads, q_len, kv_len)``.
      mask: boolean, ``True`` where attention is allowed, broadcastable likewise.
      is_causal: apply a causal mask (query ``i`` attends keys ``j <= i``).
      scale: logits scale; default :math:`1 / \sqrt{d}` for ``head_dim`` :math:`d`.
      broadcast_dims: weights axes sharing one mask value.
      variant: ``"weights"``, ``"dropkey"`` or ``"head"``.
      deterministic: no dropout (inference).
      implementation: ``None``, ``"xla"``, ``"blockwise"`` or ``"pallas"``.
      block_q, block_kv: tile sizes of the blockwise and Pallas paths.

    Returns:
      ``(*batch, q_len, heads, value_dim)`` in the inputs' dtype.

    Raises:
      ValueError: bad shapes (the message names the argument), a concrete ``rate``
        outside ``[0, 1]``, an unknown ``implementation`` or ``variant``, or a missing
        ``dropout_key`` when dropout is applied.
      TypeError: non-floating inputs or a non-boolean ``mask``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jdrop.attention import dot_product_attention
      >>> q = k = v = jnp.ones((2, 16, 4, 8))              # (batch, length, heads, dim)
      >>> out = dot_product_attention(q, k, v, dropout_key=jax.random.key(0), rate=0.1)
      >>> out.shape
      (2, 16, 4, 8)
      >>> ref = dot_product_attention(q, k, v, dropout_key=jax.random.key(0), rate=0.1,
      ...                             implementation="xla")
      >>> bool(jnp.allclose(out, ref, atol=1e-5))
      True
      >>> bool(jnp.allclose(dot_product_attention(q, k, v), jax.nn.dot_product_attention(q, k, v)))
      True

    References:
      Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
      Rabe, Staats. "Self-attention Does Not Need O(n^2) Memory". arXiv:2112.05682, 2021.
      Dao, Fu, Ermon, Rudra, Re. "FlashAttention: Fast and Memory-Efficient Exact
      Attention with IO-Awareness". NeurIPS 2022.
      Li et al. "DropKey for Vision Transformer". CVPR 2023.
      Zhou et al. "Scheduled DropHead: A Regularization Method for Transformer Models".
      Findings of EMNLP 2020.
    """
    if implementation not in (None, *IMPLEMENTATIONS):
        raise ValueError(
            f"implementation must be None or one of {IMPLEMENTATIONS}, got "
            f"implementation={implementation!r}"
        )
    problem, q, k, v, bias4, mask4, params = canonical(
        query, key, value, bias=bias, mask=mask, dropout_key=dropout_key, rate=rate,
        is_causal=is_causal, scale=scale, broadcast_dims=broadcast_dims, variant=variant,
        deterministic=deterministic,
    )
    dtype = jnp.asarray(query).dtype
    blocks = choose_blocks(problem, block_q, block_kv)
    if implementation is None:
        if params is None and jnp.ndim(query) in (3, 4):
            return jax.nn.dot_product_attention(
                query, key, value, bias=bias, mask=mask, is_causal=is_causal, scale=scale
            )
        single = blocks.num_q == 1 and blocks.num_kv == 1
        implementation = "xla" if single else "blockwise"
    if implementation == "xla":
        out = reference_attention(problem, q, k, v, bias4, mask4, params)
    elif implementation == "blockwise":
        out = blockwise_attention(problem, blocks, q, k, v, bias4, mask4, params)
    else:
        from ._pallas import pallas_attention

        out = pallas_attention(problem, blocks, q, k, v, bias4, mask4, params)
    out = output(problem, out, dtype)
    return out if params is None else poison_invalid_rate(out, rate)
