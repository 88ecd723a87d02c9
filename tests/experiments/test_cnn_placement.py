"""``python -m experiments.cnn_placement --smoke``: result fields, the goal, the arms."""

import dataclasses
import json

import pytest

from experiments.cnn_placement import __main__ as entry
from experiments.cnn_placement import config, train
from jdrop.data import load_fashion_mnist

try:
    load_fashion_mnist()
except Exception:  # noqa: BLE001 - the IDX files are not everywhere
    pytest.skip("Fashion-MNIST IDX files not found", allow_module_level=True)


def test_smoke_writes_results(tmp_path):
    entry.main(["--workdir", str(tmp_path), "--smoke"])
    saved = json.loads((tmp_path / "cnn_placement.json").read_text())
    assert set(saved["arms"]) == {"lenet_none", "lenet_dropblock", "resnet_stochastic_depth"}
    for arm in saved["arms"].values():
        for m in arm["models"]:
            assert m["test_accuracy"] == pytest.approx(1 - m["test_error"])
    assert saved["goal"]["target"] == 0.935 and saved["goal"]["met"] in (True, False)
    assert (tmp_path / "cnn_placement.png").stat().st_size > 0


def test_arm_hypers():
    c = config.default()
    assert "hid_rate" not in train.arm_hypers("lenet_none", c)
    assert train.arm_hypers("lenet_spatial", c)["spatial_rate"] == c.spatial_rate
    assert train.arm_hypers("resnet_stochastic_depth", c)["path_rate"] == c.path_rate
    assert train.arm_hypers("resnet_fc", c)["hid_rate"] == c.fc_rate


def test_only_resnet_arms_clip_gradients():
    c = config.default()
    assert train.arm_hypers("resnet_fc", c)["clip"] == c.resnet_clip
    assert "clip" not in train.arm_hypers("lenet_fc", c)
    with pytest.raises(ValueError, match="resnet_clip"):
        train.check_config(dataclasses.replace(c, resnet_clip=0.0))


def test_flip_reaches_every_arm_and_is_checked():
    c = dataclasses.replace(config.default(), flip=0.5)
    assert {train.arm_hypers(a, c)["flip"] for a in config.ARMS} == {0.5}
    with pytest.raises(ValueError, match="flip=1.5"):
        train.check_config(dataclasses.replace(c, flip=1.5))


def test_vgg_style_lenet_is_checked():
    c = dataclasses.replace(config.default(), lenet_depth=0)
    with pytest.raises(ValueError, match="lenet_depth=0"):
        train.check_config(c)
