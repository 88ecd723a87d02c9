"""The main job's smoke run: the whole path (train, MC inference, shifts, plots, files)."""

import json

import numpy as np
import pytest
from flax import nnx

from experiments.mc_dropout import config, train
from experiments.mc_dropout.__main__ import main


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mc_smoke")
    results = main(["--workdir", str(workdir), "--smoke"])
    return workdir, results


def test_results_file_has_the_promised_keys(smoke_run):
    workdir, results = smoke_run
    saved = json.loads((workdir / "results.json").read_text())
    for mode in ("deterministic", "mc"):
        assert set(train.METRICS) <= set(saved[mode])
        for metric in train.METRICS:
            assert np.isfinite(saved[mode][metric])
        assert 0 <= saved[mode]["accuracy"] <= 1 and 0 <= saved[mode]["ece"] <= 1
    assert saved["mc_num_samples"] == 10
    assert saved["mc"] == saved["mc_vs_num_samples"]["10"]
    assert set(saved["shift_detection"]) == {"noise", "translation", "reversal"}
    for row in saved["shift_detection"].values():
        assert all(0 <= v <= 1 for v in row.values())


def test_table_and_plots_written(smoke_run):
    workdir, results = smoke_run
    table = (workdir / "results.md").read_text()
    assert "| deterministic (weight scaling) |" in table and "| MC dropout, T = 10 |" in table
    for name in ("reliability.png", "metrics_vs_samples.png", "uncertainty_noise.png"):
        assert (workdir / name).stat().st_size > 1000
    assert (workdir / "train" / "metrics.jsonl").exists()


def test_mc_with_one_sample_uses_one_stochastic_pass(smoke_run):
    _, results = smoke_run
    curve = results["mc_vs_num_samples"]
    assert list(curve) == ["1", "2", "5", "10"]


def test_bad_flags_name_the_flag(tmp_path):
    with pytest.raises(SystemExit):
        main(["--workdir", str(tmp_path), "--head_rate", "1.5"])
    with pytest.raises(ValueError, match="--mlp_input_rate must be in"):
        train.train_and_evaluate(config.Config(mlp_input_rate=-0.1), tmp_path)
    with pytest.raises(ValueError, match="model='resnet20' does not fit"):
        train.build_model(config.Config(model="resnet20"), (40,), 10)


@pytest.mark.parametrize("model", ["mlp", "gru"])
def test_each_model_reads_its_own_dropout_fields(model):
    """The MLP and the GRU take their rates from their own fields, not the CNN's."""
    cfg = config.Config(model=model, conv_rate=0.0, head_rate=0.0, mlp_input_rate=0.3,
                        mlp_hidden_rate=0.4, gru_recurrent_rate=0.3, gru_readout_rate=0.4,
                        mlp_width=8, gru_hidden=6)
    net = train.build_model(cfg, (40,), 10)
    if model == "gru":
        assert (net.recurrent_dropout, net.dropout) == (0.3, 0.4)
    else:
        rates = {float(m.rate) for _, m in nnx.iter_graph(net) if isinstance(m, nnx.Module)
                 and hasattr(m, "rate")}
        assert rates == {0.3, 0.4}
