"""Greedy and beam-search decoding: the cache, beam 1 = greedy, EOS, padding, a copy task."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jdrop.models import TransformerSeq2Seq, beam_search, greedy_decode
from jdrop.train import label_smoothed_cross_entropy

V, BOS, EOS = 16, 1, 2
SRC = jnp.array([[5, 6, 7, 8, 2, 0], [9, 10, 2, 0, 0, 0], [11, 2, 0, 0, 0, 0]], jnp.int32)


def small(seed=0, **kwargs):
    settings = dict(features=32, num_heads=4, ffn_features=64, encoder_layers=2,
                    decoder_layers=2, max_length=16)
    settings.update(kwargs)
    return TransformerSeq2Seq(V, rngs=nnx.Rngs(seed), **settings)


def test_cache_matches_full_recomputation():
    model = small(residual_dropout=0.3)  # dropout off when decoding
    target = jnp.array([[1, 4, 9, 3, 12, 7], [1, 13, 5, 5, 8, 14], [1, 6, 6, 6, 6, 6]])
    full = model(SRC, target, source_mask=SRC > 0, deterministic=True)
    memory = model.encode(SRC, SRC > 0, deterministic=True)
    model.init_cache(3, 8)
    steps = [model.decode(target[:, t : t + 1], memory, SRC > 0, deterministic=True,
                          decode=True) for t in range(target.shape[1])]
    np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_width_one_is_greedy(alpha):
    for seed in range(3):
        model = small(seed)
        greedy = greedy_decode(model, SRC, SRC > 0, max_length=10)
        ids, scores = beam_search(model, SRC, SRC > 0, beam_width=1, length_penalty=alpha,
                                  max_length=10)
        np.testing.assert_array_equal(ids, greedy)
        assert scores.shape == (3,) and bool(jnp.all(jnp.isfinite(scores)))


def _sequence_log_prob(model, src, ids):
    """log P(ids | src) under teacher forcing, up to and including the first EOS."""
    target_in = jnp.concatenate([jnp.full((ids.shape[0], 1), BOS), ids[:, :-1]], axis=1)
    logits = model(src, target_in, source_mask=src > 0, deterministic=True)
    lp = jnp.take_along_axis(jax.nn.log_softmax(logits), ids[..., None], -1)[..., 0]
    is_eos = (ids == EOS).astype(jnp.int32)
    eos_seen = jnp.cumsum(is_eos, axis=1) - is_eos
    real = eos_seen == 0
    return jnp.sum(jnp.where(real, lp, 0.0), axis=1), real.sum(axis=1)


def test_beam_scores_are_normalised_log_probs_and_beat_greedy():
    model = small(1)
    ids, scores = beam_search(model, SRC, SRC > 0, beam_width=4, length_penalty=0.6,
                              max_length=10)
    lp, length = _sequence_log_prob(model, SRC, ids)
    penalty = ((5.0 + length.astype(jnp.float32)) / 6.0) ** 0.6
    np.testing.assert_allclose(scores, lp / penalty, rtol=1e-4, atol=1e-4)
    greedy = greedy_decode(model, SRC, SRC > 0, max_length=10)
    glp, glength = _sequence_log_prob(model, SRC, greedy)
    finished = jnp.any(greedy == EOS, axis=1)  # compare sentences that greedy finished
    g_scores = glp / ((5.0 + glength.astype(jnp.float32)) / 6.0) ** 0.6
    assert bool(jnp.all(jnp.where(finished, scores >= g_scores - 1e-4, True)))


def _eos_model():
    """An untied model whose output always prefers EOS, then a given token."""
    model = small(tie_embeddings=False)
    d = model.features
    direction = jnp.ones((d,), jnp.float32)
    model.decoder_norm.scale[...] = jnp.zeros((d,))
    model.decoder_norm.bias[...] = direction
    kernel = jnp.zeros((d, V)).at[:, EOS].set(direction)
    model.output_kernel[...] = kernel
    return model


def test_eos_stops_and_pads():
    model = _eos_model()
    ids = greedy_decode(model, SRC, SRC > 0, max_length=7, pad_id=0)
    np.testing.assert_array_equal(ids, np.array([[EOS] + [0] * 6] * 3))
    beam, scores = beam_search(model, SRC, SRC > 0, beam_width=3, max_length=7)
    np.testing.assert_array_equal(beam, ids)
    np.testing.assert_allclose(scores, jax.nn.log_softmax(jnp.zeros(V).at[EOS].set(32.0))[EOS]
                               / ((5.0 + 1) / 6) ** 0.6, rtol=1e-5)


def test_padding_in_source_changes_nothing():
    model = small(2)
    wide = jnp.pad(SRC, ((0, 0), (0, 5)))
    for fn in (functools.partial(greedy_decode, max_length=9),
               lambda m, s, k: beam_search(m, s, k, beam_width=3, max_length=9)[0]):
        np.testing.assert_array_equal(fn(model, wide, wide > 0), fn(model, SRC, SRC > 0))
        one = fn(model, SRC[1:2, :3], SRC[1:2, :3] > 0)  # alone, unpadded
        np.testing.assert_array_equal(one, fn(model, SRC, SRC > 0)[1:2])


def test_no_recompilation_for_the_same_shapes():
    model = small(3)
    greedy_decode(model, SRC, SRC > 0, max_length=5)
    from jdrop.models._translate import _compiled

    before = _compiled.cache_info().misses
    greedy_decode(model, SRC + 1, SRC > 0, max_length=5)
    beam_search(model, SRC, SRC > 0, beam_width=2, max_length=5)
    beam_search(model, SRC, SRC > 0, beam_width=2, max_length=5)
    assert _compiled.cache_info().misses == before + 1


def test_copy_task_trains_and_decodes():
    """A two-layer model trained briefly on copying decodes unseen sequences exactly."""
    model = small(4, features=32, encoder_layers=1, decoder_layers=1, ffn_features=64)
    rng = np.random.default_rng(0)

    def batch(n):
        lengths = rng.integers(2, 6, n)
        src = np.zeros((n, 7), np.int32)
        for i, k in enumerate(lengths):
            src[i, :k] = rng.integers(4, V, k)
            src[i, k] = EOS
        tgt_out = src.copy()
        tgt_in = np.concatenate([np.full((n, 1), BOS, np.int32), src[:, :-1]], axis=1)
        tgt_in = np.where(np.arange(7) <= lengths[:, None], tgt_in, 0)
        return src, tgt_in, tgt_out

    graphdef, params = nnx.split(model)
    tx = optax.adam(3e-3)
    opt = tx.init(nnx.state(model, nnx.Param))

    @jax.jit
    def step(params, opt, src, tgt_in, tgt_out):
        def loss_fn(p):
            m = nnx.merge(graphdef, p)
            logits = m(src, tgt_in, source_mask=src > 0, target_mask=tgt_in > 0,
                       deterministic=True)
            return label_smoothed_cross_entropy(logits, tgt_out, tgt_in > 0, smoothing=0.0)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        with jax.numpy_dtype_promotion("standard"):  # optax is not strict-promotion clean
            updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    for _ in range(500):
        params, opt, loss = step(params, opt, *map(jnp.asarray, batch(64)))
    assert float(loss) < 0.1
    model = nnx.merge(graphdef, params)
    src, _, expected = batch(16)
    expected = np.pad(expected, ((0, 0), (0, 1)))  # max_length 8: EOS then padding
    np.testing.assert_array_equal(greedy_decode(model, src, src > 0, max_length=8), expected)
    ids, _ = beam_search(model, src, src > 0, beam_width=3, max_length=8)
    np.testing.assert_array_equal(ids, expected)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(max_length=0), ValueError, "max_length"),
        (dict(max_length=17), ValueError, "max_length=16"),
        (dict(max_length=4, beam_width=0), ValueError, "beam_width"),
        (dict(max_length=4, length_penalty=-1.0), ValueError, "length_penalty"),
        (dict(max_length=4, eos_id=-1), ValueError, "eos_id"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        beam_search(small(), SRC, SRC > 0, **kwargs)


def test_bad_inputs():
    with pytest.raises(TypeError, match="TransformerSeq2Seq"):
        greedy_decode(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), SRC, max_length=3)
    with pytest.raises(ValueError, match="source_mask"):
        greedy_decode(small(), SRC, SRC[:, :2] > 0, max_length=3)
    with pytest.raises(ValueError, match="source must be"):
        greedy_decode(small(), SRC.astype(jnp.float32), max_length=3)
