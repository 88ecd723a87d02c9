"""Tests for the streaming summaries: updates, merges and one finalize equal one-shot metrics."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import uncertainty as u


def random_logits(seed, shape, scale=2.0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(scale * rng.normal(size=shape), jnp.float32)


def allclose(actual, expected, atol=1e-5, rtol=1e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, atol=atol, rtol=rtol)


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


def random_regression(seed, shape):
    rng = np.random.default_rng(seed)
    samples = rng.normal(size=shape)
    y = rng.normal(size=shape[1:])
    return jnp.asarray(samples, jnp.float32), jnp.asarray(y, jnp.float32)


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


def test_merge_equals_one_stream_and_empty_merges_are_neutral():
    logits = random_logits(7, (30, 4, 3))
    empty = u.ClassificationSummary.init(4, 3)
    first = empty.update(logits[:11], from_logits=True)
    merged = first.merge(empty.update(logits[11:], from_logits=True))
    assert int(merged.count) == 30
    one_shot = u.classification_uncertainty(logits, from_logits=True)
    assert_classification_equal(merged.finalize(), one_shot)
    assert_classification_equal(empty.merge(empty).merge(merged).finalize(), one_shot)
    samples, y = random_regression(10, (25, 6))
    empty = u.RegressionSummary.init((6,), 2.0, y=y)
    merged = empty.update(samples[:7]).merge(empty.update(samples[7:]))
    one_shot = u.regression_uncertainty(samples, 2.0, y)
    for name in u.RegressionUncertainty._fields:
        allclose(getattr(merged.finalize(), name), np.asarray(getattr(one_shot, name)))
    with pytest.raises(ValueError, match="cannot merge"):
        u.ClassificationSummary.init(4, 3).merge(u.ClassificationSummary.init(4, 2))
    with pytest.raises(ValueError, match="targets"):
        empty.merge(u.RegressionSummary.init((6,), 2.0))


def test_finalize_with_a_static_count():
    logits = random_logits(11, (9, 2, 3))
    summary = u.ClassificationSummary.init(2, 3).update(logits, from_logits=True)
    assert_classification_equal(summary.finalize(9), summary.finalize())
    with pytest.raises(ValueError, match="num_samples=8"):
        summary.finalize(8)
    samples, y = random_regression(12, (9, 5))
    regression = u.RegressionSummary.init((5,), 3.0, y=y).update(samples)
    for name in u.RegressionUncertainty._fields:
        allclose(getattr(regression.finalize(9), name),
                 np.asarray(getattr(regression.finalize(), name)))


def test_regression_summary_without_tau():
    samples, y = random_regression(13, (8, 4))
    result = u.RegressionSummary.init((4,), None, y=y).update(samples).finalize()
    assert result.total_variance is None and result.log_likelihood is None
    allclose(result.rmse, np.sqrt(np.mean((np.asarray(samples).mean(0) - np.asarray(y)) ** 2)))
