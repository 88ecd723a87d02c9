"""Log-mel features in JAX: framing, windowed real FFT, mel filter bank, decibels.

Everything works on a batch ``(..., samples)`` at once and compiles with ``jax.jit`` (the
frame count and the filter bank depend only on static settings). The conventions follow
``librosa`` (the reference implementation, to float32 tolerance):

* :func:`stft`: ``center=True`` pads ``n_fft // 2`` samples on both sides (zeros,
  librosa's default ``pad_mode="constant"``); a periodic Hann window of ``win_length``
  samples, zero-padded to ``n_fft`` in the centre; frame ``t`` starts at ``t * hop_length``.
  Output is time-major ``(..., frames, n_fft // 2 + 1)`` (librosa puts frequency first).
* :func:`mel_filterbank`: librosa's ``filters.mel`` defaults, the Slaney mel scale
  (linear below 1 kHz, logarithmic above) with Slaney area normalisation; ``htk=True``
  gives ``2595 log10(1 + f / 700)``.
* :func:`power_to_db`: ``10 log10(max(S, amin) / ref)``, then floored at ``max - top_db``
  (the maximum of each example, over its last two axes).

References:
  Slaney, M. "Auditory Toolbox", Technical Report 1998-010, Interval Research, 1998.
  McFee, B. et al. "librosa: Audio and Music Signal Analysis in Python", SciPy 2015.
  Davis, S. and Mermelstein, P. "Comparison of Parametric Representations for
  Monosyllabic Word Recognition in Continuously Spoken Sentences", IEEE TASSP 1980.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._validation import check_float_array

_F_SP = 200.0 / 3  # Slaney: Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
    return int(value)


def hz_to_mel(frequencies, *, htk: bool = False) -> np.ndarray:
    r"""Hz to mels: Slaney's scale (default) or HTK's :math:`2595 \log_{10}(1 + f / 700)`.

    Examples:
      >>> [round(v, 6) for v in hz_to_mel([0.0, 1000.0]).tolist()]
      [0.0, 15.0]
      >>> round(float(hz_to_mel(1000.0, htk=True)), 2)   # 2595 log10(1 + 1000/700)
      999.99
    """
    f = np.asarray(frequencies, np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    linear = f / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(f >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mels, *, htk: bool = False) -> np.ndarray:
    """Mels to Hz, the inverse of :func:`hz_to_mel`.

    Examples:
      >>> [round(v, 6) for v in mel_to_hz([0.0, 15.0]).tolist()]
      [0.0, 1000.0]
    """
    m = np.asarray(mels, np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    linear = _F_SP * m
    log = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log, linear)


def _check_frequency_range(sample_rate, fmin, fmax) -> float:
    """``fmax`` (``None``: Nyquist) after checking ``0 <= fmin < fmax <= sample_rate / 2``."""
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= float(fmin) < fmax <= sample_rate / 2.0:
        raise ValueError(
            f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin!r}, fmax={fmax!r}, "
            f"sample_rate={sample_rate!r}"
        )
    return fmax


def _mel_points(n_mels, fmin, fmax, htk) -> np.ndarray:
    """The ``n_mels + 2`` filter edges (Hz), equally spaced in mels: band ``k`` rises from
    point ``k``, peaks at ``k + 1`` and falls to ``k + 2``."""
    mels = np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels + 2)
    return np.asarray(mel_to_hz(mels, htk=htk), np.float64)


@functools.lru_cache(maxsize=32)
def _filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm) -> np.ndarray:
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_f = _mel_points(n_mels, fmin, fmax, htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights = weights.T.astype(np.float32)
    weights.flags.writeable = False
    return weights


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters as a ``(n_fft // 2 + 1, n_mels)`` float32 matrix.

    Power spectra ``(..., n_freq)`` times this matrix give mel spectra ``(..., n_mels)``.
    Same filters as ``librosa.filters.mel(...).T`` for the same arguments.

    Args:
      sample_rate: samples per second.
      n_fft: FFT size.
      n_mels: number of mel bands.
      fmin: lowest frequency (Hz).
      fmax: highest frequency (Hz), ``None`` for ``sample_rate / 2``.
      htk: HTK's mel formula instead of Slaney's.
      norm: ``"slaney"`` (divide each triangle by its width in Hz, constant energy per
        band) or ``None`` (peak 1).

    Returns:
      A read-only float32 numpy array.

    Raises:
      ValueError: non-positive sizes, ``fmin``/``fmax`` out of order or above Nyquist,
        unknown ``norm``.

    Examples:
      >>> fb = mel_filterbank(sample_rate=8000, n_fft=256, n_mels=40)
      >>> fb.shape, bool((fb >= 0).all())
      ((129, 40), True)
    """
    sample_rate = _positive_int(sample_rate, "sample_rate")
    n_fft = _positive_int(n_fft, "n_fft")
    n_mels = _positive_int(n_mels, "n_mels")
    fmax = _check_frequency_range(sample_rate, fmin, fmax)
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None, got norm={norm!r}")
    return _filterbank(sample_rate, n_fft, n_mels, float(fmin), fmax, bool(htk), norm)


