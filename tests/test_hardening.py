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


def _np_lowbias32_inverse(x):
    """The inverse of lowbias32: xorshifts undone, odd multipliers inverted mod 2**32."""
    x = int(x)
    x ^= x >> 16
    x = x * pow(int(_M2), -1, 2**32) % 2**32
    x ^= (x >> 15) ^ (x >> 30)
    x = x * pow(int(_M1), -1, 2**32) % 2**32
    return x ^ (x >> 16)


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3, 1 / 3, 0.7, 0.9, 1e-4, 3e-5, 1e-7])
def test_keep_threshold_boundary(rate):
    """Bits equal to floor(fl32(rate) * 2**32) are kept, one below is dropped (any rate).

    The position whose bits equal a chosen value is found by inverting the hash, and read
    as a one-element block of a (2**32 - 1,) array. An off-by-one in the threshold (``<``
    for ``<=``, rounding for floor: 1e-4 and 3e-5 have fractional parts above and below
    1/2) or a different scale would flip one of the three.
    """
    key = jax.random.key(11)
    k0, k1 = (int(w) for w in np.asarray(key_words(key)))
    threshold = int(np.floor(np.float64(np.float32(rate)) * 2**32))  # the documented rule
    keep_at = jax.jit(lambda r, start: jdrop.keep_mask(key, (1,), r, global_shape=(2**32 - 1,),
                                                       start=(start,)))
    for bits, kept in ((threshold - 1, False), (threshold, True), (threshold + 1, True)):
        position = _np_lowbias32_inverse(_np_lowbias32_inverse(bits) ^ k1) ^ k0
        assert _np_bits((k0, k1), position) == bits  # the inversion is right
        block = dict(global_shape=(2**32 - 1,), start=(position,))
        assert int(jdrop.random_bits(key, (1,), **block)[0]) == bits
        assert bool(jdrop.keep_mask(key, (1,), rate, **block)[0]) is kept, (rate, bits)
        assert bool(keep_at(np.float32(rate), np.uint32(position))[0]) is kept, (rate, bits)
        y = jdrop.dropout(key, jnp.ones(1), rate, block=((2**32 - 1,), (position,)))
        assert float(y[0]) == (pytest.approx(1 / (1 - rate), rel=1e-6) if kept else 0.0)


def test_block_start_beyond_int32_and_out_of_range():
    """Found beyond the issue's list: a Python-int start >= 2**31 overflowed int32."""
    key = jax.random.key(2)
    words = np.asarray(key_words(key))
    got = jdrop.random_bits(key, (3,), global_shape=(2**32 - 1,), start=(3_000_000_000,))
    np.testing.assert_array_equal(np.asarray(got), _np_bits(words, 3_000_000_000 + np.arange(3)))
    for start in ((-1,), (2**32 - 3,)):
        with pytest.raises(ValueError, match="start"):
            jdrop.random_bits(key, (3,), global_shape=(2**32 - 1,), start=start)


def test_counter_bits_block_form_matches_reference():
    words = np.asarray(key_words(jax.random.key(3)))
    lo = np.array([0, 1, 2**32 - 1, 12345], np.uint32)
    hi = np.array([0, 5, 2**32 - 1, 1], np.uint32)
    from jdrop._masks import counter_bits

    got = counter_bits(jnp.asarray(words), jnp.asarray(lo), jnp.asarray(hi))
    np.testing.assert_array_equal(np.asarray(got),
                                  [_np_bits(words, a, b) for a, b in zip(lo, hi, strict=True)])


# ---------------------------------------------------------------------------------------
# 2. Bool rates are refused; traced invalid rates poison the output; jdrop.checked raises.

KEY = jax.random.key(0)
X4 = jnp.ones((2, 6, 6, 3))

