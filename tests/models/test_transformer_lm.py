"""TransformerLM: shapes, the call convention, dropout sites, the context window."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models import TransformerLM, TransformerLMConfig, generate, param_count


def small(**rates):
    config = TransformerLMConfig(vocab_size=11, block_size=8, num_layers=2, features=16,
                                 num_heads=2, **rates)
    return TransformerLM(config, rngs=nnx.Rngs(0))


IDS = jax.random.randint(jax.random.key(1), (2, 8), 0, 11)


def test_shapes_and_training_needs_a_key():
    model = small(residual_dropout=0.1)
    logits, _ = model(IDS, key=jax.random.key(0))
    assert logits.shape == (2, 8, 11) and logits.dtype == jnp.float32
    with pytest.raises(ValueError, match="deterministic=True"):
        model(IDS)
    model.eval()
    assert model(IDS)[0].shape == (2, 8, 11)


def test_dropout_changes_training_output_only():
    model = small(embedding_dropout=0.2, attention_dropout=0.2, residual_dropout=0.2)
    a = model(IDS, key=jax.random.key(0))[0]
    b = model(IDS, key=jax.random.key(1))[0]
    assert not jnp.allclose(a, b)
    assert jnp.allclose(model(IDS, key=jax.random.key(0))[0], a)
    d1 = model(IDS, deterministic=True)[0]
    assert jnp.allclose(d1, small()(IDS, deterministic=True)[0])  # same weights, no dropout


def test_no_dropout_ignores_the_key():
    model = small()
    assert jnp.allclose(model(IDS, key=jax.random.key(0))[0], model(IDS, deterministic=True)[0])


def test_causal():
    model = small()
    changed = IDS.at[:, 5:].set((IDS[:, 5:] + 1) % 11)
    a, b = model(IDS, deterministic=True)[0], model(changed, deterministic=True)[0]
    np.testing.assert_allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not jnp.allclose(a[:, 5:], b[:, 5:])


def test_context_window_matches_one_call():
    model = small()
    full = model(IDS, deterministic=True)[0]
    state = model.init_state(2)
    parts = []
    for lo, hi in ((0, 3), (3, 4), (4, 8)):
        logits, state = model(IDS[:, lo:hi], deterministic=True, state=state)
        parts.append(logits)
    np.testing.assert_allclose(jnp.concatenate(parts, 1), full, atol=1e-5)


def test_generate_and_sizes():
    model = small(residual_dropout=0.1)
    out = generate(model, jax.random.key(0), IDS[0, :3], 12)  # longer than block_size
    assert out.shape == (12,) and bool(((out >= 0) & (out < 11)).all())
    nano = TransformerLMConfig.nanogpt_shakespeare_char()
    shape = nnx.eval_shape(lambda: TransformerLM(nano, rngs=nnx.Rngs(0)))
    assert 10.6e6 < param_count(shape) < 10.9e6  # nanoGPT reports 10.65M (no wpe)


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        TransformerLMConfig(vocab_size=5, features=10, num_heads=3)
    with pytest.raises(ValueError, match="block_size"):
        small()(jnp.zeros((1, 9), jnp.int32), deterministic=True)
    with pytest.raises(TypeError):
        small()(jnp.zeros((1, 3)), deterministic=True)
