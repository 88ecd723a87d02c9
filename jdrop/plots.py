"""Deprecated: use :mod:`jdrop.report` (the plots moved there, with tables and metrics)."""

import warnings

from jdrop.report import metric_vs_samples as metric_vs_samples
from jdrop.report import reliability_diagram as reliability_diagram
from jdrop.report import uncertainty_histograms as uncertainty_histograms

__all__ = ["metric_vs_samples", "reliability_diagram", "uncertainty_histograms"]

warnings.warn("jdrop.plots is deprecated: import the plots from jdrop.report",
              DeprecationWarning, stacklevel=2)
