"""The ``"blockwise"`` implementation: online softmax over key blocks, recomputing backward.

Forward (Rabe & Staats 2021; Dao et al. 2022): for each query block, a scan over key
blocks keeps the running row maximum ``m``, the softmax normaliser ``l`` (of the undropped
probabilities) and the accumulator ``acc = sum_j dropout(exp(s_j - m)) v_j``; the output is
``acc / l``. The dropout mask of each ``(query block, key block)`` tile is hashed from the
tile's global positions (:func:`jdrop.attention._layout.block_keep`), so it is the mask of
the explicit reference, bit for bit.

Backward (a ``jax.custom_vjp``): the residuals are the inputs, the output and two numbers
per query row (``m`` and ``1 / l``): ``O(L * d)`` memory. Each tile's scores, probabilities
and mask are recomputed; with ``Pd = P * Z`` (``Z`` the scaled keep mask),
``dV = Pd^T dO``, ``dP = (dO V^T) * Z``, ``dS = P * (dP - rowsum(dO * O))``,
``dQ = dS K * scale``, ``dK = dS^T Q * scale`` (``rowsum(P * dP) = rowsum(dO * O)``
holds with dropout too).

References:
  Rabe, Staats. "Self-attention Does Not Need O(n^2) Memory". arXiv:2112.05682, 2021.
  Dao, Fu, Ermon, Rudra, Re. "FlashAttention: Fast and Memory-Efficient Exact Attention
  with IO-Awareness". NeurIPS 2022.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._common import Problem, masked_value
from ._layout import block_keep

__all__ = ["Blocks", "blockwise_attention", "choose_blocks"]

DEFAULT_BLOCK_Q = 512
DEFAULT_BLOCK_KV = 512


@dataclasses.dataclass(frozen=True)
class Blocks:
    """Tile sizes and counts (static)."""

    block_q: int
    block_kv: int
    num_q: int
    num_kv: int
    per_row: bool = False


def choose_blocks(problem: Problem, block_q=None, block_kv=None) -> Blocks:
    """Tiles of at most ``block_q x block_kv`` (default 512 x 512), one tile if shorter."""
    bq = min(int(block_q or DEFAULT_BLOCK_Q), problem.q_len)
    bk = min(int(block_kv or DEFAULT_BLOCK_KV), problem.kv_len)
    if bq < 1 or bk < 1:
        raise ValueError(
            f"block sizes must be positive, got block_q={block_q}, block_kv={block_kv}"
        )
    # On CPU one (batch, head) row at a time keeps each tile in cache (about 1.7x faster at
    # L = 1024 here); accelerators take every row of a tile at once.
    per_row = jax.default_backend() == "cpu" and problem.batch * problem.heads > 1
    return Blocks(bq, bk, -(-problem.q_len // bq), -(-problem.kv_len // bk), per_row)


def _pad(x, axis: int, size: int, value=0):
    if x is None or x.shape[axis] in (1, size):
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - x.shape[axis])
    return jnp.pad(x, widths, constant_values=value)


def _tiles(x, axis_len: int, block: int):
    """``(B, H, L, D)`` -> ``(n, B, H, block, D)``."""
    b, h, _, d = x.shape
    return x.reshape(b, h, axis_len // block, block, d).transpose(2, 0, 1, 3, 4)


def _untile(x):
    """``(n, B, H, block, D)`` -> ``(B, H, n * block, D)``."""
    n, b, h, block, d = x.shape
    return x.transpose(1, 2, 0, 3, 4).reshape(b, h, n * block, d)


def _slice(x, axis: int, index, block: int):
    if x is None or x.shape[axis] == 1:
        return x
    return jax.lax.dynamic_slice_in_dim(x, index * block, block, axis)


class _Tile:
    """Computes the scores, probabilities' mask and keep bits of one (q, kv) tile."""

    def __init__(self, problem: Problem, blocks: Blocks, bias, mask, params, terms):
        self.problem, self.blocks = problem, blocks
        self.bias, self.mask, self.params, self.terms = bias, mask, params, terms
        self.padded_kv = blocks.num_kv * blocks.block_kv != problem.kv_len

    def positions(self, qi, kj):
        b = self.blocks
        q_pos = qi * b.block_q + jnp.arange(b.block_q, dtype=jnp.int32)
        kv_pos = kj * b.block_kv + jnp.arange(b.block_kv, dtype=jnp.int32)
        return q_pos, kv_pos

    def scores(self, q_i, k_j, qi, kj):
        """``(s, keep, valid, allowed)``: masked float32 scores, keep bits, valid keys, and
        the positions not masked (``None`` for "all"); the last three may be ``None``."""
        problem, b = self.problem, self.blocks
        q_pos, kv_pos = self.positions(qi, kj)
        s = jnp.einsum("bhqd,bhkd->bhqk", q_i, k_j, preferred_element_type=jnp.float32)
        s = s * jnp.float32(problem.scale)
        if self.bias is not None:
            bias = _slice(_slice(self.bias, 2, qi, b.block_q), 3, kj, b.block_kv)
            s = s + bias.astype(jnp.float32)
        allowed = None
        if self.mask is not None:
            allowed = _slice(_slice(self.mask, 2, qi, b.block_q), 3, kj, b.block_kv)
        if problem.is_causal:
            causal = q_pos[:, None] >= kv_pos[None, :]
            allowed = causal if allowed is None else allowed & causal
        keep = None
        if self.params is not None:
            p = self.params
            keep = block_keep(
                problem.layout, self.terms[..., 0], self.terms[..., 1], p.words, p.threshold,
                p.live, q_pos, kv_pos,
            )
            if problem.variant == "dropkey":
                allowed = keep if allowed is None else allowed & keep
        if allowed is not None:
            s = jnp.where(allowed, s, masked_value())
        valid = kv_pos < problem.kv_len if self.padded_kv else None
        return s, keep, valid, allowed

    def weights_dropout(self) -> bool:
        return self.params is not None and self.problem.variant != "dropkey"


