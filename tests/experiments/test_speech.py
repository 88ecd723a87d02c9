"""``python -m experiments.speech --smoke``: result fields, plots, resumption; CTC pieces;
the README's Speech table against the committed results."""

import json
import re
import statistics
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
    assert set(saved["isolated"]) == {"spatial", "recurrent", "vtlp_dropout"}
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
    with pytest.raises(ValueError, match="--mc_arm"):
        train.check_config(config.Config(mc_arm="vtlp"))  # no dropout to sample
    with pytest.raises(ValueError, match="--vtlp_max_warp"):
        train.check_config(config.Config(vtlp_max_warp=1.0))


@pytest.mark.parametrize("folder", ["", "wide_cnn", "fine_features", "vtlp", "vtlp_warp20"])
def test_readme_speech_tables_match_committed_results(folder):
    """speech.md is what ``markdown`` writes from speech.json, and the README quotes its
    rows (the issue's run, the wider-CNN rerun of the CNN arms, and the wider CNN on finer
    features, official split only)."""
    results = RESULTS / folder
    saved = json.loads((results / "speech.json").read_text())
    table = (results / "speech.md").read_text()
    assert table == train.markdown(saved)
    if folder in ("wide_cnn", "fine_features", "vtlp", "vtlp_warp20"):
        assert saved["config"]["cnn_channels"] == [16, 32]
        assert saved["config"]["cnn_hidden"] == 128
    if folder.startswith("vtlp"):
        assert saved["config"]["vtlp_max_warp"] == (0.2 if folder == "vtlp_warp20" else 0.1)
        assert {"vtlp"} <= set(saved["isolated"])
    if folder == "fine_features":
        assert (saved["config"]["n_mels"], saved["config"]["hop_length"]) == (40, 128)
        assert saved["config"]["loso"] is False
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows, "speech.md has no table"
    for line in rows:
        assert line in readme, f"README's Speech section is missing or stale: {line}"
    for arm, r in saved["isolated"].items():
        stored = json.loads((results / "isolated" / f"{arm}.json").read_text())
        assert stored.get("loso_accuracy") == r.get("loso_accuracy"), arm  # None: no LOSO
        assert stored["official_accuracy"] == r["official_accuracy"], arm


def test_host_loop_and_one_program_train_the_same_models():
    """``_train(loop="host")`` (a CNN on a CPU) and ``loop="program"`` (vmap + scan) take
    the same steps: the same models and curves up to float rounding."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    cfg = dataclasses.replace(config.Config(), n_mels=8, cnn_channels=(2,), cnn_hidden=4)
    rng = np.random.default_rng(0)
    feats = jnp.asarray(rng.normal(size=(40, 8, 8)).astype(np.float32))
    labels = rng.integers(0, 10, 40)
    train_rows = np.stack([rng.permutation(30)[:24] for _ in range(3)])  # 3 folds
    pairs = np.stack([train_rows, labels[train_rows]], axis=-1)

    def evaluate_fold(model, fold):
        pred = model(jax.lax.dynamic_slice_in_dim(feats, 30 + 3 * fold, 3), deterministic=True)
        return {"mean_logit": pred.mean(), "test_accuracy": (pred.argmax(-1) == 0).mean()}

    runs = {}
    with jax.numpy_dtype_promotion("standard"):
        for loop in ("host", "program"):
            runs[loop] = train._train(
                lambda k: train._make_model(cfg, "spatial", 8, k), train._classifier_loss(feats),
                evaluate_fold, pairs, jax.random.split(jax.random.key(3), 3), jnp.arange(3),
                epochs=2, batch_size=8, lr=1e-2, num_evals=2, clip=1.0, log=lambda m: None,
                fold_batch=2, loop=loop)
    (_, host, host_curve), (_, prog, prog_curve) = runs["host"], runs["program"]
    assert jax.tree.structure(host) == jax.tree.structure(prog)
    for a, b in zip(jax.tree.leaves(host), jax.tree.leaves(prog), strict=True):
        assert a.shape == b.shape and a.shape[0] == 3
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert [p.keys() for p in host_curve] == [p.keys() for p in prog_curve]
    assert [p["epoch"] for p in host_curve] == [p["epoch"] for p in prog_curve] == [1.0, 2.0]
    for h, p in zip(host_curve, prog_curve, strict=True):
        assert set(h) == {"epoch", "loss", "mean_logit", "test_accuracy"}
        for key in ("loss", "mean_logit"):
            assert len(h[key]) == 3
            np.testing.assert_allclose(h[key], p[key], rtol=1e-4)
    assert train._loop_for(recurrent=True) == "program"
    assert train._loop_for(recurrent=False) == (
        "host" if jax.default_backend() == "cpu" else "program")
    with pytest.raises(ValueError, match="loop"):
        train._train(None, None, None, pairs, None, None, epochs=1, batch_size=8, lr=1.0,
                     num_evals=1, loop="scan")


def _seed_table_rows(header: str) -> list[tuple[str, bool, list[str]]]:
    """``(arm, "60 epochs" marked, [seed 0, seed 1, seed 2, mean, std])`` per README row."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split(header, 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)`(, 60 epochs)? \| ([0-9.]+)% \| ([0-9.]+)% \| ([0-9.]+)% "
                      r"\| ([0-9.]+)% \+- ([0-9.]+) \|", table, re.M)
    return [(arm, bool(longer), numbers) for arm, longer, *numbers in rows]


