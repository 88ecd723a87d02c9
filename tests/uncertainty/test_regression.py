"""Tests for jdrop.uncertainty regression metrics and Gal's log-likelihood."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import uncertainty as u


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


def allclose(actual, expected, atol=1e-5, rtol=1e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, atol=atol, rtol=rtol)


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
