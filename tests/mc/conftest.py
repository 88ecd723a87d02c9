"""Shared pieces of the jdrop.mc tests: a small LeNet in plain JAX and its inputs.

conv - pool - conv - pool - dense - dropout - dense. Dropout only in the head, so
everything up to the first dense layer is the key-independent trunk. The functions are
fixtures so that every test module of this folder uses the one definition.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from jdrop import mc

BATCH, SIZE, HIDDEN, CLASSES = 16, 16, 32, 10
_DN = ("NHWC", "HWIO", "NHWC")


def _init_params(seed):
    rng = np.random.default_rng(seed)
    shapes = {"c1": (3, 3, 1, 4), "c2": (3, 3, 4, 8), "w1": (2 * 2 * 8, HIDDEN),
              "w2": (HIDDEN, CLASSES)}
    scales = {"c1": 0.3, "c2": 0.2, "w1": 0.3, "w2": 0.3}
    return {
        name: jnp.asarray(rng.normal(size=shape).astype(np.float32) * np.float32(scales[name]))
        for name, shape in shapes.items()
    }


def _pool(h):
    return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def _trunk(params, x):
    h = jax.lax.conv_general_dilated(x, params["c1"], (1, 1), "VALID", dimension_numbers=_DN)
    h = _pool(jax.nn.relu(h))
    h = jax.lax.conv_general_dilated(h, params["c2"], (1, 1), "VALID", dimension_numbers=_DN)
    h = _pool(jax.nn.relu(h))
    return jax.nn.relu(h.reshape(h.shape[0], -1) @ params["w1"])


def _lenet(key, params, x):
    """(N, 16, 16, 1) images -> (N, 10) logits, with dropout 0.5 before the last layer."""
    return jdrop.dropout(key, _trunk(params, x), 0.5) @ params["w2"]


@functools.partial(jax.jit, static_argnames=("num_samples", "chunk_size"))
def _lenet_samples(key, params, x, num_samples, chunk_size=None):
    """``mc.sample`` of the LeNet, jitted once per (num_samples, chunk_size)."""
    return mc.sample(_lenet, key, params, x, num_samples=num_samples, chunk_size=chunk_size)


def _regression_fn(key, params, x):
    """(N, 2) outputs: the first two logits of the LeNet."""
    return _lenet(key, params, x)[:, :2]


def _dropout_fn(key, x):
    return jdrop.dropout(key, x, 0.5)


def _collectives(compiled_text):
    """Number of each cross-device collective in compiled HLO text."""
    ops = ("all-reduce", "all-gather", "collective-permute", "all-to-all", "reduce-scatter")
    return {op: len(re.findall(rf" {op}(?:-start)?\(", compiled_text)) for op in ops}


@pytest.fixture(scope="session")
def lenet():
    return _lenet


@pytest.fixture(scope="session")
def lenet_samples():
    return _lenet_samples


@pytest.fixture(scope="session")
def regression_fn():
    return _regression_fn


@pytest.fixture(scope="session")
def dropout_fn():
    """``fn(key, x)``: dropout at rate 0.5, the smallest stochastic pass."""
    return _dropout_fn


@pytest.fixture(scope="session")
def collectives():
    return _collectives


@pytest.fixture(scope="module")
def params():
    return _init_params(1)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(2)
    return jnp.asarray(rng.normal(size=(BATCH, SIZE, SIZE, 1)).astype(np.float32))


@pytest.fixture(scope="module")
def targets():
    return jnp.asarray(np.random.default_rng(3).normal(size=(BATCH, 2)).astype(np.float32))
