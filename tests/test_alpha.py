"""Alpha dropout: SELU statistics preserved, constants as PyTorch's alpha_dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jdrop

N = 1 << 20


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_zero_mean_unit_variance_preserved(key, rate):
    x = jax.random.normal(jax.random.key(9), (N,))
    y = np.asarray(jdrop.alpha_dropout(key, x, rate), np.float64)
    # the sample moments of ~unit-variance data over N points: std 1/sqrt(N), sqrt(2/N)
    assert abs(y.mean()) < 6 / np.sqrt(N) * 1.5
    assert abs(y.var() - 1) < 6 * np.sqrt(2 / N) * 1.5


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7])
def test_two_output_values_match_torch(key, rate):
    """On a constant input, kept -> a*c + b and dropped -> a*alpha' + b, as in torch."""
    c = np.float32(0.7)
    ours = np.unique(np.asarray(jdrop.alpha_dropout(key, jnp.full((4096,), c), rate)))
    torch.manual_seed(0)
    theirs = torch.nn.functional.alpha_dropout(torch.full((4096,), float(c)), rate, True)
    np.testing.assert_allclose(ours, np.unique(theirs.numpy()), rtol=1e-5)


def test_feature_alpha_dropout_shares_over_space(key):
    y = jdrop.feature_alpha_dropout(key, jnp.ones((4, 3, 3, 16)), 0.5)
    assert (y == y[:, :1, :1]).all()
    assert len(np.unique(np.asarray(y))) == 2


def test_rate_one_and_deterministic(key):
    np.testing.assert_array_equal(jdrop.alpha_dropout(key, jnp.ones(4), 1.0), np.zeros(4))
    x = jnp.arange(3.0)
    assert jdrop.alpha_dropout(None, x, 0.5, deterministic=True) is x
    traced = jax.jit(jdrop.alpha_dropout)(key, jnp.ones(4), jnp.float32(1.0))
    np.testing.assert_array_equal(traced, np.zeros(4))
