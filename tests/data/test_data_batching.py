"""ArrayDataset, batches and lm_batches: determinism, resumption, per-process shards."""

import numpy as np
import pytest

from jdrop.data import (
    ArrayDataset,
    batches,
    epoch_order,
    lm_batches,
    num_batches,
    num_lm_batches,
)


def make_dataset(n=23):
    return ArrayDataset(
        {"x": np.arange(n, dtype=np.int32), "y": np.arange(n * 2, dtype=np.float32).reshape(n, 2)}
    )


def ids(batch_list):
    return [b["x"].tolist() for b in batch_list]


# ArrayDataset ------------------------------------------------------------------------------


def test_array_dataset_is_read_only_and_batches_are_copies():
    ds = make_dataset()
    assert len(ds) == 23 and ds.names == ("x", "y") and "x" in ds
    with pytest.raises(ValueError, match="read-only"):
        ds["x"][0] = 5
    batch = next(batches(ds, 4, shuffle=False))
    batch["x"][0] = 99  # writable, and the data set is untouched
    assert ds["x"][0] == 0
    assert repr(ds) == "ArrayDataset(23 examples: x=int32[23], y=float32[23, 2])"


@pytest.mark.parametrize(
    "arrays, error, match",
    [
        ({}, ValueError, "non-empty"),
        ({"a": np.zeros(3), "b": np.zeros(4)}, ValueError, r"len\(arrays\['b'\]\)=4"),
        ({"a": np.float32(1)}, ValueError, "scalar"),
        ({1: np.zeros(3)}, TypeError, "names must be strings"),
    ],
)
def test_array_dataset_rejects_bad_arrays(arrays, error, match):
    with pytest.raises(error, match=match):
        ArrayDataset(arrays)


# batches -----------------------------------------------------------------------------------


def test_same_seed_same_batches_and_epochs_differ():
    ds = make_dataset()
    a = ids(batches(ds, 5, seed=7, epoch=0))
    assert a == ids(batches(ds, 5, seed=7, epoch=0))
    assert a != ids(batches(ds, 5, seed=7, epoch=1))
    assert a != ids(batches(ds, 5, seed=8, epoch=0))
    assert len(a) == num_batches(ds, 5) == 4


def test_order_is_default_rng_of_seed_and_epoch():
    expected = np.random.default_rng([3, 2]).permutation(23)
    np.testing.assert_array_equal(epoch_order(23, seed=3, epoch=2), expected)
    got = np.concatenate([b["x"] for b in batches(make_dataset(), 23, seed=3, epoch=2)])
    np.testing.assert_array_equal(got, expected)


def test_an_epoch_without_drop_remainder_visits_every_example_once():
    ds = make_dataset()
    got = np.concatenate([b["x"] for b in batches(ds, 5, seed=1, drop_remainder=False)])
    assert sorted(got.tolist()) == list(range(23))
    np.testing.assert_array_equal(
        np.concatenate([b["y"] for b in batches(ds, 5, seed=1, drop_remainder=False)]),
        ds["y"][got],
    )
    assert [len(b["x"]) for b in batches(ds, 5, seed=1, drop_remainder=False)] == [5] * 4 + [3]


def test_no_shuffle_keeps_order():
    assert ids(batches(make_dataset(10), 4, shuffle=False)) == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("drop_remainder", [True, False])
@pytest.mark.parametrize("start_step", [0, 1, 2, 3])
def test_resume_equals_tail_of_uninterrupted_epoch(start_step, drop_remainder):
    ds = make_dataset()
    kwargs = dict(seed=11, epoch=5, drop_remainder=drop_remainder)
    full = ids(batches(ds, 6, **kwargs))
    resumed = ids(batches(ds, 6, start_step=start_step, **kwargs))
    assert resumed == full[start_step:]


def test_resume_does_not_build_the_skipped_batches(monkeypatch):
    ds = make_dataset()
    calls = []
    original = ArrayDataset.take

    def counting_take(self, rows):
        calls.append(rows)
        return original(self, rows)

    monkeypatch.setattr(ArrayDataset, "take", counting_take)
    list(batches(ds, 2, seed=0, start_step=9))
    assert len(calls) == num_batches(ds, 2) - 9 == 2


