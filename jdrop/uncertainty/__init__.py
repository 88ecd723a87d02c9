"""Uncertainty metrics for Monte-Carlo dropout samples.

Classification (entropy, mutual information, variation ratio, NLL, Brier), regression
(predictive mean and variance, Gaussian log-likelihood), calibration (ECE, MCE,
reliability data) and ranking (AUROC, average precision), plus the streaming summaries
that :mod:`jdrop.mc` accumulates chunk by chunk.
"""

from jdrop.uncertainty._metrics import BINNINGS as BINNINGS
from jdrop.uncertainty._metrics import ClassificationSummary as ClassificationSummary
from jdrop.uncertainty._metrics import ClassificationUncertainty as ClassificationUncertainty
from jdrop.uncertainty._metrics import RegressionSummary as RegressionSummary
from jdrop.uncertainty._metrics import RegressionUncertainty as RegressionUncertainty
from jdrop.uncertainty._metrics import ReliabilityData as ReliabilityData
from jdrop.uncertainty._metrics import accuracy as accuracy
from jdrop.uncertainty._metrics import auroc as auroc
from jdrop.uncertainty._metrics import average_precision as average_precision
from jdrop.uncertainty._metrics import brier_score as brier_score
from jdrop.uncertainty._metrics import class_variance as class_variance
from jdrop.uncertainty._metrics import classification_uncertainty as classification_uncertainty
from jdrop.uncertainty._metrics import epistemic_variance as epistemic_variance
from jdrop.uncertainty._metrics import expected_calibration_error as expected_calibration_error
from jdrop.uncertainty._metrics import expected_entropy as expected_entropy
from jdrop.uncertainty._metrics import maximum_calibration_error as maximum_calibration_error
from jdrop.uncertainty._metrics import mean_log_probs as mean_log_probs
from jdrop.uncertainty._metrics import mutual_information as mutual_information
from jdrop.uncertainty._metrics import nll as nll
from jdrop.uncertainty._metrics import nll_from_log_probs as nll_from_log_probs
from jdrop.uncertainty._metrics import predictive_entropy as predictive_entropy
from jdrop.uncertainty._metrics import predictive_log_likelihood as predictive_log_likelihood
from jdrop.uncertainty._metrics import predictive_mean as predictive_mean
from jdrop.uncertainty._metrics import predictive_probs as predictive_probs
from jdrop.uncertainty._metrics import regression_uncertainty as regression_uncertainty
from jdrop.uncertainty._metrics import reliability_data as reliability_data
from jdrop.uncertainty._metrics import rmse as rmse
from jdrop.uncertainty._metrics import total_variance as total_variance
from jdrop.uncertainty._metrics import variation_ratio as variation_ratio

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
