"""``python -m experiments.regularizers --smoke``: result fields, resumption, the goals."""

import json

import pytest

from experiments.regularizers import __main__ as entry
from experiments.regularizers import train
from jdrop.data import load_fashion_mnist

try:
    load_fashion_mnist()
except Exception:  # noqa: BLE001 - the IDX files are not everywhere
    pytest.skip("Fashion-MNIST IDX files not found", allow_module_level=True)


def test_smoke_writes_results_and_resumes(tmp_path):
    result = entry.main(["--workdir", str(tmp_path), "--smoke"])
    saved = json.loads((tmp_path / "regularizers.json").read_text())
    assert set(saved["arms"]) == {"none", "early_stopping", "dropout_max_norm"}
    for arm in saved["arms"].values():
        assert len(arm["models"]) == 2
        for m in arm["models"]:
            assert 0 <= m["test_error"] <= 1
            assert m["test_accuracy"] == pytest.approx(1 - m["test_error"])
        assert 0 <= arm["test_error_mean"] <= 1
    assert saved["arms"]["dropout_max_norm"]["models"][0]["max_norm"] == 3.0
    assert "best_arm" in saved["goals"]
    assert (tmp_path / "regularizers.md").read_text().startswith("## Regularizers")
    assert (tmp_path / "regularizers_curves.png").stat().st_size > 0
    again = entry.main(["--workdir", str(tmp_path), "--smoke"])  # every arm file exists
    assert again["arms"]["none"]["test_error_mean"] == result["arms"]["none"]["test_error_mean"]


def test_goals_ordering():
    arms = {"none": {"test_error_mean": 0.12}, "l2": {"test_error_mean": 0.11},
            "dropout": {"test_error_mean": 0.10},
            "dropout_max_norm": {"test_error_mean": 0.09}}
    g = train.goals(arms)
    assert g["best_arm"] == "dropout_max_norm" and g["every_dropout_arm_ahead"]
    arms["l2"]["test_error_mean"] = 0.095
    assert not train.goals(arms)["every_dropout_arm_ahead"]


def test_unknown_arm_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        entry.main(["--workdir", str(tmp_path), "--smoke", "--arms", "dropconnect"])
