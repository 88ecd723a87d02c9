"""``python -m experiments.dropout_rate --smoke``: result fields of the three sweeps."""

import json

import pytest

from experiments.dropout_rate import __main__ as entry
from experiments.dropout_rate import train
from jdrop.data import load_fashion_mnist

try:
    load_fashion_mnist()
except Exception:  # noqa: BLE001 - the IDX files are not everywhere
    pytest.skip("Fashion-MNIST IDX files not found", allow_module_level=True)


def test_smoke_writes_results(tmp_path):
    entry.main(["--workdir", str(tmp_path), "--smoke"])
    saved = json.loads((tmp_path / "dropout_rate.json").read_text())
    parts = saved["parts"]
    assert [p["hid_rate"] for p in parts["fixed_n"]["points"]] == [0.0, 0.5, 0.9]
    assert [p["width"] for p in parts["fixed_pn"]["points"]] == [8, 16]
    assert parts["fixed_pn"]["built_width"] == 16
    assert len(parts["grid"]["points"]) == 4
    for part in parts.values():
        for point in part["points"]:
            for m in point["models"]:
                assert m["test_accuracy"] == pytest.approx(1 - m["test_error"])
        assert "test_error_mean" in part["optimum"]
    for png in ("dropout_rate_sweeps.png", "dropout_rate_grid.png"):
        assert (tmp_path / png).stat().st_size > 0


def test_kept_width():
    assert train.kept_width(64, 0.0) == 64
    assert train.kept_width(64, 0.5) == 128
    assert train.kept_width(64, 0.8) == 320
