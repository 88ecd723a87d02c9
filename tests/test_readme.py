"""The README's Python examples run as written, and CI installs exactly as it says."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_ci_installs_exactly_as_the_readme_says_and_every_extra():
    ci = (ROOT / ".ci" / "run").read_text()
    install = re.search(r'^pip install -e "\.\[(.*?)\]"$', ci, flags=re.M)
    assert install, ".ci/run has no `pip install -e \".[...]\"` line"
    line = f'pip install -e ".[{install.group(1)}]" && ruff check . && python -m pytest -q -n auto'
    assert line in README.read_text(), f"the README's CI command is not {line!r}"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(install.group(1).split(",")) == set(extras)


def test_readme_paths_exist():
    """Every repository path the README names in backquotes exists."""
    text = README.read_text()
    paths = set(re.findall(r"`((?:jdrop|experiments|colab|tests|docs)/[\w./<>-]*)`", text))
    missing = [p for p in sorted(paths) if "<" not in p and not (ROOT / p).exists()]
    assert missing == []
