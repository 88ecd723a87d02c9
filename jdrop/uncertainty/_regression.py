"""Regression metrics of Monte-Carlo samples: predictive moments and Gal's log-likelihood.

Samples are ``(T, N)`` or ``(T, N, D)`` (``T`` Monte-Carlo samples on the leading axis);
targets ``y`` are ``(N,)`` or ``(N, D)``. Means over samples are population means.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._validation import check_choice, check_float_array, is_concrete
from jdrop.uncertainty._inputs import check_samples, check_targets, check_tau

__all__ = [
    "RegressionUncertainty",
    "epistemic_variance",
    "predictive_log_likelihood",
    "predictive_mean",
    "regression_uncertainty",
    "rmse",
    "total_variance",
]

LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------
# Numerical pieces shared with the streaming summary (jdrop.uncertainty._summaries).
# --------------------------------------------------------------------------------------


def gaussian_log_kernel(samples: jax.Array, y: jax.Array, tau: jax.Array) -> jax.Array:
    """-tau/2 ||y - yhat_t||^2 per sample and point: shape (T, N)."""
    sq = jnp.square(y - samples)
    if samples.ndim == 3:
        sq = jnp.sum(sq, axis=-1)
    return -0.5 * tau * sq


def gaussian_log_likelihood(lse: jax.Array, count, dim: int, tau) -> jax.Array:
    """Gal's per-point log-likelihood from ``lse = logsumexp_t(-tau/2 ||y - yhat_t||^2)``.

    ``ll = lse - log T - (D/2) log(2 pi) + (D/2) log tau``: the one place this formula (and
    its offset) is written. The parts of the offset known in Python (``T`` given as an
    int, a concrete ``tau``) are summed in float64 and rounded once, so the same constant
    enters every program, whatever XLA would have folded.
    """
    offset = -0.5 * dim * LOG_2PI
    if isinstance(count, int | np.integer):
        offset -= math.log(count)
    else:
        lse = lse - jnp.log(jnp.asarray(count).astype(lse.dtype))
    if is_concrete(tau):
        return lse + np.asarray(offset + 0.5 * dim * math.log(float(tau)), lse.dtype)
    return lse + (offset + 0.5 * dim * jnp.log(tau))


def root_mean_square(pred, y) -> jax.Array:
    """``sqrt(mean((pred - y)^2))`` of checked arrays."""
    return jnp.sqrt(jnp.mean(jnp.square(pred - y)))


# --------------------------------------------------------------------------------------
# One-shot metrics.
# --------------------------------------------------------------------------------------


def predictive_mean(samples) -> jax.Array:
    r"""Monte-Carlo predictive mean :math:`\mathbb{E}[y] \approx \frac{1}{T} \sum_t \hat y_t`.

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
    return jnp.mean(check_samples(samples), axis=0)


def epistemic_variance(samples) -> jax.Array:
    r"""Variance of the Monte-Carlo samples (model, or epistemic, uncertainty).

    :math:`\frac{1}{T} \sum_t \hat y_t^2 - \mathbb{E}[y]^2` per output (population variance,
    ``ddof=0``).

    Args:
      samples: as :func:`predictive_mean`.

    Returns:
      ``(N,)`` or ``(N, D)`` variances.

    Raises:
      TypeError, ValueError: as :func:`predictive_mean`.

    Examples:
      >>> import jax.numpy as jnp
      >>> samples = jnp.array([[1.0, 2.0], [3.0, 6.0]])  # T=2 samples of N=2 points
      >>> print(epistemic_variance(samples))
      [1. 4.]

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    return jnp.var(check_samples(samples), axis=0)


def total_variance(samples, tau) -> jax.Array:
    r"""Predictive variance: epistemic variance plus the observation noise :math:`\tau^{-1}`.

    .. math::

       \mathrm{Var}[y] \approx \tau^{-1} + \frac{1}{T} \sum_{t=1}^{T} \hat y_t^2
       - \mathbb{E}[y]^2

    (Gal and Ghahramani, 2016, eq. 8), with :math:`\tau` = ``tau``.

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
    samples = check_samples(samples)
    tau = check_tau(tau, samples.dtype)
    return jnp.var(samples, axis=0) + 1 / tau


def predictive_log_likelihood(samples, y, tau, *, reduction: str = "mean") -> jax.Array:
    r"""Test log-likelihood under the Monte-Carlo Gaussian mixture (Gal's formula).

    .. math::

       \ell_n = \operatorname{logsumexp}_{t=1}^{T}\left(-\frac{\tau}{2}
       \lVert y_n - \hat y_{tn} \rVert^2\right) - \log T - \frac{D}{2} \log(2\pi)
       + \frac{D}{2} \log \tau,

    i.e. :math:`\log \frac{1}{T} \sum_t \mathcal{N}(y_n; \hat y_{tn}, \tau^{-1} I)`. With
    ``(T, N)`` samples (:math:`D = 1`) this is exactly the formula of Gal and Ghahramani's
    code; with ``(T, N, D)`` samples each point's :math:`D` outputs share one mixture (a
    joint density).

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
    check_choice(reduction, "reduction", ("mean", "none"))
    samples = check_samples(samples)
    y = check_targets(y, samples.shape[1:], f"samples.shape={samples.shape}", samples.dtype)
    tau = check_tau(tau, samples.dtype)
    dim = 1 if samples.ndim == 2 else samples.shape[-1]
    lse = jax.nn.logsumexp(gaussian_log_kernel(samples, y, tau), axis=0)
    ll = gaussian_log_likelihood(lse, samples.shape[0], dim, tau)
    return jnp.mean(ll) if reduction == "mean" else ll


def rmse(pred, y) -> jax.Array:
    r"""Root mean squared error :math:`\sqrt{\frac{1}{M} \sum_i (\hat y_i - y_i)^2}`.

    Over all :math:`M` elements of ``pred`` (:math:`\hat y`) and ``y``.

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
    pred = check_float_array(pred, "pred")
    y = check_targets(y, pred.shape, f"pred.shape={pred.shape}", pred.dtype)
    return root_mean_square(pred, y)


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
    samples = check_samples(samples)
    tau = check_tau(tau, samples.dtype)
    mean = jnp.mean(samples, axis=0)
    variance = jnp.var(samples, axis=0)
    log_likelihood = error = None
    if y is not None:
        y = check_targets(y, samples.shape[1:], f"samples.shape={samples.shape}", mean.dtype)
        lse = jax.nn.logsumexp(gaussian_log_kernel(samples, y, tau), axis=0)
        dim = 1 if samples.ndim == 2 else samples.shape[-1]
        log_likelihood = jnp.mean(gaussian_log_likelihood(lse, samples.shape[0], dim, tau))
        error = root_mean_square(mean, y)
    return RegressionUncertainty(mean, variance, variance + 1 / tau, log_likelihood, error)
