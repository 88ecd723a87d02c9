"""Uncertainty metrics for Monte-Carlo dropout samples.

Classification (entropy, mutual information, variation ratio, NLL, Brier), regression
(predictive mean and variance, Gaussian log-likelihood), calibration (ECE, MCE,
reliability data) and ranking (AUROC, average precision), plus the streaming summaries
that :mod:`jdrop.mc` accumulates chunk by chunk. One module per concern:
``_classification``, ``_regression``, ``_calibration``, ``_ranking``, ``_summaries``, and
``_inputs`` for the checks of their inputs.
"""

from jdrop.uncertainty._calibration import BINNINGS as BINNINGS
from jdrop.uncertainty._calibration import ReliabilityData as ReliabilityData
from jdrop.uncertainty._calibration import expected_calibration_error as expected_calibration_error
from jdrop.uncertainty._calibration import maximum_calibration_error as maximum_calibration_error
from jdrop.uncertainty._calibration import reliability_data as reliability_data
from jdrop.uncertainty._classification import ClassificationUncertainty as ClassificationUncertainty
from jdrop.uncertainty._classification import accuracy as accuracy
from jdrop.uncertainty._classification import brier_score as brier_score
from jdrop.uncertainty._classification import class_variance as class_variance
from jdrop.uncertainty._classification import (
    classification_uncertainty as classification_uncertainty,
)
from jdrop.uncertainty._classification import expected_entropy as expected_entropy
from jdrop.uncertainty._classification import mean_log_probs as mean_log_probs
from jdrop.uncertainty._classification import mutual_information as mutual_information
from jdrop.uncertainty._classification import nll as nll
from jdrop.uncertainty._classification import nll_from_log_probs as nll_from_log_probs
from jdrop.uncertainty._classification import predictive_entropy as predictive_entropy
from jdrop.uncertainty._classification import predictive_probs as predictive_probs
from jdrop.uncertainty._classification import variation_ratio as variation_ratio
from jdrop.uncertainty._ranking import auroc as auroc
from jdrop.uncertainty._ranking import average_precision as average_precision
from jdrop.uncertainty._regression import RegressionUncertainty as RegressionUncertainty
from jdrop.uncertainty._regression import epistemic_variance as epistemic_variance
from jdrop.uncertainty._regression import predictive_log_likelihood as predictive_log_likelihood
from jdrop.uncertainty._regression import predictive_mean as predictive_mean
from jdrop.uncertainty._regression import regression_uncertainty as regression_uncertainty
from jdrop.uncertainty._regression import rmse as rmse
from jdrop.uncertainty._regression import total_variance as total_variance
from jdrop.uncertainty._summaries import ClassificationSummary as ClassificationSummary
from jdrop.uncertainty._summaries import RegressionSummary as RegressionSummary

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
