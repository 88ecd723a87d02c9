"""jdrop.audio.vtlp: Jaitly & Hinton's vocal tract length perturbation on mel spectrograms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import audio
from jdrop.audio._vtlp import _warp_bands

librosa = pytest.importorskip("librosa")


def _warp_reference(f, alpha, fmax, boundary):
    """The paper's formula, written out in NumPy."""
    f = np.asarray(f, np.float64)
    knee = boundary * min(alpha, 1.0) / alpha
    upper = fmax - (fmax - boundary * min(alpha, 1.0)) / (fmax - knee) * (fmax - f)
    return np.where(f <= knee, alpha * f, upper)


@pytest.mark.parametrize("kw", [dict(), dict(htk=True), dict(fmin=20.0, fmax=3800.0)])
def test_mel_band_centers_match_librosa(kw):
    n = 40
    ref = librosa.mel_frequencies(n + 2, fmin=kw.get("fmin", 0.0), fmax=kw.get("fmax", 4000.0),
                                  htk=kw.get("htk", False))[1:-1]
    np.testing.assert_allclose(audio.mel_band_centers(n, sample_rate=8000, **kw), ref, rtol=1e-10)


@pytest.mark.parametrize("alpha", [0.8, 0.9, 1.0, 1.07, 1.2])
def test_warp_is_the_papers_piecewise_line(alpha):
    f = np.linspace(0.0, 4000.0, 401)
    got = np.asarray(audio.vtlp_warp(f, alpha, fmax=4000.0, boundary=2400.0))
    np.testing.assert_allclose(got, _warp_reference(f, alpha, 4000.0, 2400.0), rtol=1e-5, atol=1e-2)
    assert got[0] == 0.0 and abs(got[-1] - 4000.0) < 1e-2  # both ends fixed
    assert (np.diff(got) > 0).all()  # monotone: no band crosses another
    below = f <= 2400.0 * min(alpha, 1.0) / alpha
    np.testing.assert_allclose(got[below], alpha * f[below], rtol=1e-6)


def test_warp_bands_is_interpolation_of_the_moved_bands():
    centers = audio.mel_band_centers(24, sample_rate=8000)
    x = np.random.default_rng(0).standard_normal((7, 24)).astype(np.float32)
    for alpha in (0.9, 1.1):
        moved = _warp_reference(centers, alpha, 4000.0, 2400.0)
        want = np.stack([np.interp(centers, moved, row) for row in x])
        got = _warp_bands(jnp.asarray(x), alpha, jnp.asarray(centers, jnp.float32), 4000.0, 2400.0)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def _lit(n_examples, band=14, n_mels=40, frames=3):
    return jnp.zeros((n_examples, frames, n_mels)).at[:, :, band].set(1.0)


def test_each_example_draws_its_own_factor_uniformly():
    centers = audio.mel_band_centers(40, sample_rate=8000)
    band = 14  # ~800 Hz: below the knee for every factor in [0.9, 1.1]
    y = np.asarray(audio.vtlp(jax.random.key(3), _lit(512, band), sample_rate=8000))
    weights = y[:, 0, :]
    implied = (weights @ centers) / weights.sum(-1) / centers[band]  # centroid / c_k = alpha
    assert implied.min() > 0.89 and implied.max() < 1.11
    assert implied.min() < 0.92 and implied.max() > 1.08  # the whole range is drawn
    assert abs(implied.mean() - 1.0) < 0.01
    np.testing.assert_array_equal(y[:, 0], y[:, 2])  # one factor for all frames of an example
    y2 = np.asarray(audio.vtlp(jax.random.key(3), _lit(512, band), sample_rate=8000,
                               max_warp=0.2))
    implied2 = (y2[:, 0] @ centers) / y2[:, 0].sum(-1) / centers[band]
    assert implied2.max() - implied2.min() > 0.3


def test_keys_modes_shapes_and_jit():
    x = jax.random.normal(jax.random.key(0), (2, 5, 8, 24), jnp.bfloat16)
    y = audio.vtlp(jax.random.key(1), x, sample_rate=8000)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(y, audio.vtlp(jax.random.key(1), x, sample_rate=8000))
    assert not np.array_equal(y, audio.vtlp(jax.random.key(2), x, sample_rate=8000))
    jitted = jax.jit(lambda k, v: audio.vtlp(k, v, sample_rate=8000))(jax.random.key(1), x)
    np.testing.assert_allclose(np.asarray(jitted, np.float32), np.asarray(y, np.float32),
                               atol=1e-2)
    np.testing.assert_array_equal(audio.vtlp(None, x, sample_rate=8000, deterministic=True), x)
    x32 = x.astype(jnp.float32)
    np.testing.assert_allclose(audio.vtlp(jax.random.key(1), x32, sample_rate=8000, max_warp=0.0),
                               x32, atol=1e-5)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(max_warp=1.0), ValueError, "max_warp"),
    (dict(max_warp=-0.1), ValueError, "max_warp"),
    (dict(max_warp=True), ValueError, "max_warp"),
    (dict(boundary=4000.0), ValueError, "boundary"),
    (dict(fmin=3000.0, fmax=2000.0), ValueError, "fmin"),
    (dict(sample_rate=0), ValueError, "sample_rate"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    kw = dict(sample_rate=8000) | kwargs
    with pytest.raises(error, match=match):
        audio.vtlp(jax.random.key(0), jnp.zeros((2, 4, 16)), **kw)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="x.shape"):
        audio.vtlp(jax.random.key(0), jnp.zeros(16), sample_rate=8000)
    with pytest.raises(TypeError):
        audio.vtlp(jax.random.key(0), jnp.zeros((2, 4, 16), jnp.int32), sample_rate=8000)
    with pytest.raises(ValueError, match="key"):
        audio.vtlp(None, jnp.zeros((2, 4, 16)), sample_rate=8000)
    with pytest.raises(ValueError, match="n_mels"):
        audio.mel_band_centers(0, sample_rate=8000)
    with pytest.raises(ValueError, match="boundary"):
        audio.vtlp_warp(100.0, 1.0, fmax=4000.0, boundary=0.0)
