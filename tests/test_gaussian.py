"""Gaussian dropout: multiplicative N(1, rate / (1 - rate)) noise."""

import jax.numpy as jnp
import numpy as np
import pytest

import jdrop

N = 1 << 20


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_moments_match_bernoulli_dropout(key, rate):
    x = np.float32(2.0)
    y = np.asarray(jdrop.gaussian_dropout(key, jnp.full((N,), x), rate), np.float64)
    var = x**2 * rate / (1 - rate)
    assert abs(y.mean() - x) <= 6 * np.sqrt(var / N)
    assert abs(y.var() - var) <= 6 * var * np.sqrt(2 / N)


def test_rate_one_is_rejected(key):
    with pytest.raises(ValueError, match=r"\[0, 1\).*rate=1.0"):
        jdrop.gaussian_dropout(key, jnp.ones(3), 1.0)


def test_identity_cases(key):
    x = jnp.ones(3)
    assert jdrop.gaussian_dropout(key, x, 0.0) is x
    assert jdrop.gaussian_dropout(None, x, 0.5, deterministic=True) is x
