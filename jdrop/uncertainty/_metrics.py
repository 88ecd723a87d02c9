"""Uncertainty, quality and calibration metrics for Monte-Carlo dropout predictions.

Conventions:

* Monte-Carlo samples are stacked on a **leading** axis. Classification samples are
  normalised log-probabilities ``log_probs`` of shape ``(T, N, K)`` (``T`` samples, ``N``
  examples, ``K`` classes); every function that takes them also takes ``from_logits=True``,
  in which case the input is unnormalised logits and ``jax.nn.log_softmax`` is applied
  first (so no question of invalid probabilities arises). Pass ``jnp.log(probs)`` when you
  hold probabilities.
* Regression samples are ``(T, N)`` or ``(T, N, D)``; targets ``y`` are ``(N,)`` or ``(N, D)``.
* Quality and calibration metrics take the final predictive distribution ``probs`` of shape
  ``(N, K)`` (e.g. :func:`predictive_probs`) and integer ``labels`` of shape ``(N,)``.
* All means over Monte-Carlo samples are population means (divide by ``T``).

Validation: shapes are always checked (they are static). Values (probabilities that are
negative or whose rows do not sum to one, labels out of range, ``tau <= 0``...) are checked
only when the inputs are concrete; under ``jax.jit`` such inputs give undefined results.
Rows of probabilities must sum to one within ``atol = 1e-3`` (``1e-2`` for 16-bit floats).
Static options (``from_logits``, ``num_bins``, ``binning``, ``reduction``) must be marked
static when jitting, e.g. ``jax.jit(f, static_argnames="num_bins")``.

For ``T`` too large to hold at once, :class:`ClassificationSummary` and
:class:`RegressionSummary` accumulate sufficient statistics chunk by chunk and finalise
to the same values as the one-shot functions.
"""

import math
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "BINNINGS",
    "ClassificationSummary",
    "ClassificationUncertainty",
    "RegressionSummary",
    "RegressionUncertainty",
    "ReliabilityData",
    "accuracy",
    "auroc",
    "average_precision",
    "brier_score",
    "class_variance",
    "classification_uncertainty",
    "epistemic_variance",
    "expected_calibration_error",
    "expected_entropy",
    "maximum_calibration_error",
    "mean_log_probs",
    "mutual_information",
    "nll",
    "nll_from_log_probs",
    "predictive_entropy",
    "predictive_log_likelihood",
    "predictive_mean",
    "predictive_probs",
    "regression_uncertainty",
    "reliability_data",
    "rmse",
    "total_variance",
    "variation_ratio",
]

#: The binning schemes accepted by the calibration metrics.
BINNINGS = ("equal_width", "equal_mass")

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------
# Validation helpers.
# --------------------------------------------------------------------------------------


def _is_concrete(*values) -> bool:
    """True when every value is concrete (not traced) and readable from this host."""
    for value in values:
        if isinstance(value, jax.core.Tracer):
            return False
        if isinstance(value, jax.Array) and not value.is_fully_addressable:
            return False
    return True


def _float_array(x, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype, got {name}.dtype={x.dtype}")
    return x


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


def _check_probs(probs, name: str = "probs") -> jax.Array:
    probs = _float_array(probs, name)
    if probs.ndim != 2:
        raise ValueError(f"expected {name} of shape (N, K), got {name}.shape={probs.shape}")
    if probs.shape[0] < 1 or probs.shape[1] < 1:
        raise ValueError(f"{name} needs N >= 1 and K >= 1, got {name}.shape={probs.shape}")
    if _is_concrete(probs):
        values = np.asarray(probs, dtype=np.float64)
        if np.any(values < 0):
            raise ValueError(f"{name} must be non-negative, got a minimum of {values.min()!r}")
        _check_row_sums(values.sum(axis=-1), name, probs.dtype)
    return probs


def _check_log_probs(log_probs, from_logits: bool, ndim: int, name: str = "log_probs"):
    log_probs = _float_array(log_probs, name)
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
    if _is_concrete(log_probs):
        sums = np.exp(np.asarray(log_probs, dtype=np.float64)).sum(axis=-1)
        _check_row_sums(sums, f"exp({name})", log_probs.dtype)
    return log_probs


def _check_labels(labels, probs_shape, probs_name: str) -> jax.Array:
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must have an integer dtype, got labels.dtype={labels.dtype}")
    if labels.shape != probs_shape[:-1]:
        raise ValueError(
            f"labels.shape={labels.shape} does not match {probs_name}.shape={probs_shape}: "
            f"expected labels of shape {probs_shape[:-1]}"
        )
    if _is_concrete(labels):
        values = np.asarray(labels)
        num_classes = probs_shape[-1]
        bad = (values < 0) | (values >= num_classes)
        if np.any(bad):
            raise ValueError(
                f"labels must be in [0, {num_classes}) for {probs_name}.shape={probs_shape}, "
                f"got labels={values[bad][0]}"
            )
    return labels


def _check_num_bins(num_bins) -> int:
    if isinstance(num_bins, bool):
        raise TypeError(f"num_bins must be an int, got num_bins={num_bins!r}")
    try:
        num_bins = operator.index(num_bins)
    except TypeError:
        raise TypeError(f"num_bins must be an int, got num_bins={num_bins!r}") from None
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got num_bins={num_bins}")
    return num_bins


def _check_binning(binning: str) -> str:
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}, got binning={binning!r}")
    return binning


def _check_samples(samples, name: str = "samples") -> jax.Array:
    samples = _float_array(samples, name)
    if samples.ndim not in (2, 3):
        raise ValueError(
            f"expected {name} of shape (T, N) or (T, N, D), got {name}.shape={samples.shape}"
        )
    if samples.shape[0] < 1:
        raise ValueError(f"{name} needs T >= 1 samples, got {name}.shape={samples.shape}")
    return samples


def _check_targets(y, shape, other: str, dtype) -> jax.Array:
    """Checks targets' shape and casts them to the predictions' dtype."""
    y = _float_array(y, "y")
    if y.shape != tuple(shape):
        raise ValueError(
            f"y.shape={y.shape} does not match {other}: expected y of shape {tuple(shape)}"
        )
    return y.astype(dtype)


def _check_tau(tau, dtype) -> jax.Array:
    tau = jnp.asarray(tau)
    if tau.ndim != 0:
        raise ValueError(f"tau must be a scalar, got tau.shape={tau.shape}")
    if _is_concrete(tau):
        value = float(np.asarray(tau))
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"tau must be positive and finite, got tau={value!r}")
    return tau.astype(dtype)


def _check_binary(scores, labels, *, need_negatives: bool):
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
    if _is_concrete(scores, labels):
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


# --------------------------------------------------------------------------------------
# Shared numerical pieces (one-shot functions and streaming summaries both use these).
# --------------------------------------------------------------------------------------


def _entropy(log_p: jax.Array, axis: int = -1) -> jax.Array:
    """-sum p log p from log p, with 0 log 0 = 0 and NaN-free gradients."""
    finite = log_p > -jnp.inf
    safe = jnp.where(finite, log_p, 0)
    return -jnp.sum(jnp.where(finite, jnp.exp(safe) * safe, 0), axis=axis)


