"""Tests for MC sampling over a mesh: batch and sample sharding against one device.

What is bitwise: the dropout masks (keyed by global position) and jdrop.mc's reductions
(per example, or copied exactly and summed in a fixed order), so a model without matrix
products gives bitwise the one-device result on any mesh. A matrix product over a
per-device batch may be compiled to other kernels than over the whole batch: the LeNet's
values then agree to float rounding (1-ulp differences in 4.6% of its samples on an AMD EPYC
host; bitwise on the Intel hosts of earlier runs), as the ``jdrop.mc`` docs say.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

import jdrop
from jdrop import mc

BATCH, SIZE, HIDDEN, CLASSES = 16, 16, 32, 10  # the LeNet of conftest.py


def _elementwise(key, scale, x):
    """(N, 10) features -> (N, 10): dropout, then a per-feature scale (no matrix product)."""
    return jdrop.dropout(key, x, 0.5) * scale


def _programs(model, regression_model, **mesh_kwargs):
    """The three MC programs (samples, classification, regression) over one mesh."""
    common = {"num_samples": 12, "chunk_size": 5, **mesh_kwargs}
    return {
        "sample": lambda k, p, x, y: mc.sample(model, k, p, x, **common),
        "classification": lambda k, p, x, y: mc.predictive_classification(
            model, k, p, x, **common
        ),
        "regression": lambda k, p, x, y: mc.predictive_regression(
            regression_model, k, p, x, targets=y, tau=2.0, **common
        ),
    }


@pytest.fixture(scope="module")
def models(lenet, regression_fn, params, images):
    """``(model, regression model, params, inputs)`` per name; only "elementwise" (no matrix
    product) is held to bitwise equality."""
    features = jax.random.normal(jax.random.key(5), (BATCH, CLASSES))
    scale = jnp.linspace(0.5, 2.0, CLASSES)
    return {
        "elementwise": (_elementwise, lambda k, s, x: _elementwise(k, s, x)[:, :2], scale,
                        features),
        "lenet": (lenet, regression_fn, params, images),
    }


@pytest.fixture(scope="module")
def unsharded(models, targets):
    results = {}
    for model, (fn, regression, p, x) in models.items():
        inputs = (jax.random.key(0), p, x, targets)
        programs = _programs(fn, regression)
        results[model] = {name: jax.jit(f)(*inputs) for name, f in programs.items()}
    return results


def _assert_same(got, want, *, exact, err_msg=""):
    """Bitwise when ``exact``, else to float32 rounding (see the module docstring)."""
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=err_msg)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=err_msg)


@pytest.mark.parametrize("model", ["elementwise", "lenet"])
@pytest.mark.parametrize("num_devices", [1, 2, 4, 8])
def test_batch_sharding_matches_one_device_with_one_all_reduce(
    models, collectives, targets, unsharded, model, num_devices
):
    fn, regression, p, x = models[model]
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("batch",))
    programs = _programs(fn, regression, mesh=mesh, batch_axis_name="batch", batch_argnums=1)
    inputs = (jax.random.key(0), p, x, targets)
    # Per-example summaries need no communication; the regression's two scalar metrics
    # (means over all points) share one all-reduce. Nothing gathers the inputs.
    expected_all_reduces = {"sample": 0, "classification": 0, "regression": 1}
    for name, function in programs.items():
        compiled = jax.jit(function).lower(*inputs).compile()
        result = compiled(*inputs)
        for got, want in zip(
            jax.tree.leaves(result), jax.tree.leaves(unsharded[model][name]), strict=True
        ):
            _assert_same(got, want, exact=model == "elementwise", err_msg=name)
        ops = collectives(compiled.as_text())
        assert ops.pop("all-reduce") == expected_all_reduces[name], (name, ops)
        assert sum(ops.values()) == 0, (name, ops)
        if num_devices > 1:
            first = jax.tree.leaves(result)[0]
            assert len(first.sharding.device_set) == num_devices
            assert first.sharding.spec[1 if name == "sample" else 0] == "batch"


@pytest.mark.parametrize("num_devices", [1, 2, 4, 8])
def test_sample_sharding_is_bitwise_identical(
    lenet, lenet_samples, collectives, key, params, images, num_devices
):
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("samples",))
    run = jax.jit(
        lambda k, p, x: mc.sample(
            lenet, k, p, x, num_samples=16, chunk_size=2, mesh=mesh, sample_axis_name="samples"
        )
    )
    out = run(key, params, images)
    np.testing.assert_array_equal(out, lenet_samples(key, params, images, 16))
    assert len(out.sharding.device_set) == num_devices
    ops = collectives(run.lower(key, params, images).compile().as_text())
    assert sum(ops.values()) == 0, ops


@pytest.mark.parametrize("model", ["elementwise", "lenet"])
def test_two_dimensional_mesh(models, collectives, key, model):
    fn, _, p, x = models[model]
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("samples", "batch"))
    run = jax.jit(
        lambda k, p, x: mc.sample(
            fn, k, p, x, num_samples=8, chunk_size=2, mesh=mesh,
            sample_axis_name="samples", batch_axis_name="batch", batch_argnums=1,
        )
    )
    out = run(key, p, x)
    one_device = jax.jit(lambda k, p, x: mc.sample(fn, k, p, x, num_samples=8))(key, p, x)
    _assert_same(out, one_device, exact=model == "elementwise")
    assert out.sharding.spec[:2] == ("samples", "batch")
    ops = collectives(run.lower(key, p, x).compile().as_text())
    assert sum(ops.values()) == 0, ops


def test_bad_mesh_arguments(dropout_fn, key):
    mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
    x = jnp.ones((4, 3))
    with pytest.raises(ValueError, match="batch_axis_name='batch'"):
        mc.sample(dropout_fn, key, x, num_samples=2, batch_axis_name="batch")
    with pytest.raises(ValueError, match="sample_axis_name='nope'"):
        mc.sample(dropout_fn, key, x, num_samples=2, mesh=mesh, sample_axis_name="nope")
    with pytest.raises(ValueError, match="batch_axis_name and/or sample_axis_name"):
        mc.sample(dropout_fn, key, x, num_samples=2, mesh=mesh)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        mc.sample(dropout_fn, key, jnp.ones((3, 3)), num_samples=2, mesh=mesh,
                  batch_axis_name="batch")
    with pytest.raises(ValueError, match="batch_argnums"):
        mc.sample(dropout_fn, key, x, num_samples=2, mesh=mesh, batch_axis_name="batch",
                  batch_argnums=3)
    with pytest.raises(TypeError, match="mesh"):
        mc.sample(dropout_fn, key, x, num_samples=2, mesh="batch", batch_axis_name="batch")