@pytest.mark.parametrize("process_count", [1, 2, 3, 6])
@pytest.mark.parametrize("drop_remainder", [True, False])
def test_process_shards_concatenate_to_the_global_batch(process_count, drop_remainder):
    ds = make_dataset()
    kwargs = dict(seed=4, epoch=1, drop_remainder=drop_remainder)
    global_batches = list(batches(ds, 6, **kwargs))
    shards = [
        list(batches(ds, 6, process_index=p, process_count=process_count, **kwargs))
        for p in range(process_count)
    ]
    for step, batch in enumerate(global_batches):
        for name in ("x", "y"):
            parts = [shards[p][step][name] for p in range(process_count)]
            np.testing.assert_array_equal(np.concatenate(parts), batch[name])
        if len(batch["x"]) == 6:
            sizes = {len(shards[p][step]["x"]) for p in range(process_count)}
            assert sizes == {6 // process_count}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size must be >= 1, got batch_size=0"),
        (dict(batch_size=24), "batch_size=24 exceeds the data set's 23 examples"),
        (dict(batch_size=6, process_count=4), "batch_size=6 with process_count=4"),
        (dict(batch_size=4, process_index=2, process_count=2), "process_index=2"),
        (dict(batch_size=4, start_step=6), "start_step=6"),
        (dict(batch_size=4, seed=None), "needs a seed"),
        (dict(batch_size=4, seed=-1), "seed=-1"),
        (dict(batch_size=4, epoch=-2), "epoch=-2"),
    ],
)
def test_bad_arguments_raise_at_call_time(kwargs, match):
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        batches(make_dataset(), **kwargs)  # no next(): the check is eager


def test_batch_size_larger_than_data_is_fine_without_drop_remainder():
    assert ids(batches(make_dataset(3), 8, shuffle=False, drop_remainder=False)) == [[0, 1, 2]]
    with pytest.raises(TypeError, match="batch_size=True"):
        batches(make_dataset(), True, seed=0)


def test_num_batches():
    assert num_batches(make_dataset(), 5) == 4
    assert num_batches(23, 5, drop_remainder=False) == 5
    assert num_batches(0, 5, drop_remainder=False) == 0


# lm_batches --------------------------------------------------------------------------------

TOKENS = np.arange(1000, 1103, dtype=np.int64)  # 103 tokens: values show their position


def test_lm_targets_are_inputs_shifted_by_one_and_streams_continue():
    out = list(lm_batches(TOKENS, batch_size=4, seq_len=5))
    stream_len = len(TOKENS) // 4  # 25
    assert len(out) == num_lm_batches(len(TOKENS), 4, 5) == (stream_len - 1) // 5 == 4
    for i, batch in enumerate(out):
        assert batch["inputs"].shape == batch["targets"].shape == (4, 5)
        assert batch["inputs"].dtype == batch["targets"].dtype == np.int32
        np.testing.assert_array_equal(batch["targets"][:, :-1], batch["inputs"][:, 1:])
        for b in range(4):
            start = b * stream_len + i * 5
            np.testing.assert_array_equal(batch["inputs"][b], TOKENS[start : start + 5])
            np.testing.assert_array_equal(batch["targets"][b], TOKENS[start + 1 : start + 6])
    for prev, nxt in zip(out, out[1:], strict=False):  # row b of batch i+1 continues row b
        np.testing.assert_array_equal(nxt["inputs"][:, 0], prev["targets"][:, -1])


def test_lm_resume_and_process_shards():
    full = list(lm_batches(TOKENS, 4, 5))
    resumed = list(lm_batches(TOKENS, 4, 5, start_step=3))
    assert len(resumed) == 1
    np.testing.assert_array_equal(resumed[0]["inputs"], full[3]["inputs"])
    shards = [list(lm_batches(TOKENS, 4, 5, process_index=p, process_count=2)) for p in range(2)]
    for step, batch in enumerate(full):
        for name in ("inputs", "targets"):
            glued = np.concatenate([shards[0][step][name], shards[1][step][name]])
            np.testing.assert_array_equal(glued, batch[name])


@pytest.mark.parametrize(
    "tokens, kwargs, match",
    [
        (TOKENS.reshape(1, -1), {}, "1-D integer array"),
        (TOKENS.astype(np.float32), {}, "1-D integer array"),
        (TOKENS - 2000, {}, r"\[0, 2\*\*31\)"),
        (TOKENS[:23], {}, "need at least batch_size \\* \\(seq_len \\+ 1\\) = 24"),
        (TOKENS, dict(process_count=3), "batch_size=4 with process_count=3"),
        (TOKENS, dict(start_step=5), "start_step=5"),
    ],
)
def test_lm_bad_arguments(tokens, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lm_batches(tokens, 4, 5, **kwargs)
