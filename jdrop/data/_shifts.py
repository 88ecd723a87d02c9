"""Distribution shifts for the uncertainty experiments: inputs the model was not trained on.

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

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SHIFTS", "apply_shift"]


def noise(key, x: np.ndarray) -> np.ndarray:
    sigma = np.float32(x.std())
    return x + sigma * np.asarray(jax.random.normal(key, x.shape, jnp.float32))


def translation(key, x: np.ndarray) -> np.ndarray:
    del key
    steps = x.shape[1] // 4
    out = np.zeros_like(x)
    out[:, steps:] = x[:, :-steps]
    return out


def reversal(key, x: np.ndarray) -> np.ndarray:
    del key
    return np.ascontiguousarray(x[:, ::-1])


SHIFTS = {"noise": noise, "translation": translation, "reversal": reversal}


def apply_shift(name: str, key, x) -> np.ndarray:
    """``SHIFTS[name](key, x)`` as float32 numpy, with a clear error for unknown names."""
    if name not in SHIFTS:
        raise ValueError(f"unknown shift {name!r}; choose from {sorted(SHIFTS)}")
    return np.asarray(SHIFTS[name](key, np.asarray(x, np.float32)), np.float32)
