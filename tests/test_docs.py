"""The documentation site: every public name is in the API reference, and the site builds.

The quick tests generate the reference pages the way the build does and check every name of
every subpackage's ``__all__``, that formulas in public docstrings are Sphinx math (rendered
by MathJax) rather than code literals, and that every Python block of the written pages is
executed by the build. The build itself (the README's one command: offline, warnings as
errors; about a minute on a quiet 2-core machine) runs once per test session, shared by the
tests that check its HTML (``built_docs``; under pytest-xdist one worker builds and the
others wait for it).
"""

import fcntl
import html.parser
import importlib.util
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Public names whose reference entry must render at least one formula (MathJax): the
# formulas issue 15 lists (inverted dropout, its moments, weight scaling, alpha dropout's
# affine map, Gaussian dropout, DropBlock's gamma, Concrete dropout and its regulariser,
# variational dropout and zoneout, MC predictive summaries, ECE, attention dropout,
# DropConnect, max-norm, label smoothing, R-Drop, the Transformer's schedule and positions).
MATH_NAMES = (
    "jdrop.dropout",
    "jdrop.weight_scale",
    "jdrop.apply_mask",
    "jdrop.spatial_dropout",
    "jdrop.drop_path",
    "jdrop.dropconnect",
    "jdrop.alpha_dropout",
    "jdrop.gaussian_dropout",
    "jdrop.dropblock",
    "jdrop.concrete_dropout",
    "jdrop.concrete_dropout_regularizer",
    "jdrop.locked_dropout",
    "jdrop.embedding_dropout",
    "jdrop.zoneout",
    "jdrop.weight_drop",
    "jdrop.keep_mask",
    "jdrop.random_bits",
    "jdrop.mc.predictive_classification",
    "jdrop.mc.predictive_regression",
    "jdrop.uncertainty.predictive_probs",
    "jdrop.uncertainty.predictive_entropy",
    "jdrop.uncertainty.expected_entropy",
    "jdrop.uncertainty.mutual_information",
    "jdrop.uncertainty.variation_ratio",
    "jdrop.uncertainty.expected_calibration_error",
    "jdrop.uncertainty.predictive_mean",
    "jdrop.uncertainty.total_variance",
    "jdrop.uncertainty.predictive_log_likelihood",
    "jdrop.nn.Dropout",
    "jdrop.nn.GaussianDropout",
    "jdrop.nn.ConcreteDropout",
    "jdrop.nn.DropConnectDense",
    "jdrop.nn.MultiHeadAttention",
    "jdrop.nn.TransformerBlock",
    "jdrop.nn.RNNStack",
    "jdrop.linen.Dropout",
    "jdrop.attention.dot_product_attention",
    "jdrop.train.project_max_norm",
    "jdrop.train.label_smoothed_cross_entropy",
    "jdrop.train.symmetric_kl",
    "jdrop.train.rdrop_loss",
    "jdrop.train.inverse_sqrt_schedule",
    "jdrop.models.sinusoidal_positions",
    "jdrop.report.reliability_diagram",
)

# A ``literal`` that is a formula, not code: distributions (``m ~ Bernoulli``), expectations
# (``E[y]``, ``Var[y]``, ``H[p]``), subscripted reductions (``sum_t``, ``max_k``), norms
# (``||w||``), powers written with a caret (``x^2``, ``tau^-1``), the dropout scale
# (``/ (1 - rate)``), a bar accent (``p̄``) or an equation with a one-letter left side and
# an expression on the right.
_FORMULA = re.compile(
    r"~ ?(Bernoulli|N\(|U\(|U\[|Uniform)"
    r"|\b(E|Var|H|I)(_t)?\["
    r"|\b(sum|max|min|logsumexp|argmax|mean|prod)_[a-z](?![a-z])"
    r"|\u0304|\|\||\^-?\d|\^[({]"
    r"|\(1 - (rate|p)\)"
    r"|^[A-Za-z]('|_\w+)? = (?![\w.]+$)"  # ``y = ...`` but not ``B = batch_size``
)
_LITERAL = re.compile(r"``((?:(?!``).)+)``", re.S)
_CODE = re.compile(r"//|==|[A-Za-z_]\.[A-Za-z_]")


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


def _public_objects():
    """``(qualified name, object)`` of every public name the reference documents."""
    api = _api_module()
    for package, module in api.import_packages().items():
        for name in module.__all__:
            yield f"{package}.{name}", getattr(module, name)


def _docstrings(qualname, obj):
    """The docstrings the reference renders for ``obj``: its own and its public members'."""
    if not (inspect.isroutine(obj) or inspect.isclass(obj)):
        return
    if doc := inspect.getdoc(obj):
        yield qualname, doc
    if inspect.isclass(obj):
        for attr, member in vars(obj).items():
            if attr.startswith("_") and attr != "__call__":
                continue
            target = member.fget if isinstance(member, property) else member
            target = getattr(target, "__func__", target)
            if inspect.isroutine(target) and (doc := inspect.getdoc(target)):
                yield f"{qualname}.{attr}", doc


def formula_literals(doc: str) -> list[str]:
    """The double-backquoted literals of ``doc`` that are formulas (see ``_FORMULA``)."""
    literals = [" ".join(lit.split()) for lit in _LITERAL.findall(doc)]
    # Integer division, comparisons and attribute access (``jnp.ones(3)``, ``x.shape``) are
    # Python, not notation: such literals are code.
    return [lit for lit in literals
            if _FORMULA.search(lit) and not _CODE.search(lit)]


