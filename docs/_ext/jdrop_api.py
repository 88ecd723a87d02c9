"""Generate the API reference from each jdrop subpackage's ``__all__`` at build time.

Nothing here lists a public name by hand: on ``builder-inited`` the extension imports every
package in :data:`PACKAGES` that exists, reads its ``__all__`` and writes one reStructuredText
page per package under ``docs/api/`` (``autofunction``/``autoclass``/``autoexception``
directives, constants as ``py:data`` with their ``#:`` comments), grouped by the private
module that defines each name, as the package is. A name that re-exports an object whose
home is another package (``jdrop.nn.split_key``) gets a short entry pointing at the home.

``docs/api/`` is generated (git-ignored); :func:`public_names` and :func:`write_api` are
what ``tests/test_docs.py`` uses to check that every public name reaches the reference.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re
import sys
import textwrap

# The order of the reference; packages that cannot be imported yet are left out.
PACKAGES = (
    "jdrop",
    "jdrop.mc",
    "jdrop.uncertainty",
    "jdrop.nn",
    "jdrop.linen",
    "jdrop.models",
    "jdrop.data",
    "jdrop.train",
    "jdrop.report",
    "jdrop.attention",
    "jdrop.audio",
    "jdrop.plots",
)

TITLES = {
    "jdrop": "jdrop: the dropout ops",
    "jdrop.mc": "jdrop.mc: Monte-Carlo dropout",
    "jdrop.uncertainty": "jdrop.uncertainty: uncertainty metrics",
    "jdrop.nn": "jdrop.nn: Flax NNX layers",
    "jdrop.linen": "jdrop.linen: Flax Linen layers",
    "jdrop.models": "jdrop.models: the model zoo",
    "jdrop.data": "jdrop.data: offline data loaders",
    "jdrop.train": "jdrop.train: the training loop",
    "jdrop.report": "jdrop.report: reports",
    "jdrop.attention": "jdrop.attention: attention dropout",
    "jdrop.audio": "jdrop.audio: audio features",
    "jdrop.plots": "jdrop.plots: plots",
}


def import_packages(packages=PACKAGES):
    """``{name: module}`` for every package that imports and declares ``__all__``."""
    found = {}
    for name in packages:
        try:
            module = importlib.import_module(name)
        except ImportError as error:  # a package still being written
            if error.name is not None and not name.startswith(error.name):
                raise  # the package exists but one of its imports is broken: say so
            continue
        if hasattr(module, "__all__"):
            found[name] = module
    return found


def public_names(packages=PACKAGES):
    """Every documented name, fully qualified: ``["jdrop.dropout", "jdrop.mc.sample", ...]``."""
    return [
        f"{package}.{name}"
        for package, module in import_packages(packages).items()
        for name in module.__all__
    ]


def _defining_module(package: str, name: str, obj) -> str:
    """The private module that defines ``obj`` (for grouping), or the package itself."""
    module = getattr(obj, "__module__", None)
    if inspect.isclass(obj) or inspect.isroutine(obj) or callable(obj):
        if isinstance(module, str):
            return module
    for modname, mod in sorted(sys.modules.items()):
        if modname.startswith(package + ".") and mod is not None:
            if getattr(mod, name, _MISSING) is obj and name in vars(mod):
                return modname
    return package


_MISSING = object()


def _home(obj, owner: dict[int, str], module_name: str, package: str) -> str | None:
    """The package documenting ``obj`` if it is not ``package`` (a re-export), else None."""
    for candidate in sorted(owner.values(), key=len, reverse=True):
        if module_name.startswith(candidate + "._") or module_name == candidate:
            return None if candidate == package else candidate
    first = owner.get(id(obj))
    return None if first in (None, package) else first


_REEXPORTS = "re-exports"


def _section_title(module_name: str, package: str) -> str:
    if module_name == package or not module_name.startswith(package + "."):
        return "Definitions"
    stem = module_name[len(package) + 1 :].split(".")[0].lstrip("_")
    return stem.replace("_", " ").capitalize()


def _first_line(doc: str | None) -> str:
    """The first paragraph of a docstring, as one line of valid reStructuredText."""
    doc = inspect.cleandoc(doc or "")
    line = doc.split("\n\n")[0].replace("\n", " ").strip()
    # ``loss_fn``s: reST wants an escaped space between a literal and a letter after it.
    # Literals pair up left to right, so scan them in order rather than with one pattern.
    out, last = [], 0
    for match in re.finditer(r"``(?:(?!``).)+``", line):
        out.append(line[last : match.end()])
        following = line[match.end() : match.end() + 1]
        if following.isalnum() or following == "_":
            out.append("\\ ")
        last = match.end()
    return "".join(out) + line[last:]


def _role(obj) -> str:
    if inspect.isclass(obj):
        return "exc" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "func"
    return "data"


def _data_entry(qualname: str, obj, module_name: str, name: str) -> list[str]:
    from sphinx.pycode import ModuleAnalyzer

    # The page's ``currentmodule`` is the package: the directive takes the bare name.
    lines = [f".. py:data:: {qualname.rsplit('.', 1)[1]}", f"   :type: {type(obj).__name__}", ""]
    doc = []
    try:
        doc = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", name), [])
    except Exception:  # noqa: BLE001 (no source: no comment, still documented)
        doc = []
    body = [line for line in doc if line.strip()] or [f"A ``{type(obj).__name__}``."]
    lines += ["   " + line for line in body]
    if isinstance(obj, dict | tuple | list | frozenset | set):
        keys = list(obj)[:12]
        shown = ", ".join(f"``{key!r}``" for key in keys)
        more = ", ..." if len(obj) > len(keys) else ""
        what = "keys" if isinstance(obj, dict) else "values"
        lines += ["", f"   {len(obj)} {what}: {shown}{more}."]
    return lines + [""]


def page(package: str, module, owner: dict[int, str]) -> str:
    """The reStructuredText of one package's reference page."""
    title = TITLES.get(package, package)
    out = [title, "=" * len(title), "", f".. automodule:: {package}", "   :no-members:", ""]
    out += [".. currentmodule:: " + package, ""]
    for name in module.__all__:
        obj = getattr(module, name)
        summary = _first_line(getattr(obj, "__doc__", None)) if _role(obj) != "data" else ""
        out += [f"* :py:{_role(obj)}:`~{package}.{name}`" + (f": {summary}" if summary else "")]
    out += [""]
    groups: dict[str, list[tuple[str, object, str | None]]] = {}
    for name in module.__all__:
        obj = getattr(module, name)
        defining = _defining_module(package, name, obj)
        home = _home(obj, owner, defining, package)
        groups.setdefault(_REEXPORTS if home else defining, []).append((name, obj, home))
    for defining in sorted(groups, key=lambda group: group == _REEXPORTS):  # re-exports last
        if defining == _REEXPORTS:
            heading, intro = "Re-exported names", ""
        else:
            heading = _section_title(defining, package)
            intro = _first_line(sys.modules[defining].__doc__) if defining in sys.modules else ""
        out += [heading, "-" * len(heading), ""]
        if intro and defining != package:
            out += [intro, ""]
        for name, obj, home in groups[defining]:
            qualname = f"{package}.{name}"
            role = _role(obj)
            if home is not None:
                out += [
                    f".. py:data:: {name}",
                    "",
                    f"   Re-export of :py:{role}:`{home}.{name}`: the same object.",
                    "",
                ]
            elif role == "data":
                out += _data_entry(qualname, obj, defining, name)
            elif role == "func":
                out += [f".. autofunction:: {qualname}", ""]
            else:
                directive = "autoexception" if role == "exc" else "autoclass"
                out += [f".. {directive}:: {qualname}", "   :members:"]
                if "__call__" in vars(obj) and getattr(obj.__call__, "__doc__", None):
                    out += ["   :special-members: __call__"]
                out += [""]
    return "\n".join(out) + "\n"


