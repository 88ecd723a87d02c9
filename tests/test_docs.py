"""The documentation site: every public name is in the API reference, and the site builds.

``test_reference_lists_every_public_name`` is quick: it generates the reference pages the
way the build does and checks every name of every subpackage's ``__all__``.
``test_docs_build`` runs the one build command of the README (offline, warnings as errors:
about a minute on a quiet 2-core machine) and checks the HTML: an anchor for every public
name, every explainer cell executed, the Colab notebooks rendered with their stored outputs.
"""

import html.parser
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _api_module():
    spec = importlib.util.spec_from_file_location("jdrop_docs_api", DOCS / "_ext" / "jdrop_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require_sphinx():
    if os.environ.get("CI"):  # CI installs the docs extra (.ci/run): never skip there
        import myst_nb  # noqa: F401
        import sphinx  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    else:
        for name in ("sphinx", "myst_nb", "sphinx_book_theme"):
            pytest.importorskip(name, reason='pip install -e ".[docs]"')


def test_every_subpackage_is_in_the_reference():
    """A new public subpackage (a folder of jdrop with an __init__) must be listed."""
    api = _api_module()
    on_disk = {
        "jdrop." + path.parent.name
        for path in (ROOT / "jdrop").glob("*/__init__.py")
        if not path.parent.name.startswith("_")
    }
    assert on_disk <= set(api.PACKAGES), sorted(on_disk - set(api.PACKAGES))


def test_reference_lists_every_public_name(tmp_path):
    _require_sphinx()
    api = _api_module()
    packages = api.write_api(tmp_path)
    assert {"jdrop", "jdrop.mc", "jdrop.uncertainty", "jdrop.nn"} <= set(packages)
    documented = set()
    for page in tmp_path.glob("*.rst"):  # one page per package, named after it
        for line in page.read_text().splitlines():
            directive, _, target = line.partition("::")
            if directive.endswith(("autofunction", "autoclass", "autoexception")):
                documented.add(target.strip())
            elif directive == ".. py:data":  # bare name under the page's currentmodule
                documented.add(f"{page.stem}.{target.strip()}")
    names = api.public_names()
    assert len(names) > 100
    missing = sorted(set(names) - documented)
    assert not missing, f"public names missing from the API reference: {missing}"


def test_every_python_block_of_the_pages_is_executed():
    """Python in the written pages is a ``{code-cell}`` (run by the build), never a plain block."""
    pages = [DOCS / "index.md", DOCS / "getting_started.md", *sorted(DOCS.glob("explained/*.md"))]
    for page in pages:
        text = page.read_text()
        assert "```python" not in text and "```py\n" not in text, page.name
        if "{code-cell}" in text:
            assert text.startswith("---\nfile_format: mystnb"), page.name


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name == "id" and value)


def test_docs_build(tmp_path):
    _require_sphinx()
    out = tmp_path / "html"
    env = dict(os.environ)
    # Offline: anything that tried the network would fail (and -W turns that into an error).
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[var] = "http://127.0.0.1:9"
    env.pop("XLA_FLAGS", None)  # the pages set their own device counts
    command = [sys.executable, "-m", "sphinx", "-j", "auto", "-W", "--keep-going", "-b", "html",
               "-d", str(tmp_path / "doctrees"), "docs", str(out)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    # Every public name has its anchor in the rendered reference.
    parser = _Ids()
    for page in (out / "api").glob("*.html"):
        parser.feed(page.read_text())
    missing = sorted(set(_api_module().public_names()) - parser.ids)
    assert not missing, f"public names without an anchor in the HTML reference: {missing}"

    # Intersphinx resolved offline, from the inventories in docs/_inventories.
    reference = "".join(page.read_text() for page in (out / "api").glob("*.html"))
    for site in ("https://docs.jax.dev/", "https://flax.readthedocs.io/",
                 "https://optax.readthedocs.io/", "https://numpy.org/doc/"):
        assert f'href="{site}' in reference, site

    # The explainer pages were executed: every code cell has its output.
    for page in sorted((DOCS / "explained").glob("0*.md")):
        rendered = (out / "explained" / (page.stem + ".html")).read_text()
        assert rendered.count('class="cell docutils container"') == page.read_text().count(
            "```{code-cell}"
        ), page.name
        assert "cell_output" in rendered, page.name
        assert "Traceback" not in rendered, page.name

    # The Colab notebooks are rendered from their stored outputs, never re-executed.
    for notebook in sorted((ROOT / "colab").glob("*.ipynb")):
        rendered = out / "notebooks" / (notebook.stem + ".html")
        assert rendered.is_file(), notebook.name
        assert "cell_output" in rendered.read_text(), notebook.name
        assert f"notebooks/{notebook.name}: Executing" not in result.stderr + result.stdout
