"""Audio clips: a folder of WAV files named ``{label}_{speaker}_{index}.wav``, and TFDS audio.

The Free Spoken Digit Dataset (FSDD; Jackson et al.) is the reference layout: 3,000 mono
16-bit 8 kHz recordings ``recordings/{digit}_{speaker}_{index}.wav``, six speakers times ten
digits times fifty repetitions. Its official split puts repetitions 0-4 in the test set.
Speaker-independent evaluation leaves one speaker out at a time
(:func:`leave_one_speaker_out`).

WAV files are read with the standard library's :mod:`wave` and numpy (PCM, 8/16/24/32-bit,
channels averaged to mono). TFDS audio sets (``speech_commands``) go through
``tfds.data_source``; ``tensorflow_datasets`` is imported only inside that function.

References:
  Jackson, Z., Souza, C., Flaks, J., Pan, Y., Nicolas, H. and Thite, A. "Free Spoken Digit
  Dataset", 2018. https://github.com/Jakobovski/free-spoken-digit-dataset (CC BY-SA 4.0).
  Warden, P. "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition", 2018.
"""

from __future__ import annotations

import dataclasses
import os
import re
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jdrop.data._dataset import ArrayDataset
from jdrop.data._errors import DataFormatError, DataNotFoundError
from jdrop.data._locate import candidate_dirs

__all__ = [
    "AudioClips",
    "leave_one_speaker_out",
    "load_tfds_audio",
    "load_wav_folder",
    "official_split",
    "parse_clip_name",
    "read_wav",
]

_CLIP_NAME = re.compile(r"^(?P<label>\d+)_(?P<speaker>[A-Za-z0-9-]+)_(?P<index>\d+)\.wav$")


@dataclasses.dataclass(frozen=True, eq=False)
class AudioClips:
    """Labelled audio clips, zero-padded to a common length.

    Attributes:
      data: an :class:`ArrayDataset` with ``waveforms`` (float32 ``(N, L)`` in ``[-1, 1]``,
        zero-padded or cut to ``L``), ``lengths`` (int32, samples before padding, at most
        ``L``), ``labels`` (int32), ``speakers`` (int32 index into :attr:`speaker_names`)
        and ``indices`` (int32 repetition index from the file name; ``-1`` when unknown).
      speaker_names: speaker names, sorted.
      sample_rate: samples per second.
      source: the folder or ``"tfds:<name>"``.

    Examples:
      >>> import numpy as np
      >>> data = ArrayDataset({"waveforms": np.zeros((2, 4), np.float32),
      ...                      "lengths": np.array([4, 3], np.int32),
      ...                      "labels": np.array([1, 2], np.int32),
      ...                      "speakers": np.array([0, 0], np.int32),
      ...                      "indices": np.array([0, 7], np.int32)})
      >>> clips = AudioClips(data, ("ann",), 8000, "toy")
      >>> len(clips), clips.num_classes
      (2, 3)
    """

    data: ArrayDataset
    speaker_names: tuple[str, ...]
    sample_rate: int
    source: str

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    @property
    def num_classes(self) -> int:
        """``max(label) + 1``."""
        return int(self.data["labels"].max()) + 1


