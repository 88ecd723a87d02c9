"""Reporting MC-dropout results: metrics tables, shift detection, plots.

The pieces experiments and notebooks share: :func:`classification_metrics` (accuracy,
NLL, ECE, Brier), :func:`uncertainty_scores` and :func:`shift_detection` (AUROCs for
out-of-distribution inputs, see :func:`jdrop.data.apply_shift`), Markdown/JSON tables
(:func:`markdown_table`, :func:`write_results`) and matplotlib plots (imported lazily).
"""

from jdrop.report._metrics import CLASSIFICATION_METRICS as CLASSIFICATION_METRICS
from jdrop.report._metrics import classification_metrics as classification_metrics
from jdrop.report._metrics import shift_detection as shift_detection
from jdrop.report._metrics import uncertainty_scores as uncertainty_scores
from jdrop.report._plots import metric_vs_samples as metric_vs_samples
from jdrop.report._plots import pyplot as pyplot
from jdrop.report._plots import reliability_diagram as reliability_diagram
from jdrop.report._plots import save_figure as save_figure
from jdrop.report._plots import uncertainty_histograms as uncertainty_histograms
from jdrop.report._tables import markdown_table as markdown_table
from jdrop.report._tables import write_results as write_results

__all__ = [
    "CLASSIFICATION_METRICS",
    "classification_metrics",
    "markdown_table",
    "metric_vs_samples",
    "pyplot",
    "reliability_diagram",
    "save_figure",
    "shift_detection",
    "uncertainty_histograms",
    "uncertainty_scores",
    "write_results",
]
