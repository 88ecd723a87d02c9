"""``python -m experiments.test_time_rule --smoke``: result fields and the crossing rule."""

import json

import numpy as np
import pytest

from experiments.test_time_rule import __main__ as entry
from experiments.test_time_rule import train
from jdrop.data import load_fashion_mnist

try:
    load_fashion_mnist()
except Exception:  # noqa: BLE001 - the IDX files are not everywhere
    pytest.skip("Fashion-MNIST IDX files not found", allow_module_level=True)


def test_smoke_writes_results(tmp_path):
    entry.main(["--workdir", str(tmp_path), "--smoke"])
    saved = json.loads((tmp_path / "test_time_rule.json").read_text())
    assert set(saved["models"]) == {"mlp", "cnn"}
    for m in saved["models"].values():
        ws = m["weight_scaling"]
        assert ws["test_accuracy"] == pytest.approx(1 - ws["test_error"])
        assert m["mc"]["T"] == [1, 2, 5, 10]
        assert len(m["mc"]["test_error"]) == len(m["mc"]["test_accuracy"]) == 4
        assert all(0 <= e <= 1 for e in m["mc"]["test_error"])
        assert m["num_test"] == 200
    assert (tmp_path / "test_time_rule.png").stat().st_size > 0


def test_crossing():
    assert train.crossing(np.array([0.3, 0.2, 0.25, 0.1]), 0.2) == 4
    assert train.crossing(np.array([0.3, 0.2, 0.15]), 0.2) == 2
    assert train.crossing(np.array([0.3, 0.4]), 0.2) is None