def write_api(outdir: pathlib.Path, packages=PACKAGES) -> list[str]:
    """Write ``index.rst`` and one page per importable package; returns the package names."""
    found = import_packages(packages)
    owner: dict[int, str] = {}
    for package, module in found.items():
        for name in module.__all__:
            owner.setdefault(id(getattr(module, name)), package)
    outdir.mkdir(parents=True, exist_ok=True)
    keep = {"index.rst"} | {f"{package}.rst" for package in found}
    for stale in outdir.glob("*.rst"):
        if stale.name not in keep:
            stale.unlink()
    for package, module in found.items():
        _write_if_changed(outdir / f"{package}.rst", page(package, module, owner))
    index = textwrap.dedent(
        """\
        API reference
        =============

        Generated at build time from each package's ``__all__``: every public name of every
        subpackage, grouped as the package is (one page per package, one section per module
        that defines the names).

        .. toctree::
           :maxdepth: 1

        """
    ) + "".join(f"   {package}\n" for package in found)
    _write_if_changed(outdir / "index.rst", index)
    return list(found)


def _write_if_changed(path: pathlib.Path, text: str) -> None:
    # Unchanged pages keep their mtime, so an incremental build re-reads nothing.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _builder_inited(app) -> None:
    write_api(pathlib.Path(app.srcdir) / "api")


def _class_signature(app, what, name, obj, options, signature, return_annotation):
    """Flax modules' metaclass ``__call__(*args, **kwargs)`` hides ``__init__``: show it."""
    hidden = signature in (None, "", "(*args: Any, **kwargs: Any)")
    if what == "class" and hidden and inspect.isfunction(getattr(obj, "__init__", None)):
        from sphinx.util.inspect import signature as init_signature
        from sphinx.util.inspect import stringify_signature

        try:
            init = init_signature(obj.__init__, bound_method=True)
        except Exception:  # noqa: BLE001 (keep autodoc's own signature)
            return None
        return stringify_signature(init, show_return_annotation=False), None
    return None


def setup(app):
    app.connect("builder-inited", _builder_inited)
    app.connect("autodoc-process-signature", _class_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
