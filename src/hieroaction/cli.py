"""The ``hieroaction`` command line: one subcommand per job.

Each job area adds its subcommands through a ``register(subparsers)`` function in its own
``commands`` module, and each handler calls a Python function that can be used directly.
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

# Modules whose register(subparsers) adds top-level commands, in the order of the help text.
COMMAND_MODULES = (
    "hieroaction.demo.commands",
    "hieroaction.data.commands",
    "hieroaction.models.commands",
    "hieroaction.synth.commands",
    "hieroaction.sar.commands",
    "hieroaction.train.commands",
    "hieroaction.inference.commands",
    "hieroaction.evaluation.commands",
    "hieroaction.serve.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all registered commands)."""
    parser = argparse.ArgumentParser(
        prog="hieroaction",
        description="Interpretable action quality assessment with a video VLM.",
    )
    parser.add_argument("--version", action="version", version=f"hieroaction {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
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


if __name__ == "__main__":
    sys.exit(main())
