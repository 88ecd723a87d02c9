"""Calibration of a predictive distribution ``(N, K)``: reliability data, ECE and MCE.

Confidence is ``max_k p_nk``; an example is correct when ``argmax_k p_nk = y_n``. The
options ``num_bins`` and ``binning`` must be marked static when jitting, e.g.
``jax.jit(f, static_argnames="num_bins")``.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._validation import check_choice, check_int
from jdrop.uncertainty._inputs import check_labels, check_probs

__all__ = [
    "BINNINGS",
    "ReliabilityData",
    "expected_calibration_error",
    "maximum_calibration_error",
    "reliability_data",
]

#: The binning schemes accepted by the calibration metrics.
BINNINGS = ("equal_width", "equal_mass")


class ReliabilityData(NamedTuple):
    """Per-bin statistics of a reliability diagram.

    Attributes:
      bin_edges: ``(B + 1,)`` bin boundaries. Equal-width: ``edges[b]`` is ``b / B``
        rounded to the dtype of ``probs``, and bin ``b`` holds confidences in
        ``(edges[b], edges[b+1]]`` (the first bin also holds ``0``): a confidence equal to
        ``b / B`` (e.g. ``float32(0.2)``) is in the bin below that edge. For equal-mass bins,
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
    probs = check_probs(probs)
    labels = check_labels(labels, probs.shape, "probs")
    num_bins = check_int(num_bins, "num_bins", 1)
    check_choice(binning, "binning", BINNINGS)
    n = probs.shape[0]
    confidence = jnp.max(probs, axis=-1)
    correct = (jnp.argmax(probs, axis=-1) == labels).astype(probs.dtype)
    if binning == "equal_width":
        # b / B correctly rounded to the dtype (linspace's arithmetic can land an ulp below
        # it, and a confidence equal to b / B would then change bins with B).
        edges = jnp.asarray(np.arange(num_bins + 1) / num_bins, probs.dtype)
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
    r"""Per-bin confidence, accuracy and count for a reliability diagram.

    Confidence is :math:`\max_k p_{nk}` and an example is correct when
    :math:`\arg\max_k p_{nk} = y_n`.

    Args:
      probs: ``(N, K)`` predictive probabilities.
      labels: ``(N,)`` integer labels in ``[0, K)``.
      num_bins: number of bins ``B >= 1`` (static under jit).
      binning: ``"equal_width"`` (bins ``(b/B, (b+1)/B]`` of the confidence, edges rounded
        to the dtype of ``probs``: a confidence on an edge is in the bin below it) or
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
    r"""Expected calibration error (ECE).

    .. math::

       \mathrm{ECE} = \sum_b \frac{n_b}{N} \left|\mathrm{acc}_b - \mathrm{conf}_b\right|
       = \frac{1}{N} \sum_b \Big|\sum_{n \in b} (\mathrm{correct}_n - \mathrm{conf}_n)\Big|,

    with confidence :math:`\mathrm{conf}_n = \max_k p_{nk}` binned as described below
    (:math:`n_b` examples in bin :math:`b`).

    Args:
      probs, labels, num_bins, binning: as :func:`reliability_data`.

    Returns:
      A scalar in ``[0, 1]``.

    Raises:
      TypeError, ValueError: as :func:`reliability_data`.

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
    r"""Maximum calibration error (MCE) over non-empty bins.

    :math:`\mathrm{MCE} = \max_{b : n_b > 0} \left|\mathrm{acc}_b - \mathrm{conf}_b\right|`.

    Args:
      probs, labels, num_bins, binning: as :func:`reliability_data`.

    Returns:
      A scalar in ``[0, 1]``: the largest gap of a non-empty bin.

    Raises:
      TypeError, ValueError: for bad arguments, as :func:`reliability_data` says.

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
