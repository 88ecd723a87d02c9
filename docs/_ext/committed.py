"""Read the results that experiments committed under ``experiments/<name>/results/``.

The explainer pages import this in their executed cells so that every measured number
they quote is loaded from the committed JSON at build time, and every figure is the
committed PNG, never a copy typed into the page. A result that is not committed yet is
reported as such instead of failing the build (experiments land on their own schedule).
"""

from __future__ import annotations

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"


def results_dir(experiment: str) -> pathlib.Path:
    return EXPERIMENTS / experiment / "results"


def load(experiment: str, name: str | None = None):
    """The committed JSON ``name`` (or the only/first ``*.json``) of ``experiment``, or None."""
    folder = results_dir(experiment)
    paths = [folder / name] if name else sorted(folder.glob("*.json"))
    for path in paths:
        if path.is_file():
            return json.loads(path.read_text())
    return None


def figures(experiment: str, pattern: str = "*.png") -> list[pathlib.Path]:
    return sorted(results_dir(experiment).glob(pattern))


def show_figures(experiment: str, pattern: str = "*.png", limit: int = 4) -> None:
    """Display the committed figures of ``experiment``; says so when there are none yet."""
    from IPython.display import Image, display

    paths = figures(experiment, pattern)[:limit]
    for path in paths:
        print(f"{path.relative_to(ROOT)}:")
        display(Image(filename=str(path), width=640))
    if not paths:
        print(
            f"experiments/{experiment}/results/{pattern}: not committed yet "
            f"(run python -m experiments.{experiment})."
        )


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def show_table(header, rows) -> None:
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows)))


def markdown_tables(experiment: str, name: str) -> list[str]:
    """The Markdown tables of the committed ``results/<name>`` report, in order."""
    path = results_dir(experiment) / name
    if not path.is_file():
        return []
    tables, current = [], []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current))
            current = []
    return tables


def show_markdown_table(experiment: str, name: str, index: int = 0) -> None:
    """Display table ``index`` of the committed report ``results/<name>`` as it was written."""
    from IPython.display import Markdown, display

    tables = markdown_tables(experiment, name)
    if len(tables) > index:
        print(f"experiments/{experiment}/results/{name}:")
        display(Markdown(tables[index]))
    else:
        print(f"experiments/{experiment}/results/{name}: no table {index} committed yet.")
