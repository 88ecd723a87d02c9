"""The UCI experiment end to end on one data set and two splits (small T and epochs); the
README's UCI table against the committed results."""

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.uci_regression import config as uci_config
from experiments.uci_regression import train as uci_regression
from experiments.uci_regression.__main__ import RESULTS, main

ROOT = Path(__file__).resolve().parents[2]


def test_two_splits_of_yacht(tmp_path):
    rows = main(["--smoke", "--output_dir", str(tmp_path)])  # yacht, 2 splits, T = 200
    assert [r["dataset"] for r in rows] == ["yacht"] and rows[0]["num_splits"] == 2
    saved = json.loads((tmp_path / "uci_regression.json").read_text())
    splits = saved["splits"]["yacht"]
    assert [s["split"] for s in splits] == [0, 1]
    for s in splits:
        assert len(s["validation_ll"]) == 12  # 4 rates x 3 taus
        assert s["validation_ll"][int(np.argmax(s["validation_ll"]))] == max(s["validation_ll"])
        # a trained network beats predicting the training mean (yacht's target std ~15)
        assert 0 < s["mc_rmse"] < 12 and np.isfinite(s["mc_ll"])
    table = (tmp_path / "uci_regression.md").read_text()
    assert "| yacht | 2 | 80 |" in table and "1.11 ± 0.09" in table  # 40 epochs x 2
    assert saved["epochs"] == {"yacht": 80}


def test_gal_log_likelihood_matches_numpy():
    """The experiment's LL (through jdrop.mc) equals Gal's numpy formula on the same samples."""
    import jax

    params = uci_regression.init_params(jax.random.key(0), 3, 8)
    x = jax.random.normal(jax.random.key(1), (20, 3))
    y = jax.random.normal(jax.random.key(2), (20,))
    key, tau, T = jax.random.key(3), np.float32(0.5), 64
    rmse, ll = uci_regression._mc_evaluate(params, np.float32(0.1), key, x, y, tau,
                                           np.float32(1.5), np.float32(2.0), T, 16)
    keys = jax.random.split(key, T)
    samples = np.stack([np.asarray(uci_regression.forward(params, k, x, np.float32(0.1)))
                        for k in keys]) * 2.0 + 1.5
    from scipy.special import logsumexp

    y_np = np.asarray(y)
    expected = np.mean(logsumexp(-0.5 * tau * (y_np[None] - samples) ** 2, 0) - np.log(T)
                       - 0.5 * np.log(2 * np.pi) + 0.5 * np.log(tau))
    assert float(ll) == pytest.approx(expected, rel=1e-4)
    assert float(rmse) == pytest.approx(np.sqrt(np.mean((samples.mean(0) - y_np) ** 2)),
                                        rel=1e-4)


def test_epochs_overrides():
    default = uci_config.default()
    assert uci_config.epochs_multiplier(default, "yacht") == 100.0  # Gal's --epochx 100
    assert uci_config.epochs_multiplier(default, "concrete") == default.epochs_multiplier == 10
    cfg = uci_config.Config(epochs_overrides=("energy=3", "yacht=0.5"))
    assert [uci_config.epochs_multiplier(cfg, n) for n in ("energy", "yacht", "kin8nm")] == [
        3.0, 0.5, 10.0]
    for bad in ("yacht", "yacht=", "yacht=0", "yacht=x"):
        with pytest.raises(ValueError, match="NAME=MULTIPLIER"):
            uci_regression.check_config(uci_config.Config(epochs_overrides=(bad,)))
    with pytest.raises(ValueError, match="unknown data sets in --epochs_overrides"):
        uci_regression.check_config(uci_config.Config(epochs_overrides=("boat=100",)))


def test_readme_table_matches_committed_results():
    """The README's UCI rows are the rows the table writer makes from the committed JSON."""
    saved = json.loads((RESULTS / "uci_regression.json").read_text())
    markdown = uci_regression.markdown(saved["summary"], saved["command"], saved["seconds"],
                                       saved["settings"]["num_samples"], saved["epochs"])
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 9  # header, rule and the nine data sets
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Gal & Ghahramani (2016), Table 1: UCI regression", 1)[1]
    section = section.split("\n## ", 1)[0]
    committed_md = (RESULTS / "uci_regression.md").read_text()
    for line in rows:
        assert line in section, f"README row differs from uci_regression.json: {line}"
        assert line in committed_md, f"uci_regression.md row differs from its JSON: {line}"
    for name, run in saved["splits"].items():  # the summary is the splits' mean
        assert np.mean([s["mc_rmse"] for s in run]) == pytest.approx(
            next(r for r in saved["summary"] if r["dataset"] == name)["mc_rmse"][0])


def test_bad_flags():
    with pytest.raises(SystemExit):
        main(["--num_samples", "0"])
    with pytest.raises(SystemExit):
        main(["--datasets", "nope"])
    with pytest.raises(ValueError, match="unknown --datasets"):
        uci_regression.check_config(uci_regression.configs.Config(datasets=("nope",)))


def test_yacht_schedule_check(tmp_path):
    """The paper's 2016 yacht network (jdrop and, if installed, the PyTorch replica) at a
    tiny schedule: the JSON and the table are written; the committed table is its JSON's."""
    from experiments.uci_regression import yacht_schedule

    torch_flags = ["--torch", "--torch_epochs", "2"] if _has_torch() else []
    result = yacht_schedule.main(["--epochs", "2", "--splits", "2", "--num_samples", "20",
                                  "--workdir", str(tmp_path), *torch_flags])
    assert [r["epochs"] for r in result["runs"]][:1] == [2]
    for run in result["runs"]:
        assert run["steps"] == 2 * 3  # 277 points, batch 128
        assert [s["split"] for s in run["splits"]] == [0, 1]
        assert all(np.isfinite(s["mc_ll"]) and s["mc_rmse"] > 0 for s in run["splits"])
    assert "| jdrop | 2 | 6 |" in (tmp_path / "yacht_schedule.md").read_text()
    committed = RESULTS / "yacht_schedule.json"
    if committed.exists():
        saved = json.loads(committed.read_text())
        table = yacht_schedule.markdown(saved)
        assert table == (RESULTS / "yacht_schedule.md").read_text()


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None
