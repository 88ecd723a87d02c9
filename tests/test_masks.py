"""Statistical and structural tests of the counter-based mask generator.

Tolerances: with n Bernoulli draws the keep fraction has standard deviation
sqrt(q (1 - q) / n); every statistical assertion below allows 6 standard deviations
(false-failure probability ~1e-9), stated next to it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from jdrop import _masks as masks
from jdrop._keys import key_words

N = 1 << 20  # elements per statistical test
RATES = [0.0, 1e-4, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999, 1.0]


def test_quantised_rate_within_bound():
    """The realised drop probability threshold / 2**32 for 1,003 rates, 1.0 included."""
    for rate in np.linspace(0, 1, 1001).tolist() + [1 / 3, 1e-7, 1e-4]:
        threshold, live = masks.drop_threshold(rate)
        realised = int(threshold) / 2**32 if bool(live) else 1.0
        assert abs(realised - rate) <= 2**-24 * rate + 2**-32, rate
        assert abs(realised - rate) < 1e-4, rate


def test_traced_threshold_equals_concrete():
    rates = np.linspace(0, 1, 257, dtype=np.float32)[:-1]
    traced = jax.jit(jax.vmap(lambda r: masks.drop_threshold(r)[0]))(rates)
    concrete = [masks.drop_threshold(float(r))[0] for r in rates]
    np.testing.assert_array_equal(np.asarray(traced), np.asarray(concrete, np.uint32))


@pytest.mark.parametrize("rate", RATES)
def test_keep_fraction(key, rate):
    keep = np.asarray(jdrop.keep_mask(key, (N,), rate))
    q = 1 - rate
    sigma = np.sqrt(q * (1 - q) / N)
    assert abs(keep.mean() - q) <= 6 * sigma + 1e-12


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_output_mean_and_variance(key, rate):
    """E[y] = x and Var[y] = x^2 rate / (1 - rate) for y = dropout(x)."""
    x = np.float32(1.7)
    y = np.asarray(jdrop.dropout(key, jnp.full((N,), x), rate), np.float64)
    var = x**2 * rate / (1 - rate)
    # the sample mean has standard deviation sqrt(var / N)
    assert abs(y.mean() - x) <= 6 * np.sqrt(var / N)
    # the sample variance of a two-point distribution: its std is about var * sqrt(k / N)
    kurtosis_term = (x / (1 - rate)) ** 4 * (1 - rate) * rate
    assert abs(y.var() - var) <= 6 * np.sqrt(kurtosis_term / N)


def _correlation(a, b):
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean()))


def test_neighbours_uncorrelated(key):
    """Along the last axis, across rows, and elements 2**16 apart (shared low bits)."""
    keep = np.asarray(jdrop.keep_mask(key, (1024, 1024), 0.5))
    flat = keep.ravel()
    limit = 6 / np.sqrt(flat.size)  # the correlation of independent bits has std 1/sqrt(n)
    assert abs(_correlation(flat[:-1], flat[1:])) < limit
    assert abs(_correlation(keep[:-1].ravel(), keep[1:].ravel())) < limit
    assert abs(_correlation(flat[: -(1 << 16)], flat[1 << 16 :])) < limit


def test_bits_uniform_per_bit_position(key):
    """Every one of the 32 bit positions is a fair coin, and so are pairs of positions."""
    bits = np.asarray(jdrop.random_bits(key, (N,)))
    ones = np.array([((bits >> i) & 1).mean() for i in range(32)])
    assert np.abs(ones - 0.5).max() <= 6 * 0.5 / np.sqrt(N)
    low, high = (bits & 0xFFFF).astype(np.float64), (bits >> 16).astype(np.float64)
    assert abs(_correlation(low, high)) < 6 / np.sqrt(N)


def test_split_and_folded_keys_uncorrelated(key):
    # Note: with JAX's partitionable threefry, split(key)[i] IS fold_in(key, i), so the
    # folds below use other data.
    a, b = jax.random.split(key)
    keys = (a, b, jax.random.fold_in(key, 7), jax.random.fold_in(key, 8), key)
    masks_ = [jdrop.keep_mask(k, (N,), 0.5) for k in keys]
    masks_ = [np.asarray(m) for m in masks_]
    for i in range(len(masks_)):
        for j in range(i + 1, len(masks_)):
            assert abs(_correlation(masks_[i], masks_[j])) < 6 / np.sqrt(N)


def test_adjacent_integer_seeds_uncorrelated():
    """key(0) and key(1) differ in one bit of key data; their masks must not."""
    m0 = np.asarray(jdrop.keep_mask(jax.random.key(0), (N,), 0.5))
    m1 = np.asarray(jdrop.keep_mask(jax.random.key(1), (N,), 0.5))
    assert abs(_correlation(m0, m1)) < 6 / np.sqrt(N)


def test_mask_depends_on_position_only(key):
    """A slice of a larger array's mask is not the mask of the slice's shape: the position
    is the linear index, so equal shapes agree and reshapes keep element order."""
    full = jdrop.random_bits(key, (64, 32))
    np.testing.assert_array_equal(full.reshape(-1), jdrop.random_bits(key, (64 * 32,)))
    np.testing.assert_array_equal(full.reshape(32, 64), jdrop.random_bits(key, (32, 64)))


def test_more_than_2_32_elements_use_a_high_counter_word(key):
    """Arrays over 2**32 elements split the linear index in (lo, hi): rows 2**32 apart differ.

    The array itself is too large for a test machine, so the counters are checked
    abstractly and the hash is evaluated at the exact positions the generator uses.
    """
    shape = (4, 2**31)
    lo_hi = jax.eval_shape(lambda: masks._counters(shape))
    assert lo_hi[1] is not None  # a high word exists
    words = key_words(key)
    lo = jnp.arange(4096, dtype=jnp.uint32)
    row0 = masks._hash(words, lo, jnp.zeros_like(lo))
    row2 = masks._hash(words, lo, jnp.full_like(lo, 2))  # 2**32 elements further on
    assert (np.asarray(row0) != np.asarray(row2)).mean() > 0.99
    assert masks._hash(words, lo, None).tolist() != row2.tolist()


def test_axis_of_2_32_elements_is_rejected():
    with pytest.raises(ValueError, match="at most 2\\*\\*32"):
        masks._counters((2**32,))


def test_rate_zero_draws_no_bits(key):
    jaxpr = jax.make_jaxpr(lambda k, x: jdrop.dropout(k, x, 0.0))(key, jnp.ones(8))
    assert "random" not in str(jaxpr) and "threefry" not in str(jaxpr)


def test_jax_impl_matches_bernoulli(key):
    ours = jdrop.keep_mask(key, (64, 64), 0.25, impl="jax")
    np.testing.assert_array_equal(ours, jax.random.bernoulli(key, 0.75, (64, 64)))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_rate(key, bad):
    with pytest.raises(ValueError, match="rate"):
        jdrop.keep_mask(key, (4,), bad)


def test_bad_impl_and_shape(key):
    with pytest.raises(ValueError, match="impl='philox'"):
        jdrop.keep_mask(key, (4,), 0.5, impl="philox")
    with pytest.raises(ValueError, match="shape"):
        jdrop.keep_mask(key, (-1, 2), 0.5)
    with pytest.raises(TypeError, match="shape"):
        jdrop.keep_mask(key, 4, 0.5)


def test_bad_keys():
    with pytest.raises(TypeError, match="typed key"):
        jdrop.keep_mask(jnp.zeros(3, jnp.uint32), (4,), 0.5)
    with pytest.raises(TypeError, match="jax.vmap"):
        jdrop.keep_mask(jax.random.split(jax.random.key(0), 2), (4,), 0.5)


def test_uniform_and_normal_moments(key):
    u = np.asarray(jdrop.uniform(key, (N,)), np.float64)
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) <= 6 * np.sqrt(1 / 12 / N)
    z = np.asarray(jdrop.normal(key, (N,)), np.float64)
    assert abs(z.mean()) <= 6 / np.sqrt(N)
    assert abs(z.var() - 1) <= 6 * np.sqrt(2 / N)
    # fourth moment of a standard normal is 3 (Box-Muller is exact in distribution)
    assert abs((z**4).mean() - 3) <= 6 * np.sqrt(96 / N)
