"""Builds each notebook of this folder from its jupytext source (``NN_name.py``) and runs it.

The ``.py`` files (jupytext percent format) are the sources: edit them, then rebuild::

    python colab/build_notebooks.py --execute          # build, run (full size), store outputs
    python colab/build_notebooks.py --execute 02       # only the notebooks matching "02"
    python colab/build_notebooks.py --execute --smoke  # run the small (CI) configuration
    python colab/build_notebooks.py                    # build only: keep the stored outputs
                                                       # of every cell whose code is unchanged

Running uses nbclient with the ``python3`` kernel and ``JAX_PLATFORMS=cpu`` (see
:func:`kernel_env`), as ``tests/test_notebooks.py`` does. Needs ``jupytext``, ``nbformat``
and ``nbclient`` (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
NOTEBOOKS = tuple(sorted(p.with_suffix(".ipynb").name for p in HERE.glob("[0-9][0-9]_*.py")))

# Notebooks whose kernel keeps the host's CPU devices as they are (one on a plain machine)
# instead of eight virtual ones. Training over several virtual CPU devices can deadlock on a
# machine with few cores: with asynchronous dispatch one device starts the next step's
# all-gather while another still needs a worker thread for the current step, and XLA:CPU
# aborts after its collective timeout ("Expected 8 threads to join the rendezvous").
# 01_quickstart has no cross-device collective and sets eight devices itself.
EIGHT_DEVICES = ("01_quickstart.ipynb",)
_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` built from its ``.py`` source, without outputs."""
    nb = jupytext.read(HERE / Path(name).with_suffix(".py"))
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "name": name},
    }
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
        cell.metadata.pop("lines_to_next_cell", None)
    return nb


def keep_outputs(nb: nbformat.NotebookNode, stored: nbformat.NotebookNode) -> list[int]:
    """Copies the stored outputs of every code cell whose source is unchanged, in order.

    Returns the indices of the code cells left without outputs (new or edited).
    """
    old = [c for c in stored.cells if c.cell_type == "code"]
    missing = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        match = next((c for c in old if c.source == cell.source), None)
        if match is None:
            missing.append(i)
            continue
        old = old[old.index(match) + 1:]
        cell.outputs, cell.execution_count = match.outputs, match.execution_count
    return missing


def kernel_env(name: str, *, smoke: bool) -> dict[str, str]:
    """The environment notebook ``name`` runs in here: CPU only, offline, smoke or full."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(_DEVICE_FLAG)]
    if name in EIGHT_DEVICES:
        flags.append(f"{_DEVICE_FLAG}=8")
    env["XLA_FLAGS"] = " ".join(flags)
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("MPLBACKEND", None)  # let the kernel use its inline backend
    if smoke:
        env["JDROP_SMOKE"] = "1"
    else:
        env.pop("JDROP_SMOKE", None)
    return env


def execute(nb: nbformat.NotebookNode, name: str, *, smoke: bool, timeout: int = 900):
    """Runs notebook ``name`` top to bottom in a fresh kernel (cwd: this folder)."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, coalesce_streams=True,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute(env=kernel_env(name, smoke=smoke))
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # timings change on every run
    return nb


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="substrings of the notebooks to build")
    parser.add_argument("--execute", action="store_true", help="run and store outputs")
    parser.add_argument("--smoke", action="store_true", help="run with JDROP_SMOKE=1")
    args = parser.parse_args(argv)
    for name in NOTEBOOKS:
        if args.only and not any(s in name for s in args.only):
            continue
        nb = build(name)
        if args.execute:
            start = time.perf_counter()
            execute(nb, name, smoke=args.smoke)
            print(f"{name}: ran in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        elif (HERE / name).exists():
            stored = nbformat.read(HERE / name, as_version=4)
            nb.metadata["language_info"] = stored.metadata.get("language_info", {})
            missing = keep_outputs(nb, stored)
            if missing:
                print(f"{name}: cells {missing} changed and have no outputs: run with "
                      "--execute", file=sys.stderr)
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
