"""The main job's smoke run: the whole path (train, MC inference, shifts, plots, files)."""

import json

import numpy as np
import pytest

from experiments import mc_dropout, shifts


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mc_smoke")
    results = mc_dropout.main(["--workdir", str(workdir), "--smoke"])
    return workdir, results


def test_results_file_has_the_promised_keys(smoke_run):
    workdir, results = smoke_run
    saved = json.loads((workdir / "results.json").read_text())
    for mode in ("deterministic", "mc"):
        assert set(mc_dropout.METRICS) <= set(saved[mode])
        for metric in mc_dropout.METRICS:
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


def test_shifts_change_the_inputs():
    import jax

    x = np.random.default_rng(0).normal(size=(4, 40)).astype(np.float32)
    for name in shifts.SHIFTS:
        out = shifts.apply_shift(name, jax.random.key(0), x)
        assert out.shape == x.shape and out.dtype == np.float32
        assert not np.allclose(out, x)
    with pytest.raises(ValueError, match="unknown shift 'blur'"):
        shifts.apply_shift("blur", jax.random.key(0), x)


def test_bad_flags_name_the_flag(tmp_path):
    with pytest.raises(SystemExit):
        mc_dropout.parse_args(["--workdir", str(tmp_path), "--head_rate", "1.5"])
    with pytest.raises(ValueError, match="model='resnet20' does not fit"):
        mc_dropout.build_model(mc_dropout.configs.smoke().__class__(model="resnet20"),
                               (40,), 10)
