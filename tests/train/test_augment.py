"""Random crops and flips: each output is a window / mirror of its input, keyed."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop.train import random_crop, random_flip


def _images(n=64, h=5, w=6, c=2):
    return jnp.asarray(np.random.default_rng(0).normal(size=(n, h, w, c)).astype(np.float32))


def test_crop_outputs_are_windows_of_the_padded_images(key):
    images, p = _images(), 2
    out = np.asarray(random_crop(key, images, p))
    padded = np.pad(np.asarray(images), ((0, 0), (p, p), (p, p), (0, 0)))
    h, w = images.shape[1:3]
    offsets = []
    for n in range(len(images)):
        hits = [
            (i, j)
            for i, j in itertools.product(range(2 * p + 1), repeat=2)
            if np.array_equal(out[n], padded[n, i : i + h, j : j + w])
        ]
        assert len(hits) == 1
        offsets.append(hits[0])
    # Offsets vary between images; every one of the 25 is possible, 64 draws see many.
    assert len(set(offsets)) > 10


def test_crop_is_keyed_and_jittable(key):
    images = _images()
    a = random_crop(key, images, 3)
    assert np.array_equal(a, jax.jit(random_crop, static_argnums=2)(key, images, 3))
    assert not np.array_equal(a, random_crop(jax.random.fold_in(key, 1), images, 3))
    assert np.array_equal(a, random_crop(jax.random.key_data(key), images, 3))  # legacy key
    assert np.array_equal(random_crop(key, images, 0), images)
    assert random_crop(key, images.astype(jnp.bfloat16), 1).dtype == jnp.bfloat16


@pytest.mark.parametrize("mode", ["edge", "reflect"])
def test_crop_border_modes(key, mode):
    images = _images(n=4)
    out = random_crop(key, images, 1, mode=mode)
    assert out.shape == images.shape
    assert set(np.unique(np.asarray(out))) <= set(np.unique(np.asarray(images)))


def test_flip_mirrors_about_half(key):
    images = _images(n=400, h=2, w=3, c=1)
    out = np.asarray(random_flip(key, images))
    same = np.all(out == np.asarray(images), axis=(1, 2, 3))
    mirrored = np.all(out == np.asarray(images)[:, :, ::-1, :], axis=(1, 2, 3))
    assert np.all(same ^ mirrored)
    # Binomial(400, 0.5): the flipped count lies within 5 sigma (50) of 200.
    assert abs(int(mirrored.sum()) - 200) < 50
    assert np.array_equal(random_flip(key, images, rate=0.0), images)
    assert np.array_equal(random_flip(key, images, rate=1.0), np.asarray(images)[:, :, ::-1])


def test_bad_arguments(key):
    images = _images(n=2)
    with pytest.raises(ValueError, match=r"images.shape=\(5, 6, 2\)"):
        random_crop(key, images[0], 1)
    with pytest.raises(ValueError, match="padding=-1"):
        random_crop(key, images, -1)
    with pytest.raises(ValueError, match="mode='wrap'"):
        random_crop(key, images, 1, mode="wrap")
    with pytest.raises(ValueError, match="rate=1.5"):
        random_flip(key, images, rate=1.5)
    with pytest.raises(ValueError, match="images must be a batch"):
        random_flip(key, images[0])
