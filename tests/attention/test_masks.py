"""The attention mask: tiles of the one generator's mask, statistics, the 64-bit counter path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from jdrop._keys import key_words
from jdrop._masks import counter_bits, mask_plan
from jdrop.attention import keep_mask_block


def _full(key, shape, rate, dims=()):
    mask_shape = tuple(1 if a in dims else d for a, d in enumerate(shape))
    return jnp.broadcast_to(jdrop.keep_mask(key, mask_shape, rate), shape)


@pytest.mark.parametrize(
    "shape, dims",
    [
        ((2, 4, 64, 64), ()),
        ((2, 3, 4, 33, 17), (0,)),
        ((2, 4, 64, 64), (0, 1)),
        ((3, 5, 7, 9), (2, 3)),
        ((4, 16, 8), (1,)),
    ],
)
def test_whole_array_is_keep_mask(key, shape, dims):
    got = keep_mask_block(key, shape, 0.3, broadcast_dims=dims)
    np.testing.assert_array_equal(got, _full(key, shape, 0.3, dims))


def test_tiles_under_jit_with_traced_offsets(key):
    shape = (2, 3, 40, 56)
    full = _full(key, shape, 0.25)

    @jax.jit
    def tile(q_offset, kv_offset):
        return keep_mask_block(
            key, shape, 0.25, q_offset=q_offset, kv_offset=kv_offset, q_size=8, kv_size=8
        )

    for qo, ko in [(0, 0), (8, 48), (32, 16)]:
        np.testing.assert_array_equal(tile(qo, ko), full[:, :, qo:qo + 8, ko:ko + 8])


def test_hi_word_path_matches_counters(key):
    """Beyond 2**32 weights the kv axis counts in ``lo`` and (b, h, i) in ``hi``."""
    shape = (3, 5, 2**16, 2**16 + 1)
    q0, k0 = 2**16 - 4, 2**16 - 3
    tile = keep_mask_block(key, shape, 0.5, q_offset=q0, kv_offset=k0, q_size=4, kv_size=4)
    b, h, i, j = np.meshgrid(np.arange(3), np.arange(5), q0 + np.arange(4), k0 + np.arange(4),
                             indexing="ij")
    lo = jnp.asarray(j.astype(np.uint32))
    hi = jnp.asarray(((b * 5 + h) * 2**16 + i).astype(np.uint32))
    plan = mask_plan(key, 0.5)
    expected = (counter_bits(key_words(key), lo, hi) >= plan.threshold) & plan.live
    np.testing.assert_array_equal(tile, expected)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_keep_fraction_and_independence(key, rate):
    keep = np.asarray(keep_mask_block(key, (4, 8, 128, 128), rate))
    n = keep.size
    # 5 standard errors of a Bernoulli mean.
    assert abs(keep.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    # Heads, examples and rows draw different masks; neighbours are uncorrelated.
    assert (keep[0, 0] != keep[0, 1]).mean() > 0.5 * 2 * rate * (1 - rate)
    assert (keep[0, 0] != keep[1, 0]).mean() > 0.5 * 2 * rate * (1 - rate)
    a, b = keep[..., :-1].ravel().astype(float), keep[..., 1:].ravel().astype(float)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01


def test_bad_arguments_name_themselves(key):
    with pytest.raises(ValueError, match="weights_shape"):
        keep_mask_block(key, (4, 4), 0.1)
    with pytest.raises(ValueError, match="rate"):
        keep_mask_block(key, (1, 2, 4, 4), 1.5)
    with pytest.raises(ValueError, match="broadcast_dims"):
        keep_mask_block(key, (1, 2, 4, 4), 0.1, broadcast_dims=(7,))
