"""Tests for jdrop.mc.sample and jdrop.mc.reduce: keys, chunking (and its default), the trunk."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from jdrop import mc

BATCH, SIZE, HIDDEN, CLASSES = 16, 16, 32, 10  # the LeNet of conftest.py


def test_sample_stacks_pytree_outputs(key):
    def fn(k, x):
        y = jdrop.dropout(k, x, 0.5)
        return {"y": y, "total": y.sum(), "pair": (y[0], y * 2)}

    out = mc.sample(fn, key, jnp.ones((3, 4)), num_samples=5)
    assert out["y"].shape == (5, 3, 4)
    assert out["total"].shape == (5,)
    assert out["pair"][0].shape == (5, 4) and out["pair"][1].shape == (5, 3, 4)
    np.testing.assert_array_equal(out["total"], out["y"].sum(axis=(1, 2)))


def test_samples_differ_and_are_reproducible(lenet_samples, key, params, images):
    out = lenet_samples(key, params, images, 6)
    again = lenet_samples(key, params, images, 6)
    other = lenet_samples(jax.random.key(7), params, images, 6)
    np.testing.assert_array_equal(out, again)
    flat = np.asarray(out).reshape(6, -1)
    for i in range(6):
        for j in range(i):
            assert not np.array_equal(flat[i], flat[j]), (i, j)
    assert not np.array_equal(out, other)


def test_sample_i_uses_split_key_i(lenet, lenet_samples, key, params, images):
    out = lenet_samples(key, params, images, 5, 2)
    keys = jax.random.split(key, 5)
    single = jax.jit(lenet)
    for i in (0, 3, 4):
        np.testing.assert_array_equal(out[i], single(keys[i], params, images))


def test_legacy_and_typed_keys_give_the_same_samples(dropout_fn):
    x = jnp.ones((4, 8))
    typed = mc.sample(dropout_fn, jax.random.key(3), x, num_samples=5, chunk_size=2)
    legacy = mc.sample(dropout_fn, jax.random.PRNGKey(3), x, num_samples=5, chunk_size=2)
    np.testing.assert_array_equal(typed, legacy)


def test_fn_receives_typed_keys_for_both_key_styles(key):
    seen = []

    def fn(k, x):
        seen.append((k.dtype, k.shape))
        return jdrop.dropout(k, x, 0.5)

    mc.sample(fn, jax.random.PRNGKey(0), jnp.ones(3), num_samples=2)
    mc.sample(fn, key, jnp.ones(3), num_samples=2)
    for dtype, shape in seen:
        assert jnp.issubdtype(dtype, jax.dtypes.prng_key) and shape == ()


@pytest.mark.parametrize(
    "num_samples, chunk_size", [(7, 3), (7, 1), (7, 5), (8, 4), (8, 10)]
)
def test_chunking_keeps_the_masks_bitwise(dropout_fn, key, num_samples, chunk_size):
    """The promise: every chunking gives sample i the same key, hence the same mask."""
    x = jnp.ones((BATCH, HIDDEN))
    run = jax.jit(lambda k, c: mc.sample(dropout_fn, k, x, num_samples=num_samples, chunk_size=c),
                  static_argnums=1)
    np.testing.assert_array_equal(run(key, chunk_size), run(key, num_samples))


@pytest.mark.parametrize(
    "num_samples, chunk_size", [(7, 3), (7, 1), (7, 5), (8, 4), (8, 10)]
)
def test_chunked_equals_unchunked_up_to_float_rounding(
    lenet_samples, key, params, images, num_samples, chunk_size
):
    """After a matmul, chunked and unchunked values agree to float32 rounding: the masks
    are the same, but XLA may compile other matmul shapes for a chunk."""
    unchunked = lenet_samples(key, params, images, num_samples, num_samples)
    chunked = lenet_samples(key, params, images, num_samples, chunk_size)
    assert chunked.shape == (num_samples, BATCH, CLASSES)
    np.testing.assert_allclose(chunked, unchunked, rtol=1e-6, atol=1e-6)


def test_default_chunk_size_follows_the_memory_budget(dropout_fn, key, monkeypatch):
    """chunk_size=None: the largest balanced chunk whose key-dependent bytes fit the budget."""
    from jdrop.mc import _chunking

    x = jnp.ones((64, 256))  # dropout(x) and its mask words: a few x-sized arrays per sample
    per_sample = _chunking.key_dependent_bytes(dropout_fn, key, (x,))
    assert per_sample >= x.size * 4
    trunk_only = _chunking.key_dependent_bytes(lambda k, x: dropout_fn(k, jnp.sin(x)), key, (x,))
    assert trunk_only == per_sample  # sin(x) does not depend on the key: not counted
    backend = jax.default_backend()
    monkeypatch.setitem(_chunking.CHUNK_BUDGET_BYTES, backend, 3 * per_sample)
    monkeypatch.setitem(_chunking.CHUNK_BUDGET_BYTES, "default", 3 * per_sample)
    assert _chunking.auto_chunk_size(dropout_fn, key, (x,), 10) == 3  # 4 chunks of 3 would pad 2
    assert _chunking.auto_chunk_size(dropout_fn, key, (x,), 2) == 2
    jaxpr = str(jax.make_jaxpr(lambda k: mc.sample(dropout_fn, k, x, num_samples=10))(key))
    assert "scan" in jaxpr  # chunked by default
    all_at_once = lambda k: mc.sample(dropout_fn, k, x, num_samples=10, chunk_size=10)  # noqa: E731
    jaxpr = str(jax.make_jaxpr(all_at_once)(key))
    assert "scan" not in jaxpr  # chunk_size=num_samples: all at once
    np.testing.assert_array_equal(
        mc.sample(dropout_fn, key, x, num_samples=10), mc.sample(dropout_fn, key, x, num_samples=10,
                                                          chunk_size=10)
    )


def test_trunk_is_computed_once_unbatched_in_the_jaxpr(lenet, key, params, images):
    jaxpr = jax.make_jaxpr(lambda k, x: mc.sample(lenet, k, params, x, num_samples=50))(
        key, images
    )
    convs = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    assert len(convs) == 2
    for eqn in convs:
        assert eqn.outvars[0].aval.shape[0] == BATCH  # no leading num_samples axis
    dots = [e.outvars[0].aval.shape for e in jaxpr.jaxpr.eqns
            if e.primitive.name == "dot_general"]
    assert (BATCH, HIDDEN) in dots  # the first dense layer runs once too
    assert (50, BATCH, CLASSES) in dots  # the head runs for every sample


def _computations(hlo_text):
    """{name: body text} of every computation in an HLO module."""
    out = {}
    for block in re.split(r"\n(?=\S)", hlo_text):
        match = re.match(r"(?:ENTRY )?%?([\w.\-]+)", block)
        if match and "{" in block.split("\n")[0]:
            out[match.group(1)] = block
    return out


def _reachable(computations, roots):
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in computations:
            continue
        seen.add(name)
        todo += re.findall(
            r"(?:calls|body|condition|to_apply|branch_computations)=\{?%?([\w.\-]+)",
            computations[name],
        )
    return seen


def test_trunk_runs_once_outside_the_chunk_loop_in_compiled_hlo(lenet, key, params, images):
    num_samples = 40
    compiled = jax.jit(
        lambda k, x: mc.sample(lenet, k, params, x, num_samples=num_samples, chunk_size=8)
    ).lower(key, images).compile().as_text()
    conv_lines = [line for line in compiled.split("\n") if " convolution(" in line]
    assert len(conv_lines) == 2, conv_lines
    for line in conv_lines:
        shape = re.search(r"= f32\[([\d,]+)\]", line).group(1).split(",")
        assert int(shape[0]) == BATCH and str(num_samples) not in shape, line
    computations = _computations(compiled)
    loop_bodies = re.findall(r"body=%?([\w.\-]+)", compiled)
    assert loop_bodies, "expected a while loop over chunks"
    in_loops = _reachable(computations, loop_bodies)
    for name in in_loops:
        assert " convolution(" not in computations[name], f"conv inside loop body {name}"


def test_reduce_matches_sample(lenet, lenet_samples, key, params, images):
    samples = lenet_samples(key, params, images, 11)
    run = jax.jit(lambda k, p, x: mc.reduce(
        lenet, k, p, x, num_samples=11, chunk_size=4,
        init=(jnp.zeros((BATCH, CLASSES)), jnp.full((BATCH, CLASSES), -jnp.inf)),
        update=lambda acc, c: (acc[0] + c.sum(0), jnp.maximum(acc[1], c.max(0))),
        finalize=lambda acc: (acc[0] / np.float32(11), acc[1]),
    ))
    total, largest = run(key, params, images)
    np.testing.assert_allclose(total, samples.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(largest, samples.max(0))


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "4", None])
def test_bad_num_samples(dropout_fn, key, value):
    for function in (mc.sample, mc.predictive_regression):
        with pytest.raises(ValueError, match=re.escape(f"num_samples={value!r}")):
            function(dropout_fn, key, jnp.ones(3), num_samples=value)
    with pytest.raises(ValueError, match="num_samples="):
        mc.predictive_classification(dropout_fn, key, jnp.ones((2, 3)), num_samples=value)


@pytest.mark.parametrize("value", [0, -1, 1.5, False, "2"])
def test_bad_chunk_size(dropout_fn, key, value):
    with pytest.raises(ValueError, match=re.escape(f"chunk_size={value!r}")):
        mc.sample(dropout_fn, key, jnp.ones(3), num_samples=4, chunk_size=value)
    with pytest.raises(ValueError, match=re.escape(f"chunk_size={value!r}")):
        mc.reduce(dropout_fn, key, jnp.ones(3), num_samples=4, chunk_size=value,
                  init=jnp.zeros(3), update=lambda a, c: a + c.sum(0))