# every op taking a rate, as f(rate) on a valid input
OPS = {
    "dropout": lambda r: jdrop.dropout(KEY, X4, r),
    "dropout_regenerate": lambda r: jdrop.dropout(KEY, X4, r, regenerate_mask=True),
    "dropout_jax_impl": lambda r: jdrop.dropout(KEY, X4, r, impl="jax"),
    "alpha_dropout": lambda r: jdrop.alpha_dropout(KEY, X4, r),
    "feature_alpha_dropout": lambda r: jdrop.feature_alpha_dropout(KEY, X4, r),
    "gaussian_dropout": lambda r: jdrop.gaussian_dropout(KEY, X4, r),
    "dropblock": lambda r: jdrop.dropblock(KEY, X4, r, block_size=3),
    "weight_scale": lambda r: jdrop.weight_scale(X4, r),
    "spatial_dropout": lambda r: jdrop.spatial_dropout(KEY, X4, r),
    "drop_path": lambda r: jdrop.drop_path(KEY, X4, r),
    "dropconnect": lambda r: jdrop.dropconnect(KEY, X4, r),
    "locked_dropout": lambda r: jdrop.locked_dropout(KEY, X4[0], r),
    "embedding_dropout": lambda r: jdrop.embedding_dropout(
        KEY, jnp.array([0, 2, 1]), jnp.ones((4, 3)), r),
    "zoneout": lambda r: jdrop.zoneout(KEY, X4, X4 * 2, r),
    "zoneout_test": lambda r: jdrop.zoneout(None, X4, X4 * 2, r, deterministic=True),
    "weight_drop": lambda r: jdrop.weight_drop(KEY, {"w": jnp.ones((3, 3))}, r)["w"],
    "concrete_dropout": lambda r: jdrop.concrete_dropout(KEY, X4, r),
    "apply_mask": lambda r: jdrop.apply_mask(X4, jnp.ones(X4.shape, bool), r),
    # found beyond the list: the linen drop-in refused a traced rate with a
    # TracerBoolConversionError, attention dropout gave plausible output at a traced 1.5
    "linen_dropout": lambda r: jdrop.linen.Dropout(rate=r, deterministic=False).apply(
        {}, X4, rngs={"dropout": KEY}),
    "attention_xla": lambda r: jdrop.attention.dot_product_attention(
        X4, X4, X4, dropout_key=KEY, rate=r, implementation="xla"),
    "attention_blockwise": lambda r: jdrop.attention.dot_product_attention(
        X4, X4, X4, dropout_key=KEY, rate=r, implementation="blockwise", block_q=4,
        block_kv=4),
}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("rate", [True, False, np.bool_(True)])
def test_bool_rate_refused(name, rate):
    with pytest.raises(TypeError, match="rate"):
        OPS[name](rate)


@pytest.mark.parametrize("name", sorted(OPS))
def test_traced_bool_rate_refused(name):
    with pytest.raises(TypeError, match="rate"):
        jax.jit(OPS[name])(jnp.bool_(True))


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), float("inf")])
def test_traced_invalid_rate_poisons_with_nan(name, rate):
    out = np.asarray(jax.jit(OPS[name])(np.float32(rate)))
    assert np.isnan(out).all(), (name, rate)


@pytest.mark.parametrize("name", sorted(OPS))
def test_traced_valid_rate_matches_concrete(name):
    rate = 0.3
    traced, concrete = np.asarray(jax.jit(OPS[name])(np.float32(rate))), np.asarray(OPS[name](rate))
    if name in ("concrete_dropout", "gaussian_dropout", "alpha_dropout", "feature_alpha_dropout",
                "attention_xla", "attention_blockwise"):
        np.testing.assert_allclose(traced, concrete, rtol=1e-5, atol=1e-6)  # XLA reassociates
    else:
        np.testing.assert_array_equal(traced, concrete)


def test_gaussian_and_concrete_traced_rate_one_poisons():
    for fn in (OPS["gaussian_dropout"], OPS["concrete_dropout"]):
        assert np.isnan(np.asarray(jax.jit(fn)(np.float32(1.0)))).all()


@pytest.mark.parametrize("name", ["dropout", "alpha_dropout", "dropblock", "weight_scale",
                                  "gaussian_dropout", "zoneout", "attention_blockwise"])
def test_checked_raises_on_invalid_traced_rate(name):
    checked = jax.jit(jdrop.checked(OPS[name]))
    err, _ = checked(np.float32(1.5))
    assert "rate must be in" in err.get() and "1.5" in err.get()
    with pytest.raises(Exception, match="rate must be in"):
        err.throw()
    err, out = checked(np.float32(0.25))
    assert err.get() is None
    np.testing.assert_allclose(np.asarray(out), np.asarray(OPS[name](0.25)), rtol=1e-5, atol=1e-6)


def test_plain_jit_without_checked_does_not_raise():
    """Without jdrop.checked the ops never call checkify.check (which would fail to trace)."""
    assert np.isnan(np.asarray(jax.jit(OPS["dropout"])(np.float32(2.0)))).all()


