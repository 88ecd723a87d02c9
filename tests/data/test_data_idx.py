"""IDX parsing (header, sizes, gzip) and the Fashion-MNIST / MNIST loaders."""

import gzip
import struct

import numpy as np
import pytest

from jdrop.data import DataFormatError, DataNotFoundError, load_fashion_mnist, read_idx
from jdrop.data import _idx as idx

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    code = CODES[array.dtype.type] if array.dtype.type in CODES else 0x0E
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, compress=True):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_fake_mnist(folder, n_train=12, n_test=5, compress=True):
    """The four IDX files with random images; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        arrays[prefix] = images, labels
    return arrays


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.arange(-3, 3, dtype=np.int8),
        np.arange(-6, 6, dtype=np.int16).reshape(3, 4),
        np.array([[1, -(2**31)], [2**31 - 1, 0]], dtype=np.int32),
        np.linspace(-1, 1, 10, dtype=np.float32).reshape(5, 2),
        np.linspace(-1, 1, 4, dtype=np.float64),
    ],
    ids=lambda a: str(a.dtype),
)
@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_read_idx_round_trips(tmp_path, array, compress):
    got = read_idx(write_idx(tmp_path / "file", array, compress))
    assert got.dtype == array.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x00\x00", "no header"),
        (b"\x01\x00\x08\x02" + GOOD[4:], "bad magic number 0x01000802"),
        (b"\x00\x00\x07\x02" + GOOD[4:], "bad magic number 0x00000702"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (GOOD[:9], "shorter than its 12-byte header"),
        (GOOD[:-1], r"announces shape \(3, 4\) of uint8 \(12 bytes of data\) but 11 bytes"),
        (GOOD + b"\x00", "but 13 bytes follow"),
    ],
    ids=["short", "magic", "type", "ndim", "header", "truncated", "trailing"],
)
def test_corrupt_idx_is_an_error_naming_the_file(tmp_path, data, match):
    path = tmp_path / "bad-idx"
    path.write_bytes(data)
    with pytest.raises(DataFormatError, match=match) as info:
        read_idx(path)
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, ValueError)


def test_corrupt_gzip_is_an_error(tmp_path):
    packed = gzip.compress(GOOD)
    bad_crc = packed[:-8] + bytes([packed[-8] ^ 0xFF]) + packed[-7:]
    cases = {
        "truncated": packed[: len(packed) // 2],
        "crc": bad_crc,
        "garbage": packed[:10] + b"x" * 20,
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.gz"
        path.write_bytes(data)
        with pytest.raises(DataFormatError, match="corrupt or truncated gzip") as info:
            read_idx(path)
        assert str(path) in str(info.value), name


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_load_fashion_mnist_from_data_dir(tmp_path, compress):
    arrays = write_fake_mnist(tmp_path / "fm", compress=compress)
    data = load_fashion_mnist(tmp_path / "fm")
    assert data.name == "fashion_mnist" and data.num_classes == 10
    assert data.source == str(tmp_path / "fm")
    assert data.train["inputs"].shape == (12, 28, 28, 1) and data.test["labels"].shape == (5,)
    assert data.train["inputs"].dtype == np.float32 and data.train["labels"].dtype == np.int32
    np.testing.assert_allclose(data.train["inputs"][..., 0] * 255, arrays["train"][0], atol=1e-4)
    np.testing.assert_array_equal(data.test["labels"], arrays["t10k"][1])


def test_data_dir_subfolder_is_searched(tmp_path):
    write_fake_mnist(tmp_path / "fashion-mnist")
    assert load_fashion_mnist(tmp_path).source == str(tmp_path / "fashion-mnist")


def test_inconsistent_files_are_errors(tmp_path):
    write_fake_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataFormatError, match="expected 5 uint8 labels"):
        load_fashion_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(5, 10, np.uint8))
    with pytest.raises(DataFormatError, match="labels must be in 0..9, found 10"):
        load_fashion_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))[:-2]))
    with pytest.raises(DataFormatError, match="truncated"):
        load_fashion_mnist(tmp_path)


def test_missing_files_list_every_place(tmp_path, no_shared_data, monkeypatch):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    monkeypatch.setattr(idx, "FASHION_MNIST_SYSTEM_DIR", str(system))
    given = tmp_path / "given"
    given.mkdir()
    (given / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist(given)
    message = str(info.value)
    # a given data_dir is used or refused, never replaced by the system or shared copies
    for place in [given, given / "fashion-mnist"]:
        assert str(place) in message
    for place in [system, *(root / "fashion-mnist" for root in no_shared_data)]:
        assert str(place) not in message.split("Looked in:")[1].split("pass")[0]
    assert "missing train-labels-idx1-ubyte.gz or train-labels-idx1-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message and "download=True" in message
    assert isinstance(info.value, FileNotFoundError) and len(info.value.looked) == 2


def test_default_system_folder():
    assert idx.FASHION_MNIST_SYSTEM_DIR == "/usr/share/datasets/fashion-mnist"


def test_real_fashion_mnist(shared_dir):
    folder = shared_dir("fashion-mnist")
    data = load_fashion_mnist(folder)
    assert data.train["inputs"].shape == (60000, 28, 28, 1)
    assert data.test["inputs"].shape == (10000, 28, 28, 1)
    assert data.train["inputs"].dtype == np.float32 and data.test["labels"].dtype == np.int32
    assert 0.0 <= data.train["inputs"].min() and data.train["inputs"].max() <= 1.0
    assert np.bincount(data.train["labels"]).tolist() == [6000] * 10
    assert np.bincount(data.test["labels"]).tolist() == [1000] * 10
    assert load_fashion_mnist(folder) is data  # parsed once per process
    assert len(load_fashion_mnist().train) == 60000  # found without data_dir
