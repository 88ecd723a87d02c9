"""jdrop.linen.Dropout as a drop-in for flax.linen.Dropout: one import changes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop.linen

DROPOUTS = {"flax": nn.Dropout, "jdrop": jdrop.linen.Dropout}


class Model(nn.Module):
    """The linen example model, written once: the Dropout class is its only parameter."""

    dropout_cls: type
    rate: float = 0.5

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.relu(nn.Dense(64)(x))
        x = self.dropout_cls(rate=self.rate, deterministic=not train)(x)
        return nn.Dense(2)(x)


X = jax.random.normal(jax.random.key(0), (32, 3))


def _init(name):
    model = Model(DROPOUTS[name])
    return model, model.init(jax.random.key(1), X, train=False)


def test_same_parameters_and_same_inference():
    (flax_model, flax_vars), (jdrop_model, jdrop_vars) = _init("flax"), _init("jdrop")
    for a, b in zip(jax.tree.leaves(flax_vars), jax.tree.leaves(jdrop_vars), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(flax_model.apply(flax_vars, X, train=False),
                                  jdrop_model.apply(jdrop_vars, X, train=False))


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_training_draws_the_dropout_rng(name, key):
    model, variables = _init(name)
    apply = jax.jit(model.apply, static_argnames="train")
    a = apply(variables, X, train=True, rngs={"dropout": key})
    np.testing.assert_array_equal(a, apply(variables, X, train=True, rngs={"dropout": key}))
    assert not np.allclose(a, apply(variables, X, train=True,
                                    rngs={"dropout": jax.random.key(9)}))
    with pytest.raises(Exception, match="dropout"):  # flax's missing-rng error, for both
        model.apply(variables, X, train=True)


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_rate_statistics_broadcast_and_rng_argument(name, key):
    layer = DROPOUTS[name](0.3)
    y = layer.apply({}, jnp.ones((400, 500)), deterministic=False, rngs={"dropout": key})
    assert abs(float((y == 0).mean()) - 0.3) < 0.005
    np.testing.assert_allclose(np.unique(np.asarray(y)), [0.0, 1 / 0.7], rtol=1e-6)
    wide = DROPOUTS[name](0.5, broadcast_dims=(0,))
    z = np.asarray(wide.apply({}, jnp.ones((6, 200)), deterministic=False, rng=key))
    assert (z == z[:1]).all() and 0.35 < (z[0] == 0).mean() < 0.65
    np.testing.assert_array_equal(layer.apply({}, jnp.ones(3), deterministic=True), jnp.ones(3))


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_deterministic_given_twice_or_never_raises(name):
    with pytest.raises(Exception, match="deterministic"):
        DROPOUTS[name](0.5, deterministic=True).apply({}, jnp.ones(3), deterministic=True)
    with pytest.raises(Exception, match="deterministic"):
        DROPOUTS[name](0.5).apply({}, jnp.ones(3))


@pytest.mark.parametrize("name", sorted(DROPOUTS))
def test_jitted_gradient_step(name, key):
    model, variables = _init(name)
    y = jnp.arange(32) % 2

    def loss_fn(params, step):
        logits = model.apply({"params": params}, X, train=True,
                             rngs={"dropout": jax.random.fold_in(key, step)})
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()

    @jax.jit
    def step(params, i):
        loss, grads = jax.value_and_grad(loss_fn)(params, i)
        return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), loss

    params, losses = variables["params"], []
    for i in range(30):
        params, loss = step(params, i)
        losses.append(float(loss))
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < losses[0]
