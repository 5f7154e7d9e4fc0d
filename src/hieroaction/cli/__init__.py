"""The ``hieroaction`` command line: one subcommand per job, one module per command group.

The command line is the top layer of the package: each module of this package (``data``,
``demo``, ``model``, ``synth``, ``sar``, ``train``, ``plan``, ``assess``, ``calibrate``,
``evaluate``, ``serve``) adds one command with a ``register(subparsers)`` function, and each
handler calls a library function that can be used directly from Python.
:mod:`~hieroaction.cli.common` holds the argparse helpers they share. No library module imports
this package.

A :class:`~hieroaction.errors.HieroActionError` ends the program with its one-sentence message
and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hieroaction import __version__
from hieroaction.errors import HieroActionError

# The command groups (modules of this package), in the order of the help text.
GROUPS = ("demo", "data", "model", "synth", "sar", "train", "plan", "assess", "calibrate", "evaluate", "serve")


def build_parser(groups: Sequence[str] = GROUPS) -> argparse.ArgumentParser:
    """The argument parser with the commands of ``groups`` (default: all of them).

    A smaller ``groups`` builds the command line of some commands only, without importing the
    other groups (tests of one area use it).
    """
    parser = argparse.ArgumentParser(
        prog="hieroaction",
        description="Interpretable action quality assessment with a video VLM.",
    )
    parser.add_argument("--version", action="version", version=f"hieroaction {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in groups:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None, groups: Sequence[str] = GROUPS) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser(groups)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "accepts_overrides", False):
        args.overrides = extra
    try:
        status = args.handler(args)
    except HieroActionError as exc:
        print(f"hieroaction: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hieroaction: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


__all__ = ["GROUPS", "build_parser", "main"]
