"""Tests for jdrop.uncertainty against references written from the definitions and sklearn."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from jdrop import uncertainty as u

# ---------------------------------------------------------------------------------------
# Independent numpy references (float64), written from the definitions.
# ---------------------------------------------------------------------------------------


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


def np_calibration(probs, labels, num_bins, binning):
    """(ECE, MCE, counts, mean confidences, accuracies) by explicit loops over bins."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == np.asarray(labels)).astype(np.float64)
    n = len(conf)
    if binning == "equal_width":
        edges = np.linspace(0, 1, num_bins + 1)
        members = [
            (conf > edges[b]) & (conf <= edges[b + 1]) if b > 0 else (conf <= edges[1])
            for b in range(num_bins)
        ]
    else:
        rank = np.empty(n, int)
        rank[np.argsort(conf, kind="stable")] = np.arange(n)
        members = [(rank * num_bins) // n == b for b in range(num_bins)]
    ece, mce, counts, confs, accs = 0.0, 0.0, [], [], []
    for m in members:
        counts.append(m.sum())
        if m.sum() == 0:
            confs.append(0.0)
            accs.append(0.0)
            continue
        gap = abs(correct[m].mean() - conf[m].mean())
        ece += m.sum() / n * gap
        mce = max(mce, gap)
        confs.append(conf[m].mean())
        accs.append(correct[m].mean())
    return ece, mce, np.array(counts), np.array(confs), np.array(accs)


def np_gal_log_likelihood(samples, y, tau):
    """Gal's formula, computed naively: log of a mean of Gaussian densities."""
    samples, y = np.asarray(samples, np.float64), np.asarray(y, np.float64)
    dens = np.exp(-0.5 * tau * (y[None] - samples) ** 2) * np.sqrt(tau / (2 * np.pi))
    if samples.ndim == 3:
        dens = np.prod(dens, axis=-1)
    return np.mean(np.log(np.mean(dens, axis=0)))


def maybe_jit(fn, jit, **static):
    fn = functools.partial(fn, **static)
    return jax.jit(fn) if jit else fn


def random_logits(seed, shape, scale=2.0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(scale * rng.normal(size=shape), jnp.float32)


def allclose(actual, expected, atol=1e-5, rtol=1e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, atol=atol, rtol=rtol)


# ---------------------------------------------------------------------------------------
# Classification summaries.
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# Streaming classification summary.
# ---------------------------------------------------------------------------------------


def assert_classification_equal(streamed, one_shot, atol=1e-6):
    for name in u.ClassificationUncertainty._fields:
        np.testing.assert_allclose(
            np.asarray(getattr(streamed, name)),
            np.asarray(getattr(one_shot, name)),
            atol=atol,
            rtol=1e-5,
            err_msg=name,
        )


@pytest.mark.parametrize("from_logits", [False, True])
def test_streaming_classification_equals_one_shot(from_logits):
    logits = random_logits(3, (200, 8, 5), 3.0)
    inputs = logits if from_logits else jax.nn.log_softmax(logits, axis=-1)
    summary = u.ClassificationSummary.init(8, 5)
    update = jax.jit(u.ClassificationSummary.update, static_argnames="from_logits")
    start = 0
    for size in (1, 7, 50, 142):  # Uneven chunks, one of a single sample.
        summary = update(summary, inputs[start : start + size], from_logits=from_logits)
        start += size
    assert int(summary.count) == 200
    one_shot = u.classification_uncertainty(inputs, from_logits=from_logits)
    assert_classification_equal(summary.finalize(), one_shot)


def test_streaming_classification_in_jitted_scan_with_ten_thousand_samples():
    chunks = random_logits(4, (20, 500, 6, 10), 2.0)  # T = 10,000 in chunks of 500.

    @jax.jit
    def stream(chunks):
        def step(summary, chunk):
            return summary.update(chunk, from_logits=True), None

        summary, _ = jax.lax.scan(step, u.ClassificationSummary.init(6, 10), chunks)
        return summary.finalize()

    one_shot = u.classification_uncertainty(chunks.reshape(10_000, 6, 10), from_logits=True)
    assert_classification_equal(stream(chunks), one_shot)


def test_streaming_summary_validation():
    summary = u.ClassificationSummary.init(3, 4)
    with pytest.raises(ValueError, match=r"log_probs.shape=\(2, 3, 5\).*\(3, 4\)"):
        summary.update(jnp.zeros((2, 3, 5)), from_logits=True)
    with pytest.raises(ValueError, match="count=0"):
        summary.finalize()
    with pytest.raises(ValueError, match="num_classes"):
        u.ClassificationSummary.init(3, 0)
    with pytest.raises(ValueError, match="num_examples"):
        u.ClassificationSummary.init(0, 2)
    with pytest.raises(ValueError, match="sum to 1"):
        summary.update(jnp.zeros((2, 3, 4)))  # Zeros are logits, not log-probabilities.


# ---------------------------------------------------------------------------------------
# Regression.
# ---------------------------------------------------------------------------------------


def random_regression(seed, shape):
    rng = np.random.default_rng(seed)
    samples = rng.normal(size=shape)
    y = rng.normal(size=shape[1:])
    return jnp.asarray(samples, jnp.float32), jnp.asarray(y, jnp.float32)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("shape", [(30, 7), (30, 7, 3)])
def test_regression_moments_match_numpy(shape, jit):
    samples, _ = random_regression(5, shape)
    s64 = np.asarray(samples, np.float64)
    allclose(maybe_jit(u.predictive_mean, jit)(samples), s64.mean(axis=0))
    allclose(maybe_jit(u.epistemic_variance, jit)(samples), s64.var(axis=0))
    allclose(maybe_jit(u.total_variance, jit)(samples, 4.0), s64.var(axis=0) + 0.25)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("shape", [(40, 9), (40, 9, 2)])
@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_gal_log_likelihood_matches_direct_numpy(shape, tau, jit):
    samples, y = random_regression(6, shape)
    expected = np_gal_log_likelihood(samples, y, tau)
    actual = maybe_jit(u.predictive_log_likelihood, jit)(samples, y, tau)
    allclose(actual, expected)
    per_point = u.predictive_log_likelihood(samples, y, tau, reduction="none")
    assert per_point.shape == (shape[1],)
    allclose(jnp.mean(per_point), expected)


def test_gal_log_likelihood_formula_terms():
    # ll = logsumexp_t(-tau/2 (y - yhat_t)^2) - log T - log(2 pi)/2 + log(tau)/2, per point.
    samples = jnp.array([[0.0, 1.0], [2.0, 1.5], [1.0, -1.0]])
    y = jnp.array([1.0, 0.0])
    tau = 2.0
    s, yy = np.asarray(samples, np.float64), np.asarray(y, np.float64)
    a = -0.5 * tau * (yy - s) ** 2
    lse = np.log(np.sum(np.exp(a - a.max(0)), axis=0)) + a.max(0)
    expected = lse - np.log(3) - 0.5 * np.log(2 * np.pi) + 0.5 * np.log(tau)
    allclose(u.predictive_log_likelihood(samples, y, tau, reduction="none"), expected)


def test_gal_log_likelihood_is_stable_for_large_residuals():
    # The naive formula underflows to log(0) = -inf; the logsumexp form stays exact.
    samples = jnp.zeros((5, 1))
    y = jnp.array([100.0])
    expected = -0.5 * 100.0**2 - 0.5 * math.log(2 * math.pi)
    with np.errstate(divide="ignore"):
        assert np.isneginf(np_gal_log_likelihood(samples, y, 1.0))
    allclose(u.predictive_log_likelihood(samples, y, 1.0), expected)


def test_rmse_and_regression_uncertainty():
    samples, y = random_regression(7, (25, 11))
    s64, y64 = np.asarray(samples, np.float64), np.asarray(y, np.float64)
    allclose(u.rmse(samples[0], y), np.sqrt(np.mean((s64[0] - y64) ** 2)))
    out = u.regression_uncertainty(samples, 2.0, y)
    allclose(out.rmse, np.sqrt(np.mean((s64.mean(0) - y64) ** 2)))
    allclose(out.log_likelihood, np_gal_log_likelihood(samples, y, 2.0))
    allclose(out.total_variance, s64.var(0) + 0.5)
    unlabeled = u.regression_uncertainty(samples, 2.0)
    assert unlabeled.log_likelihood is None and unlabeled.rmse is None


@pytest.mark.parametrize("with_targets", [False, True])
@pytest.mark.parametrize("shape", [(120, 6), (120, 6, 3)])
def test_streaming_regression_equals_one_shot(shape, with_targets):
    samples, y = random_regression(8, shape)
    samples = samples * 3.0 + 10.0  # A large mean tests the variance merge.
    y = y if with_targets else None
    summary = u.RegressionSummary.init(shape[1:], 1.5, y=y)
    update = jax.jit(u.RegressionSummary.update)
    start = 0
    for size in (1, 19, 100):
        summary = update(summary, samples[start : start + size])
        start += size
    streamed = summary.finalize()
    one_shot = u.regression_uncertainty(samples, 1.5, y)
    for name in u.RegressionUncertainty._fields:
        a, b = getattr(streamed, name), getattr(one_shot, name)
        if not with_targets and name in ("log_likelihood", "rmse"):
            assert a is None and b is None
            continue
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-6)


def test_streaming_regression_in_jitted_scan():
    samples, y = random_regression(9, (100, 4))

    @jax.jit
    def stream(chunks, y):
        def step(summary, chunk):
            return summary.update(chunk), None

        summary, _ = jax.lax.scan(step, u.RegressionSummary.init((4,), 2.0, y=y), chunks)
        return summary.finalize()

    streamed = stream(samples.reshape(10, 10, 4), y)
    one_shot = u.regression_uncertainty(samples, 2.0, y)
    allclose(streamed.log_likelihood, float(one_shot.log_likelihood), atol=1e-6)
    allclose(streamed.epistemic_variance, np.asarray(one_shot.epistemic_variance), atol=1e-6)


def test_regression_validation():
    samples, y = random_regression(10, (5, 4))
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        u.predictive_mean(jnp.zeros(5))
    with pytest.raises(ValueError, match="T >= 1"):
        u.epistemic_variance(jnp.zeros((0, 3)))
    with pytest.raises(TypeError, match="floating"):
        u.predictive_mean(jnp.zeros((2, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"y.shape=\(3,\).*samples.shape=\(5, 4\)"):
        u.predictive_log_likelihood(samples, jnp.zeros(3), 1.0)
    for tau in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tau"):
            u.total_variance(samples, tau)
    with pytest.raises(ValueError, match="tau must be a scalar"):
        u.predictive_log_likelihood(samples, y, jnp.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        u.predictive_log_likelihood(samples, y, 1.0, reduction="sum")
    with pytest.raises(ValueError, match=r"y.shape=\(3,\).*pred.shape=\(4,\)"):
        u.rmse(jnp.zeros(4), jnp.zeros(3))
    with pytest.raises(ValueError, match=r"y.shape=\(3,\).*samples.shape=\(5, 4\)"):
        u.regression_uncertainty(samples, 1.0, jnp.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        u.RegressionSummary.init((2, 3, 4), 1.0)
    with pytest.raises(ValueError, match=r"y.shape=\(3,\).*shape=\(4,\)"):
        u.RegressionSummary.init((4,), 1.0, y=jnp.zeros(3))
    with pytest.raises(ValueError, match="tau"):
        u.RegressionSummary.init((4,), 0.0)
    summary = u.RegressionSummary.init((4,), 1.0)
    with pytest.raises(ValueError, match=r"samples.shape=\(5, 3\).*shape=\(4,\)"):
        summary.update(jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="count=0"):
        summary.finalize()


# ---------------------------------------------------------------------------------------
# Quality metrics of the final predictive distribution.
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Calibration.
# ---------------------------------------------------------------------------------------

# Six binary predictions, worked by hand. Confidence = max prob, correct = argmax == label.
#   1: [0.95, 0.05] label 0 -> conf 0.95, correct
#   2: [0.85, 0.15] label 1 -> conf 0.85, wrong
#   3: [0.30, 0.70] label 1 -> conf 0.70, correct
#   4: [0.35, 0.65] label 1 -> conf 0.65, correct
#   5: [0.55, 0.45] label 0 -> conf 0.55, correct
#   6: [0.45, 0.55] label 0 -> conf 0.55, wrong
# Five equal-width bins (0.2 wide):
#   (0.8, 1.0]: {1, 2} conf 0.900 acc 0.5 gap 0.400
#   (0.6, 0.8]: {3, 4} conf 0.675 acc 1.0 gap 0.325
#   (0.4, 0.6]: {5, 6} conf 0.550 acc 0.5 gap 0.050
#   ECE = (2/6)(0.4 + 0.325 + 0.05) = 0.775 / 3 = 0.258333...; MCE = 0.4.
# Two equal-mass bins (sorted confidences 0.55, 0.55, 0.65 | 0.70, 0.85, 0.95):
#   low:  conf 1.75/3 = 0.583333 acc 2/3 gap 0.083333
#   high: conf 2.50/3 = 0.833333 acc 2/3 gap 0.166667
#   ECE = 0.5 * 0.083333 + 0.5 * 0.166667 = 0.125; MCE = 0.166667.
HAND_PROBS = jnp.array(
    [[0.95, 0.05], [0.85, 0.15], [0.30, 0.70], [0.35, 0.65], [0.55, 0.45], [0.45, 0.55]]
)
HAND_LABELS = jnp.array([0, 1, 1, 1, 0, 0])


@pytest.mark.parametrize("jit", [False, True])
def test_hand_computed_calibration(jit):
    def metric(fn, **kw):
        return float(maybe_jit(fn, jit, **kw)(HAND_PROBS, HAND_LABELS))

    width = {"num_bins": 5, "binning": "equal_width"}
    mass = {"num_bins": 2, "binning": "equal_mass"}
    assert metric(u.expected_calibration_error, **width) == pytest.approx(0.775 / 3, abs=1e-6)
    assert metric(u.maximum_calibration_error, **width) == pytest.approx(0.4, abs=1e-6)
    assert metric(u.expected_calibration_error, **mass) == pytest.approx(0.125, abs=1e-6)
    assert metric(u.maximum_calibration_error, **mass) == pytest.approx(1 / 6, abs=1e-6)

    data = maybe_jit(u.reliability_data, jit, **width)(HAND_PROBS, HAND_LABELS)
    np.testing.assert_array_equal(np.asarray(data.count), [0, 0, 2, 2, 2])
    allclose(data.confidence, [0, 0, 0.55, 0.675, 0.9])
    allclose(data.accuracy, [0, 0, 0.5, 1.0, 0.5])
    allclose(data.bin_edges, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    mass_data = u.reliability_data(HAND_PROBS, HAND_LABELS, **mass)
    np.testing.assert_array_equal(np.asarray(mass_data.count), [3, 3])
    allclose(mass_data.bin_edges, [0.0, 0.7, 1.0])


@pytest.mark.parametrize("binning", u.BINNINGS)
@pytest.mark.parametrize("num_bins", [1, 3, 10, 15])
def test_calibration_matches_numpy_loops(num_bins, binning):
    probs64, labels64 = random_probs(14, 257, 3, concentration=0.5)
    probs = jnp.asarray(probs64, jnp.float32)
    ece, mce, counts, confs, accs = np_calibration(probs, labels64, num_bins, binning)
    kw = {"num_bins": num_bins, "binning": binning}
    allclose(u.expected_calibration_error(probs, labels64, **kw), ece)
    allclose(u.maximum_calibration_error(probs, labels64, **kw), mce)
    data = u.reliability_data(probs, labels64, **kw)
    np.testing.assert_array_equal(np.asarray(data.count), counts)
    allclose(data.confidence, confs)
    allclose(data.accuracy, accs)
    assert float(u.maximum_calibration_error(probs, labels64, **kw)) >= float(
        u.expected_calibration_error(probs, labels64, **kw)
    )


def test_equal_mass_bins_are_balanced_with_fewer_examples_than_bins():
    probs, labels = random_probs(15, 4, 2)
    data = u.reliability_data(probs, labels, num_bins=6, binning="equal_mass")
    assert int(data.count.sum()) == 4
    assert int(data.count.max()) == 1


@pytest.mark.parametrize("binning", u.BINNINGS)
def test_ece_near_zero_for_calibrated_predictions(binning):
    rng = np.random.default_rng(16)
    n, k = 200_000, 4
    probs = rng.dirichlet(np.full(k, 0.7), size=n)
    labels = (probs.cumsum(-1) < rng.uniform(size=(n, 1))).sum(-1)  # y ~ Categorical(p).
    labels = np.minimum(labels, k - 1)
    ece = float(u.expected_calibration_error(probs, labels, binning=binning))
    assert ece < 0.02
    # The same labels with sharpened (overconfident) probabilities are miscalibrated.
    sharp = probs**3 / (probs**3).sum(-1, keepdims=True)
    assert float(u.expected_calibration_error(sharp, labels, binning=binning)) > 0.05


# ---------------------------------------------------------------------------------------
# AUROC and average precision.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("decimals", [0, 1, 6])  # 0 and 1: many tied scores.
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_and_average_precision_match_sklearn(seed, decimals, jit):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(size=400) + 0.8 * labels, decimals)
    scores32 = jnp.asarray(scores, jnp.float32)
    reference_scores = np.asarray(scores32, np.float64)  # Same ties as the float32 input.
    allclose(maybe_jit(u.auroc, jit)(scores32, labels), roc_auc_score(labels, reference_scores))
    allclose(
        maybe_jit(u.average_precision, jit)(scores32, labels),
        average_precision_score(labels, reference_scores),
    )


def test_auroc_extremes_and_label_types():
    scores = jnp.array([0.1, 0.2, 0.3, 0.4])
    assert float(u.auroc(scores, jnp.array([0, 0, 1, 1]))) == 1.0
    assert float(u.auroc(scores, jnp.array([1, 1, 0, 0]))) == 0.0
    assert float(u.auroc(jnp.ones(4), jnp.array([0, 1, 0, 1]))) == 0.5  # All tied.
    assert float(u.average_precision(scores, jnp.array([True, True, True, True]))) == 1.0
    integer_scores = np.array([3, 1, 2, 2, 5])
    labels = np.array([1, 0, 1, 0, 1])
    allclose(u.auroc(integer_scores, labels), roc_auc_score(labels, integer_scores))
    allclose(
        u.average_precision(integer_scores, labels),
        average_precision_score(labels, integer_scores),
    )


def test_binary_metric_validation():
    scores = jnp.array([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"labels.shape=\(2,\).*scores.shape=\(3,\)"):
        u.auroc(scores, jnp.array([0, 1]))
    with pytest.raises(ValueError, match=r"scores.shape=\(3, 1\)"):
        u.auroc(scores[:, None], jnp.array([0, 1, 1]))
    with pytest.raises(ValueError, match="no negatives"):
        u.auroc(scores, jnp.array([1, 1, 1]))
    with pytest.raises(ValueError, match="no positives"):
        u.auroc(scores, jnp.array([0, 0, 0]))
    with pytest.raises(ValueError, match="no positives"):
        u.average_precision(scores, jnp.array([0, 0, 0]))
    with pytest.raises(ValueError, match="0 or 1"):
        u.average_precision(scores, jnp.array([0, 2, 1]))
    with pytest.raises(ValueError, match="NaN"):
        u.auroc(jnp.array([0.1, jnp.nan, 0.3]), jnp.array([0, 1, 1]))
    with pytest.raises(TypeError, match="labels"):
        u.auroc(scores, jnp.array([0.0, 1.0, 1.0]))


# ---------------------------------------------------------------------------------------
# Validation of probabilities, labels and options.
# ---------------------------------------------------------------------------------------

GOOD_PROBS = jnp.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5], [0.1, 0.9]])
GOOD_LABELS = jnp.array([0, 1, 1, 0])
PROB_METRICS = [
    u.accuracy,
    u.nll,
    u.brier_score,
    u.expected_calibration_error,
    u.maximum_calibration_error,
    u.reliability_data,
]


@pytest.mark.parametrize("fn", PROB_METRICS, ids=lambda f: f.__name__)
def test_probability_metric_validation(fn):
    with pytest.raises(ValueError, match=r"labels.shape=\(3,\).*probs.shape=\(4, 2\)"):
        fn(GOOD_PROBS, GOOD_LABELS[:3])
    with pytest.raises(ValueError, match="non-negative"):
        fn(GOOD_PROBS.at[0].set(jnp.array([1.2, -0.2])), GOOD_LABELS)
    with pytest.raises(ValueError, match="sum to 1"):
        fn(GOOD_PROBS.at[0, 0].set(0.75), GOOD_LABELS)
    with pytest.raises(ValueError, match="sum to 1"):
        fn(GOOD_PROBS.at[0, 0].set(jnp.nan), GOOD_LABELS)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        fn(GOOD_PROBS, GOOD_LABELS.at[0].set(2))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        fn(GOOD_PROBS[None], GOOD_LABELS[None])
    with pytest.raises(TypeError, match="labels"):
        fn(GOOD_PROBS, GOOD_LABELS.astype(jnp.float32))
    with pytest.raises(TypeError, match="floating"):
        fn(GOOD_PROBS.astype(jnp.int32), GOOD_LABELS)


def test_row_sum_tolerance_is_as_documented():
    within = GOOD_PROBS.at[0, 0].set(0.7009)  # Row sums to 1.0009 <= 1 + 1e-3.
    beyond = GOOD_PROBS.at[0, 0].set(0.702)  # Row sums to 1.002.
    assert np.isfinite(float(u.nll(within, GOOD_LABELS)))
    with pytest.raises(ValueError, match=r"atol=0.001"):
        u.nll(beyond, GOOD_LABELS)
    half = beyond.astype(jnp.float16)  # 16-bit floats get atol = 1e-2.
    assert np.isfinite(float(u.nll(half, GOOD_LABELS)))
    with pytest.raises(ValueError, match=r"atol=0.01"):
        u.nll(GOOD_PROBS.at[0, 0].set(0.72).astype(jnp.float16), GOOD_LABELS)


def test_value_checks_are_skipped_under_jit():
    # Documented: invalid values are undefined under jit (no error, no host sync).
    bad = GOOD_PROBS.at[0, 0].set(0.9)
    value = jax.jit(u.brier_score)(bad, GOOD_LABELS)
    assert value.shape == ()
    with pytest.raises(ValueError, match="sum to 1"):
        u.brier_score(bad, GOOD_LABELS)


@pytest.mark.parametrize(
    "fn", [u.expected_calibration_error, u.maximum_calibration_error, u.reliability_data]
)
def test_num_bins_and_binning_validation(fn):
    with pytest.raises(ValueError, match="num_bins"):
        fn(GOOD_PROBS, GOOD_LABELS, num_bins=0)
    with pytest.raises(TypeError, match="num_bins"):
        fn(GOOD_PROBS, GOOD_LABELS, num_bins=2.5)
    with pytest.raises(ValueError, match="binning"):
        fn(GOOD_PROBS, GOOD_LABELS, binning="quantile")


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
