"""Parallel text for machine translation: loaders, a joint subword vocabulary, batches.

* :func:`load_parallel_text` reads two aligned files (line *i* of one translates line
  *i* of the other); :func:`load_multi30k` the Multi30k task-1 files; and
  :func:`load_tfds_translation` a TFDS translation set (``ted_hrlr_translate/pt_to_en``,
  ``wmt14_translate/de-en``, ...).
* :class:`SubwordTokenizer` is a thin wrapper over SentencePiece with one vocabulary
  for both languages (so the source and target embeddings can be tied), trained on the
  training split and cached on disk.
* :func:`translation_batches` groups pairs of similar length into padded batches with
  masks (resumable, deterministic per ``(seed, epoch)``); :func:`source_batches` batches
  the sources of an evaluation set for decoding and :func:`restore_order` puts the
  outputs back in the set's order.

``sentencepiece`` and ``tensorflow_datasets`` are imported inside the functions that use
them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from jdrop._validation import check_choice, check_int, check_number
from jdrop.data._errors import DataFormatError, DataNotFoundError
from jdrop.data._locate import candidate_dirs, find_files
from jdrop.data._tfds_source import data_source

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3

MULTI30K_LANGUAGES = ("en", "de", "fr", "cs")
MULTI30K_SPLITS = (
    "train",
    "val",
    "test_2016_flickr",
    "test_2017_flickr",
    "test_2017_mscoco",
    "test_2018_flickr",
)
_MULTI30K_HOW = (
    "pass data_dir=<folder with {split}.{lang}.gz files> (--data_dir in the experiments), "
    "or put multi30k/dataset's data/task1/raw/*.gz files in ../shared/data/multi30k/"
)

ParallelSplits = dict[str, tuple[list[str], list[str]]]


# ---------------------------------------------------------------------------- loading


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (gzipped when its name ends in ``.gz``), no newlines."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataFormatError(f"{path}: cannot be read ({type(e).__name__}: {e})") from e
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not UTF-8 text ({e})") from e
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _check_max_pairs(max_pairs) -> int | None:
    return check_int(max_pairs, "max_pairs", 1, optional=True)


def load_parallel_text(
    source_path: str | os.PathLike,
    target_path: str | os.PathLike,
    *,
    max_pairs: int | None = None,
) -> tuple[list[str], list[str]]:
    """Reads two aligned text files: line *i* of the target translates line *i* of the source.

    Files are UTF-8, one sentence a line, plain or gzipped (a name ending in ``.gz``);
    the newline (``\\n`` or ``\\r\\n``) is removed, nothing else is changed (no other
    whitespace stripping, no normalisation).

    Args:
      source_path: the source-language file.
      target_path: the target-language file.
      max_pairs: keep only the first ``max_pairs`` pairs (``None``: all). The files'
        line counts are checked before cutting.

    Returns:
      ``(sources, targets)``, two lists of strings of equal length.

    Raises:
      DataNotFoundError: a path does not exist or is a folder (every such path is listed).
      DataFormatError: the files have different numbers of lines (both files and counts
        are named), or a file is not UTF-8 or not valid gzip.
      ValueError: ``max_pairs`` is not an int >= 1.

    Examples:
      >>> import pathlib, tempfile
      >>> folder = pathlib.Path(tempfile.mkdtemp())
      >>> _ = (folder / "a.en").write_text("A dog.\\nTwo cats.\\n", encoding="utf-8")
      >>> _ = (folder / "a.de").write_text("Ein Hund.\\nZwei Katzen.\\n", encoding="utf-8")
      >>> load_parallel_text(folder / "a.en", folder / "a.de")
      (['A dog.', 'Two cats.'], ['Ein Hund.', 'Zwei Katzen.'])
      >>> load_parallel_text(folder / "a.en", folder / "a.de", max_pairs=1)
      (['A dog.'], ['Ein Hund.'])
    """
    max_pairs = _check_max_pairs(max_pairs)
    paths = [Path(p).expanduser().absolute() for p in (source_path, target_path)]
    looked = []
    for path in paths:
        if not path.is_file():
            looked.append(f"{path} ({'a folder, not a file' if path.exists() else 'no such file'})")
    if looked:
        raise DataNotFoundError(
            "parallel text", looked, "pass the paths of two existing, aligned text files"
        )
    sources, targets = (_read_lines(path) for path in paths)
    if len(sources) != len(targets):
        raise DataFormatError(
            f"{paths[0]} has {len(sources)} lines but {paths[1]} has {len(targets)}: "
            "parallel files must be aligned line by line"
        )
    if max_pairs is not None:
        sources, targets = sources[:max_pairs], targets[:max_pairs]
    return sources, targets


def _check_splits(splits, known: Sequence[str] | None, name: str = "splits") -> tuple[str, ...]:
    if isinstance(splits, str):
        splits = (splits,)
    try:
        splits = tuple(splits)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of split names, got {name}={splits!r}"
        ) from None
    if not splits:
        raise ValueError(f"{name} must name at least one split, got {name}={splits!r}")
    for split in splits:
        if not isinstance(split, str):
            raise TypeError(f"{name} must hold strings, got {split!r} in {name}={splits!r}")
        if known is not None and split not in known:
            raise ValueError(f"{name} must be drawn from {tuple(known)}, got {split!r}")
    if len(set(splits)) != len(splits):
        raise ValueError(f"{name} must not repeat a split, got {name}={splits!r}")
    return splits


def _check_pair(source, target, choices: Sequence[str] | None) -> None:
    for name, value in (("source", source), ("target", target)):
        if choices is not None:
            check_choice(value, name, choices)
        elif not isinstance(value, str) or not value:
            raise ValueError(
                f"{name} must be a language name (a non-empty str), got {name}={value!r}"
            )
    if source == target:
        raise ValueError(f"source and target must differ, got source={source!r}, target={target!r}")


def load_multi30k(
    data_dir: str | os.PathLike | None = None,
    *,
    source: str = "en",
    target: str = "de",
    splits: Sequence[str] = ("train", "val", "test_2016_flickr"),
    max_pairs: int | None = None,
) -> ParallelSplits:
    """Loads Multi30k task 1 (image descriptions and their translations) from its raw files.

    The files are ``{split}.{lang}.gz`` (or uncompressed ``{split}.{lang}``), raw and
    untokenised, as in ``multi30k/dataset``'s ``data/task1/raw``: ``train`` 29,000 pairs,
    ``val`` 1,014, ``test_2016_flickr`` 1,000 (the test set most papers report),
    ``test_2017_flickr`` 1,000, ``test_2017_mscoco`` 461, ``test_2018_flickr`` 1,071.
    They are searched in ``data_dir`` (itself, then ``data_dir/multi30k``) when it is
    given, otherwise in ``multi30k/`` under each shared data folder (see
    :func:`~jdrop.data.shared_data_roots`); the first folder holding every requested file
    wins. A ``data_dir`` the user gives is used or refused, never replaced.

    Args:
      data_dir: a folder holding the files, or ``None`` to search the shared data folders.
      source: the source language, one of ``"en"``, ``"de"``, ``"fr"``, ``"cs"``.
      target: the target language (another of them).
      splits: the splits to load (a single name is also accepted).
      max_pairs: keep only the first ``max_pairs`` pairs of each split.

    Returns:
      ``{split: (sources, targets)}`` in the order of ``splits``.

    Raises:
      ValueError: an unknown or repeated language or split, or a bad ``max_pairs``.
      DataNotFoundError: no folder holds every file (the message lists each folder
        searched and what it lacks).
      DataFormatError: a file is unreadable or the two sides of a split differ in length.

    Examples:
      Plain text, because it needs the data files::

        data = load_multi30k()                    # en -> de, train / val / test_2016_flickr
        len(data["train"][0]), data["test_2016_flickr"][1][0]
        # (29000, 'Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.')

    References:
      Elliott, D., Frank, S., Sima'an, K. and Specia, L. "Multi30K: Multilingual
      English-German Image Descriptions". Proceedings of the 5th Workshop on Vision and
      Language, 2016.
    """
    _check_pair(source, target, MULTI30K_LANGUAGES)
    splits = _check_splits(splits, MULTI30K_SPLITS)
    max_pairs = _check_max_pairs(max_pairs)
    required = {
        f"{split}.{lang}": (f"{split}.{lang}.gz", f"{split}.{lang}")
        for split in splits
        for lang in (source, target)
    }
    found, looked = find_files(candidate_dirs("multi30k", data_dir), required)
    if found is None:
        raise DataNotFoundError("multi30k", looked, _MULTI30K_HOW)
    return {
        split: load_parallel_text(
            found[f"{split}.{source}"], found[f"{split}.{target}"], max_pairs=max_pairs
        )
        for split in splits
    }


def _as_text(value, name: str, language: str, index: int) -> str:
    value = value.numpy() if hasattr(value, "numpy") else value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise DataFormatError(
        f"TFDS {name!r}: example {index} has a non-text {language!r} feature: {value!r}"
    )


def load_tfds_translation(
    name: str,
    *,
    source: str,
    target: str,
    splits: Sequence[str] = ("train", "validation", "test"),
    data_dir: str | os.PathLike | None = None,
    max_pairs: int | None = None,
    download: bool = False,
) -> ParallelSplits:
    """Loads a TFDS translation set (one text feature per language) as parallel text.

    Reads through ``tfds.data_source`` (random access, no TensorFlow graph). Each example
    is a dict with one string feature per language, e.g. ``{"pt": ..., "en": ...}`` for
    ``ted_hrlr_translate/pt_to_en``; the ``source`` and ``target`` features are taken.
    ``ted_hrlr_translate`` works without TensorFlow; TFDS 4.9 registers the
    ``wmt*_translate`` builders only when TensorFlow is importable (it is on Colab).

    Args:
      name: the TFDS name with its configuration, e.g. ``"ted_hrlr_translate/pt_to_en"``
        or ``"wmt14_translate/de-en"``.
      source: the source language's feature name (``"pt"``).
      target: the target language's feature name (``"en"``).
      splits: TFDS splits (slicing such as ``"train[:10%]"`` works).
      data_dir: TFDS's data folder (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      max_pairs: keep only the first ``max_pairs`` pairs of each split (only those are read).
      download: let TFDS download and prepare the data when it is missing.

    Returns:
      ``{split: (sources, targets)}`` in the order of ``splits``.

    Raises:
      ValueError: ``source == target``, an empty or repeated split, a bad ``max_pairs``.
      DataNotFoundError: TFDS cannot provide a split (its message is quoted), or
        ``tensorflow_datasets`` is not installed.
      DataFormatError: examples lack the ``source`` or ``target`` feature, or it is not text.

    Examples:
      Offline, with TFDS's mock data (random strings, no files)::

        with tfds.testing.mock_data(num_examples=4):
            data = load_tfds_translation(
                "ted_hrlr_translate/pt_to_en", source="pt", target="en")
        len(data["train"][0])    # 4
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a TFDS data set name, got name={name!r}")
    _check_pair(source, target, None)
    splits = _check_splits(splits, None)
    max_pairs = _check_max_pairs(max_pairs)
    out: ParallelSplits = {}
    for split in splits:
        examples = data_source(name, split, data_dir, download)
        n = len(examples) if max_pairs is None else min(len(examples), max_pairs)
        sources, targets = [], []
        for i in range(n):  # one record at a time (tfds mock sources break __getitems__)
            example = examples[i]
            missing = [lang for lang in (source, target) if lang not in example]
            if missing:
                raise DataFormatError(
                    f"TFDS {name!r} split {split!r}: examples have features {sorted(example)}, "
                    f"not {missing} (pass source= and target= from those)"
                )
            sources.append(_as_text(example[source], name, source, i))
            targets.append(_as_text(example[target], name, target, i))
        out[split] = (sources, targets)
    return out


