"""Per-layer drop rates reach their own layers with their own keys (issue 16).

Distinct rates, none exact in binary, so a rate given to the wrong layer, a swapped key or a
``1 / rate`` scale changes the output; compared with a float64 numpy forward pass.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jdrop
from jdrop.models import MLP
from jdrop.nn import DropConnectDense


def _dropout(key, h, rate):
    keep = np.asarray(jdrop.keep_mask(key, h.shape, rate))
    return np.where(keep, h / (1 - rate), 0.0)


def test_mlp_input_and_per_layer_hidden_rates():
    model = MLP(5, (6, 7), 3, input_rate=0.1, hidden_rate=(0.3, 0.7), rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    key = jax.random.key(3)
    got = np.asarray(model(jnp.asarray(x), key=key))
    keys = jdrop.split_key(key, 3)  # one key per stochastic position (input, hidden...)
    h = _dropout(keys[0], np.asarray(x, np.float64), 0.1)
    for layer, rate, k in zip(model.hidden, (0.3, 0.7), keys[1:], strict=True):
        w, b = (np.asarray(p[...], np.float64) for p in (layer.kernel, layer.bias))
        h = _dropout(k, np.maximum(h @ w + b, 0), rate)
    w, b = (np.asarray(p[...], np.float64) for p in (model.head.kernel, model.head.bias))
    np.testing.assert_allclose(got, h @ w + b, rtol=1e-5, atol=1e-6)


def test_dropconnect_dense_scale_at_an_inexact_rate():
    """y = x (M * W / (1 - p)) + b with one mask M = keep_mask(key, W.shape, p)."""
    layer = DropConnectDense(5, 3, 0.3, rngs=nnx.Rngs(0))
    x = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    key = jax.random.key(4)
    w, b = (np.asarray(p[...], np.float64) for p in (layer.kernel, layer.bias))
    want = np.asarray(x, np.float64) @ _dropout(key, w, 0.3) + b
    np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x), key=key)), want, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x), deterministic=True)),
                               np.asarray(x, np.float64) @ w + b, rtol=1e-5, atol=1e-6)
