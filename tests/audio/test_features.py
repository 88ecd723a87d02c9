"""jdrop.audio: STFT, mel filter bank and log-mel spectrograms against librosa."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from jdrop import audio

librosa = pytest.importorskip("librosa")

SETTINGS = [
    dict(n_fft=256, hop_length=128, n_mels=32),
    dict(n_fft=512, hop_length=100, win_length=400, n_mels=40, htk=True, fmin=20.0, fmax=3800.0),
    dict(n_fft=2048, n_mels=128, norm=None),
    dict(n_fft=200, hop_length=80, n_mels=20, center=False),
]


def _signals(n=3, length=8000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 8000
    tone = np.sin(2 * np.pi * rng.uniform(100, 3000, (n, 1)) * t)
    return (0.3 * tone + 0.05 * rng.standard_normal((n, length))).astype(np.float32)


@pytest.mark.parametrize("kw", SETTINGS)
def test_mel_spectrogram_matches_librosa(kw):
    x = _signals()
    ours = np.asarray(audio.mel_spectrogram(jnp.asarray(x), sample_rate=8000, **kw))
    ref = librosa.feature.melspectrogram(y=x, sr=8000, **kw).swapaxes(-1, -2)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=2e-4, atol=1e-6 * ref.max())


@pytest.mark.parametrize("kw", SETTINGS)
def test_log_mel_matches_librosa_power_to_db(kw):
    x = _signals(seed=1)
    ours = np.asarray(audio.log_mel_spectrogram(jnp.asarray(x), sample_rate=8000, **kw))
    mel = librosa.feature.melspectrogram(y=x, sr=8000, **kw)
    ref = np.stack([librosa.power_to_db(m).T for m in mel])
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_filterbank_and_stft_match_librosa():
    for htk in (False, True):
        fb = audio.mel_filterbank(sample_rate=16000, n_fft=512, n_mels=64, htk=htk, fmin=50.0)
        ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, htk=htk, fmin=50.0).T
        np.testing.assert_allclose(fb, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(audio.hz_to_mel([0.0, 500.0, 4000.0]),
                               librosa.hz_to_mel([0.0, 500.0, 4000.0]), rtol=1e-6)
    np.testing.assert_allclose(audio.mel_to_hz([3.0, 30.0]), librosa.mel_to_hz([3.0, 30.0]),
                               rtol=1e-6)
    x = _signals(n=1)[0]
    ours = np.asarray(audio.stft(jnp.asarray(x), n_fft=256, hop_length=64))
    ref = librosa.stft(x, n_fft=256, hop_length=64).T
    np.testing.assert_allclose(ours, ref, atol=1e-4 * np.abs(ref).max())


def test_batched_jitted_and_shapes():
    x = jnp.asarray(_signals(n=4))
    kw = dict(sample_rate=8000, n_fft=256, hop_length=128, n_mels=32)
    batch = audio.log_mel_spectrogram(x.reshape(2, 2, 8000), **kw)
    assert batch.shape == (2, 2, 63, 32) and batch.dtype == jnp.float32
    single = audio.log_mel_spectrogram(x[3], **kw)
    np.testing.assert_allclose(batch[1, 1], single, atol=1e-4)
    assert audio.num_frames(8000, n_fft=256, hop_length=128) == 63
    jitted = jax.jit(lambda s: audio.log_mel_spectrogram(s, **kw))
    np.testing.assert_allclose(jitted(x), batch.reshape(4, 63, 32), atol=1e-4)
    assert jdrop.audio is audio


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="n_mels"):
        audio.mel_filterbank(sample_rate=8000, n_fft=256, n_mels=0)
    with pytest.raises(ValueError, match="fmax"):
        audio.mel_filterbank(sample_rate=8000, n_fft=256, fmax=5000.0)
    with pytest.raises(ValueError, match="norm"):
        audio.mel_filterbank(sample_rate=8000, n_fft=256, norm="l2")
    with pytest.raises(ValueError, match="win_length"):
        audio.stft(jnp.zeros(1000), n_fft=256, win_length=300)
    with pytest.raises(ValueError, match="shorter than n_fft"):
        audio.stft(jnp.zeros(100), n_fft=256, center=False)
    with pytest.raises(TypeError, match="floating"):
        audio.stft(jnp.zeros(1000, jnp.int32), n_fft=256)
    with pytest.raises(ValueError, match="top_db"):
        audio.power_to_db(jnp.ones((2, 2)), top_db=-1.0)