def _assert_seed_row(arm: str, numbers: list[str], group: list[dict]) -> None:
    """The row's three seeds, mean and std are the three runs' official accuracies."""
    acc = [100 * r["isolated"][arm]["official_accuracy"] for r in group]
    want = [*acc, statistics.mean(acc), statistics.stdev(acc)]
    for got, expected in zip(numbers, want, strict=True):
        assert float(got) == pytest.approx(expected, abs=0.05), arm


def test_readme_official_split_seed_table_matches_committed_results():
    """The three-seed table of the fine-feature official split (seed 0: fine_features/,
    seeds 1 and 2: fine_features/seeds/seed<N>/; the 60-epoch row: fine_features/epochs60/
    seed<N>/)."""
    base = RESULTS / "fine_features"
    runs = {"30": [base] + [base / "seeds" / f"seed{s}" for s in (1, 2)],
            "60": [base / "epochs60" / f"seed{s}" for s in (0, 1, 2)]}
    runs = {k: [json.loads((f / "speech.json").read_text()) for f in v] for k, v in runs.items()}
    for epochs, group in runs.items():
        assert [r["config"]["seed"] for r in group] == [0, 1, 2]
        assert {r["config"]["epochs"] for r in group} == {int(epochs)}
        for key in ("n_mels", "hop_length", "cnn_channels", "cnn_hidden", "vtlp_max_warp"):
            assert {str(r["config"][key]) for r in group} == {str(runs["30"][0]["config"][key])}
    rows = _seed_table_rows("| arm (official split, 3 seeds) |")
    assert [(arm, longer) for arm, longer, _ in rows] == [
        ("none", False), ("vtlp_dropout", False), ("vtlp_dropout", True)]
    for arm, longer, numbers in rows:
        _assert_seed_row(arm, numbers, runs["60" if longer else "30"])


def _three_block_runs(folder, epochs: int) -> list[dict]:
    """The three seed runs ``folder/seed<N>/speech.json`` of the three-conv-block CNN, checked
    to be seeds 0-2 with the README's flags (SpecAugment with 8-frame and 7-band masks)."""
    runs = [json.loads((folder / f"seed{s}" / "speech.json").read_text()) for s in (0, 1, 2)]
    assert [r["config"]["seed"] for r in runs] == [0, 1, 2]
    for key, want in (("epochs", epochs), ("cnn_channels", [16, 32, 64]), ("n_mels", 40),
                      ("hop_length", 128), ("cnn_hidden", 128), ("max_time_width", 8),
                      ("max_freq_width", 7)):
        assert all(r["config"][key] == want for r in runs), key
    return runs


def test_readme_three_block_seed_table_matches_committed_results():
    """The three-conv-block table (three_blocks/seed<N>/, 60 epochs): seeds, flags, numbers."""
    runs = _three_block_runs(RESULTS / "three_blocks", epochs=60)
    rows = _seed_table_rows("| arm (three conv blocks, 60 epochs, 3 seeds) |")
    assert [(arm, longer) for arm, longer, _ in rows] == [
        ("none", False), ("vtlp_dropout", False), ("specaugment", False), ("standard", False),
        ("specaugment_dropout", False)]
    for arm, _, numbers in rows:
        _assert_seed_row(arm, numbers, runs)


def test_readme_three_block_90_epoch_table_matches_committed_results():
    """No dropout and SpecAugment on the three-conv-block CNN for 90 epochs (epochs90/seed<N>/)."""
    runs = _three_block_runs(RESULTS / "three_blocks" / "epochs90", epochs=90)
    rows = _seed_table_rows("| arm (three conv blocks, 90 epochs, 3 seeds) |")
    assert [(arm, longer) for arm, longer, _ in rows] == [("none", False), ("specaugment", False)]
    for arm, _, numbers in rows:
        _assert_seed_row(arm, numbers, runs)
