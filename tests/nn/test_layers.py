"""Tests for the Flax NNX dropout layers (jdrop.nn._layers), their modes, and split_key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jdrop
from jdrop._keys import split_key
from jdrop.nn._layers import (
    AlphaDropout,
    ConcreteDropout,
    DropBlock,
    DropConnectDense,
    Dropout,
    DropPath,
    GaussianDropout,
    SpatialDropout,
)

X = jax.random.normal(jax.random.key(42), (4, 8, 8, 6))

LAYERS = {
    "dropout": lambda: Dropout(0.3),
    "dropout_bcast": lambda: Dropout(0.3, broadcast_dims=(1,)),
    "spatial": lambda: SpatialDropout(0.3),
    "alpha": lambda: AlphaDropout(0.3),
    "gaussian": lambda: GaussianDropout(0.3),
    "drop_path": lambda: DropPath(0.3),
    "dropblock": lambda: DropBlock(0.3, block_size=3),
    "concrete": lambda: ConcreteDropout(0.3),
}


ALL_LAYERS = {**LAYERS, "dropconnect_dense": lambda: DropConnectDense(6, 6, 0.3, rngs=nnx.Rngs(0))}


def _inference(layer):
    """What the layer computes in inference: X itself, or X @ W + b for DropConnectDense."""
    if isinstance(layer, DropConnectDense):
        return X @ layer.kernel[...] + layer.bias[...]
    return X


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_training_without_a_key_raises(name):
    layer = ALL_LAYERS[name]()
    assert layer.deterministic is False  # training is the default
    for call in (lambda: layer(X), lambda: layer(X, key=None, deterministic=False)):
        with pytest.raises(ValueError, match=r"no PRNG key.*deterministic=True.*model\.eval\(\)"):
            call()


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_inference_is_explicit(name, key):
    layer = ALL_LAYERS[name]()
    expected = _inference(layer)
    np.testing.assert_allclose(layer(X, deterministic=True), expected, rtol=1e-6)
    np.testing.assert_allclose(layer(X, key=key, deterministic=True), expected, rtol=1e-6)
    layer.eval()
    assert layer.deterministic is True
    np.testing.assert_allclose(layer(X), expected, rtol=1e-6)
    np.testing.assert_allclose(layer(X, key=key), expected, rtol=1e-6)
    assert not np.allclose(layer(X, key=key, deterministic=False), expected)  # the call wins
    layer.train()
    with pytest.raises(ValueError, match="no PRNG key"):
        layer(X)


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_deterministic_at_construction(name):
    build = {
        "dropconnect_dense": lambda: DropConnectDense(6, 6, 0.3, deterministic=True,
                                                      rngs=nnx.Rngs(0)),
    }.get(name)
    layer = build() if build else type(ALL_LAYERS[name]())(0.3, deterministic=True)
    np.testing.assert_allclose(layer(X), _inference(layer), rtol=1e-6)


def test_eval_and_train_reach_nested_layers(key):
    class Block(nnx.Module):
        def __init__(self):
            self.drop = Dropout(0.5)
            self.path = DropPath(0.5)

        def __call__(self, x, *, key=None):
            k1, k2 = split_key(key, 2)
            return self.path(self.drop(x, key=k1), key=k2)

    block = Block()
    with pytest.raises(ValueError, match="Dropout is in training mode"):
        block(X)
    block.eval()
    np.testing.assert_array_equal(block(X), X)
    block.train()
    assert not np.array_equal(block(X, key=key), X)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_shape_dtype_and_keys(name, dtype, key):
    layer = LAYERS[name]()
    x = X.astype(dtype)
    k1, k2 = jax.random.split(key)
    y1, y1_again, y2 = layer(x, key=k1), layer(x, key=k1), layer(x, key=k2)
    assert y1.shape == x.shape and y1.dtype == dtype
    np.testing.assert_array_equal(y1, y1_again)
    assert not np.array_equal(y1, y2)
    assert not np.array_equal(y1, x)


@pytest.mark.parametrize(
    ("layer", "function"),
    [
        (Dropout(0.4, broadcast_dims=(2,)),
         lambda k, x: jdrop.dropout(k, x, 0.4, broadcast_dims=(2,))),
        (SpatialDropout(0.4), lambda k, x: jdrop.spatial_dropout(k, x, 0.4)),
        (AlphaDropout(0.4), lambda k, x: jdrop.alpha_dropout(k, x, 0.4)),
        (GaussianDropout(0.4), lambda k, x: jdrop.gaussian_dropout(k, x, 0.4)),
        (DropPath(0.4), lambda k, x: jdrop.drop_path(k, x, 0.4)),
        (DropBlock(0.4, block_size=2), lambda k, x: jdrop.dropblock(k, x, 0.4, block_size=2)),
    ],
)
def test_layer_is_the_pure_function(layer, function, key):
    np.testing.assert_array_equal(layer(X, key=key), function(key, X))


def test_layers_hold_no_rng_state():
    for name in sorted(LAYERS):
        layer = LAYERS[name]()
        state = nnx.state(layer)
        leaves = jax.tree.leaves(state)
        expected = 1 if name == "concrete" else 0  # the learned logit only
        assert len(leaves) == expected, name
        assert not jax.tree.leaves(nnx.state(layer, nnx.RngState))


def test_dropout_not_inverted_scales_at_inference(key):
    layer = Dropout(0.25, inverted=False)
    np.testing.assert_allclose(layer(X, deterministic=True), 0.75 * X, rtol=1e-6)
    y = layer(X, key=key)
    kept = y != 0
    np.testing.assert_array_equal(y[kept], X[kept])


def test_dropout_statistics(key):
    y = Dropout(0.3)(jnp.ones((200, 500)), key=key)
    assert abs(float((y == 0).mean()) - 0.3) < 0.01  # 100k Bernoulli draws: sd 0.0015


def test_layers_under_jit_and_vmap(key):
    layer = Dropout(0.5)
    keys = jax.random.split(key, 3)
    ys = jax.jit(jax.vmap(lambda k: layer(X, key=k)))(keys)
    for i in range(3):
        np.testing.assert_array_equal(ys[i], layer(X, key=keys[i]))


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: Dropout(1.5), ValueError),
        (lambda: Dropout(-0.1), ValueError),
        (lambda: SpatialDropout(float("nan")), ValueError),
        (lambda: GaussianDropout(1.0), ValueError),
        (lambda: DropBlock(0.1, block_size=0), ValueError),
        (lambda: ConcreteDropout(0.0), ValueError),
        (lambda: ConcreteDropout(1.0), ValueError),
        (lambda: ConcreteDropout(0.1, temperature=0.0), ValueError),
    ],
)
def test_bad_arguments(build, error):
    with pytest.raises(error, match="rate|block_size|temperature"):
        build()


def test_concrete_dropout_rate_and_gradient(key):
    layer = ConcreteDropout(0.2)
    assert abs(float(layer.rate) - 0.2) < 1e-6
    weights = jnp.ones((6, 3))
    graphdef, state = nnx.split(layer)

    def loss(state):
        module = nnx.merge(graphdef, state)
        y = module(X, key=key)
        penalty = module.regularizer(weights, input_dim=6, weight_regularizer=1e-2,
                                     dropout_regularizer=1e-1)
        return jnp.mean(jnp.square(y)) + penalty

    grads = jax.grad(loss)(state)
    g = grads["logit"][...]
    assert np.isfinite(g) and float(g) != 0.0
    # the output itself depends on the rate (not only through the penalty)
    out = lambda s: jnp.sum(nnx.merge(graphdef, s)(X, key=key))
    g_out = jax.grad(out)(state)["logit"][...]
    assert np.isfinite(g_out) and float(g_out) != 0.0


def test_dropconnect_dense(key):
    layer = DropConnectDense(5, 3, 0.5, rngs=nnx.Rngs(0))
    x = jax.random.normal(key, (4, 5))
    w, b = layer.kernel[...], layer.bias[...]
    np.testing.assert_allclose(layer(x, deterministic=True), x @ w + b, rtol=1e-6)
    k = jax.random.key(7)
    np.testing.assert_allclose(layer(x, key=k), x @ jdrop.dropconnect(k, w, 0.5) + b, rtol=1e-6)
    same_rows = layer(jnp.ones((2, 5)), key=k)  # one mask per call: shared by the batch
    np.testing.assert_array_equal(same_rows[0], same_rows[1])
    assert not np.array_equal(layer(x, key=k), layer(x, key=jax.random.key(8)))
    no_bias = DropConnectDense(5, 3, 0.5, use_bias=False, rngs=nnx.Rngs(0))
    assert no_bias.bias is None
    assert no_bias(x, deterministic=True).shape == (4, 3)


def test_dropconnect_dense_bfloat16_input(key):
    layer = DropConnectDense(5, 3, 0.5, rngs=nnx.Rngs(0))
    y = layer(jnp.ones((2, 5), jnp.bfloat16), key=key)
    assert y.dtype == jnp.bfloat16


def test_split_key(key):
    assert split_key(None, 3) == (None, None, None)
    assert split_key(key, 0) == ()
    keys = split_key(key, 3)
    data = [tuple(np.asarray(jax.random.key_data(k)).tolist()) for k in keys]
    assert len(set(data)) == 3
    legacy = split_key(jax.random.PRNGKey(0), 2)
    assert len(legacy) == 2 and jnp.issubdtype(legacy[0].dtype, jax.dtypes.prng_key)
    with pytest.raises(ValueError, match="n="):
        split_key(key, -1)
