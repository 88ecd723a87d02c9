"""Tests for jdrop.mc.predictive_classification / predictive_regression (streamed summaries)."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import mc
from jdrop import uncertainty as unc

BATCH, SIZE, HIDDEN, CLASSES = 16, 16, 32, 10  # the LeNet of conftest.py


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_predictive_classification_matches_one_shot(
    lenet, lenet_samples, key, params, images, chunk_size
):
    num_samples = 13
    streamed = jax.jit(
        lambda k, p, x: mc.predictive_classification(
            lenet, k, p, x, num_samples=num_samples, chunk_size=chunk_size
        )
    )(key, params, images)
    samples = lenet_samples(key, params, images, num_samples)
    one_shot = unc.classification_uncertainty(samples, from_logits=True)
    for name in ("mean_log_probs", "predictive_probs", "predictive_entropy",
                 "expected_entropy", "class_variance", "variation_ratio"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(one_shot, name), rtol=1e-5, atol=1e-6,
            err_msg=name,
        )
    np.testing.assert_allclose(
        streamed.mutual_information, one_shot.mutual_information, rtol=1e-4, atol=2e-6
    )
    # The mean predictive log-probability from its definition, in float64.
    log_p = jax.nn.log_softmax(np.asarray(samples, np.float64), axis=-1)
    expected = np.log(np.exp(log_p).mean(axis=0))
    np.testing.assert_allclose(streamed.mean_log_probs, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("outputs", ["1d", "2d"])
def test_predictive_regression_matches_one_shot(regression_fn, key, params, images, outputs):
    fn = (lambda k, p, x: regression_fn(k, p, x)[:, 0]) if outputs == "1d" else regression_fn
    shape = (BATCH,) if outputs == "1d" else (BATCH, 2)
    targets = jax.random.normal(jax.random.key(5), shape)
    tau = 2.5
    streamed = jax.jit(lambda k, p, x, y: mc.predictive_regression(
        fn, k, p, x, num_samples=10, chunk_size=3, targets=y, tau=tau
    ))(key, params, images, targets)
    samples = jax.jit(lambda k, p, x: mc.sample(fn, k, p, x, num_samples=10))(
        key, params, images
    )
    one_shot = unc.regression_uncertainty(samples, tau, targets)
    for name in ("mean", "epistemic_variance", "total_variance", "log_likelihood", "rmse"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(one_shot, name), rtol=1e-5, atol=1e-6,
            err_msg=name,
        )
    # Gal's formula, from its definition in float64 (D = 1 per output for "1d").
    s = np.asarray(samples, np.float64)
    y = np.asarray(targets, np.float64)
    sq = (y - s) ** 2 if outputs == "1d" else ((y - s) ** 2).sum(-1)
    dim = 1 if outputs == "1d" else 2
    lse = np.log(np.exp(-0.5 * tau * sq).sum(0))
    ll = np.mean(lse - np.log(10) - 0.5 * dim * np.log(2 * np.pi) + 0.5 * dim * np.log(tau))
    np.testing.assert_allclose(streamed.log_likelihood, ll, rtol=1e-5)


def test_predictive_regression_optional_outputs(dropout_fn, key):
    x = jnp.arange(1.0, 7.0)
    targets = jnp.zeros((6,))
    bare = mc.predictive_regression(dropout_fn, key, x, num_samples=4)
    assert bare.total_variance is None and bare.log_likelihood is None and bare.rmse is None
    with_targets = mc.predictive_regression(dropout_fn, key, x, num_samples=4, targets=targets)
    assert with_targets.log_likelihood is None and with_targets.total_variance is None
    np.testing.assert_allclose(
        with_targets.rmse, np.sqrt(np.mean(np.square(bare.mean))), rtol=1e-6
    )
    with_tau = mc.predictive_regression(dropout_fn, key, x, num_samples=4, tau=4.0)
    assert with_tau.log_likelihood is None and with_tau.rmse is None
    np.testing.assert_allclose(with_tau.total_variance, bare.epistemic_variance + 0.25)
    np.testing.assert_array_equal(bare.mean, mc.sample(dropout_fn, key, x, num_samples=4).mean(0))


def test_streaming_memory_is_bounded_by_chunk_size(lenet, key, params):
    images = jnp.zeros((1000, SIZE, SIZE, 1))

    def footprint(num_samples):
        compiled = jax.jit(
            lambda k, x: mc.predictive_classification(
                lenet, k, params, x, num_samples=num_samples, chunk_size=100
            )
        ).lower(key, images).compile()
        analysis = compiled.memory_analysis()
        return analysis.temp_size_in_bytes + analysis.output_size_in_bytes

    small, large = footprint(100), footprint(10_000)
    # 10,000 samples of (1000, 10) float32 logits would take 400 MB; the summary needs
    # one chunk of 100.
    assert large < 1.5 * small, (small, large)
    assert large < 100e6, large


def test_bad_functions_and_outputs(dropout_fn, key):
    with pytest.raises(TypeError, match="fn must be callable"):
        mc.sample("model", key, jnp.ones(3), num_samples=2)
    with pytest.raises(ValueError, match="logits_fn must return one \\(N, K\\)"):
        mc.predictive_classification(dropout_fn, key, jnp.ones(3), num_samples=2)
    with pytest.raises(ValueError, match="targets.shape=\\(4,\\)"):
        mc.predictive_regression(dropout_fn, key, jnp.ones(3), num_samples=2, targets=jnp.ones(4))
    with pytest.raises(ValueError, match="tau"):
        mc.predictive_regression(
            dropout_fn, key, jnp.ones(3), num_samples=2, targets=jnp.ones(3), tau=-1.0
        )
    with pytest.raises(TypeError, match="key"):
        mc.sample(dropout_fn, jnp.zeros(3, jnp.uint32), jnp.ones(3), num_samples=2)
