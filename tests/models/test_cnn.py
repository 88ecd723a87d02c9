"""Tests for the CNN classifiers (jdrop.models._cnn): LeNet, AlexNet and the MNIST-1D CNN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models._cnn import MNIST1DCNN, AlexNet, LeNet, lenet_all, lenet_ip
from jdrop.nn import pure_apply


def _count(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _check_model(model, x):
    """Shape and dtype; inference deterministic; two keys differ; one key reproduces."""
    apply_fn = jax.jit(pure_apply(model)[0], static_argnames="deterministic")
    state = nnx.state(model)
    y = apply_fn(state, None, x, deterministic=True)
    assert y.shape == (x.shape[0], model.head.out_features) and y.dtype == jnp.float32
    np.testing.assert_array_equal(apply_fn(state, None, x, deterministic=True), y)
    k1, k2 = jax.random.split(jax.random.key(0))
    y1 = apply_fn(state, k1, x)
    assert not np.allclose(y1, apply_fn(state, k2, x))
    assert not np.allclose(y1, y)
    np.testing.assert_array_equal(apply_fn(state, k1, x), y1)


def test_mnist1d_cnn(key):
    model = MNIST1DCNN(conv_rate=0.2, conv_dropout="spatial", head_rate=0.5, rngs=nnx.Rngs(0))
    _check_model(model, jax.random.normal(key, (4, 40)))


def test_mnist1d_cnn_size_and_shapes(key):
    model = MNIST1DCNN(rngs=nnx.Rngs(0))
    assert _count(model) == 5210  # Greydanus' ConvBase
    x = jax.random.normal(key, (3, 40))
    model.eval()
    np.testing.assert_array_equal(model(x), model(x[..., None]))
    model.train()
    np.testing.assert_array_equal(model(x, key=key), model(x, deterministic=True))  # rates 0
    wide = MNIST1DCNN(channels=(32, 64, 64), kernel_sizes=(5, 3, 3), rngs=nnx.Rngs(0))
    assert wide.head.in_features == 5 * 64
    assert wide(x, deterministic=True).shape == (3, 10)


def test_mnist1d_cnn_spatial_drops_whole_channels(key):
    model = MNIST1DCNN(channels=8, conv_rate=(0.5, 0.0, 0.0), conv_dropout="spatial",
                       rngs=nnx.Rngs(0))
    h = nnx.relu(model.convs[0](jax.random.normal(key, (2, 40, 1))))
    y = model.conv_dropouts[0](h, key=key)
    dropped = (y == 0).all(axis=1)  # (N, C): whole channels
    assert dropped.any() and not dropped.all()
    np.testing.assert_array_equal(jnp.where(dropped[:, None, :], 0, 2 * h), y)


def test_lenet_variants(key):
    ip = lenet_ip(image_size=16, features=(4, 8), hidden=32, rngs=nnx.Rngs(0))
    assert all(d is None for d in ip.conv_dropouts) and ip.fc_dropout.rate == 0.5
    every = lenet_all(0.3, image_size=16, features=(4, 8), hidden=32, in_channels=3,
                      rngs=nnx.Rngs(0))
    assert [d.rate for d in every.conv_dropouts] == [0.3, 0.3]
    _check_model(every, jax.random.normal(key, (2, 16, 16, 3)))


def test_lenet_caffe_sizes():
    mnist = nnx.eval_shape(lambda: LeNet(rngs=nnx.Rngs(0)))
    assert mnist.fc.in_features == 4 * 4 * 50
    assert _count(mnist) == 520 + 25050 + 400500 + 5010
    cifar = nnx.eval_shape(lambda: LeNet(image_size=32, in_channels=3, rngs=nnx.Rngs(0)))
    assert cifar.fc.in_features == 5 * 5 * 50
    with pytest.raises(ValueError, match="image_size"):
        LeNet(image_size=8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="conv_dropout"):
        LeNet(conv_rate=0.5, conv_dropout="blocks", rngs=nnx.Rngs(0))


def test_alexnet_cifar_small(key):
    model = AlexNet(variant="cifar", width=0.125, fc_features=32, rngs=nnx.Rngs(0))
    assert model.fc1.in_features == 4 * 4 * 32
    _check_model(model, jax.random.normal(key, (2, 32, 32, 3)))


def test_alexnet_imagenet_by_shape():
    model = nnx.eval_shape(lambda: AlexNet(rngs=nnx.Rngs(0)))
    assert model.fc1.in_features == 6 * 6 * 256
    assert _count(model) == 62_378_344
    assert [d.rate for d in model.fc_dropouts] == [0.5, 0.5]
    apply_fn, state = pure_apply(model)
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    out = jax.eval_shape(apply_fn, state, jax.random.key(0), x)
    assert out.shape == (1, 1000) and out.dtype == jnp.float32


def test_alexnet_errors():
    with pytest.raises(ValueError, match="variant"):
        AlexNet(variant="mnist", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="width"):
        AlexNet(width=0.0, rngs=nnx.Rngs(0))
