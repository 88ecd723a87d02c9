"""dot_product_attention on every documented batch rank (issue 16): ``(*batch, L, H, D)``.

The keep bit of weight ``(*b, h, i, j)`` is ``keep_mask(key, (*batch, H, Lq, Lk))`` at
that position, and kept weights are scaled by ``1 / (1 - rate)``: checked for no batch
axis, one and two, against the softmax weights computed in numpy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from jdrop.attention import dot_product_attention

LQ, LK, H, D, RATE = 5, 7, 2, 4, 0.3


@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
@pytest.mark.parametrize("impl", ["xla", "blockwise"])
def test_dropped_weights_on_every_batch_rank(batch, impl):
    rng = np.random.default_rng(len(batch))
    q = rng.normal(size=(*batch, LQ, H, D)).astype(np.float32)
    k = rng.normal(size=(*batch, LK, H, D)).astype(np.float32)
    v = np.broadcast_to(np.eye(LK, dtype=np.float32)[:, None, :], (*batch, LK, H, LK))
    key = jax.random.key(4)
    out = jax.jit(lambda q, k, v: dot_product_attention(
        q, k, v, dropout_key=key, rate=RATE, implementation=impl, block_q=4, block_kv=4))(
            jnp.asarray(q), jnp.asarray(k), jnp.asarray(v))
    weights = np.moveaxis(np.asarray(out, np.float64), -2, -3)  # (*batch, H, Lq, Lk)
    logits = np.einsum("...qhd,...khd->...hqk", q.astype(np.float64), k) / np.sqrt(D)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    keep = np.asarray(jdrop.keep_mask(key, (*batch, H, LQ, LK), RATE))
    np.testing.assert_allclose(weights, np.where(keep, p / (1 - RATE), 0.0), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("impl", ["xla", "blockwise"])
def test_head_and_dropkey_variants_at_an_inexact_rate(impl):
    """head: one bit per (b, h), kept heads scaled by 1 / (1 - rate) (1/rate at 0.3 would
    differ, unlike at 0.5); dropkey: dropped keys leave the softmax, rows renormalise."""
    rng = np.random.default_rng(7)
    q = rng.normal(size=(3, LQ, H, D)).astype(np.float32)
    k = rng.normal(size=(3, LK, H, D)).astype(np.float32)
    v = np.broadcast_to(np.eye(LK, dtype=np.float32)[:, None, :], (3, LK, H, LK))
    key = jax.random.key(8)
    logits = np.einsum("bqhd,bkhd->bhqk", q.astype(np.float64), k) / np.sqrt(D)

    def softmax(s):
        e = np.exp(s - s.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def weights(variant):
        out = dot_product_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v),
                                    dropout_key=key, rate=RATE, variant=variant,
                                    implementation=impl, block_q=4, block_kv=4)
        return np.moveaxis(np.asarray(out, np.float64), -2, -3)

    head_keep = np.asarray(jdrop.keep_mask(key, (3, H, 1, 1), RATE))
    np.testing.assert_allclose(weights("head"),
                               np.where(head_keep, softmax(logits) / (1 - RATE), 0.0),
                               rtol=1e-5, atol=1e-6)
    key_keep = np.asarray(jdrop.keep_mask(key, (3, H, LQ, LK), RATE))
    assert key_keep.any(-1).all()  # no row loses every key at this seed
    np.testing.assert_allclose(weights("dropkey"),
                               softmax(np.where(key_keep, logits, -np.inf)), rtol=1e-5,
                               atol=1e-6)
