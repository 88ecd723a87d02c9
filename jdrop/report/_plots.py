"""Plot helpers for uncertainty results (matplotlib is imported lazily, inside each function).

Each function draws on ``ax`` when given (and returns ``ax.figure``), otherwise on a new
``plt.subplots()`` figure, and returns the :class:`matplotlib.figure.Figure`. When no
backend has been chosen, the headless ``"Agg"`` backend is used (``MPLBACKEND`` is set only
if unset, before matplotlib is first imported). Figures made here are registered with
pyplot: close them (``plt.close(fig)``) when drawing many in a loop.
"""

import os
from collections.abc import Mapping, Sequence

import numpy as np

from jdrop.uncertainty import ReliabilityData, reliability_data


def pyplot():
    """``matplotlib.pyplot``, imported on first use (headless ``"Agg"`` unless chosen).

    Returns:
      The ``matplotlib.pyplot`` module.

    Examples:
      >>> plt = pyplot()
      >>> fig, ax = plt.subplots()
      >>> plt.close(fig)
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, *, dpi: int = 90) -> str:
    """Saves ``fig`` (tight layout) to ``path`` and closes it.

    Args:
      fig: a :class:`matplotlib.figure.Figure`.
      path: the file to write; the format follows its suffix (``.png``, ``.pdf``, ...).
      dpi: resolution of raster formats.

    Returns:
      ``str(path)``.

    Examples:
      >>> import tempfile, pathlib
      >>> fig, ax = pyplot().subplots()
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty.png"
      >>> save_figure(fig, path) == str(path) and path.stat().st_size > 0
      True
    """
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return str(path)


def _figure_and_axes(ax):
    if ax is not None:
        return ax.figure, ax
    return pyplot().subplots()


def reliability_diagram(
    data,
    labels=None,
    *,
    num_bins: int = 15,
    binning: str = "equal_width",
    ax=None,
    title: str | None = "Reliability diagram",
):
    r"""Bars of per-bin accuracy against confidence, with the diagonal of perfect calibration.

    Each non-empty bin is drawn as a bar spanning its edges with height equal to its
    accuracy; a dot marks (mean confidence, accuracy) and the legend gives the ECE
    :math:`\sum_b \frac{n_b}{N} \left|\mathrm{acc}_b - \mathrm{conf}_b\right|`
    (:func:`jdrop.uncertainty.expected_calibration_error`).

    Args:
      data: a :class:`jdrop.uncertainty.ReliabilityData`, or ``(N, K)`` predictive
        probabilities when ``labels`` is given.
      labels: ``(N,)`` integer labels; when given, ``data`` holds probabilities and the
        bins come from :func:`jdrop.uncertainty.reliability_data`.
      num_bins: number of bins (only used with ``labels``).
      binning: ``"equal_width"`` or ``"equal_mass"`` (only used with ``labels``).
      ax: axes to draw on; a new figure when ``None``.
      title: axes title, or ``None`` for none.

    Returns:
      The :class:`matplotlib.figure.Figure` holding the plot.

    Raises:
      TypeError: if ``data`` is not a ``ReliabilityData`` and ``labels`` is ``None``.
      ValueError: as :func:`jdrop.uncertainty.reliability_data`.

    Examples:
      >>> import jax.numpy as jnp
      >>> probs = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.35, 0.65]])
      >>> fig = reliability_diagram(probs, jnp.array([0, 1, 1, 1]), num_bins=4)
      >>> type(fig).__name__
      'Figure'
      >>> import matplotlib.pyplot as plt
      >>> plt.close(fig)

    References:
      DeGroot, M. H. and Fienberg, S. E. "The Comparison and Evaluation of Forecasters",
      1983.
      Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. "On Calibration of Modern Neural
      Networks", 2017.
    """
    if labels is not None:
        data = reliability_data(data, labels, num_bins=num_bins, binning=binning)
    elif not isinstance(data, ReliabilityData):
        raise TypeError(
            "reliability_diagram expects a ReliabilityData, or probs together with labels; "
            f"got {type(data).__name__} and labels=None"
        )
    edges = np.asarray(data.bin_edges, dtype=np.float64)
    confidence = np.asarray(data.confidence, dtype=np.float64)
    accuracy = np.asarray(data.accuracy, dtype=np.float64)
    count = np.asarray(data.count)
    filled = count > 0
    ece = float(np.sum(count * np.abs(accuracy - confidence)) / max(int(count.sum()), 1))

    fig, ax = _figure_and_axes(ax)
    lower, width = edges[:-1][filled], np.diff(edges)[filled]
    ax.bar(
        lower,
        accuracy[filled],
        width=width,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot(
        confidence[filled],
        accuracy[filled],
        "o",
        color="C1",
        label=f"mean confidence (ECE = {ece:.3f})",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    if title is not None:
        ax.set_title(title)
    return fig


def uncertainty_histograms(
    scores_a,
    scores_b,
    labels: Sequence[str] = ("in-distribution", "shifted"),
    *,
    bins: int = 30,
    ax=None,
    title: str | None = None,
    xlabel: str = "uncertainty",
):
    """Overlaid density histograms of an uncertainty score for two groups.

    Both groups share the same bin edges (over the range of all scores), so their shapes
    are comparable; use :func:`jdrop.uncertainty.auroc` for a single number.

    Args:
      scores_a: 1-D scores of the first group (e.g. predictive entropy in-distribution).
      scores_b: 1-D scores of the second group (e.g. on shifted inputs).
      labels: legend names of the two groups.
      bins: number of shared histogram bins.
      ax: axes to draw on; a new figure when ``None``.
      title: axes title, or ``None`` for none.
      xlabel: x-axis label.

    Returns:
      The :class:`matplotlib.figure.Figure` holding the plot.

    Raises:
      ValueError: if a group is empty or not 1-D, or ``labels`` does not have two names.

    Examples:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> fig = uncertainty_histograms(rng.normal(0, 1, 100), rng.normal(2, 1, 100))
      >>> type(fig).__name__
      'Figure'
      >>> import matplotlib.pyplot as plt
      >>> plt.close(fig)

    References:
      Ovadia, Y., Fertig, E., Ren, J., Nado, Z., Sculley, D., Nowozin, S., Dillon, J. V.,
      Lakshminarayanan, B. and Snoek, J. "Can You Trust Your Model's Uncertainty?
      Evaluating Predictive Uncertainty Under Dataset Shift", 2019.
    """
    groups = [np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)]
    for name, group in zip(("scores_a", "scores_b"), groups, strict=True):
        if group.ndim != 1 or group.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {group.shape}")
    if len(labels) != 2:
        raise ValueError(f"labels must name the two groups, got labels={labels!r}")
    edges = np.histogram_bin_edges(np.concatenate(groups), bins=bins)

    fig, ax = _figure_and_axes(ax)
    for group, label in zip(groups, labels, strict=True):
        ax.hist(group, bins=edges, density=True, alpha=0.5, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return fig


def metric_vs_samples(
    num_samples,
    values: Mapping[str, Sequence[float]],
    *,
    ax=None,
    title: str | None = None,
    ylabel: str = "metric",
    log_x: bool = True,
):
    """One line per metric against the number of Monte-Carlo samples ``T``.

    Args:
      num_samples: 1-D sequence of sample counts (the x values).
      values: mapping from a legend name to a sequence of metric values, one per entry of
        ``num_samples``.
      ax: axes to draw on; a new figure when ``None``.
      title: axes title, or ``None`` for none.
      ylabel: y-axis label.
      log_x: use a logarithmic x axis (sample counts usually grow geometrically).

    Returns:
      The :class:`matplotlib.figure.Figure` holding the plot.

    Raises:
      ValueError: if ``values`` is empty or a sequence's length differs from
        ``num_samples``'s.

    Examples:
      >>> fig = metric_vs_samples([1, 10, 100], {"test NLL": [0.9, 0.5, 0.45]})
      >>> type(fig).__name__
      'Figure'
      >>> import matplotlib.pyplot as plt
      >>> plt.close(fig)

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
    """
    x = np.asarray(num_samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"num_samples must be 1-D, got shape {x.shape}")
    if not values:
        raise ValueError("values must hold at least one metric, got an empty mapping")
    series = {}
    for name, ys in values.items():
        ys = np.asarray(ys, dtype=np.float64)
        if ys.shape != x.shape:
            raise ValueError(
                f"values[{name!r}] has shape {ys.shape} but num_samples has shape {x.shape}"
            )
        series[name] = ys

    fig, ax = _figure_and_axes(ax)
    for name, ys in series.items():
        ax.plot(x, ys, "o-", label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("number of Monte-Carlo samples T")
    ax.set_ylabel(ylabel)
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return fig
