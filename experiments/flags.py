"""Command-line flags from an experiment's config module (shared by every ``__main__.py``).

Each experiment's ``config.py`` defines a frozen dataclass ``Config`` and two functions,
``default()`` and ``smoke()``. :func:`parse` turns every ``Config`` field into a flag of
the same name (``--num_epochs 3``), adds ``--workdir`` and ``--smoke`` (start from
``smoke()`` instead of ``default()``), and applies the flags given on top of that start::

    config, workdir = flags.parse(config_lib, argv, description=__doc__, check=check_config)

Flag types follow the field annotations: ``int``, ``float``, ``str``; ``bool`` gives
``--name`` / ``--no-name``; ``X | None`` also accepts ``none``; ``tuple[X, ...]`` takes any
number of values (``--shifts noise reversal``).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path

__all__ = ["command", "parse"]


def _flag_type(hint) -> tuple[Callable[[str], object], dict]:
    """``(convert, extra add_argument kwargs)`` for a resolved type hint."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        convert, extra = _flag_type(inner)
        if extra:  # a tuple or bool that may be None: "none" is not a value of those
            return convert, extra
        return (lambda text: None if text.lower() == "none" else convert(text)), {}
    if hint is bool:
        return bool, {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is tuple:
        return args[0], {"nargs": "*"}
    if hint in (int, float, str):
        return hint, {}
    raise TypeError(f"no flag for a config field of type {hint}")


def parse(
    config_module,
    argv=None,
    *,
    description: str,
    check: Callable | None = None,
    workdir_default: str | Path | None = None,
    workdir_aliases: tuple[str, ...] = (),
):
    """``(config, workdir)`` from the command line.

    Args:
      config_module: the experiment's ``config`` module (``Config``, ``default``, ``smoke``,
        and optionally ``cpu``: then ``--cpu`` starts from ``config.cpu()``).
      argv: the arguments (``sys.argv[1:]`` when ``None``).
      description: the ``--help`` text (the entry point's docstring).
      check: ``check(config)`` raising ``ValueError`` for an invalid configuration; its
        message is reported as a usage error (exit status 2).
      workdir_default: ``--workdir`` when not given; ``None`` makes ``--workdir`` required.
      workdir_aliases: other names of ``--workdir`` (e.g. ``--output_dir``).

    Returns:
      The ``Config`` and the work directory as a :class:`pathlib.Path`.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m {config_module.__name__.rpartition('.')[0]}",
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workdir", *workdir_aliases, dest="workdir",
                        required=workdir_default is None, default=workdir_default,
                        help="where results, plots and checkpoints go")
    parser.add_argument("--smoke", action="store_true",
                        help="start from config.smoke() (the whole path in seconds)")
    has_cpu = hasattr(config_module, "cpu")
    if has_cpu:
        parser.add_argument("--cpu", action="store_true",
                            help="start from config.cpu() (the reduced run on a 2-core CPU)")
    hints = typing.get_type_hints(config_module.Config)
    defaults = config_module.default()
    for field in dataclasses.fields(config_module.Config):
        convert, extra = _flag_type(hints[field.name])
        parser.add_argument(f"--{field.name}", type=convert, default=argparse.SUPPRESS,
                            **extra, help=f"default {getattr(defaults, field.name)!r}")
    args = parser.parse_args(argv)
    if args.smoke:
        config = config_module.smoke()
    elif has_cpu and args.cpu:
        config = config_module.cpu()
    else:
        config = defaults
    # flags not given are absent (SUPPRESS), so an explicit ``--name none`` sets None
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config)
                 if hasattr(args, f.name)}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    config = dataclasses.replace(config, **overrides)
    if check is not None:
        try:
            check(config)
        except ValueError as error:
            parser.error(str(error))
    return config, Path(args.workdir)


def command(module: str, config, base=None) -> str:
    """The command line that runs ``module`` with ``config``: the fields that differ from
    ``base`` (the config's defaults when ``None``) as flags.

    Examples:
      >>> from experiments.uci_regression import config as c
      >>> command("experiments.uci_regression", c.smoke())
      'python -m experiments.uci_regression --datasets yacht --splits 2 --num_samples 200 --epochs_overrides yacht=2'
    """  # noqa: E501
    base = type(config)() if base is None else base
    parts = [f"python -m {module}"]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value == getattr(base, field.name):
            continue
        if isinstance(value, bool):
            parts.append(f"--{field.name}" if value else f"--no-{field.name}")
        elif isinstance(value, tuple):
            parts.append(" ".join([f"--{field.name}", *map(str, value)]))
        else:
            parts.append(f"--{field.name} {value}")
    return " ".join(parts)
