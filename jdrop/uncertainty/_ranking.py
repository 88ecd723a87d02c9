"""Ranking metrics: how well a score separates two groups (AUROC, average precision).

Typical uses: misclassified vs correct examples scored by their uncertainty, or shifted
vs in-distribution inputs scored by predictive entropy.
"""

import jax
import jax.numpy as jnp

from jdrop.uncertainty._inputs import check_binary

__all__ = ["auroc", "average_precision"]


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
    r"""Area under the ROC curve for telling positives (label 1) by a higher score.

    :math:`\mathrm{AUROC} = P(s_+ > s_-) + \tfrac12 P(s_+ = s_-)` over all positive/negative pairs
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
    scores, labels = check_binary(scores, labels, need_negatives=True)
    y, cum_pos, left, right = _sorted_counts(scores, labels)
    num_pos = cum_pos[-1]
    pos_above = num_pos - cum_pos[right]
    pos_tied = cum_pos[right] - cum_pos[left]
    num_neg = y.shape[0] - num_pos
    return jnp.sum((1 - y) * (pos_above + 0.5 * pos_tied)) / num_pos / num_neg


def average_precision(scores, labels) -> jax.Array:
    r"""Average precision (area under the precision-recall curve, step-wise).

    :math:`\mathrm{AP} = \sum_k (R_k - R_{k-1}) P_k` over the distinct score thresholds
    :math:`\theta_k`, descending, where :math:`P_k` and :math:`R_k` are precision and recall
    of the decision :math:`s \ge \theta_k`; equivalently the mean over positives of the
    precision at their score. Equals
    scikit-learn's ``average_precision_score``, ties included. Unlike scikit-learn (which
    warns and returns 0), labels without positives raise.

    Args:
      scores, labels: as :func:`auroc`.

    Returns:
      A scalar in ``[0, 1]`` (NaN under jit when there are no positives).

    Raises:
      TypeError, ValueError: as :func:`auroc`, except that labels without negatives
        are allowed (labels without positives raise).

    Examples:
      >>> import jax.numpy as jnp
      >>> scores = jnp.array([0.1, 0.4, 0.35, 0.8])
      >>> labels = jnp.array([0, 0, 1, 1])  # precision 1/2 at 0.35, 1 at 0.8
      >>> print(f"{float(average_precision(scores, labels)):.4f}")
      0.8333

    References:
      Davis, J. and Goadrich, M. "The Relationship Between Precision-Recall and ROC
      Curves", 2006.
      Hendrycks, D. and Gimpel, K. "A Baseline for Detecting Misclassified and
      Out-of-Distribution Examples in Neural Networks", 2017.
    """
    scores, labels = check_binary(scores, labels, need_negatives=False)
    y, cum_pos, left, _ = _sorted_counts(scores, labels)
    num_pos = cum_pos[-1]
    at_or_above = (y.shape[0] - left).astype(y.dtype)
    precision = (num_pos - cum_pos[left]) / at_or_above
    return jnp.sum(y * precision) / num_pos
