"""Parallel text: loaders (files, Multi30k, TFDS), the SentencePiece tokenizer, batching."""

import gzip
import io
import pickle
import sys

import numpy as np
import pytest

from jdrop.data import (
    MULTI30K_SPLITS,
    DataFormatError,
    DataNotFoundError,
    SubwordTokenizer,
    _parallel,
    filter_pairs,
    load_multi30k,
    load_parallel_text,
    load_tfds_translation,
    num_translation_batches,
    restore_order,
    source_batches,
    translation_batches,
)

# ------------------------------------------------------------------ load_parallel_text


def write(path, lines, *, gz=False, newline="\n"):
    data = "".join(line + newline for line in lines).encode("utf-8")
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def test_plain_and_gzipped_files_read_the_same(tmp_path):
    en = ["A dog runs.", "  Two  spaces kept ", "Ünïcödé — ok"]
    de = ["Ein Hund rennt.", "Zwei", "Umlaute äöü"]
    plain = load_parallel_text(write(tmp_path / "x.en", en), write(tmp_path / "x.de", de))
    gz = load_parallel_text(
        write(tmp_path / "x.en.gz", en, gz=True), write(tmp_path / "x.de.gz", de, gz=True)
    )
    crlf = load_parallel_text(
        write(tmp_path / "c.en", en, newline="\r\n"), write(tmp_path / "c.de", de, newline="\r\n")
    )
    assert plain == gz == crlf == (en, de)


def test_last_line_without_newline_and_empty_lines(tmp_path):
    (tmp_path / "a").write_text("one\n\nthree", encoding="utf-8")
    (tmp_path / "b").write_text("eins\n\ndrei\n", encoding="utf-8")
    assert load_parallel_text(tmp_path / "a", tmp_path / "b") == (
        ["one", "", "three"],
        ["eins", "", "drei"],
    )


def test_max_pairs(tmp_path):
    a = write(tmp_path / "a", ["1", "2", "3"])
    b = write(tmp_path / "b", ["x", "y", "z"])
    assert load_parallel_text(a, b, max_pairs=2) == (["1", "2"], ["x", "y"])
    assert load_parallel_text(a, b, max_pairs=10) == (["1", "2", "3"], ["x", "y", "z"])
    with pytest.raises(ValueError, match="max_pairs must be >= 1, got max_pairs=0"):
        load_parallel_text(a, b, max_pairs=0)


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    a = write(tmp_path / "a.en", ["1", "2", "3"])
    b = write(tmp_path / "b.de", ["x", "y"])
    with pytest.raises(DataFormatError) as info:
        load_parallel_text(a, b, max_pairs=1)  # checked before cutting
    message = str(info.value)
    assert f"{a} has 3 lines but {b} has 2" in message


def test_missing_paths_are_all_listed(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_parallel_text(tmp_path / "nope.en", tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'nope.en'} (no such file)" in message
    assert f"{tmp_path} (a folder, not a file)" in message


def test_broken_files_are_data_format_errors(tmp_path):
    good = write(tmp_path / "good", ["a"])
    (tmp_path / "latin1").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match="latin1: not UTF-8"):
        load_parallel_text(tmp_path / "latin1", good)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all\n")
    with pytest.raises(DataFormatError, match="bad.gz: cannot be read"):
        load_parallel_text(good, tmp_path / "bad.gz")


# ---------------------------------------------------------------------- load_multi30k


