"""Result tables: Markdown for people, JSON for programs, written side by side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence], *, float_format: str = "{:.4f}"
) -> str:
    """A GitHub-flavoured Markdown table.

    Args:
      header: the column titles.
      rows: the rows, each as long as ``header``; floats are written with
        ``float_format``, everything else with ``str``.
      float_format: a :meth:`str.format` pattern for floats.

    Returns:
      The table, one line per row, ending with a newline.

    Raises:
      ValueError: if a row's length differs from the header's.

    Examples:
      >>> print(markdown_table(["inference", "accuracy"], [["MC", 0.91234]]), end="")
      | inference | accuracy |
      |---|---|
      | MC | 0.9123 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells, the header {len(header)}: {row}")
        cells = [float_format.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(workdir, results: dict, markdown: str, *, name: str = "results"):
    """Writes ``<workdir>/<name>.json`` (``results``) and ``<workdir>/<name>.md``.

    Args:
      workdir: the folder (created if missing).
      results: JSON-serialisable results (tuples become lists).
      markdown: the human-readable report.
      name: the files' stem.

    Returns:
      ``(json_path, markdown_path)`` as :class:`pathlib.Path`.

    Raises:
      TypeError: if ``results`` is not JSON-serialisable.

    Examples:
      >>> import tempfile
      >>> paths = write_results(tempfile.mkdtemp(), {"accuracy": 0.9}, "# accuracy 0.9\\n")
      >>> [p.name for p in paths], json.loads(paths[0].read_text())
      (['results.json', 'results.md'], {'accuracy': 0.9})
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = workdir / f"{name}.json", workdir / f"{name}.md"
    json_path.write_text(json.dumps(results, indent=1))
    md_path.write_text(markdown)
    return json_path, md_path
