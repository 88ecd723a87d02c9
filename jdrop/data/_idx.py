"""IDX files (the MNIST family's format) and the Fashion-MNIST / MNIST loaders built on them.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), the dimensions as big-endian uint32, then the values in C order
(big-endian for multi-byte types). Files may be gzip-compressed (detected from the
content, not the name).
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from jdrop.data._dataset import ArrayDataset, DatasetSplits
from jdrop.data._errors import DataFormatError, DataNotFoundError
from jdrop.data._locate import candidate_dirs, find_files

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parses the bytes of an (uncompressed) IDX file.

    Args:
      data: the file's content.
      name: what to call the file in error messages.

    Returns:
      The array, with the header's shape and a native-byte-order dtype.

    Raises:
      DataFormatError: for a bad magic number, an unknown type code, or a data size
        different from the one the header announces (truncated or padded file).

    Examples:
      >>> import struct
      >>> raw = struct.pack(">4B2I", 0, 0, 0x08, 2, 2, 3) + bytes(range(6))
      >>> parse_idx(raw)
      array([[0, 1, 2],
             [3, 4, 5]], dtype=uint8)
      >>> parse_idx(raw[:-1])
      Traceback (most recent call last):
      ...
      jdrop.data._errors.DataFormatError: <bytes>: truncated or corrupt IDX file: ...
    """
    if len(data) < 4:
        raise DataFormatError(f"{name}: truncated IDX file: {len(data)} bytes, no header")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _IDX_TYPES:
        raise DataFormatError(
            f"{name}: not an IDX file: bad magic number 0x{data[:4].hex()} (expected 0x0000 "
            f"followed by a type code in {sorted(hex(c) for c in _IDX_TYPES)} and ndim)"
        )
    if ndim == 0:
        raise DataFormatError(f"{name}: bad IDX header: 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(
            f"{name}: truncated IDX file: {len(data)} bytes, shorter than its {header}-byte header"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        raise DataFormatError(
            f"{name}: truncated or corrupt IDX file: the header announces shape {shape} of "
            f"{dtype.newbyteorder('=').name} ({expected} bytes of data) but {actual} bytes "
            f"follow the {header}-byte header"
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file, plain or gzip-compressed.

    Raises:
      DataFormatError: for a corrupt gzip stream (bad CRC, truncated, not gzip) or a bad
        IDX header / size (see :func:`parse_idx`); the message names the file.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataFormatError(f"{path}: corrupt or truncated gzip file ({e})") from e
    return parse_idx(data, str(path))


_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Each file may be gzip-compressed (preferred) or plain.
_IDX_REQUIRED = {key: (f"{name}.gz", name) for key, name in _IDX_NAMES.items()}


@functools.lru_cache(maxsize=2)
def _load_idx_folder(name: str, files_key: tuple[tuple[str, str, int, int], ...]):
    # files_key: (logical name, path, mtime_ns, size) so that a changed file is re-read.
    files = {key: path for key, path, _, _ in files_key}
    splits = {}
    for split in ("train", "test"):
        images = read_idx(files[f"{split}_images"])
        labels = read_idx(files[f"{split}_labels"])
        where = files[f"{split}_images"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise DataFormatError(
                f"{where}: expected uint8 images of shape (N, 28, 28), got "
                f"{images.dtype}{list(images.shape)}"
            )
        if labels.shape != (len(images),) or labels.dtype != np.uint8:
            raise DataFormatError(
                f"{files[f'{split}_labels']}: expected {len(images)} uint8 labels to match "
                f"{where}, got {labels.dtype}{list(labels.shape)}"
            )
        if labels.size and labels.max() > 9:
            raise DataFormatError(
                f"{files[f'{split}_labels']}: labels must be in 0..9, found {labels.max()}"
            )
        inputs = images[..., None].astype(np.float32) / np.float32(255)
        splits[split] = ArrayDataset({"inputs": inputs, "labels": labels.astype(np.int32)})
    source = str(Path(files["train_images"]).parent)
    return DatasetSplits(name=name, num_classes=10, source=source, **splits)


def _load_idx_dataset(name, subdir, data_dir, system_dirs, how) -> DatasetSplits:
    found, looked = find_files(candidate_dirs(subdir, data_dir, system_dirs), _IDX_REQUIRED)
    if found is None:
        raise DataNotFoundError(name, looked, how)
    files_key = tuple(
        (key, str(path), path.stat().st_mtime_ns, path.stat().st_size)
        for key, path in sorted(found.items())
    )
    return _load_idx_folder(name, files_key)


FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"


def load_fashion_mnist(data_dir: str | os.PathLike | None = None) -> DatasetSplits:
    """Loads Fashion-MNIST from its four IDX files (``.gz`` or plain).

    A given ``data_dir`` is the only place searched (``data_dir``, then
    ``data_dir/fashion-mnist``): a wrong one raises, never falls back. Without it:
    ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``), and
    ``fashion-mnist/`` under the shared data folders (``../shared/data`` next to the
    repository and next to the current directory). The first folder holding all four
    of ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each ``.gz`` or plain) is
    used. The parsed result is cached in-process (read-only arrays).

    Args:
      data_dir: the folder to load from (used or refused, never replaced).

    Returns:
      A :class:`DatasetSplits` with 60,000 train and 10,000 test examples:
      ``inputs`` float32 in [0, 1] of shape (N, 28, 28, 1) and ``labels`` int32 in 0..9.

    Raises:
      DataNotFoundError: when no folder holds the four files (lists every folder).
      DataFormatError: for a corrupt or truncated file.

    Examples:
      Plain text, because it needs the data files::

        data = load_fashion_mnist()
        data.train["inputs"].shape, data.test["labels"].dtype   # (60000, 28, 28, 1), int32
    """
    how = (
        "pass data_dir=<folder with the four IDX files> (--data_dir in the experiments), "
        "or `apt-get install dataset-fashion-mnist` (installs them in "
        f"{FASHION_MNIST_SYSTEM_DIR}), or put them in ../shared/data/fashion-mnist/, or "
        "load it through TFDS (fashion_mnist) with download=True where the network is "
        "reachable"
    )
    return _load_idx_dataset(
        "fashion_mnist", "fashion-mnist", data_dir, [FASHION_MNIST_SYSTEM_DIR], how
    )


def load_mnist(data_dir: str | os.PathLike | None = None) -> DatasetSplits:
    """Loads MNIST from its four IDX files; same layout and result as Fashion-MNIST.

    Searched in ``data_dir``, ``data_dir/mnist``, then ``mnist/`` under the shared data
    folders.

    Raises:
      DataNotFoundError: when no folder holds the four files (lists every folder).
      DataFormatError: for a corrupt or truncated file.
    """
    how = (
        "pass data_dir=<folder with the four MNIST IDX files> (--data_dir in the "
        "experiments), or put them in ../shared/data/mnist/, or load it through TFDS "
        "(mnist) with download=True where the network is reachable"
    )
    return _load_idx_dataset("mnist", "mnist", data_dir, [], how)
