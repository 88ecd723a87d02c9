"""Every op's documented exact rule, on inputs that can tell right from wrong (issue 16).

Rates exact in binary (0.5, 0.25) cannot tell ``1 / (1 - p)`` from ``1 / p``, ``q`` from
``1 - q`` or ``(1 - p) * x`` from ``p * x``; these tests use rates that are not (0.05, 0.1,
0.3, 1/3, 0.7, 0.9) and compare with the documented formula evaluated independently in
numpy float64. The masks come from :func:`jdrop.keep_mask`, whose bits are pinned by the
golden-value tests in ``test_hardening.py``; here the rule built on top of them is pinned.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop

RATES = [0.05, 0.1, 0.3, 1 / 3, 0.7, 0.9]
SHAPE = (6, 5, 4)  # one shape for most ops: each new shape costs compilations
KEY = jax.random.key(17)
SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, eq. 14
SELU_SCALE = 1.0507009873554804934193349852946


def _x(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(0.5, 3.0, shape).astype(np.float32))


@functools.partial(jax.jit, static_argnums=1)
def _jit_keep(key, shape, rate):
    return jdrop.keep_mask(key, shape, rate)


def _keep(key, shape, rate):
    """keep_mask with a traced rate (the same bits as a concrete one): one compile a shape."""
    return np.asarray(_jit_keep(key, shape, np.float32(rate)))


# every Bernoulli op with the mask shape its docstring documents: (op(key, x, rate), x shape,
# mask shape); each must equal where(m, x / (1 - rate), 0) with m = keep_mask(key, mask shape)
INVERTED_OPS = {
    "dropout": (lambda k, x, r: jdrop.dropout(k, x, r), (6, 5, 4), (6, 5, 4)),
    "dropout_regenerate": (lambda k, x, r: jdrop.dropout(k, x, r, regenerate_mask=True),
                           (6, 5, 4), (6, 5, 4)),
    "dropout_broadcast": (lambda k, x, r: jdrop.dropout(k, x, r, broadcast_dims=(1,)),
                          (6, 5, 4), (6, 1, 4)),
    "spatial_dropout_last": (lambda k, x, r: jdrop.spatial_dropout(k, x, r), (6, 3, 5, 4),
                             (6, 1, 1, 4)),
    "drop_path": (lambda k, x, r: jdrop.drop_path(k, x, r), (6, 5, 4), (6, 1, 1)),
    "dropconnect": (lambda k, x, r: jdrop.dropconnect(k, x, r), (6, 5, 4), (6, 5, 4)),
    "locked_dropout": (lambda k, x, r: jdrop.locked_dropout(k, x, r), (6, 5, 4), (6, 1, 4)),
    "locked_dropout_time_first": (lambda k, x, r: jdrop.locked_dropout(k, x, r, time_axis=0),
                                  (6, 5, 4), (1, 5, 4)),
}


@pytest.mark.parametrize("name", sorted(INVERTED_OPS))
def test_inverted_ops_scale_kept_values_by_one_over_keep_probability(name):
    op, shape, mask_shape = INVERTED_OPS[name]
    x = _x(shape)
    traced = jax.jit(lambda r: op(KEY, x, r))
    # the gradient is the mask over the keep probability
    grad = jax.jit(jax.grad(lambda x, r: jnp.sum(op(KEY, x, r))))
    for rate in RATES:
        keep = _keep(KEY, mask_shape, rate)
        want = np.where(keep, np.asarray(x, np.float64) / (1 - rate), 0.0)
        for got in (op(KEY, x, rate), traced(np.float32(rate))):
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=0, err_msg=rate)
        np.testing.assert_allclose(np.asarray(grad(x, np.float32(rate))),
                                   np.broadcast_to(keep / (1 - rate), shape), rtol=1e-6, atol=0)


@pytest.mark.parametrize("rate", RATES)
def test_original_formulation_and_weight_scaling(rate):
    """inverted=False: y = m * x while training, (1 - rate) * x at test (weight scaling)."""
    x = _x(SHAPE)
    x64 = np.asarray(x, np.float64)
    keep = _keep(KEY, x.shape, rate)
    np.testing.assert_array_equal(np.asarray(jdrop.dropout(KEY, x, rate, inverted=False)),
                                  np.where(keep, np.asarray(x), 0))
    for y in (jdrop.dropout(None, x, rate, deterministic=True, inverted=False),
              jdrop.drop_path(None, x, rate, deterministic=True, inverted=False),
              jdrop.weight_scale(x, rate),
              jax.jit(jdrop.weight_scale)(x, np.float32(rate))):
        np.testing.assert_allclose(np.asarray(y), (1 - rate) * x64, rtol=1e-6, atol=1e-7)
    assert jdrop.dropout(None, x, rate, deterministic=True) is x  # inverted: identity


@pytest.mark.parametrize("rate", RATES)
def test_apply_mask_and_embedding_dropout(rate):
    x = _x(SHAPE)
    keep = _keep(jax.random.key(3), (6, 1, 4), rate)
    np.testing.assert_allclose(np.asarray(jdrop.apply_mask(x, jnp.asarray(keep), rate)),
                               np.where(keep, np.asarray(x, np.float64) / (1 - rate), 0),
                               rtol=1e-6)
    table = _x((11, 3), seed=1)
    ids = jnp.array([[0, 3, 3, 10], [7, 0, 5, 3]])
    word_keep = _keep(KEY, (11,), rate)
    want = np.where(word_keep[np.asarray(ids)][..., None],
                    np.asarray(table, np.float64)[np.asarray(ids)] / (1 - rate), 0)
    np.testing.assert_allclose(np.asarray(jdrop.embedding_dropout(KEY, ids, table, rate)), want,
                               rtol=1e-6)


@pytest.mark.parametrize("rate", RATES)
def test_weight_drop_per_leaf_keys(rate):
    """DropConnect on every matrix with key fold_in(key, leaf_index); vectors untouched."""
    weights = {"a": _x((4, 6)), "b": _x((6,), 1), "c": _x((3, 5), 2)}
    out = jdrop.weight_drop(KEY, weights, rate)
    leaves = jax.tree_util.tree_leaves(weights)
    for index, (got, w) in enumerate(zip(jax.tree_util.tree_leaves(out), leaves, strict=True)):
        if w.ndim < 2:
            assert got is w
            continue
        keep = _keep(jax.random.fold_in(KEY, index), w.shape, rate)
        np.testing.assert_allclose(np.asarray(got),
                                   np.where(keep, np.asarray(w, np.float64) / (1 - rate), 0),
                                   rtol=1e-6)


@pytest.mark.parametrize("rate", RATES)
def test_zoneout_keeps_previous_state_with_probability_rate(rate):
    """Training: where(d, h_prev, h_new), d ~ Bernoulli(rate); test: the expectation."""
    prev, new = _x(SHAPE), _x(SHAPE, 1)
    update = _keep(KEY, prev.shape, rate)  # P(update) = 1 - rate
    np.testing.assert_array_equal(np.asarray(jdrop.zoneout(KEY, prev, new, rate)),
                                  np.where(update, np.asarray(new), np.asarray(prev)))
    want = rate * np.asarray(prev, np.float64) + (1 - rate) * np.asarray(new, np.float64)
    for got in (jdrop.zoneout(None, prev, new, rate, deterministic=True),
                jax.jit(lambda r: jdrop.zoneout(None, prev, new, r, deterministic=True))(
                    np.float32(rate))):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def _alpha_affine(rate):
    """Klambauer et al. 2017, section "New Dropout Technique", in float64."""
    q, alpha_p = 1 - rate, -SELU_SCALE * SELU_ALPHA
    a = (q + alpha_p**2 * q * (1 - q)) ** -0.5
    return a, -a * alpha_p * (1 - q), alpha_p


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("traced", [False, True])
def test_alpha_dropout_constants(rate, traced):
    a, b, alpha_p = _alpha_affine(rate)
    x = _x(SHAPE)
    keep = _keep(KEY, x.shape, rate)
    op = jax.jit(jdrop.alpha_dropout) if traced else jdrop.alpha_dropout
    y = np.asarray(op(KEY, x, np.float32(rate) if traced else rate))
    want = np.where(keep, a * np.asarray(x, np.float64) + b, a * alpha_p + b)
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=2e-6)
    # the constants restore mean 0 and variance 1 for standard inputs, exactly:
    # with E[x] = 0, E[x^2] = 1, y = a x + b (kept, prob q) or a alpha' + b (dropped)
    q = 1 - rate
    r = np.float32(rate) if traced else rate
    y1 = np.asarray(op(KEY, jnp.ones(x.shape), r), np.float64)
    y0 = np.asarray(op(KEY, jnp.zeros(x.shape), r), np.float64)
    a_out = (y1 - y0)[keep][0]  # slope of the kept branch
    b_out = y0[keep][0]
    drop_out = y0[~keep][0]
    mean = q * b_out + (1 - q) * drop_out
    second = q * (a_out**2 + b_out**2) + (1 - q) * drop_out**2
    assert mean == pytest.approx(0, abs=1e-6)
    assert second - mean**2 == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("rate", RATES)
def test_feature_alpha_dropout_constants(rate):
    a, b, alpha_p = _alpha_affine(rate)
    x = _x((6, 3, 5, 4))
    keep = _keep(KEY, (6, 1, 1, 4), rate)
    want = np.where(keep, a * np.asarray(x, np.float64) + b, a * alpha_p + b)
    np.testing.assert_allclose(np.asarray(jdrop.feature_alpha_dropout(KEY, x, rate)), want,
                               rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("rate", RATES)
def test_gaussian_dropout_standard_deviation(rate):
    """y = x * (1 + sigma z), sigma = sqrt(rate / (1 - rate)), z = jdrop.normal(key, shape)."""
    x = _x(SHAPE)
    z = np.asarray(jdrop.normal(KEY, x.shape), np.float64)
    want = np.asarray(x, np.float64) * (1 + np.sqrt(rate / (1 - rate)) * z)
    np.testing.assert_allclose(np.asarray(jdrop.gaussian_dropout(KEY, x, rate)), want,
                               rtol=1e-5, atol=1e-5)
    traced = jax.jit(jdrop.gaussian_dropout)(KEY, x, np.float32(rate))
    np.testing.assert_allclose(np.asarray(traced), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("temperature", [0.1, 2 / 3])
def test_concrete_dropout_relaxation(rate, temperature):
    """z = sigmoid((log p - log(1-p) + log u - log(1-u)) / t), y = x (1 - z) / (1 - p)."""
    x = _x(SHAPE)
    eps = 1e-7
    u = np.asarray(jdrop.uniform(KEY, x.shape), np.float64)
    p = np.float64(np.float32(rate))
    logit = (np.log(p + eps) - np.log(1 - p + eps) + np.log(u + eps) - np.log(1 - u + eps))
    z = 1 / (1 + np.exp(-logit / temperature))
    want = np.asarray(x, np.float64) * (1 - z) / (1 - p)
    got = np.asarray(jdrop.concrete_dropout(KEY, x, rate, temperature=temperature))
    # float32 logs: |error in logit| ~ 1e-6, amplified by 1/t; the sigmoid's slope is <= 1/4
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rate", RATES)
def test_concrete_dropout_regularizer_formula(rate):
    """R = wr ||W||^2 / (1 - p) + dr K (p log p + (1 - p) log(1 - p)), W a pytree."""
    weights = {"kernel": _x((3, 4)), "bias": _x((4,), 1)}
    squares = sum(float(np.sum(np.asarray(w, np.float64) ** 2))
                  for w in jax.tree_util.tree_leaves(weights))
    wr, dr, k = 0.37, 0.011, 7
    want = wr * squares / (1 - rate) + dr * k * (rate * np.log(rate)
                                                 + (1 - rate) * np.log(1 - rate))
    kwargs = dict(input_dim=k, weight_regularizer=wr, dropout_regularizer=dr)
    got = jdrop.concrete_dropout_regularizer(rate, weights, **kwargs)
    assert float(got) == pytest.approx(want, rel=1e-5)
    traced = jax.jit(lambda r: jdrop.concrete_dropout_regularizer(r, weights, **kwargs))
    assert float(traced(np.float32(rate))) == pytest.approx(want, rel=1e-5)
    # its derivative in p: wr ||W||^2 / (1 - p)^2 + dr K log(p / (1 - p))
    grad = float(jax.grad(lambda r: jdrop.concrete_dropout_regularizer(r, weights, **kwargs))(
        jnp.float32(rate)))
    assert grad == pytest.approx(wr * squares / (1 - rate) ** 2
                                 + dr * k * np.log(rate / (1 - rate)), rel=1e-4)


# ---------------------------------------------------------------------------------------
# DropBlock: the mask construction, on every documented rank and channel layout.


def _np_gamma(rate, spatial_shape, block_size):
    """Solve mean_p (1 - gamma)**n(p) = 1 - rate with n(p) counted by brute force."""
    from scipy.optimize import brentq

    n = np.zeros(spatial_shape)
    for corner in itertools.product(*(range(s - block_size + 1) for s in spatial_shape)):
        n[tuple(slice(c, c + block_size) for c in corner)] += 1
    return brentq(lambda g: np.mean((1 - g) ** n) - (1 - rate), 0.0, 1.0, xtol=1e-15)


def _np_dropblock(x, seeds, axes, batch_axis, block_size):
    """Seeds where a whole block fits, grown down/right into blocks; per-example rescale."""
    x = np.asarray(x, np.float64)
    valid = np.ones(x.shape, bool)
    for axis in axes:
        position = np.arange(x.shape[axis]).reshape(
            [-1 if a == axis else 1 for a in range(x.ndim)])
        valid &= position <= x.shape[axis] - block_size
    dropped = np.zeros(x.shape, bool)
    for index in zip(*np.nonzero(seeds & valid), strict=True):
        region = tuple(slice(i, i + block_size) if a in axes else i
                       for a, i in enumerate(index))
        dropped[region] = True
    keep = ~dropped
    other = tuple(a for a in range(x.ndim) if a != batch_axis)
    scale = np.prod([x.shape[a] for a in other]) / np.maximum(keep.sum(other, keepdims=True), 1)
    return np.where(keep, x * scale, 0.0)


@pytest.mark.parametrize("shape,channel_axis,block_size,rate", [
    ((3, 17, 4), -1, 4, 0.1),         # 1-D (N, L, C)
    ((3, 4, 17), 1, 3, 0.3),          # 1-D channels first (N, C, L)
    ((2, 9, 11, 3), -1, 4, 0.7),      # 2-D (N, H, W, C)
    ((2, 3, 9, 11), 1, 3, 0.1),       # 2-D channels first
    ((2, 5, 6, 7, 2), -1, 3, 0.3),    # 3-D (N, D, H, W, C)
    ((2, 2, 5, 6, 7), 1, 2, 0.7),     # 3-D channels first
])
def test_dropblock_matches_numpy_reference(shape, channel_axis, block_size, rate):
    from jdrop._dropblock import dropblock_gamma

    channel = channel_axis % len(shape)
    axes = tuple(a for a in range(1, len(shape)) if a != channel)
    spatial_shape = tuple(shape[a] for a in axes)
    gamma = _np_gamma(rate, spatial_shape, block_size)
    assert dropblock_gamma(rate, spatial_shape, block_size) == pytest.approx(gamma, rel=1e-9)
    x = _x(shape)
    seeds = ~_keep(KEY, shape, gamma)
    want = _np_dropblock(x, seeds, axes, 0, block_size)
    got = np.asarray(jax.jit(lambda x: jdrop.dropblock(KEY, x, rate, block_size=block_size,
                                                       channel_axis=channel_axis))(x))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert (got == 0).any() and (got != 0).any()


# ---------------------------------------------------------------------------------------
# SpecAugment: band widths and starts, every rank and axis placement.


def _np_bands(mask, axis):
    """The maximal runs of fully masked indices along ``axis`` of a 1-D boolean profile."""
    runs, start = [], None
    for i, m in enumerate(list(mask) + [False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


@pytest.mark.parametrize("shape,time_axis,freq_axis,broadcast_dims", [
    ((30, 12), 0, 1, ()),                  # one unbatched spectrogram (T, F)
    ((12, 30), 1, 0, ()),                  # (F, T)
    ((300, 30, 12), 1, 2, ()),             # (N, T, F)
    ((60, 3, 30, 12), 2, 3, (1,)),         # (N, C, T, F), channels share a mask
    ((60, 12, 3, 30), 3, 1, (2,)),         # (N, F, C, T)
])
def test_spec_augment_masks_are_bands_on_every_layout(shape, time_axis, freq_axis,
                                                      broadcast_dims):
    """One time band of U{0..4} frames and one frequency band of U{0..3} channels each."""
    kwargs = dict(num_time_masks=1, max_time_width=4, num_freq_masks=1, max_freq_width=3)
    fn = jax.jit(lambda x: jdrop.spec_augment(KEY, x, time_axis=time_axis, freq_axis=freq_axis,
                                              broadcast_dims=broadcast_dims, **kwargs))
    y = np.asarray(fn(jnp.ones(shape)))
    m = np.moveaxis(y == 0, (time_axis, freq_axis), (-2, -1))  # (..., T, F)
    if broadcast_dims:
        others = [a for a in range(len(shape)) if a not in (time_axis, freq_axis)]
        shared = others.index(broadcast_dims[0])
        assert (m == np.take(m, [0], axis=shared)).all()
        m = np.take(m, 0, axis=shared)
    time_widths, freq_widths, time_starts = [], [], []
    for e in m.reshape(-1, *m.shape[-2:]):
        rows, cols = e.all(axis=1), e.all(axis=0)
        np.testing.assert_array_equal(e, rows[:, None] | cols[None, :])  # bands only
        t_runs, f_runs = _np_bands(rows, 0), _np_bands(cols, 1)
        assert len(t_runs) <= 1 and len(f_runs) <= 1
        time_widths += [w for _, w in t_runs]
        time_starts += [s for s, _ in t_runs]
        freq_widths += [w for _, w in f_runs]
    assert set(time_widths) <= {1, 2, 3, 4} and set(freq_widths) <= {1, 2, 3}
    if m.size // (30 * 12) >= 60:  # enough examples to see every width
        assert set(time_widths) == {1, 2, 3, 4} and set(freq_widths) == {1, 2, 3}
    if m.size // (30 * 12) >= 300:  # and bands at both ends: start in U{0..T-w}
        assert min(time_starts) == 0 and max(s + w for s, w in zip(
            time_starts, time_widths, strict=True)) == 30
