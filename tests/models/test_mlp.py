"""Tests for the MLP models (jdrop.nn.mlp)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models._mlp import MLP, mnist1d_mlp


def _count(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_srivastava_defaults():
    model = nnx.eval_shape(lambda: MLP(rngs=nnx.Rngs(0)))
    # 784-1024-1024-2048-10
    assert _count(model) == 785 * 1024 + 1025 * 1024 + 1025 * 2048 + 2049 * 10
    assert model.input_dropout.rate == 0.2
    assert [d.rate for d in model.dropouts] == [0.5, 0.5, 0.5]


def test_mnist1d_mlp_size_and_inputs(key):
    model = mnist1d_mlp(hidden_rate=0.3, rngs=nnx.Rngs(0))
    assert _count(model) == 15210
    x = jax.random.normal(key, (6, 40))
    y = model(x, deterministic=True)
    assert y.shape == (6, 10) and y.dtype == jnp.float32
    model.eval()
    np.testing.assert_array_equal(model(x[..., None]), y)  # (N, 40, 1) is the same signal
    np.testing.assert_array_equal(model(x), y)  # eval(): deterministic
    model.train()
    k1, k2 = jax.random.split(key)
    assert not np.allclose(model(x, key=k1), model(x, key=k2))
    np.testing.assert_array_equal(model(x, key=k1), model(x, key=k1))


def test_rates_per_layer_and_zero_rates(key):
    model = MLP(8, (16, 16), 3, input_rate=0.0, hidden_rate=(0.0, 0.5), rngs=nnx.Rngs(0))
    assert model.input_dropout is None and model.dropouts[0] is None
    assert model.dropouts[1].rate == 0.5
    no_dropout = MLP(8, (16,), 3, input_rate=0.0, hidden_rate=0.0, rngs=nnx.Rngs(0))
    x = jnp.ones((2, 8))
    np.testing.assert_array_equal(no_dropout(x, key=key), no_dropout(x, deterministic=True))


def test_bad_rates():
    with pytest.raises(ValueError, match="hidden_rate"):
        MLP(8, (16, 16), 3, hidden_rate=(0.5,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="rate"):
        MLP(8, (16,), 3, input_rate=1.5, rngs=nnx.Rngs(0))
