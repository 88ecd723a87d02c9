"""``python -m experiments.speech --smoke``: result fields, plots, resumption; CTC pieces;
the README's Speech table against the committed results."""

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.speech import __main__ as entry
from experiments.speech import config, train
from jdrop.data import DataNotFoundError, load_wav_folder

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "speech" / "results"


def _have_fsdd() -> bool:
    try:
        load_wav_folder(max_length=10)
    except DataNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _have_fsdd(), reason="FSDD is not in shared/data")
def test_smoke_writes_results_and_resumes(tmp_path):
    result = entry.main(["--workdir", str(tmp_path), "--smoke"])
    saved = json.loads((tmp_path / "speech.json").read_text())
    for field in ("official_accuracy", "loso_accuracy"):
        assert 0.0 <= saved[field] <= 1.0, field
    assert saved["digit_error_rate"] >= 0.0  # edit distance / digits: insertions can pass 1
    assert set(saved["isolated"]) == {"spatial", "recurrent"}
    arm = json.loads((tmp_path / "isolated" / "spatial.json").read_text())
    assert len(arm["loso_fold_accuracy"]) == 6
    assert arm["loso_accuracy"] == pytest.approx(np.mean(arm["loso_fold_accuracy"]))
    assert np.asarray(arm["loso_confusion"]).sum() == 6 * 70  # each held-out speaker's clips
    mc = saved["mc"]
    assert 0.0 <= mc["mi_auroc"] <= 1.0 and len(mc["rejection_curve"]) == 19
    for name in ("confusion.png", "learning_curves.png", "rejection_curve.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "speech.md").read_text().startswith("## Isolated digits")
    again = entry.main(["--workdir", str(tmp_path), "--smoke"])  # every arm file exists
    assert again["loso_accuracy"] == result["loso_accuracy"]
    assert again["digit_error_rate"] == result["digit_error_rate"]


def test_ctc_decoding_and_edit_distance():
    logits = np.full((1, 8, 11), -5.0)
    for t, c in enumerate([0, 4, 4, 0, 4, 2, 2, 0]):  # blank=0, class c = digit c - 1
        logits[0, t, c] = 5.0
    assert train.greedy_decode(logits) == [[3, 3, 1]]
    assert train.edit_distance([3, 3, 1], [3, 1]) == 1
    assert train.edit_distance([], [1, 2]) == 2
    assert train.edit_distance([1, 2, 3], [1, 2, 3]) == 0


@pytest.mark.skipif(not _have_fsdd(), reason="FSDD is not in shared/data")
def test_synthesized_utterances_fit_and_carry_their_labels():
    clips = load_wav_folder(max_length=8000)
    cfg = config.smoke()
    waves, labels, lengths = train.synthesize(cfg, clips, [0, 1], 20, seed=0)
    assert waves.shape == (20, int(cfg.ctc_seconds * 8000))
    assert ((lengths >= cfg.ctc_min_digits) & (lengths <= cfg.ctc_max_digits)).all()
    for row, n in zip(labels, lengths, strict=True):
        assert (row[:n] >= 1).all() and (row[n:] == 0).all()


def test_bad_flags_name_the_flag():
    with pytest.raises(SystemExit):
        entry.main(["--workdir", "/tmp/x", "--arms", "bogus"])
    with pytest.raises(ValueError, match="--mc_arm"):
        train.check_config(config.Config(mc_arm="none"))


@pytest.mark.parametrize("folder", ["", "wide_cnn"])
def test_readme_speech_tables_match_committed_results(folder):
    """speech.md is what ``markdown`` writes from speech.json, and the README quotes its
    rows (the issue's run, and the wider-CNN rerun of the CNN arms)."""
    results = RESULTS / folder
    saved = json.loads((results / "speech.json").read_text())
    table = (results / "speech.md").read_text()
    assert table == train.markdown(saved)
    if folder == "wide_cnn":
        assert saved["config"]["cnn_channels"] == [16, 32]
        assert saved["config"]["cnn_hidden"] == 128
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows, "speech.md has no table"
    for line in rows:
        assert line in readme, f"README's Speech section is missing or stale: {line}"
    for arm, r in saved["isolated"].items():
        stored = json.loads((results / "isolated" / f"{arm}.json").read_text())
        assert stored["loso_accuracy"] == r["loso_accuracy"], arm
