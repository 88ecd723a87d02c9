"""jdrop.report: metrics, shift detection and tables; the jdrop.plots alias."""

import importlib
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import report
from jdrop import uncertainty as unc


def test_classification_metrics_match_the_uncertainty_functions():
    logits = jax.random.normal(jax.random.key(0), (50, 4))
    lp = jax.nn.log_softmax(logits)
    y = jax.random.randint(jax.random.key(1), (50,), 0, 4)
    m = report.classification_metrics(lp, y, num_bins=10)
    assert tuple(m) == report.CLASSIFICATION_METRICS
    probs = jnp.exp(lp)
    assert m["accuracy"] == pytest.approx(float(unc.accuracy(probs, y)))
    assert m["nll"] == pytest.approx(float(unc.nll_from_log_probs(lp, y)))
    assert m["ece"] == pytest.approx(
        float(unc.expected_calibration_error(probs, y, num_bins=10)), abs=1e-6)


def test_shift_detection_of_scores():
    samples = jax.nn.log_softmax(jax.random.normal(jax.random.key(2), (8, 30, 3)), -1)
    scores = report.uncertainty_scores(samples, samples[0])
    assert set(scores) == {"mc_entropy", "mc_mutual_information", "deterministic_entropy"}
    assert all(v.shape == (30,) for v in scores.values())
    more = {k: v + 10.0 for k, v in scores.items()}
    aurocs = report.shift_detection(scores, more)
    assert aurocs == {f"auroc_{k}": 1.0 for k in scores}


def test_tables(tmp_path):
    with pytest.raises(ValueError, match="a row has 1 cells"):
        report.markdown_table(["a", "b"], [[1.0]])
    text = report.markdown_table(["a", "b"], [["x", 0.5]], float_format="{:.1f}")
    assert text == "| a | b |\n|---|---|\n| x | 0.5 |\n"
    json_path, md_path = report.write_results(tmp_path / "out", {"t": (1, 2)}, text)
    assert json.loads(json_path.read_text()) == {"t": [1, 2]} and md_path.read_text() == text


def test_plots_alias_is_deprecated_and_the_same():
    sys.modules.pop("jdrop.plots", None)
    with pytest.warns(DeprecationWarning, match="jdrop.report"):
        plots = importlib.import_module("jdrop.plots")
    assert plots.reliability_diagram is report.reliability_diagram
    assert plots.metric_vs_samples is report.metric_vs_samples


def test_save_figure_writes_and_closes(tmp_path):
    plt = report.pyplot()
    fig = report.metric_vs_samples([1, 2, 4], {"MC": [0.5, 0.6, 0.7]})
    path = report.save_figure(fig, tmp_path / "m.png")
    assert np.fromfile(path, np.uint8)[:4].tolist() == [137, 80, 78, 71]
    assert not plt.fignum_exists(fig.number)
