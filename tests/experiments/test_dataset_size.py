"""``python -m experiments.dataset_size --smoke``: result fields per size and arm."""

import json

import pytest

from experiments.dataset_size import __main__ as entry
from jdrop.data import load_fashion_mnist

try:
    load_fashion_mnist()
except Exception:  # noqa: BLE001 - the IDX files are not everywhere
    pytest.skip("Fashion-MNIST IDX files not found", allow_module_level=True)


def test_smoke_writes_results(tmp_path):
    entry.main(["--workdir", str(tmp_path), "--smoke"])
    saved = json.loads((tmp_path / "dataset_size.json").read_text())
    assert [r["size"] for r in saved["sizes"]] == [100, 500]
    for row in saved["sizes"]:
        for arm, rate in (("none", 0.0), ("dropout", 0.5)):
            assert len(row[arm]["models"]) == 3
            for m in row[arm]["models"]:
                assert m["hid_rate"] == rate and m["num_train"] == row["size"]
                assert m["test_accuracy"] == pytest.approx(1 - m["test_error"])
        assert row["gain"] == pytest.approx(
            row["none"]["test_error_mean"] - row["dropout"]["test_error_mean"])
    assert (tmp_path / "dataset_size.png").stat().st_size > 0
