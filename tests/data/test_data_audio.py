"""jdrop.data audio: WAV folders named {label}_{speaker}_{index}.wav, splits, TFDS audio."""

import wave

import numpy as np
import pytest

import jdrop.data as jd
from jdrop.data import _audio


def _write(path, samples, rate=8000, width=2, channels=1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples).tobytes())


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    rec = tmp_path / "recordings"
    rec.mkdir()
    for speaker in ("bob", "ann"):
        for digit in range(3):
            for index in range(4):
                n = 100 + 10 * digit + index
                _write(rec / f"{digit}_{speaker}_{index}.wav", rng.integers(-3000, 3000, n, "<i2"))
    return tmp_path


def test_loads_labels_speakers_indices_and_pads(folder):
    clips = jd.load_wav_folder(folder)
    assert len(clips) == 24 and clips.sample_rate == 8000
    assert clips.speaker_names == ("ann", "bob")
    assert clips["waveforms"].shape == (24, 123) and clips["waveforms"].dtype == np.float32
    # sorted by (speaker, label, index): first row is 0_ann_0
    assert clips["labels"][:5].tolist() == [0, 0, 0, 0, 1]
    assert clips["speakers"].tolist() == [0] * 12 + [1] * 12
    assert clips["indices"][:4].tolist() == [0, 1, 2, 3]
    assert clips["lengths"][:2].tolist() == [100, 101]
    assert (clips["waveforms"][0, 100:] == 0).all()
    assert np.abs(clips["waveforms"]).max() <= 1.0
    assert clips.num_classes == 3


def test_max_length_cuts_the_centre(folder):
    clips = jd.load_wav_folder(folder / "recordings", max_length=50)
    assert clips["waveforms"].shape == (24, 50)
    assert (clips["lengths"] == 50).all()
    full = jd.load_wav_folder(folder)
    start = (100 - 50) // 2
    np.testing.assert_array_equal(clips["waveforms"][0], full["waveforms"][0, start : start + 50])


def test_official_split_and_speaker_folds(folder):
    clips = jd.load_wav_folder(folder)
    train, test = jd.official_split(clips["indices"], num_test=1)
    assert len(test) == 6 and (clips["indices"][test] == 0).all()
    assert len(train) + len(test) == len(clips)
    folds = jd.leave_one_speaker_out(clips["speakers"])
    assert [f[0] for f in folds] == [0, 1]
    for speaker, tr, te in folds:
        assert (clips["speakers"][te] == speaker).all() and (clips["speakers"][tr] != speaker).all()
        assert len(tr) + len(te) == len(clips)


def test_read_wav_widths_and_channels(tmp_path):
    _write(tmp_path / "a.wav", np.array([0, 255, 128], np.uint8), width=1)
    assert jd.read_wav(tmp_path / "a.wav")[0].tolist() == [-1.0, 127 / 128, 0.0]
    _write(tmp_path / "b.wav", np.array([2**30, -(2**31)], "<i4"), width=4)
    assert jd.read_wav(tmp_path / "b.wav")[0].tolist() == [0.5, -1.0]
    _write(tmp_path / "c.wav", np.array([16384, 0, -16384, -16384], "<i2"), channels=2)
    assert jd.read_wav(tmp_path / "c.wav")[0].tolist() == [0.25, -0.5]
    (tmp_path / "d.wav").write_bytes(b"not a wav")
    with pytest.raises(jd.DataFormatError, match="d.wav"):
        jd.read_wav(tmp_path / "d.wav")


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="name must look like"):
        jd.parse_clip_name("hello.wav")
    with pytest.raises(jd.DataNotFoundError, match="no .wav files|no such folder"):
        jd.load_wav_folder(tmp_path, subdir="definitely-not-here")
    _write(tmp_path / "oops.wav", np.zeros(10, "<i2"))
    with pytest.raises(jd.DataFormatError, match="oops.wav"):
        jd.load_wav_folder(tmp_path)
    _write(tmp_path / "oops.wav", np.zeros(10, "<i2"))
    (tmp_path / "oops.wav").unlink()
    _write(tmp_path / "1_a_0.wav", np.zeros(10, "<i2"), rate=8000)
    _write(tmp_path / "1_a_1.wav", np.zeros(10, "<i2"), rate=16000)
    with pytest.raises(jd.DataFormatError, match="sample rates"):
        jd.load_wav_folder(tmp_path)


def test_fsdd_from_shared_data():
    try:
        clips = jd.load_wav_folder(max_length=8000)
    except jd.DataNotFoundError:
        pytest.skip("FSDD is not in shared/data")
    assert len(clips) == 3000 and clips.sample_rate == 8000 and len(clips.speaker_names) == 6
    assert np.bincount(clips["labels"]).tolist() == [300] * 10
    train, test = jd.official_split(clips["indices"])
    assert (len(train), len(test)) == (2700, 300)


class _FakeSource:
    def __init__(self, examples):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


def test_tfds_audio_through_a_data_source(monkeypatch):
    examples = [
        {"audio": np.array([0, 16384, -32768], np.int16), "label": 3},
        {"audio": np.full(20000, 100, np.int16), "label": 11},
    ]
    monkeypatch.setattr(_audio, "_tfds_source", lambda *a: _FakeSource(examples))
    clips = jd.load_tfds_audio("speech_commands", "test")
    assert clips["waveforms"].shape == (2, 16000) and clips.source == "tfds:speech_commands"
    assert clips["waveforms"][0, :3].tolist() == [0.0, 0.5, -1.0]
    assert clips["labels"].tolist() == [3, 11] and clips["lengths"].tolist() == [3, 16000]
    assert clips.speaker_names == ("unknown",) and (clips["indices"] == -1).all()
    monkeypatch.setattr(_audio, "_tfds_source", lambda *a: _FakeSource([{"image": 1}]))
    with pytest.raises(jd.DataFormatError, match="'audio' and 'label'"):
        jd.load_tfds_audio()


def test_tfds_missing_is_data_not_found(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(jd.DataNotFoundError, match="speech_commands"):
        jd.load_tfds_audio("speech_commands", "test", data_dir=tmp_path)