@pytest.mark.parametrize("make", [
    lambda r: jdrop.nn.Dropout(r), lambda r: jdrop.nn.SpatialDropout(r),
    lambda r: jdrop.nn.AlphaDropout(r), lambda r: jdrop.nn.GaussianDropout(r),
    lambda r: jdrop.nn.DropPath(r), lambda r: jdrop.nn.DropBlock(r),
])
def test_layers_refuse_bool_rate(make):
    with pytest.raises(TypeError, match="rate"):
        make(True)


def test_dropconnect_dense_refuses_bool_rate_and_integer_x():
    from flax import nnx

    with pytest.raises(TypeError, match="rate"):
        jdrop.nn.DropConnectDense(3, 2, True, rngs=nnx.Rngs(0))
    layer = jdrop.nn.DropConnectDense(3, 2, 0.5, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="x.dtype"):
        layer(jnp.ones((4, 3), jnp.int32), key=KEY)
    with pytest.raises(TypeError, match="x.dtype"):
        layer(jnp.ones((4, 3), jnp.int32), deterministic=True)


# ---------------------------------------------------------------------------------------
# 4. Arguments that used to fail without naming themselves, or not at all.


def test_weight_scale_integer_x_refused():
    with pytest.raises(TypeError, match="dtype"):
        jdrop.weight_scale(jnp.ones(3, jnp.int32), 0.5)


def test_broadcast_dims_none_names_argument():
    for fn in (jdrop.dropout, jdrop.alpha_dropout):
        with pytest.raises(TypeError, match="broadcast_dims"):
            fn(KEY, X4, 0.5, broadcast_dims=None)


def test_dropblock_batch_axis_none_names_argument():
    with pytest.raises(TypeError, match="batch_axis"):
        jdrop.dropblock(KEY, X4, 0.5, block_size=3, batch_axis=None)


@pytest.mark.parametrize("keep_shape", [(2, 6, 6, 4), (7,), (2, 6, 6, 3, 1)])
def test_apply_mask_wrong_keep_shape_names_argument(keep_shape):
    with pytest.raises(ValueError, match="keep"):
        jdrop.apply_mask(X4, jnp.ones(keep_shape, bool), 0.5)


def test_apply_mask_non_bool_keep_refused():
    with pytest.raises(TypeError, match="keep"):
        jdrop.apply_mask(X4, jnp.ones(X4.shape), 0.5)


def test_concrete_dropout_regularizer_validates():
    kwargs = dict(input_dim=2, weight_regularizer=1.0, dropout_regularizer=1.0)
    w = jnp.ones((2, 2))
    # rate 0: the entropy term's limit (0 log 0 = 0), finite: 4 / 1 + 0
    assert float(jdrop.concrete_dropout_regularizer(0.0, w, **kwargs)) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="rate"):
        jdrop.concrete_dropout_regularizer(1.0, w, **kwargs)
    with pytest.raises(ValueError, match="rate"):
        jdrop.concrete_dropout_regularizer(jnp.array([0.1, 0.2]), w, **kwargs)
    with pytest.raises(TypeError, match="rate"):
        jdrop.concrete_dropout_regularizer(True, w, **kwargs)
    with pytest.raises(ValueError, match="input_dim"):
        jdrop.concrete_dropout_regularizer(0.1, w, **{**kwargs, "input_dim": 0})
    with pytest.raises(ValueError, match="weight_regularizer"):
        jdrop.concrete_dropout_regularizer(0.1, w, **{**kwargs, "weight_regularizer": -1.0})
    traced = jax.jit(lambda r: jdrop.concrete_dropout_regularizer(r, w, **kwargs))
    assert np.isnan(float(traced(np.float32(1.5))))
    assert float(traced(np.float32(0.5))) == pytest.approx(6.6137, abs=1e-4)


# ---------------------------------------------------------------------------------------
# 5. Uncertainty: NaN logits never read as certainty.


def _logits_with_one_nan_sample():
    logits = jax.random.normal(jax.random.key(1), (10, 3, 4))
    return logits.at[4, 1, 2].set(jnp.nan)  # one NaN in one sample of example 1


@pytest.mark.parametrize("metric", ["predictive_entropy", "expected_entropy",
                                    "mutual_information", "variation_ratio"])
def test_nan_logits_propagate(metric):
    from jdrop import uncertainty

    out = np.asarray(getattr(uncertainty, metric)(_logits_with_one_nan_sample(),
                                                  from_logits=True))
    assert np.isnan(out[1]), metric
    assert np.isfinite(out[[0, 2]]).all(), metric


