"""``python -m experiments.language_model --smoke`` end to end; the README table vs results."""

import json
import math
import re
import statistics
from pathlib import Path

import pytest

from experiments.language_model import __main__ as entry
from experiments.language_model import config, train
from jdrop.data import DataNotFoundError, load_char_corpus

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "language_model" / "results"


def _corpus_available() -> bool:
    try:
        load_char_corpus()
    except DataNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _corpus_available(), reason="Tiny Shakespeare not found")
def test_smoke_writes_every_result(tmp_path):
    summary = entry.main(["--workdir", str(tmp_path), "--smoke"])
    arms = config.smoke().arms
    assert sorted(summary["val_loss"]) == sorted(arms)
    for arm in arms:
        record = json.loads((tmp_path / "arms" / f"{arm}.json").read_text())
        assert 0 < record["val_loss"] < 2 * math.log(65)
        assert record["val_loss"] == min(v for _, v in record["curve_valid"])
        assert record["curve_train"] and record["epochs"] >= record["best_epoch"] >= 1
        assert (tmp_path / "samples" / f"{arm}.txt").read_text().count("\n") >= 2
        assert (tmp_path / "runs" / arm / "checkpoints").is_dir()
    assert summary["arms"]["gru"]["dropout_from_arm"] in train.DROPOUT_RNN_ARMS
    assert len(summary["mc"]) == 2 and "transformer_dropout" in summary["mc"]
    for m in summary["mc"].values():
        assert len(m["mc_loss_by_samples"]) == m["mc_samples"] == 2
        assert m["mc_loss"] == pytest.approx(m["mc_loss_by_samples"][-1])
        assert m["mc_loss"] <= m["single_mask_loss"] + 1e-6  # Jensen: log of a mean
    for png in ("learning_curves_rnn.png", "learning_curves_transformer.png"):
        assert (tmp_path / png).stat().st_size > 0
    table = (tmp_path / "language_model.md").read_text()
    assert "| LSTM, no dropout |" in table and "MC dropout" in table
    # a second call finds every arm done and trains nothing
    again = entry.main(["--workdir", str(tmp_path), "--smoke"])
    assert again["val_loss"] == summary["val_loss"]


def test_flags_and_presets(monkeypatch):
    seen = {}
    monkeypatch.setattr(train, "train_and_evaluate", lambda c, w: seen.update(c=c, w=w))
    entry.main(["--workdir", "/tmp/x", "--cpu", "--rnn_hidden", "64"])
    assert seen["c"] == config.cpu().__class__(**{**config.cpu().__dict__, "rnn_hidden": 64})
    entry.main(["--workdir", "/tmp/x"])
    assert seen["c"] == config.default()
    with pytest.raises(ValueError, match="--arms"):
        train.check_config(config.Config(arms=("nope",)))


def test_arm_configurations():
    c = config.default()
    none = train.rnn_config(c, "none", 65)
    assert none.hidden_sizes == (1024, 1024) and none.input_dropout == 0.0
    assert train.rnn_config(c, "zaremba", 65).dropout_mode == "zaremba"
    awd = train.rnn_config(c, "awd", 65)
    assert awd.weight_drop > 0 and awd.embedding_dropout > 0 and awd.recurrent_dropout == 0
    gru = train.rnn_config(c, "gru", 65, "variational")
    assert gru.cell == "gru" and gru.recurrent_dropout == c.variational_recurrent_rate
    tf = train.transformer_config(c, "transformer_dropout", 65)
    assert (tf.num_layers, tf.features, tf.num_heads, tf.block_size) == (6, 384, 6, 256)
    assert tf.attention_dropout == tf.residual_dropout == tf.embedding_dropout == 0.2
    assert train.transformer_config(c, "transformer_none", 65).residual_dropout == 0.0


def test_readme_table_matches_committed_results():
    saved = json.loads((RESULTS / "language_model.json").read_text())
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Language models where dropout wins", 1)[1].split("\n## ", 1)[0]
    arms_table, mc_table = section.split("| MC dropout (validation) |", 1)
    rows = dict(re.findall(r"^\| `(\w+)` \|[^|]*\|[^|]*\| ([0-9.]+) \|", arms_table, re.M))
    assert rows, "no arm rows in the README's language-model table"
    for arm, value in rows.items():
        assert float(value) == pytest.approx(saved["val_loss"][arm], abs=5e-5), arm
    assert set(rows) == set(saved["val_loss"])
    mc = re.findall(r"^\| `(\w+)` \|[^|]*\|[^|]*\| ([0-9.]+) \| ([0-9.]+) \|", mc_table, re.M)
    assert len(mc) == len(saved["mc"])
    for arm, deterministic, averaged in mc:
        assert float(deterministic) == pytest.approx(saved["mc"][arm]["deterministic_loss"],
                                                     abs=5e-5)
        assert float(averaged) == pytest.approx(saved["mc"][arm]["mc_loss"], abs=5e-5)


def test_notebook_4_quotes_the_committed_table():
    saved = json.loads((RESULTS / "language_model.json").read_text())
    source = (ROOT / "colab" / "04_rnn_language_model.py").read_text()
    for arm, value in saved["val_loss"].items():
        assert re.search(rf"^# \| `{arm}` \|[^|]*\| {value:.4f} \|", source, re.M), arm


def test_readme_seed_table_matches_committed_results():
    """The three-seed table (seed 0: results/, seeds 1 and 2: results/seeds/seed<N>/)."""
    runs = [json.loads((RESULTS / "language_model.json").read_text())]
    runs += [json.loads((RESULTS / "seeds" / f"seed{s}" / "language_model.json").read_text())
             for s in (1, 2)]
    assert [r["config"]["seed"] for r in runs] == [0, 1, 2]
    assert all(r["config"]["rnn_epochs"] == runs[0]["config"]["rnn_epochs"] for r in runs)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Language models where dropout wins", 1)[1].split("\n## ", 1)[0]
    table = section.split("| arm (3 seeds) |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) "
                      r"\+- ([0-9.]+) \| ([0-9.]+) \+- ([0-9.]+) \|", table, re.M)
    assert {row[0] for row in rows} == {"none", "zaremba", "variational"}
    for arm, *numbers in rows:
        val = [r["arms"][arm]["val_loss"] for r in runs]
        test = [r["arms"][arm]["test_loss"] for r in runs]
        want = [*val, statistics.mean(val), statistics.stdev(val), statistics.mean(test),
                statistics.stdev(test)]
        for got, expected in zip(numbers, want, strict=True):
            assert float(got) == pytest.approx(expected, abs=5e-5), arm
