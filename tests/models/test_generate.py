"""Text generation from a recurrent language model: keys, temperature, greedy decoding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models._generate import generate, sample_logits
from jdrop.models._rnn_lm import LMConfig, RNNLanguageModel

VOCAB = 17


@pytest.fixture(scope="module")
def model():
    config = LMConfig(
        vocab_size=VOCAB,
        embed_size=8,
        hidden_sizes=(12,),
        recurrent_dropout=0.5,  # dropout must be off while generating
        output_dropout=0.5,
        init_scale=0.8,
    )
    return RNNLanguageModel(config, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def run():
    return nnx.jit(generate, static_argnums=3)


PROMPT = jnp.array([[1, 5, 2], [3, 3, 0]])


def _greedy(model, prompt, num_steps):
    """Reference greedy decoding: a Python loop over single-token model calls."""
    apply = nnx.jit(lambda m, ids, state: m(ids, deterministic=True, state=state))
    logits, state = apply(model, prompt, None)
    tokens = []
    token = jnp.argmax(logits[:, -1], -1)
    for _ in range(num_steps):
        tokens.append(token)
        logits, state = apply(model, token[:, None], state)
        token = jnp.argmax(logits[:, -1], -1)
    return np.stack(tokens, 1)


def test_reproducible_for_a_key_and_different_across_keys(model, run):
    first = run(model, jax.random.key(0), PROMPT, 12, 1.0)
    again = run(model, jax.random.key(0), PROMPT, 12, 1.0)
    other = run(model, jax.random.key(1), PROMPT, 12, 1.0)
    assert first.shape == (2, 12) and first.dtype == jnp.int32
    assert ((first >= 0) & (first < VOCAB)).all()
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


def test_temperature_zero_is_greedy_argmax(model, run):
    greedy = _greedy(model, PROMPT, 6)
    np.testing.assert_array_equal(run(model, jax.random.key(0), PROMPT, 6, 0.0), greedy)
    np.testing.assert_array_equal(run(model, jax.random.key(5), PROMPT, 6, 0.0), greedy)
    np.testing.assert_array_equal(run(model, jax.random.key(0), PROMPT, 6, 1e-4), greedy)
    traced_zero = run(model, jax.random.key(0), PROMPT, 6, jnp.float32(0.0))
    np.testing.assert_array_equal(traced_zero, greedy)


def test_unbatched_prompt_and_eager_call(model):
    out = generate(model, jax.random.key(3), jnp.array([4, 2]), 3, temperature=0.7)
    batched = generate(model, jax.random.key(3), jnp.array([[4, 2]]), 3, temperature=0.7)
    assert out.shape == (3,)
    np.testing.assert_array_equal(out, batched[0])


def test_sample_logits_follows_the_tempered_softmax():
    logits = jnp.log(jnp.array([0.6, 0.3, 0.1], jnp.float32))
    keys = jax.random.split(jax.random.key(0), 20_000)
    for temperature in (1.0, 0.5):
        draws = jax.vmap(lambda k, t=temperature: sample_logits(k, logits, t))(keys)
        freq = np.bincount(np.asarray(draws), minlength=3) / draws.size
        expected = np.asarray(jax.nn.softmax(logits / temperature))
        np.testing.assert_allclose(freq, expected, atol=0.015)  # ~4 sigma at n = 20k


def test_bad_arguments_raise(model):
    with pytest.raises(ValueError, match="temperature"):
        generate(model, jax.random.key(0), PROMPT, 3, temperature=-1.0)
    with pytest.raises(ValueError, match="num_steps"):
        generate(model, jax.random.key(0), PROMPT, -1)
    with pytest.raises(TypeError, match="prompt_ids"):
        generate(model, jax.random.key(0), jnp.ones((1, 2)), 3)
    with pytest.raises(ValueError, match="prompt_ids"):
        generate(model, jax.random.key(0), jnp.zeros((1, 0), jnp.int32), 3)