def test_nan_logits_propagate_classification_uncertainty_and_streaming():
    from jdrop import uncertainty

    logits = _logits_with_one_nan_sample()
    one_shot = uncertainty.classification_uncertainty(logits, from_logits=True)
    summary = uncertainty.ClassificationSummary.init(3, 4)
    streamed = summary.update(logits[:5], from_logits=True).update(
        logits[5:], from_logits=True).finalize()
    for result in (one_shot, streamed):
        for field in ("predictive_entropy", "expected_entropy", "mutual_information",
                      "variation_ratio"):
            value = np.asarray(getattr(result, field))
            assert np.isnan(value[1]) and np.isfinite(value[[0, 2]]).all(), field


def test_entropy_of_certain_prediction_stays_zero_and_finite_gradient():
    from jdrop import uncertainty

    log_probs = jnp.log(jnp.array([[[1.0, 0.0, 0.0]]] * 3))
    assert float(uncertainty.predictive_entropy(log_probs)[0]) == 0.0
    grad = jax.grad(lambda lp: uncertainty.expected_entropy(lp).sum())(log_probs)
    assert np.isfinite(np.asarray(grad)).all()


# ---------------------------------------------------------------------------------------
# 3. DropBlock drops `rate` of the activations in expectation (overlaps, borders, 1-3-D).


@pytest.mark.parametrize("shape,block_size", [
    ((64, 24, 16), 5),           # 1-D maps
    ((16, 16, 16, 8), 3),        # 2-D maps
    ((8, 8, 8, 8, 4), 3),        # 3-D maps
    ((16, 7, 9, 8), 7),          # block as large as a map side: borders dominate
])
@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3, 0.5, 0.7, 0.9])
def test_dropblock_realised_fraction_matches_rate(shape, block_size, rate):
    y = np.asarray(jdrop.dropblock(jax.random.key(3), jnp.ones(shape), rate,
                                   block_size=block_size))
    # blocks make drops correlated: the tolerance is ~5 standard deviations of the
    # fraction over the (maps x blocks) effectively independent units of these sizes
    assert abs((y == 0).mean() - rate) < 0.03, ((y == 0).mean(), rate)


def test_dropblock_expected_fraction_is_exact():
    """mean_p 1 - (1 - gamma)**n(p) == rate, n(p) counted by brute force in numpy."""
    from jdrop._dropblock import dropblock_gamma

    shape, b = (9, 11), 4
    n = np.zeros(shape)
    for i in range(shape[0] - b + 1):
        for j in range(shape[1] - b + 1):
            n[i:i + b, j:j + b] += 1
    for rate in (0.05, 0.3, 0.5, 0.9):
        gamma = dropblock_gamma(rate, shape, b)
        assert np.mean(1 - (1 - gamma) ** n) == pytest.approx(rate, abs=1e-9)
        traced = float(jax.jit(lambda r: dropblock_gamma(r, shape, b))(np.float32(rate)))
        assert traced == pytest.approx(gamma, rel=1e-5)


def test_dropblock_traced_rate_one_equals_concrete():
    x = jnp.ones((2, 8, 8, 3))
    concrete = jdrop.dropblock(KEY, x, 1.0, block_size=3)
    traced = jax.jit(lambda r: jdrop.dropblock(KEY, x, r, block_size=3))(np.float32(1.0))
    np.testing.assert_array_equal(np.asarray(traced), np.asarray(concrete))
    assert (np.asarray(traced) == 0).all()
    zero = jax.jit(lambda r: jdrop.dropblock(KEY, x, r, block_size=3))(np.float32(0.0))
    np.testing.assert_array_equal(np.asarray(zero), np.asarray(x))


# ---------------------------------------------------------------------------------------
# 5. jdrop.mc: float32 accumulation for low-precision models; explicit and auto meshes.


def _mc_logits_fn(key, w, x):
    return jdrop.dropout(key, x @ w, 0.5)