def test_multi30k_from_the_shared_files(shared_dir):
    folder = shared_dir("multi30k")
    data = load_multi30k()
    assert list(data) == ["train", "val", "test_2016_flickr"]
    sizes = {split: (len(s), len(t)) for split, (s, t) in data.items()}
    assert sizes == {"train": (29000, 29000), "val": (1014, 1014),
                     "test_2016_flickr": (1000, 1000)}
    with gzip.open(folder / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as f:
        first_de = f.readline().rstrip("\n")
    assert data["test_2016_flickr"][1][0] == first_de
    assert data["train"][0][0] == "Two young, White males are outside near many bushes."
    de_en = load_multi30k(folder, source="de", target="en", splits="val", max_pairs=5)
    assert de_en["val"] == (data["val"][1][:5], data["val"][0][:5])


def test_multi30k_all_splits_present(shared_dir):
    shared_dir("multi30k")
    data = load_multi30k(splits=MULTI30K_SPLITS)
    assert {s: len(p[0]) for s, p in data.items()} == {
        "train": 29000, "val": 1014, "test_2016_flickr": 1000, "test_2017_flickr": 1000,
        "test_2017_mscoco": 461, "test_2018_flickr": 1071,
    }


def test_multi30k_from_a_given_folder_plain_or_gz(tmp_path, no_shared_data):
    folder = tmp_path / "m"
    (folder / "multi30k").mkdir(parents=True)
    write(folder / "multi30k" / "val.en.gz", ["a", "b"], gz=True)
    write(folder / "multi30k" / "val.de", ["x", "y"])
    assert load_multi30k(folder, splits=["val"]) == {"val": (["a", "b"], ["x", "y"])}


def test_multi30k_given_folder_is_used_or_refused(tmp_path, no_shared_data):
    write(tmp_path / "val.en.gz", ["a"], gz=True)
    with pytest.raises(DataNotFoundError) as info:
        load_multi30k(tmp_path, splits=("val",))
    message = str(info.value)
    assert f"{tmp_path} (missing val.de.gz or val.de)" in message
    assert f"{tmp_path / 'multi30k'} (no such folder)" in message
    assert "shared" not in message.split("To provide it")[0]  # no fallback searched


def test_multi30k_absent_everywhere_lists_every_place(no_shared_data):
    with pytest.raises(DataNotFoundError) as info:
        load_multi30k()
    message = str(info.value)
    for root in no_shared_data:
        assert f"{root / 'multi30k'} (no such folder)" in message
    assert "data_dir" in message


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(source="xx"), r"source must be one of \('en', 'de', 'fr', 'cs'\), got source='xx'"),
        (dict(target="ja"), "target='ja'"),
        (dict(source="de", target="de"), "source and target must differ"),
        (dict(splits=("train", "dev")), "got 'dev'"),
        (dict(splits=()), "at least one split"),
        (dict(splits=("val", "val")), "must not repeat"),
        (dict(max_pairs=-1), "max_pairs=-1"),
    ],
)
def test_multi30k_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_multi30k(**kwargs)


# ---------------------------------------------------------------------- TFDS


TED = "ted_hrlr_translate/pt_to_en"


@pytest.fixture
def tfds():
    return pytest.importorskip("tensorflow_datasets", reason="TFDS tests need tensorflow-datasets")


def mock(tfds, num_examples):
    # USE_CODE: the builder's features, no metadata files; data_source needs no TensorFlow.
    return tfds.testing.mock_data(num_examples=num_examples,
                                  policy=tfds.testing.MockPolicy.USE_CODE)


def test_tfds_translation_through_mock_data(tfds):
    with mock(tfds, 5):
        data = load_tfds_translation(TED, source="pt", target="en")
        raw = {s: list(tfds.data_source(TED, split=s)) for s in ("train", "validation", "test")}
    assert list(data) == ["train", "validation", "test"]
    for split, examples in raw.items():
        sources, targets = data[split]
        assert sources == [str(e["pt"]) for e in examples] and len(sources) == 5
        assert targets == [str(e["en"]) for e in examples]
        assert all(isinstance(t, str) for t in sources + targets)


def test_tfds_translation_reversed_and_cut(tfds):
    with mock(tfds, 6):
        full = load_tfds_translation(TED, source="pt", target="en", splits=["test"])
        data = load_tfds_translation(TED, source="en", target="pt", splits="test", max_pairs=2)
    assert data == {"test": (full["test"][1][:2], full["test"][0][:2])}


def test_tfds_translation_wrong_feature(tfds):
    match = r"features \['en', 'pt'\], not \['de'\]"
    with mock(tfds, 2), pytest.raises(DataFormatError, match=match):
        load_tfds_translation(TED, source="de", target="en", splits="train")


def test_tfds_translation_unprepared_is_not_found(tfds, tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_tfds_translation(TED, source="pt", target="en", splits="test", data_dir=tmp_path)
    assert f"TFDS {TED!r} split 'test' in {tmp_path} (download=False)" in str(info.value)


def test_tfds_translation_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DataNotFoundError, match="tensorflow_datasets is not installed"):
        load_tfds_translation(TED, source="pt", target="en")


