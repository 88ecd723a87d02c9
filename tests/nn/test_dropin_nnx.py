"""jdrop.nn.Dropout as a drop-in for flax.nnx.Dropout: one import changes, behaviour stays.

The example model is Flax's own ``nnx.Dropout`` docstring model (plus BatchNorm, so that
``eval()`` / ``train()`` reach two kinds of layers), written once and parametrised by the
Dropout class.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jdrop.nn

DROPOUTS = {"flax": nnx.Dropout, "jdrop": jdrop.nn.Dropout}


class Model(nnx.Module):
    def __init__(self, dropout_cls, *, rate=0.5, broadcast_dims=(), rngs: nnx.Rngs):
        self.linear = nnx.Linear(3, 64, rngs=rngs)
        self.bn = nnx.BatchNorm(64, rngs=rngs)
        self.dropout = dropout_cls(rate, broadcast_dims=broadcast_dims, rngs=rngs)
        self.head = nnx.Linear(64, 2, rngs=rngs)

    def __call__(self, x, *, rngs=None):
        h = nnx.relu(self.bn(self.linear(x)))
        return self.head(self.dropout(h, rngs=rngs))


X = jax.random.normal(jax.random.key(0), (32, 3))


def _pair(**kwargs):
    return {name: Model(cls, rngs=nnx.Rngs(0), **kwargs) for name, cls in DROPOUTS.items()}


def test_same_parameters_and_same_inference():
    models = _pair()
    flax_params = nnx.state(models["flax"], nnx.Param)
    jdrop_params = nnx.state(models["jdrop"], nnx.Param)
    for a, b in zip(jax.tree.leaves(flax_params), jax.tree.leaves(jdrop_params), strict=True):
        np.testing.assert_array_equal(a, b)
    for model in models.values():
        model.eval()
        assert model.dropout.deterministic and model.bn.use_running_average
    np.testing.assert_array_equal(models["flax"](X), models["jdrop"](X))
    ones = jnp.ones((4, 64))
    for model in models.values():
        np.testing.assert_array_equal(model.dropout(ones), ones)
        np.testing.assert_array_equal(model.dropout(ones, deterministic=True), ones)


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_rate_statistics_and_scale(name):
    layer = DROPOUTS[name](0.3, rngs=nnx.Rngs(dropout=1))
    y = layer(jnp.ones((400, 500)))
    assert abs(float((y == 0).mean()) - 0.3) < 0.005  # 200k draws: sd 0.001
    np.testing.assert_allclose(np.unique(np.asarray(y)), [0.0, 1 / 0.7], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_broadcast_dims(name):
    layer = DROPOUTS[name](0.5, broadcast_dims=(0,), rngs=nnx.Rngs(dropout=1))
    y = np.asarray(layer(jnp.ones((6, 200))))
    assert (y == y[:1]).all() and 0.35 < (y[0] == 0).mean() < 0.65


def test_same_rng_streams_consumed():
    models = _pair()
    for model in models.values():
        for _ in range(3):
            model(X)
    counts = {name: nnx.state(m, nnx.RngCount) for name, m in models.items()}
    leaves = {name: [int(c) for c in jax.tree.leaves(v)] for name, v in counts.items()}
    assert leaves["flax"] == leaves["jdrop"] and max(leaves["jdrop"]) == 3
    # a stream given at the call is used instead, and the layer's own stream is untouched
    for model in models.values():
        call_rngs = nnx.Rngs(dropout=5)
        model(X, rngs=call_rngs)
        assert int(call_rngs.dropout.count[...]) == 1
        assert int(model.dropout.rngs.count[...]) == 3


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_training_toggles(name):
    model = _pair()[name]
    a, b = model(X), model(X)
    assert not np.allclose(a, b)  # training: fresh masks from the stream
    model.eval()
    np.testing.assert_array_equal(model(X), model(X))
    model.train()
    assert not np.allclose(model(X), model(X))
    view = nnx.view(model, deterministic=True, use_running_average=True)  # Flax's new way
    np.testing.assert_array_equal(view(X), view(X))
    assert view.dropout.deterministic and not model.dropout.deterministic


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_missing_rngs_raise(name):
    layer = DROPOUTS[name](0.5)
    with pytest.raises(ValueError):
        layer(jnp.ones(4))
    np.testing.assert_array_equal(layer(jnp.ones(4), deterministic=True), jnp.ones(4))
    key_out = layer(jnp.ones(100), rngs=jax.random.key(3))  # a raw key as ``rngs``
    assert 0.3 < float((key_out == 0).mean()) < 0.7


def test_jdrop_also_takes_a_key():
    layer = jdrop.nn.Dropout(0.5, rngs=nnx.Rngs(dropout=0))
    key = jax.random.key(4)
    np.testing.assert_array_equal(layer(jnp.ones(64), key=key), layer(jnp.ones(64), key=key))
    assert int(layer.rngs.count[...]) == 0  # an explicit key spends nothing from the stream


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_jitted_training_step(name):
    model = _pair()[name]
    optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
    y = jnp.arange(32) % 2

    @nnx.jit
    def step(model, optimizer):
        def loss_fn(model):
            logits = model(X)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    with jax.numpy_dtype_promotion("standard"):
        losses = [float(step(model, optimizer)) for _ in range(30)]
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < losses[0]
    assert int(model.dropout.rngs.count[...]) == 30
