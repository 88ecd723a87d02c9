"""The ``"pallas"`` implementation: a flash-attention kernel that hashes its mask in-kernel.

One kernel instance per ``(batch, head, query block)``; it loops over key blocks with the
online softmax of :mod:`jdrop.attention._blockwise` and computes each tile's dropout bits
from the tile's global positions with the same :func:`block_keep` (a few integer
multiply-xorshifts per element, no RNG state, no mask in memory). The backward pass is the
blockwise one (a ``jax.custom_vjp`` over the kernel): it recomputes the same bits.

On GPU Pallas lowers to Triton, on TPU to Mosaic; on CPU the kernel runs in Pallas'
interpret mode (``interpret=True``, chosen automatically), which is slow and meant for
tests. Not measured on an accelerator in this repository yet.

References:
  Dao, Fu, Ermon, Rudra, Re. "FlashAttention: Fast and Memory-Efficient Exact Attention
  with IO-Awareness". NeurIPS 2022.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from ._blockwise import Blocks, with_blockwise_backward
from ._common import Problem, masked_value
from ._layout import block_keep

__all__ = ["pallas_attention"]


def _interpret() -> bool:
    return jax.default_backend() not in ("gpu", "tpu")


def _pad_to(x, axis: int, size: int, value=0):
    if x.shape[axis] == size:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - x.shape[axis])
    return jnp.pad(x, widths, constant_values=value)


def _kernel(problem: Problem, blocks: Blocks, has_bias: bool, has_mask: bool, *refs):
    refs = list(refs)
    seed_ref = refs.pop(0)
    q_ref, k_ref, v_ref = refs.pop(0), refs.pop(0), refs.pop(0)
    bias_ref = refs.pop(0) if has_bias else None
    mask_ref = refs.pop(0) if has_mask else None
    o_ref, m_ref, linv_ref = refs
    bq, bk = blocks.block_q, blocks.block_kv
    qi = pl.program_id(2)
    q = q_ref[...]
    q_pos = qi * bq + jnp.arange(bq, dtype=jnp.int32)
    # Scalars read from the seed row: (lo, hi) counter terms, key words, threshold, live,
    # 1 / (1 - rate) (bit-cast).
    row_lo, row_hi, words = seed_ref[0], seed_ref[1], (seed_ref[2], seed_ref[3])
    threshold, live = seed_ref[4], seed_ref[5] != 0
    inv_keep = jax.lax.bitcast_convert_type(seed_ref[6], jnp.float32)
    dropout = problem.dropout
    dropkey = dropout and problem.variant == "dropkey"
    padded_kv = blocks.num_kv * bk != problem.kv_len

    def body(kj, carry):
        m, norm, acc = carry
        start = pl.multiple_of(kj * bk, bk)
        k = k_ref[pl.ds(start, bk), :]
        v = v_ref[pl.ds(start, bk), :]
        kv_pos = start + jnp.arange(bk, dtype=jnp.int32)
        s = jax.lax.dot_general(
            q, k, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32
        ) * jnp.float32(problem.scale)
        if has_bias:
            s = s + bias_ref[:, pl.ds(start, bk)].astype(jnp.float32)
        allowed = mask_ref[:, pl.ds(start, bk)] != 0 if has_mask else None
        if problem.is_causal:
            causal = q_pos[:, None] >= kv_pos[None, :]
            allowed = causal if allowed is None else allowed & causal
        keep = None
        if dropout:
            keep = block_keep(
                problem.layout, row_lo, row_hi, words, threshold, live, q_pos, kv_pos
            )
            if dropkey:
                allowed = keep if allowed is None else allowed & keep
        if allowed is not None:
            s = jnp.where(allowed, s, masked_value())
        m_new = jnp.maximum(m, s.max(axis=-1))
        corr = jnp.exp(m - m_new)
        p = jnp.exp(s - m_new[:, None])
        if padded_kv:
            p = jnp.where((kv_pos < problem.kv_len)[None, :], p, jnp.float32(0))
        norm = norm * corr + p.sum(axis=-1)
        if dropout and not dropkey:
            p = jnp.where(keep, p * inv_keep, jnp.float32(0))
        pv = jax.lax.dot_general(
            p.astype(v.dtype), v, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32
        )
        return m_new, norm, acc * corr[:, None] + pv

    num_kv = blocks.num_kv
    if problem.is_causal and not has_mask and not dropkey:
        # Tiles entirely above the diagonal contribute nothing: skip them.
        num_kv = jnp.minimum((qi * bq + bq + bk - 1) // bk, blocks.num_kv)
    init = (
        jnp.full((bq,), masked_value(), jnp.float32),
        jnp.zeros((bq,), jnp.float32),
        jnp.zeros((bq, problem.value_dim), jnp.float32),
    )
    m, norm, acc = jax.lax.fori_loop(0, num_kv, body, init)
    linv = 1 / norm
    o_ref[...] = acc * linv[:, None]
    m_ref[...] = m
    linv_ref[...] = linv


def _seeds(problem: Problem, params) -> jax.Array:
    """``uint32[B, H, 8]``: row counter terms, key words, threshold, live, ``1/(1-rate)``."""
    batch, heads = problem.batch, problem.heads
    if params is None:
        return jnp.zeros((batch, heads, 8), jnp.uint32)
    terms = jnp.asarray(problem.layout.terms(heads))
    scalars = jnp.stack([
        params.words[0], params.words[1], params.threshold.astype(jnp.uint32),
        params.live.astype(jnp.uint32),
        jax.lax.bitcast_convert_type(params.inv_keep.astype(jnp.float32), jnp.uint32),
        jnp.uint32(0),
    ])
    return jnp.concatenate([terms, jnp.broadcast_to(scalars, (batch, heads, 6))], axis=-1)


def _forward(problem: Problem, blocks: Blocks, q, k, v, bias, mask, params):
    bq, bk = blocks.block_q, blocks.block_kv
    lq, lk = blocks.num_q * bq, blocks.num_kv * bk
    batch, heads = q.shape[:2]
    q_p, k_p, v_p = _pad_to(q, 2, lq), _pad_to(k, 2, lk), _pad_to(v, 2, lk)
    args = [_seeds(problem, params), q_p, k_p, v_p]
    in_specs = [
        pl.BlockSpec((None, None, 8), lambda b, h, i: (b, h, 0)),
        pl.BlockSpec((None, None, bq, problem.head_dim), lambda b, h, i: (b, h, i, 0)),
        pl.BlockSpec((None, None, lk, problem.head_dim), lambda b, h, i: (b, h, 0, 0)),
        pl.BlockSpec((None, None, lk, problem.value_dim), lambda b, h, i: (b, h, 0, 0)),
    ]
    for extra in (bias, mask):
        if extra is None:
            continue
        if extra.dtype == jnp.bool_:
            extra = extra.astype(jnp.int8)
        full = jnp.broadcast_to(extra, extra.shape[:2] + (problem.q_len, problem.kv_len))
        full = _pad_to(_pad_to(full, 2, lq), 3, lk)
        bb, hb = full.shape[:2]
        index = lambda b, h, i, bb=bb, hb=hb: (b if bb > 1 else 0, h if hb > 1 else 0, i, 0)
        args.append(full)
        in_specs.append(pl.BlockSpec((None, None, bq, lk), index))
    out_shape = [
        jax.ShapeDtypeStruct((batch, heads, lq, problem.value_dim), jnp.float32),
        jax.ShapeDtypeStruct((batch, heads, lq), jnp.float32),
        jax.ShapeDtypeStruct((batch, heads, lq), jnp.float32),
    ]
    out_specs = [
        pl.BlockSpec((None, None, bq, problem.value_dim), lambda b, h, i: (b, h, i, 0)),
        pl.BlockSpec((None, None, bq), lambda b, h, i: (b, h, i)),
        pl.BlockSpec((None, None, bq), lambda b, h, i: (b, h, i)),
    ]
    kernel = functools.partial(_kernel, problem, blocks, bias is not None, mask is not None)
    out, m, linv = pl.pallas_call(
        kernel, out_shape=out_shape, grid=(batch, heads, blocks.num_q), in_specs=in_specs,
        out_specs=out_specs, interpret=_interpret(), name="jdrop_flash_attention_dropout",
    )(*args)
    n = problem.q_len
    return out[:, :, :n], m[:, :, :n], linv[:, :, :n]


_attention = with_blockwise_backward(_forward)


@functools.partial(jax.jit, static_argnums=(0, 1))
def pallas_attention(problem: Problem, blocks: Blocks, q, k, v, bias, mask, params):
    """Attention on canonical ``(B, H, L, D)`` inputs with the Pallas forward kernel."""
    return _attention(problem, blocks, q, k, v, bias, mask, params)
