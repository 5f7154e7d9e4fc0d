"""The argparse pieces the command groups share: subcommand tables, the flags of every command
that runs a model, and settings built from ``--config``, overrides and flags."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from hieroaction.config import load_config_with_flags

T = TypeVar("T")


def subcommands(parser: argparse.ArgumentParser, dest: str, metavar: str = "SUBCOMMAND") -> Any:
    """The required subcommand table of a command group (``hieroaction data ...``)."""
    sub = parser.add_subparsers(dest=dest, metavar=metavar)
    sub.required = True
    return sub


def add_model_flag(parser: Any, required: bool = False) -> None:
    """``--model M``: the model folder a command loads."""
    parser.add_argument("--model", required=required, metavar="M",
                        help="model folder (or Hub id) with its processor")


def add_batch_size_flag(parser: Any) -> None:
    parser.add_argument("--batch-size", type=int, metavar="N", help="clips per generate call (default 4)")


def add_max_new_tokens_flag(parser: Any) -> None:
    parser.add_argument("--max-new-tokens", type=int, metavar="N", help="longest answer (default 1024)")


def add_device_flags(parser: Any) -> None:
    """``--device`` and ``--dtype`` (both chosen automatically when not given)."""
    parser.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--dtype", help="auto (default), float32, bfloat16 or float16")


def add_config_flag(parser: Any, settings: str) -> None:
    """``--config FILE``: a YAML file of ``settings`` (a config class name)."""
    parser.add_argument("--config", metavar="FILE", help=f"YAML file of {settings} settings")


def add_set_flag(parser: Any, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable), for commands whose positional words are not settings."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"another setting, e.g. --set {example} (repeatable)")


def settings_from_args(
    cls: type[T],
    args: argparse.Namespace,
    flag_fields: dict[str, str],
    overrides: Iterable[str] | None = None,
    defaults: dict[str, Any] | None = None,
) -> T:
    """``cls`` from ``defaults``, then ``--config``, then ``overrides`` (by default the
    ``key=value`` words after the flags), then the flags of ``flag_fields`` that were given."""
    if overrides is None:
        overrides = getattr(args, "overrides", None) or []
    return load_config_with_flags(cls, getattr(args, "config", None), list(overrides), args, flag_fields,
                                  defaults=defaults)


def saved_inference_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The inference settings kept in the ``--model`` folder (what it was trained with; empty
    without ``--model``, for a Hub id or a folder without them)."""
    from hieroaction.inference.saved import read_settings

    return read_settings(getattr(args, "model", None))


def log_to_stderr() -> None:
    """Show the ``hieroaction`` logger's messages (data checks, skipped records, where a model
    went) on stderr; progress bars go through tqdm."""
    log = logging.getLogger("hieroaction")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hieroaction: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
