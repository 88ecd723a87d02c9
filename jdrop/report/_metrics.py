"""The numbers an MC-dropout report shows: calibration metrics and shift detection."""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

from jdrop import uncertainty as unc

CLASSIFICATION_METRICS = ("accuracy", "nll", "ece", "brier")
"""The keys of :func:`classification_metrics`, in table order."""


def classification_metrics(log_probs, labels, *, num_bins: int = 15) -> dict[str, float]:
    """Accuracy, NLL, ECE and Brier score of predictive log-probabilities.

    The probabilities are renormalised (``exp`` of a float32 log-softmax sums to one only
    up to rounding) before the accuracy, the ECE (equal-width bins) and the Brier score.

    Args:
      log_probs: ``(N, K)`` predictive log-probabilities, e.g. a deterministic
        ``log_softmax`` or the MC mean :func:`jdrop.uncertainty.mean_log_probs`.
      labels: ``(N,)`` integer labels.
      num_bins: calibration bins of the ECE.

    Returns:
      ``{"accuracy", "nll", "ece", "brier"}`` as Python floats.

    Raises:
      ValueError: if the shapes do not match (from :mod:`jdrop.uncertainty`).

    Examples:
      >>> import jax.numpy as jnp
      >>> lp = jnp.log(jnp.array([[0.9, 0.1], [0.2, 0.8]]))
      >>> m = classification_metrics(lp, jnp.array([0, 0]), num_bins=10)
      >>> m["accuracy"], round(m["brier"], 3)
      (0.5, 0.65)

    References:
      Guo, C. et al. "On Calibration of Modern Neural Networks", ICML 2017.
    """
    log_probs = jnp.asarray(log_probs)
    probs = jnp.exp(log_probs)
    probs = probs / probs.sum(-1, keepdims=True)
    return {
        "accuracy": float(unc.accuracy(probs, labels)),
        "nll": float(unc.nll_from_log_probs(log_probs, labels)),
        "ece": float(unc.expected_calibration_error(probs, labels, num_bins=num_bins)),
        "brier": float(unc.brier_score(probs, labels)),
    }


def uncertainty_scores(samples, deterministic_log_probs=None) -> dict[str, np.ndarray]:
    """Per-example uncertainty scores of MC samples (and of a deterministic prediction).

    Args:
      samples: ``(T, N, K)`` log-probabilities of ``T`` MC-dropout passes.
      deterministic_log_probs: optional ``(N, K)`` log-probabilities with dropout off.

    Returns:
      ``{"mc_entropy", "mc_mutual_information"}`` (the predictive entropy and the mutual
      information, BALD, of the samples) and, when ``deterministic_log_probs`` is given,
      ``"deterministic_entropy"``; each an ``(N,)`` numpy array.

    Examples:
      >>> import jax.numpy as jnp
      >>> same = jnp.log(jnp.full((4, 3, 2), 0.5))  # 4 passes that agree: no disagreement
      >>> s = uncertainty_scores(same, same[0])
      >>> sorted(s), s["mc_mutual_information"].round(6).tolist()
      (['deterministic_entropy', 'mc_entropy', 'mc_mutual_information'], [0.0, 0.0, 0.0])

    References:
      Houlsby, N. et al. "Bayesian Active Learning for Classification and Preference
      Learning", 2011 (BALD); Gal, Y. et al. "Deep Bayesian Active Learning with Image
      Data", ICML 2017.
    """
    scores = {
        "mc_entropy": np.asarray(unc.predictive_entropy(samples)),
        "mc_mutual_information": np.asarray(unc.mutual_information(samples)),
    }
    if deterministic_log_probs is not None:
        det = jnp.asarray(deterministic_log_probs)[None]
        scores["deterministic_entropy"] = np.asarray(unc.predictive_entropy(det))
    return scores


def shift_detection(
    in_scores: Mapping[str, np.ndarray], out_scores: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """AUROC of each uncertainty score at telling shifted inputs from in-distribution ones.

    Args:
      in_scores: score name -> ``(N,)`` scores of in-distribution inputs (higher: more
        uncertain), e.g. :func:`uncertainty_scores` of the test set.
      out_scores: the same names -> ``(M,)`` scores of shifted inputs.

    Returns:
      ``{"auroc_<name>": AUROC}`` for every name of ``in_scores``: 0.5 is chance, 1.0 a
      perfect separation (shifted inputs all more uncertain).

    Raises:
      KeyError: if a name of ``in_scores`` is missing from ``out_scores``.

    Examples:
      >>> import numpy as np
      >>> shift_detection({"entropy": np.array([0.1, 0.2])}, {"entropy": np.array([0.9, 0.3])})
      {'auroc_entropy': 1.0}

    References:
      Hendrycks, D. and Gimpel, K. "A Baseline for Detecting Misclassified and
      Out-of-Distribution Examples in Neural Networks", ICLR 2017.
    """
    out = {}
    for name, inside in in_scores.items():
        outside = np.asarray(out_scores[name])
        inside = np.asarray(inside)
        labels = np.concatenate([np.zeros(len(inside)), np.ones(len(outside))]).astype(np.int32)
        out[f"auroc_{name}"] = float(unc.auroc(np.concatenate([inside, outside]), labels))
    return out
