"""TFDS data sets through ``tfds.data_source`` (random-access ArrayRecord; no TensorFlow).

``tensorflow_datasets`` is imported only inside these functions. By default nothing is
downloaded (``download=False``): the data must already be prepared (in ArrayRecord
format) under ``data_dir`` or TFDS's default folder (``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``). Every failure of TFDS to provide the data becomes a
:class:`~jdrop.data.DataNotFoundError` that quotes TFDS's own message.
"""

from __future__ import annotations

import os

import numpy as np

from jdrop.data._dataset import ArrayDataset, DatasetSplits
from jdrop.data._errors import DataFormatError, DataNotFoundError
from jdrop.data._text import char_splits

IMAGE_DATASETS = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}
TEXT_DATASETS = ("tiny_shakespeare",)


def _tfds_dir(data_dir) -> str:
    if data_dir is not None:
        return str(data_dir)
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _how(name: str) -> str:
    return (
        f"prepare it with TFDS in ArrayRecord format (tfds.data_source({name!r}, "
        "download=True) where the network is reachable, or `tfds build "
        f"{name} --file_format=array_record`) and pass that folder as TFDS's data_dir "
        "(tfds_data_dir= in load_dataset)"
    )


def data_source(name: str, split: str, data_dir, download: bool):
    """``tfds.data_source(name, split=...)``; every failure becomes a ``DataNotFoundError``."""
    place = f"TFDS {name!r} split {split!r} in {_tfds_dir(data_dir)} (download={download})"
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataNotFoundError(
            name,
            [f"{place}: tensorflow_datasets is not installed"],
            "pip install tensorflow-datasets, then " + _how(name),
        ) from e
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=download)
    except Exception as e:  # TFDS raises many types for "not available"; keep its message.
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
        raise DataNotFoundError(name, [f"{place}: {reason}"], _how(name)) from e


def load_tfds(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> ArrayDataset:
    """Loads one split of a TFDS image-classification set into memory.

    Args:
      name: one of ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``, ``"cifar100"``
        (text sets: :func:`load_tfds_char_corpus`).
      split: a TFDS split, e.g. ``"train"``, ``"test"``, ``"train[:90%]"``.
      data_dir: TFDS's data folder (default: ``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).
      download: let TFDS download and prepare the data when it is missing.

    Returns:
      ``{"inputs": float32 (N, H, W, C) in [0, 1], "labels": int32 (N,)}``, plus
      ``"coarse_labels"`` (int32) for cifar100. Images keep TFDS's channels-last shape:
      (28, 28, 1) for the MNISTs, (32, 32, 3) for the CIFARs.

    Raises:
      ValueError: for a name not in the list above.
      DataNotFoundError: when TFDS cannot provide the split (its message is quoted).

    Examples:
      Offline, with TFDS's mock data (random examples, no files)::

        with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
            ds = load_tfds("cifar10", "test")
        ds["inputs"].shape    # (8, 32, 32, 3)
    """
    if name in TEXT_DATASETS:
        raise ValueError(f"name={name!r} is a text corpus: use load_tfds_char_corpus({name!r})")
    if name not in IMAGE_DATASETS:
        raise ValueError(f"name must be one of {sorted(IMAGE_DATASETS)}, got name={name!r}")
    source = data_source(name, split, data_dir, download)
    n = len(source)
    if n == 0:
        raise DataFormatError(f"TFDS {name!r} split {split!r} is empty")
    # Indexing one record at a time: the mock source of tfds.testing.mock_data (4.9.10)
    # breaks __getitems__, and per-record reads are fast enough for these sizes.
    first = source[0]
    image = np.asarray(first["image"])
    if image.dtype != np.uint8 or image.ndim != 3:
        raise DataFormatError(
            f"TFDS {name!r}: expected uint8 (H, W, C) images, got {image.dtype}{list(image.shape)}"
        )
    keys = {"labels": "label"} | ({"coarse_labels": "coarse_label"} if name == "cifar100" else {})
    images = np.empty((n, *image.shape), np.uint8)
    labels = {k: np.empty(n, np.int32) for k in keys}
    for i in range(n):
        example = first if i == 0 else source[i]
        images[i] = example["image"]
        for ours, theirs in keys.items():
            labels[ours][i] = example[theirs]
    inputs = images.astype(np.float32) / np.float32(255)
    return ArrayDataset({"inputs": inputs, **labels})


def load_tfds_dataset(
    name: str, *, data_dir: str | os.PathLike | None = None, download: bool = False
) -> DatasetSplits:
    """The train and test splits of a TFDS set (images or Tiny Shakespeare).

    Images as :func:`load_tfds`; ``tiny_shakespeare`` as :func:`load_tfds_char_corpus`.

    Raises:
      ValueError: for an unsupported name.
      DataNotFoundError: when TFDS cannot provide the data.
    """
    if name in TEXT_DATASETS:
        return load_tfds_char_corpus(name, data_dir=data_dir, download=download)
    load = lambda split: load_tfds(name, split, data_dir=data_dir, download=download)
    return DatasetSplits(
        name=name,
        train=load("train"),
        test=load("test"),
        num_classes=IMAGE_DATASETS.get(name),
        source=f"tfds:{name}",
    )


def load_tfds_char_corpus(
    name: str = "tiny_shakespeare",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> DatasetSplits:
    """A TFDS text set (``tiny_shakespeare``) as a character corpus.

    Each split's texts are joined in order (the real ``tiny_shakespeare`` has one text
    per split: 1,003,854 / 55,770 / 55,770 characters); the vocabulary is the sorted
    unique characters of all three splits, as in :func:`~jdrop.data.load_char_corpus`.

    Returns:
      A :class:`DatasetSplits` with ``{"tokens": int32}`` train / validation / test
      splits and a character vocabulary.

    Raises:
      ValueError: for an unsupported name.
      DataNotFoundError: when TFDS cannot provide the data.
    """
    if name not in TEXT_DATASETS:
        raise ValueError(f"name must be one of {list(TEXT_DATASETS)}, got name={name!r}")
    texts = {}
    for split in ("train", "validation", "test"):
        source = data_source(name, split, data_dir, download)
        parts = [source[i]["text"] for i in range(len(source))]
        texts[split] = "".join(p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in parts)
    return char_splits(**texts, name=name, source=f"tfds:{name}")