def parse_clip_name(name: str) -> tuple[int, str, int]:
    """Splits ``"{label}_{speaker}_{index}.wav"`` into ``(label, speaker, index)``.

    Args:
      name: a file name (a path's last part is used).

    Returns:
      ``(label, speaker, index)`` with integer label and index.

    Raises:
      ValueError: when the name does not match the pattern.

    Examples:
      >>> parse_clip_name("7_jackson_32.wav")
      (7, 'jackson', 32)
      >>> parse_clip_name("recordings/0_george_0.wav")
      (0, 'george', 0)
    """
    match = _CLIP_NAME.match(Path(name).name)
    if match is None:
        raise ValueError(
            f"name must look like '{{label}}_{{speaker}}_{{index}}.wav', got name={name!r}"
        )
    return int(match["label"]), match["speaker"], int(match["index"])


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Reads a PCM WAV file as float32 mono samples in ``[-1, 1]``.

    Args:
      path: the file.

    Returns:
      ``(samples, sample_rate)``: float32 ``(n,)`` (channels averaged) and an int.

    Raises:
      DataFormatError: not a PCM WAV file, or an unsupported sample width.

    Examples:
      >>> import io, wave, numpy as np, tempfile, os
      >>> path = os.path.join(tempfile.mkdtemp(), "1_ann_0.wav")
      >>> with wave.open(path, "wb") as w:
      ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
      ...     w.writeframes(np.array([0, 16384, -32768], "<i2").tobytes())
      >>> samples, rate = read_wav(path)
      >>> samples.tolist(), rate
      ([0.0, 0.5, -1.0], 8000)
    """
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise DataFormatError(f"{path}: not a PCM WAV file ({e})") from e
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dtype = "<i2" if width == 2 else "<i4"
        samples = np.frombuffer(raw, dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 2**23, ints - 2**24, ints)
        samples = ints.astype(np.float32) / float(2**23)
    else:
        raise DataFormatError(f"{path}: unsupported sample width {width} bytes")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32), int(rate)


def _pad(clips: Sequence[np.ndarray], max_length: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pads (or cuts, keeping the centre) every clip to a common length."""
    lengths = np.array([len(c) for c in clips], np.int64)
    length = int(lengths.max()) if max_length is None else int(max_length)
    out = np.zeros((len(clips), length), np.float32)
    for row, clip in enumerate(clips):
        if len(clip) > length:
            start = (len(clip) - length) // 2
            clip = clip[start : start + length]
        out[row, : len(clip)] = clip
    return out, np.minimum(lengths, length).astype(np.int32)


def _find_wav_dir(data_dir, subdir: str) -> Path:
    looked = []
    for folder in candidate_dirs(subdir, data_dir):
        for place in (folder / "recordings", folder):
            if place.is_dir() and any(place.glob("*.wav")):
                return place
            looked.append(f"{place} ({'no .wav files' if place.is_dir() else 'no such folder'})")
    raise DataNotFoundError(
        subdir,
        looked,
        "pass data_dir= a folder of '{label}_{speaker}_{index}.wav' files (or one with a "
        "'recordings' folder of them), e.g. a checkout of "
        "github.com/Jakobovski/free-spoken-digit-dataset",
    )


def load_wav_folder(
    data_dir: str | os.PathLike | None = None,
    *,
    subdir: str = "fsdd",
    max_length: int | None = None,
) -> AudioClips:
    """Loads every ``{label}_{speaker}_{index}.wav`` of a folder (FSDD by default).

    The folder is ``data_dir`` (or its ``recordings`` subfolder), else ``shared/data/fsdd``
    (see :func:`~jdrop.data.shared_data_roots`). Files are sorted by (speaker, label, index).

    Args:
      data_dir: the folder; ``None`` searches ``shared/data/<subdir>``.
      subdir: the folder name searched under ``data_dir`` and ``shared/data``.
      max_length: pad or cut (keeping the centre) every clip to this many samples;
        ``None`` pads to the longest clip.

    Returns:
      An :class:`AudioClips`.

    Raises:
      DataNotFoundError: no folder with WAV files was found (every place is listed).
      DataFormatError: a file name does not match the pattern, a file is not PCM WAV, or
        the sample rates differ.
    """
    folder = _find_wav_dir(data_dir, subdir)
    entries = []
    for path in folder.glob("*.wav"):
        try:
            label, speaker, index = parse_clip_name(path.name)
        except ValueError as e:
            raise DataFormatError(f"{path}: {e}") from None
        entries.append((speaker, label, index, path))
    entries.sort()
    speaker_names = tuple(sorted({e[0] for e in entries}))
    clips, rates = [], set()
    for *_, path in entries:
        samples, rate = read_wav(path)
        clips.append(samples)
        rates.add(rate)
    if len(rates) != 1:
        raise DataFormatError(f"{folder}: clips have different sample rates {sorted(rates)}")
    waveforms, lengths = _pad(clips, max_length)
    speaker_id = {name: i for i, name in enumerate(speaker_names)}
    data = ArrayDataset(
        {
            "waveforms": waveforms,
            "lengths": lengths,
            "labels": np.array([e[1] for e in entries], np.int32),
            "speakers": np.array([speaker_id[e[0]] for e in entries], np.int32),
            "indices": np.array([e[2] for e in entries], np.int32),
        }
    )
    return AudioClips(data, speaker_names, rates.pop(), str(folder))


