"""jdrop.spec_augment: time and frequency masking of spectrograms (Park et al. 2019)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop

KW = dict(num_time_masks=2, max_time_width=6, num_freq_masks=2, max_freq_width=4)


def _masked(y):
    return np.asarray(y == 0)


def test_masks_are_whole_bands_within_the_limits():
    x = jnp.ones((64, 40, 20))
    y = jdrop.spec_augment(jax.random.key(0), x, **KW)
    assert y.shape == x.shape and y.dtype == x.dtype
    m = _masked(y)
    full_frames = m.all(axis=2)  # (N, T): frames masked over every channel
    full_bands = m.all(axis=1)  # (N, F)
    # every masked element lies in a masked frame or a masked channel
    assert (m == (full_frames[:, :, None] | full_bands[:, None, :])).all()
    assert full_frames.sum(1).max() <= 12 and full_bands.sum(1).max() <= 8
    # independent per example, and some examples do get masks
    assert full_frames.sum() > 0 and full_bands.sum() > 0
    assert len({m[i].tobytes() for i in range(64)}) > 32


def test_width_distribution_covers_zero_to_max():
    x = jnp.ones((4000, 30, 1))
    y = jdrop.spec_augment(jax.random.key(1), x, num_time_masks=1, max_time_width=3,
                           num_freq_masks=0, max_freq_width=0)
    widths = _masked(y)[..., 0].sum(1)
    counts = np.bincount(widths, minlength=4)
    assert len(counts) == 4 and (np.abs(counts / 4000 - 0.25) < 0.04).all()
    starts = _masked(y)[..., 0].argmax(1)[widths > 0]
    assert starts.min() == 0 and starts.max() == 29  # reaches both ends


def test_dtypes_mask_value_and_broadcast_dims():
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        y = jdrop.spec_augment(jax.random.key(2), jnp.ones((2, 10, 8), dtype), **KW)
        assert y.dtype == dtype
    y = jdrop.spec_augment(jax.random.key(2), jnp.ones((8, 10, 6)), mask_value=-5.0, **KW)
    assert set(np.unique(y).tolist()) <= {-5.0, 1.0}
    # channel axis sharing one mask; time on axis 1, freq on axis 2
    y = jdrop.spec_augment(jax.random.key(3), jnp.ones((4, 20, 10, 3)), time_axis=1,
                           freq_axis=2, broadcast_dims=(3,), **KW)
    m = _masked(y)
    assert (m == m[..., :1]).all() and m.any()


def test_deterministic_passthrough_and_key_required():
    x = jnp.arange(24.0).reshape(2, 3, 4)
    assert jdrop.spec_augment(None, x, deterministic=True, **KW) is not None
    np.testing.assert_array_equal(jdrop.spec_augment(None, x, deterministic=True), x)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        jdrop.spec_augment(None, x)


def test_errors_name_the_argument():
    x = jnp.ones((2, 10, 8))
    k = jax.random.key(0)
    for name in KW:
        with pytest.raises(ValueError, match=name):
            jdrop.spec_augment(k, x, **{**KW, name: -1})
    with pytest.raises(ValueError, match="num_time_masks"):
        jdrop.spec_augment(k, x, num_time_masks=1.5)
    with pytest.raises(TypeError, match="floating"):
        jdrop.spec_augment(k, jnp.ones((2, 10, 8), jnp.int32))
    with pytest.raises(ValueError, match="time_axis"):
        jdrop.spec_augment(k, x, time_axis=5)
    with pytest.raises(ValueError, match="differ"):
        jdrop.spec_augment(k, x, time_axis=1, freq_axis=-2)
    with pytest.raises(ValueError, match="broadcast_dims"):
        jdrop.spec_augment(k, x, broadcast_dims=(2,))


def test_jit_vmap_gradient_and_keys():
    x = jax.random.normal(jax.random.key(9), (3, 16, 12))
    fn = lambda k, x: jdrop.spec_augment(k, x, **KW)
    k = jax.random.key(4)
    np.testing.assert_array_equal(jax.jit(fn)(k, x), fn(k, x))
    keys = jax.random.split(k, 5)
    stacked = jax.vmap(fn, in_axes=(0, None))(keys, x)
    for i in range(5):
        np.testing.assert_array_equal(stacked[i], fn(keys[i], x))
    assert not np.array_equal(stacked[0], stacked[1])
    np.testing.assert_array_equal(fn(jax.random.PRNGKey(4), x), fn(jax.random.wrap_key_data(
        jax.random.PRNGKey(4)), x))
    g = jax.grad(lambda x: fn(k, x).sum())(x)
    kept = fn(k, jnp.ones_like(x)) != 0
    np.testing.assert_array_equal(g, kept.astype(g.dtype))
