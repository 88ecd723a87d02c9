"""Tests for the ResNets (jdrop.nn.resnet): sizes, dropout options, BatchNorm modes."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models._resnet import (
    ResNet,
    cifar_resnet,
    resnet18,
    resnet20,
    resnet32,
    resnet50,
    resnet56,
)
from jdrop.nn import pure_apply


def _count(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (resnet20, 269_722),  # option A, as in He et al. (0.27M)
        (resnet32, 464_154),
        (resnet56, 853_018),
        (resnet18, 11_689_512),  # torchvision's counts
        (resnet50, 25_557_032),
    ],
)
def test_parameter_counts(build, expected):
    model = nnx.eval_shape(lambda: build(rngs=nnx.Rngs(0)))
    assert _count(model) == expected


@pytest.mark.parametrize(("build", "shape", "classes"),
                         [(resnet20, (128, 32, 32, 3), 10), (resnet18, (1, 64, 64, 3), 1000),
                          (resnet50, (1, 64, 64, 3), 1000)])
def test_output_shapes_by_eval_shape(build, shape, classes):
    model = nnx.eval_shape(lambda: build(head_rate=0.5, drop_path_rate=0.2, rngs=nnx.Rngs(0)))
    apply_fn, state = pure_apply(model, return_state=True)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    train_fn = functools.partial(apply_fn, train=True)  # train is static
    out, new_state = jax.eval_shape(train_fn, state, jax.random.key(0), x)
    assert out.shape == (shape[0], classes) and out.dtype == jnp.float32
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


OPTIONS = {
    "head": {"head_rate": 0.5},
    "block_spatial": {"block_rate": 0.3, "block_dropout": "spatial"},
    "dropblock": {"block_rate": 0.3, "block_dropout": "dropblock", "block_size": 7},
    "drop_path": {"drop_path_rate": 0.5},
    "bottleneck_B": {"block": "bottleneck", "shortcut": "B", "block_rate": 0.3},
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_dropout_options(name, key):
    model = ResNet((1, 1), widths=(4, 8), **OPTIONS[name], rngs=nnx.Rngs(0))
    apply_fn, state = pure_apply(model)
    apply_fn = jax.jit(apply_fn, static_argnames="deterministic")
    x = jax.random.normal(key, (4, 8, 8, 3))
    y = apply_fn(state, None, x, deterministic=True)
    assert y.shape == (4, 10) and y.dtype == jnp.float32
    np.testing.assert_array_equal(apply_fn(state, None, x, deterministic=True), y)
    k1, k2 = jax.random.split(key)
    y1 = apply_fn(state, k1, x)
    np.testing.assert_array_equal(apply_fn(state, k1, x), y1)
    assert not np.allclose(y1, apply_fn(state, k2, x))
    assert not np.allclose(y1, y)


def test_stochastic_depth_decays_linearly():
    model = nnx.eval_shape(lambda: cifar_resnet(20, drop_path_rate=0.6, rngs=nnx.Rngs(0)))
    rates = [block.drop_path.rate for block in model.blocks]
    np.testing.assert_allclose(rates, 0.6 * np.arange(1, 10) / 9)


def test_block_stages_and_defaults():
    model = nnx.eval_shape(lambda: resnet20(block_rate=0.2, block_stages=(2,),
                                            rngs=nnx.Rngs(0)))
    stage_of = [i // 3 for i in range(9)]
    for block, stage in zip(model.blocks, stage_of, strict=True):
        (drop,) = block.dropouts
        assert (drop is not None) == (stage == 2)
    assert model.blocks[-1].dropouts[0].block_size == 3  # CIFAR default
    plain = nnx.eval_shape(lambda: resnet20(rngs=nnx.Rngs(0)))
    assert plain.head_dropout is None
    assert all(b.drop_path is None and b.dropouts[0] is None for b in plain.blocks)


def test_option_a_shortcut_pads_channels():
    model = ResNet((1, 1), widths=(4, 8), rngs=nnx.Rngs(0))
    x = jnp.arange(2 * 4 * 4 * 4, dtype=jnp.float32).reshape(2, 4, 4, 4)
    out = model.blocks[1].shortcut(x, False)
    assert out.shape == (2, 2, 2, 8)
    np.testing.assert_array_equal(out[..., 2:6], x[:, ::2, ::2, :])
    assert not out[..., :2].any() and not out[..., 6:].any()


def test_batchnorm_train_and_inference(key):
    model = ResNet((1, 1), widths=(4, 8), head_rate=0.5, block_rate=0.2, rngs=nnx.Rngs(0))
    train_fn, (params, stats) = pure_apply(model, nnx.Param, nnx.BatchStat,
                                           return_state=True)
    x = jax.random.normal(key, (8, 8, 8, 3)) * np.float32(3) + np.float32(1)
    out, (new_params, new_stats) = jax.jit(train_fn, static_argnames="train")(
        (params, stats), key, x, train=True)
    assert out.shape == (8, 10)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(new_params), strict=True):
        np.testing.assert_array_equal(a, b)
    changed = [not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(stats), jax.tree.leaves(new_stats), strict=True)]
    assert all(changed)  # every running mean and variance moved
    stem_mean = new_stats["stem_bn"]["mean"][...]
    batch_mean = jnp.mean(model.stem(x), axis=(0, 1, 2))
    np.testing.assert_allclose(stem_mean, np.float32(0.1) * batch_mean, rtol=1e-4, atol=1e-6)

    # inference: running averages, so each example's output ignores the rest of the batch,
    # dropout still stochastic with a key, and the statistics stay put
    infer_fn = jax.jit(train_fn, static_argnames=("train", "deterministic"))
    state = (new_params, new_stats)
    full, after = infer_fn(state, None, x, train=False, deterministic=True)
    single, _ = infer_fn(state, None, x[:1], train=False, deterministic=True)
    np.testing.assert_allclose(single, full[:1], rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(new_stats), jax.tree.leaves(after[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    y1, _ = infer_fn(state, jax.random.key(1), x, train=False)
    y2, _ = infer_fn(state, jax.random.key(2), x, train=False)
    assert not np.allclose(y1, y2) and not np.allclose(y1, full)
    # train=True normalises with batch statistics: the same example gives another output
    batch_out, _ = infer_fn(state, None, x, train=True, deterministic=True)
    assert not np.allclose(batch_out, full, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block": "dense"}, "block"),
        ({"shortcut": "C"}, "shortcut"),
        ({"stem": "tiny"}, "stem"),
        ({"block_dropout": "gauss"}, "block_dropout"),
        ({"drop_path_rate": 1.0}, "drop_path_rate"),
        ({"widths": (4,)}, "stage_sizes"),
    ],
)
def test_errors(kwargs, match):
    args = {"widths": (4, 8), **kwargs}
    with pytest.raises(ValueError, match=match):
        ResNet((1, 1), **args, rngs=nnx.Rngs(0))


def test_cifar_depth_error():
    with pytest.raises(ValueError, match="depth"):
        cifar_resnet(21, rngs=nnx.Rngs(0))


def test_pure_training_step_under_grad_and_jit(key):
    model = ResNet((1, 1), widths=(4, 8), block_rate=0.2, head_rate=0.5, rngs=nnx.Rngs(0))
    apply_fn, (params, rest) = pure_apply(model, nnx.Param, ..., return_state=True)
    x = jax.random.normal(key, (4, 8, 8, 3))
    labels = jnp.arange(4) % 10
    before = jax.tree.map(np.asarray, (params, rest))

    def loss_fn(p, r, k):
        logits, (_, new_rest) = apply_fn((p, r), k, x, train=True)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1)), new_rest

    @jax.jit
    def step(p, r, k):
        (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, r, k)
        return jax.tree.map(lambda w, g: w - np.float32(0.1) * g, p, grads), new_rest, loss

    new_params, new_rest, loss = step(params, rest, jax.random.key(1))
    assert np.isfinite(float(loss))
    assert any(not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(params), jax.tree.leaves(new_params), strict=True))
    assert any(not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(rest), jax.tree.leaves(new_rest), strict=True))
    # apply_fn is pure: calling it (eagerly, train=True) leaves its input state untouched
    apply_fn((params, rest), key, x, train=True)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves((params, rest)), strict=True):
        np.testing.assert_array_equal(a, b)
