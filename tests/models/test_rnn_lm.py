"""Recurrent language models: shapes, determinism, dropout masks, state, configs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models import LMConfig, RNNLanguageModel, param_count
from jdrop.models._lm_configs import LM_CONFIGS, get_lm_config, make_language_model

SMALL = dict(vocab_size=13, embed_size=6, hidden_sizes=(8, 6))
ALL_DROPOUT = dict(
    embedding_dropout=0.1,
    input_dropout=0.2,
    hidden_dropout=0.2,
    output_dropout=0.2,
    weight_drop=0.3,
)
VARIANTS = {
    "zaremba_lstm_zoneout": dict(dropout_mode="zaremba", zoneout=0.2, **ALL_DROPOUT),
    "variational_lstm_tied": dict(recurrent_dropout=0.3, tie_weights=True, **ALL_DROPOUT),
    "variational_gru_zoneout": dict(cell="gru", recurrent_dropout=0.3, zoneout=0.2, **ALL_DROPOUT),
}


def _ids(batch=3, steps=5, vocab=13, seed=0):
    return jax.random.randint(jax.random.key(seed), (batch, steps), 0, vocab)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_language_model_shapes_dtypes_and_determinism(name):
    model = RNNLanguageModel(LMConfig(**SMALL, **VARIANTS[name]), rngs=nnx.Rngs(0))
    ids = _ids()
    apply = nnx.jit(lambda m, ids, key: m(ids, key=key, deterministic=key is None))
    logits, state = apply(model, ids, None)
    assert logits.shape == (3, 5, 13) and logits.dtype == jnp.float32
    assert len(state) == 2 and state[0][0].shape == (3, 8) and state[1][0].shape == (3, 6)
    again, _ = apply(model, ids, None)
    np.testing.assert_array_equal(logits, again)  # inference: deterministic
    train1, _ = apply(model, ids, jax.random.key(1))
    train2, _ = apply(model, ids, jax.random.key(1))
    train3, _ = apply(model, ids, jax.random.key(2))
    np.testing.assert_array_equal(train1, train2)  # same key, same masks
    assert not np.allclose(train1, train3) and not np.allclose(train1, logits)


def test_legacy_uint32_keys_give_the_typed_keys_masks():
    model = RNNLanguageModel(LMConfig(**SMALL, recurrent_dropout=0.3), rngs=nnx.Rngs(0))
    apply = nnx.jit(lambda m, ids, key: m(ids, key=key, deterministic=key is None)[0])
    legacy = jax.random.PRNGKey(4)
    typed = jax.random.wrap_key_data(legacy)
    np.testing.assert_array_equal(apply(model, _ids(), legacy), apply(model, _ids(), typed))


def test_vmap_over_keys_gives_each_keys_output():
    # Monte-Carlo dropout: jax.vmap over keys, no Python loop, same samples as one by one.
    model = RNNLanguageModel(
        LMConfig(**SMALL, **VARIANTS["variational_lstm_tied"]), rngs=nnx.Rngs(0)
    )
    graphdef, params = nnx.split(model)
    ids = _ids()
    apply = lambda params, key: nnx.merge(graphdef, params)(ids, key=key)[0]
    keys = jax.random.split(jax.random.key(7), 3)
    samples = jax.jit(jax.vmap(apply, in_axes=(None, 0)))(params, keys)
    single = jax.jit(apply)
    for index in range(3):
        np.testing.assert_allclose(samples[index], single(params, keys[index]), atol=1e-5)


@pytest.mark.parametrize("name", ["variational_lstm_tied", "variational_gru_zoneout"])
def test_state_carried_across_two_halves_equals_one_run(name):
    model = RNNLanguageModel(LMConfig(**SMALL, **VARIANTS[name]), rngs=nnx.Rngs(0))
    ids = _ids(steps=8)
    apply = nnx.jit(lambda m, ids, state: m(ids, deterministic=True, state=state))
    full, full_state = apply(model, ids, None)
    first, state = apply(model, ids[:, :4], None)
    second, state = apply(model, ids[:, 4:], state)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), full, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(full_state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_tied_weights_share_the_embedding():
    model = RNNLanguageModel(LMConfig(**SMALL, tie_weights=True), rngs=nnx.Rngs(0))
    assert model.decoder_kernel is None
    h = jnp.ones((2, 6))
    np.testing.assert_allclose(model.decode(h), h @ model.embedding[...].T, rtol=1e-6)
    untied = RNNLanguageModel(LMConfig(**SMALL), rngs=nnx.Rngs(0))
    assert param_count(untied) - param_count(model) == 6 * 13


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="tie_weights"):
        LMConfig(vocab_size=5, embed_size=4, hidden_sizes=(8,), tie_weights=True)
    with pytest.raises(ValueError, match="vocab_size"):
        LMConfig(vocab_size=0, embed_size=4, hidden_sizes=(4,))
    with pytest.raises(ValueError, match="name"):
        get_lm_config("zaremba_huge")
    model = RNNLanguageModel(LMConfig(**SMALL), rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="ids"):
        model(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="ids"):
        model(jnp.ones((2, 3, 1), jnp.int32))


def _lstm_params(vocab, embed, hidden, tied):
    """Parameter count from the papers' architecture: embedding, per-layer 4H(in + H) + 4H
    (one bias), softmax H*V + V (no H*V when tied)."""
    sizes = (embed, *hidden)
    lstm = sum(4 * h * (i + h) + 4 * h for i, h in zip(sizes[:-1], sizes[1:], strict=True))
    return vocab * embed + lstm + (0 if tied else hidden[-1] * vocab) + vocab


@pytest.mark.parametrize(
    ("name", "paper_millions"),
    [("zaremba_medium", 20), ("zaremba_large", 66), ("awd_lstm", 24), ("gal_large", 66)],
)
def test_named_config_parameter_counts_match_the_papers(name, paper_millions):
    config = LM_CONFIGS[name]
    count = param_count(name)  # nnx.eval_shape: nothing is allocated
    expected = _lstm_params(
        config.vocab_size, config.embed_size, config.hidden_sizes, config.tie_weights
    )
    assert count == expected
    assert abs(count / 1e6 - paper_millions) / paper_millions < 0.02


def test_named_configs_follow_the_papers_dropout_schemes():
    medium, large = LM_CONFIGS["zaremba_medium"], LM_CONFIGS["zaremba_large"]
    assert medium.dropout_mode == large.dropout_mode == "zaremba"
    assert (medium.hidden_dropout, large.hidden_dropout) == (0.5, 0.65)
    assert LM_CONFIGS["zaremba_small"].output_dropout == 0.0
    gal = LM_CONFIGS["gal_large"]
    assert (gal.embedding_dropout, gal.recurrent_dropout, gal.input_dropout) == (0.3, 0.3, 0.5)
    awd = LM_CONFIGS["awd_lstm"]
    assert awd.tie_weights and awd.hidden_sizes[-1] == awd.embed_size
    rates = (awd.output_dropout, awd.hidden_dropout, awd.input_dropout, awd.embedding_dropout)
    assert rates == (0.4, 0.3, 0.4, 0.1) and awd.weight_drop == 0.5
    char = LM_CONFIGS["char_shakespeare"]
    assert char.vocab_size == 65 and char.dropout_mode == "variational"


def test_small_char_config_builds_and_trains_one_step():
    model = make_language_model(
        "char_shakespeare", rngs=nnx.Rngs(0), hidden_sizes=(16,), embed_size=16
    )
    ids = _ids(batch=2, steps=9, vocab=65)

    def loss_fn(m, key):
        logits, _ = m(ids[:, :-1], key=key, deterministic=key is None)
        labels = jax.nn.one_hot(ids[:, 1:], 65)
        return -(jax.nn.log_softmax(logits) * labels).sum(-1).mean()

    @nnx.jit
    def sgd_step(m, step):
        grads = nnx.grad(loss_fn)(m, jax.random.fold_in(jax.random.key(0), step))
        params = nnx.state(m, nnx.Param)
        nnx.update(m, jax.tree.map(lambda p, g: p - 0.5 * g, params, grads))

    evaluate = nnx.jit(lambda m: loss_fn(m, None))
    before = float(evaluate(model))
    for step in range(20):
        sgd_step(model, step)
    assert float(evaluate(model)) < before - 0.5


def test_replace_config_fields():
    config = dataclasses.replace(LM_CONFIGS["awd_lstm"], vocab_size=33278)
    assert config.tie_weights and config.vocab_size == 33278
