"""The ``"xla"`` reference: explicit ``(B, H, Lq, Lk)`` weights, masks from ``keep_mask``.

Small inputs and tests. The dropout mask is drawn with :func:`jdrop.keep_mask` over the
whole weights array (broadcast axes of size 1), i.e. the generator itself: the blockwise
and Pallas paths are tested bit for bit against it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdrop._masks import MaskPlan, keep_from_plan

from ._common import DropoutParams, Problem, masked_value

__all__ = ["full_keep", "reference_attention"]


def full_keep(problem: Problem, params: DropoutParams) -> jax.Array:
    """The keep mask of the whole weights array as ``bool[B, H|1, Lq|1, Lk|1]``."""
    mask_shape = problem.layout.mask_shape
    keep = keep_from_plan(MaskPlan(params.words, params.threshold, params.live), mask_shape)
    keep = jnp.broadcast_to(keep, problem.batch_shape + mask_shape[-3:])
    return keep.reshape((problem.batch,) + mask_shape[-3:])


def logits(problem: Problem, q, k, bias, mask, keep_keys=None):
    """Scaled, biased and masked scores ``float32[B, H, Lq, Lk]`` (the softmax input)."""
    s = jnp.einsum("bhqd,bhkd->bhqk", q, k, preferred_element_type=jnp.float32)
    s = s * jnp.float32(problem.scale)
    if bias is not None:
        s = s + bias.astype(jnp.float32)
    allowed = mask
    if problem.is_causal:
        causal = jnp.tril(jnp.ones((problem.q_len, problem.kv_len), bool))
        allowed = causal if allowed is None else allowed & causal
    if keep_keys is not None:
        allowed = keep_keys if allowed is None else allowed & keep_keys
    if allowed is not None:
        s = jnp.where(allowed, s, masked_value())
    return s


def reference_attention(problem: Problem, q, k, v, bias, mask, params):
    """Attention on canonical ``(B, H, L, D)`` inputs with explicit weights."""
    keep = full_keep(problem, params) if params is not None else None
    dropkey = keep is not None and problem.variant == "dropkey"
    s = logits(problem, q, k, bias, mask, keep if dropkey else None)
    p = jax.nn.softmax(s, axis=-1)
    if keep is not None and not dropkey:
        p = jnp.where(keep, p * params.inv_keep, jnp.float32(0))
    return jnp.einsum("bhqk,bhkd->bhqd", p.astype(v.dtype), v, preferred_element_type=jnp.float32)
