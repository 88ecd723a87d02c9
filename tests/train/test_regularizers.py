"""L1/L2 penalties: values, gradients and the parameter filter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.train import all_params, is_kernel, l1_penalty, l2_penalty
from jdrop.train._regularizers import leaf_path, select


def _model_params():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(3, 4, rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.embed = nnx.Embed(5, 3, rngs=rngs)

    return nnx.state(Net(nnx.Rngs(0)), nnx.Param)


def test_default_filter_selects_kernels_only():
    params = _model_params()
    paths = [leaf_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
    assert ("dense", "kernel") in paths and ("bn", "scale") in paths
    leaves = jax.tree_util.tree_leaves_with_path(params)
    selected = [leaf_path(p) for p, v in leaves if is_kernel(leaf_path(p), v)]
    assert selected == [("dense", "kernel")]
    assert len(select(params, all_params)) == len(paths) == 5


def test_values_match_numpy():
    params = _model_params()
    kernel = np.asarray(params["dense"]["kernel"].value, np.float64)
    assert float(l1_penalty(params, 0.3)) == pytest.approx(0.3 * np.abs(kernel).sum(), rel=1e-6)
    assert float(l2_penalty(params, 0.3)) == pytest.approx(0.15 * (kernel**2).sum(), rel=1e-6)
    everything = sum(np.sum(np.asarray(v, np.float64) ** 2) for v in jax.tree.leaves(params))
    got = float(l2_penalty(params, 2.0, where=all_params))
    assert got == pytest.approx(everything, rel=1e-6)


def test_l2_gradient_is_weight_decay():
    params = {"kernel": jnp.array([1.0, -2.0, 3.0]), "bias": jnp.array([5.0])}
    grads = jax.grad(lambda p: l2_penalty(p, 0.1))(params)
    np.testing.assert_allclose(grads["kernel"], 0.1 * params["kernel"], rtol=1e-6)
    assert np.array_equal(grads["bias"], np.zeros(1, np.float32))
    grads = jax.grad(lambda p: l1_penalty(p, 0.1))(params)
    np.testing.assert_allclose(grads["kernel"], [0.1, -0.1, 0.1], rtol=1e-6)


def test_works_under_jit_and_with_bfloat16():
    params = {"kernel": jnp.full((4,), 0.5, jnp.bfloat16)}
    value = jax.jit(lambda p: l2_penalty(p, 1.0))(params)
    assert value.dtype == jnp.float32 and float(value) == 0.5


@pytest.mark.parametrize("scale", [-1.0, float("inf"), float("nan")])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match="scale must be a finite float >= 0"):
        l2_penalty({"kernel": jnp.ones(2)}, scale)
    with pytest.raises(ValueError, match="scale"):
        l1_penalty({"kernel": jnp.ones(2)}, scale)


def test_bad_filter():
    with pytest.raises(TypeError, match="where must be a callable"):
        l1_penalty({"kernel": jnp.ones(2)}, 1.0, where="kernel")
