"""jdrop.nn.MultiHeadAttention, FeedForward and TransformerBlock."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.nn import FeedForward, MultiHeadAttention, TransformerBlock


def _x(shape=(2, 10, 32), seed=3):
    return jax.random.normal(jax.random.key(seed), shape)


def test_matches_flax_at_rate_zero():
    """Same constructor, same parameters (query/key/value/out), same output."""
    theirs = nnx.MultiHeadAttention(
        4, 32, qkv_features=16, out_features=24, decode=False, rngs=nnx.Rngs(0)
    )
    ours = MultiHeadAttention(4, 32, qkv_features=16, out_features=24, rngs=nnx.Rngs(0))
    x, y = _x(), _x((2, 7, 32), seed=4)
    mask = jax.random.bernoulli(jax.random.key(5), 0.8, (2, 1, 10, 7))
    np.testing.assert_allclose(
        ours(x, y, mask=mask, deterministic=True),
        theirs(x, y, mask=mask, deterministic=True), rtol=1e-5, atol=1e-6,
    )


def test_training_needs_a_key_and_eval_turns_dropout_off(key):
    mha = MultiHeadAttention(4, 32, dropout_rate=0.2, rngs=nnx.Rngs(0))
    x = _x()
    with pytest.raises(ValueError, match="deterministic=True"):
        mha(x)
    a, b = mha(x, key=key), mha(x, key=key)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, mha(x, key=jax.random.key(1)))
    clean = mha(x, deterministic=True)
    mha.eval()
    np.testing.assert_array_equal(mha(x), clean)
    mha.train()
    with pytest.raises(ValueError):
        mha(x)
    # Flax style: a dropout stream given at construction, or rngs at the call.
    flaxy = MultiHeadAttention(4, 32, dropout_rate=0.2, rngs=nnx.Rngs(0, dropout=1))
    assert not np.allclose(flaxy(x), flaxy(x))
    assert mha(x, rngs=nnx.Rngs(dropout=2)).shape == x.shape


def test_broadcast_dropout_and_variants(key):
    x = _x()
    for kw in [dict(broadcast_dropout=True), dict(attention_variant="dropkey"),
               dict(attention_variant="head"), dict(implementation="blockwise")]:
        mha = MultiHeadAttention(4, 32, dropout_rate=0.3, rngs=nnx.Rngs(0), **kw)
        out = mha(x, key=key)
        assert out.shape == x.shape and bool(jnp.isfinite(out).all())
        assert not np.allclose(out, mha(x, deterministic=True))


def test_decode_cache_equals_causal_attention():
    mha = MultiHeadAttention(4, 32, num_kv_heads=2, decode=True, rngs=nnx.Rngs(0))
    x = _x()
    mha.init_cache(x.shape)
    steps = jnp.concatenate([mha(x[:, i:i + 1]) for i in range(x.shape[1])], axis=1)
    full = mha(x, decode=False, is_causal=True, deterministic=True)
    np.testing.assert_allclose(steps, full, rtol=1e-5, atol=1e-6)
    fresh = MultiHeadAttention(4, 32, decode=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="init_cache"):
        fresh(x[:, :1])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(3, 32, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="num_kv_heads"):
        MultiHeadAttention(4, 32, num_kv_heads=3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="dropout_rate"):
        MultiHeadAttention(4, 32, dropout_rate=2.0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="residual_dropout"):
        TransformerBlock(32, 4, residual_dropout=-0.1, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("rate", ["attention_dropout", "residual_dropout", "ffn_dropout"])
def test_every_block_dropout_is_live(key, rate):
    block = TransformerBlock(32, 4, rngs=nnx.Rngs(0), **{rate: 0.3})
    x = _x()
    train, test = block(x, key=key, is_causal=True), block(x, deterministic=True, is_causal=True)
    assert not np.allclose(train, test)
    np.testing.assert_array_equal(train, block(x, key=key, is_causal=True))


def test_block_modes_cross_attention_and_gradients(key):
    block = TransformerBlock(32, 4, 64, attention_dropout=0.1, residual_dropout=0.1,
                             ffn_dropout=0.1, cross_attention=True, rngs=nnx.Rngs(0))
    x, context = _x(), _x((2, 6, 32), seed=9)
    with pytest.raises(ValueError, match="PRNG key"):
        block(x, context)
    with pytest.raises(ValueError, match="context"):
        block(x, key=key)
    block.eval()
    np.testing.assert_array_equal(block(x, context), block(x, context, deterministic=True))
    block.train()
    graphdef, state = nnx.split(block)

    def loss(state, key):
        return (nnx.merge(graphdef, state)(x, context, key=key) ** 2).mean()

    grads = jax.jit(jax.grad(loss))(state, key)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(bool(jnp.isfinite(g).all()) for g in leaves)
    # No dropout rates: no key needed.
    plain = TransformerBlock(32, 4, rngs=nnx.Rngs(0))
    assert plain(x).shape == x.shape


def test_feed_forward(key):
    ffn = FeedForward(8, 32, dropout_rate=0.5, rngs=nnx.Rngs(0))
    x = _x((4, 8))
    with pytest.raises(ValueError):
        ffn(x)
    assert not np.allclose(ffn(x, key=key), ffn(x, deterministic=True))
