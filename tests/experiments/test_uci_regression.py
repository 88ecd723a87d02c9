"""The UCI experiment end to end on one data set and two splits (small T and epochs)."""

import json

import numpy as np
import pytest

from experiments.uci_regression import train as uci_regression
from experiments.uci_regression.__main__ import main


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
    assert "| yacht | 2 |" in table and "1.11 ± 0.09" in table


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


def test_bad_flags():
    with pytest.raises(SystemExit):
        main(["--num_samples", "0"])
    with pytest.raises(SystemExit):
        main(["--datasets", "nope"])
    with pytest.raises(ValueError, match="unknown --datasets"):
        uci_regression.check_config(uci_regression.configs.Config(datasets=("nope",)))
