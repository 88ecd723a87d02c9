"""UCI regression sets with Gal & Ghahramani's splits and hyper-parameter grids."""

import numpy as np
import pytest

from jdrop.data import DataNotFoundError, Standardizer, load_uci, uci_dataset_names

N_SPLITS = {"protein-tertiary-structure": 5}


@pytest.mark.parametrize("name", uci_dataset_names())
def test_real_uci_sets(shared_dir, name):
    folder = shared_dir("uci") / name
    table = np.loadtxt(folder / "data.txt")
    features = np.loadtxt(folder / "index_features.txt", dtype=int, ndmin=1)
    target = int(np.loadtxt(folder / "index_target.txt"))
    n_splits = N_SPLITS.get(name, 20)
    for split in (0, n_splits - 1):
        s = load_uci(name, split)
        train = np.loadtxt(folder / f"index_train_{split}.txt", dtype=int)
        test = np.loadtxt(folder / f"index_test_{split}.txt", dtype=int)
        assert s.n_splits == n_splits and s.split == split and s.name == name
        assert s.X_train.shape == (len(train), len(features)) and s.y_train.shape == (len(train), 1)
        assert s.X_test.shape == (len(test), len(features)) and s.y_test.shape == (len(test), 1)
        assert {a.dtype for a in (s.X_train, s.y_train, s.X_test, s.y_test)} == {np.dtype("f4")}
        np.testing.assert_allclose(s.X_train, table[train][:, features], rtol=1e-6)
        np.testing.assert_allclose(s.y_test[:, 0], table[test, target], rtol=1e-6)
        assert len(np.union1d(train, test)) == len(table)  # the splits cover every row once
    assert s.dropout_rates == (0.005, 0.01, 0.05, 0.1) and len(s.tau_values) == 3
    assert s.n_hidden == (100 if name.startswith("protein") else 50)
    assert s.n_epochs == (20 if name.startswith("protein") else 40)


def test_normalisation_uses_training_statistics(shared_dir):
    shared_dir("uci")
    raw = load_uci("bostonHousing", 3)
    norm, x_scaler, y_scaler = raw.normalized()
    np.testing.assert_allclose(norm.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(norm.X_train.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(norm.y_train.mean(), 0, atol=1e-5)
    np.testing.assert_allclose(x_scaler.mean, raw.X_train.mean(0), rtol=1e-5)
    np.testing.assert_allclose(y_scaler.inverse(norm.y_test), raw.y_test, rtol=1e-5)
    assert abs(float(norm.X_test.mean())) > 1e-4  # test data: training statistics, not its own
    assert norm.n_splits == raw.n_splits and norm.X_train.dtype == np.float32


def test_zero_std_becomes_one():
    s = Standardizer.fit(np.array([[1.0, 2.0], [1.0, 4.0]], np.float32))
    assert s.std.tolist() == [1.0, 1.0] and s.mean.tolist() == [1.0, 3.0]
    assert s.transform(np.array([[1.0, 3.0]], np.float32)).tolist() == [[0.0, 0.0]]


def write_uci(folder, train="0 1 2", test="3", n_splits=2):
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "data": "1 2 10\n3 4 20\n5 6 30\n7 8 40\n",
        "index_features": "0\n1\n",
        "index_target": "2\n",
        "dropout_rates": "0.005\n0.01\n",
        "tau_values": "0.1\n0.2\n",
        "n_hidden": "50\n",
        "n_epochs": "40\n",
        "n_splits": f"{n_splits}\n",
    }
    for split in range(n_splits):
        files[f"index_train_{split}"] = train
        files[f"index_test_{split}"] = test
    for stem, text in files.items():
        (folder / f"{stem}.txt").write_text(text)


def test_small_layout_in_tmp_path(tmp_path):
    write_uci(tmp_path / "yacht")
    s = load_uci("yacht", 1, data_dir=tmp_path)
    assert s.X_train.tolist() == [[1, 2], [3, 4], [5, 6]] and s.y_test.tolist() == [[40]]
    assert s.dropout_rates == (0.005, 0.01) and s.n_splits == 2 and s.n_hidden == 50


@pytest.mark.parametrize("split", [2, -1])
def test_split_out_of_range(tmp_path, split):
    write_uci(tmp_path / "yacht")
    with pytest.raises(ValueError, match=f"split={split} with n_splits=2"):
        load_uci("yacht", split, data_dir=tmp_path)


@pytest.mark.parametrize(
    "train, test, match",
    [
        ("0 1 4", "3", "row index 4 is out of range for 4 rows"),
        ("0 -1", "3", "row index -1"),
        ("0 1 2", "2 3", "in both the train and the test"),
    ],
)
def test_bad_indices(tmp_path, train, test, match):
    write_uci(tmp_path / "yacht", train=train, test=test)
    with pytest.raises(ValueError, match=match):
        load_uci("yacht", 0, data_dir=tmp_path)


def test_unknown_name_and_missing_folder(tmp_path, no_shared_data):
    with pytest.raises(ValueError, match="name='boston'"):
        load_uci("boston", 0)
    with pytest.raises(DataNotFoundError) as info:
        load_uci("yacht", 0, data_dir=tmp_path)
    message = str(info.value)
    for place in [tmp_path, tmp_path / "yacht", tmp_path / "uci" / "yacht"]:
        assert f"{place} (" in message
    for root in no_shared_data:  # a given data_dir is never replaced by the shared copy
        assert str(root / "uci" / "yacht") not in message.split("pass data_dir")[0]
