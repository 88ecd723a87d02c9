"""Tests for jdrop.mc: Monte-Carlo dropout sampling, streaming summaries and sharding."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

import jdrop
from jdrop import mc
from jdrop import uncertainty as unc

# ---------------------------------------------------------------------------------------
# A small LeNet-like network in plain JAX: conv - pool - conv - pool - dense - dropout -
# dense. Dropout only in the head, so everything up to the first dense layer is the
# key-independent trunk.
# ---------------------------------------------------------------------------------------

BATCH, SIZE, HIDDEN, CLASSES = 16, 16, 32, 10
_DN = ("NHWC", "HWIO", "NHWC")


def init_params(seed):
    rng = np.random.default_rng(seed)
    shapes = {"c1": (3, 3, 1, 4), "c2": (3, 3, 4, 8), "w1": (2 * 2 * 8, HIDDEN),
              "w2": (HIDDEN, CLASSES)}
    scales = {"c1": 0.3, "c2": 0.2, "w1": 0.3, "w2": 0.3}
    return {
        name: jnp.asarray(rng.normal(size=shape).astype(np.float32) * np.float32(scales[name]))
        for name, shape in shapes.items()
    }


def _pool(h):
    return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def trunk(params, x):
    h = jax.lax.conv_general_dilated(x, params["c1"], (1, 1), "VALID", dimension_numbers=_DN)
    h = _pool(jax.nn.relu(h))
    h = jax.lax.conv_general_dilated(h, params["c2"], (1, 1), "VALID", dimension_numbers=_DN)
    h = _pool(jax.nn.relu(h))
    return jax.nn.relu(h.reshape(h.shape[0], -1) @ params["w1"])


def lenet(key, params, x):
    """(N, 16, 16, 1) images -> (N, 10) logits, with dropout 0.5 before the last layer."""
    return jdrop.dropout(key, trunk(params, x), 0.5) @ params["w2"]


@functools.partial(jax.jit, static_argnames=("num_samples", "chunk_size"))
def lenet_samples(key, params, x, num_samples, chunk_size=None):
    """``mc.sample`` of the LeNet, jitted once per (num_samples, chunk_size)."""
    return mc.sample(lenet, key, params, x, num_samples=num_samples, chunk_size=chunk_size)


@pytest.fixture(scope="module")
def params():
    return init_params(1)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(2)
    return jnp.asarray(rng.normal(size=(BATCH, SIZE, SIZE, 1)).astype(np.float32))


def _fn(key, x):
    return jdrop.dropout(key, x, 0.5)


def collectives(compiled_text):
    """Number of each cross-device collective in compiled HLO text."""
    ops = ("all-reduce", "all-gather", "collective-permute", "all-to-all", "reduce-scatter")
    return {op: len(re.findall(rf" {op}(?:-start)?\(", compiled_text)) for op in ops}


# ---------------------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------------------


def test_sample_stacks_pytree_outputs(key):
    def fn(k, x):
        y = jdrop.dropout(k, x, 0.5)
        return {"y": y, "total": y.sum(), "pair": (y[0], y * 2)}

    out = mc.sample(fn, key, jnp.ones((3, 4)), num_samples=5)
    assert out["y"].shape == (5, 3, 4)
    assert out["total"].shape == (5,)
    assert out["pair"][0].shape == (5, 4) and out["pair"][1].shape == (5, 3, 4)
    np.testing.assert_array_equal(out["total"], out["y"].sum(axis=(1, 2)))


def test_samples_differ_and_are_reproducible(key, params, images):
    out = lenet_samples(key, params, images, 6)
    again = lenet_samples(key, params, images, 6)
    other = lenet_samples(jax.random.key(7), params, images, 6)
    np.testing.assert_array_equal(out, again)
    flat = np.asarray(out).reshape(6, -1)
    for i in range(6):
        for j in range(i):
            assert not np.array_equal(flat[i], flat[j]), (i, j)
    assert not np.array_equal(out, other)


def test_sample_i_uses_split_key_i(key, params, images):
    out = lenet_samples(key, params, images, 5, 2)
    keys = jax.random.split(key, 5)
    single = jax.jit(lenet)
    for i in (0, 3, 4):
        np.testing.assert_array_equal(out[i], single(keys[i], params, images))


def test_legacy_and_typed_keys_give_the_same_samples():
    x = jnp.ones((4, 8))
    typed = mc.sample(_fn, jax.random.key(3), x, num_samples=5, chunk_size=2)
    legacy = mc.sample(_fn, jax.random.PRNGKey(3), x, num_samples=5, chunk_size=2)
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
def test_chunking_keeps_the_masks_bitwise(key, num_samples, chunk_size):
    """The promise: every chunking gives sample i the same key, hence the same mask."""
    x = jnp.ones((BATCH, HIDDEN))
    run = jax.jit(lambda k, c: mc.sample(_fn, k, x, num_samples=num_samples, chunk_size=c),
                  static_argnums=1)
    np.testing.assert_array_equal(run(key, chunk_size), run(key, num_samples))


@pytest.mark.parametrize(
    "num_samples, chunk_size", [(7, 3), (7, 1), (7, 5), (8, 4), (8, 10)]
)
def test_chunked_equals_unchunked_up_to_float_rounding(
    key, params, images, num_samples, chunk_size
):
    """After a matmul, chunked and unchunked values agree to float32 rounding (XLA may
    compile other matmul shapes for a chunk), with the same dropped units."""
    unchunked = lenet_samples(key, params, images, num_samples, num_samples)
    chunked = lenet_samples(key, params, images, num_samples, chunk_size)
    assert chunked.shape == (num_samples, BATCH, CLASSES)
    np.testing.assert_allclose(chunked, unchunked, rtol=1e-6, atol=1e-6)


def test_default_chunk_size_follows_the_memory_budget(key, monkeypatch):
    """chunk_size=None: the largest balanced chunk whose key-dependent bytes fit the budget."""
    from jdrop.mc import _chunking

    x = jnp.ones((64, 256))  # dropout(x) and its mask words: a few x-sized arrays per sample
    per_sample = _chunking.key_dependent_bytes(_fn, key, (x,))
    assert per_sample >= x.size * 4
    trunk_only = _chunking.key_dependent_bytes(lambda k, x: _fn(k, jnp.sin(x)), key, (x,))
    assert trunk_only == per_sample  # sin(x) does not depend on the key: not counted
    backend = jax.default_backend()
    monkeypatch.setitem(_chunking.CHUNK_BUDGET_BYTES, backend, 3 * per_sample)
    monkeypatch.setitem(_chunking.CHUNK_BUDGET_BYTES, "default", 3 * per_sample)
    assert _chunking.auto_chunk_size(_fn, key, (x,), 10) == 3  # 4 chunks of 3 would pad 2
    assert _chunking.auto_chunk_size(_fn, key, (x,), 2) == 2
    jaxpr = str(jax.make_jaxpr(lambda k: mc.sample(_fn, k, x, num_samples=10))(key))
    assert "scan" in jaxpr  # chunked by default
    jaxpr = str(jax.make_jaxpr(lambda k: mc.sample(_fn, k, x, num_samples=10, chunk_size=10))(key))
    assert "scan" not in jaxpr  # chunk_size=num_samples: all at once
    np.testing.assert_array_equal(
        mc.sample(_fn, key, x, num_samples=10), mc.sample(_fn, key, x, num_samples=10,
                                                          chunk_size=10)
    )


def test_trunk_is_computed_once_unbatched_in_the_jaxpr(key, params, images):
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


def test_trunk_runs_once_outside_the_chunk_loop_in_compiled_hlo(key, params, images):
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


# ---------------------------------------------------------------------------------------
# Streaming summaries
# ---------------------------------------------------------------------------------------


def test_reduce_matches_sample(key, params, images):
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


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_predictive_classification_matches_one_shot(key, params, images, chunk_size):
    num_samples = 13
    streamed = jax.jit(
        lambda k, p, x: mc.predictive_classification(
            lenet, k, p, x, num_samples=num_samples, chunk_size=chunk_size
        )
    )(key, params, images)
    samples = lenet_samples(key, params, images, num_samples)
    one_shot = unc.classification_uncertainty(samples, from_logits=True)
    for name in ("mean_log_probs", "predictive_probs", "predictive_entropy",
                 "expected_entropy", "class_variance", "variation_ratio"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(one_shot, name), rtol=1e-5, atol=1e-6,
            err_msg=name,
        )
    np.testing.assert_allclose(
        streamed.mutual_information, one_shot.mutual_information, rtol=1e-4, atol=2e-6
    )
    # The mean predictive log-probability from its definition, in float64.
    log_p = jax.nn.log_softmax(np.asarray(samples, np.float64), axis=-1)
    expected = np.log(np.exp(log_p).mean(axis=0))
    np.testing.assert_allclose(streamed.mean_log_probs, expected, rtol=1e-5, atol=1e-6)


def _regression_fn(key, params, x):
    """(N, 2) outputs: the first two logits of the LeNet."""
    return lenet(key, params, x)[:, :2]


@pytest.mark.parametrize("outputs", ["1d", "2d"])
def test_predictive_regression_matches_one_shot(key, params, images, outputs):
    fn = (lambda k, p, x: _regression_fn(k, p, x)[:, 0]) if outputs == "1d" else _regression_fn
    shape = (BATCH,) if outputs == "1d" else (BATCH, 2)
    targets = jax.random.normal(jax.random.key(5), shape)
    tau = 2.5
    streamed = jax.jit(lambda k, p, x, y: mc.predictive_regression(
        fn, k, p, x, num_samples=10, chunk_size=3, targets=y, tau=tau
    ))(key, params, images, targets)
    samples = jax.jit(lambda k, p, x: mc.sample(fn, k, p, x, num_samples=10))(
        key, params, images
    )
    one_shot = unc.regression_uncertainty(samples, tau, targets)
    for name in ("mean", "epistemic_variance", "total_variance", "log_likelihood", "rmse"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(one_shot, name), rtol=1e-5, atol=1e-6,
            err_msg=name,
        )
    # Gal's formula, from its definition in float64 (D = 1 per output for "1d").
    s = np.asarray(samples, np.float64)
    y = np.asarray(targets, np.float64)
    sq = (y - s) ** 2 if outputs == "1d" else ((y - s) ** 2).sum(-1)
    dim = 1 if outputs == "1d" else 2
    lse = np.log(np.exp(-0.5 * tau * sq).sum(0))
    ll = np.mean(lse - np.log(10) - 0.5 * dim * np.log(2 * np.pi) + 0.5 * dim * np.log(tau))
    np.testing.assert_allclose(streamed.log_likelihood, ll, rtol=1e-5)


def test_predictive_regression_optional_outputs(key):
    x = jnp.arange(1.0, 7.0)
    targets = jnp.zeros((6,))
    bare = mc.predictive_regression(_fn, key, x, num_samples=4)
    assert bare.total_variance is None and bare.log_likelihood is None and bare.rmse is None
    with_targets = mc.predictive_regression(_fn, key, x, num_samples=4, targets=targets)
    assert with_targets.log_likelihood is None and with_targets.total_variance is None
    np.testing.assert_allclose(
        with_targets.rmse, np.sqrt(np.mean(np.square(bare.mean))), rtol=1e-6
    )
    with_tau = mc.predictive_regression(_fn, key, x, num_samples=4, tau=4.0)
    assert with_tau.log_likelihood is None and with_tau.rmse is None
    np.testing.assert_allclose(with_tau.total_variance, bare.epistemic_variance + 0.25)
    np.testing.assert_array_equal(bare.mean, mc.sample(_fn, key, x, num_samples=4).mean(0))


def test_streaming_memory_is_bounded_by_chunk_size(key, params):
    images = jnp.zeros((1000, SIZE, SIZE, 1))

    def footprint(num_samples):
        compiled = jax.jit(
            lambda k, x: mc.predictive_classification(
                lenet, k, params, x, num_samples=num_samples, chunk_size=100
            )
        ).lower(key, images).compile()
        analysis = compiled.memory_analysis()
        return analysis.temp_size_in_bytes + analysis.output_size_in_bytes

    small, large = footprint(100), footprint(10_000)
    # 10,000 samples of (1000, 10) float32 logits would take 400 MB; the summary needs
    # one chunk of 100.
    assert large < 1.5 * small, (small, large)
    assert large < 100e6, large


# ---------------------------------------------------------------------------------------
# Sharding
# ---------------------------------------------------------------------------------------


def _programs(**mesh_kwargs):
    """The three MC programs (samples, classification, regression) over one mesh."""
    common = {"num_samples": 12, "chunk_size": 5, **mesh_kwargs}
    return {
        "sample": lambda k, p, x, y: mc.sample(lenet, k, p, x, **common),
        "classification": lambda k, p, x, y: mc.predictive_classification(
            lenet, k, p, x, **common
        ),
        "regression": lambda k, p, x, y: mc.predictive_regression(
            _regression_fn, k, p, x, targets=y, tau=2.0, **common
        ),
    }


@pytest.fixture(scope="module")
def targets():
    return jnp.asarray(np.random.default_rng(3).normal(size=(BATCH, 2)).astype(np.float32))


@pytest.fixture(scope="module")
def unsharded(params, images, targets):
    inputs = (jax.random.key(0), params, images, targets)
    return {name: jax.jit(f)(*inputs) for name, f in _programs().items()}


@pytest.mark.parametrize("num_devices", [1, 2, 4, 8])
def test_batch_sharding_is_bitwise_identical_with_one_all_reduce(
    params, images, targets, unsharded, num_devices
):
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("batch",))
    programs = _programs(mesh=mesh, batch_axis_name="batch", batch_argnums=1)
    inputs = (jax.random.key(0), params, images, targets)
    # Per-example summaries need no communication; the regression's two scalar metrics
    # (means over all points) share one all-reduce. Nothing gathers the inputs.
    expected_all_reduces = {"sample": 0, "classification": 0, "regression": 1}
    for name, function in programs.items():
        compiled = jax.jit(function).lower(*inputs).compile()
        result = compiled(*inputs)
        for got, want in zip(
            jax.tree.leaves(result), jax.tree.leaves(unsharded[name]), strict=True
        ):
            np.testing.assert_array_equal(got, want, err_msg=name)
        ops = collectives(compiled.as_text())
        assert ops.pop("all-reduce") == expected_all_reduces[name], (name, ops)
        assert sum(ops.values()) == 0, (name, ops)
        if num_devices > 1:
            first = jax.tree.leaves(result)[0]
            assert len(first.sharding.device_set) == num_devices
            assert first.sharding.spec[1 if name == "sample" else 0] == "batch"


@pytest.mark.parametrize("num_devices", [1, 2, 4, 8])
def test_sample_sharding_is_bitwise_identical(key, params, images, num_devices):
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("samples",))
    run = jax.jit(
        lambda k, p, x: mc.sample(
            lenet, k, p, x, num_samples=16, chunk_size=2, mesh=mesh, sample_axis_name="samples"
        )
    )
    out = run(key, params, images)
    np.testing.assert_array_equal(out, lenet_samples(key, params, images, 16))
    assert len(out.sharding.device_set) == num_devices
    ops = collectives(run.lower(key, params, images).compile().as_text())
    assert sum(ops.values()) == 0, ops


def test_two_dimensional_mesh(key, params, images):
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("samples", "batch"))
    run = jax.jit(
        lambda k, p, x: mc.sample(
            lenet, k, p, x, num_samples=8, chunk_size=2, mesh=mesh,
            sample_axis_name="samples", batch_axis_name="batch", batch_argnums=1,
        )
    )
    out = run(key, params, images)
    np.testing.assert_array_equal(out, lenet_samples(key, params, images, 8))
    assert out.sharding.spec[:2] == ("samples", "batch")
    ops = collectives(run.lower(key, params, images).compile().as_text())
    assert sum(ops.values()) == 0, ops


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, -3, 2.5, True, "4", None])
def test_bad_num_samples(key, value):
    for function in (mc.sample, mc.predictive_regression):
        with pytest.raises(ValueError, match=re.escape(f"num_samples={value!r}")):
            function(_fn, key, jnp.ones(3), num_samples=value)
    with pytest.raises(ValueError, match="num_samples="):
        mc.predictive_classification(_fn, key, jnp.ones((2, 3)), num_samples=value)


@pytest.mark.parametrize("value", [0, -1, 1.5, False, "2"])
def test_bad_chunk_size(key, value):
    with pytest.raises(ValueError, match=re.escape(f"chunk_size={value!r}")):
        mc.sample(_fn, key, jnp.ones(3), num_samples=4, chunk_size=value)
    with pytest.raises(ValueError, match=re.escape(f"chunk_size={value!r}")):
        mc.reduce(_fn, key, jnp.ones(3), num_samples=4, chunk_size=value,
                  init=jnp.zeros(3), update=lambda a, c: a + c.sum(0))


def test_bad_mesh_arguments(key):
    mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
    x = jnp.ones((4, 3))
    with pytest.raises(ValueError, match="batch_axis_name='batch'"):
        mc.sample(_fn, key, x, num_samples=2, batch_axis_name="batch")
    with pytest.raises(ValueError, match="sample_axis_name='nope'"):
        mc.sample(_fn, key, x, num_samples=2, mesh=mesh, sample_axis_name="nope")
    with pytest.raises(ValueError, match="batch_axis_name and/or sample_axis_name"):
        mc.sample(_fn, key, x, num_samples=2, mesh=mesh)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        mc.sample(_fn, key, jnp.ones((3, 3)), num_samples=2, mesh=mesh,
                  batch_axis_name="batch")
    with pytest.raises(ValueError, match="batch_argnums"):
        mc.sample(_fn, key, x, num_samples=2, mesh=mesh, batch_axis_name="batch",
                  batch_argnums=3)
    with pytest.raises(TypeError, match="mesh"):
        mc.sample(_fn, key, x, num_samples=2, mesh="batch", batch_axis_name="batch")


def test_bad_functions_and_outputs(key):
    with pytest.raises(TypeError, match="fn must be callable"):
        mc.sample("model", key, jnp.ones(3), num_samples=2)
    with pytest.raises(ValueError, match="logits_fn must return one \\(N, K\\)"):
        mc.predictive_classification(_fn, key, jnp.ones(3), num_samples=2)
    with pytest.raises(ValueError, match="targets.shape=\\(4,\\)"):
        mc.predictive_regression(_fn, key, jnp.ones(3), num_samples=2, targets=jnp.ones(4))
    with pytest.raises(ValueError, match="tau"):
        mc.predictive_regression(
            _fn, key, jnp.ones(3), num_samples=2, targets=jnp.ones(3), tau=-1.0
        )
    with pytest.raises(TypeError, match="key"):
        mc.sample(_fn, jnp.zeros(3, jnp.uint32), jnp.ones(3), num_samples=2)
