"""jdrop.mc with its options together: chunking x sharding x bfloat16 model x streaming.

Each option is tested alone elsewhere; a bug in how two of them meet (padding keys of a
chunk on a sharded batch, float32 accumulation of a bfloat16 model inside chunks) passes
those. Every combination is compared with one independent reference: the per-sample
outputs ``fn(split(key, T)[t], ...)`` computed one ``vmap`` at a time (no chunk, no mesh)
and summarised in numpy float64 from the documented formulas.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, Mesh

import jdrop
from jdrop import mc

T, N, K = 7, 8, 3  # 7 samples: chunks of 3 need padding; 8 examples over 4 devices
KEY = jax.random.key(23)


def _hidden(key, w, x):
    return jdrop.dropout(key, jnp.tanh(x @ w), 0.3)


def _logits(key, w, x):
    return _hidden(key, w, x) @ w


def _args(dtype):
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(K, K)).astype(np.float32), dtype)
    x = jnp.asarray(rng.normal(size=(N, K)).astype(np.float32), dtype)
    return w, x


@functools.cache
def _reference_samples(dtype_name):
    """(T, N, K) float64: every sample on its own, unchunked, unsharded."""
    w, x = _args(jnp.dtype(dtype_name))
    keys = jax.random.split(KEY, T)
    return (np.stack([np.asarray(_hidden(k, w, x), np.float64) for k in keys]),
            np.stack([np.asarray(_logits(k, w, x), np.float64) for k in keys]))


def _mesh(kind):
    if kind is None:
        return None
    if kind == "auto":
        return Mesh(np.array(jax.devices()[:4]), ("batch",))
    return jax.make_mesh((4,), ("batch",), axis_types=(AxisType.Explicit,),
                         devices=jax.devices()[:4])


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


# every option on its own, then all of them together; each pair of values of two options
# except (float32, explicit mesh), which test_hardening covers
COMBOS = [
    ("float32", None, None),
    ("float32", 3, "auto"),
    ("bfloat16", None, "auto"),
    ("bfloat16", 3, "explicit"),  # chunked, padded, sharded, bfloat16, streamed
]


@pytest.mark.parametrize("dtype,chunk_size,mesh_kind", COMBOS)
def test_predictive_summaries_every_combination(dtype, chunk_size, mesh_kind):
    w, x = _args(jnp.dtype(dtype))
    mesh = _mesh(mesh_kind)
    shard = dict(mesh=mesh, batch_axis_name="batch", batch_argnums=1) if mesh else {}
    targets = jnp.linspace(-1, 1, N)

    def run(w, x, targets):
        cls = mc.predictive_classification(_logits, KEY, w, x, num_samples=T,
                                           chunk_size=chunk_size, **shard)
        reg = mc.predictive_regression(lambda k, w, x: _logits(k, w, x)[:, 0], KEY, w, x,
                                       num_samples=T, chunk_size=chunk_size,
                                       targets=targets, tau=2.0, **shard)
        samples = mc.sample(lambda k, w, x: (_hidden(k, w, x), _logits(k, w, x)), KEY, w, x,
                            num_samples=T, chunk_size=chunk_size, **shard)
        return cls, reg, samples

    if mesh_kind == "explicit":
        with jax.set_mesh(mesh):
            cls, reg, samples = jax.jit(run)(w, x, targets)
    else:
        cls, reg, samples = jax.jit(run)(w, x, targets)

    ref_hidden, ref = _reference_samples(dtype)
    hidden, samples = samples
    # every sample has its own key's mask, whatever the chunking and placement: the
    # dropped units are the same bitwise; values after a matmul may differ in the last bits
    np.testing.assert_array_equal(np.asarray(hidden) == 0, ref_hidden == 0)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(np.asarray(samples, np.float64), ref, **tol)
    ref = np.asarray(samples, np.float64)  # summaries: of exactly these samples
    log_p = _log_softmax(ref)
    p = np.exp(log_p)
    p_bar = p.mean(0)
    predictive_entropy = -(p_bar * np.log(p_bar)).sum(-1)
    expected_entropy = -(p * log_p).sum(-1).mean(0)
    for field, want in (("predictive_probs", p_bar), ("mean_log_probs", np.log(p_bar)),
                        ("predictive_entropy", predictive_entropy),
                        ("expected_entropy", expected_entropy),
                        ("mutual_information", predictive_entropy - expected_entropy),
                        ("class_variance", p.var(0))):
        got = getattr(cls, field)
        assert got.dtype == jnp.float32, field  # accumulated in float32 whatever the model
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5, atol=2e-6,
                                   err_msg=field)
    y = ref[..., 0]
    mean = y.mean(0)
    np.testing.assert_allclose(np.asarray(reg.mean), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(reg.epistemic_variance), y.var(0), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(reg.total_variance), y.var(0) + 0.5, rtol=1e-5)
    t = np.asarray(targets, np.float64)
    rmse = np.sqrt(np.mean((mean - t) ** 2))
    assert float(reg.rmse) == pytest.approx(rmse, rel=1e-5)
    per_sample = -1.0 * (t - y) ** 2  # -tau/2 (y - yhat)^2 with tau = 2
    lse = np.log(np.exp(per_sample - per_sample.max(0)).sum(0)) + per_sample.max(0)
    ll = np.mean(lse - np.log(T) - 0.5 * np.log(2 * np.pi) + 0.5 * np.log(2.0))
    assert float(reg.log_likelihood) == pytest.approx(ll, rel=1e-5)
    if mesh is not None:
        assert len(samples.sharding.device_set) == 4
