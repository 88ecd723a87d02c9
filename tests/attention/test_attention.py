"""dot_product_attention: same bits in every implementation, jit/eager, sharded/unsharded."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jdrop
from jdrop.attention import IMPLEMENTATIONS, dot_product_attention

B, LQ, LK, H, D = 2, 20, 36, 2, 8
BLOCKS = dict(block_q=8, block_kv=16)  # padding in both axes, several tiles


def _inputs(seed=0, b=B, lq=LQ, lk=LK, h=H, d=D, dv=None):
    ks = jax.random.split(jax.random.key(seed), 3)
    q = jax.random.normal(ks[0], (b, lq, h, d))
    k = jax.random.normal(ks[1], (b, lk, h, d))
    v = jax.random.normal(ks[2], (b, lk, h, dv or d))
    return q, k, v


def _identity_values(b=B, lk=LK, h=H):
    """``value = I``: the output row (b, i, h) is the dropped weights row ``Pd[b, h, i]``."""
    return jnp.broadcast_to(jnp.eye(lk)[None, :, None, :], (b, lk, h, lk))


def _attend(impl, q, k, v, **kw):
    return dot_product_attention(q, k, v, implementation=impl, **BLOCKS, **kw)


def _probe(impl, key, rate, jit=False, **kw):
    """The weights each implementation applied, recovered with ``value = identity``."""
    q, k, _ = _inputs()
    fn = functools.partial(_attend, impl, dropout_key=key, rate=rate, **kw)
    out = jax.jit(fn)(q, k, _identity_values()) if jit else fn(q, k, _identity_values())
    return jnp.moveaxis(out, 2, 1)  # (B, H, Lq, Lk)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("jit", [False, True])
def test_masks_are_the_generators_mask(key, impl, jit):
    weights = _probe(impl, key, 0.3, jit=jit)
    expected = jdrop.keep_mask(key, (B, H, LQ, LK), 0.3)
    np.testing.assert_array_equal(weights != 0, expected)


_VARIANTS = {
    "weights": dict(),
    "causal": dict(is_causal=True),
    "dropkey": dict(variant="dropkey"),
    "head": dict(variant="head"),
    "shared": dict(broadcast_dims=(0, 1)),
    "per-column": dict(broadcast_dims=(-2,)),
}
# The mask layout code is shared by both paths: one Pallas run (interpret mode, slow on
# CPU) per variant without broadcast_dims is enough; blockwise runs every variant.
_CASES = [("blockwise", name) for name in _VARIANTS] + [
    ("pallas", name) for name, kw in _VARIANTS.items() if not kw.get("broadcast_dims")
]


@pytest.mark.parametrize("impl,variant", _CASES, ids=[f"{i}-{v}" for i, v in _CASES])
def test_same_weights_as_reference(key, impl, variant):
    kw = _VARIANTS[variant]
    np.testing.assert_allclose(
        _probe(impl, key, 0.3, **kw), _probe("xla", key, 0.3, **kw), rtol=1e-5, atol=1e-6
    )


def test_variants_do_what_they_say(key):
    head = _probe("xla", key, 0.5, variant="head")
    plain = _probe("xla", key, 0.0)
    kept = (head != 0).all(axis=(2, 3))
    assert ((head == 0).all(axis=(2, 3)) | kept).all()  # whole heads dropped
    np.testing.assert_allclose(head[kept], 2 * plain[kept], rtol=1e-5)
    shared = _probe("xla", key, 0.5, broadcast_dims=(0, 1))
    np.testing.assert_array_equal(shared[0, 0] != 0, shared[1, 1] != 0)
    dropkey = _probe("xla", key, 0.5, variant="dropkey")
    np.testing.assert_allclose(dropkey.sum(-1), 1, rtol=1e-5)  # renormalised, unscaled
    np.testing.assert_array_equal(dropkey != 0, jdrop.keep_mask(key, (B, H, LQ, LK), 0.5))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("extra", ["none", "bias_mask", "causal"])
def test_rate_zero_is_jax_nn(impl, extra):
    q, k, v = _inputs()
    kw = {}
    if extra == "bias_mask":
        kw = dict(
            bias=jax.random.normal(jax.random.key(5), (1, H, LQ, LK)),
            mask=jax.random.bernoulli(jax.random.key(6), 0.7, (B, 1, LQ, LK)),
        )
    elif extra == "causal":
        q, k, v = _inputs(lk=LQ)
        kw = dict(is_causal=True)
    expected = jax.nn.dot_product_attention(q, k, v, **kw)
    np.testing.assert_allclose(_attend(impl, q, k, v, **kw), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dot_product_attention(q, k, v, **kw), expected, atol=1e-5)


def _loss(impl, kw, q, k, v, bias):
    out = _attend(impl, q, k, v, bias=bias, **kw)
    return (out * jnp.cos(jnp.arange(out.size).reshape(out.shape))).sum()


@pytest.mark.parametrize("impl", ["blockwise", "pallas"])
@pytest.mark.parametrize(
    "kw",
    [dict(), dict(is_causal=True, variant="dropkey"), dict(mask=True, variant="head")],
    ids=["weights", "causal-dropkey", "mask-head"],
)
def test_gradients_match_reference(key, impl, kw):
    q, k, v = _inputs(lk=LQ if kw.get("is_causal") else LK)
    lk = k.shape[1]
    kw = dict(kw, dropout_key=key, rate=0.2)
    if kw.pop("mask", False):
        kw["mask"] = jax.random.bernoulli(jax.random.key(7), 0.7, (B, 1, LQ, lk))
    bias = jax.random.normal(jax.random.key(8), (1, H, LQ, 1))
    grads = jax.grad(functools.partial(_loss, impl, kw), argnums=(0, 1, 2, 3))(q, k, v, bias)
    expected = jax.grad(functools.partial(_loss, "xla", kw), argnums=(0, 1, 2, 3))(q, k, v, bias)
    for got, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_sharded_equals_unsharded(key, impl):
    if len(jax.devices()) < 8:
        pytest.skip("needs 8 devices (tests/conftest.py sets XLA_FLAGS)")
    b, h = 4, 2
    q, k, _ = _inputs(b=b, h=h)
    v = _identity_values(b=b, h=h)
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("data", "model"))
    spec = NamedSharding(mesh, P("data", None, "model", None))
    fn = functools.partial(_attend, impl, dropout_key=key, rate=0.3)
    plain = fn(q, k, v)
    sharded_args = [jax.device_put(x, spec) for x in (q, k, v)]
    sharded = jax.jit(fn, out_shardings=spec)(*sharded_args)
    assert sharded.sharding == spec
    np.testing.assert_array_equal(np.asarray(sharded) != 0, np.asarray(plain) != 0)
    np.testing.assert_allclose(sharded, plain, rtol=1e-5, atol=1e-6)
    expected = jdrop.keep_mask(key, (b, h, LQ, LK), 0.3)
    np.testing.assert_array_equal(jnp.moveaxis(sharded, 2, 1) != 0, expected)
    grad = lambda *a: jax.grad(lambda q, k, v: (fn(q, k, v) ** 2).sum(), argnums=(0, 1))(*a)
    for got, want in zip(jax.jit(grad)(*sharded_args), grad(q, k, v), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_unbiased_over_keys():
    """E[dropout attention] = attention: the mean over 2000 keys is within 5 standard errors."""
    q, k, v = _inputs()
    keys = jax.random.split(jax.random.key(1), 2000)
    run = jax.vmap(lambda r: dot_product_attention(q, k, v, dropout_key=r, rate=0.3))
    samples = run(keys)
    se = samples.std(0) / np.sqrt(len(keys))
    err = jnp.abs(samples.mean(0) - dot_product_attention(q, k, v))
    assert float((err / (se + 1e-6)).max()) < 5.5


def test_edges(key):
    q, k, v = _inputs()
    for impl in IMPLEMENTATIONS:
        out = _attend(impl, q, k, v, dropout_key=key, rate=1.0)
        np.testing.assert_array_equal(out, 0)  # everything dropped, no NaN
    half = dot_product_attention(*(x.astype(jnp.bfloat16) for x in (q, k, v)),
                                 dropout_key=key, rate=0.1, implementation="blockwise")
    assert half.dtype == jnp.bfloat16
    traced = jax.jit(lambda r: dot_product_attention(q, k, v, dropout_key=key, rate=r))(0.3)
    fixed = dot_product_attention(q, k, v, dropout_key=key, rate=0.3)
    np.testing.assert_allclose(traced, fixed, rtol=1e-5, atol=1e-6)
    legacy = dot_product_attention(q, k, v, dropout_key=jax.random.key_data(key), rate=0.3)
    np.testing.assert_allclose(legacy, fixed, rtol=1e-5, atol=1e-6)
    extra_batch = dot_product_attention(q[None], k[None], v[None], dropout_key=key, rate=0.3,
                                        implementation="blockwise", **BLOCKS)
    np.testing.assert_allclose(extra_batch[0], fixed, rtol=1e-5, atol=1e-6)  # same positions
    unbatched = dot_product_attention(q[0], k[0], v[0], dropout_key=key, rate=0.3)
    assert unbatched.shape == q[0].shape
    gqa_k, gqa_v = k[:, :, :1], v[:, :, :1]  # one key/value head shared by both
    np.testing.assert_allclose(
        dot_product_attention(q, gqa_k, gqa_v),
        jax.nn.dot_product_attention(q, gqa_k, gqa_v), rtol=1e-5, atol=1e-6,
    )


def test_bad_arguments_name_themselves(key):
    q, k, v = _inputs()
    cases = [
        (dict(query=q[0, 0]), ValueError, "query"),
        (dict(key=k[:, :, :, :4]), ValueError, "head_dim"),
        (dict(value=v[:, :5]), ValueError, "value"),
        (dict(rate=1.5, dropout_key=key), ValueError, "rate"),
        (dict(rate=0.1), ValueError, "dropout_key"),
        (dict(implementation="cudnn"), ValueError, "implementation"),
        (dict(variant="drop", rate=0.1, dropout_key=key), ValueError, "variant"),
        (dict(mask=jnp.ones((B, H, LQ, LK))), TypeError, "mask"),
        (dict(bias=jnp.ones((3, H, LQ, LK))), ValueError, "bias"),
        (dict(broadcast_dims=(4,)), ValueError, "broadcast_dims"),
        (dict(query=q.astype(jnp.int32)), TypeError, "query"),
    ]
    for kw, error, name in cases:
        args = dict(query=q, key=k, value=v)
        args.update({n: kw.pop(n) for n in ("query", "key", "value") if n in kw})
        with pytest.raises(error, match=name):
            dot_product_attention(args["query"], args["key"], args["value"], **kw)