def official_split(indices, num_test: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """FSDD's official split: repetitions ``0 .. num_test - 1`` are the test set.

    Args:
      indices: ``(N,)`` repetition indices (``clips["indices"]``).
      num_test: how many leading repetitions go to the test set (5 in FSDD).

    Returns:
      ``(train_rows, test_rows)``, int64 row numbers.

    Examples:
      >>> official_split([0, 5, 4, 49])
      (array([1, 3]), array([0, 2]))
    """
    indices = np.asarray(indices)
    test = indices < num_test
    return np.flatnonzero(~test), np.flatnonzero(test)


def leave_one_speaker_out(speakers) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """One fold per speaker: train on every other speaker, test on that one.

    Args:
      speakers: ``(N,)`` integer speaker ids (``clips["speakers"]``).

    Returns:
      ``[(speaker, train_rows, test_rows), ...]`` in increasing speaker id.

    Examples:
      >>> [(s, tr.tolist(), te.tolist()) for s, tr, te in leave_one_speaker_out([0, 1, 0])]
      [(0, [1], [0, 2]), (1, [0, 2], [1])]
    """
    speakers = np.asarray(speakers)
    return [
        (int(s), np.flatnonzero(speakers != s), np.flatnonzero(speakers == s))
        for s in np.unique(speakers)
    ]


def _tfds_source(name: str, split: str, data_dir, download: bool):
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    place = f"TFDS {name!r} split {split!r} in {where} (download={download})"
    how = (
        f"prepare it in ArrayRecord format (tfds.data_source({name!r}, download=True) where "
        f"the network is reachable, or `tfds build {name} --file_format=array_record`) "
        "and pass that folder as data_dir"
    )
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        missing = [f"{place}: tensorflow_datasets is not installed"]
        raise DataNotFoundError(name, missing, how) from e
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=download)
    except Exception as e:  # TFDS raises many types for "not available"; keep its message.
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
        raise DataNotFoundError(name, [f"{place}: {reason}"], how) from e


def load_tfds_audio(
    name: str = "speech_commands",
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    max_length: int | None = 16000,
    sample_rate: int = 16000,
) -> AudioClips:
    """One split of a TFDS audio-classification set (``speech_commands``) as clips.

    Reads through ``tfds.data_source`` (random access, no TensorFlow graph). Integer audio
    is scaled to ``[-1, 1]``. TFDS has no speaker ids: ``speakers`` are all 0
    (``speaker_names == ("unknown",)``) and ``indices`` are -1.

    Args:
      name: the TFDS name; examples need an ``"audio"`` and a ``"label"`` feature.
      split: a TFDS split.
      data_dir: TFDS's data folder (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      download: let TFDS download and prepare the data when it is missing.
      max_length: pad or cut every clip to this many samples (``None``: the longest).
      sample_rate: the set's sample rate (16 kHz for ``speech_commands``).

    Returns:
      An :class:`AudioClips`.

    Raises:
      DataNotFoundError: TFDS cannot provide the split (its message is quoted).
      DataFormatError: the split is empty or lacks ``audio``/``label``.

    Examples:
      Offline, with TFDS's mock data::

        with tfds.testing.mock_data(num_examples=4):
            clips = load_tfds_audio("speech_commands", "test")
        clips["waveforms"].shape    # (4, 16000)
    """
    source = _tfds_source(name, split, data_dir, download)
    n = len(source)
    if n == 0:
        raise DataFormatError(f"TFDS {name!r} split {split!r} is empty")
    clips, labels = [], np.empty(n, np.int32)
    for i in range(n):
        example = source[i]
        if "audio" not in example or "label" not in example:
            raise DataFormatError(
                f"TFDS {name!r}: examples need 'audio' and 'label', got {sorted(example)}"
            )
        audio = np.asarray(example["audio"])
        if np.issubdtype(audio.dtype, np.integer):
            audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max + 1)
        clips.append(audio.astype(np.float32).reshape(-1))
        labels[i] = int(example["label"])
    waveforms, lengths = _pad(clips, max_length)
    data = ArrayDataset(
        {
            "waveforms": waveforms,
            "lengths": lengths,
            "labels": labels,
            "speakers": np.zeros(n, np.int32),
            "indices": np.full(n, -1, np.int32),
        }
    )
    return AudioClips(data, ("unknown",), int(sample_rate), f"tfds:{name}")
