"""The README's "What dropout does" tables are the ones the committed result JSON produces."""

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ("regularizers", "test_time_rule", "dropout_rate", "dataset_size",
               "cnn_placement")
# Follow-up runs the README quotes too: (experiment, folder under its results/).
FOLLOW_UPS = (("cnn_placement", "epochs30"), ("cnn_placement", "flip30"),
              ("cnn_placement", "vgg20"), ("regularizers", "epochs200"))
RUNS = [(name, "") for name in EXPERIMENTS] + list(FOLLOW_UPS)


def _results(name: str, folder: str = "") -> Path:
    return ROOT / "experiments" / name / "results" / folder


def _committed(name: str, folder: str = ""):
    path = _results(name, folder) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _table_lines(name: str, result: dict) -> list[str]:
    """The Markdown table rows the experiment writes for ``result`` (regenerated from JSON)."""
    configs = importlib.import_module(f"experiments.{name}.config")
    train = importlib.import_module(f"experiments.{name}.train")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in result["config"].items()}
    markdown = train.markdown(result, configs.Config(**fields))
    return [line for line in markdown.splitlines() if line.startswith("|")]


@pytest.mark.parametrize(("name", "folder"), RUNS)
def test_readme_tables_match_committed_json(name, folder):
    result = _committed(name, folder)
    if result is None:
        pytest.skip(f"no committed results for {name}")
    readme = (ROOT / "README.md").read_text()
    assert "## What dropout does" in readme
    section = readme.split("## What dropout does", 1)[1]
    lines = _table_lines(name, result)
    assert lines
    missing = [line for line in lines if line not in section]
    assert not missing, f"README rows of {name} differ from its JSON: {missing[:3]}"


@pytest.mark.parametrize(("name", "folder"), RUNS)
def test_committed_markdown_matches_json(name, folder):
    result = _committed(name, folder)
    if result is None:
        pytest.skip(f"no committed results for {name}")
    md = (_results(name, folder) / f"{name}.md").read_text()
    assert all(line in md for line in _table_lines(name, result))


def test_regularizers_follow_up_is_what_the_readme_says():
    """The 200-epoch follow-up: no dropout, dropout and dropout + max-norm, 3 seeds."""
    result = _committed("regularizers", "epochs200")
    assert result["config"]["num_epochs"] == 200
    assert result["config"]["seeds"] == [0, 1, 2]
    assert set(result["config"]["arms"]) == {"none", "dropout", "dropout_max_norm"}


def test_follow_up_runs_are_what_the_readme_says():
    """The 30-epoch CNN follow-ups: LeNet without and with dense dropout, 30 epochs, without
    and with mirrored training images."""
    result = _committed("cnn_placement", "epochs30")
    assert result["config"]["num_epochs"] == 30
    assert result["config"]["arms"] == ["lenet_none", "lenet_fc"]
    assert result["config"].get("flip", 0.0) == 0.0
    mirrored = _committed("cnn_placement", "flip30")  # the same two arms with mirrors
    assert {k: v for k, v in mirrored["config"].items() if k != "flip"} == result["config"]
    assert mirrored["config"]["flip"] == 0.5


def test_vgg_follow_up_is_what_the_readme_says():
    """The VGG-style follow-up: pairs of 3x3 convolutions, mirrors, 20 epochs; its best arm
    is the one the README names as meeting the 93.5% goal."""
    result = _committed("cnn_placement", "vgg20")
    c = result["config"]
    assert (c["lenet_kernel"], c["lenet_depth"], c["lenet_channels"]) == (3, 2, [32, 64])
    assert (c["num_epochs"], c["flip"], c["arms"]) == (20, 0.5, ["lenet_none", "lenet_fc"])
    goal = result["goal"]
    assert goal["met"] and goal["best_test_accuracy"] >= 0.935
    readme = (ROOT / "README.md").read_text()
    best = f"{goal['best_arm']} at {100 * goal['best_test_accuracy']:.2f}% test accuracy"
    assert f"Best: {best}; goal >= 93.50%: met." in readme