def test_mc_bfloat16_model_accumulates_in_float32():
    from jdrop import mc

    w = jax.random.normal(jax.random.key(1), (5, 4))
    x = jax.random.normal(jax.random.key(2), (16, 5))
    half = mc.predictive_classification(_mc_logits_fn, KEY, w.astype(jnp.bfloat16),
                                        x.astype(jnp.bfloat16), num_samples=32)
    assert half.predictive_probs.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(half.predictive_probs).sum(-1), 1.0, atol=1e-5)
    # the same bfloat16 samples, summarised in float32
    from jdrop import uncertainty

    ref = uncertainty.ClassificationSummary.init(16, 4).update(
        jnp.asarray(mc.sample(_mc_logits_fn, KEY, w.astype(jnp.bfloat16),
                              x.astype(jnp.bfloat16), num_samples=32), jnp.float32),
        from_logits=True).finalize()
    np.testing.assert_allclose(np.asarray(half.predictive_entropy),
                               np.asarray(ref.predictive_entropy), atol=1e-5)
    reg = mc.predictive_regression(lambda k, w, x: _mc_logits_fn(k, w, x)[:, 0], KEY,
                                   w.astype(jnp.bfloat16), x.astype(jnp.bfloat16),
                                   num_samples=8)
    assert jax.tree.leaves(reg)[0].dtype == jnp.float32


@pytest.mark.parametrize("axis_type", ["Explicit", "Auto"])
def test_mc_with_make_mesh(axis_type):
    from jax.sharding import AxisType, Mesh

    from jdrop import mc

    w = jax.random.normal(jax.random.key(1), (5, 4))
    x = jax.random.normal(jax.random.key(2), (16, 5))
    common = dict(num_samples=6, chunk_size=3, batch_axis_name="batch", batch_argnums=1)

    def run(mesh):
        return jax.jit(lambda k, w, x: (
            mc.predictive_classification(_mc_logits_fn, k, w, x, mesh=mesh, **common),
            mc.sample(_mc_logits_fn, k, w, x, mesh=mesh, **common)))(KEY, w, x)

    reference = run(Mesh(np.array(jax.devices()), ("batch",)))
    mesh = jax.make_mesh((len(jax.devices()),), ("batch",),
                         axis_types=(getattr(AxisType, axis_type),))
    with jax.set_mesh(mesh):
        got = run(mesh)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(reference), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    assert len(got[1].sharding.device_set) == len(jax.devices())


# ---------------------------------------------------------------------------------------
# 6. shard_map: the unsharded array's exact mask, bitwise against jit + NamedSharding.


@pytest.mark.parametrize("spec_axes", [("a", None), (None, "a"), ("a", "b"), (("a", "b"), None)])
def test_shard_map_block_masks_match_unsharded(spec_axes):
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("a", "b"))
    spec = P(*spec_axes)
    x = jnp.arange(1.0, 8 * 16 + 1).reshape(8, 16)
    key = jax.random.key(5)

    def local(x):
        block = jdrop.shard_block(x.shape, spec)
        bits = jdrop.random_bits(key, x.shape, global_shape=block[0], start=block[1])
        return bits, jdrop.dropout(key, x, 0.3, block=block)

    sharded = jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=(spec, spec))
    bits, y = jax.jit(sharded)(x)
    placed = jax.device_put(x, NamedSharding(mesh, spec))
    want = jax.jit(lambda x: jdrop.dropout(key, x, 0.3))(placed)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(want))
    np.testing.assert_array_equal(np.asarray(bits), np.asarray(jdrop.random_bits(key, (8, 16))))
    # without the block every shard repeats one mask: the bug this API exists for
    naive = jax.jit(jax.shard_map(lambda x: jdrop.dropout(key, x, 0.3), mesh=mesh,
                                  in_specs=spec, out_specs=spec))(x)
    assert not np.array_equal(np.asarray(naive), np.asarray(want))


def test_shard_map_block_with_broadcast_dims_and_high_word():
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:4]), ("a",))
    key = jax.random.key(9)
    x = jnp.ones((4, 6, 5))
    local = jax.shard_map(
        lambda x: jdrop.dropout(key, x, 0.5, broadcast_dims=(1,),
                                block=jdrop.shard_block(x.shape, P("a"))),
        mesh=mesh, in_specs=P("a"), out_specs=P("a"))
    np.testing.assert_array_equal(np.asarray(jax.jit(local)(x)),
                                  np.asarray(jdrop.dropout(key, x, 0.5, broadcast_dims=(1,))))
    # a block of a (3, 2**31) array: its high word comes from the global shape
    got = jdrop.random_bits(key, (1, 4), global_shape=(3, 2**31), start=(2, 8))
    want = jax.jit(lambda k: jdrop.random_bits(k, (3, 2**31))[2:3, 8:12])(key)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_block_arguments_validated():
    with pytest.raises(ValueError, match="together"):
        jdrop.keep_mask(KEY, (4,), 0.5, global_shape=(8,))
    with pytest.raises(ValueError, match="global_shape"):
        jdrop.keep_mask(KEY, (4,), 0.5, global_shape=(8, 2), start=(0, 0))
    with pytest.raises(ValueError, match="impl"):
        jdrop.keep_mask(KEY, (4,), 0.5, impl="jax", global_shape=(8,), start=(4,))


