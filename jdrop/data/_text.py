"""Text corpora for language modelling: a vocabulary, Tiny Shakespeare characters, PTB words.

Every corpus is a :class:`~jdrop.data.DatasetSplits` whose splits hold ``{"tokens":
int32[N]}`` (the whole split as one token stream, for :func:`~jdrop.data.lm_batches`)
and whose ``vocab`` maps tokens to ids and back.
"""

from __future__ import annotations

import os
from pathlib import Path

from jdrop.data._dataset import ArrayDataset, DatasetSplits
from jdrop.data._errors import DataFormatError, DataNotFoundError
from jdrop.data._locate import candidate_dirs, find_files
from jdrop.data._vocab import Vocabulary

EOS = "<eos>"
UNK = "<unk>"


def tfds_split_sizes(num_chars: int) -> tuple[int, int, int]:
    """Sizes of TFDS's ``tiny_shakespeare`` train / validation / test splits.

    TFDS takes the first ``int(n * 0.9)`` characters for training and halves the rest
    (``int(rest * 0.5)`` for validation, the remainder for test).

    Examples:
      >>> tfds_split_sizes(1_115_394)
      (1003854, 55770, 55770)
    """
    train = int(num_chars * 0.9)
    validation = int((num_chars - train) * 0.5)
    return train, validation, num_chars - train - validation


def char_corpus(text: str, *, name: str = "char_corpus", source: str = "") -> DatasetSplits:
    """A character corpus split as TFDS splits Tiny Shakespeare (90 / 5 / 5 %).

    Args:
      text: the whole corpus.
      name: the data set's name.
      source: where the text came from.

    Returns:
      Splits of ``{"tokens": int32[n]}`` and a character :class:`Vocabulary` of the
      sorted unique characters of the whole text (so every split can be encoded).

    Examples:
      >>> corpus = char_corpus("abcdefghij" * 5)
      >>> len(corpus.train), len(corpus.validation), len(corpus.test)
      (45, 2, 3)
      >>> corpus.vocab.decode(corpus.test["tokens"]), len(corpus.vocab)
      ('hij', 10)
    """
    n_train, n_validation, _ = tfds_split_sizes(len(text))
    return char_splits(
        text[:n_train],
        text[n_train : n_train + n_validation],
        text[n_train + n_validation :],
        name=name,
        source=source,
    )


def char_splits(train: str, validation: str, test: str, *, name: str, source: str):
    """Character splits sharing one vocabulary (of all three texts), as ``DatasetSplits``.

    Examples:
      >>> char_splits("abab", "b", "c", name="toy", source="").vocab.tokens
      ('a', 'b', 'c')
    """
    vocab = Vocabulary.characters(train + validation + test)
    split = lambda t: ArrayDataset({"tokens": vocab.encode(t)})
    return DatasetSplits(
        name=name,
        train=split(train),
        validation=split(validation),
        test=split(test),
        vocab=vocab,
        source=source,
    )


_SHAKESPEARE_HOW = (
    "pass path=<a text file> or data_dir=<folder with input.txt> (--data_dir in the "
    "experiments), or put karpathy/char-rnn's data/tinyshakespeare/input.txt in "
    "../shared/data/tinyshakespeare/, or load it through TFDS (tiny_shakespeare) with "
    "download=True where the network is reachable"
)


