"""Runs every docstring example in the jdrop package (the examples are part of the docs)."""

import doctest
import importlib
import pkgutil

import pytest

import jdrop

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(jdrop.__path__, prefix="jdrop.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
