"""Shared fixtures of the experiment tests."""

import jax
import pytest

from experiments import _images as im


@pytest.fixture
def synthetic_images():
    """``make(n, num_test, seed)``: random 28x28 images as :class:`experiments._images.Images`
    (no validation split; the test set is the first ``num_test`` training images)."""
    def make(n: int, num_test: int, seed: int) -> im.Images:
        keys = jax.random.split(jax.random.key(seed), 2)
        x = jax.random.uniform(keys[0], (n, 28, 28, 1))
        y = jax.random.randint(keys[1], (n,), 0, 10)
        return im.Images(x, y, x[:0], y[:0], x[:num_test], y[:num_test])

    return make
