"""The adversarial battery (issue 16): golden values, type confusions, traced invalid values.

Every case must end in a clear error naming the argument, a documented NaN, or the correct
result. Golden values pin the mask generator's output (as JAX pins ``jax.random``): a
changed constant or mixing step would silently change every user's masks between versions.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from jdrop._keys import key_words

# ---------------------------------------------------------------------------------------
# 1. Golden values of the mask generator, and its documented formula checked in numpy.

_M1, _M2, _GOLDEN = np.uint32(0x7FEB352D), np.uint32(0x846CA68B), np.uint32(0x9E3779B9)


def _np_lowbias32(x):
    """Wellons' lowbias32, written independently of jdrop._masks (numpy wraps uint32)."""
    x = np.asarray(x, np.uint32)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint32(16))
        x = (x * _M1).astype(np.uint32)
        x = x ^ (x >> np.uint32(15))
        x = (x * _M2).astype(np.uint32)
        return x ^ (x >> np.uint32(16))


def _np_bits(words, lo, hi=0):
    """bits(i) = mix(mix(i_lo ^ k0) ^ (k1 + golden * i_hi)), as the module docstring says."""
    k0, k1 = (np.uint32(w) for w in words)
    with np.errstate(over="ignore"):
        outer = np.uint32(k1 + _GOLDEN * np.uint32(hi))
    return _np_lowbias32(_np_lowbias32(np.asarray(lo, np.uint32) ^ k0) ^ outer)


def test_golden_key_words_both_key_styles():
    """k0, k1 = jax.random.bits(key, (2,), uint32): typed and legacy keys agree."""
    assert np.asarray(key_words(jax.random.key(0))).tolist() == [4070199207, 4202968722]
    assert np.asarray(key_words(jax.random.PRNGKey(0))).tolist() == [4070199207, 4202968722]
    assert np.asarray(key_words(jax.random.PRNGKey(42))).tolist() == [2098992034, 2919706841]


@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey])
def test_golden_random_bits(make_key):
    bits = np.asarray(jdrop.random_bits(make_key(0), (2, 3)))
    assert bits.tolist() == [
        [2302592709, 2893004708, 1488423529],
        [4026139343, 2852891109, 1632744445],
    ]
    assert np.asarray(jdrop.random_bits(make_key(42), (5,))).tolist() == [
        4092968753, 2453120757, 3746551124, 1633131388, 3056321372,
    ]


def test_golden_random_bits_high_counter_word():
    """A (3, 2**31) array: the row index is the high word i_hi (sliced, never materialised)."""
    fn = jax.jit(lambda key: jdrop.random_bits(key, (3, 2**31))[:, :3])
    assert np.asarray(fn(jax.random.key(0))).tolist() == [
        [2302592709, 2893004708, 1488423529],
        [26579431, 670531064, 2498071150],
        [1348217717, 1834318388, 3490142572],
    ]
    words = np.asarray(key_words(jax.random.key(0)))
    for row in range(3):
        np.testing.assert_array_equal(np.asarray(fn(jax.random.key(0)))[row],
                                      _np_bits(words, np.arange(3), hi=row))


def test_golden_keep_mask():
    keep = np.asarray(jdrop.keep_mask(jax.random.PRNGKey(42), (16,), 0.3)).astype(int)
    assert keep.tolist() == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1]
    fn = jax.jit(lambda key: jdrop.keep_mask(key, (3, 2**31), 0.5)[:, :8])
    assert np.asarray(fn(jax.random.key(42))).astype(int).tolist() == [
        [1, 1, 1, 0, 1, 0, 1, 1],
        [1, 0, 1, 0, 1, 1, 1, 0],
        [1, 1, 0, 1, 1, 0, 0, 1],
    ]


def test_golden_uniform_and_dropout():
    u = np.asarray(jdrop.uniform(jax.random.key(0), (4,)))
    np.testing.assert_array_equal(
        u, np.float32([0.5361140966415405, 0.6735801696777344, 0.3465506136417389,
                       0.9374085664749146]))
    y = np.asarray(jdrop.dropout(jax.random.key(0), jnp.arange(1.0, 9.0), 0.3))
    scale = np.float32(1) / (np.float32(1) - np.float32(0.3))  # 1 / (1 - rate) in float32
    np.testing.assert_array_equal(y, np.arange(1.0, 9.0, dtype=np.float32) * scale)


@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey])
@pytest.mark.parametrize("seed", [0, 7, 123456])
def test_formula_matches_numpy_reference(make_key, seed):
    """random_bits, keep_mask and uniform against the documented formulas, in numpy."""
    key = make_key(seed)
    words = np.asarray(key_words(key))
    shape = (3, 5, 7)
    expected = _np_bits(words, np.arange(np.prod(shape))).reshape(shape)
    np.testing.assert_array_equal(np.asarray(jdrop.random_bits(key, shape)), expected)
    for rate in (0.1, 0.3, 0.5, 0.77):
        threshold = np.uint32(np.floor(np.float64(np.float32(rate)) * 2**32))
        np.testing.assert_array_equal(np.asarray(jdrop.keep_mask(key, shape, rate)),
                                      expected >= threshold)
        traced = jax.jit(lambda r, key=key: jdrop.keep_mask(key, shape, r))(np.float32(rate))
        np.testing.assert_array_equal(np.asarray(traced), expected >= threshold)
    u = ((expected >> 8).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-24)
    np.testing.assert_array_equal(np.asarray(jdrop.uniform(key, shape)), u)


def test_counter_bits_block_form_matches_reference():
    words = np.asarray(key_words(jax.random.key(3)))
    lo = np.array([0, 1, 2**32 - 1, 12345], np.uint32)
    hi = np.array([0, 5, 2**32 - 1, 1], np.uint32)
    from jdrop._masks import counter_bits

    got = counter_bits(jnp.asarray(words), jnp.asarray(lo), jnp.asarray(hi))
    np.testing.assert_array_equal(np.asarray(got),
                                  [_np_bits(words, a, b) for a, b in zip(lo, hi, strict=True)])
