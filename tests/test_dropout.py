"""jdrop.dropout and the mask-sharing variants: formulations, edge cases, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop

N_KEYS = 4000


def _ensemble(fn, x, n=N_KEYS):
    keys = jax.random.split(jax.random.key(3), n)
    return jax.vmap(fn, in_axes=(0, None))(keys, x)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_inverted_and_original_have_the_same_expected_output(rate):
    """Inverted: E[train] = x = test. Original: E[train] = (1 - rate) x = test."""
    x = jnp.linspace(-2, 2, 16, dtype=jnp.float32)
    for inverted in (True, False):
        train = _ensemble(lambda k, x, inv=inverted: jdrop.dropout(k, x, rate, inverted=inv), x)
        test = jdrop.dropout(None, x, rate, deterministic=True, inverted=inverted)
        # mean of N_KEYS draws: std = |scale * x| sqrt(rate (1 - rate) / N_KEYS); 6 sigma
        scale = 1 / (1 - rate) if inverted else 1.0
        tol = 6 * np.abs(scale * np.asarray(x)) * np.sqrt(rate * (1 - rate) / N_KEYS)
        assert (np.abs(train.mean(0) - test) <= tol + 1e-6).all()
    # the two test-time outputs differ by the factor the two training scales differ by
    original = jdrop.dropout(None, x, rate, deterministic=True, inverted=False)
    np.testing.assert_allclose(original, (1 - rate) * np.asarray(x), rtol=1e-6)


def test_inverted_and_original_share_the_mask(key):
    x = jnp.ones(100)
    inv = jdrop.dropout(key, x, 0.25)
    orig = jdrop.dropout(key, x, 0.25, inverted=False)
    np.testing.assert_array_equal(inv == 0, orig == 0)
    np.testing.assert_allclose(inv[inv != 0], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(orig[orig != 0], 1.0)


def test_gradient_is_mask_over_keep_probability(key):
    x = jnp.arange(1.0, 33.0)
    y, vjp = jax.vjp(lambda x: jdrop.dropout(key, x, 0.5), x)
    (grad,) = vjp(jnp.ones_like(x))
    np.testing.assert_array_equal(grad, np.where(y != 0, 2.0, 0.0))


def test_rate_zero_returns_input_unchanged(key):
    x = jnp.arange(5.0)
    assert jdrop.dropout(key, x, 0.0) is x


@pytest.mark.parametrize("traced", [False, True])
def test_rate_one_gives_zeros_and_finite_gradients(key, traced):
    x = jnp.array([1.0, jnp.inf, jnp.nan, -3.0])
    rate = jnp.float32(1.0) if traced else 1.0
    fn = jax.jit(jdrop.dropout) if traced else jdrop.dropout
    np.testing.assert_array_equal(fn(key, x, rate), np.zeros(4))
    grad = jax.grad(lambda x: fn(key, x, rate).sum())(jnp.arange(4.0))
    np.testing.assert_array_equal(grad, np.zeros(4))


def test_inf_and_nan_in_dropped_positions_never_leak(key):
    x = jnp.full((1000,), jnp.inf).at[::2].set(jnp.nan)
    y = np.asarray(jdrop.dropout(key, x, 0.5))
    dropped = y == 0
    assert 0.4 < dropped.mean() < 0.6
    assert not np.isnan(y[dropped]).any()


def test_no_gradient_flows_into_the_rate(key):
    grad = jax.grad(lambda r: jdrop.dropout(key, jnp.ones(64), r).sum())(jnp.float32(0.3))
    assert float(grad) == 0.0


def test_regenerated_mask_matches_stored_mask(key):
    x = jax.random.normal(key, (32, 48))
    for dims in [(), (0,), (1,)]:
        def loss(x, regenerate, dims=dims):
            y = jdrop.dropout(key, x, 0.4, broadcast_dims=dims, regenerate_mask=regenerate)
            return jnp.sum(jnp.sin(y))

        stored = jax.grad(loss)(x, False)
        regen = jax.grad(loss)(x, True)
        np.testing.assert_array_equal(stored, regen)


def test_regenerated_mask_stores_no_mask(key):
    """The residuals of the custom VJP are the key words and two scalars, not a mask."""
    x = jnp.ones((256, 256))
    _, vjp = jax.vjp(lambda x: jdrop.dropout(key, x, 0.5, regenerate_mask=True), x)
    residual_bytes = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(vjp))
    _, vjp_stored = jax.vjp(lambda x: jdrop.dropout(key, x, 0.5), x)
    stored_bytes = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(vjp_stored))
    assert residual_bytes < 64
    assert stored_bytes >= 256 * 256  # one byte per element


def test_broadcast_dims_share_the_mask(key):
    y = jdrop.dropout(key, jnp.ones((4, 5, 6)), 0.5, broadcast_dims=(0, -1))
    assert (y == y[:1, :, :1]).all()
    assert (y[0, :, 0] == 0).any() and (y[0, :, 0] != 0).any()


def test_spatial_dropout_channel_axis_first(key):
    y = jdrop.spatial_dropout(key, jnp.ones((3, 8, 5, 5)), 0.5, channel_axis=1)
    assert (y == y[:, :, :1, :1]).all()
    y1 = jdrop.spatial_dropout(key, jnp.ones((3, 10, 8)), 0.5)  # 1-D: (N, L, C)
    assert (y1 == y1[:, :1]).all()
    y3 = jdrop.spatial_dropout(key, jnp.ones((2, 3, 4, 5, 6)), 0.5)  # 3-D
    assert (y3 == y3[:, :1, :1, :1]).all()


def test_spatial_dropout_matches_torch_dropout2d_statistics(key):
    """Fraction of zeroed feature maps and the kept scale, as torch.nn.Dropout2d."""
    import torch  # the independent reference (installed with the dev/bench extras)

    x = np.ones((64, 16, 6, 6), np.float32)
    ours = np.asarray(jdrop.spatial_dropout(key, x, 0.3, channel_axis=1))
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout2d(torch.from_numpy(x), 0.3, training=True).numpy()
    for y in (ours, theirs):
        per_map = y.reshape(64, 16, -1)
        assert ((per_map == per_map[..., :1]).all())
        np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
        # 1024 maps: std of the zero fraction is sqrt(.3*.7/1024) = 0.014; 6 sigma
        assert abs((per_map[..., 0] == 0).mean() - 0.3) < 0.09


def test_drop_path_original_form(key):
    x = jnp.ones((1000, 3))
    y = jdrop.drop_path(key, x, 0.2, inverted=False)
    assert set(np.unique(y).tolist()) == {0.0, 1.0}
    np.testing.assert_allclose(jdrop.drop_path(None, x, 0.2, deterministic=True,
                                               inverted=False), 0.8 * np.ones((1000, 3)))


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_, jnp.uint8])
def test_integer_input_is_a_type_error(key, dtype):
    with pytest.raises(TypeError, match="x.dtype"):
        jdrop.dropout(key, jnp.ones(3, dtype), 0.5)


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), float("inf")])
def test_rate_out_of_range(key, bad):
    with pytest.raises(ValueError, match=r"rate=.*"):
        jdrop.dropout(key, jnp.ones(3), bad)
    with pytest.raises(ValueError, match="rate"):  # checked even when deterministic
        jdrop.dropout(key, jnp.ones(3), bad, deterministic=True)


def test_axis_out_of_range(key):
    with pytest.raises(ValueError, match=r"broadcast_dims=3 .* x.ndim=2"):
        jdrop.dropout(key, jnp.ones((2, 2)), 0.5, broadcast_dims=(3,))
    with pytest.raises(ValueError, match=r"channel_axis=4 .* x.ndim=4"):
        jdrop.spatial_dropout(key, jnp.ones((2, 2, 2, 2)), 0.5, channel_axis=4)
    with pytest.raises(ValueError, match=r"batch_axis=-3 .* x.ndim=2"):
        jdrop.drop_path(key, jnp.ones((2, 2)), 0.5, batch_axis=-3)
    with pytest.raises(ValueError, match="x.ndim=2"):
        jdrop.spatial_dropout(key, jnp.ones((2, 2)), 0.5)


def test_missing_key_says_what_to_pass():
    with pytest.raises(ValueError, match=r"key=jax.random.key\(seed\).*deterministic=True"):
        jdrop.dropout(None, jnp.ones(3), 0.5)


def test_weight_scale_rule():
    np.testing.assert_allclose(jdrop.weight_scale(jnp.ones(2), 0.25), [0.75, 0.75])
