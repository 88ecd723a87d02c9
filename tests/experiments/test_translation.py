"""``python -m experiments.translation --smoke`` end to end, resuming, and the arm settings."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments.translation import __main__ as entry
from experiments.translation import config, train
from jdrop.data import DataNotFoundError, load_multi30k

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "translation" / "results"


def _data_available() -> bool:
    try:
        load_multi30k(splits=("val",), max_pairs=1)
    except DataNotFoundError:
        return False
    return True


needs_data = pytest.mark.skipif(not _data_available(), reason="Multi30k not found")


@needs_data
def test_smoke_writes_every_result_and_resumes_to_the_same_result(tmp_path):
    full = tmp_path / "full"
    summary = entry.main(["--workdir", str(full), "--smoke"])
    arms = config.smoke().arms
    assert sorted(summary["arms"]) == sorted(arms)
    for arm in arms:
        record = json.loads((full / "arms" / f"{arm}.json").read_text())
        for name in ("bleu", "bleu_lc_tok", "chrf"):
            assert 0 <= record[name] <= 100
        assert record["val_bleu"] == max(h["val_bleu"] for h in record["curve"])
        assert record["epochs"] == len(record["curve"]) >= record["best_epoch"] >= 1
        assert record["train_tokens_per_s"] > 0 and record["wall_s"] > 0
        assert (full / "translations" / f"{arm}.txt").read_text().count("\n") == 24
        assert (full / "runs" / arm / "best.msgpack").stat().st_size > 0
    curriculum = json.loads((full / "arms" / "curriculum.json").read_text())
    rates = [h["rate"] for h in curriculum["curve"]]
    assert rates == sorted(rates) and 0 < rates[-1] <= 0.3
    quality = summary["quality"]
    assert quality["arm"] in train.DROPOUT_ARMS and quality["sentences"] == 24
    assert {"log_prob", "neg_mc_var", "mc_mean"} <= set(quality["spearman"])
    for png in ("learning_curves.png", "quality_scatter.png"):
        assert (full / png).stat().st_size > 0
    table = (full / "translation.md").read_text()
    assert "| no dropout |" in table and "MC-dropout quality estimation" in table
    assert set(json.loads((full / "translation.json").read_text())["goals"]) >= {"best_arm"}

    # an arm stopped after 3 steps (mid-epoch) and resumed ends where the full run did
    part = tmp_path / "part"
    stopped = entry.main(["--workdir", str(part), "--smoke", "--arms", "p0.3",
                          "--stop_after_steps", "3"])
    assert stopped["arms"] == {} and not (part / "arms" / "p0.3.json").exists()
    assert any((part / "runs" / "p0.3" / "checkpoints").iterdir())
    entry.main(["--workdir", str(part), "--smoke", "--arms", "p0.3"])
    resumed = json.loads((part / "arms" / "p0.3.json").read_text())
    reference = json.loads((full / "arms" / "p0.3.json").read_text())
    for name in ("bleu", "bleu_lc_tok", "chrf", "val_bleu", "steps", "best_epoch"):
        assert resumed[name] == reference[name], name
    for a, b in zip(resumed["curve"], reference["curve"], strict=True):
        for name in ("train_loss", "val_nll", "val_bleu"):
            assert a[name] == pytest.approx(b[name], rel=1e-5, abs=1e-6), name

    # a second call finds every arm done and trains nothing
    again = entry.main(["--workdir", str(full), "--smoke"])
    assert again["arms"] == summary["arms"]


@needs_data
def test_data_parallel_steps_over_eight_devices(tmp_path):
    assert jax.device_count() == 8  # tests/conftest.py: eight host CPU devices
    out = entry.main(["--workdir", str(tmp_path), "--smoke", "--arms", "none", "--data_parallel",
                      "--stop_after_steps", "2", "--max_tokens", "480"])  # 15 rows -> 16
    assert out["arms"] == {}
    assert any((tmp_path / "runs" / "none" / "checkpoints").iterdir())
    batch = {"source": np.ones((15, 4), np.int32), "source_mask": np.ones((15, 4), bool)}
    padded = train.pad_rows_to_multiple(batch, 8)
    assert padded["source"].shape == (16, 4) and not padded["source_mask"][15].any()
    assert train.pad_rows_to_multiple(padded, 8) is padded


def test_flags_and_presets(monkeypatch):
    seen = {}
    monkeypatch.setattr(train, "train_and_evaluate", lambda c, w: seen.update(c=c, w=w))
    entry.main(["--workdir", "/tmp/x", "--cpu", "--arms", "none", "p0.3", "--features", "64"])
    assert seen["c"].arms == ("none", "p0.3") and seen["c"].features == 64
    assert seen["c"].encoder_layers == config.cpu().encoder_layers
    entry.main(["--workdir", "/tmp/x"])
    assert seen["c"] == config.default()
    for bad, match in ((dict(arms=("nope",)), "--arms"), (dict(num_heads=7), "--features"),
                       (dict(val_max_length=999), "--val_max_length"),
                       (dict(high_rate=1.0), "--high_rate"), (dict(mc_samples=1), "--mc_samples")):
        with pytest.raises(ValueError, match=match):
            train.check_config(config.Config(**bad))


def test_arm_rates():
    c = config.default()
    assert set(train.arm_rates(c, "none").values()) == {0.0}
    assert set(train.arm_rates(c, "p0.1").values()) == {0.1}
    assert train.arm_rates(c, "rdrop") == train.arm_rates(c, "p0.1")
    assert set(train.arm_rates(c, "p0.3").values()) == {0.3}
    no_attn = train.arm_rates(c, "p0.3_no_attn")
    assert no_attn.pop("attention_dropout") == 0.0 and set(no_attn.values()) == {0.3}
    assert set(train.arm_rates(c, "curriculum", 0.15).values()) == {0.15}
    model = train.build(config.smoke(), 50, train.arm_rates(c, "p0.3_no_attn"))
    assert model.embedding_dropout == 0.3
    assert model.decoder[0].cross.dropout_rate == 0.0 and model.decoder[0].ffn.dropout_rate == 0.3


def test_rdrop_loss_fn_uses_two_masks():
    c = config.smoke()
    model = train.build(c, 40, train.arm_rates(c, "p0.3"))
    rng = np.random.default_rng(0)
    batch = {"source": rng.integers(4, 40, (3, 8)).astype(np.int32),
             "target_in": rng.integers(4, 40, (3, 6)).astype(np.int32),
             "target_out": rng.integers(4, 40, (3, 6)).astype(np.int32),
             "source_mask": np.ones((3, 8), bool), "target_mask": np.ones((3, 6), bool)}
    plain = train.make_loss_fn(0.1, None)
    rdrop = train.make_loss_fn(0.1, 1.0)
    assert train.make_loss_fn(0.1, 1.0) is rdrop  # one object: one compiled step
    # jitted: one compilation per call instead of one per op (eager took ~30 s)
    jitted_rdrop, jitted_plain = nnx.jit(rdrop), nnx.jit(plain)
    loss, (metrics, _) = jitted_rdrop(model, batch, jax.random.key(0), None)
    assert float(metrics["kl"]) > 0  # two passes, two dropout masks
    model.eval()
    loss_det, (metrics_det, _) = jitted_rdrop(model, batch, None, None)
    assert float(metrics_det["kl"]) == pytest.approx(0.0, abs=1e-6)
    plain_det, _ = jitted_plain(model, batch, None, None)
    assert float(loss_det) == pytest.approx(float(plain_det), rel=1e-5)
    assert jnp.isfinite(loss)


def test_tfds_translation_set_through_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets", reason="needs tensorflow-datasets")
    c = config.Config(tfds_name="ted_hrlr_translate/pt_to_en", source="pt", target="en",
                      vocab_size=60)
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        raw = tfds.data_source(c.tfds_name, split="test")
        expected = [str(raw[i]["en"]) for i in range(len(raw))]
        corpus = train.load(c, tmp_path)
    assert len(corpus.train[0]) == 40 and len(corpus.val_sources) == 40
    assert corpus.test_references == expected
    assert corpus.tokenizer.vocab_size == 60 and any((tmp_path / "spm").iterdir())
    with pytest.raises(ValueError, match="--tfds_splits"):
        train.load_pairs(config.Config(tfds_name="x", tfds_splits=("train",)))


def test_scoring_batches_keep_order_and_mark_padding():
    src = [np.array([5, 6, 7]), np.array([8]), np.array([9, 9])]
    tgt = [np.array([4]), np.array([4, 4, 4]), np.array([], np.int32)]
    batches = list(train._scoring_batches(src, tgt, rows=2, multiple=4, max_length=8))
    assert [b["index"].tolist() for b in batches] == [[0, 1], [2, -1]]
    first = batches[0]
    assert first["target_in"][1].tolist()[:4] == [1, 4, 4, 4]
    assert first["target_out"][1].tolist()[:4] == [4, 4, 4, 2]
    assert batches[1]["target_mask"].sum(1).tolist() == [1, 0]


@pytest.mark.parametrize("run", ["", "all_pairs"])
def test_committed_table_and_readme_come_from_the_committed_json(run):
    """translation.md is what ``markdown`` writes from translation.json, the per-arm files
    agree with it, and the README quotes its tables row for row (the 10,000-pair study in
    results/, the all-pairs follow-up in results/all_pairs/)."""
    results = RESULTS / run
    summary = json.loads((results / "translation.json").read_text())
    table = train.markdown(summary)
    assert (results / "translation.md").read_text() == table
    for arm, r in summary["arms"].items():
        saved = json.loads((results / "arms" / f"{arm}.json").read_text())
        assert {k: v for k, v in saved.items() if k != "curve"} == r, arm
        assert saved["curve"][saved["best_epoch"] - 1]["val_bleu"] == r["val_bleu"], arm
    assert summary["goals"] == train.goals(
        {a: json.loads((results / "arms" / f"{a}.json").read_text()) for a in summary["arms"]},
        summary["quality"])
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in table.splitlines()
            if line.startswith("| ") and not line.startswith(("| arm ", "| indicator "))]
    assert len(rows) >= len(summary["arms"])
    missing = [row for row in rows if row not in readme]
    assert not missing, f"README's translation tables differ from translation.json: {missing}"


def test_goals_compare_each_variant_with_plain_dropout_at_its_rate():
    def rec(bleu, val):
        return {"bleu": bleu, "bleu_lc_tok": bleu + 0.2, "val_bleu": val}

    records = {"none": rec(20.0, 20.0), "p0.1": rec(25.0, 24.0), "p0.3": rec(22.0, 21.0),
               "rdrop": rec(26.5, 25.0), "curriculum": rec(23.0, 22.0)}
    quality = {"spearman": {"neg_mc_var": {"spearman": 0.4}, "log_prob": {"spearman": 0.5}},
               "neg_mc_var_minus_log_prob": {"low": -0.2, "high": -0.01}}
    goals = train.goals(records, quality)
    assert goals["best_arm"] == "rdrop" and goals["best_dropout_arm"] == "rdrop"
    assert goals["dropout_gain_bleu_lc_tok"] == pytest.approx(6.5)
    assert goals["dropout_gain_ge_3"] and not goals["best_ge_40_bleu_lc_tok"]
    assert goals["rdrop_minus_p0.1_bleu"] == pytest.approx(1.5)
    assert goals["curriculum_minus_p0.3_bleu"] == pytest.approx(1.0)
    assert not goals["mc_var_beats_log_prob"]
    assert goals["mc_var_minus_log_prob_interval"] == [-0.2, -0.01]
    assert train.goals({"p0.1": records["p0.1"]}, None) == {
        "best_arm": "p0.1", "best_bleu_lc_tok": 25.2, "best_ge_40_bleu_lc_tok": False}
