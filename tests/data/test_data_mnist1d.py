"""MNIST-1D generated in-process: shapes, determinism, no network, global RNG untouched."""

import random
import socket
import sys

import numpy as np
import pytest

from jdrop.data import DataNotFoundError, load_mnist1d
from jdrop.data import _mnist_1d as mnist_1d

pytest.importorskip("mnist1d", reason="MNIST-1D tests need the mnist1d package")


def test_default_mnist1d():
    data = load_mnist1d()
    assert data.name == "mnist1d" and data.num_classes == 10 and data.validation is None
    assert data.train["inputs"].shape == (4000, 40) and data.test["inputs"].shape == (1000, 40)
    assert data.train["inputs"].dtype == np.float32 and data.train["labels"].dtype == np.int32
    labels = np.concatenate([data.train["labels"], data.test["labels"]])
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10  # 500 per digit
    assert load_mnist1d() is data and load_mnist1d(42) is data  # cached; default seed 42
    x = np.concatenate([data.train["inputs"], data.test["inputs"]])
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3  # standardised


def test_same_as_mnist1d_itself():
    import mnist1d.data

    state = np.random.get_state()  # noqa: NPY002
    try:
        expected = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    finally:
        np.random.set_state(state)  # noqa: NPY002
    data = load_mnist1d()
    np.testing.assert_array_equal(data.train["inputs"], expected["x"].astype(np.float32))
    np.testing.assert_array_equal(data.test["labels"], expected["y_test"])


def test_generation_is_offline_and_leaves_global_rngs_alone(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("MNIST-1D generation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    expected = (np.random.random(), random.random())  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    data = load_mnist1d(seed=3)  # a seed not cached yet: really generates
    assert (np.random.random(), random.random()) == expected  # noqa: NPY002
    assert not np.array_equal(data.train["inputs"], load_mnist1d().train["inputs"])


def test_missing_package_is_data_not_found(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(DataNotFoundError, match="pip install mnist1d"):
        mnist_1d._generate.__wrapped__(5)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed=-1"):
        load_mnist1d(-1)
