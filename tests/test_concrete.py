"""Concrete dropout: differentiable in the drop probability, with Gal et al.'s regulariser."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop


def test_expectation_is_the_input(key):
    x = jnp.full((1 << 18,), 3.0)
    y = np.asarray(jdrop.concrete_dropout(key, x, 0.3), np.float64)
    # mean of the relaxed mask (1 - z) / (1 - p) is ~1 at t = 0.1 (within 1%)
    assert abs(y.mean() / 3.0 - 1) < 0.01


def test_low_temperature_approaches_bernoulli(key):
    y = np.asarray(jdrop.concrete_dropout(key, jnp.ones(1 << 16), 0.4, temperature=1e-3))
    near_binary = (np.abs(y) < 1e-3) | (np.abs(y - 1 / 0.6) < 1e-3)
    assert near_binary.mean() > 0.99
    assert abs((np.abs(y) < 1e-3).mean() - 0.4) < 0.02


def test_gradient_in_the_rate_against_finite_differences(key):
    x = jax.random.normal(jax.random.key(5), (4096,))
    f = lambda p: jnp.sum(jdrop.concrete_dropout(key, x, p) ** 2)
    p = jnp.float32(0.3)
    grad = float(jax.grad(f)(p))
    eps = np.float32(1e-3)
    numeric = float((f(p + eps) - f(p - eps)) / (2 * eps))
    assert grad != 0.0
    assert grad == pytest.approx(numeric, rel=0.05)


def test_regulariser_matches_formula():
    w = jnp.arange(6.0).reshape(2, 3)
    p = 0.2
    expected = 0.5 * float((w**2).sum()) / (1 - p) + 0.1 * 4 * (
        p * np.log(p) + (1 - p) * np.log(1 - p))
    r = jdrop.concrete_dropout_regularizer(p, {"kernel": w}, input_dim=4,
                                           weight_regularizer=0.5, dropout_regularizer=0.1)
    assert float(r) == pytest.approx(expected, rel=1e-6)
    grad = jax.grad(lambda p: jdrop.concrete_dropout_regularizer(
        p, w, input_dim=4, weight_regularizer=0.5, dropout_regularizer=0.1))(jnp.float32(p))
    assert np.isfinite(grad) and grad != 0


def test_bad_arguments(key):
    with pytest.raises(ValueError, match="temperature=0"):
        jdrop.concrete_dropout(key, jnp.ones(3), 0.5, temperature=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        jdrop.concrete_dropout(key, jnp.ones(3), 1.0)