# ---------------------------------------------------------------------------------------
# 7. A data_dir the user gives is used or refused, never replaced by the offline copy.


@pytest.mark.parametrize("case", ["misspelled", "missing_file", "a_file"])
def test_given_data_dir_never_replaced(tmp_path, case):
    from jdrop import data

    if case == "misspelled":
        given = tmp_path / "fashoin-mnist"
    elif case == "missing_file":
        given = tmp_path / "fashion-mnist"
        given.mkdir()
        (given / "train-images-idx3-ubyte").write_bytes(b"")
    else:
        given = tmp_path / "file.txt"
        given.write_text("not a folder")
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_fashion_mnist(data_dir=given)
    message = str(info.value)
    assert str(given) in message and "shared" not in message.split("pass")[0]
    if case == "a_file":
        assert "a file, not a folder" in message
    # every file loader: the offline copies of these exist in ../shared/data
    for load in (lambda: data.load_char_corpus(data_dir=given),
                 lambda: data.load_uci("yacht", data_dir=given),
                 lambda: data.load_wav_folder(data_dir=given)):
        with pytest.raises(data.DataNotFoundError):
            load()


# ---------------------------------------------------------------------------------------
# 7. The main job refuses to resume a checkpoint written with another configuration.


def test_main_job_refuses_checkpoint_of_another_config(tmp_path):
    import dataclasses

    from experiments.mc_dropout import config as configs
    from experiments.mc_dropout.train import check_resume

    train_dir = tmp_path / "train"
    base = configs.smoke()
    check_resume(base, train_dir)  # first run: stores the config
    (train_dir / "checkpoints" / "40").mkdir(parents=True)  # a checkpoint was written
    check_resume(base, train_dir)  # same config: resumes
    # eval-only fields may change on resume
    check_resume(dataclasses.replace(base, num_samples=3, progress=False), train_dir)
    for field, value in (("seed", 7), ("head_rate", 0.3), ("learning_rate", 0.5),
                         ("width", 16)):
        with pytest.raises(ValueError, match=f"--{field}") as info:
            check_resume(dataclasses.replace(base, **{field: value}), train_dir)
        assert "--fresh" in str(info.value) and "--workdir" in str(info.value)
    changed = dataclasses.replace(base, seed=7, fresh=True)
    check_resume(changed, train_dir)  # --fresh discards the old checkpoints
    assert not (train_dir / "checkpoints").exists()
    check_resume(dataclasses.replace(changed, fresh=False), train_dir)
    # checkpoints written without a stored config (an older run) are refused too
    (train_dir / "config.json").unlink()
    (train_dir / "checkpoints" / "1").mkdir(parents=True)
    with pytest.raises(ValueError, match="--fresh"):
        check_resume(dataclasses.replace(changed, fresh=False), train_dir)


# ---------------------------------------------------------------------------------------
# 8. Weak-test classes: inputs that can tell right from wrong.


# Confidences on every bin edge (ECE, MCE, reliability bins, equal-width and equal-mass):
# tests/uncertainty/test_calibration_edges.py.


