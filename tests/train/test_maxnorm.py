"""Tests for the max-norm projection and its optax transform (jdrop.nn.maxnorm)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jdrop.models._mlp import MLP
from jdrop.train._maxnorm import max_norm, project_max_norm

C = 1.5


def _norms(w):
    return np.sqrt(np.sum(np.square(np.asarray(w, np.float64)), axis=tuple(range(w.ndim - 1))))


def _params(key):
    k1, k2, k3 = jax.random.split(key, 3)
    kernel = jax.random.normal(k1, (20, 12))
    kernel = kernel.at[:, :4].multiply(np.float32(0.05))  # four units well inside the ball
    return {
        "dense": {"kernel": kernel, "bias": jax.random.normal(k2, (12,)) * np.float32(10)},
        "conv": jax.random.normal(k3, (3, 3, 4, 5)),
        "scalar": jnp.float32(7.0),
    }


def test_project_bounds_every_unit_and_leaves_inside_units(key):
    params = _params(key)
    before = _norms(params["dense"]["kernel"])
    assert (before[:4] < C).all() and (before[4:] > C).all()
    out = project_max_norm(params, C)
    after = _norms(out["dense"]["kernel"])
    assert (after <= C * (1 + 1e-6)).all()
    np.testing.assert_allclose(after[4:], C, rtol=1e-6)  # projected onto the sphere
    np.testing.assert_array_equal(out["dense"]["kernel"][:, :4], params["dense"]["kernel"][:, :4])
    np.testing.assert_array_equal(out["dense"]["bias"], params["dense"]["bias"])
    np.testing.assert_array_equal(out["conv"], params["conv"])  # 4-D: not a matrix
    np.testing.assert_array_equal(out["scalar"], params["scalar"])
    # the projection keeps each unit's direction
    cosine = np.sum(np.asarray(out["dense"]["kernel"]) * np.asarray(params["dense"]["kernel"]),
                    axis=0) / (after * before)
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)


def test_project_conv_kernels_when_asked(key):
    out = project_max_norm(_params(key), C, ndims=(2, 4))
    assert (_norms(out["conv"]) <= C * (1 + 1e-6)).all()


def test_transform_keeps_params_inside_ball(key):
    params = _params(key)
    tx = optax.chain(optax.sgd(0.5, momentum=0.9), max_norm(C))
    plain = optax.sgd(0.5, momentum=0.9)
    state, plain_state = tx.init(params), plain.init(params)
    p, q = params, params
    for step in range(3):
        grads = jax.tree.map(lambda w, s=step: -jnp.ones_like(w) * np.float32(s + 1), params)
        updates, state = tx.update(grads, state, p)
        p = optax.apply_updates(p, updates)
        plain_updates, plain_state = plain.update(grads, plain_state, q)
        q = optax.apply_updates(q, plain_updates)
        norms = _norms(p["dense"]["kernel"])
        assert (norms <= C * (1 + 1e-5)).all()
        # leaves that are not matrices follow the plain optimiser exactly
        np.testing.assert_array_equal(p["dense"]["bias"], q["dense"]["bias"])
        np.testing.assert_array_equal(p["conv"], q["conv"])
    assert (_norms(q["dense"]["kernel"]) > C).all()  # the constraint was active


def test_transform_leaves_units_inside_untouched(key):
    params = {"kernel": jax.random.normal(key, (10, 6)) * np.float32(0.01)}
    updates = {"kernel": jax.random.normal(jax.random.key(1), (10, 6)) * np.float32(0.01)}
    tx = max_norm(C)
    out, _ = tx.update(updates, tx.init(params), params)
    np.testing.assert_array_equal(out["kernel"], updates["kernel"])


def test_transform_on_nnx_state_and_under_jit():
    model = MLP(8, (16,), 3, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    tx = optax.chain(optax.sgd(10.0), max_norm(0.5))
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    for path, leaf in jax.tree_util.tree_leaves_with_path(new):
        if leaf.ndim == 2:
            assert (_norms(leaf) <= 0.5 * (1 + 1e-5)).all(), path


def test_errors(key):
    with pytest.raises(ValueError, match="max_value"):
        max_norm(0.0)
    with pytest.raises(ValueError, match="max_value"):
        project_max_norm({}, -1.0)
    with pytest.raises(ValueError, match="ndims"):
        max_norm(1.0, ndims=(1,))
    tx = max_norm(1.0)
    with pytest.raises(ValueError, match="params"):
        tx.update({"w": jnp.ones((2, 2))}, tx.init(None))
