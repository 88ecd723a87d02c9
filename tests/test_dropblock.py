"""DropBlock: contiguous blocks, about `rate` dropped, per-example normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from jdrop._dropblock import dropblock_seed_rate


def test_dropped_regions_are_unions_of_full_blocks(key):
    y = np.asarray(jdrop.dropblock(key, jnp.ones((4, 20, 20, 3)), 0.15, block_size=5))
    dropped = y == 0
    # every dropped pixel lies in some 5x5 window that is entirely dropped
    for n, c in [(0, 0), (1, 2), (3, 1)]:
        d = dropped[n, :, :, c]
        covered = np.zeros_like(d)
        for i in range(16):
            for j in range(16):
                if d[i:i + 5, j:j + 5].all():
                    covered[i:i + 5, j:j + 5] = True
        np.testing.assert_array_equal(covered, d)


@pytest.mark.parametrize("rate", [0.05, 0.1])
def test_dropped_fraction_near_rate(key, rate):
    """Gamma accounts for block overlap and borders: the realised fraction is `rate`."""
    y = np.asarray(jdrop.dropblock(key, jnp.ones((64, 32, 32, 8)), rate, block_size=5))
    assert 0.9 * rate < (y == 0).mean() <= 1.1 * rate


def test_per_example_normalisation_keeps_the_sum(key):
    x = jnp.ones((6, 16, 16, 4))
    y = jdrop.dropblock(key, x, 0.3, block_size=3)
    np.testing.assert_allclose(y.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=1e-5)


def test_channels_first_and_1d(key):
    y = jdrop.dropblock(key, jnp.ones((2, 3, 12, 12)), 0.2, block_size=3, channel_axis=1)
    assert y.shape == (2, 3, 12, 12)
    y1 = jdrop.dropblock(key, jnp.ones((8, 40, 4)), 0.2, block_size=4)
    runs = np.diff(np.concatenate([[1], (np.asarray(y1[0, :, 0]) != 0).astype(int), [1]]))
    lengths = np.flatnonzero(runs == 1) - np.flatnonzero(runs == -1)
    assert (lengths >= 4).all()


def test_seed_rate_formula():
    # gamma = rate / b^2 * (H W) / ((H - b + 1)(W - b + 1))
    assert dropblock_seed_rate(0.1, (10, 10), 3) == pytest.approx(0.1 / 9 * 100 / 64)


def test_bad_block_size(key):
    with pytest.raises(ValueError, match="block_size=9"):
        jdrop.dropblock(key, jnp.ones((1, 8, 8, 1)), 0.1, block_size=9)
    with pytest.raises(ValueError, match="block_size=0"):
        jdrop.dropblock(key, jnp.ones((1, 8, 8, 1)), 0.1, block_size=0)
    with pytest.raises(ValueError, match="x.ndim=2"):
        jdrop.dropblock(key, jnp.ones((8, 8)), 0.1, block_size=2)


def test_traced_rate_matches(key):
    x = jnp.ones((2, 12, 12, 2))
    a = jdrop.dropblock(key, x, 0.2, block_size=3)
    b = jax.jit(lambda r: jdrop.dropblock(key, x, r, block_size=3))(jnp.float32(0.2))
    np.testing.assert_allclose(a, b, rtol=1e-6)
