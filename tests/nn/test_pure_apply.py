"""Tests for jdrop.nn.pure_apply: pure apply over keys, independent per-layer keys, vmap trunk."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models._cnn import MNIST1DCNN, AlexNet
from jdrop.models._mlp import MLP
from jdrop.models._resnet import ResNet
from jdrop.nn import pure_apply
from jdrop.nn._layers import Dropout, SpatialDropout


def _mlp():
    return MLP(16, (64, 64), 3, input_rate=0.5, hidden_rate=0.5, rngs=nnx.Rngs(0))


def test_apply_matches_model(key):
    model = _mlp()
    apply_fn, state = pure_apply(model)
    x = jax.random.normal(key, (8, 16))
    k = jax.random.key(3)
    np.testing.assert_array_equal(apply_fn(state, None, x, deterministic=True),
                                  model(x, deterministic=True))
    np.testing.assert_array_equal(apply_fn(state, k, x), model(x, key=k))
    np.testing.assert_allclose(jax.jit(apply_fn)(state, k, x), model(x, key=k), rtol=1e-5,
                               atol=1e-6)
    fn = functools.partial(apply_fn, state)  # fn(key, x), the signature jdrop.mc expects
    np.testing.assert_array_equal(fn(k, x), model(x, key=k))


def test_vmap_over_keys(key):
    apply_fn, state = pure_apply(_mlp())
    x = jax.random.normal(key, (8, 16))
    keys = jax.random.split(jax.random.key(1), 4)
    ys = jax.jit(jax.vmap(apply_fn, in_axes=(None, 0, None)))(state, keys, x)
    assert ys.shape == (4, 8, 3)
    for i in range(4):
        np.testing.assert_allclose(ys[i], apply_fn(state, keys[i], x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(ys[0], ys[1])


def test_filters_and_grad(key):
    model = _mlp()
    apply_fn, (params, rest) = pure_apply(model, nnx.Param, ...)
    x = jax.random.normal(key, (8, 16))
    loss = lambda p: jnp.mean(jnp.square(apply_fn((p, rest), key, x)))
    grads = jax.grad(loss)(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))


def test_pure_apply_rejects_non_module():
    with pytest.raises(TypeError, match="model"):
        pure_apply(lambda x: x)


_MASKS = []


class _Recording(Dropout):
    """Records each call's keep pattern (a traced value, returned by the test's jit)."""

    def __call__(self, x, *, key=None, deterministic=None):
        mask = super().__call__(jnp.ones_like(x), key=key, deterministic=deterministic) != 0
        _MASKS.append(mask.ravel())
        return super().__call__(x, key=key, deterministic=deterministic)


class _RecordingSpatial(SpatialDropout):
    def __call__(self, x, *, key=None, deterministic=None):
        mask = super().__call__(jnp.ones_like(x), key=key, deterministic=deterministic) != 0
        _MASKS.append(mask.ravel())
        return super().__call__(x, key=key, deterministic=deterministic)


MODELS = {
    "mlp": (_mlp, (32, 16), {}),
    "mnist1d_cnn": (
        lambda: MNIST1DCNN(channels=32, conv_rate=0.5, head_rate=0.5, rngs=nnx.Rngs(0)),
        (16, 40), {},
    ),
    "alexnet": (lambda: AlexNet(variant="cifar", image_size=16, width=0.125, fc_features=128,
                                conv_rate=0.5, rngs=nnx.Rngs(0)), (8, 16, 16, 3), {}),
    "resnet": (lambda: ResNet((2, 1), widths=(4, 8), block_rate=0.5, head_rate=0.5,
                              rngs=nnx.Rngs(0)), (8, 8, 8, 3), {"train": True}),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dropout_layers_get_independent_keys(name):
    build, shape, kwargs = MODELS[name]
    model = build()
    for _, node in nnx.iter_graph(model):
        if type(node) is Dropout:
            node.__class__ = _Recording
        elif type(node) is SpatialDropout:
            node.__class__ = _RecordingSpatial
    x = jax.random.normal(jax.random.key(5), shape)

    @nnx.jit
    def masks_of(model, x, key):  # one compilation instead of op-by-op execution
        _MASKS.clear()
        model(x, key=key, **kwargs)
        return list(_MASKS)

    masks = [np.asarray(m) for m in masks_of(model, x, jax.random.key(6))]
    assert len(masks) >= 3
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            n = min(masks[i].size, masks[j].size)
            a, b = masks[i][:n].astype(np.float32), masks[j][:n].astype(np.float32)
            # the same key would give the same bits at the same positions
            assert not np.array_equal(a, b), (name, i, j)
            if n >= 500 and a.std() > 0 and b.std() > 0:
                corr = np.corrcoef(a, b)[0, 1]
                assert abs(corr) < 5 / np.sqrt(n), (name, i, j, corr)


def _convs(jaxpr):
    """Output shapes of every convolution in ``jaxpr``, in order (nested jaxprs included)."""
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            shapes.append(tuple(eqn.outvars[0].aval.shape))
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    shapes.extend(_convs(inner))
    return shapes


def test_vmap_leaves_trunk_before_first_dropout_unbatched():
    model = MNIST1DCNN(channels=8, conv_rate=(0.0, 0.5, 0.0), rngs=nnx.Rngs(0))
    apply_fn, state = pure_apply(model)
    x = jnp.ones((5, 40))
    keys = jax.random.split(jax.random.key(0), 7)
    jaxpr = jax.make_jaxpr(jax.vmap(apply_fn, in_axes=(None, 0, None)))(state, keys, x).jaxpr
    shapes = _convs(jaxpr)
    assert len(shapes) == 3
    assert shapes[0][0] == 5 and shapes[1][0] == 5  # before the first dropout: computed once
    assert 35 in shapes[2][:2] or shapes[2][:2] == (7, 5)  # after it: one per key


def test_vmap_resnet_with_head_dropout_runs_convs_once():
    model = ResNet((1, 1), widths=(4, 8), head_rate=0.5, rngs=nnx.Rngs(0))
    apply_fn, state = pure_apply(model)
    x = jnp.ones((3, 8, 8, 3))
    keys = jax.random.split(jax.random.key(0), 6)
    jaxpr = jax.make_jaxpr(jax.vmap(apply_fn, in_axes=(None, 0, None)))(state, keys, x).jaxpr
    shapes = _convs(jaxpr)
    assert len(shapes) == 5  # stem and two convolutions per block
    assert all(s[0] == 3 and len(s) == 4 for s in shapes)


def test_apply_fn_passes_a_state_keyword_to_the_model():
    class Stateful(nnx.Module):
        def __call__(self, x, *, key=None, state=None):
            return x + state

    apply_fn, model_state = pure_apply(Stateful())
    out = apply_fn(model_state, None, jnp.ones(2), state=jnp.full(2, 2.0))
    assert out.tolist() == [3.0, 3.0]
