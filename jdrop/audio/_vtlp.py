"""Vocal tract length perturbation (VTLP) of mel spectrograms, key-first like every jdrop op.

A speaker's vocal tract length scales the formant frequencies by a factor near 1. VTLP
(Jaitly & Hinton 2013) imitates new speakers by warping the frequency axis of each training
example with its own factor ``alpha ~ U[1 - max_warp, 1 + max_warp]``, piecewise linearly
so that ``0`` and the top frequency ``f_max`` stay fixed::

    f' = alpha f                                                  if f <= b min(alpha, 1) / alpha
    f' = f_max - (f_max - b min(alpha, 1)) / (f_max - b min(alpha, 1) / alpha) (f_max - f)
                                                                  otherwise

with the boundary ``b = 0.3 * sample_rate`` (4,800 Hz at 16 kHz, the paper's ``F_hi``).
The paper warps the filter bank's centre frequencies; here, on features already computed,
the energy of band ``k`` (centre ``c_k``) moves to ``f'(c_k)`` and every band reads the
warped curve at its own centre (linear interpolation in Hz). Like SpecAugment it
changes the input, not the network, and inference uses the input unchanged.

References:
  Jaitly, N. and Hinton, G. E. "Vocal Tract Length Perturbation (VTLP) improves speech
  recognition". ICML Workshop on Deep Learning for Audio, Speech and Language, 2013.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdrop._keys import as_key
from jdrop._masks import uniform
from jdrop._validation import check_float_array, require_key
from jdrop.audio._features import mel_band_centers

__all__ = ["vtlp", "vtlp_warp"]

BOUNDARY_FRACTION = 0.3  # F_hi / sample_rate: 4,800 Hz at 16 kHz (Jaitly & Hinton 2013)


def _check_boundary(boundary, fmax) -> float:
    if not 0.0 < float(boundary) < float(fmax):
        raise ValueError(f"boundary must be in (0, fmax={fmax!r}), got boundary={boundary!r}")
    return float(boundary)


def vtlp_warp(frequencies, alpha, *, fmax: float, boundary: float) -> jax.Array:
    r"""Jaitly & Hinton's piecewise-linear warp :math:`f \to f'` of ``frequencies`` (Hz).

    :math:`f' = \alpha f` up to :math:`b \min(\alpha, 1) / \alpha` (``b = boundary``), then
    the straight line that ends at ``(fmax, fmax)``. ``alpha`` broadcasts against
    ``frequencies``.

    Args:
      frequencies: frequencies in ``[0, fmax]`` (Hz).
      alpha: warp factors (``> 0``).
      fmax: the fixed top frequency (Hz, ``> 0``).
      boundary: ``F_hi`` (Hz), ``0 < boundary < fmax``.

    Returns:
      The warped frequencies, ``float32``, the broadcast shape.

    Raises:
      ValueError: ``boundary`` not in ``(0, fmax)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> f = jnp.array([0.0, 1000.0, 4000.0])
      >>> [round(float(v)) for v in vtlp_warp(f, 1.1, fmax=4000.0, boundary=2400.0)]
      [0, 1100, 4000]
    """
    _check_boundary(boundary, fmax)
    f = jnp.asarray(frequencies, jnp.float32)
    alpha = jnp.asarray(alpha, jnp.float32)
    knee = boundary * jnp.minimum(alpha, 1.0)  # f' at the knee
    knee_in = knee / alpha  # f at the knee
    upper = fmax - (fmax - knee) / (fmax - knee_in) * (fmax - f)
    return jnp.where(f <= knee_in, alpha * f, upper)


def _warp_bands(x, alpha, centers, fmax, boundary):
    """One example: ``x`` ``(T, F)`` warped by the scalar ``alpha``."""
    warped = vtlp_warp(centers, alpha, fmax=fmax, boundary=boundary)
    return jax.vmap(lambda row: jnp.interp(centers, warped, row))(x)


def vtlp(
    key,
    x,
    *,
    sample_rate: float,
    max_warp: float = 0.1,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    boundary: float | None = None,
    deterministic: bool = False,
) -> jax.Array:
    r"""VTLP: warp the mel axis of each spectrogram in ``x`` ``(..., T, n_mels)`` by its own factor.

    Each example (every index of the axes before the last two) draws
    :math:`\alpha \sim U[1 - w, 1 + w]` (``w = max_warp``) from ``key``; band ``k``'s values
    move to the warped centre frequency ``f'(c_k)`` (:func:`vtlp_warp`) and each band reads
    the result at its own centre, linearly interpolated in Hz (values beyond the ends are
    held).
    Works on mel power, magnitude or log-mel features alike.

    Args:
      key: PRNG key (``None`` allowed when ``deterministic``).
      x: floating-point mel spectrograms, frequency last.
      sample_rate: the features' sampling rate (Hz).
      max_warp: largest ``|alpha - 1|``, ``0 <= max_warp < 1`` (the paper: 0.1).
      fmin, fmax, htk: the settings the features were computed with (:func:`mel_filterbank`).
      boundary: ``F_hi`` (Hz); ``None`` for ``0.3 * sample_rate`` (4,800 Hz at 16 kHz).
      deterministic: inference: return ``x`` unchanged.

    Returns:
      An array like ``x`` (same shape and dtype).

    Raises:
      TypeError: ``x`` not floating point.
      ValueError: ``x`` with fewer than 2 axes, ``max_warp`` out of range, bad frequencies
        (the message names the argument), or a missing ``key`` while not deterministic.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.zeros((4, 30, 40)).at[:, :, 20].set(1.0)   # one band lit
      >>> y = vtlp(jax.random.key(0), x, sample_rate=8000)
      >>> y.shape, bool(((y >= 0) & (y <= 1)).all())   # the peak moves by a band or less
      ((4, 30, 40), True)
      >>> bool((jnp.abs(y.argmax(-1) - 20) <= 1).all())
      True
      >>> bool((vtlp(None, x, sample_rate=8000, deterministic=True) == x).all())
      True

    References:
      Jaitly & Hinton. "Vocal Tract Length Perturbation (VTLP) improves speech recognition".
      ICML WDLASL 2013.
    """
    x = check_float_array(x)
    if x.ndim < 2:
        raise ValueError(f"vtlp needs spectrograms (..., T, n_mels), got x.shape={x.shape}")
    if isinstance(max_warp, bool) or not 0.0 <= float(max_warp) < 1.0:
        raise ValueError(f"max_warp must be in [0, 1), got max_warp={max_warp!r}")
    centers = mel_band_centers(x.shape[-1], sample_rate=sample_rate, fmin=fmin, fmax=fmax,
                               htk=htk)
    top = sample_rate / 2.0 if fmax is None else float(fmax)
    boundary = _check_boundary(BOUNDARY_FRACTION * sample_rate if boundary is None else boundary,
                               top)
    if deterministic:
        return x
    require_key(key, deterministic, "vtlp")
    lead = x.shape[:-2]
    u = uniform(as_key(key), lead)
    alpha = 1.0 + float(max_warp) * (2.0 * u - 1.0)
    centers = jnp.asarray(centers, jnp.float32)

    def one(xi, ai):
        return _warp_bands(xi, ai, centers, top, boundary)

    flat = x.reshape((-1, *x.shape[-2:]))
    out = jax.vmap(one)(flat.astype(jnp.float32), alpha.reshape(-1))
    return out.reshape(x.shape).astype(x.dtype)