@pytest.mark.parametrize("shape,channel_axis", [
    ((3, 40, 6), -1), ((3, 6, 40), 1),                  # 1-D maps (N, L, C) / (N, C, L)
    ((2, 5, 6, 7, 8), -1), ((2, 8, 5, 6, 7), 1),        # 3-D maps
])
@pytest.mark.parametrize("op", ["spatial_dropout", "feature_alpha_dropout"])
def test_spatial_ops_1d_and_3d(shape, channel_axis, op):
    x = jax.random.normal(jax.random.key(4), shape) + 3.0
    y = np.asarray(getattr(jdrop, op)(jax.random.key(2), x, 0.5, channel_axis=channel_axis))
    channel = channel_axis % len(shape)
    spatial = tuple(a for a in range(1, len(shape)) if a != channel)
    x = np.asarray(x)
    if op == "spatial_dropout":
        dropped = (y == 0).all(axis=spatial)
        kept = np.isclose(y, 2 * x).all(axis=spatial)
    else:
        from jdrop._alpha import _affine

        a, b = (float(v) for v in _affine(0.5, np.float32))
        drop_value = a * -1.7580993408473766 + b
        dropped = np.isclose(y, drop_value).all(axis=spatial)
        kept = np.isclose(y, a * x + b, rtol=1e-5).all(axis=spatial)
    assert (dropped ^ kept).all()  # every (example, channel) map is whole: dropped or kept
    assert dropped.any() and kept.any()
    # the mask is the keep_mask of the (batch, channels) mask shape, per the docstring
    mask_shape = tuple(1 if a in spatial else s for a, s in enumerate(shape))
    keep = np.asarray(jdrop.keep_mask(jax.random.key(2), mask_shape, 0.5))
    np.testing.assert_array_equal(kept, np.squeeze(keep, spatial))


def test_training_loop_draws_new_masks_every_step(tmp_path):
    """Each step's dropout masks differ (a loop reusing one key would pass every loss test)."""
    from flax import nnx

    from jdrop.train import TrainConfig, make_optimizer, train

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(4, 3, rngs=rngs)

        def __call__(self, x, key=None):
            return self.dense(jdrop.dropout(key, x, 0.5, deterministic=key is None))

    masks = []

    def loss_fn(model, batch, key, carry):
        assert key is not None  # training steps get a key
        jax.debug.callback(lambda m: masks.append(np.asarray(m)),
                           jdrop.keep_mask(key, (256,), 0.5))
        logits = model(batch["inputs"], key=key)
        loss = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(8), batch["labels"]])
        return loss, ({}, carry)

    rng = np.random.default_rng(0)
    data = {"inputs": rng.normal(size=(32, 4)).astype(np.float32),
            "labels": rng.integers(0, 3, 32).astype(np.int32)}

    def batches_fn(epoch, start_step):
        for step in range(start_step, 4):
            yield {k: v[step * 8:(step + 1) * 8] for k, v in data.items()}

    train(Net(nnx.Rngs(0)), make_optimizer("sgd", 0.1), loss_fn, batches_fn,
          TrainConfig(num_epochs=3, progress=False), workdir=None)
    assert len(masks) == 12  # 3 epochs x 4 steps
    distinct = {m.tobytes() for m in masks}
    assert len(distinct) == 12, "two training steps drew the same dropout mask"


# ---------------------------------------------------------------------------------------
# Battery: dtype extremes, empty and 0-d inputs, NaN/inf data, integer/bool x.

