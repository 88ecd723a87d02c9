"""The contract every stochastic jdrop function keeps (DESIGN.md "API conventions").

Same key -> same bits eagerly, under jit, under vmap, and sharded over 8 devices; dtype in =
dtype out; typed and legacy keys; Python-float and traced rates; gradients; no
communication when the input is sharded.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jdrop

SHAPE = (8, 8, 8, 4)  # (batch, height, width, channels)

# name -> f(key, x, rate); each maps a (batch, H, W, C) float array to the same shape.
VARIANTS = {
    "dropout": jdrop.dropout,
    "dropout_broadcast": functools.partial(jdrop.dropout, broadcast_dims=(1, 2)),
    "dropout_original": functools.partial(jdrop.dropout, inverted=False),
    "dropout_regenerate": functools.partial(jdrop.dropout, regenerate_mask=True),
    "dropout_jax_impl": functools.partial(jdrop.dropout, impl="jax"),
    "spatial_dropout": jdrop.spatial_dropout,
    "alpha_dropout": jdrop.alpha_dropout,
    "feature_alpha_dropout": jdrop.feature_alpha_dropout,
    "gaussian_dropout": jdrop.gaussian_dropout,
    "dropconnect": jdrop.dropconnect,
    "drop_path": jdrop.drop_path,
    "dropblock": functools.partial(jdrop.dropblock, block_size=3),
    "concrete_dropout": jdrop.concrete_dropout,
    "locked_dropout": jdrop.locked_dropout,
    "zoneout": lambda key, x, rate: jdrop.zoneout(key, jnp.zeros_like(x), x, rate),
}
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]


def _x(dtype=jnp.float32):
    return jax.random.normal(jax.random.key(42), SHAPE).astype(dtype)


# Variants whose output is a selected, scaled copy of x are bit-exact everywhere; those
# with an affine or multiplicative transform (a * x + b) may differ by an ulp because XLA
# contracts to fused multiply-adds under jit: for them the random draws are compared
# exactly through the values (1e-5 relative: transcendental functions are evaluated
# differently inside XLA fusions than eagerly).
ULP_LEVEL = {"alpha_dropout", "feature_alpha_dropout", "gaussian_dropout", "concrete_dropout",
             "dropblock"}
_CURRENT = {}


def _same(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if _CURRENT.get("name") in ULP_LEVEL:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.fixture(params=sorted(VARIANTS))
def variant(request):
    _CURRENT["name"] = request.param
    return VARIANTS[request.param]


def test_jit_equals_eager(variant, key):
    x = _x()
    _same(variant(key, x, 0.3), jax.jit(variant, static_argnums=2)(key, x, 0.3))


def test_traced_rate_equals_python_rate(variant, key):
    x = _x()
    traced = jax.jit(variant)(key, x, jnp.float32(0.3))
    _same(variant(key, x, 0.3), traced)


def test_vmap_over_keys_equals_loop(variant, key):
    x = _x()
    keys = jax.random.split(key, 3)
    batched = jax.vmap(variant, in_axes=(0, None, None))(keys, x, 0.3)
    for i in range(3):
        _same(batched[i], variant(keys[i], x, 0.3))
    assert not np.array_equal(batched[0], batched[1])


def test_legacy_key_equals_typed_key(variant):
    x = _x()
    _same(variant(jax.random.PRNGKey(7), x, 0.3), variant(jax.random.key(7), x, 0.3))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_dtype_preserved(variant, key, dtype):
    y = variant(key, _x(dtype), 0.3)
    assert y.dtype == jnp.dtype(dtype)
    assert y.shape == SHAPE
    assert np.isfinite(np.asarray(y, np.float32)).all()


def test_gradient(variant, key):
    x = _x()
    grad = jax.grad(lambda x: jnp.sum(variant(key, x, 0.3) ** 2))(x)
    assert grad.shape == x.shape and np.isfinite(grad).all()
    assert np.abs(grad).sum() > 0


def test_different_keys_differ(variant):
    x = _x()
    assert not np.array_equal(
        variant(jax.random.key(1), x, 0.3), variant(jax.random.key(2), x, 0.3)
    )


def _mesh(shape, names):
    devices = np.array(jax.devices()[: int(np.prod(shape))]).reshape(shape)
    return Mesh(devices, names)


@pytest.mark.parametrize(
    "mesh_shape, spec",
    [((8,), P("d")), ((2, 4), P("a", None, "b")), ((4, 2), P(None, "a", None, "b"))],
    ids=["batch", "batch+width", "height+channels"],
)
def test_sharded_equals_unsharded_without_communication(variant, key, mesh_shape, spec):
    names = tuple(n for n in spec if n is not None)
    mesh = _mesh(mesh_shape, names)
    sharding = NamedSharding(mesh, spec)
    x = _x()
    x_sharded = jax.device_put(x, sharding)
    fn = jax.jit(lambda k, x: variant(k, x, 0.3), out_shardings=sharding)
    _same(fn(key, x_sharded), variant(key, x, 0.3))
    hlo = fn.lower(key, x_sharded).compile().as_text()
    # DropBlock's blocks cross the boundary of a spatial shard (a halo exchange) and it
    # normalises per example (a reduction over the spatial shards): only when the spatial
    # axes are sharded. Everything else is purely local.
    spatial_sharded = spec != P("d")
    allowed = {"all-reduce", "collective-permute"} if (
        variant is VARIANTS["dropblock"] and spatial_sharded) else set()
    for op in ["all-gather", "all-to-all", "collective-permute", "all-reduce"]:
        if op not in allowed:
            assert f" {op}(" not in hlo and f" {op}-start(" not in hlo, op


def test_mask_sharding_follows_input_with_broadcast_dims(key):
    """Flax's nnx.Dropout crashes here today: a sharded axis that is also broadcast."""
    mesh = _mesh((2, 4), ("a", "b"))
    sharding = NamedSharding(mesh, P("a", "b"))
    x = jax.device_put(jnp.ones((8, 16)), sharding)
    fn = jax.jit(lambda k, x: jdrop.dropout(k, x, 0.5, broadcast_dims=(1,)))
    y = fn(key, x)
    assert y.sharding.is_equivalent_to(sharding, 2)
    _same(y, jdrop.dropout(key, jnp.ones((8, 16)), 0.5, broadcast_dims=(1,)))
    assert (np.asarray(y) == np.asarray(y)[:, :1]).all()
    hlo = fn.lower(key, x).compile().as_text()
    assert "all-gather" not in hlo and "all-reduce" not in hlo
