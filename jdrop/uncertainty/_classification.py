"""Classification metrics: Monte-Carlo uncertainty of ``(T, N, K)`` samples, and scores.

Conventions:

* Monte-Carlo samples are stacked on a **leading** axis. Classification samples are
  normalised log-probabilities ``log_probs`` of shape ``(T, N, K)`` (``T`` samples, ``N``
  examples, ``K`` classes); every function that takes them also takes ``from_logits=True``,
  in which case the input is unnormalised logits and ``jax.nn.log_softmax`` is applied
  first (so no question of invalid probabilities arises). Pass ``jnp.log(probs)`` when you
  hold probabilities.
* Quality metrics (:func:`accuracy`, :func:`nll`, :func:`brier_score`) take the final
  predictive distribution ``probs`` of shape ``(N, K)`` (e.g. :func:`predictive_probs`)
  and integer ``labels`` of shape ``(N,)``.
* All means over Monte-Carlo samples are population means (divide by ``T``).

Input checks are described in :mod:`jdrop.uncertainty._inputs`. Static options
(``from_logits``) must be marked static when jitting.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jdrop.uncertainty._inputs import check_labels, check_log_probs, check_probs

__all__ = [
    "ClassificationUncertainty",
    "accuracy",
    "brier_score",
    "class_variance",
    "classification_uncertainty",
    "expected_entropy",
    "mean_log_probs",
    "mutual_information",
    "nll",
    "nll_from_log_probs",
    "predictive_entropy",
    "predictive_probs",
    "variation_ratio",
]


# --------------------------------------------------------------------------------------
# Numerical pieces shared with the streaming summary (jdrop.uncertainty._summaries).
# --------------------------------------------------------------------------------------


def entropy_from_log_probs(log_p: jax.Array, axis: int = -1) -> jax.Array:
    """-sum p log p from log p, with 0 log 0 = 0 and NaN-free gradients; NaN propagates."""
    finite = log_p != -jnp.inf  # True for NaN: a NaN log-probability gives a NaN entropy
    safe = jnp.where(finite, log_p, 0)
    return -jnp.sum(jnp.where(finite, jnp.exp(safe) * safe, 0), axis=axis)


def safe_logsumexp(x: jax.Array, axis: int = 0) -> jax.Array:
    """``jax.nn.logsumexp`` whose gradient is 0, not NaN, where every term is ``-inf``."""
    empty = jnp.all(x == -jnp.inf, axis=axis, keepdims=True)
    out = jax.nn.logsumexp(jnp.where(empty, 0, x), axis=axis, keepdims=True)
    return jnp.squeeze(jnp.where(empty, -jnp.inf, out), axis=axis)


def _mean_log_probs(log_probs: jax.Array) -> jax.Array:
    """``logsumexp_t log p_t - log T`` of checked ``(T, N, K)`` log-probabilities."""
    return safe_logsumexp(log_probs, axis=0) - math.log(log_probs.shape[0])


def vote_counts(log_probs: jax.Array) -> jax.Array:
    """Counts (N, K) of samples whose argmax is each class."""
    num_classes = log_probs.shape[-1]
    return jnp.sum(jax.nn.one_hot(jnp.argmax(log_probs, axis=-1), num_classes, dtype=jnp.int32), 0)

# --------------------------------------------------------------------------------------
# Uncertainty of (T, N, K) Monte-Carlo log-probabilities.
# --------------------------------------------------------------------------------------


def mean_log_probs(log_probs, *, from_logits: bool = False) -> jax.Array:
    r"""Log of the Monte-Carlo predictive distribution, computed in log space.

    .. math::

       \log \bar p(y = k \mid x_n) = \operatorname{logsumexp}_{t=1}^{T} \log p_t(y = k \mid x_n)
       - \log T,

    the log of :math:`\bar p = \frac{1}{T} \sum_t p_t`; never exponentiates the samples, so
    it stays accurate for very confident (or very unsure) samples.

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
    log_probs = check_log_probs(log_probs, from_logits, 3)
    return _mean_log_probs(log_probs)


def predictive_probs(log_probs, *, from_logits: bool = False) -> jax.Array:
    r"""Monte-Carlo predictive distribution :math:`\bar p = \frac{1}{T} \sum_{t=1}^{T} p_t`.

    Computed as ``exp(mean_log_probs(log_probs))``.

    Args:
      log_probs, from_logits: as :func:`mean_log_probs`.

    Returns:
      ``(N, K)`` predictive probabilities.

    Raises:
      TypeError, ValueError: as :func:`mean_log_probs`.

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
    r"""Entropy of the predictive distribution (total uncertainty).

    :math:`\mathbb{H}[\bar p] = -\sum_k \bar p_k \log \bar p_k` with :math:`\bar p` from
    :func:`mean_log_probs`, in nats.

    Args:
      log_probs, from_logits: as :func:`mean_log_probs`.

    Returns:
      ``(N,)`` entropies in :math:`[0, \log K]`.

    Raises:
      TypeError, ValueError: as :func:`mean_log_probs`.

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
    return entropy_from_log_probs(mean_log_probs(log_probs, from_logits=from_logits))


