"""Tests for jdrop.uncertainty classification metrics against numpy references and sklearn."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    brier_score_loss,
    log_loss,
)

from jdrop import uncertainty as u


def np_softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def np_entropy(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)


def np_classification(logits):
    """Every summary of (T, N, K) logits, straight from the definitions."""
    p = np_softmax(np.asarray(logits, np.float64))
    t, n, k = p.shape
    pbar = p.mean(axis=0)
    total = np_entropy(pbar)
    aleatoric = np_entropy(p).mean(axis=0)
    votes = np.zeros((n, k))
    for i in range(t):
        for j in range(n):
            votes[j, np.argmax(p[i, j])] += 1
    return {
        "predictive_probs": pbar,
        "predictive_entropy": total,
        "expected_entropy": aleatoric,
        "mutual_information": np.maximum(total - aleatoric, 0.0),
        "variation_ratio": 1 - votes.max(axis=-1) / t,
        "class_variance": p.var(axis=0),
    }


def maybe_jit(fn, jit, **static):
    fn = functools.partial(fn, **static)
    return jax.jit(fn) if jit else fn


def random_logits(seed, shape, scale=2.0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(scale * rng.normal(size=shape), jnp.float32)


def allclose(actual, expected, atol=1e-5, rtol=1e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, atol=atol, rtol=rtol)


SUMMARIES = [
    "predictive_probs",
    "predictive_entropy",
    "expected_entropy",
    "mutual_information",
    "variation_ratio",
    "class_variance",
]


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", SUMMARIES)
def test_classification_summary_matches_numpy(name, jit):
    logits = random_logits(0, (20, 6, 5))
    expected = np_classification(logits)[name]
    fn = getattr(u, name)
    from_logits = maybe_jit(fn, jit, from_logits=True)(logits)
    from_log_probs = maybe_jit(fn, jit)(jax.nn.log_softmax(logits, axis=-1))
    allclose(from_logits, expected)
    allclose(from_log_probs, expected)


def test_mean_log_probs_matches_log_of_mean():
    logits = random_logits(1, (7, 4, 3))
    expected = np.log(np_softmax(np.asarray(logits, np.float64)).mean(axis=0))
    allclose(u.mean_log_probs(logits, from_logits=True), expected)


def test_mean_log_probs_is_accurate_where_probabilities_underflow():
    # Log-probabilities of -200 underflow to 0 in float32; the log-space mean keeps them.
    log_probs = jnp.array([[[0.0, -200.0]], [[0.0, -202.0]]])
    expected = np.log(np.mean(np.exp(np.array([-200.0, -202.0], np.float64))))
    allclose(u.mean_log_probs(log_probs)[0, 1], expected, rtol=1e-6)


def test_classification_uncertainty_matches_individual_functions():
    logits = random_logits(2, (9, 5, 4))
    together = u.classification_uncertainty(logits, from_logits=True)
    for name in SUMMARIES:
        allclose(getattr(together, name), getattr(u, name)(logits, from_logits=True), atol=1e-7)
    allclose(together.mean_log_probs, u.mean_log_probs(logits, from_logits=True), atol=1e-7)


def test_hand_computed_two_sample_example():
    log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
    aleatoric = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    allclose(u.predictive_entropy(log_probs), [math.log(2)])
    allclose(u.expected_entropy(log_probs), [aleatoric])
    allclose(u.mutual_information(log_probs), [math.log(2) - aleatoric])
    allclose(u.class_variance(log_probs), [[0.16, 0.16]])
    allclose(u.variation_ratio(log_probs), [0.5])


# A few fixed shapes keep the number of compilations (and the test time) small.
SHAPES = [(1, 3, 2), (5, 4, 3), (8, 2, 6), (30, 3, 10)]


jit_uncertainty = jax.jit(u.classification_uncertainty, static_argnames="from_logits")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from(SHAPES),
    scale=st.floats(0.01, 30.0),
)
def test_entropy_decomposition_invariants(seed, shape, scale):
    logits = random_logits(seed, shape, scale)
    out = jit_uncertainty(logits, from_logits=True)
    k = shape[-1]
    total = np.asarray(out.predictive_entropy)
    mi = np.asarray(out.mutual_information)
    aleatoric = np.asarray(out.expected_entropy)
    eps = 1e-5
    assert np.all(mi >= 0)
    assert np.all(mi <= total + eps)
    assert np.all(total <= math.log(k) + eps)
    assert np.all(aleatoric >= -eps)
    assert np.all(aleatoric <= total + eps)  # Jensen: entropy is concave.
    np.testing.assert_allclose(mi, np.maximum(total - aleatoric, 0), atol=1e-6)
    vr = np.asarray(out.variation_ratio)
    assert np.all((vr >= 0) & (vr <= 1 - 1 / k + eps))
    np.testing.assert_allclose(np.asarray(out.predictive_probs).sum(-1), 1.0, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    t=st.sampled_from([1, 2, 41, 100]),
    k=st.sampled_from([2, 10]),
)
def test_agreeing_samples_have_zero_epistemic_uncertainty(seed, t, k):
    one = random_logits(seed, (1, 3, k), 3.0)
    logits = jnp.tile(one, (t, 1, 1))
    out = jit_uncertainty(logits, from_logits=True)
    # Zero up to float32 rounding of logsumexp over T copies (about 1e-6 in nats).
    assert np.all(np.asarray(out.mutual_information) <= 1e-5)
    np.testing.assert_array_equal(np.asarray(out.variation_ratio), 0.0)
    np.testing.assert_allclose(np.asarray(out.class_variance), 0.0, atol=1e-7)
    np.testing.assert_allclose(out.predictive_entropy, out.expected_entropy, atol=1e-5)


def test_disagreeing_samples_have_positive_mutual_information():
    logits = jnp.array([[[5.0, 0.0]], [[0.0, 5.0]]])
    assert float(u.mutual_information(logits, from_logits=True)[0]) > 0.5


def test_zero_probabilities_give_finite_values_and_gradients():
    log_probs = jnp.log(jnp.array([[[1.0, 0.0, 0.0]], [[0.5, 0.5, 0.0]]]))
    assert np.isneginf(np.asarray(log_probs)).any()

    def loss(lp):
        out = u.classification_uncertainty(lp)
        return jnp.sum(out.mutual_information + out.predictive_entropy + out.expected_entropy)

    value, grad = jax.value_and_grad(loss)(log_probs)
    assert np.isfinite(float(value))
    assert not np.isnan(np.asarray(grad)).any()


def random_probs(seed, n, k, concentration=1.0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, concentration), size=n)
    labels = rng.integers(0, k, size=n)
    return probs, labels  # numpy float64 and int64, as users often hold them.


@pytest.mark.parametrize("jit", [False, True])
def test_accuracy_nll_brier_match_references(jit):
    probs64, labels64 = random_probs(11, 300, 4)
    probs, labels = jnp.asarray(probs64, jnp.float32), jnp.asarray(labels64)
    allclose(maybe_jit(u.accuracy, jit)(probs, labels), np.mean(probs64.argmax(-1) == labels64))
    allclose(maybe_jit(u.nll, jit)(probs, labels), log_loss(labels64, probs64, labels=range(4)))
    allclose(
        maybe_jit(u.nll_from_log_probs, jit)(jnp.log(probs), labels),
        log_loss(labels64, probs64, labels=range(4)),
    )
    onehot = np.eye(4)[labels64]
    allclose(
        maybe_jit(u.brier_score, jit)(probs, labels), np.mean(((probs64 - onehot) ** 2).sum(-1))
    )


def test_nll_from_logits_and_binary_brier_against_sklearn():
    logits = random_logits(12, (50, 2))
    labels = jnp.asarray(np.random.default_rng(12).integers(0, 2, 50))
    probs64 = np_softmax(np.asarray(logits, np.float64))
    allclose(
        u.nll_from_log_probs(logits, labels, from_logits=True),
        log_loss(np.asarray(labels), probs64, labels=[0, 1]),
    )
    # Multi-class Brier (sum over classes) is twice sklearn's binary Brier for K = 2.
    allclose(
        u.brier_score(jax.nn.softmax(logits), labels),
        2 * brier_score_loss(np.asarray(labels), probs64[:, 1]),
    )


def test_numpy_float64_inputs_are_accepted():
    probs64, labels64 = random_probs(13, 20, 3)
    assert probs64.dtype == np.float64
    for fn in (u.accuracy, u.nll, u.brier_score, u.expected_calibration_error):
        assert np.isfinite(float(fn(probs64, labels64)))
    assert np.isfinite(float(u.auroc(probs64[:, 0], labels64 == 1)))
    samples = np.random.default_rng(13).normal(size=(4, 20))
    assert np.isfinite(float(u.predictive_log_likelihood(samples, samples[0], 2.0)))
    assert np.isfinite(float(u.rmse(samples[0], samples[1])))
    log_probs = np.log(np.stack([probs64, probs64]))
    assert np.isfinite(np.asarray(u.mutual_information(log_probs))).all()


GOOD_PROBS = jnp.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5], [0.1, 0.9]])


GOOD_LABELS = jnp.array([0, 1, 1, 0])


MC_FUNCTIONS = [
    u.mean_log_probs,
    u.predictive_probs,
    u.predictive_entropy,
    u.expected_entropy,
    u.mutual_information,
    u.variation_ratio,
    u.class_variance,
    u.classification_uncertainty,
]


@pytest.mark.parametrize("fn", MC_FUNCTIONS, ids=lambda f: f.__name__)
def test_monte_carlo_classification_validation(fn):
    log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
    with pytest.raises(ValueError, match=r"\(T, N, K\).*shape=\(1, 2\)"):
        fn(log_probs[0])
    with pytest.raises(ValueError, match=r"shape=\(0, 1, 2\)"):
        fn(log_probs[:0])
    with pytest.raises(ValueError, match="sum to 1"):
        fn(jnp.exp(log_probs))  # Probabilities passed where log-probabilities belong.
    with pytest.raises(ValueError, match="sum to 1"):
        fn(log_probs.at[0, 0, 0].set(jnp.nan))
    with pytest.raises(TypeError, match="floating"):
        fn(jnp.zeros((2, 1, 2), jnp.int32))
    fn(jnp.zeros((2, 1, 2)), from_logits=True)  # Any logits are valid.


def test_nll_from_log_probs_validation():
    log_probs = jnp.log(GOOD_PROBS)
    with pytest.raises(ValueError, match=r"labels.shape=\(3,\).*log_probs.shape=\(4, 2\)"):
        u.nll_from_log_probs(log_probs, GOOD_LABELS[:3])
    with pytest.raises(ValueError, match="sum to 1"):
        u.nll_from_log_probs(GOOD_PROBS, GOOD_LABELS)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        u.nll_from_log_probs(log_probs[None], GOOD_LABELS)
    allclose(u.nll_from_log_probs(log_probs, GOOD_LABELS), float(u.nll(GOOD_PROBS, GOOD_LABELS)))