def test_formula_heuristic():
    code = ("``x``, ``jax.random.key(0)``, ``max_length``, ``where(keep, x, 0)``, ``(N, K)``, "
            "``y = jdrop.dropout(key, x, 0.5)``, ``S = len(tokens) // B``, ``B = batch_size``")
    assert formula_literals(code) == []
    formulas = "``y = m * x``, ``m ~ Bernoulli(1 - rate)``, ``E[y]``, ``sum_t p_t``, ``x^2``"
    assert len(formula_literals(formulas)) == 5


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


def test_formulas_are_math_not_code():
    """Formulas in public docstrings are ``:math:`` roles or ``.. math::`` blocks (MathJax).

    A formula written as a double-backquoted literal renders as code in the reference:
    write it as a ``:math:`` role or a ``.. math::`` block (in a raw docstring when it has
    backslashes), and keep code (calls, shapes, names) as literals.
    """
    found = {
        qualname: literals
        for name, obj in _public_objects()
        for qualname, doc in _docstrings(name, obj)
        if (literals := formula_literals(doc))
    }
    for package, module in _api_module().import_packages().items():  # the pages' intros
        if literals := formula_literals(module.__doc__ or ""):
            found[package] = literals
    assert not found, f"formulas written as code literals (use :math:): {found}"
    public = dict(_public_objects())
    for name in MATH_NAMES:
        doc = inspect.getdoc(public[name]) or ""
        assert ":math:`" in doc or ".. math::" in doc, f"{name}: no formula in its docstring"


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


def _build(shared: pathlib.Path) -> dict:
    out = shared / "html"
    env = dict(os.environ)
    # Offline: anything that tried the network would fail (and -W turns that into an error).
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[var] = "http://127.0.0.1:9"
    # The pages set their own device counts; their kernels compile with the suite's cheap
    # XLA settings (the executed pages are compile-bound: about 20% less CPU).
    env["XLA_FLAGS"] = " ".join(
        flag for flag in env.get("XLA_FLAGS", "").split()
        if not flag.startswith("--xla_force_host_platform_device_count")
    )
    command = [sys.executable, "-m", "sphinx", "-j", "auto", "-W", "--keep-going", "-b", "html",
               "-d", str(shared / "doctrees"), "docs", str(out)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    return {"returncode": result.returncode, "log": result.stdout + result.stderr, "html": out}


@pytest.fixture(scope="session")
def built_docs(tmp_path_factory):
    """One docs build per test session, shared by every test that reads its HTML.

    Under pytest-xdist the workers share the parent of their base temporary directories:
    the first worker to get the lock builds there, the others wait and reuse the result.
    """
    _require_sphinx()
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared = shared / "jdrop_docs_build"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            log, status = shared / "log.txt", shared / "returncode"
            if not status.exists():
                result = _build(shared)
                log.write_text(result["log"])
                status.write_text(str(result["returncode"]))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    returncode, text = int(status.read_text()), log.read_text()
    assert returncode == 0, text[-8000:]
    return {"html": shared / "html", "log": text}


def test_docs_build_anchors_every_public_name(built_docs):
    parser = _Ids()
    for page in (built_docs["html"] / "api").glob("*.html"):
        parser.feed(page.read_text())
    missing = sorted(set(_api_module().public_names()) - parser.ids)
    assert not missing, f"public names without an anchor in the HTML reference: {missing}"


def test_docs_build_renders_formulas_as_math(built_docs):
    """The reference entries of the formula-bearing names contain MathJax math nodes."""
    pages = {}
    for name in MATH_NAMES:
        package = next(p for p in sorted(_api_module().PACKAGES, key=len, reverse=True)
                       if name.startswith(p + "."))
        if package not in pages:
            pages[package] = (built_docs["html"] / "api" / f"{package}.html").read_text()
        text = pages[package]
        start = text.index(f'id="{name}"')
        entry = text[start:text.find('<dt class="sig sig-object py"', start + 1)]
        assert 'class="math notranslate nohighlight"' in entry, f"{name}: no math node"
        assert "\\(" in entry or "\\[" in entry, name
    assert "mathjax" in pages["jdrop"].lower()  # the MathJax script is loaded


def test_docs_build_resolves_intersphinx_offline(built_docs):
    reference = "".join(page.read_text() for page in (built_docs["html"] / "api").glob("*.html"))
    for site in ("https://docs.jax.dev/", "https://flax.readthedocs.io/",
                 "https://optax.readthedocs.io/", "https://numpy.org/doc/"):
        assert f'href="{site}' in reference, site


def test_docs_build_executes_every_explainer_cell(built_docs):
    for page in [DOCS / "getting_started.md", *sorted((DOCS / "explained").glob("0*.md"))]:
        rendered = (built_docs["html"] / page.relative_to(DOCS).with_suffix(".html")).read_text()
        assert rendered.count('class="cell docutils container"') == page.read_text().count(
            "```{code-cell}"
        ), page.name
        assert "cell_output" in rendered, page.name
        assert "Traceback" not in rendered, page.name


def test_docs_build_renders_stored_notebook_outputs(built_docs):
    """The Colab notebooks are rendered from their stored outputs, never re-executed."""
    for notebook in sorted((ROOT / "colab").glob("*.ipynb")):
        rendered = built_docs["html"] / "notebooks" / (notebook.stem + ".html")
        assert rendered.is_file(), notebook.name
        assert "cell_output" in rendered.read_text(), notebook.name
        assert f"notebooks/{notebook.name}: Executing" not in built_docs["log"]
