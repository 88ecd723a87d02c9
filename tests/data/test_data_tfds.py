"""TFDS through tfds.data_source, offline with tfds.testing.mock_data (no TensorFlow)."""

import sys

import numpy as np
import pytest

from jdrop.data import (
    DataNotFoundError,
    load_dataset,
    load_tfds,
    load_tfds_char_corpus,
    load_tfds_dataset,
)

tfds = pytest.importorskip("tensorflow_datasets", reason="TFDS tests need tensorflow-datasets")


def mock(num_examples=6):
    # USE_CODE: features come from the builder's code, so no metadata files are needed;
    # data_source's mock needs no TensorFlow (only as_dataset / tfds.load would).
    return tfds.testing.mock_data(
        num_examples=num_examples, policy=tfds.testing.MockPolicy.USE_CODE
    )


@pytest.mark.parametrize(
    "name, shape, num_classes",
    [
        ("mnist", (28, 28, 1), 10),
        ("fashion_mnist", (28, 28, 1), 10),
        ("cifar10", (32, 32, 3), 10),
        ("cifar100", (32, 32, 3), 100),
    ],
)
def test_load_tfds_images(name, shape, num_classes):
    with mock(6):
        ds = load_tfds(name, "train")
        raw = tfds.data_source(name, split="train")
        expected = np.stack([raw[i]["image"] for i in range(6)])
    assert ds["inputs"].shape == (6, *shape) and ds["inputs"].dtype == np.float32
    np.testing.assert_allclose(ds["inputs"] * 255, expected, atol=1e-4)
    assert ds["labels"].dtype == np.int32 and ds["labels"].max() < num_classes
    if name == "cifar100":
        assert ds["coarse_labels"].dtype == np.int32 and ds["coarse_labels"].max() < 20
    else:
        assert ds.names == ("inputs", "labels")


def test_load_tfds_dataset_has_train_and_test():
    with mock(4):
        data = load_tfds_dataset("cifar10")
    assert data.split_names == ("train", "test") and data.num_classes == 10
    assert data.source == "tfds:cifar10" and len(data.test) == 4


def test_tiny_shakespeare_through_tfds():
    with mock(3):
        corpus = load_tfds_char_corpus()
        texts = {
            s: "".join(str(ex["text"]) for ex in tfds.data_source("tiny_shakespeare", split=s))
            for s in ("train", "validation", "test")
        }
    assert corpus.split_names == ("train", "validation", "test")
    for split, text in texts.items():
        assert corpus.vocab.decode(corpus.split(split)["tokens"]) == text
    assert corpus.vocab.tokens == tuple(sorted(set("".join(texts.values()))))


def test_load_dataset_uses_tfds_when_asked_or_when_needed(shared_dir):
    shared_dir("fashion-mnist")
    with mock(5):
        assert load_dataset("cifar100").num_classes == 100
        assert len(load_dataset("fashion_mnist", prefer_tfds=True).train) == 5
        assert len(load_dataset("fashion_mnist").train) == 60000  # local files first


def test_unprepared_tfds_data_is_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_tfds("cifar10", "test", data_dir=tmp_path)
    message = str(info.value)
    assert f"TFDS 'cifar10' split 'test' in {tmp_path} (download=False)" in message
    assert "download=True" in message


def test_missing_tfds_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DataNotFoundError, match="tensorflow_datasets is not installed"):
        load_tfds("mnist")


def test_bad_names():
    with pytest.raises(ValueError, match="load_tfds_char_corpus"):
        load_tfds("tiny_shakespeare")
    with pytest.raises(ValueError, match="name='imagenet2012'"):
        load_tfds("imagenet2012")
    with pytest.raises(ValueError, match="name='mnist'"):
        load_tfds_char_corpus("mnist")
