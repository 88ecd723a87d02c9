"""Where data files are looked for: a folder the user gives, system folders, ``shared/data``.

Every loader that reads files searches the same way (first hit wins):

1. the ``data_dir`` argument itself, then ``data_dir/<subdir>``;
2. system folders for that data set (e.g. ``/usr/share/datasets/fashion-mnist``);
3. ``<subdir>`` under each folder of :func:`shared_data_roots`.

A ``data_dir`` given by the user is used or refused, never replaced: when it is given
only step 1 is searched, so a misspelled folder, a folder missing a file or a file
raises :class:`~jdrop.data.DataNotFoundError` instead of silently loading the offline copy.

A folder counts only if it holds every file the loader needs; otherwise the search goes
on, and the reason is recorded for the :class:`~jdrop.data.DataNotFoundError` raised when
nothing fits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def shared_data_roots() -> list[Path]:
    """The ``shared/data`` folders next to the repository, in search order.

    Returns:
      ``<checkout>/../shared/data``, where ``<checkout>`` is the folder that holds the
      ``jdrop`` package (``Path(jdrop.__file__).parents[2] / "shared" / "data"``), then
      ``Path.cwd().parent / "shared" / "data"``; duplicates removed. The folders need
      not exist.
    """
    package_side = Path(__file__).resolve().parents[3] / "shared" / "data"
    cwd_side = Path.cwd().parent / "shared" / "data"
    return dedupe_paths([package_side, cwd_side])


def candidate_dirs(
    subdir: str,
    data_dir: str | os.PathLike | None = None,
    system_dirs: Sequence[str | os.PathLike] = (),
) -> list[Path]:
    """The folders searched for one data set, in order (see the module docstring).

    Args:
      subdir: the data set's folder name under ``shared/data`` (e.g. ``"fashion-mnist"``).
      data_dir: a folder given by the user: the only one searched when given (itself,
        then ``data_dir/subdir``), never replaced by another copy.
      system_dirs: folders searched when no ``data_dir`` is given.

    Returns:
      Absolute paths, duplicates removed.

    Examples:
      >>> [str(d) for d in candidate_dirs("toy", "/data", ["/usr/share/datasets/toy"])]
      ['/data', '/data/toy']
      >>> dirs = candidate_dirs("toy", None, system_dirs=["/usr/share/datasets/toy"])
      >>> str(dirs[0]), all(d.name == "toy" for d in dirs)
      ('/usr/share/datasets/toy', True)
    """
    dirs: list[Path] = []
    if data_dir is not None:  # the user's folder is used or refused, never replaced
        given = Path(data_dir).expanduser()
        return dedupe_paths([d.absolute() for d in (given, given / subdir)])
    dirs += [Path(d).expanduser() for d in system_dirs]
    dirs += [root / subdir for root in shared_data_roots()]
    return dedupe_paths([d.absolute() for d in dirs])


def find_files(
    candidates: Sequence[Path], required: Mapping[str, Sequence[str]]
) -> tuple[dict[str, Path] | None, list[str]]:
    """Finds the first folder that holds every required file.

    Args:
      candidates: folders to search, in order.
      required: for each logical file, the file names accepted for it, in order of
        preference (e.g. ``{"train": ("train.txt.gz", "train.txt")}``).

    Returns:
      ``(found, looked)``: ``found`` maps each logical file to its path in the first
      folder holding all of them (``None`` when no folder does); ``looked`` has one line
      per folder rejected, saying why.

    Examples:
      >>> found, looked = find_files([Path("/no/such/dir")], {"a": ("a.txt",)})
      >>> found is None, looked
      (True, ['/no/such/dir (no such folder)'])
    """
    looked: list[str] = []
    for folder in candidates:
        if not folder.is_dir():
            what = "a file, not a folder" if folder.exists() else "no such folder"
            looked.append(f"{folder} ({what})")
            continue
        found: dict[str, Path] = {}
        missing: list[str] = []
        for key, names in required.items():
            hit = next((folder / n for n in names if (folder / n).is_file()), None)
            if hit is None:
                missing.append(" or ".join(names))
            else:
                found[key] = hit
        if not missing:
            return found, looked
        looked.append(f"{folder} (missing {', '.join(missing)})")
    return None, looked


def dedupe_paths(paths: list[Path]) -> list[Path]:
    """``paths`` without repeats (compared after ``os.path.normpath``), order kept.

    Examples:
      >>> [str(p) for p in dedupe_paths([Path("a"), Path("a/"), Path("b"), Path("./a")])]
      ['a', 'b']
    """
    seen: set[str] = set()
    out = []
    for path in paths:
        key = os.path.normpath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out