def test_tfds_translation_bad_arguments():
    with pytest.raises(ValueError, match="source and target must differ"):
        load_tfds_translation(TED, source="en", target="en")
    with pytest.raises(ValueError, match="got source=''"):
        load_tfds_translation(TED, source="", target="en")
    with pytest.raises(ValueError, match="name=None"):
        load_tfds_translation(None, source="pt", target="en")


# ---------------------------------------------------------------------- tokenizer


def corpus(num_sentences=1500, seed=0):
    """Sentences of Zipf-distributed pseudo-words (single spaces, so they round-trip)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzäöü"))
    words = ["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(400)]
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    return [
        " ".join(rng.choice(words, rng.integers(3, 12), p=p)).capitalize() + "."
        for _ in range(num_sentences)
    ]


@pytest.fixture(scope="module")
def texts():
    return corpus()


@pytest.fixture(scope="module")
def tokenizer(texts, tmp_path_factory):
    return SubwordTokenizer.train(texts, vocab_size=300,
                                  cache_dir=tmp_path_factory.mktemp("spm"))


def test_special_ids_and_vocab(tokenizer):
    assert tokenizer.vocab_size == 300 == len(tokenizer.pieces)
    assert tokenizer.pieces[:4] == ("<pad>", "<s>", "</s>", "<unk>")
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)


def test_round_trip_and_no_bos_eos(tokenizer, texts):
    ids = tokenizer.encode(texts[:50])
    assert all(i.dtype == np.int32 and i.ndim == 1 for i in ids)
    flat = np.concatenate(ids)
    assert flat.min() >= 4 and flat.max() < 300  # no specials, no unknowns
    assert tokenizer.decode(ids) == texts[:50]


def test_agrees_with_sentencepiece_itself(tokenizer, texts):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer.path))
    assert [i.tolist() for i in tokenizer.encode(texts[:20])] == sp.encode(texts[:20])
    pieces = [sp.id_to_piece(i) for i in sp.encode(texts[0])]
    assert "".join(pieces).replace("\u2581", " ").strip() == texts[0]


def test_decode_stops_at_eos_drops_pad_and_bos(tokenizer, texts):
    ids = tokenizer.encode(texts[:2])
    first = [1, *ids[0], 2, *ids[1], 0, 0]  # everything after EOS is ignored
    second = [1, 0, *ids[1]]  # no EOS: to the end
    assert tokenizer.decode([first, second]) == [texts[0], texts[1]]
    width = max(len(first), len(second))
    padded = np.zeros((2, width), np.int32)
    padded[0, : len(first)] = first
    padded[1, : len(second)] = second
    assert tokenizer.decode(padded) == [texts[0], texts[1]]
    assert tokenizer.decode([[2, 5, 6]]) == [""]
    assert tokenizer.decode([]) == []


def test_unknown_characters_map_to_unk(tokenizer):
    assert 3 in tokenizer.encode(["Ωmega"])[0].tolist()


def test_training_is_deterministic(texts, tmp_path):
    a = SubwordTokenizer.train(texts, vocab_size=250, cache_dir=tmp_path / "a")
    b = SubwordTokenizer.train(texts, vocab_size=250, cache_dir=tmp_path / "b")
    assert a.pieces == b.pieces and a.serialized == b.serialized
    assert a.path.name == b.path.name and a.path != b.path


def test_cache_is_loaded_not_retrained(texts, tmp_path, monkeypatch):
    first = SubwordTokenizer.train(texts, vocab_size=250, cache_dir=tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("retrained although the cache holds the model")

    monkeypatch.setattr(_parallel, "_train_sentencepiece", fail)
    again = SubwordTokenizer.train(iter(texts), vocab_size=250, cache_dir=tmp_path)
    assert again.serialized == first.serialized and again.path == first.path
    with pytest.raises(AssertionError, match="retrained"):  # other texts: a new name
        SubwordTokenizer.train(texts[:-1], vocab_size=250, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="retrained"):  # other options: a new name
        SubwordTokenizer.train(texts, vocab_size=250, model_type="bpe", cache_dir=tmp_path)


def test_corrupt_cache_is_retrained_and_replaced(texts, tmp_path):
    good = SubwordTokenizer.train(texts, vocab_size=250, cache_dir=tmp_path)
    good.path.write_bytes(good.serialized[:100])  # truncated
    with pytest.raises(DataFormatError, match="not a SentencePiece model"):
        SubwordTokenizer.load(good.path)
    again = SubwordTokenizer.train(texts, vocab_size=250, cache_dir=tmp_path)
    assert again.serialized == good.serialized
    assert SubwordTokenizer.load(good.path).pieces == good.pieces
    assert [p.name for p in tmp_path.iterdir()] == [good.path.name]  # no temp files left


def test_bpe_and_unigram_differ(texts, tokenizer, tmp_path):
    bpe = SubwordTokenizer.train(texts, vocab_size=300, model_type="bpe", cache_dir=tmp_path)
    assert bpe.pieces != tokenizer.pieces and bpe.pieces[:4] == tokenizer.pieces[:4]
    assert bpe.decode(bpe.encode(texts[:10])) == texts[:10]


def test_load_and_pickle(tokenizer, texts, tmp_path):
    loaded = SubwordTokenizer.load(tokenizer.path)
    assert loaded.pieces == tokenizer.pieces
    clone = pickle.loads(pickle.dumps(tokenizer))
    assert [i.tolist() for i in clone.encode(texts[:5])] == [
        i.tolist() for i in tokenizer.encode(texts[:5])
    ]
    with pytest.raises(DataNotFoundError, match="no such file"):
        SubwordTokenizer.load(tmp_path / "missing.model")


def test_model_with_other_special_ids_is_refused(texts):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=model,
                                   vocab_size=200, minloglevel=2)  # defaults: unk=0, pad=-1
    match = r"special ids \(pad, bos, eos, unk\) are \(-1, 1, 2, 0\)"
    with pytest.raises(DataFormatError, match=match):
        SubwordTokenizer(model.getvalue())


def test_tokenizer_bad_arguments(tokenizer, texts, tmp_path):
    with pytest.raises(ValueError, match="sentencepiece refused vocab_size=100000"):
        SubwordTokenizer.train(texts[:20], vocab_size=100_000, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="model_type must be one of"):
        SubwordTokenizer.train(texts, vocab_size=100, model_type="word", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="character_coverage=1.5"):
        SubwordTokenizer.train(texts, vocab_size=100, character_coverage=1.5, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="vocab_size must be >= 5"):
        SubwordTokenizer.train(texts, vocab_size=2, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="at least one sentence"):
        SubwordTokenizer.train([], vocab_size=100, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="single str"):
        SubwordTokenizer.train("one text", vocab_size=100, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="single str"):
        tokenizer.encode("a sentence")
    with pytest.raises(TypeError, match="int at index 1"):
        tokenizer.encode(["a", 5])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 300\), got 300 in sequence 1"):
        tokenizer.decode([[5], [6, 300]])
    with pytest.raises(ValueError, match="1-D array"):
        tokenizer.decode(np.array([5, 6]))


# ---------------------------------------------------------------------- batching


def random_pairs(n=300, seed=0, longest=40):
    rng = np.random.default_rng(seed)
    src = [rng.integers(4, 100, rng.integers(1, longest)).astype(np.int32) for _ in range(n)]
    tgt = [rng.integers(4, 100, rng.integers(0, longest)).astype(np.int32) for _ in range(n)]
    return src, tgt


def unpack(batch):
    """The (source, target) pairs of a batch, read back through its masks."""
    pairs = []
    for row in range(batch["source"].shape[0]):
        if not batch["target_mask"][row].any():
            assert not batch["source_mask"][row].any()
            continue
        s = batch["source"][row][batch["source_mask"][row]]
        t_in = batch["target_in"][row][batch["target_mask"][row]]
        t_out = batch["target_out"][row][batch["target_mask"][row]]
        assert t_in[0] == 1 and t_out[-1] == 2
        np.testing.assert_array_equal(t_in[1:], t_out[:-1])
        pairs.append((tuple(s.tolist()), tuple(t_out[:-1].tolist())))
    return pairs


def check_layout(batch, multiple=8):
    b, s = batch["source"].shape
    assert batch["target_in"].shape == batch["target_out"].shape == batch["target_mask"].shape
    assert batch["source_mask"].shape == (b, s) and s % multiple == 0
    assert batch["target_in"].shape[1] % multiple == 0
    for name in ("source", "target_in", "target_out"):
        assert batch[name].dtype == np.int32
    for name in ("source_mask", "target_mask"):
        assert batch[name].dtype == np.bool_
        # masks are prefixes: True then False
        m = batch[name]
        assert (np.diff(m.astype(np.int8), axis=1) <= 0).all()
    assert (batch["source"][~batch["source_mask"]] == 0).all()
    assert (batch["target_out"][~batch["target_mask"]] == 0).all()


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize(
    "caps", [dict(max_tokens=256), dict(batch_size=16), dict(max_tokens=400, batch_size=8)]
)
def test_every_pair_once_with_the_right_layout(shuffle, caps):
    src, tgt = random_pairs()
    out = list(translation_batches(src, tgt, shuffle=shuffle, seed=3, **caps))
    assert len(out) == num_translation_batches(src, tgt, shuffle=shuffle, seed=3, **caps)
    seen = []
    for batch in out:
        check_layout(batch)
        b, s = batch["source"].shape
        t = batch["target_in"].shape[1]
        if "max_tokens" in caps:
            assert b * max(s, t) <= caps["max_tokens"]
        if "batch_size" in caps:
            assert b <= caps["batch_size"]
        # padded to the next multiple of 8 of the longest row, no further
        assert s == -(-batch["source_mask"].sum(1).max() // 8) * 8
        assert t == -(-batch["target_mask"].sum(1).max() // 8) * 8
        seen += unpack(batch)
    expected = [(tuple(a.tolist()), tuple(b.tolist())) for a, b in zip(src, tgt, strict=True)]
    assert sorted(seen) == sorted(expected)


def test_length_bucketing_keeps_padding_low():
    src, tgt = random_pairs(2000, longest=60)
    real = sum(len(a) + len(b) + 1 for a, b in zip(src, tgt, strict=True))

    def padded(batches):
        return sum(b["source"].size + b["target_in"].size for b in batches)

    bucketed = padded(translation_batches(src, tgt, max_tokens=1024, seed=0))
    assert bucketed < 1.35 * real  # rounding to 8 costs ~4 of ~60 positions a pair
    rng = np.random.default_rng(0)  # random batches of the same mean size pad much more
    order = rng.permutation(len(src))
    groups = np.array_split(order, num_translation_batches(src, tgt, max_tokens=1024))
    naive = sum(
        len(g) * 8 * -(-max(len(src[i]) for i in g) // 8)
        + len(g) * 8 * -(-max(len(tgt[i]) + 1 for i in g) // 8)
        for g in groups
    )
    assert bucketed < 0.8 * naive


def test_deterministic_per_seed_and_epoch_and_resumable():
    src, tgt = random_pairs()

    def run(**kw):
        return list(translation_batches(src, tgt, max_tokens=256, **kw))

    def same(a, b):
        return len(a) == len(b) and all(
            all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b, strict=True)
        )

    full = run(seed=1, epoch=2)
    assert same(full, run(seed=1, epoch=2))
    assert not same(full, run(seed=1, epoch=3))
    assert not same(full, run(seed=2, epoch=2))
    assert same(full[5:], run(seed=1, epoch=2, start_batch=5))
    assert run(seed=1, epoch=2, start_batch=len(full)) == []
    # pools: a smaller pool gives other batches, still every pair once
    pooled = run(seed=1, epoch=2, pool_size=50)
    assert sorted(p for b in pooled for p in unpack(b)) == sorted(
        p for b in full for p in unpack(b)
    )


def test_max_length_drops_long_pairs_and_caps_padding():
    src = [np.arange(4, 4 + n) for n in (3, 10, 11, 5, 0)]
    tgt = [np.arange(4, 4 + n) for n in (9, 3, 3, 10, 4)]
    # kept: source <= 10, target + 1 <= 10, non-empty source
    assert filter_pairs(src, tgt, max_length=10).tolist() == [0, 1]
    out = list(translation_batches(src, tgt, batch_size=8, max_length=10, shuffle=False))
    assert len(out) == 1
    assert out[0]["source"].shape == (2, 10) and out[0]["target_in"].shape == (2, 10)
    assert sorted(unpack(out[0])) == sorted(
        [(tuple(src[i].tolist()), tuple(tgt[i].tolist())) for i in (0, 1)]
    )
    assert filter_pairs(src, tgt).tolist() == [0, 1, 2, 3]  # only the empty source goes


def test_pad_rows_makes_shape_a_function_of_lengths():
    src, tgt = random_pairs(500)
    shapes = {}
    pairs = []
    for batch in translation_batches(src, tgt, max_tokens=300, batch_size=20, pad_rows=True):
        check_layout(batch)
        b, s = batch["source"].shape
        t = batch["target_in"].shape[1]
        assert b == min(20, 300 // max(s, t))
        shapes.setdefault((s, t), set()).add(b)
        pairs += unpack(batch)
    assert all(len(rows) == 1 for rows in shapes.values())
    assert len(pairs) == 500


def test_custom_special_ids():
    batch = next(translation_batches([[7]], [[8]], batch_size=1, bos_id=5, eos_id=6, pad_id=9,
                                     pad_to_multiple=1))
    assert batch["target_in"].tolist() == [[5, 8]] and batch["target_out"].tolist() == [[8, 6]]
    assert batch["source"].tolist() == [[7]]


def test_batching_errors():
    src, tgt = random_pairs(10)
    with pytest.raises(ValueError, match="max_tokens or batch_size"):
        translation_batches(src, tgt)
    with pytest.raises(ValueError, match="max_tokens=8 is smaller than pair"):
        translation_batches(src, tgt, max_tokens=8)
    with pytest.raises(ValueError, match="same length, got 10 and 9"):
        translation_batches(src, tgt[:-1], batch_size=4)
    with pytest.raises(ValueError, match="pad_to_multiple must be >= 1"):
        translation_batches(src, tgt, batch_size=4, pad_to_multiple=0)
    with pytest.raises(ValueError, match="start_batch must be >= 0"):
        translation_batches(src, tgt, batch_size=4, start_batch=-1)
    with pytest.raises(ValueError, match="shape"):
        translation_batches(np.zeros((3, 4), np.int32), np.zeros((3, 4), np.int32), batch_size=2)
    with pytest.raises(ValueError, match=r"source_ids\[1\] must be a 1-D"):
        translation_batches([[1], [[1, 2]]], [[1], [2]], batch_size=2)
    with pytest.raises(ValueError, match="max_length must be >= 2"):
        filter_pairs(src, tgt, max_length=1)


# ---------------------------------------------------------------- decoding batches


def test_source_batches_cover_every_sentence_and_restore_order():
    src, _ = random_pairs(101)
    src[7] = np.zeros(0, np.int32)  # an empty source is kept for decoding
    batches, order = source_batches(src, max_tokens=200)
    assert sorted(order.tolist()) == list(range(101))
    assert np.concatenate([b["index"] for b in batches]).tolist() == order.tolist()
    outputs = []
    for batch in batches:
        assert batch["source"].shape[0] * batch["source"].shape[1] <= 200
        assert batch["source"].shape[1] % 8 == 0
        for row in range(len(batch["index"])):
            outputs.append(batch["source"][row][batch["source_mask"][row]].tolist())
    restored = restore_order(outputs, order)
    assert restored == [s.tolist() for s in src]
    lengths = [len(src[i]) for i in order]
    assert lengths == sorted(lengths)  # sorted by length: least padding


def test_source_batches_cut_long_sources():
    batches, order = source_batches([np.arange(4, 24), np.arange(4, 7)], batch_size=4,
                                    max_length=12)
    assert order.tolist() == [1, 0] and batches[0]["source"].shape == (2, 12)
    assert batches[0]["source"][1].tolist() == list(range(4, 16))


def test_restore_order_errors():
    with pytest.raises(ValueError, match="same length"):
        restore_order([1, 2], [0])
    with pytest.raises(ValueError, match="permutation"):
        restore_order([1, 2], [0, 0])
