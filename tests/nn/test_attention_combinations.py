"""MultiHeadAttention and TransformerBlock with their options together (issue 16).

Grouped-query heads x attention dropout x masks x decode cache x broadcast dropout, and
a decoder block with cross-attention x masks x broadcast dropout x every dropout site,
each against a float64 numpy implementation of the documented formulas (the dropout bits
from :func:`jdrop.keep_mask`, pinned by the golden tests).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jdrop
from jdrop.nn import MultiHeadAttention, TransformerBlock

B, L, S, D, H = 2, 5, 4, 8, 4  # batch, target length, source length, width, heads
RATE = 0.3


def _p(param):
    return np.asarray(param[...], np.float64)


def _np_mha(layer, xq, xkv, allowed, keep, rate):
    """out = W_o concat_h[dropout(softmax(q k^T / sqrt(d) masked)) v], GQA heads repeated."""
    q = np.einsum("bld,dhk->bhlk", xq, _p(layer.query.kernel)) + _p(layer.query.bias)[:, None]
    k = np.einsum("bld,dhk->bhlk", xkv, _p(layer.key.kernel)) + _p(layer.key.bias)[:, None]
    v = np.einsum("bld,dhk->bhlk", xkv, _p(layer.value.kernel)) + _p(layer.value.bias)[:, None]
    rep = layer.num_heads // layer.num_kv_heads
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)  # head h reads kv h // rep
    logits = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if allowed is not None:
        logits = np.where(allowed, logits, np.finfo(np.float32).min)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    if keep is not None:
        w = np.where(keep, w / (1 - rate), 0.0)
    o = w @ v  # (B, H, Lq, d)
    return np.einsum("bhlk,hko->blo", o, _p(layer.out.kernel)) + _p(layer.out.bias)


@functools.partial(jax.jit, static_argnums=1)
def _keep_mask(key, shape, rate):  # one compile per shape (eager ops compile one by one)
    return jdrop.keep_mask(key, shape, rate)


def _keep(key, broadcast, lq, lk):
    shape = (1, 1, lq, lk) if broadcast else (B, H, lq, lk)
    return np.asarray(_keep_mask(key, shape, np.float32(RATE)))


def _padding_mask(length, valid):
    """(B, 1, 1, length): example b attends to its first valid[b] positions."""
    return (np.arange(length)[None, :] < np.asarray(valid)[:, None])[:, None, None, :]


# a covering array: every pair of values of any two options meets, and all four together
@pytest.mark.parametrize("num_kv_heads,masked,decode,broadcast", [
    (1, False, False, False), (1, True, True, True), (2, False, True, True),
    (2, True, False, True), (2, True, True, False), (2, True, True, True),
])
def test_mha_gqa_dropout_mask_decode_broadcast(num_kv_heads, masked, decode, broadcast):
    layer = MultiHeadAttention(H, D, num_kv_heads=num_kv_heads, dropout_rate=RATE,
                               broadcast_dropout=broadcast, decode=decode, rngs=nnx.Rngs(0))
    x = np.random.default_rng(1).normal(size=(B, L, D)).astype(np.float32)
    x64 = np.asarray(x, np.float64)
    user = _padding_mask(L, [L, 3]) if masked else None
    key = jax.random.key(7)
    if not decode:
        call = nnx.jit(lambda layer, x, mask, key: layer(x, mask=mask, key=key))
        got = np.asarray(call(layer, jnp.asarray(x), None if user is None else jnp.asarray(user),
                              key))
        want = _np_mha(layer, x64, x64, user, _keep(key, broadcast, L, L), RATE)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        return
    layer.init_cache((B, L, D))
    for t in range(L):
        step_key = jax.random.fold_in(key, t)
        got = np.asarray(layer(jnp.asarray(x[:, t:t + 1]),
                               mask=None if user is None else jnp.asarray(user),
                               key=step_key))
        # position t attends to the cached positions 0..t (and the user's mask)
        allowed = np.broadcast_to(np.arange(L) <= t, (B, 1, 1, L))
        if user is not None:
            allowed = allowed & user
        want = _np_mha(layer, x64[:, t:t + 1], x64, allowed, _keep(step_key, broadcast, 1, L),
                       RATE)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"step {t}")


def _np_layer_norm(norm, x):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * _p(norm.scale) + _p(norm.bias)


def _np_gelu(x):  # jax.nn.gelu's default tanh approximation
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _np_dropout(key, x, rate):
    if key is None:
        return x
    return np.where(np.asarray(_keep_mask(key, x.shape, np.float32(rate))), x / (1 - rate), 0.0)


@pytest.mark.parametrize("broadcast,masked,causal", [
    (False, False, False), (True, True, True), (False, True, True),
])
def test_decoder_block_cross_attention_masks_broadcast(broadcast, masked, causal):
    """Pre-LN decoder block, every dropout site live, one key per site (split_key order)."""
    rates = dict(attention_dropout=0.3, residual_dropout=0.1, ffn_dropout=0.7)
    block = TransformerBlock(D, H, 16, cross_attention=True, broadcast_dropout=broadcast,
                             rngs=nnx.Rngs(0), **rates)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, L, D)).astype(np.float32)
    context = rng.normal(size=(B, S, D)).astype(np.float32)
    self_mask = _padding_mask(L, [L, 4]) if masked else None
    context_mask = _padding_mask(S, [2, S]) if masked else None
    key = jax.random.key(9)
    call = nnx.jit(lambda block, x, c, m, cm, key: block(x, c, mask=m, context_mask=cm,
                                                         is_causal=causal, key=key))
    got = np.asarray(call(block, jnp.asarray(x), jnp.asarray(context),
                          None if self_mask is None else jnp.asarray(self_mask),
                          None if context_mask is None else jnp.asarray(context_mask), key))
    k_attn, k_res1, k_cross, k_res2, k_ffn, k_res3 = jdrop.split_key(key, 6)
    allowed = self_mask
    if causal:
        tril = np.tril(np.ones((L, L), bool))[None, None]
        allowed = tril if allowed is None else allowed & tril
    h = np.asarray(x, np.float64)
    attn = block.attention
    a = _np_mha(attn, _np_layer_norm(block.norm_attention, h), _np_layer_norm(
        block.norm_attention, h), allowed, _keep(k_attn, broadcast, L, L), 0.3)
    h = h + _np_dropout(k_res1, a, 0.1)
    c = _np_mha(block.cross, _np_layer_norm(block.norm_cross, h), np.asarray(context, np.float64),
                context_mask, _keep(k_cross, broadcast, L, S), 0.3)
    h = h + _np_dropout(k_res2, c, 0.1)
    ffn = block.ffn
    inner = _np_gelu(_np_layer_norm(block.norm_ffn, h) @ _p(ffn.hidden.kernel)
                     + _p(ffn.hidden.bias))
    f = _np_dropout(k_ffn, inner, 0.7) @ _p(ffn.output.kernel) + _p(ffn.output.bias)
    want = h + _np_dropout(k_res3, f, 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