def _logsumexp(x: jax.Array, axis: int = 0) -> jax.Array:
    """``jax.nn.logsumexp`` whose gradient is 0, not NaN, where every term is ``-inf``."""
    empty = jnp.all(x == -jnp.inf, axis=axis, keepdims=True)
    out = jax.nn.logsumexp(jnp.where(empty, 0, x), axis=axis, keepdims=True)
    return jnp.squeeze(jnp.where(empty, -jnp.inf, out), axis=axis)


def _mean_log_probs(log_probs: jax.Array) -> jax.Array:
    return _logsumexp(log_probs, axis=0) - math.log(log_probs.shape[0])


def _votes(log_probs: jax.Array) -> jax.Array:
    """Counts (N, K) of samples whose argmax is each class."""
    num_classes = log_probs.shape[-1]
    return jnp.sum(jax.nn.one_hot(jnp.argmax(log_probs, axis=-1), num_classes, dtype=jnp.int32), 0)


def _merge_moments(count, mean, m2, chunk: jax.Array):
    """Chan et al.'s pairwise update of (count, mean, sum of squared deviations)."""
    t = chunk.shape[0]
    chunk_mean = jnp.mean(chunk, axis=0)
    chunk_m2 = jnp.sum(jnp.square(chunk - chunk_mean), axis=0)
    new_count = count + t
    old = count.astype(chunk.dtype)
    total = new_count.astype(chunk.dtype)
    delta = chunk_mean - mean
    new_mean = mean + delta * (t / total)
    new_m2 = m2 + chunk_m2 + jnp.square(delta) * (old * t / total)
    return new_count, new_mean, new_m2


def _gaussian_log_kernel(samples: jax.Array, y: jax.Array, tau: jax.Array) -> jax.Array:
    """-tau/2 ||y - yhat_t||^2 per sample and point: shape (T, N)."""
    sq = jnp.square(y - samples)
    if samples.ndim == 3:
        sq = jnp.sum(sq, axis=-1)
    return -0.5 * tau * sq


def _log_likelihood_from_lse(lse, count, dim: int, tau) -> jax.Array:
    log_count = jnp.log(jnp.asarray(count).astype(lse.dtype))
    return lse - log_count - 0.5 * dim * _LOG_2PI + 0.5 * dim * jnp.log(tau)


def _rmse(pred, y):
    return jnp.sqrt(jnp.mean(jnp.square(pred - y)))


def _finite_count(count, what: str):
    if _is_concrete(count) and int(np.asarray(count)) == 0:
        raise ValueError(f"cannot finalize a {what} that has seen no samples (count=0)")


# --------------------------------------------------------------------------------------
# Classification: summaries of (T, N, K) Monte-Carlo log-probabilities.
# --------------------------------------------------------------------------------------