def _expected_entropy(log_probs):
    return jnp.mean(entropy_from_log_probs(log_probs), axis=0)


def expected_entropy(log_probs, *, from_logits: bool = False) -> jax.Array:
    r"""Mean entropy of the sampled distributions (aleatoric uncertainty).

    .. math::

       \mathbb{E}_t\, \mathbb{H}[p_t] = -\frac{1}{T} \sum_{t=1}^{T} \sum_k p_{tk} \log p_{tk}.

    Args:
      log_probs, from_logits: as :func:`mean_log_probs`.

    Returns:
      ``(N,)`` expected entropies in :math:`[0, \log K]`.

    Raises:
      TypeError, ValueError: as :func:`mean_log_probs`.

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
    return _expected_entropy(check_log_probs(log_probs, from_logits, 3))


def _mutual_information(log_probs):
    mean_lp = _mean_log_probs(log_probs)
    return jnp.maximum(entropy_from_log_probs(mean_lp) - _expected_entropy(log_probs), 0)


def mutual_information(log_probs, *, from_logits: bool = False) -> jax.Array:
    r"""Mutual information between prediction and weights (epistemic uncertainty; BALD).

    .. math::

       \mathbb{I}[y; w \mid x] = \mathbb{H}[\bar p] - \mathbb{E}_t\, \mathbb{H}[p_t],

    clipped at 0 to absorb rounding error. Zero when every sample predicts the same
    distribution; at most :math:`\mathbb{H}[\bar p] \le \log K`.

    Args:
      log_probs, from_logits: as :func:`mean_log_probs`.

    Returns:
      ``(N,)`` mutual information in nats.

    Raises:
      TypeError, ValueError: as :func:`mean_log_probs`.

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
    return _mutual_information(check_log_probs(log_probs, from_logits, 3))


def _variation_ratio(log_probs):
    num_samples = log_probs.shape[0]
    others = num_samples - jnp.max(vote_counts(log_probs), axis=-1)  # Exact integer count.
    ratio = others.astype(log_probs.dtype) / num_samples
    return _nan_where_nan(ratio, jnp.any(jnp.isnan(log_probs), axis=(0, -1)))


def _nan_where_nan(value, is_nan):
    """``value`` with NaN where ``is_nan``: a NaN input never reads as certainty."""
    return jnp.where(is_nan, jnp.asarray(jnp.nan, value.dtype), value)


