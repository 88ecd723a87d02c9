"""Character corpus (Tiny Shakespeare, TFDS's split) and PTB-format word corpora."""

import numpy as np
import pytest

from jdrop.data import (
    DataNotFoundError,
    Vocabulary,
    char_corpus,
    lm_batches,
    load_char_corpus,
    load_ptb,
    read_words,
    tfds_split_sizes,
)


def test_real_tiny_shakespeare(shared_dir):
    path = shared_dir("tinyshakespeare") / "input.txt"
    text = path.read_text(encoding="utf-8")
    assert len(text) == 1_115_394
    corpus = load_char_corpus()  # found in ../shared/data
    sizes = (len(corpus.train), len(corpus.validation), len(corpus.test))
    assert sizes == (1_003_854, 55_770, 55_770) and sum(sizes) == 1_115_394
    assert corpus.name == "tiny_shakespeare" and corpus.source == str(path)
    assert len(corpus.vocab) == 65 and corpus.vocab.tokens == tuple(sorted(set(text)))
    tokens = [corpus.split(s)["tokens"] for s in ("train", "validation", "test")]
    assert all(t.dtype == np.int32 for t in tokens)
    assert corpus.vocab.decode(np.concatenate(tokens)) == text
    assert corpus.vocab.decode(corpus.train["tokens"][:14]) == "First Citizen:"
    batch = next(lm_batches(corpus.train["tokens"], 32, 100))
    assert batch["inputs"].shape == (32, 100)


@pytest.mark.parametrize("n", [0, 1, 7, 20, 99, 1_115_394, 1_000_001])
def test_tfds_split_sizes_add_up(n):
    train, validation, test = tfds_split_sizes(n)
    assert train + validation + test == n and train == int(n * 0.9)
    assert validation == int((n - train) * 0.5)


def test_char_corpus_from_a_file_and_from_data_dir(tmp_path, no_shared_data):
    text = "Zoë says: ünïcode ☃ works\n" * 4
    (tmp_path / "input.txt").write_text(text, encoding="utf-8", newline="")
    corpus = load_char_corpus(tmp_path / "input.txt")
    assert corpus.name == "input"
    joined = np.concatenate([corpus.split(s)["tokens"] for s in corpus.split_names])
    assert corpus.vocab.decode(joined) == text
    assert load_char_corpus(data_dir=tmp_path).name == "tiny_shakespeare"
    with pytest.raises(DataNotFoundError, match="no such file"):
        load_char_corpus(tmp_path / "nope.txt")
    with pytest.raises(DataNotFoundError) as info:
        load_char_corpus(data_dir=tmp_path / "empty")
    for place in [tmp_path / "empty", tmp_path / "empty" / "tinyshakespeare"]:
        assert str(place) in str(info.value)
    assert len(info.value.looked) == 2  # the given data_dir only: never replaced


def test_vocabulary():
    vocab = Vocabulary.characters("banana")
    assert vocab.tokens == ("a", "b", "n") and len(vocab) == 3
    np.testing.assert_array_equal(vocab.encode("nab"), np.array([2, 0, 1], np.int32))
    with pytest.raises(ValueError, match="character 'x' \\(position 1\\)"):
        vocab.encode("axb")
    with_unk = Vocabulary(("?", "a"), unk="?")
    assert with_unk.encode("abc").tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(("a", "a"))
    with pytest.raises(ValueError, match="unk='z'"):
        Vocabulary(("a",), unk="z")
    assert char_corpus("hello world, hello you").vocab.decode([0, 1]) == " ,"


def write_ptb(folder, train, valid, test):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"ptb.{name}.txt").write_text(text, encoding="utf-8")


def test_read_words(tmp_path):
    (tmp_path / "a.txt").write_text(" the cat \n\nsat", encoding="utf-8")
    assert read_words(tmp_path / "a.txt") == ["the", "cat", "<eos>", "<eos>", "sat", "<eos>"]


def test_load_ptb(tmp_path):
    write_ptb(
        tmp_path,
        " the cat sat <unk> \n the dog \n",
        " the bird \n",
        " a cat \n",
    )
    ptb = load_ptb(tmp_path)
    vocab = ptb.vocab
    # most frequent first, ties alphabetical: the(2) <eos>(2) ... then the rest
    assert vocab.tokens == ("<eos>", "the", "<unk>", "cat", "dog", "sat") and vocab.unk == "<unk>"
    assert vocab.decode(ptb.train["tokens"]) == "the cat sat <unk> <eos> the dog <eos>"
    assert vocab.decode(ptb.validation["tokens"]) == "the <unk> <eos>"  # bird -> <unk>
    assert vocab.decode(ptb.test["tokens"]) == "<unk> cat <eos>"
    assert ptb.train["tokens"].dtype == np.int32
    assert ptb.split_names == ("train", "validation", "test")


def test_ptb_without_unk_rejects_unknown_words(tmp_path):
    write_ptb(tmp_path, "a b\n", "a c\n", "b\n")
    with pytest.raises(ValueError, match="ptb.valid.txt: 1 word\\(s\\) not in the training"):
        load_ptb(tmp_path)


def test_ptb_found_next_to_the_working_directory(tmp_path, monkeypatch):
    write_ptb(tmp_path / "shared" / "data" / "ptb", "x y\n", "x\n", "y\n")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert load_ptb().source == str(tmp_path / "shared" / "data" / "ptb")


def test_missing_ptb_lists_every_place(tmp_path, no_shared_data):
    with pytest.raises(DataNotFoundError) as info:
        load_ptb(tmp_path)
    looked = info.value.looked
    assert looked[0].startswith(f"{tmp_path} (missing ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    expected = [tmp_path / "ptb"]  # the given data_dir only: never replaced
    assert [line.split(" (")[0] for line in looked[1:]] == [str(p) for p in expected]
