"""Checks of the metrics' inputs: probabilities, labels, samples, targets, scores.

Shapes are always checked (they are static). Values (probabilities that are negative or
whose rows do not sum to one, labels out of range, ``tau <= 0``...) are checked only when
the inputs are concrete (:func:`jdrop._validation.is_concrete`); under ``jax.jit`` such
inputs give undefined results. Rows of probabilities must sum to one within
``atol = 1e-3`` (``1e-2`` for 16-bit floats). Generic checks (floating dtype, ints, choices)
come from :mod:`jdrop._validation`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._validation import check_float_array, is_concrete


def _sum_atol(dtype) -> float:
    return 1e-2 if jnp.finfo(dtype).bits <= 16 else 1e-3


def _check_row_sums(sums: np.ndarray, name: str, dtype) -> None:
    atol = _sum_atol(dtype)
    deviation = np.abs(sums - 1.0)
    if not np.all(deviation <= atol):  # NaN fails too.
        worst = int(np.argmax(np.where(np.isnan(deviation), np.inf, deviation)))
        raise ValueError(
            f"rows of {name} must sum to 1 over the last axis within atol={atol}; "
            f"row {np.unravel_index(worst, sums.shape)} sums to {sums.flat[worst]!r}"
        )


def check_probs(probs, name: str = "probs") -> jax.Array:
    probs = check_float_array(probs, name)
    if probs.ndim != 2:
        raise ValueError(f"expected {name} of shape (N, K), got {name}.shape={probs.shape}")
    if probs.shape[0] < 1 or probs.shape[1] < 1:
        raise ValueError(f"{name} needs N >= 1 and K >= 1, got {name}.shape={probs.shape}")
    if is_concrete(probs):
        values = np.asarray(probs, dtype=np.float64)
        if np.any(values < 0):
            raise ValueError(f"{name} must be non-negative, got a minimum of {values.min()!r}")
        _check_row_sums(values.sum(axis=-1), name, probs.dtype)
    return probs


def check_log_probs(log_probs, from_logits: bool, ndim: int, name: str = "log_probs"):
    log_probs = check_float_array(log_probs, name)
    shape_text = "(T, N, K)" if ndim == 3 else "(N, K)"
    if log_probs.ndim != ndim:
        raise ValueError(
            f"expected {name} of shape {shape_text}, got {name}.shape={log_probs.shape}"
        )
    if 0 in log_probs.shape:
        raise ValueError(
            f"{name} needs every dimension of {shape_text} >= 1, got {name}.shape={log_probs.shape}"
        )
    if from_logits:
        return jax.nn.log_softmax(log_probs, axis=-1)
    if is_concrete(log_probs):
        sums = np.exp(np.asarray(log_probs, dtype=np.float64)).sum(axis=-1)
        _check_row_sums(sums, f"exp({name})", log_probs.dtype)
    return log_probs


def check_labels(labels, probs_shape, probs_name: str) -> jax.Array:
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must have an integer dtype, got labels.dtype={labels.dtype}")
    if labels.shape != probs_shape[:-1]:
        raise ValueError(
            f"labels.shape={labels.shape} does not match {probs_name}.shape={probs_shape}: "
            f"expected labels of shape {probs_shape[:-1]}"
        )
    if is_concrete(labels):
        values = np.asarray(labels)
        num_classes = probs_shape[-1]
        bad = (values < 0) | (values >= num_classes)
        if np.any(bad):
            raise ValueError(
                f"labels must be in [0, {num_classes}) for {probs_name}.shape={probs_shape}, "
                f"got labels={values[bad][0]}"
            )
    return labels


def check_samples(samples, name: str = "samples") -> jax.Array:
    samples = check_float_array(samples, name)
    if samples.ndim not in (2, 3):
        raise ValueError(
            f"expected {name} of shape (T, N) or (T, N, D), got {name}.shape={samples.shape}"
        )
    if samples.shape[0] < 1:
        raise ValueError(f"{name} needs T >= 1 samples, got {name}.shape={samples.shape}")
    return samples


def check_targets(y, shape, other: str, dtype) -> jax.Array:
    """Checks targets' shape and casts them to the predictions' dtype."""
    y = check_float_array(y, "y")
    if y.shape != tuple(shape):
        raise ValueError(
            f"y.shape={y.shape} does not match {other}: expected y of shape {tuple(shape)}"
        )
    return y.astype(dtype)


def check_tau(tau, dtype) -> jax.Array:
    tau = jnp.asarray(tau)
    if tau.ndim != 0:
        raise ValueError(f"tau must be a scalar, got tau.shape={tau.shape}")
    if is_concrete(tau):
        value = float(np.asarray(tau))
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"tau must be positive and finite, got tau={value!r}")
    return tau.astype(dtype)


def check_binary(scores, labels, *, need_negatives: bool):
    scores = jnp.asarray(scores)
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        scores = scores.astype(jax.dtypes.canonicalize_dtype(jnp.float64))
    labels = jnp.asarray(labels)
    if scores.ndim != 1:
        raise ValueError(f"expected scores of shape (N,), got scores.shape={scores.shape}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels.shape={labels.shape} does not match scores.shape={scores.shape}")
    if not (labels.dtype == jnp.bool_ or jnp.issubdtype(labels.dtype, jnp.integer)):
        raise TypeError(f"labels must be bool or integer, got labels.dtype={labels.dtype}")
    if is_concrete(scores, labels):
        values = np.asarray(labels)
        bad = (values != 0) & (values != 1)
        if np.any(bad):
            raise ValueError(f"labels must be 0 or 1, got labels={values[bad][0]}")
        if np.any(np.isnan(np.asarray(scores, dtype=np.float64))):
            raise ValueError("scores must not contain NaN")
        num_pos = int(values.sum())
        if num_pos == 0:
            raise ValueError("labels contain no positives (1s): the metric is undefined")
        if need_negatives and num_pos == values.size:
            raise ValueError("labels contain no negatives (0s): the metric is undefined")
    return scores, labels.astype(scores.dtype)