# ------------------------------------------------------------------------- tokenizer


def _sentencepiece():
    try:
        import sentencepiece
    except ImportError as e:  # pragma: no cover - an install problem
        raise ImportError(
            "SubwordTokenizer needs sentencepiece: pip install 'sentencepiece>=0.2' (or "
            "jdrop's experiments extra)"
        ) from e
    return sentencepiece


class SubwordTokenizer:
    """A SentencePiece subword vocabulary shared by the source and target languages.

    One vocabulary for both languages (trained on the source and target training texts
    together) lets a translation model tie its encoder and decoder embeddings and its
    output projection. The special ids are fixed: ``pad_id = 0``, ``bos_id = 1``,
    ``eos_id = 2``, ``unk_id = 3``; SentencePiece normalises the text (NFKC) and treats
    whitespace as a symbol (``▁``), so :meth:`decode` returns detokenised text.

    Build one with :meth:`train` (cached on disk) or :meth:`load`; the object pickles
    (as its serialized model).

    Attributes:
      path: the model file it was loaded from or cached to (``None`` when built from bytes).

    Examples:
      >>> import tempfile
      >>> texts = ["the cat sat on the mat", "the dog sat on the log",
      ...          "a cat and a dog", "die Katze sitzt", "der Hund sitzt"] * 20
      >>> tok = SubwordTokenizer.train(texts, vocab_size=40, model_type="bpe",
      ...                              cache_dir=tempfile.mkdtemp())
      >>> tok.vocab_size, tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id
      (40, 0, 1, 2, 3)
      >>> ids = tok.encode(["the cat sat", "der Hund"])
      >>> ids[0].dtype, tok.decode(ids)
      (dtype('int32'), ['the cat sat', 'der Hund'])

    References:
      Kudo, T. and Richardson, J. "SentencePiece: A simple and language independent
      subword tokenizer and detokenizer for Neural Text Processing". EMNLP 2018 (System
      Demonstrations).
      Kudo, T. "Subword Regularization: Improving Neural Network Translation Models with
      Multiple Subword Candidates". ACL 2018 (the unigram model).
    """

    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = EOS_ID
    unk_id = UNK_ID

    def __init__(self, model_proto: bytes, *, path: str | os.PathLike | None = None):
        """Wraps a serialized SentencePiece model (see :meth:`train` and :meth:`load`).

        Raises:
          DataFormatError: the bytes are not a SentencePiece model, or its special ids
            are not ``pad=0, bos=1, eos=2, unk=3``.
        """
        self.path = None if path is None else Path(path)
        where = str(self.path) if self.path is not None else "model_proto"
        if not isinstance(model_proto, bytes | bytearray):
            raise TypeError(f"model_proto must be bytes, got {type(model_proto).__name__}")
        spm = _sentencepiece()
        try:
            processor = spm.SentencePieceProcessor(model_proto=bytes(model_proto))
        except Exception as e:  # sentencepiece raises RuntimeError/OSError on bad protos
            raise DataFormatError(f"{where}: not a SentencePiece model ({e})") from e
        ids = (processor.pad_id(), processor.bos_id(), processor.eos_id(), processor.unk_id())
        if ids != (PAD_ID, BOS_ID, EOS_ID, UNK_ID):
            raise DataFormatError(
                f"{where}: special ids (pad, bos, eos, unk) are {ids}, expected (0, 1, 2, 3); "
                "train the model with SubwordTokenizer.train or with pad_id=0 bos_id=1 "
                "eos_id=2 unk_id=3"
            )
        self._proto = bytes(model_proto)
        self._processor = processor

    # Pickle the model bytes, not the SWIG processor.
    def __getstate__(self):
        return {"model_proto": self._proto, "path": self.path}

    def __setstate__(self, state):
        self.__init__(state["model_proto"], path=state["path"])

    def __repr__(self) -> str:
        return f"SubwordTokenizer(vocab_size={self.vocab_size}, path={self.path})"

    @property
    def vocab_size(self) -> int:
        """The number of ids (special ids included)."""
        return self._processor.get_piece_size()

    @property
    def serialized(self) -> bytes:
        """The SentencePiece model as bytes (what the cached ``.model`` file holds)."""
        return self._proto

    @property
    def pieces(self) -> tuple[str, ...]:
        """Every piece, by id (``pieces[0] == "<pad>"``)."""
        return tuple(self._processor.id_to_piece(i) for i in range(self.vocab_size))

    @staticmethod
    def cache_name(
        texts: Sequence[str],
        *,
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        seed: int = 0,
    ) -> str:
        """The cached model's file name: the options and a SHA-256 of the texts.

        Examples:
          >>> SubwordTokenizer.cache_name(["a b"], vocab_size=100)
          'spm_unigram_v100_...model'
        """
        digest = hashlib.sha256()
        options = dict(
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            seed=seed,
            ids=[PAD_ID, BOS_ID, EOS_ID, UNK_ID],
        )
        digest.update(json.dumps(options, sort_keys=True).encode())
        for text in texts:
            data = text.encode("utf-8")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return f"spm_{model_type}_v{vocab_size}_{digest.hexdigest()[:24]}.model"

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int,
        cache_dir: str | os.PathLike,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        seed: int = 0,
    ) -> SubwordTokenizer:
        """Trains a joint vocabulary on ``texts``, or loads it from ``cache_dir`` if trained before.

        The model is cached as ``cache_dir/<cache_name>``, a name that hashes the texts and
        every option, so a second call with the same texts and options loads the file
        instead of training. A cached file that cannot be loaded (truncated, corrupt, or
        with other special ids) is retrained and replaced. Training is deterministic:
        one thread, SentencePiece's random generator seeded with ``seed``, every sentence
        used (no sampling), so two trainings give identical pieces.

        Pass the training split's source and target sentences together (joint
        vocabulary), never validation or test text.

        Args:
          texts: the training sentences (an iterable of ``str``; read once).
          vocab_size: the number of pieces, special ids included (e.g. 8000 for
            Multi30k En-De). SentencePiece refuses sizes larger than the texts allow.
          cache_dir: the folder for the cached model (created if missing).
          model_type: ``"unigram"`` (Kudo 2018, the default) or ``"bpe"``.
          character_coverage: the fraction of characters covered by the vocabulary
            (``1.0`` keeps every character: right for European languages; ``0.9995``
            is SentencePiece's advice for Chinese or Japanese).
          seed: SentencePiece's random seed (a non-negative int).

        Returns:
          A :class:`SubwordTokenizer` whose ``path`` is the cached file.

        Raises:
          ValueError: a bad ``vocab_size``, ``model_type``, ``character_coverage`` or
            ``seed``; no texts; or SentencePiece refusing the options (its message is
            quoted, e.g. a ``vocab_size`` too large for the texts).
          TypeError: a text that is not a ``str``.
        """
        vocab_size = check_int(vocab_size, "vocab_size", 5)
        check_choice(model_type, "model_type", ("unigram", "bpe"))
        coverage = check_number(character_coverage, "character_coverage", positive=True)
        if coverage > 1:
            raise ValueError(
                "character_coverage must be in (0, 1], got "
                f"character_coverage={character_coverage!r}"
            )
        seed = check_int(seed, "seed", 0)
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of sentences, got a single str")
        texts = list(texts)
        if not texts:
            raise ValueError("texts must hold at least one sentence, got none")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts must hold str, got {type(text).__name__} at index {i}")
        cache_dir = Path(cache_dir).expanduser()
        cache_dir.mkdir(parents=True, exist_ok=True)
        options = dict(vocab_size=vocab_size, model_type=model_type,
                       character_coverage=coverage, seed=seed)
        path = cache_dir / cls.cache_name(texts, **options)
        if path.is_file():
            try:
                return cls.load(path)
            except DataFormatError:
                pass  # a broken cache file: train again and replace it
        proto = _train_sentencepiece(texts, **options)
        _write_atomic(path, proto)
        return cls(proto, path=path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SubwordTokenizer:
        """Loads a SentencePiece ``.model`` file (one written by :meth:`train`, or another
        trained with ``pad_id=0 bos_id=1 eos_id=2 unk_id=3``).

        Raises:
          DataNotFoundError: no such file.
          DataFormatError: not a SentencePiece model, or other special ids.
        """
        path = Path(path).expanduser().absolute()
        if not path.is_file():
            what = "a folder, not a file" if path.exists() else "no such file"
            raise DataNotFoundError(
                "sentencepiece model", [f"{path} ({what})"],
                "pass the .model file written by SubwordTokenizer.train",
            )
        return cls(path.read_bytes(), path=path)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The ids of each text, without BOS or EOS.

        Args:
          texts: a sequence of sentences (a single ``str`` is refused: wrap it in a list).

        Returns:
          One int32 array per text.

        Raises:
          TypeError: ``texts`` is a ``str`` or holds a non-``str``.
        """
        if isinstance(texts, str):
            raise TypeError(f"texts must be a sequence of str, got a single str {texts[:40]!r}; "
                            "pass [text]")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts must hold str, got {type(text).__name__} at index {i}")
        encoded = self._processor.encode(texts, out_type=int)
        return [np.asarray(ids, np.int32) for ids in encoded]

    def decode(self, ids: Iterable[Sequence[int]] | np.ndarray) -> list[str]:
        """Detokenised text from id sequences: each stops at its first EOS; PAD and BOS are dropped.

        Args:
          ids: id sequences (lists, 1-D arrays, or the rows of a 2-D array such as a
            decoder's padded output).

        Returns:
          One string per sequence.

        Raises:
          ValueError: an id outside ``[0, vocab_size)``.

        For a tokenizer ``tok``, ``tok.decode([[1, *tok.encode(["a"])[0], 2, 0, 0]])``
        is ``["a"]`` (see the class's example).
        """
        if isinstance(ids, np.ndarray) and ids.ndim == 1:
            raise ValueError("ids must be a sequence of id sequences (or a 2-D array), got a "
                             "1-D array; pass [ids]")
        cleaned = []
        for row, seq in enumerate(ids):
            seq = np.asarray(seq).reshape(-1)
            if seq.size and not np.issubdtype(seq.dtype, np.integer):
                raise TypeError(f"ids must be integers, got dtype {seq.dtype} in sequence {row}")
            bad = (seq < 0) | (seq >= self.vocab_size)
            if bad.any():
                raise ValueError(
                    f"ids must be in [0, {self.vocab_size}), got {int(seq[bad][0])} in "
                    f"sequence {row}"
                )
            stop = np.flatnonzero(seq == EOS_ID)
            if stop.size:
                seq = seq[: stop[0]]
            seq = seq[(seq != PAD_ID) & (seq != BOS_ID)]
            cleaned.append([int(i) for i in seq])
        return self._processor.decode(cleaned) if cleaned else []


def _train_sentencepiece(
    texts: list[str], *, vocab_size: int, model_type: str, character_coverage: float, seed: int
) -> bytes:
    import io

    spm = _sentencepiece()
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            pad_id=PAD_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            unk_id=UNK_ID,
            num_threads=1,  # deterministic
            input_sentence_size=0,  # every sentence, no sampling
            shuffle_input_sentence=False,
            minloglevel=2,
        )
    except RuntimeError as e:
        message = str(e).split("] ")[-1].strip()
        raise ValueError(
            f"sentencepiece refused vocab_size={vocab_size}, model_type={model_type!r}, "
            f"character_coverage={character_coverage} on {len(texts)} texts: {message}"
        ) from e
    return model.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------- batching


def _lengths(ids: Sequence, name: str) -> np.ndarray:
    if isinstance(ids, np.ndarray) and ids.dtype != object and ids.ndim != 1:
        raise ValueError(
            f"{name} must be a sequence of 1-D id arrays (one per sentence), got an array "
            f"of shape {ids.shape}"
        )
    lengths = np.empty(len(ids), np.int64)
    for i, seq in enumerate(ids):
        shape = np.shape(seq)
        if len(shape) != 1:
            raise ValueError(f"{name}[{i}] must be a 1-D id sequence, got shape {shape}")
        lengths[i] = shape[0]
    return lengths


def _round_up(lengths, multiple: int, cap: int | None):
    out = -(-np.asarray(lengths) // multiple) * multiple
    out = np.maximum(out, multiple)
    return out if cap is None else np.minimum(out, cap)


def filter_pairs(
    source_ids: Sequence, target_ids: Sequence, *, max_length: int | None = None
) -> np.ndarray:
    """The pairs a training epoch keeps: a non-empty source and both sides within ``max_length``.

    The model sees ``len(source)`` source positions and ``len(target) + 1`` target
    positions (BOS + target as input, target + EOS as output), so a pair is kept when
    ``1 <= len(source) <= max_length`` and ``len(target) + 1 <= max_length``. Pairs with an
    empty source are dropped (every source position would be padding).

    Args:
      source_ids: one 1-D id sequence per sentence.
      target_ids: the same number of target sequences.
      max_length: the longest sequence the model takes (``None``: no bound).

    Returns:
      The kept pairs' indices (int64, increasing).

    Examples:
      >>> src = [[5, 6], [], [5, 6, 7, 8]]
      >>> tgt = [[7], [8], [9, 9]]
      >>> filter_pairs(src, tgt).tolist(), filter_pairs(src, tgt, max_length=3).tolist()
      ([0, 2], [0])
    """
    source_lengths = _lengths(source_ids, "source_ids")
    target_lengths = _lengths(target_ids, "target_ids")
    if len(source_lengths) != len(target_lengths):
        raise ValueError(
            f"source_ids and target_ids must have the same length, got {len(source_lengths)} "
            f"and {len(target_lengths)}"
        )
    max_length = check_int(max_length, "max_length", 2, optional=True)
    keep = source_lengths >= 1
    if max_length is not None:
        keep &= (source_lengths <= max_length) & (target_lengths + 1 <= max_length)
    return np.flatnonzero(keep)


def _check_batching(max_tokens, batch_size, pad_to_multiple, max_length):
    max_tokens = check_int(max_tokens, "max_tokens", 1, optional=True)
    batch_size = check_int(batch_size, "batch_size", 1, optional=True)
    if max_tokens is None and batch_size is None:
        raise ValueError("give max_tokens or batch_size (or both), got neither")
    pad_to_multiple = check_int(pad_to_multiple, "pad_to_multiple", 1)
    max_length = check_int(max_length, "max_length", 1, optional=True)
    return max_tokens, batch_size, pad_to_multiple, max_length


def _group(order, width, max_tokens, batch_size, what: str) -> list[np.ndarray]:
    """Cuts ``order`` (already sorted by padded width) into consecutive batches."""
    groups: list[np.ndarray] = []
    start, widest = 0, 0
    for pos, index in enumerate(order):
        w = width[index]
        if max_tokens is not None and w > max_tokens:
            raise ValueError(
                f"max_tokens={max_tokens} is smaller than {what} {int(index)}, padded to "
                f"{int(w)} positions; raise max_tokens or drop long pairs with max_length"
            )
        rows = pos - start + 1
        too_many = batch_size is not None and rows > batch_size
        too_wide = max_tokens is not None and rows * max(widest, w) > max_tokens
        if too_many or too_wide:
            groups.append(order[start:pos])
            start, widest = pos, 0
        widest = max(widest, w)
    if start < len(order):
        groups.append(order[start:])
    return groups


def _plan(source_ids, target_ids, max_tokens, batch_size, shuffle, seed, epoch,
          pad_to_multiple, max_length, pool_size):
    max_tokens, batch_size, pad_to_multiple, max_length = _check_batching(
        max_tokens, batch_size, pad_to_multiple, max_length
    )
    seed = check_int(seed, "seed", 0)
    epoch = check_int(epoch, "epoch", 0)
    pool_size = check_int(pool_size, "pool_size", 1, optional=True)
    kept = filter_pairs(source_ids, target_ids, max_length=max_length)
    source_pad = _round_up(_lengths(source_ids, "source_ids"), pad_to_multiple, max_length)
    target_pad = _round_up(_lengths(target_ids, "target_ids") + 1, pad_to_multiple, max_length)
    width = np.maximum(source_pad, target_pad)
    # Sort by padded shape only, so pairs of one shape come in random order each epoch.
    key = (width * (source_pad.max(initial=0) + 1) + source_pad) * (target_pad.max(initial=0) + 1)
    key = key + target_pad
    rng = np.random.default_rng([seed, epoch]) if shuffle else None
    order = kept[rng.permutation(len(kept))] if shuffle else kept
    pool = len(order) if pool_size is None else pool_size
    groups: list[np.ndarray] = []
    for start in range(0, len(order), max(pool, 1)):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(key[chunk], kind="stable")]
        groups += _group(chunk, width, max_tokens, batch_size, "pair")
    if shuffle:
        groups = [groups[i] for i in rng.permutation(len(groups))]
    return groups, source_pad, target_pad, (max_tokens, batch_size)


def num_translation_batches(
    source_ids: Sequence,
    target_ids: Sequence,
    *,
    max_tokens: int | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    pad_to_multiple: int = 8,
    max_length: int | None = None,
    pool_size: int | None = None,
) -> int:
    """The number of batches :func:`translation_batches` yields with the same arguments.

    Examples:
      >>> src = [[5] * n for n in (3, 4, 9, 12)]
      >>> num_translation_batches(src, src, max_tokens=32)
      2
      >>> num_translation_batches(src, src, batch_size=3)
      2
    """
    groups, *_ = _plan(source_ids, target_ids, max_tokens, batch_size, shuffle, seed, epoch,
                       pad_to_multiple, max_length, pool_size)
    return len(groups)


def translation_batches(
    source_ids: Sequence,
    target_ids: Sequence,
    *,
    max_tokens: int | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    start_batch: int = 0,
    pad_to_multiple: int = 8,
    max_length: int | None = None,
    pool_size: int | None = None,
    pad_rows: bool = False,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    pad_id: int = PAD_ID,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields one epoch of length-bucketed, padded translation batches with masks.

    The pairs kept (see :func:`filter_pairs`: **pairs longer than** ``max_length`` **and
    pairs with an empty source are dropped**) are shuffled by
    ``np.random.default_rng([seed, epoch])``, cut into pools of ``pool_size`` pairs, and
    each pool is sorted by padded shape (stable, so pairs of one shape stay in random
    order) and cut into batches; the batches' order is then shuffled. Without
    ``shuffle`` the pairs are only sorted and the batches come shortest first. Every
    source and target length is padded up to a multiple of ``pad_to_multiple`` (capped
    at ``max_length``), so a jitted step compiles once per padded shape, not once per
    length. A batch holds as many pairs as fit ``rows * max(S, T) <= max_tokens`` and
    ``rows <= batch_size``.

    Args:
      source_ids: one 1-D int sequence per source sentence (no BOS/EOS), e.g. from
        :meth:`SubwordTokenizer.encode`.
      target_ids: the target sentences' ids (no BOS/EOS), aligned with ``source_ids``.
      max_tokens: cap on ``rows * max(S, T)`` (padded positions) per batch.
      batch_size: cap on the rows of a batch. Give ``max_tokens``, ``batch_size`` or both.
      shuffle: shuffle (training) or not (evaluation: sorted by length, deterministic).
      seed: the shuffling seed (non-negative int).
      epoch: the epoch (non-negative); each epoch has its own pools and batch order.
      start_batch: the first batch to yield; a run stopped after ``k`` batches of this
        epoch resumes with ``start_batch=k`` and gets exactly the remaining batches.
      pad_to_multiple: lengths are padded up to a multiple of this.
      max_length: the model's longest sequence; longer pairs are dropped (see above)
        and padding never goes past it.
      pool_size: pairs per sorting pool (``None``: the whole epoch, the least padding;
        smaller pools mix lengths more).
      pad_rows: pad every batch with empty rows (all ``pad_id``, masks all ``False``) up
        to the largest row count its shape allows (``min(batch_size, max_tokens //
        max(S, T))``), so that the batch shape depends on ``(S, T)`` only and a jitted
        step compiles once per padded shape. Empty rows must add nothing to the loss
        (weight it by ``target_mask``).
      bos_id, eos_id, pad_id: the special ids (those of :class:`SubwordTokenizer`).

    Returns:
      An iterator of dicts of numpy arrays: ``source`` int32 (B, S); ``target_in`` int32
      (B, T), BOS then the target; ``target_out`` int32 (B, T), the target then EOS;
      ``source_mask`` bool (B, S) and ``target_mask`` bool (B, T), ``True`` on real
      tokens (the masks of ``target_in`` and ``target_out`` are the same).

    Raises:
      ValueError: neither ``max_tokens`` nor ``batch_size``; a bad int argument; the two
        id lists of different lengths; a pair wider than ``max_tokens``.

    Examples:
      >>> src = [[5, 6, 7], [8], [5, 5, 5, 5, 5, 5, 5, 5, 5]]
      >>> tgt = [[9, 9], [7, 7, 7], [6]]
      >>> batch = next(translation_batches(src, tgt, batch_size=2, shuffle=False))
      >>> batch["source"].tolist()
      [[5, 6, 7, 0, 0, 0, 0, 0], [8, 0, 0, 0, 0, 0, 0, 0]]
      >>> batch["target_in"][:, :4].tolist(), batch["target_out"][:, :4].tolist()
      ([[1, 9, 9, 0], [1, 7, 7, 7]], [[9, 9, 2, 0], [7, 7, 7, 2]])
      >>> batch["target_mask"].sum(1).tolist(), batch["source_mask"].shape
      ([3, 4], (2, 8))
    """
    start_batch = check_int(start_batch, "start_batch", 0)
    for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
        check_int(value, name, 0)
    groups, source_pad, target_pad, (max_tokens, batch_size) = _plan(
        source_ids, target_ids, max_tokens, batch_size, shuffle, seed, epoch,
        pad_to_multiple, max_length, pool_size,
    )

    def generate():
        for group in groups[start_batch:]:
            s, t = int(source_pad[group].max()), int(target_pad[group].max())
            rows = len(group)
            if pad_rows:
                by_tokens = None if max_tokens is None else max_tokens // max(s, t)
                rows = max(rows, min(c for c in (batch_size, by_tokens) if c is not None))
            source = np.full((rows, s), pad_id, np.int32)
            target_in = np.full((rows, t), pad_id, np.int32)
            target_out = np.full((rows, t), pad_id, np.int32)
            source_mask = np.zeros((rows, s), bool)
            target_mask = np.zeros((rows, t), bool)
            for row, index in enumerate(group):
                src = np.asarray(source_ids[index])
                tgt = np.asarray(target_ids[index])
                source[row, : len(src)] = src
                source_mask[row, : len(src)] = True
                target_in[row, 0] = bos_id
                target_in[row, 1 : len(tgt) + 1] = tgt
                target_out[row, : len(tgt)] = tgt
                target_out[row, len(tgt)] = eos_id
                target_mask[row, : len(tgt) + 1] = True
            yield {
                "source": source,
                "target_in": target_in,
                "target_out": target_out,
                "source_mask": source_mask,
                "target_mask": target_mask,
            }

    return generate()


def source_batches(
    source_ids: Sequence,
    *,
    max_tokens: int | None = None,
    batch_size: int | None = None,
    pad_to_multiple: int = 8,
    max_length: int | None = None,
    pad_id: int = PAD_ID,
) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Batches of sources for decoding, sorted by length, and the order to undo the sort.

    Every sentence is kept (decoding must translate each one); a source longer than
    ``max_length`` is cut to its first ``max_length`` ids. Sentences are sorted by length
    (stable) and cut into batches as in :func:`translation_batches` (``shuffle=False``).

    Args:
      source_ids: one 1-D int sequence per sentence.
      max_tokens: cap on ``rows * S`` per batch.
      batch_size: cap on rows per batch (give one or both).
      pad_to_multiple: lengths are padded up to a multiple of this (capped at ``max_length``).
      max_length: the longest source the model takes (longer ones are cut).
      pad_id: the padding id.

    Returns:
      ``(batches, order)``: ``batches`` is a list of dicts with ``source`` int32 (B, S),
      ``source_mask`` bool (B, S) and ``index`` int64 (B,), the rows' positions in
      ``source_ids``; ``order`` (int64) is the concatenation of the ``index`` arrays.
      Outputs computed batch by batch go back in ``source_ids``'s order with
      :func:`restore_order`.

    Raises:
      ValueError: neither ``max_tokens`` nor ``batch_size``, or bad int arguments.

    Examples:
      >>> batches, order = source_batches([[4, 4, 4], [5], [6, 6]], batch_size=2)
      >>> [b["source"][:, :3].tolist() for b in batches], order.tolist()
      ([[[5, 0, 0], [6, 6, 0]], [[4, 4, 4]]], [1, 2, 0])
      >>> restore_order(["five", "six six", "four"], order)
      ['four', 'five', 'six six']
    """
    max_tokens, batch_size, pad_to_multiple, max_length = _check_batching(
        max_tokens, batch_size, pad_to_multiple, max_length
    )
    check_int(pad_id, "pad_id", 0)
    lengths = _lengths(source_ids, "source_ids")
    if max_length is not None:
        lengths = np.minimum(lengths, max_length)
    padded = _round_up(lengths, pad_to_multiple, max_length)
    order = np.argsort(lengths, kind="stable")
    groups = _group(order, padded, max_tokens, batch_size, "source")
    batches = []
    for group in groups:
        s = int(padded[group].max())
        source = np.full((len(group), s), pad_id, np.int32)
        mask = np.zeros((len(group), s), bool)
        for row, index in enumerate(group):
            ids = np.asarray(source_ids[index])[: lengths[index]]
            source[row, : len(ids)] = ids
            mask[row, : len(ids)] = True
        batches.append({"source": source, "source_mask": mask, "index": group.astype(np.int64)})
    return batches, order.astype(np.int64)


def restore_order(outputs: Sequence, order: np.ndarray) -> list:
    """Puts outputs computed in ``order`` (from :func:`source_batches`) back in the data's order.

    ``result[order[k]] = outputs[k]``.

    Args:
      outputs: one output per sentence, in batch order (the batches' rows concatenated).
      order: the permutation :func:`source_batches` returned.

    Returns:
      A list of the outputs in the original order.

    Raises:
      ValueError: ``outputs`` and ``order`` differ in length, or ``order`` is not a
        permutation.

    Examples:
      >>> restore_order(["b", "c", "a"], [1, 2, 0])
      ['a', 'b', 'c']
    """
    order = np.asarray(order)
    outputs = list(outputs)
    if len(outputs) != len(order):
        raise ValueError(
            f"outputs and order must have the same length, got {len(outputs)} and {len(order)}"
        )
    if not np.array_equal(np.sort(order), np.arange(len(order))):
        raise ValueError("order must be a permutation of 0..n-1 (source_batches' second output)")
    result = [None] * len(order)
    for k, index in enumerate(order.tolist()):
        result[index] = outputs[k]
    return result