def variation_ratio(log_probs, *, from_logits: bool = False) -> jax.Array:
    r"""Fraction of samples that do not vote for the modal class.

    :math:`1 - \max_k \frac{1}{T} \left|\{t : \arg\max_j p_{tj} = k\}\right|`. Ties in a
    sample's argmax go to the lowest class index (as ``jnp.argmax``).

    Args:
      log_probs, from_logits: as :func:`mean_log_probs`.

    Returns:
      ``(N,)`` variation ratios in ``[0, 1 - 1/K]``.

    Raises:
      TypeError, ValueError: as :func:`mean_log_probs`.

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
    return _variation_ratio(check_log_probs(log_probs, from_logits, 3))


def class_variance(log_probs, *, from_logits: bool = False) -> jax.Array:
    r"""Per-class variance of the sampled probabilities.

    :math:`\mathrm{Var}_t[p_{tk}] = \frac{1}{T} \sum_t (p_{tk} - \bar p_k)^2` (population
    variance, ``ddof=0``).

    Args:
      log_probs, from_logits: as :func:`mean_log_probs`.

    Returns:
      ``(N, K)`` variances in ``[0, 1/4]``.

    Raises:
      TypeError, ValueError: as :func:`mean_log_probs`.

    Examples:
      >>> import jax.numpy as jnp
      >>> log_probs = jnp.log(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
      >>> print(jnp.round(class_variance(log_probs), 4))
      [[0.16 0.16]]

    References:
      Kendall, A., Badrinarayanan, V. and Cipolla, R. "Bayesian SegNet: Model Uncertainty
      in Deep Convolutional Encoder-Decoder Architectures for Scene Understanding", 2017.
    """
    log_probs = check_log_probs(log_probs, from_logits, 3)
    return jnp.var(jnp.exp(log_probs), axis=0)


class ClassificationUncertainty(NamedTuple):
    r"""Every classification summary of a set of Monte-Carlo samples.

    Attributes:
      mean_log_probs: ``(N, K)`` log predictive probabilities (:func:`mean_log_probs`).
      predictive_probs: ``(N, K)`` predictive probabilities.
      predictive_entropy: ``(N,)`` total uncertainty :math:`\mathbb{H}[\bar p]`.
      expected_entropy: ``(N,)`` aleatoric uncertainty :math:`\mathbb{E}_t\, \mathbb{H}[p_t]`.
      mutual_information: ``(N,)`` epistemic uncertainty (BALD),
        :math:`\mathbb{H}[\bar p] - \mathbb{E}_t\, \mathbb{H}[p_t]`.
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
      log_probs, from_logits: as :func:`mean_log_probs`.

    Returns:
      A :class:`ClassificationUncertainty` with the same values as the individual
      functions.

    Raises:
      TypeError, ValueError: as :func:`mean_log_probs`.

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
    log_probs = check_log_probs(log_probs, from_logits, 3)
    return uncertainty_from_statistics(
        _mean_log_probs(log_probs),
        _expected_entropy(log_probs),
        _variation_ratio(log_probs),
        jnp.var(jnp.exp(log_probs), axis=0),
    )


def uncertainty_from_statistics(
    mean_lp, expected_entropy, variation_ratio, class_variance
) -> ClassificationUncertainty:
    """The :class:`ClassificationUncertainty` of the statistics of the samples.

    Shared by :func:`classification_uncertainty` and the streaming summary's finaliser:
    the predictive probabilities, the total uncertainty ``H[p̄]`` and the mutual
    information ``H[p̄] - E_t H[p_t]`` (clipped at 0) follow from ``mean_lp`` and
    ``expected_entropy``.
    """
    total = entropy_from_log_probs(mean_lp)
    return ClassificationUncertainty(
        mean_log_probs=mean_lp,
        predictive_probs=jnp.exp(mean_lp),
        predictive_entropy=total,
        expected_entropy=expected_entropy,
        mutual_information=jnp.maximum(total - expected_entropy, 0),
        variation_ratio=_nan_where_nan(variation_ratio, jnp.any(jnp.isnan(mean_lp), axis=-1)),
        class_variance=class_variance,
    )

# --------------------------------------------------------------------------------------
# Quality of the final predictive distribution (N, K).
# --------------------------------------------------------------------------------------


def accuracy(probs, labels) -> jax.Array:
    r"""Fraction of examples whose most probable class is the label.

    :math:`\frac{1}{N} \sum_n [\arg\max_k p_{nk} = y_n]` (ties go to the lowest class
    index).

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
    probs = check_probs(probs)
    labels = check_labels(labels, probs.shape, "probs")
    return jnp.mean((jnp.argmax(probs, axis=-1) == labels).astype(probs.dtype))


def nll(probs, labels) -> jax.Array:
    r"""Mean negative log-probability of the true label.

    :math:`-\frac{1}{N} \sum_n \log p_{n, y_n}`; ``inf`` when a true label has probability 0. Prefer
    :func:`nll_from_log_probs` with :func:`mean_log_probs` for accuracy at tiny
    probabilities.

    Args:
      probs, labels: as :func:`accuracy`.

    Returns:
      A scalar.

    Raises:
      TypeError, ValueError: as :func:`accuracy`.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.5, 0.5], [0.25, 0.75]])
      >>> print(f"{float(nll(probs, jnp.array([0, 1]))):.4f}")  # (log 2 + log 4/3) / 2
      0.4904

    References:
      Gneiting, T. and Raftery, A. E. "Strictly Proper Scoring Rules, Prediction, and
      Estimation", 2007.
    """
    probs = check_probs(probs)
    labels = check_labels(labels, probs.shape, "probs")
    picked = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    return -jnp.mean(jnp.log(picked))


def nll_from_log_probs(log_probs, labels, *, from_logits: bool = False) -> jax.Array:
    r"""Mean negative log-probability of the true label, from log-probabilities.

    :math:`-\frac{1}{N} \sum_n \log p_{n, y_n}`.

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
    log_probs = check_log_probs(log_probs, from_logits, 2)
    labels = check_labels(labels, log_probs.shape, "log_probs")
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0])


def brier_score(probs, labels) -> jax.Array:
    r"""Multi-class Brier score :math:`\frac{1}{N} \sum_n \sum_k (p_{nk} - [y_n = k])^2`.

    In ``[0, 2]``. For ``K = 2`` this is twice scikit-learn's binary ``brier_score_loss``.

    Args:
      probs, labels: as :func:`accuracy`.

    Returns:
      A scalar in ``[0, 2]``.

    Raises:
      TypeError, ValueError: as :func:`accuracy`.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.5, 0.5], [0.25, 0.75]])
      >>> print(f"{float(brier_score(probs, jnp.array([0, 1]))):.4f}")  # (0.5 + 0.125) / 2
      0.3125

    References:
      Brier, G. W. "Verification of Forecasts Expressed in Terms of Probability", 1950.
    """
    probs = check_probs(probs)
    labels = check_labels(labels, probs.shape, "probs")
    onehot = jax.nn.one_hot(labels, probs.shape[-1], dtype=probs.dtype)
    return jnp.mean(jnp.sum(jnp.square(probs - onehot), axis=-1))