def _forward_rows(problem: Problem, blocks: Blocks, q, k, v, bias, mask, params, terms):
    """Returns ``out (B, H, Lq, Dv)`` float32 and the row statistics ``m``, ``1 / l``."""
    b = blocks
    lq, lk = b.num_q * b.block_q, b.num_kv * b.block_kv
    q_t = _tiles(_pad(q, 2, lq), lq, b.block_q)
    k_t = _tiles(_pad(k, 2, lk), lk, b.block_kv)
    v_t = _tiles(_pad(v, 2, lk), lk, b.block_kv)
    bias, mask = _pad(_pad(bias, 2, lq), 3, lk), _pad(_pad(mask, 2, lq, False), 3, lk, False)
    tile = _Tile(problem, blocks, bias, mask, params, terms)
    batch, heads = q.shape[:2]

    def q_step(_, xs):
        qi, q_i = xs

        def k_step(carry, xs):
            m, norm, acc = carry
            kj, k_j, v_j = xs
            s, keep, valid, _ = tile.scores(q_i, k_j, qi, kj)
            m_new = jnp.maximum(m, s.max(axis=-1))
            corr = jnp.exp(m - m_new)
            p = jnp.exp(s - m_new[..., None])
            if valid is not None:
                p = jnp.where(valid, p, jnp.float32(0))
            norm = norm * corr + p.sum(axis=-1)
            if tile.weights_dropout():
                p = jnp.where(keep, p * params.inv_keep, jnp.float32(0))
            pv = jnp.einsum(
                "bhqk,bhkd->bhqd", p.astype(v_j.dtype), v_j, preferred_element_type=jnp.float32
            )
            return (m_new, norm, acc * corr[..., None] + pv), None

        init = (
            jnp.full((batch, heads, b.block_q), masked_value(), jnp.float32),
            jnp.zeros((batch, heads, b.block_q), jnp.float32),
            jnp.zeros((batch, heads, b.block_q, problem.value_dim), jnp.float32),
        )
        (m, norm, acc), _ = jax.lax.scan(k_step, init, (jnp.arange(b.num_kv), k_t, v_t))
        linv = 1 / norm
        return None, (acc * linv[..., None], m, linv)

    _, (out, m, linv) = jax.lax.scan(q_step, None, (jnp.arange(b.num_q), q_t))
    out = _untile(out)[:, :, : problem.q_len]
    m = m.transpose(1, 2, 0, 3).reshape(batch, heads, lq)[:, :, : problem.q_len]
    linv = linv.transpose(1, 2, 0, 3).reshape(batch, heads, lq)[:, :, : problem.q_len]
    return out, m, linv


