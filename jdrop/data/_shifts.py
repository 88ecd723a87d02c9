"""Distribution shifts: inputs a model was not trained on, for out-of-distribution tests.

Each shift is a pure function ``shift(key, x) -> x'`` of a batch of signals ``(N, L)`` /
``(N, L, C)`` or images ``(N, H, W, C)``; the first non-batch axis is "time" (or height).

* ``noise``: additive white Gaussian noise with the standard deviation of the data
  (signal-to-noise ratio 1): the class evidence is still there but buried.
* ``translation``: every example moved by 25% of its length along time/height, zero fill:
  MNIST-1D's generator shifts its templates by a few steps only, so a large translation
  leaves the training distribution.
* ``reversal``: time (or height) reversed: the same local statistics, digit shapes that
  were never seen.
"""

from __future__ import annotations

import numpy as np


def _noise(key, x: np.ndarray) -> np.ndarray:
    import jax  # jdrop.data imports numpy only; jax is needed for this shift alone

    sigma = np.float32(x.std())
    return x + sigma * np.asarray(jax.random.normal(key, x.shape, np.float32))


def _translation(key, x: np.ndarray) -> np.ndarray:
    del key
    steps = x.shape[1] // 4
    out = np.zeros_like(x)
    out[:, steps:] = x[:, :-steps]
    return out


def _reversal(key, x: np.ndarray) -> np.ndarray:
    del key
    return np.ascontiguousarray(x[:, ::-1])


SHIFTS = {"noise": _noise, "translation": _translation, "reversal": _reversal}
"""The shifts by name: ``SHIFTS[name](key, x) -> x'`` (see :func:`apply_shift`)."""


def apply_shift(name: str, key, x) -> np.ndarray:
    """Shifts a batch of inputs away from the training distribution.

    ``noise`` adds Gaussian noise with the data's standard deviation (SNR 1);
    ``translation`` moves every example by a quarter of its first non-batch axis (zero
    fill); ``reversal`` reverses that axis. Only ``noise`` uses ``key``.

    Args:
      name: a key of :data:`SHIFTS`: ``"noise"``, ``"translation"`` or ``"reversal"``.
      key: a JAX PRNG key (used by ``noise`` only).
      x: ``(N, L, ...)`` signals or ``(N, H, W, C)`` images.

    Returns:
      The shifted batch as float32 numpy, the shape of ``x``.

    Raises:
      ValueError: if ``name`` is not a known shift.

    Examples:
      >>> import jax, numpy as np
      >>> x = np.arange(8, dtype=np.float32).reshape(1, 8)
      >>> apply_shift("translation", jax.random.key(0), x).tolist()
      [[0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]
      >>> apply_shift("reversal", None, x)[0, :3].tolist()
      [7.0, 6.0, 5.0]

    References:
      Ovadia, Y. et al. "Can You Trust Your Model's Uncertainty? Evaluating Predictive
      Uncertainty Under Dataset Shift", NeurIPS 2019.
    """
    if name not in SHIFTS:
        raise ValueError(f"unknown shift {name!r}; choose from {sorted(SHIFTS)}")
    return np.asarray(SHIFTS[name](key, np.asarray(x, np.float32)), np.float32)
