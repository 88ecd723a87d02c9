"""The README's "What dropout does" tables are the ones the committed result JSON produces."""

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ("regularizers", "test_time_rule", "dropout_rate", "dataset_size",
               "cnn_placement")


def _committed(name: str):
    path = ROOT / "experiments" / name / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _table_lines(name: str, result: dict) -> list[str]:
    """The Markdown table rows the experiment writes for ``result`` (regenerated from JSON)."""
    configs = importlib.import_module(f"experiments.{name}.config")
    train = importlib.import_module(f"experiments.{name}.train")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in result["config"].items()}
    markdown = train.markdown(result, configs.Config(**fields))
    return [line for line in markdown.splitlines() if line.startswith("|")]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_readme_tables_match_committed_json(name):
    result = _committed(name)
    if result is None:
        pytest.skip(f"no committed results for {name}")
    readme = (ROOT / "README.md").read_text()
    assert "## What dropout does" in readme
    section = readme.split("## What dropout does", 1)[1]
    lines = _table_lines(name, result)
    assert lines
    missing = [line for line in lines if line not in section]
    assert not missing, f"README rows of {name} differ from its JSON: {missing[:3]}"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_committed_markdown_matches_json(name):
    result = _committed(name)
    if result is None:
        pytest.skip(f"no committed results for {name}")
    md = (ROOT / "experiments" / name / "results" / f"{name}.md").read_text()
    assert all(line in md for line in _table_lines(name, result))
