"""The Colab notebooks: each runs top to bottom offline (smoke size), and the stored files
are complete, error-free and in step with their jupytext sources (``colab/NN_name.py``),
from which ``colab/build_notebooks.py`` builds them.

The execution tests start a ``python3`` kernel per notebook with ``JDROP_SMOKE=1`` (each
notebook's parameters cell then picks its small configuration), ``JAX_PLATFORMS=cpu`` and
no network; the quickstart gets eight virtual CPU devices (see
``build_notebooks.kernel_env``). Any cell that raises fails the test.
"""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

COLAB = Path(__file__).resolve().parents[1] / "colab"
CELL_TIMEOUT_S = 300  # per cell; a smoke notebook takes well under a minute in total


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", COLAB / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()
NAMES = sorted(builder.NOTEBOOKS)


def _stored(name: str) -> nbformat.NotebookNode:
    return nbformat.read(COLAB / name, as_version=4)


def test_every_notebook_in_the_folder_is_built():
    assert sorted(p.name for p in COLAB.glob("*.ipynb")) == NAMES
    assert len(NAMES) == 4


@pytest.mark.parametrize("name", NAMES)
def test_source_is_a_paired_jupytext_percent_script(name):
    source = (COLAB / name).with_suffix(".py").read_text()
    assert "#     formats: ipynb,py:percent" in source.split("# ---")[1]
    assert "\n# %%\n" in source and "\n# %% [markdown]\n" in source


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_matches_its_builder(name):
    """The .ipynb holds exactly the cells of its .py source (edit the .py, then rebuild)."""
    stored, built = _stored(name), builder.build(name)
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in built.cells
    ]
    nbformat.validate(stored)


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_has_outputs_and_no_errors(name):
    """Saved with the outputs of a run: every code cell ran, in order, none failed, and
    there are plots to see."""
    nb = _stored(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), f"cells not run in order: {counts}"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert "Traceback" not in "".join(json.dumps(o) for c in code for o in c.outputs)
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "no plot in the stored outputs"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_badge_colab_install_and_smoke_switch(name):
    nb = _stored(name)
    first = nb.cells[0].source
    assert first.startswith("[![Open In Colab](https://colab.research.google.com/assets/")
    assert f"/blob/main/colab/{name})" in first
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    setup = sources[0]
    assert 'ON_COLAB = "google.colab" in sys.modules' in setup and "if ON_COLAB:" in setup
    assert "pip" in setup and "git+https://github.com/jdrop-dev/jdrop" in setup
    assert any('SMOKE = os.environ.get("JDROP_SMOKE") == "1"' in s for s in sources)
    assert any("%matplotlib inline" in s for s in sources)
    for s in sources:  # nothing tied to one kind of accelerator
        assert "cuda" not in s.lower() and "jax.devices(\"tpu\")" not in s


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_offline_in_smoke_mode(name):
    from nbclient import NotebookClient

    nb = _stored(name)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(COLAB)}},
    )
    client.execute(env=builder.kernel_env(name, smoke=True))
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
