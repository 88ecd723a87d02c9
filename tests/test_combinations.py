"""The ops' options together (issue 16): each option alone is tested elsewhere.

Every combination is compared with one independent reference: the documented formula in
numpy float64 on :func:`jdrop.keep_mask`'s mask (pinned by the golden tests), computed
once per combination without ``jit`` or ``vmap``.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop

RATE = 0.3  # not exact in binary: 1 / (1 - p), 1 / p and 1 - p all differ
KEYS = jax.random.split(jax.random.key(29), 3)
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


@functools.partial(jax.jit, static_argnums=1)
def _keep(key, shape, rate):
    return jdrop.keep_mask(key, shape, rate)


def _wrap(wrapper, fns, x):
    """Every fn(key, x) of ``fns`` under the wrapper (one program), for every key of KEYS.

    Returns a list over the keys of lists over ``fns``.
    """
    def together(k, x):
        return tuple(fn(k, x) for fn in fns)

    if wrapper == "eager":
        return [together(k, x) for k in KEYS]
    if wrapper == "jit":
        jitted = jax.jit(together)
        return [jitted(k, x) for k in KEYS]
    stacked = jax.vmap(together, in_axes=(0, None))(KEYS, x)  # one vmap over the keys
    return [[leaf[i] for leaf in stacked] for i in range(len(KEYS))]


def _reference(x, keep, *, inverted, deterministic):
    x = np.asarray(x, np.float64)
    if deterministic:
        return x if inverted else (1 - RATE) * x
    return np.where(keep, x / (1 - RATE) if inverted else x, 0.0)


def _close(got, want, dtype):
    eps = float(jnp.finfo(dtype).eps)  # rounded once to the dtype from a float32 product
    assert got.dtype == dtype
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=eps, atol=0)


# (dtype, wrapper) pairs: every dtype and every wrapper, bfloat16 under both transforms
@pytest.mark.parametrize("dtype,wrapper", [("float32", "eager"), ("bfloat16", "jit"),
                                           ("bfloat16", "vmap"), ("float16", "jit")])
def test_dropout_broadcast_deterministic_inverted_dtype(dtype, wrapper):
    dtype = DTYPES[dtype]
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5, 6)), dtype)
    modes = [  # (deterministic, inverted, regenerate_mask)
        (False, True, False), (False, True, True), (False, False, False),
        (True, True, False), (True, False, False)]
    combos = list(itertools.product([(), (1,), (0, -1)], modes))
    fns = [functools.partial(lambda k, x, d, m: jdrop.dropout(
        k, x, RATE, broadcast_dims=d, deterministic=m[0], inverted=m[1], regenerate_mask=m[2]),
        d=dims, m=mode) for dims, mode in combos]
    for k, outputs in zip(KEYS, _wrap(wrapper, fns, x), strict=True):
        for (dims, (deterministic, inverted, _)), got in zip(combos, outputs, strict=True):
            mask_shape = tuple(1 if a in {d % 3 for d in dims} else s
                               for a, s in enumerate(x.shape))
            keep = np.asarray(_keep(k, mask_shape, RATE))
            want = _reference(x, keep, inverted=inverted, deterministic=deterministic)
            _close(got, want, dtype)


@pytest.mark.parametrize("shape,channel_axis,wrapper", [
    ((3, 7, 4), -1, "vmap"), ((3, 4, 7), 1, "jit"),                  # 1-D maps
    ((2, 5, 6, 4), -1, "jit"), ((2, 4, 5, 6), 1, "vmap"),            # 2-D
    ((2, 3, 4, 5, 4), -1, "vmap"), ((2, 4, 3, 4, 5), 1, "jit"),      # 3-D
])
def test_spatial_ops_channel_axis_rank_jit_vmap(shape, channel_axis, wrapper):
    """spatial_dropout and feature_alpha_dropout: one mask value per (example, channel)."""
    x = jnp.asarray(np.random.default_rng(1).normal(size=shape), jnp.float32)
    channel = channel_axis % len(shape)
    mask_shape = tuple(s if a in (0, channel) else 1 for a, s in enumerate(shape))
    q, alpha_p = 1 - RATE, -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717
    a = (q + alpha_p**2 * q * (1 - q)) ** -0.5
    b = -a * alpha_p * (1 - q)
    ops = {
        "spatial_dropout": (
            lambda k, x: jdrop.spatial_dropout(k, x, RATE, channel_axis=channel_axis),
            lambda x, keep: np.where(keep, x / (1 - RATE), 0.0)),
        "feature_alpha_dropout": (
            lambda k, x: jdrop.feature_alpha_dropout(k, x, RATE, channel_axis=channel_axis),
            lambda x, keep: np.where(keep, a * x + b, a * alpha_p + b)),
    }
    fns = [op for op, _ in ops.values()]
    for k, outputs in zip(KEYS, _wrap(wrapper, fns, x), strict=True):
        keep = np.asarray(_keep(k, mask_shape, RATE))
        for (name, (_, formula)), got in zip(ops.items(), outputs, strict=True):
            want = formula(np.asarray(x, np.float64), keep)
            np.testing.assert_allclose(np.asarray(got), want, rtol=2e-6, atol=2e-6,
                                       err_msg=name)