def _backward_rows(problem: Problem, blocks: Blocks, res, d_out):
    q, k, v, bias, mask, params, terms, out, m, linv = res
    b = blocks
    lq, lk = b.num_q * b.block_q, b.num_kv * b.block_kv
    batch, heads = q.shape[:2]
    d_out = d_out.astype(jnp.float32)
    delta = (d_out * out).sum(axis=-1)
    q_t = _tiles(_pad(q, 2, lq), lq, b.block_q)
    do_t = _tiles(_pad(d_out, 2, lq), lq, b.block_q)
    k_t = _tiles(_pad(k, 2, lk), lk, b.block_kv)
    v_t = _tiles(_pad(v, 2, lk), lk, b.block_kv)

    def row_tiles(x):
        return _pad(x, 2, lq).reshape(batch, heads, b.num_q, b.block_q).transpose(2, 0, 1, 3)

    bias_p = _pad(_pad(bias, 2, lq), 3, lk)
    mask_p = _pad(_pad(mask, 2, lq, False), 3, lk, False)
    tile = _Tile(problem, blocks, bias_p, mask_p, params, terms)
    scale = jnp.float32(problem.scale)

    def q_step(carry, xs):
        dk_acc, dv_acc = carry
        qi, q_i, do_i, m_i, linv_i, delta_i = xs

        def k_step(dq, xs):
            kj, k_j, v_j = xs
            s, keep, valid, allowed = tile.scores(q_i, k_j, qi, kj)
            p = jnp.exp(s - m_i[..., None]) * linv_i[..., None]
            if valid is not None:
                p = jnp.where(valid, p, jnp.float32(0))
            dp = jnp.einsum(
                "bhqd,bhkd->bhqk", do_i, v_j.astype(jnp.float32),
                preferred_element_type=jnp.float32,
            )
            pd = p
            if tile.weights_dropout():
                pd = jnp.where(keep, p * params.inv_keep, jnp.float32(0))
                dp = jnp.where(keep, dp * params.inv_keep, jnp.float32(0))
            ds = p * (dp - delta_i[..., None])
            if allowed is not None:  # masked logits are constants (matters in all-masked rows)
                ds = jnp.where(allowed, ds, jnp.float32(0))
            dv_j = jnp.einsum("bhqk,bhqd->bhkd", pd, do_i, preferred_element_type=jnp.float32)
            dk_j = jnp.einsum(
                "bhqk,bhqd->bhkd", ds, q_i.astype(jnp.float32), preferred_element_type=jnp.float32
            ) * scale
            dq = dq + jnp.einsum(
                "bhqk,bhkd->bhqd", ds, k_j.astype(jnp.float32), preferred_element_type=jnp.float32
            ) * scale
            db = None
            if bias is not None:
                axes = tuple(a for a in range(4) if bias.shape[a] == 1)
                db = ds.sum(axis=axes, keepdims=True) if axes else ds
            return dq, (dk_j, dv_j, db)

        dq0 = jnp.zeros((batch, heads, b.block_q, problem.head_dim), jnp.float32)
        dq_i, (dk_b, dv_b, db_b) = jax.lax.scan(k_step, dq0, (jnp.arange(b.num_kv), k_t, v_t))
        return (dk_acc + dk_b, dv_acc + dv_b), (dq_i, db_b)

    zeros_k = jnp.zeros(k_t.shape, jnp.float32)
    zeros_v = jnp.zeros(v_t.shape, jnp.float32)
    xs = (jnp.arange(b.num_q), q_t, do_t, row_tiles(m), row_tiles(linv), row_tiles(delta))
    (dk_t, dv_t), (dq_t, db) = jax.lax.scan(q_step, (zeros_k, zeros_v), xs)
    dq = _untile(dq_t)[:, :, : problem.q_len].astype(q.dtype)
    dk = _untile(dk_t)[:, :, : problem.kv_len].astype(k.dtype)
    dv = _untile(dv_t)[:, :, : problem.kv_len].astype(v.dtype)
    d_bias = None
    if bias is not None:
        # db: (num_q, num_kv, Bb, Hb, bq|1, bk|1)
        if bias.shape[2] == 1:
            db = db.sum(axis=0, keepdims=True)
        if bias.shape[3] == 1:
            db = db.sum(axis=1, keepdims=True)
        nq, nk, bb, hb, a, c = db.shape
        db = db.transpose(2, 3, 0, 4, 1, 5).reshape(bb, hb, nq * a, nk * c)
        d_bias = db[:, :, : bias.shape[2], : bias.shape[3]].astype(bias.dtype)
    return dq, dk, dv, d_bias


def _terms(problem: Problem, params):
    return None if params is None else jnp.asarray(problem.layout.terms(problem.heads))