def mel_band_centers(
    n_mels: int, *, sample_rate: float, fmin: float = 0.0, fmax: float | None = None,
    htk: bool = False,
) -> np.ndarray:
    """Centre frequencies (Hz) of the ``n_mels`` triangular filters of :func:`mel_filterbank`.

    Args:
      n_mels: mel bands (``>= 1``).
      sample_rate: sampling rate (Hz, ``> 0``).
      fmin, fmax, htk: as :func:`mel_filterbank` (``fmax=None``: ``sample_rate / 2``).

    Returns:
      A float64 array ``(n_mels,)``, increasing.

    Raises:
      ValueError: ``n_mels < 1``, ``sample_rate <= 0`` or ``fmin``/``fmax`` out of order.

    Examples:
      >>> c = mel_band_centers(40, sample_rate=8000)
      >>> c.shape, bool((c[1:] > c[:-1]).all()), bool(0 < c[0] and c[-1] < 4000)
      ((40,), True, True)
    """
    n_mels = _positive_int(n_mels, "n_mels")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be > 0, got sample_rate={sample_rate!r}")
    fmax = _check_frequency_range(sample_rate, fmin, fmax)
    return _mel_points(n_mels, float(fmin), fmax, htk)[1:-1]


def hann_window(length: int) -> np.ndarray:
    r"""The periodic Hann window :math:`w_n = \frac12 - \frac12 \cos(2 \pi n / L)`.

    :math:`L` is ``length``; ``scipy``'s ``get_window("hann", length)``, librosa's default.

    Examples:
      >>> hann_window(4).tolist()
      [0.0, 0.5, 1.0, 0.5]
    """
    n = np.arange(_positive_int(length, "length"))
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def num_frames(num_samples: int, *, n_fft: int, hop_length: int, center: bool = True) -> int:
    """Frames that :func:`stft` returns for ``num_samples`` samples.

    Examples:
      >>> num_frames(8000, n_fft=256, hop_length=128)
      63
    """
    padded = num_samples + (2 * (n_fft // 2) if center else 0)
    if padded < n_fft:
        raise ValueError(
            f"signals of {num_samples} samples are shorter than n_fft={n_fft} "
            f"(center={center})"
        )
    return 1 + (padded - n_fft) // hop_length


def frame(x, *, frame_length: int, hop_length: int) -> jax.Array:
    """Overlapping frames ``(..., num_frames, frame_length)`` of ``x`` ``(..., samples)``.

    Frame ``t`` is ``x[..., t * hop_length : t * hop_length + frame_length]``; a trailing
    partial frame is dropped.

    Examples:
      >>> import jax.numpy as jnp
      >>> frame(jnp.arange(6.0), frame_length=4, hop_length=2).tolist()
      [[0.0, 1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0]]
    """
    frame_length = _positive_int(frame_length, "frame_length")
    hop_length = _positive_int(hop_length, "hop_length")
    x = jnp.asarray(x)
    count = num_frames(x.shape[-1], n_fft=frame_length, hop_length=hop_length, center=False)
    index = hop_length * np.arange(count)[:, None] + np.arange(frame_length)[None, :]
    return x[..., index]


def stft(
    x,
    *,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    center: bool = True,
) -> jax.Array:
    """Short-time Fourier transform, time-major: ``(..., frames, n_fft // 2 + 1)`` complex.

    Args:
      x: float signals ``(..., samples)``.
      n_fft: FFT size (frame length).
      hop_length: samples between frame starts (default ``n_fft // 4``).
      win_length: Hann window length, ``<= n_fft``, centred in the frame (default ``n_fft``).
      center: pad ``n_fft // 2`` zeros on both sides so frame ``t`` is centred on sample
        ``t * hop_length``.

    Returns:
      Complex64 ``(..., frames, n_fft // 2 + 1)``; equals ``librosa.stft(x, ...).T`` for
      ``pad_mode="constant"``.

    Raises:
      TypeError: ``x`` not floating point.
      ValueError: bad sizes, or a signal shorter than one frame.

    Examples:
      >>> import jax.numpy as jnp
      >>> stft(jnp.zeros((2, 800)), n_fft=256, hop_length=80).shape
      (2, 11, 129)
    """
    x = check_float_array(x)
    n_fft = _positive_int(n_fft, "n_fft")
    hop_length = n_fft // 4 if hop_length is None else _positive_int(hop_length, "hop_length")
    win_length = n_fft if win_length is None else _positive_int(win_length, "win_length")
    if win_length > n_fft:
        raise ValueError(f"win_length must be <= n_fft={n_fft}, got win_length={win_length}")
    window = np.zeros(n_fft, np.float32)
    start = (n_fft - win_length) // 2
    window[start : start + win_length] = hann_window(win_length)
    if center:
        pad = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
        x = jnp.pad(x, pad)
    frames = frame(x, frame_length=n_fft, hop_length=hop_length)
    return jnp.fft.rfft(frames * window.astype(frames.dtype), axis=-1)


@functools.partial(
    jax.jit,
    static_argnames=(
        "sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "fmin", "fmax",
        "power", "htk", "norm", "center",
    ),
)
def mel_spectrogram(
    x,
    *,
    sample_rate: int,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    power: float = 2.0,
    htk: bool = False,
    norm: str | None = "slaney",
    center: bool = True,
) -> jax.Array:
    r"""Mel spectrogram ``(..., frames, n_mels)``: :math:`|\mathrm{STFT}(x)|^q F`.

    :math:`q` is ``power`` and :math:`F` the ``(n_fft // 2 + 1, n_mels)`` filter bank
    (:func:`mel_filterbank`).

    Equals ``librosa.feature.melspectrogram(y=x, sr=sample_rate, ...).T`` (librosa's
    defaults: ``hop_length = n_fft // 4``, Slaney mels, power 2). Jitted; every setting is
    static.

    Args:
      x: float signals ``(..., samples)``.
      sample_rate, n_mels, fmin, fmax, htk, norm: see :func:`mel_filterbank`.
      n_fft, hop_length, win_length, center: see :func:`stft`.
      power: exponent of the magnitude (2: power, 1: magnitude).

    Returns:
      Float32 ``(..., frames, n_mels)``.

    Raises:
      TypeError, ValueError: as :func:`stft` and :func:`mel_filterbank`.

    Examples:
      >>> import jax.numpy as jnp
      >>> mel_spectrogram(jnp.ones((3, 8000)), sample_rate=8000, n_fft=256,
      ...                 hop_length=128, n_mels=32).shape
      (3, 63, 32)
    """
    spectrum = stft(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center)
    magnitude = jnp.abs(spectrum)
    spec = magnitude * magnitude if power == 2.0 else magnitude**power
    fb = mel_filterbank(
        sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
        norm=norm,
    )
    return jnp.matmul(spec, fb, precision=jax.lax.Precision.HIGHEST)


def power_to_db(spec, *, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0):
    r"""Decibels :math:`10 \log_{10}(\max(S, a_\mathrm{min}) / \mathrm{ref})`, floored per example.

    The floor is the example's maximum minus ``top_db``; :math:`a_\mathrm{min}` = ``amin``.

    The floor uses the maximum over the last two axes (one spectrogram), so a batch gives
    what ``librosa.power_to_db`` gives for each spectrogram alone.

    Args:
      spec: power spectrogram(s) ``(..., frames, bands)``.
      ref: reference power (0 dB).
      amin: smallest power (avoids ``log(0)``).
      top_db: dynamic range kept below each maximum, or ``None`` for no floor.

    Returns:
      Float ``(..., frames, bands)``.

    Raises:
      ValueError: ``amin`` or ``ref`` not positive, ``top_db`` negative.

    Examples:
      >>> import jax.numpy as jnp
      >>> power_to_db(jnp.array([[1.0, 1e-3, 0.0]]), top_db=None).tolist()
      [[0.0, -30.0, -100.0]]
    """
    if not amin > 0:
        raise ValueError(f"amin must be positive, got amin={amin!r}")
    if not ref > 0:
        raise ValueError(f"ref must be positive, got ref={ref!r}")
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db must be non-negative or None, got top_db={top_db!r}")
    spec = check_float_array(spec, "spec")
    db = 10.0 * jnp.log10(jnp.maximum(spec, amin)) - 10.0 * np.log10(max(amin, ref))
    if top_db is not None:
        axes = tuple(range(max(db.ndim - 2, 0), db.ndim))
        db = jnp.maximum(db, db.max(axis=axes, keepdims=True) - top_db)
    return db


@functools.partial(
    jax.jit,
    static_argnames=(
        "sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "fmin", "fmax", "htk",
        "norm", "center", "top_db", "amin",
    ),
)
def log_mel_spectrogram(
    x,
    *,
    sample_rate: int,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    center: bool = True,
    top_db: float | None = 80.0,
    amin: float = 1e-10,
) -> jax.Array:
    """Log-mel spectrogram in dB, ``(..., frames, n_mels)``, batched and jitted.

    ``power_to_db(mel_spectrogram(x, ...), top_db=top_db, amin=amin)``: the same as
    ``librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=sample_rate, ...)).T``.

    Args:
      x: float signals ``(..., samples)``.
      sample_rate, n_fft, hop_length, win_length, n_mels, fmin, fmax, htk, norm, center:
        see :func:`mel_spectrogram`.
      top_db, amin: see :func:`power_to_db`.

    Returns:
      Float32 ``(..., frames, n_mels)`` in dB (0 dB = power 1).

    Raises:
      TypeError, ValueError: as :func:`mel_spectrogram` and :func:`power_to_db`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.sin(2 * jnp.pi * 440 * jnp.arange(8000.0) / 8000)
      >>> feats = log_mel_spectrogram(x, sample_rate=8000, n_fft=256, hop_length=128, n_mels=32)
      >>> feats.shape, int(feats[10].argmax())      # the band holding 440 Hz
      ((63, 32), 5)
    """
    mel = mel_spectrogram(
        x, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
        n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm, center=center,
    )
    return power_to_db(mel, top_db=top_db, amin=amin)