ELEMENTWISE = {
    "dropout": lambda k, x, r: jdrop.dropout(k, x, r),
    "dropout_not_inverted": lambda k, x, r: jdrop.dropout(k, x, r, inverted=False),
    "alpha_dropout": lambda k, x, r: jdrop.alpha_dropout(k, x, r),
    "gaussian_dropout": lambda k, x, r: jdrop.gaussian_dropout(k, x, r),
    "concrete_dropout": lambda k, x, r: jdrop.concrete_dropout(k, x, r),
    "dropconnect": lambda k, x, r: jdrop.dropconnect(k, x, r),
    "weight_scale": lambda k, x, r: jdrop.weight_scale(x, r),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("shape", [(), (0,), (0, 4), (3, 5)])
def test_dtypes_and_empty_and_scalar_inputs(name, dtype, shape):
    x = jnp.full(shape, 1.5, dtype)
    for rate in (0.0, 0.3, np.float32(0.3)):
        y = ELEMENTWISE[name](KEY, x, rate)
        assert y.shape == x.shape and y.dtype == x.dtype, (name, rate)
        assert np.isfinite(np.asarray(y, np.float32)).all(), (name, rate)
    traced = jax.jit(lambda r: ELEMENTWISE[name](KEY, x, r))(np.float32(0.3))
    assert traced.shape == x.shape and traced.dtype == x.dtype


def test_float64_inputs_with_x64_enabled():
    """float64 in, float64 out; the same mask bits as without x64; traced invalid: NaN."""
    x32 = jnp.full((3, 5), 1.5, jnp.float32)
    masks32 = {name: np.asarray(fn(KEY, x32, 0.3)) == 0 for name, fn in ELEMENTWISE.items()}
    with jax.enable_x64(True):
        x = jnp.full((3, 5), 1.5, jnp.float64)
        for name, fn in ELEMENTWISE.items():
            y = fn(KEY, x, 0.3)
            assert y.dtype == jnp.float64 and np.isfinite(np.asarray(y)).all(), name
            if name in ("dropout", "dropout_not_inverted", "dropconnect"):  # Bernoulli masks
                np.testing.assert_array_equal(np.asarray(y) == 0, masks32[name], err_msg=name)
            bad = jax.jit(lambda r, fn=fn: fn(KEY, x, r))(1.5)
            assert bad.dtype == jnp.float64 and np.isnan(np.asarray(bad)).all(), name
        y = jdrop.dropout(KEY, x, 0.3)
        np.testing.assert_allclose(np.asarray(y)[np.asarray(y) != 0], 1.5 / 0.7, rtol=1e-7)
        blocked = jdrop.dropblock(KEY, jnp.ones((2, 6, 6, 3), jnp.float64), 0.3, block_size=3)
        assert blocked.dtype == jnp.float64


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_non_float_x_refused(name, dtype):
    with pytest.raises(TypeError, match="dtype"):
        ELEMENTWISE[name](KEY, jnp.ones((2, 3), dtype), 0.5)


def test_nan_and_inf_data_never_leak_from_dropped_positions():
    x = jnp.array([jnp.nan, jnp.inf, -jnp.inf, 1.0] * 64)
    keep = np.asarray(jdrop.keep_mask(KEY, x.shape, 0.5))
    y = np.asarray(jdrop.dropout(KEY, x, 0.5))
    assert (y[~keep] == 0).all()  # dropped: exactly 0, never NaN
    np.testing.assert_array_equal(y[keep], np.asarray(x)[keep] * 2)  # kept: NaN stays NaN
    g = jax.grad(lambda x: jnp.sum(jdrop.dropout(KEY, x, 0.5)))(jnp.ones(256))
    np.testing.assert_array_equal(np.asarray(g), np.where(keep, 2.0, 0.0))


def test_rate_one_and_extreme_rates_all_dtypes():
    for dtype in (jnp.float16, jnp.bfloat16, jnp.float32):
        x = jnp.full((64,), jnp.finfo(dtype).max, dtype)
        assert (np.asarray(jdrop.dropout(KEY, x, 1.0), np.float32) == 0).all()
        traced = jax.jit(lambda r, x=x: jdrop.dropout(KEY, x, r))(np.float32(1.0))
        assert (np.asarray(traced, np.float32) == 0).all()
        # rate 1e-7: kept values are x / (1 - 1e-7): finite, never overflowing to inf
        # except where the dtype's max itself rounds up
        y = np.asarray(jdrop.dropout(KEY, jnp.ones((64,), dtype), 1e-7), np.float32)
        assert np.isfinite(y).all()


# ---------------------------------------------------------------------------------------
# Cases found beyond the list.


def test_rate_of_wrong_kind_refused():
    for rate in ("0.5", 0.5 + 0j):
        with pytest.raises(TypeError, match="rate"):
            jdrop.dropout(KEY, X4, rate)
    with pytest.raises(ValueError, match="rate must be a scalar"):
        jax.jit(lambda r: jdrop.dropout(KEY, X4, r))(jnp.array([0.5, 0.5]))
    with pytest.raises(TypeError, match="rate"):
        jax.jit(lambda r: jdrop.dropout(KEY, X4, r))(jnp.complex64(0.5))


def test_shape_of_wrong_kind_refused():
    for shape in ((2.5,), (True, 3)):
        with pytest.raises(TypeError, match="shape"):
            jdrop.keep_mask(KEY, shape, 0.5)
    assert jdrop.keep_mask(KEY, np.array([2, 3]), 0.5).shape == (2, 3)


def test_bool_block_size_and_temperature_refused():
    with pytest.raises(ValueError, match="block_size"):
        jdrop.dropblock(KEY, X4, 0.5, block_size=True)
    with pytest.raises(TypeError, match="temperature"):
        jdrop.concrete_dropout(KEY, X4, 0.3, temperature=True)
    traced = jax.jit(lambda t: jdrop.concrete_dropout(KEY, X4, 0.3, temperature=t))(0.1)
    np.testing.assert_allclose(np.asarray(traced),
                               np.asarray(jdrop.concrete_dropout(KEY, X4, 0.3, temperature=0.1)),
                               rtol=1e-5, atol=1e-6)