def _row(x, r, heads: int):
    """Row ``r = b * heads + h`` of a 4-D bias/mask (broadcast axes of size 1 stay 1)."""
    if x is None:
        return None
    if x.shape[0] > 1:
        x = jax.lax.dynamic_index_in_dim(x, r // heads, 0)
    if x.shape[1] > 1:
        x = jax.lax.dynamic_index_in_dim(x, r % heads, 1)
    return x


def _rows(x):
    """``(B, H, ...)`` -> ``(B * H, 1, 1, ...)``: the rows a per-row map iterates over."""
    return x.reshape((x.shape[0] * x.shape[1], 1, 1) + x.shape[2:])


def _unrows(x, batch: int, heads: int):
    return x.reshape((batch, heads) + x.shape[3:])


def _forward(problem: Problem, blocks: Blocks, q, k, v, bias, mask, params):
    terms = _terms(problem, params)
    if not blocks.per_row:
        return _forward_rows(problem, blocks, q, k, v, bias, mask, params, terms)
    batch, heads = q.shape[:2]

    def row(xs):
        r, q1, k1, v1, t1 = xs
        b1, m1 = _row(bias, r, heads), _row(mask, r, heads)
        return _forward_rows(problem, blocks, q1, k1, v1, b1, m1, params, t1)

    rows = jnp.arange(batch * heads, dtype=jnp.int32)
    t = None if terms is None else _rows(terms)
    out, m, linv = jax.lax.map(row, (rows, _rows(q), _rows(k), _rows(v), t))
    return tuple(_unrows(x, batch, heads) for x in (out, m, linv))


def _backward(problem: Problem, blocks: Blocks, res, d_out):
    q, k, v, bias, mask, params, out, m, linv = res
    terms = _terms(problem, params)
    if not blocks.per_row:
        res = (q, k, v, bias, mask, params, terms, out, m, linv)
        return _backward_rows(problem, blocks, res, d_out)
    batch, heads = q.shape[:2]

    def row(xs):
        r, q1, k1, v1, t1, o1, m1, l1, do1 = xs
        res1 = (q1, k1, v1, _row(bias, r, heads), _row(mask, r, heads), params, t1, o1, m1, l1)
        return _backward_rows(problem, blocks, res1, do1)

    rows = jnp.arange(batch * heads, dtype=jnp.int32)
    t = None if terms is None else _rows(terms)
    xs = (rows, _rows(q), _rows(k), _rows(v), t, _rows(out), _rows(m), _rows(linv), _rows(d_out))
    dq, dk, dv, db = jax.lax.map(row, xs)
    dq, dk, dv = (_unrows(x, batch, heads) for x in (dq, dk, dv))
    if bias is not None:
        db = _unrows(db, batch, heads)
        if bias.shape[0] == 1:
            db = db.sum(axis=0, keepdims=True)
        if bias.shape[1] == 1:
            db = db.sum(axis=1, keepdims=True)
    return dq, dk, dv, db


def with_blockwise_backward(forward):
    """``attention(problem, blocks, q, k, v, bias, mask, params)`` with a custom VJP.

    ``forward`` returns ``(out, m, linv)`` (output, row maxima, inverse row sums); the
    gradient is the blockwise backward pass, which recomputes the probabilities from them.
    ``mask`` gets no cotangent; ``params`` get zeros (they only feed the dropout mask).
    """

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
    def attention(problem, blocks, q, k, v, bias, mask, params):
        return forward(problem, blocks, q, k, v, bias, mask, params)[0]

    def attention_fwd(problem, blocks, q, k, v, bias, mask, params):
        out, m, linv = forward(problem, blocks, q, k, v, bias, mask, params)
        return out, (q, k, v, bias, mask, params, out, m, linv)

    def attention_bwd(problem, blocks, res, d_out):
        dq, dk, dv, d_bias = _backward(problem, blocks, res, d_out)
        params = res[5]
        d_params = None if params is None else _zero_cotangents(params)
        return dq, dk, dv, d_bias, None, d_params

    attention.defvjp(attention_fwd, attention_bwd)
    return attention


def _zero_cotangents(params):
    def zero(x):
        if jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.zeros_like(x)
        return np.zeros(x.shape, jax.dtypes.float0)

    return jax.tree.map(zero, params)


_attention = with_blockwise_backward(_forward)


@functools.partial(jax.jit, static_argnums=(0, 1))
def blockwise_attention(problem: Problem, blocks: Blocks, q, k, v, bias, mask, params):
    """Attention on canonical ``(B, H, L, D)`` inputs, ``O(L * d)`` memory in both passes."""
    return _attention(problem, blocks, q, k, v, bias, mask, params)

