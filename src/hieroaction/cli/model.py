"""``hieroaction model ...``: model utilities on the command line.

``hieroaction model tiny --family qwen2_5_vl|qwen3_vl --out DIR [--size tiny|medium|small] [--seed 0]
[--overwrite]`` builds a randomly initialised model of the family's real class, with a locally
trained tokenizer and the processor configs, and saves it as a checkpoint folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hieroaction.cli.common import subcommands


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``model`` command and its subcommands."""
    model = subparsers.add_parser("model", help="build and inspect models")
    sub = subcommands(model, "model_command")
    tiny = sub.add_parser(
        "tiny",
        help="build a randomly initialised tiny model offline (tests, CPU demo)",
        description="Build a randomly initialised model of the family's real transformers class, "
        "with a byte-level BPE tokenizer trained locally, and save it with save_pretrained.",
    )
    # Family and size are checked by build_tiny so a bad value ends in one ConfigError sentence.
    tiny.add_argument("--family", required=True, help="qwen2_5_vl or qwen3_vl")
    tiny.add_argument("--out", required=True, type=Path, help="checkpoint folder to write")
    tiny.add_argument(
        "--size", default="tiny", help="tiny (tests and the CPU demo), medium or small; default tiny"
    )
    tiny.add_argument("--seed", type=int, default=0, help="seed of the weight initialisation")
    tiny.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    tiny.set_defaults(handler=run_tiny)


def run_tiny(args: argparse.Namespace) -> int:
    """Handler of ``hieroaction model tiny``."""
    from hieroaction.models.tiny import build_tiny, checkpoint_parameters

    out = build_tiny(
        args.family, args.out, size=args.size, seed=args.seed, overwrite=args.overwrite
    )
    print(f"wrote {out} ({args.family}, {args.size}, {checkpoint_parameters(out):,} parameters)")
    return 0