def load_char_corpus(
    path: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None
) -> DatasetSplits:
    """Loads a character corpus (Tiny Shakespeare by default) from a text file.

    The file is read as UTF-8 without newline translation and split as TFDS splits
    ``tiny_shakespeare``: for the 1,115,394-character Tiny Shakespeare that is
    1,003,854 / 55,770 / 55,770 characters (train / validation / test).

    Args:
      path: the text file. If ``None``, ``input.txt`` is searched in ``data_dir``,
        ``data_dir/tinyshakespeare`` and ``tinyshakespeare/`` under the shared data
        folders (see :mod:`jdrop.data.locate`).
      data_dir: a folder to search first when ``path`` is ``None``.

    Returns:
      A :class:`DatasetSplits` named ``"tiny_shakespeare"`` (or the file's stem when
      ``path`` is given) with ``{"tokens"}`` splits and a character vocabulary.

    Raises:
      DataNotFoundError: when the file is missing (the message lists every place).

    Examples:
      Plain text, because it needs the shared data files::

        corpus = load_char_corpus()
        len(corpus.train), len(corpus.vocab)    # (1003854, 65)
    """
    if path is not None:
        file = Path(path).expanduser().absolute()
        if not file.is_file():
            raise DataNotFoundError(file.stem, [f"{file} (no such file)"], _SHAKESPEARE_HOW)
        name = file.stem
    else:
        found, looked = find_files(
            candidate_dirs("tinyshakespeare", data_dir), {"text": ("input.txt",)}
        )
        if found is None:
            raise DataNotFoundError("tiny_shakespeare", looked, _SHAKESPEARE_HOW)
        file, name = found["text"], "tiny_shakespeare"
    with open(file, encoding="utf-8", newline="") as f:
        try:
            text = f.read()
        except UnicodeDecodeError as e:
            raise DataFormatError(f"{file}: not UTF-8 text ({e})") from e
    return char_corpus(text, name=name, source=str(file))


_PTB_FILES = {
    "train": ("ptb.train.txt",),
    "validation": ("ptb.valid.txt",),
    "test": ("ptb.test.txt",),
}
_PTB_HOW = (
    "pass data_dir=<folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt> (--data_dir "
    "in the experiments; e.g. simple-examples/data from Mikolov's PTB archive), or put "
    "them in ../shared/data/ptb/"
)


def read_words(path: str | os.PathLike) -> list[str]:
    """The words of a PTB-format file: each line's whitespace-separated words + ``<eos>``.

    A final line without a newline also ends with ``<eos>``; an empty line is just
    ``<eos>``.
    """
    text = Path(path).read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    words: list[str] = []
    for line in lines:
        words.extend(line.split())
        words.append(EOS)
    return words


def load_ptb(data_dir: str | os.PathLike | None = None) -> DatasetSplits:
    """Loads a word-level corpus in the Penn Treebank format (Mikolov's ``ptb.*.txt``).

    The vocabulary is built from the training file, most frequent word first (ties
    alphabetical), as TensorFlow's PTB reader does. Validation and test words not in it
    become ``<unk>`` when the training file has ``<unk>`` (PTB does); otherwise they are
    an error.

    Args:
      data_dir: a folder searched first (itself, then ``data_dir/ptb``), before
        ``ptb/`` under the shared data folders.

    Returns:
      A :class:`DatasetSplits` named ``"ptb"`` with ``{"tokens": int32}`` train /
      validation / test splits and a word :class:`Vocabulary`.

    Raises:
      DataNotFoundError: when no folder holds the three files.
      ValueError: for a validation or test word missing from the training vocabulary
        when the training file has no ``<unk>``.

    Examples:
      Plain text, because it needs the files::

        ptb = load_ptb("simple-examples/data")
        len(ptb.vocab), len(ptb.train)    # (10000, 929589)
    """
    found, looked = find_files(candidate_dirs("ptb", data_dir), _PTB_FILES)
    if found is None:
        raise DataNotFoundError("ptb", looked, _PTB_HOW)
    words = {split: read_words(path) for split, path in found.items()}
    train_words = set(words["train"])
    unk = UNK if UNK in train_words else None
    vocab = Vocabulary.words(words["train"], unk=unk)
    if unk is None:
        for split in ("validation", "test"):
            unknown = [w for w in dict.fromkeys(words[split]) if w not in train_words]
            if unknown:
                raise ValueError(
                    f"{found[split]}: {len(unknown)} word(s) not in the training vocabulary "
                    f"(e.g. {unknown[0]!r}), and {found['train']} has no {UNK!r} to map "
                    "them to"
                )
    splits = {s: ArrayDataset({"tokens": vocab.encode(w)}) for s, w in words.items()}
    return DatasetSplits(name="ptb", vocab=vocab, source=str(found["train"].parent), **splits)
