"""load_dataset, the search for files, the errors, and what importing jdrop.data pulls in."""

import ast
import pickle
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import jdrop
import jdrop.data
from jdrop.data import DATASET_NAMES, DataNotFoundError, load_dataset, shared_data_roots
from jdrop.data import _idx as idx
from jdrop.data._locate import candidate_dirs, find_files


def test_root_conftest_applies_here():
    assert jax.config.jax_numpy_dtype_promotion == "strict"
    assert len(jax.devices()) == 8


def test_importing_jdrop_data_pulls_in_no_heavy_dependency():
    # Load jdrop.data under a bare "jdrop" package so that jdrop/__init__.py's own imports
    # (jax, flax, ...) do not count; then list the non-stdlib top-level modules it added.
    # jax comes with jdrop's one validation module (and ``import jdrop`` loads it anyway);
    # TFDS, TensorFlow, mnist1d, Flax, optax and PyTorch must stay inside the loaders.
    code = f"""
import sys, types
pkg = types.ModuleType("jdrop")
pkg.__path__ = [{str(Path(jdrop.__file__).parent)!r}]
sys.modules["jdrop"] = pkg
before = set(sys.modules)
import jdrop.data
new = {{m.split(".")[0] for m in set(sys.modules) - before}}
print(sorted(m for m in new if m not in sys.stdlib_module_names))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    added = set(ast.literal_eval(out.stdout.strip()))
    assert {"jdrop", "numpy"} <= added
    heavy = {"tensorflow", "tensorflow_datasets", "mnist1d", "flax", "optax", "torch", "orbax"}
    assert not added & heavy, added


def test_public_names():
    assert sorted(jdrop.data.__all__) == sorted(set(jdrop.data.__all__))
    for name in jdrop.data.__all__:
        assert getattr(jdrop.data, name) is not None


def test_shared_data_roots(tmp_path, monkeypatch):
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    package_side = Path(jdrop.__file__).resolve().parents[2] / "shared" / "data"
    assert shared_data_roots() == [package_side, tmp_path / "shared" / "data"]


def test_candidate_dirs_order(no_shared_data):
    # a given data_dir is the only place searched: used or refused, never replaced
    dirs = candidate_dirs("x", "/given", ["/sys/x"])
    assert [str(d) for d in dirs] == ["/given", "/given/x"]
    searched = candidate_dirs("x", None, ["/sys/x"])
    assert [str(d) for d in searched] == ["/sys/x", *(str(r / "x") for r in no_shared_data)]
    found, looked = find_files(dirs[:1], {"a": ("a.gz", "a")})
    assert found is None and looked == ["/given (no such folder)"]


def test_load_dataset_local_sources(shared_dir):
    shared_dir("fashion-mnist")
    shared_dir("tinyshakespeare")
    fashion = load_dataset("fashion-mnist")
    assert fashion.name == "fashion_mnist" and fashion.source.endswith("fashion-mnist")
    assert fashion.split_names == ("train", "test") and fashion.num_classes == 10
    text = load_dataset("tiny_shakespeare")
    assert text.split_names == ("train", "validation", "test") and len(text.vocab) == 65
    assert len(load_dataset("mnist1d").test) == 1000


def test_nothing_found_lists_every_place(tmp_path, no_shared_data, monkeypatch):
    system = tmp_path / "system"
    monkeypatch.setattr(idx, "FASHION_MNIST_SYSTEM_DIR", str(system))
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion_mnist", data_dir=tmp_path / "d", tfds_data_dir=tmp_path / "tfds")
    error = info.value
    places = [tmp_path / "d", tmp_path / "d" / "fashion-mnist"]  # a given data_dir only
    assert [line.split(" (")[0] for line in error.looked[:-1]] == [str(p) for p in places]
    assert error.looked[-1].startswith(f"TFDS 'fashion_mnist' split 'train' in {tmp_path / 'tfds'}")
    message = str(error)
    assert message.startswith("fashion_mnist: data not found. Looked in:")
    assert "--data_dir" in message and "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message
    assert not (tmp_path / "tfds").exists() or not any((tmp_path / "tfds").rglob("*.array_record*"))


def test_cifar_without_tfds_data(tmp_path):
    with pytest.raises(DataNotFoundError, match="TFDS 'cifar10'"):
        load_dataset("cifar10", tfds_data_dir=tmp_path)


def test_unknown_name():
    with pytest.raises(ValueError, match="name='imagenet'"):
        load_dataset("imagenet")
    assert "mnist1d" in DATASET_NAMES and "ptb" in DATASET_NAMES


def test_data_not_found_error_pickles():
    error = DataNotFoundError("toy", ["here", "there"], "make it")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.looked == ("here", "there")
    assert isinstance(again, FileNotFoundError) and isinstance(again, OSError)
