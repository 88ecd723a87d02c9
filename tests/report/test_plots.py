"""Tests for jdrop.report's plots: each plot renders to a non-empty PNG; bad input raises."""

import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import report as plots
from jdrop import uncertainty as u


@pytest.fixture
def plt():
    import matplotlib.pyplot as pyplot

    yield pyplot
    pyplot.close("all")


def probs_and_labels(n=500, k=3, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=n)
    labels = rng.integers(0, k, n)
    return jnp.asarray(probs, jnp.float32), jnp.asarray(labels)


def save(fig, path):
    fig.savefig(path, format="png")
    assert path.exists()
    assert path.stat().st_size > 1000
    # A PNG file starts with this signature.
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("binning", u.BINNINGS)
def test_reliability_diagram_from_probs(tmp_path, plt, binning):
    probs, labels = probs_and_labels()
    fig = plots.reliability_diagram(probs, labels, num_bins=10, binning=binning, title="t")
    assert type(fig).__name__ == "Figure"
    (ax,) = fig.axes
    assert ax.get_title() == "t"
    data = u.reliability_data(probs, labels, num_bins=10, binning=binning)
    assert 0 < len(ax.patches) == int((data.count > 0).sum())  # One bar per non-empty bin.
    save(fig, tmp_path / f"reliability_{binning}.png")


def test_reliability_diagram_from_data_on_given_axes(tmp_path, plt):
    probs, labels = probs_and_labels()
    data = u.reliability_data(probs, labels, num_bins=15)
    fig, ax = plt.subplots()
    out = plots.reliability_diagram(data, ax=ax, title=None)
    assert out is fig
    assert len(ax.patches) == int((data.count > 0).sum())
    ece = float(u.expected_calibration_error(probs, labels, num_bins=15))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(f"ECE = {ece:.3f}" in text for text in legend)
    save(fig, tmp_path / "reliability_data.png")


def test_reliability_diagram_rejects_probs_without_labels(plt):
    probs, _ = probs_and_labels()
    with pytest.raises(TypeError, match="ReliabilityData"):
        plots.reliability_diagram(probs)


def test_uncertainty_histograms(tmp_path, plt):
    rng = np.random.default_rng(1)
    fig = plots.uncertainty_histograms(
        rng.gamma(1.0, 0.2, 300), jnp.asarray(rng.gamma(3.0, 0.2, 200), jnp.float32), bins=20
    )
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["in-distribution", "shifted"]
    assert len(ax.patches) == 40  # Two groups of 20 shared bins.
    save(fig, tmp_path / "histograms.png")


def test_uncertainty_histograms_validation(plt):
    with pytest.raises(ValueError, match="scores_b"):
        plots.uncertainty_histograms(np.ones(3), np.ones(0))
    with pytest.raises(ValueError, match="scores_a"):
        plots.uncertainty_histograms(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="labels"):
        plots.uncertainty_histograms(np.ones(3), np.ones(3), labels=("only one",))


def test_metric_vs_samples(tmp_path, plt):
    num_samples = [1, 3, 10, 30, 100]
    values = {"NLL": [0.9, 0.7, 0.6, 0.55, 0.54], "ECE": np.array([0.1, 0.07, 0.05, 0.04, 0.04])}
    fig = plots.metric_vs_samples(num_samples, values, ylabel="value", title="convergence")
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    assert ax.get_xscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), num_samples)
    save(fig, tmp_path / "metric_vs_samples.png")


def test_metric_vs_samples_validation(plt):
    with pytest.raises(ValueError, match=r"values\['NLL'\].*\(2,\).*\(3,\)"):
        plots.metric_vs_samples([1, 2, 3], {"NLL": [0.5, 0.4]})
    with pytest.raises(ValueError, match="empty"):
        plots.metric_vs_samples([1, 2, 3], {})
    with pytest.raises(ValueError, match="num_samples"):
        plots.metric_vs_samples([[1, 2, 3]], {"NLL": [0.5, 0.4, 0.3]})
