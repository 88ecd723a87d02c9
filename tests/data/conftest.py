"""Fixtures for the data tests: the shared data folder, and a world without it."""

from pathlib import Path

import pytest

from jdrop.data import _locate as locate

SHARED = locate.shared_data_roots()


def _shared(subdir: str) -> Path:
    for root in SHARED:
        if (root / subdir).is_dir():
            return root / subdir
    pytest.skip(
        f"shared data folder {subdir!r} is absent (looked in {[str(r) for r in SHARED]}); "
        "these tests read the real files from ../shared/data"
    )


@pytest.fixture
def shared_dir():
    """``shared_dir("fashion-mnist")``: that folder under ../shared/data, or skip."""
    return _shared


@pytest.fixture
def no_shared_data(tmp_path, monkeypatch):
    """Points the shared-data search at two empty folders and returns them."""
    roots = [tmp_path / "pkg_side" / "shared" / "data", tmp_path / "cwd_side" / "shared" / "data"]
    monkeypatch.setattr(locate, "shared_data_roots", lambda: list(roots))
    return roots