def mean_log_probs(log_probs, *, from_logits: bool = False) -> jax.Array:
    """Log of the Monte-Carlo predictive distribution, computed in log space.

    ``log p̄(y=k | x_n) = logsumexp_t log p_t(y=k | x_n) - log T``; never exponentiates
    the samples, so it stays accurate for very confident (or very unsure) samples.

    Args:
      log_probs: ``(T, N, K)`` log-probabilities of ``T`` Monte-Carlo samples (or logits
        when ``from_logits=True``).
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      ``(N, K)`` log predictive probabilities.

    Raises:
      TypeError: if ``log_probs`` is not floating point.
      ValueError: if ``log_probs`` is not 3-D, has an empty dimension, or (when concrete
        and ``from_logits=False``) ``exp(log_probs)`` rows do not sum to 1 within
        ``atol=1e-3`` (``1e-2`` for 16-bit floats).

    Examples:
      >>> import jax.numpy as jnp
      >>> log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.5, 0.5]]]))
      >>> print([f"{p:.4f}" for p in jnp.exp(mean_log_probs(log_probs))[0].tolist()])
      ['0.7000', '0.3000']

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    log_probs = _check_log_probs(log_probs, from_logits, 3)
    return _mean_log_probs(log_probs)


def predictive_probs(log_probs, *, from_logits: bool = False) -> jax.Array:
    """Monte-Carlo predictive distribution ``p̄ = (1/T) sum_t p_t``.

    Computed as ``exp(mean_log_probs(log_probs))``.

    Args:
      log_probs: ``(T, N, K)`` log-probabilities (or logits when ``from_logits=True``).
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      ``(N, K)`` predictive probabilities.

    Raises:
      TypeError: if ``log_probs`` is not floating point.
      ValueError: as :func:`mean_log_probs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[[2.0, 0.0]], [[0.0, 2.0]]])
      >>> print(jnp.round(predictive_probs(logits, from_logits=True), 4))
      [[0.5 0.5]]

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    return jnp.exp(mean_log_probs(log_probs, from_logits=from_logits))


def predictive_entropy(log_probs, *, from_logits: bool = False) -> jax.Array:
    """Entropy of the predictive distribution (total uncertainty).

    ``H[p̄] = -sum_k p̄_k log p̄_k`` with ``p̄`` from :func:`mean_log_probs`, in nats.

    Args:
      log_probs: ``(T, N, K)`` log-probabilities (or logits when ``from_logits=True``).
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      ``(N,)`` entropies in ``[0, log K]``.

    Raises:
      TypeError: if ``log_probs`` is not floating point.
      ValueError: as :func:`mean_log_probs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
      >>> print(f"{float(predictive_entropy(log_probs)[0]):.4f}")  # log 2
      0.6931

    References:
      Shannon, C. E. "A Mathematical Theory of Communication", 1948.
      Depeweg, S., Hernández-Lobato, J. M., Doshi-Velez, F. and Udluft, S. "Decomposition
      of Uncertainty in Bayesian Deep Learning for Efficient and Risk-sensitive Learning",
      2018.
    """
    return _entropy(mean_log_probs(log_probs, from_logits=from_logits))


def _expected_entropy(log_probs):
    return jnp.mean(_entropy(log_probs), axis=0)


def expected_entropy(log_probs, *, from_logits: bool = False) -> jax.Array:
    """Mean entropy of the sampled distributions (aleatoric uncertainty).

    ``E_t H[p_t] = -(1/T) sum_t sum_k p_tk log p_tk``.

    Args:
      log_probs: ``(T, N, K)`` log-probabilities (or logits when ``from_logits=True``).
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      ``(N,)`` expected entropies in ``[0, log K]``.

    Raises:
      TypeError: if ``log_probs`` is not floating point.
      ValueError: as :func:`mean_log_probs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
      >>> print(f"{float(expected_entropy(log_probs)[0]):.4f}")
      0.3251

    References:
      Depeweg, S., Hernández-Lobato, J. M., Doshi-Velez, F. and Udluft, S. "Decomposition
      of Uncertainty in Bayesian Deep Learning for Efficient and Risk-sensitive Learning",
      2018.
    """
    return _expected_entropy(_check_log_probs(log_probs, from_logits, 3))


def _mutual_information(log_probs):
    mean_lp = _mean_log_probs(log_probs)
    return jnp.maximum(_entropy(mean_lp) - _expected_entropy(log_probs), 0)


def mutual_information(log_probs, *, from_logits: bool = False) -> jax.Array:
    """Mutual information between prediction and weights (epistemic uncertainty; BALD).

    ``I[y; w | x] = H[p̄] - E_t H[p_t]``, clipped at 0 to absorb rounding error. Zero when
    every sample predicts the same distribution; at most ``H[p̄] <= log K``.

    Args:
      log_probs: ``(T, N, K)`` log-probabilities (or logits when ``from_logits=True``).
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      ``(N,)`` mutual information in nats.

    Raises:
      TypeError: if ``log_probs`` is not floating point.
      ValueError: as :func:`mean_log_probs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
      >>> print(f"{float(mutual_information(log_probs)[0]):.4f}")  # 0.6931 - 0.3251
      0.3681

    References:
      Houlsby, N., Huszár, F., Ghahramani, Z. and Lengyel, M. "Bayesian Active Learning
      for Classification and Preference Learning", 2011.
      Gal, Y., Islam, R. and Ghahramani, Z. "Deep Bayesian Active Learning with Image
      Data", 2017.
    """
    return _mutual_information(_check_log_probs(log_probs, from_logits, 3))


def _variation_ratio(log_probs):
    num_samples = log_probs.shape[0]
    others = num_samples - jnp.max(_votes(log_probs), axis=-1)  # Exact integer count.
    return others.astype(log_probs.dtype) / num_samples


def variation_ratio(log_probs, *, from_logits: bool = False) -> jax.Array:
    """Fraction of samples that do not vote for the modal class.

    ``1 - max_k (1/T) #{t : argmax_j p_tj = k}``. Ties in a sample's argmax go to the
    lowest class index (as ``jnp.argmax``).

    Args:
      log_probs: ``(T, N, K)`` log-probabilities (or logits when ``from_logits=True``).
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      ``(N,)`` variation ratios in ``[0, 1 - 1/K]``.

    Raises:
      TypeError: if ``log_probs`` is not floating point.
      ValueError: as :func:`mean_log_probs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[[2.0, 0.0]], [[3.0, 0.0]], [[0.0, 1.0]], [[1.0, 0.0]]])
      >>> print(variation_ratio(logits, from_logits=True))
      [0.25]

    References:
      Freeman, L. C. "Elementary Applied Statistics", 1965.
      Gal, Y., Islam, R. and Ghahramani, Z. "Deep Bayesian Active Learning with Image
      Data", 2017.
    """
    return _variation_ratio(_check_log_probs(log_probs, from_logits, 3))


def class_variance(log_probs, *, from_logits: bool = False) -> jax.Array:
    """Per-class variance of the sampled probabilities.

    ``Var_t[p_tk] = (1/T) sum_t (p_tk - p̄_k)^2`` (population variance, ``ddof=0``).

    Args:
      log_probs: ``(T, N, K)`` log-probabilities (or logits when ``from_logits=True``).
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      ``(N, K)`` variances in ``[0, 1/4]``.

    Raises:
      TypeError: if ``log_probs`` is not floating point.
      ValueError: as :func:`mean_log_probs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
      >>> print(jnp.round(class_variance(log_probs), 4))
      [[0.16 0.16]]

    References:
      Kendall, A., Badrinarayanan, V. and Cipolla, R. "Bayesian SegNet: Model Uncertainty
      in Deep Convolutional Encoder-Decoder Architectures for Scene Understanding", 2017.
    """
    log_probs = _check_log_probs(log_probs, from_logits, 3)
    return jnp.var(jnp.exp(log_probs), axis=0)


class ClassificationUncertainty(NamedTuple):
    """Every classification summary of a set of Monte-Carlo samples.

    Attributes:
      mean_log_probs: ``(N, K)`` log predictive probabilities (:func:`mean_log_probs`).
      predictive_probs: ``(N, K)`` predictive probabilities.
      predictive_entropy: ``(N,)`` total uncertainty ``H[p̄]``.
      expected_entropy: ``(N,)`` aleatoric uncertainty ``E_t H[p_t]``.
      mutual_information: ``(N,)`` epistemic uncertainty (BALD).
      variation_ratio: ``(N,)`` fraction of samples not voting for the modal class.
      class_variance: ``(N, K)`` per-class variance of the sampled probabilities.
    """

    mean_log_probs: jax.Array
    predictive_probs: jax.Array
    predictive_entropy: jax.Array
    expected_entropy: jax.Array
    mutual_information: jax.Array
    variation_ratio: jax.Array
    class_variance: jax.Array


def classification_uncertainty(log_probs, *, from_logits: bool = False):
    """All classification summaries at once (validates the input once).

    Args:
      log_probs: ``(T, N, K)`` log-probabilities (or logits when ``from_logits=True``).
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      A :class:`ClassificationUncertainty` with the same values as the individual
      functions.

    Raises:
      TypeError: if ``log_probs`` is not floating point.
      ValueError: as :func:`mean_log_probs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
      >>> u = classification_uncertainty(log_probs)
      >>> print(f"{float(u.predictive_entropy[0]):.4f} {float(u.mutual_information[0]):.4f}")
      0.6931 0.3681

    References:
      Houlsby, N., Huszár, F., Ghahramani, Z. and Lengyel, M. "Bayesian Active Learning
      for Classification and Preference Learning", 2011.
    """
    log_probs = _check_log_probs(log_probs, from_logits, 3)
    mean_lp = _mean_log_probs(log_probs)
    total = _entropy(mean_lp)
    aleatoric = _expected_entropy(log_probs)
    return ClassificationUncertainty(
        mean_log_probs=mean_lp,
        predictive_probs=jnp.exp(mean_lp),
        predictive_entropy=total,
        expected_entropy=aleatoric,
        mutual_information=jnp.maximum(total - aleatoric, 0),
        variation_ratio=_variation_ratio(log_probs),
        class_variance=jnp.var(jnp.exp(log_probs), axis=0),
    )


class ClassificationSummary(NamedTuple):
    """Streaming sufficient statistics of classification samples (a pytree).

    Holds, for ``count`` samples seen so far: ``log_sum_probs = logsumexp_t log p_t``
    (``(N, K)``), ``sum_neg_entropy = sum_t sum_k p_tk log p_tk`` (``(N,)``), the running
    ``mean_probs`` and sum of squared deviations ``m2_probs`` (``(N, K)``, merged with Chan
    et al.'s pairwise formula so the variance does not cancel catastrophically), and
    ``votes`` (``(N, K)`` int32 argmax counts). :meth:`finalize` turns them into the same
    :class:`ClassificationUncertainty` as :func:`classification_uncertainty`; chunks may
    have any size. Works inside ``jax.jit`` and ``jax.lax.scan``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> logits = jax.random.normal(jax.random.key(0), (10, 3, 4))
      >>> s = ClassificationSummary.init(num_examples=3, num_classes=4)
      >>> for chunk in (logits[:4], logits[4:]):
      ...     s = s.update(chunk, from_logits=True)
      >>> streamed = s.finalize()
      >>> one_shot = classification_uncertainty(logits, from_logits=True)
      >>> bool(jnp.allclose(streamed.mutual_information, one_shot.mutual_information,
      ...                   atol=1e-6))
      True

    References:
      Chan, T. F., Golub, G. H. and LeVeque, R. J. "Updating Formulae and a Pairwise
      Algorithm for Computing Sample Variances", 1979.
    """

    count: jax.Array
    log_sum_probs: jax.Array
    sum_neg_entropy: jax.Array
    mean_probs: jax.Array
    m2_probs: jax.Array
    votes: jax.Array

    @classmethod
    def init(cls, num_examples: int, num_classes: int, dtype=jnp.float32):
        """An empty summary for ``num_examples`` examples and ``num_classes`` classes.

        Args:
          num_examples: ``N``.
          num_classes: ``K``.
          dtype: floating dtype of the accumulators; chunks are cast to it.

        Returns:
          A :class:`ClassificationSummary` with ``count == 0``.

        Raises:
          ValueError: if ``num_examples`` or ``num_classes`` is below 1.
        """
        for name, value in (("num_examples", num_examples), ("num_classes", num_classes)):
            if operator.index(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {name}={value}")
        shape = (num_examples, num_classes)
        return cls(
            count=jnp.zeros((), jnp.int32),
            log_sum_probs=jnp.full(shape, -jnp.inf, dtype),
            sum_neg_entropy=jnp.zeros((num_examples,), dtype),
            mean_probs=jnp.zeros(shape, dtype),
            m2_probs=jnp.zeros(shape, dtype),
            votes=jnp.zeros(shape, jnp.int32),
        )

    def update(self, log_probs, *, from_logits: bool = False) -> "ClassificationSummary":
        """Adds a chunk of ``(t, N, K)`` samples (any ``t >= 1``).

        Args:
          log_probs: ``(t, N, K)`` log-probabilities (or logits when ``from_logits=True``).
          from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

        Returns:
          The updated summary.

        Raises:
          TypeError: if ``log_probs`` is not floating point.
          ValueError: if the chunk's ``(N, K)`` differs from the summary's, or as
            :func:`mean_log_probs`.
        """
        log_probs = _check_log_probs(log_probs, from_logits, 3)
        if log_probs.shape[1:] != self.log_sum_probs.shape:
            raise ValueError(
                f"log_probs.shape={log_probs.shape} does not match the summary's (N, K)="
                f"{self.log_sum_probs.shape}: expected (t, *{self.log_sum_probs.shape})"
            )
        log_probs = log_probs.astype(self.log_sum_probs.dtype)
        count, mean, m2 = _merge_moments(
            self.count, self.mean_probs, self.m2_probs, jnp.exp(log_probs)
        )
        return ClassificationSummary(
            count=count,
            log_sum_probs=jnp.logaddexp(self.log_sum_probs, _logsumexp(log_probs, axis=0)),
            sum_neg_entropy=self.sum_neg_entropy - jnp.sum(_entropy(log_probs), axis=0),
            mean_probs=mean,
            m2_probs=m2,
            votes=self.votes + _votes(log_probs),
        )

    def finalize(self) -> ClassificationUncertainty:
        """The summaries of every sample seen.

        Returns:
          A :class:`ClassificationUncertainty`.

        Raises:
          ValueError: if the summary is concrete and has seen no samples.
        """
        _finite_count(self.count, "ClassificationSummary")
        n = self.count.astype(self.log_sum_probs.dtype)
        mean_lp = self.log_sum_probs - jnp.log(n)
        total = _entropy(mean_lp)
        aleatoric = -self.sum_neg_entropy / n
        return ClassificationUncertainty(
            mean_log_probs=mean_lp,
            predictive_probs=jnp.exp(mean_lp),
            predictive_entropy=total,
            expected_entropy=aleatoric,
            mutual_information=jnp.maximum(total - aleatoric, 0),
            variation_ratio=(self.count - jnp.max(self.votes, axis=-1)).astype(n.dtype) / n,
            class_variance=self.m2_probs / n,
        )


# --------------------------------------------------------------------------------------
# Regression.
# --------------------------------------------------------------------------------------


def predictive_mean(samples) -> jax.Array:
    """Monte-Carlo predictive mean ``E[y] ≈ (1/T) sum_t yhat_t``.

    Args:
      samples: ``(T, N)`` or ``(T, N, D)`` sampled predictions.

    Returns:
      ``(N,)`` or ``(N, D)`` means.

    Raises:
      TypeError: if ``samples`` is not floating point.
      ValueError: if ``samples`` is not 2-D or 3-D or has no samples.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(predictive_mean(jnp.array([[1.0, 2.0], [3.0, 6.0]])))
      [2. 4.]

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    return jnp.mean(_check_samples(samples), axis=0)


def epistemic_variance(samples) -> jax.Array:
    """Variance of the Monte-Carlo samples (model, or epistemic, uncertainty).

    ``(1/T) sum_t yhat_t^2 - E[y]^2`` per output (population variance, ``ddof=0``).

    Args:
      samples: ``(T, N)`` or ``(T, N, D)`` sampled predictions.

    Returns:
      ``(N,)`` or ``(N, D)`` variances.

    Raises:
      TypeError: if ``samples`` is not floating point.
      ValueError: if ``samples`` is not 2-D or 3-D or has no samples.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(epistemic_variance(jnp.array([[1.0, 2.0], [3.0, 6.0]])))
      [1. 4.]

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    return jnp.var(_check_samples(samples), axis=0)


def total_variance(samples, tau) -> jax.Array:
    """Predictive variance: epistemic variance plus the observation noise ``1/tau``.

    ``Var[y] ≈ tau^-1 + (1/T) sum_t yhat_t^2 - E[y]^2`` (Gal and Ghahramani, 2016, eq. 8).

    Args:
      samples: ``(T, N)`` or ``(T, N, D)`` sampled predictions.
      tau: scalar model precision (inverse observation-noise variance), ``> 0``.

    Returns:
      ``(N,)`` or ``(N, D)`` variances.

    Raises:
      TypeError: if ``samples`` is not floating point.
      ValueError: if ``samples`` is not 2-D or 3-D or has no samples, ``tau`` is not a
        scalar, or a concrete ``tau`` is not positive and finite.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(total_variance(jnp.array([[1.0, 2.0], [3.0, 6.0]]), tau=4.0))
      [1.25 4.25]

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    samples = _check_samples(samples)
    tau = _check_tau(tau, samples.dtype)
    return jnp.var(samples, axis=0) + 1 / tau


def predictive_log_likelihood(samples, y, tau, *, reduction: str = "mean") -> jax.Array:
    """Test log-likelihood under the Monte-Carlo Gaussian mixture (Gal's formula).

    ``ll_n = logsumexp_t(-tau/2 ||y_n - yhat_tn||^2) - log T - (D/2) log(2 pi)
    + (D/2) log tau``, i.e. ``log (1/T) sum_t N(y_n; yhat_tn, tau^-1 I)``. With ``(T, N)``
    samples (``D = 1``) this is exactly the formula of Gal and Ghahramani's code; with
    ``(T, N, D)`` samples each point's ``D`` outputs share one mixture (a joint density).

    Args:
      samples: ``(T, N)`` or ``(T, N, D)`` sampled predictions.
      y: targets of shape ``samples.shape[1:]``.
      tau: scalar model precision, ``> 0``.
      reduction: ``"mean"`` for the average over points (the reported test
        log-likelihood) or ``"none"`` for the ``(N,)`` per-point values.

    Returns:
      A scalar, or ``(N,)`` per-point log-likelihoods.

    Raises:
      TypeError: if ``samples`` or ``y`` is not floating point.
      ValueError: if ``y.shape != samples.shape[1:]``, ``reduction`` is unknown, or as
        :func:`total_variance`.

    Examples:
      >>> import jax.numpy as jnp
      >>> samples = jnp.array([[0.0], [2.0]])  # T=2 samples, N=1 point
      >>> ll = predictive_log_likelihood(samples, jnp.array([1.0]), tau=1.0)
      >>> print(f"{float(ll):.4f}")  # log N(1; 0, 1) = -0.5 log(2 pi) - 0.5
      -1.4189

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
      Hernández-Lobato, J. M. and Adams, R. P. "Probabilistic Backpropagation for Scalable
      Learning of Bayesian Neural Networks", 2015.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got reduction={reduction!r}")
    samples = _check_samples(samples)
    y = _check_targets(y, samples.shape[1:], f"samples.shape={samples.shape}", samples.dtype)
    tau = _check_tau(tau, samples.dtype)
    dim = 1 if samples.ndim == 2 else samples.shape[-1]
    lse = jax.nn.logsumexp(_gaussian_log_kernel(samples, y, tau), axis=0)
    ll = _log_likelihood_from_lse(lse, samples.shape[0], dim, tau)
    return jnp.mean(ll) if reduction == "mean" else ll


def rmse(pred, y) -> jax.Array:
    """Root mean squared error ``sqrt(mean((pred - y)^2))`` over every element.

    Use it for the deterministic (weight-scaling) prediction, or for the Monte-Carlo
    prediction ``rmse(predictive_mean(samples), y)``.

    Args:
      pred: predictions, any shape.
      y: targets of the same shape.

    Returns:
      A scalar.

    Raises:
      TypeError: if ``pred`` or ``y`` is not floating point.
      ValueError: if the shapes differ.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(f"{float(rmse(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0]))):.4f}")
      1.4142

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    pred = _float_array(pred, "pred")
    y = _check_targets(y, pred.shape, f"pred.shape={pred.shape}", pred.dtype)
    return _rmse(pred, y)


class RegressionUncertainty(NamedTuple):
    """Every regression summary of a set of Monte-Carlo samples.

    Attributes:
      mean: ``(N,)`` or ``(N, D)`` predictive mean.
      epistemic_variance: variance of the samples, same shape as ``mean``.
      total_variance: ``epistemic_variance + 1/tau``.
      log_likelihood: scalar mean test log-likelihood, or ``None`` without targets.
      rmse: scalar RMSE of ``mean``, or ``None`` without targets.
    """

    mean: jax.Array
    epistemic_variance: jax.Array
    total_variance: jax.Array
    log_likelihood: jax.Array | None
    rmse: jax.Array | None


def regression_uncertainty(samples, tau, y=None) -> RegressionUncertainty:
    """All regression summaries at once.

    Args:
      samples: ``(T, N)`` or ``(T, N, D)`` sampled predictions.
      tau: scalar model precision, ``> 0``.
      y: optional targets of shape ``samples.shape[1:]``; without them the
        ``log_likelihood`` and ``rmse`` fields are ``None``.

    Returns:
      A :class:`RegressionUncertainty`.

    Raises:
      TypeError: if ``samples`` or ``y`` is not floating point.
      ValueError: as :func:`predictive_log_likelihood`.

    Examples:
      >>> import jax.numpy as jnp
      >>> u = regression_uncertainty(jnp.array([[0.0], [2.0]]), tau=1.0, y=jnp.array([1.0]))
      >>> print(u.mean, u.total_variance, f"{float(u.rmse):.1f}")
      [1.] [2.] 0.0

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    samples = _check_samples(samples)
    tau = _check_tau(tau, samples.dtype)
    mean = jnp.mean(samples, axis=0)
    variance = jnp.var(samples, axis=0)
    log_likelihood = error = None
    if y is not None:
        y = _check_targets(y, samples.shape[1:], f"samples.shape={samples.shape}", mean.dtype)
        lse = jax.nn.logsumexp(_gaussian_log_kernel(samples, y, tau), axis=0)
        dim = 1 if samples.ndim == 2 else samples.shape[-1]
        log_likelihood = jnp.mean(_log_likelihood_from_lse(lse, samples.shape[0], dim, tau))
        error = _rmse(mean, y)
    return RegressionUncertainty(mean, variance, variance + 1 / tau, log_likelihood, error)


class RegressionSummary(NamedTuple):
    """Streaming sufficient statistics of regression samples (a pytree).

    Holds ``count``, the running ``mean`` and sum of squared deviations ``m2`` (merged
    with Chan et al.'s pairwise formula), the precision ``tau``, and, when targets ``y``
    were given to :meth:`init`, ``log_sum_lik = logsumexp_t(-tau/2 ||y - yhat_t||^2)``
    per point. :meth:`finalize` gives the same :class:`RegressionUncertainty` as
    :func:`regression_uncertainty`. Works inside ``jax.jit`` and ``jax.lax.scan``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> samples = jax.random.normal(jax.random.key(0), (10, 5))
      >>> y = jnp.zeros(5)
      >>> s = RegressionSummary.init((5,), tau=2.0, y=y)
      >>> for chunk in (samples[:3], samples[3:]):
      ...     s = s.update(chunk)
      >>> streamed, one_shot = s.finalize(), regression_uncertainty(samples, 2.0, y)
      >>> bool(jnp.allclose(streamed.log_likelihood, one_shot.log_likelihood, atol=1e-6))
      True

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
      Chan, T. F., Golub, G. H. and LeVeque, R. J. "Updating Formulae and a Pairwise
      Algorithm for Computing Sample Variances", 1979.
    """

    count: jax.Array
    mean: jax.Array
    m2: jax.Array
    tau: jax.Array
    y: jax.Array | None
    log_sum_lik: jax.Array | None

    @classmethod
    def init(cls, shape, tau, *, y=None, dtype=jnp.float32) -> "RegressionSummary":
        """An empty summary for per-sample predictions of ``shape`` (``(N,)`` or ``(N, D)``).

        Args:
          shape: shape of one sample, ``(N,)`` or ``(N, D)``.
          tau: scalar model precision, ``> 0``.
          y: optional targets of ``shape`` for the log-likelihood and RMSE.
          dtype: floating dtype of the accumulators; chunks are cast to it.

        Returns:
          A :class:`RegressionSummary` with ``count == 0``.

        Raises:
          ValueError: if ``shape`` is not 1-D or 2-D, ``y.shape != shape``, or as
            :func:`total_variance` for ``tau``.
        """
        shape = tuple(operator.index(s) for s in shape)
        if len(shape) not in (1, 2):
            raise ValueError(f"shape must be (N,) or (N, D), got shape={shape}")
        log_sum_lik = None
        if y is not None:
            y = _check_targets(y, shape, f"shape={shape}", dtype)
            log_sum_lik = jnp.full(shape[:1], -jnp.inf, dtype)
        return cls(
            count=jnp.zeros((), jnp.int32),
            mean=jnp.zeros(shape, dtype),
            m2=jnp.zeros(shape, dtype),
            tau=_check_tau(tau, dtype),
            y=y,
            log_sum_lik=log_sum_lik,
        )

    def update(self, samples) -> "RegressionSummary":
        """Adds a chunk of ``(t, *shape)`` samples (any ``t >= 1``).

        Args:
          samples: ``(t, N)`` or ``(t, N, D)`` sampled predictions.

        Returns:
          The updated summary.

        Raises:
          TypeError: if ``samples`` is not floating point.
          ValueError: if ``samples.shape[1:]`` differs from the summary's shape.
        """
        samples = _check_samples(samples)
        if samples.shape[1:] != self.mean.shape:
            raise ValueError(
                f"samples.shape={samples.shape} does not match the summary's shape="
                f"{self.mean.shape}: expected (t, *{self.mean.shape})"
            )
        samples = samples.astype(self.mean.dtype)
        count, mean, m2 = _merge_moments(self.count, self.mean, self.m2, samples)
        log_sum_lik = self.log_sum_lik
        if self.y is not None:
            kernel = _gaussian_log_kernel(samples, self.y, self.tau)
            log_sum_lik = jnp.logaddexp(log_sum_lik, jax.nn.logsumexp(kernel, axis=0))
        return RegressionSummary(count, mean, m2, self.tau, self.y, log_sum_lik)

    def finalize(self) -> RegressionUncertainty:
        """The summaries of every sample seen.

        Returns:
          A :class:`RegressionUncertainty` (``log_likelihood`` and ``rmse`` are ``None``
          without targets).

        Raises:
          ValueError: if the summary is concrete and has seen no samples.
        """
        _finite_count(self.count, "RegressionSummary")
        variance = self.m2 / self.count.astype(self.m2.dtype)
        log_likelihood = error = None
        if self.y is not None:
            dim = 1 if self.mean.ndim == 1 else self.mean.shape[-1]
            ll = _log_likelihood_from_lse(self.log_sum_lik, self.count, dim, self.tau)
            log_likelihood = jnp.mean(ll)
            error = _rmse(self.mean, self.y)
        return RegressionUncertainty(
            self.mean, variance, variance + 1 / self.tau, log_likelihood, error
        )


# --------------------------------------------------------------------------------------
# Quality and calibration of the final predictive distribution (N, K).
# --------------------------------------------------------------------------------------


def accuracy(probs, labels) -> jax.Array:
    """Fraction of examples whose most probable class is the label.

    ``(1/N) sum_n [argmax_k p_nk = y_n]`` (ties go to the lowest class index).

    Args:
      probs: ``(N, K)`` predictive probabilities.
      labels: ``(N,)`` integer labels in ``[0, K)``.

    Returns:
      A scalar in ``[0, 1]``.

    Raises:
      TypeError: if ``probs`` is not floating point or ``labels`` not integer.
      ValueError: if ``labels.shape != probs.shape[:1]``, or (when concrete) ``probs``
        has negative entries, rows not summing to 1 within ``atol=1e-3`` (``1e-2`` for
        16-bit floats) or labels out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
      >>> print(f"{float(accuracy(probs, jnp.array([0, 1, 1]))):.4f}")
      0.6667

    References:
      Hendrycks, D. and Gimpel, K. "A Baseline for Detecting Misclassified and
      Out-of-Distribution Examples in Neural Networks", 2017.
    """
    probs = _check_probs(probs)
    labels = _check_labels(labels, probs.shape, "probs")
    return jnp.mean((jnp.argmax(probs, axis=-1) == labels).astype(probs.dtype))


def nll(probs, labels) -> jax.Array:
    """Mean negative log-probability of the true label.

    ``-(1/N) sum_n log p_{n, y_n}``; ``inf`` when a true label has probability 0. Prefer
    :func:`nll_from_log_probs` with :func:`mean_log_probs` for accuracy at tiny
    probabilities.

    Args:
      probs: ``(N, K)`` predictive probabilities.
      labels: ``(N,)`` integer labels in ``[0, K)``.

    Returns:
      A scalar.

    Raises:
      TypeError: if ``probs`` is not floating point or ``labels`` not integer.
      ValueError: as :func:`accuracy`.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.5, 0.5], [0.25, 0.75]])
      >>> print(f"{float(nll(probs, jnp.array([0, 1]))):.4f}")  # (log 2 + log 4/3) / 2
      0.4904

    References:
      Gneiting, T. and Raftery, A. E. "Strictly Proper Scoring Rules, Prediction, and
      Estimation", 2007.
    """
    probs = _check_probs(probs)
    labels = _check_labels(labels, probs.shape, "probs")
    picked = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    return -jnp.mean(jnp.log(picked))


def nll_from_log_probs(log_probs, labels, *, from_logits: bool = False) -> jax.Array:
    """Mean negative log-probability of the true label, from log-probabilities.

    ``-(1/N) sum_n log p_{n, y_n}``.

    Args:
      log_probs: ``(N, K)`` log predictive probabilities (e.g. :func:`mean_log_probs`),
        or logits when ``from_logits=True``.
      labels: ``(N,)`` integer labels in ``[0, K)``.
      from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

    Returns:
      A scalar.

    Raises:
      TypeError: if ``log_probs`` is not floating point or ``labels`` not integer.
      ValueError: if ``labels.shape != log_probs.shape[:1]``, or (when concrete)
        ``exp(log_probs)`` rows do not sum to 1 within ``atol=1e-3`` (``1e-2`` for
        16-bit floats) or labels are out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[0.0, 0.0], [0.0, jnp.log(3.0)]])
      >>> print(f"{float(nll_from_log_probs(logits, jnp.array([0, 1]), from_logits=True)):.4f}")
      0.4904

    References:
      Gneiting, T. and Raftery, A. E. "Strictly Proper Scoring Rules, Prediction, and
      Estimation", 2007.
    """
    log_probs = _check_log_probs(log_probs, from_logits, 2)
    labels = _check_labels(labels, log_probs.shape, "log_probs")
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0])


def brier_score(probs, labels) -> jax.Array:
    """Multi-class Brier score ``(1/N) sum_n sum_k (p_nk - [y_n = k])^2``.

    In ``[0, 2]``. For ``K = 2`` this is twice scikit-learn's binary ``brier_score_loss``.

    Args:
      probs: ``(N, K)`` predictive probabilities.
      labels: ``(N,)`` integer labels in ``[0, K)``.

    Returns:
      A scalar.

    Raises:
      TypeError: if ``probs`` is not floating point or ``labels`` not integer.
      ValueError: as :func:`accuracy`.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.5, 0.5], [0.25, 0.75]])
      >>> print(f"{float(brier_score(probs, jnp.array([0, 1]))):.4f}")  # (0.5 + 0.125) / 2
      0.3125

    References:
      Brier, G. W. "Verification of Forecasts Expressed in Terms of Probability", 1950.
    """
    probs = _check_probs(probs)
    labels = _check_labels(labels, probs.shape, "probs")
    onehot = jax.nn.one_hot(labels, probs.shape[-1], dtype=probs.dtype)
    return jnp.mean(jnp.sum(jnp.square(probs - onehot), axis=-1))


class ReliabilityData(NamedTuple):
    """Per-bin statistics of a reliability diagram.

    Attributes:
      bin_edges: ``(B + 1,)`` bin boundaries. Equal-width bin ``b`` holds confidences in
        ``(edges[b], edges[b+1]]`` (the first bin also holds ``0``). For equal-mass bins,
        the interior edges are the confidence of each bin's first (lowest) member; bins
        may then share edges when confidences tie.
      confidence: ``(B,)`` mean confidence (max probability) per bin, 0 where empty.
      accuracy: ``(B,)`` accuracy per bin, 0 where empty.
      count: ``(B,)`` int32 number of examples per bin.
    """

    bin_edges: jax.Array
    confidence: jax.Array
    accuracy: jax.Array
    count: jax.Array


def _binned(probs, labels, num_bins: int, binning: str):
    """(edges, count, sum of confidence, sum of correct) per bin."""
    probs = _check_probs(probs)
    labels = _check_labels(labels, probs.shape, "probs")
    num_bins = _check_num_bins(num_bins)
    _check_binning(binning)
    n = probs.shape[0]
    confidence = jnp.max(probs, axis=-1)
    correct = (jnp.argmax(probs, axis=-1) == labels).astype(probs.dtype)
    if binning == "equal_width":
        edges = jnp.linspace(0.0, 1.0, num_bins + 1, dtype=probs.dtype)
        # searchsorted(side="left") over interior edges puts c in bin b when
        # edges[b] < c <= edges[b+1] (and c <= edges[1] in bin 0).
        index = jnp.searchsorted(edges[1:-1], confidence, side="left")
    else:
        order = jnp.argsort(confidence, stable=True)
        rank = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
        index = rank * num_bins // n
        first = (np.arange(1, num_bins) * n + num_bins - 1) // num_bins
        interior = confidence[order][np.minimum(first, n - 1)]
        zero, one = jnp.zeros((1,), probs.dtype), jnp.ones((1,), probs.dtype)
        edges = jnp.concatenate([zero, interior, one])
    count = jax.ops.segment_sum(jnp.ones((n,), jnp.int32), index, num_segments=num_bins)
    conf_sum = jax.ops.segment_sum(confidence, index, num_segments=num_bins)
    correct_sum = jax.ops.segment_sum(correct, index, num_segments=num_bins)
    return edges, count, conf_sum, correct_sum


def reliability_data(probs, labels, *, num_bins: int = 15, binning: str = "equal_width"):
    """Per-bin confidence, accuracy and count for a reliability diagram.

    Confidence is ``max_k p_nk`` and an example is correct when ``argmax_k p_nk = y_n``.

    Args:
      probs: ``(N, K)`` predictive probabilities.
      labels: ``(N,)`` integer labels in ``[0, K)``.
      num_bins: number of bins ``B >= 1`` (static under jit).
      binning: ``"equal_width"`` (bins ``(b/B, (b+1)/B]`` of the confidence) or
        ``"equal_mass"`` (adaptive: sort by confidence, stable, and give bin ``b`` the
        examples of rank ``r`` with ``floor(r B / N) = b``, so bin sizes differ by at most
        one; tied confidences may fall in neighbouring bins). Static under jit.

    Returns:
      A :class:`ReliabilityData`.

    Raises:
      TypeError: if ``probs`` is not floating point, ``labels`` not integer, or
        ``num_bins`` not an int.
      ValueError: if ``labels.shape != probs.shape[:1]``, ``num_bins < 1``, ``binning``
        is unknown, or (when concrete) ``probs`` has negative entries, rows not summing
        to 1 within ``atol=1e-3`` (``1e-2`` for 16-bit floats) or labels out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.35, 0.65]])
      >>> data = reliability_data(probs, jnp.array([0, 1, 1, 1]), num_bins=2)
      >>> print(data.count.tolist(), [f"{c:.4f}" for c in data.confidence.tolist()])
      [0, 4] ['0.0000', '0.7375']
      >>> print([f"{a:.4f}" for a in data.accuracy.tolist()])
      ['0.0000', '0.7500']

    References:
      Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. "On Calibration of Modern Neural
      Networks", 2017.
      DeGroot, M. H. and Fienberg, S. E. "The Comparison and Evaluation of Forecasters",
      1983.
    """
    edges, count, conf_sum, correct_sum = _binned(probs, labels, num_bins, binning)
    safe = jnp.maximum(count, 1).astype(conf_sum.dtype)
    return ReliabilityData(edges, conf_sum / safe, correct_sum / safe, count)


def expected_calibration_error(
    probs, labels, *, num_bins: int = 15, binning: str = "equal_width"
) -> jax.Array:
    """Expected calibration error (ECE).

    ``ECE = sum_b (n_b / N) |acc_b - conf_b| = (1/N) sum_b |sum_{n in b} (correct_n -
    conf_n)|``, with confidence ``max_k p_nk`` binned as described below.

    Args:
      probs: ``(N, K)`` predictive probabilities.
      labels: ``(N,)`` integer labels in ``[0, K)``.
      num_bins: number of bins ``B >= 1`` (static under jit).
      binning: ``"equal_width"`` (bins ``(b/B, (b+1)/B]`` of the confidence) or
        ``"equal_mass"`` (adaptive: sort by confidence, stable, and give bin ``b`` the
        examples of rank ``r`` with ``floor(r B / N) = b``, so bin sizes differ by at most
        one; tied confidences may fall in neighbouring bins). Static under jit.

    Returns:
      A scalar in ``[0, 1]``.

    Raises:
      TypeError: if ``probs`` is not floating point, ``labels`` not integer, or
        ``num_bins`` not an int.
      ValueError: if ``labels.shape != probs.shape[:1]``, ``num_bins < 1``, ``binning``
        is unknown, or (when concrete) ``probs`` has negative entries, rows not summing
        to 1 within ``atol=1e-3`` (``1e-2`` for 16-bit floats) or labels out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.35, 0.65]])
      >>> labels = jnp.array([0, 1, 1, 1])
      >>> print(f"{float(expected_calibration_error(probs, labels, num_bins=2)):.4f}")
      0.0125
      >>> # 4 bins: (0.75, 1] holds 0.9, 0.8 (conf 0.85, acc 0.5); (0.5, 0.75] holds
      >>> # 0.6, 0.65 (conf 0.625, acc 1.0); ECE = 0.5 * 0.35 + 0.5 * 0.375.
      >>> print(f"{float(expected_calibration_error(probs, labels, num_bins=4)):.4f}")
      0.3625

    References:
      Naeini, M. P., Cooper, G. F. and Hauskrecht, M. "Obtaining Well Calibrated
      Probabilities Using Bayesian Binning", 2015.
      Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. "On Calibration of Modern Neural
      Networks", 2017.
      Nixon, J., Dusenberry, M., Zhang, L., Jerfel, G. and Tran, D. "Measuring
      Calibration in Deep Learning", 2019.
    """
    _, _, conf_sum, correct_sum = _binned(probs, labels, num_bins, binning)
    return jnp.sum(jnp.abs(correct_sum - conf_sum)) / jnp.shape(probs)[0]


def maximum_calibration_error(
    probs, labels, *, num_bins: int = 15, binning: str = "equal_width"
) -> jax.Array:
    """Maximum calibration error (MCE) over non-empty bins.

    ``MCE = max_{b : n_b > 0} |acc_b - conf_b|``.

    Args:
      probs: ``(N, K)`` predictive probabilities.
      labels: ``(N,)`` integer labels in ``[0, K)``.
      num_bins: number of bins ``B >= 1`` (static under jit).
      binning: ``"equal_width"`` (bins ``(b/B, (b+1)/B]`` of the confidence) or
        ``"equal_mass"`` (adaptive: sort by confidence, stable, and give bin ``b`` the
        examples of rank ``r`` with ``floor(r B / N) = b``, so bin sizes differ by at most
        one; tied confidences may fall in neighbouring bins). Static under jit.

    Returns:
      A scalar in ``[0, 1]``.

    Raises:
      TypeError: if ``probs`` is not floating point, ``labels`` not integer, or
        ``num_bins`` not an int.
      ValueError: if ``labels.shape != probs.shape[:1]``, ``num_bins < 1``, ``binning``
        is unknown, or (when concrete) ``probs`` has negative entries, rows not summing
        to 1 within ``atol=1e-3`` (``1e-2`` for 16-bit floats) or labels out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.35, 0.65]])
      >>> labels = jnp.array([0, 1, 1, 1])
      >>> print(f"{float(maximum_calibration_error(probs, labels, num_bins=4)):.4f}")
      0.3750

    References:
      Naeini, M. P., Cooper, G. F. and Hauskrecht, M. "Obtaining Well Calibrated
      Probabilities Using Bayesian Binning", 2015.
    """
    _, count, conf_sum, correct_sum = _binned(probs, labels, num_bins, binning)
    gap = jnp.abs(correct_sum - conf_sum) / jnp.maximum(count, 1).astype(conf_sum.dtype)
    return jnp.max(gap)  # Empty bins have gap 0 and never win.


# --------------------------------------------------------------------------------------
# Separating two groups (e.g. misclassified vs correct, in-distribution vs shifted).
# --------------------------------------------------------------------------------------


def _sorted_counts(scores, labels):
    """Ascending scores, cumulative positives (length N+1) and tie-group boundaries."""
    order = jnp.argsort(scores)
    s = scores[order]
    y = labels[order]
    cum_pos = jnp.concatenate([jnp.zeros((1,), y.dtype), jnp.cumsum(y)])
    left = jnp.searchsorted(s, s, side="left")
    right = jnp.searchsorted(s, s, side="right")
    return y, cum_pos, left, right


def auroc(scores, labels) -> jax.Array:
    """Area under the ROC curve for telling positives (label 1) by a higher score.

    ``AUROC = P(s_pos > s_neg) + 0.5 P(s_pos = s_neg)`` over all positive/negative pairs
    (the Mann-Whitney statistic), which equals scikit-learn's ``roc_auc_score`` including
    its treatment of ties (a tie group is one ROC step, integrated by the trapezoid rule).

    Args:
      scores: ``(N,)`` scores, higher meaning "more likely positive" (e.g. predictive
        entropy to detect shifted inputs).
      labels: ``(N,)`` bool or 0/1 integer labels.

    Returns:
      A scalar in ``[0, 1]`` (NaN under jit when one class is absent).

    Raises:
      TypeError: if ``labels`` is neither bool nor integer.
      ValueError: if the shapes differ or ``scores`` is not 1-D, or (when concrete)
        labels are not 0/1, ``scores`` contains NaN, or only one class is present.

    Examples:
      >>> import jax.numpy as jnp
      >>> scores = jnp.array([0.1, 0.4, 0.35, 0.8])
      >>> print(f"{float(auroc(scores, jnp.array([0, 0, 1, 1]))):.4f}")
      0.7500

    References:
      Hanley, J. A. and McNeil, B. J. "The Meaning and Use of the Area under a Receiver
      Operating Characteristic (ROC) Curve", 1982.
      Fawcett, T. "An Introduction to ROC Analysis", 2006.
    """
    scores, labels = _check_binary(scores, labels, need_negatives=True)
    y, cum_pos, left, right = _sorted_counts(scores, labels)
    num_pos = cum_pos[-1]
    pos_above = num_pos - cum_pos[right]
    pos_tied = cum_pos[right] - cum_pos[left]
    num_neg = y.shape[0] - num_pos
    return jnp.sum((1 - y) * (pos_above + 0.5 * pos_tied)) / num_pos / num_neg


def average_precision(scores, labels) -> jax.Array:
    """Average precision (area under the precision-recall curve, step-wise).

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds, descending,
    where ``P_k`` and ``R_k`` are precision and recall of ``score >= threshold_k``;
    equivalently the mean over positives of the precision at their score. Equals
    scikit-learn's ``average_precision_score``, ties included. Unlike scikit-learn (which
    warns and returns 0), labels without positives raise.

    Args:
      scores: ``(N,)`` scores, higher meaning "more likely positive".
      labels: ``(N,)`` bool or 0/1 integer labels.

    Returns:
      A scalar in ``[0, 1]`` (NaN under jit when there are no positives).

    Raises:
      TypeError: if ``labels`` is neither bool nor integer.
      ValueError: if the shapes differ or ``scores`` is not 1-D, or (when concrete)
        labels are not 0/1, ``scores`` contains NaN, or there are no positives.

    Examples:
      >>> import jax.numpy as jnp
      >>> scores = jnp.array([0.1, 0.4, 0.35, 0.8])
      >>> print(f"{float(average_precision(scores, jnp.array([0, 0, 1, 1]))):.4f}")
      0.8333

    References:
      Davis, J. and Goadrich, M. "The Relationship Between Precision-Recall and ROC
      Curves", 2006.
      Hendrycks, D. and Gimpel, K. "A Baseline for Detecting Misclassified and
      Out-of-Distribution Examples in Neural Networks", 2017.
    """
    scores, labels = _check_binary(scores, labels, need_negatives=False)
    y, cum_pos, left, _ = _sorted_counts(scores, labels)
    num_pos = cum_pos[-1]
    at_or_above = (y.shape[0] - left).astype(y.dtype)
    precision = (num_pos - cum_pos[left]) / at_or_above
    return jnp.sum(y * precision) / num_pos
