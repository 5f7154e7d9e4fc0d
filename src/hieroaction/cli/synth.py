"""``hieroaction synth``: generate the synthetic benchmark from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hieroaction.cli.common import add_config_flag, settings_from_args
from hieroaction.synth.generator import SynthConfig, SynthSummary, generate

# Command-line flags that set a config field directly: flag dest -> dotted config path.
_FLAG_FIELDS = {
    "n": "n",
    "seed": "seed",
    "val_fraction": "val_fraction",
    "test_fraction": "test_fraction",
    "workers": "workers",
    "size": "render.size",
    "fps": "timing.fps",
    "full_labels": "full_labels",
    "action_labels": "action_labels",
}


def register(subparsers: Any) -> None:
    """Add the ``synth`` command."""
    parser = subparsers.add_parser(
        "synth",
        help="generate the synthetic benchmark (videos + records.jsonl)",
        description=(
            "Render a procedurally generated diving-like benchmark with a known action "
            "hierarchy into DIR: videos/*.mp4, records.jsonl (train/val/test), README.md. "
            "Any other setting can be given as key=value (e.g. render.supersample=3)."
        ),
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty)")
    parser.add_argument("--n", type=int, help="number of clips (default 2000)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--val-fraction", type=float, help="fraction of clips for val (0.1)")
    parser.add_argument("--test-fraction", type=float, help="fraction of clips for test (0.2)")
    parser.add_argument("--workers", type=int, help="rendering processes (default: CPU cores)")
    parser.add_argument("--size", type=int, help="frame side in pixels (default 112)")
    parser.add_argument("--fps", type=float, help="frames per second (default 12)")
    parser.add_argument("--full-labels", type=float, metavar="F",
                        help="the paper's partial-label setting: only a seeded fraction F of the training "
                             "clips keeps every label, the rest the final score and the action (default 1)")
    parser.add_argument("--action-labels", type=float, metavar="A",
                        help="with --full-labels: the fraction of the other training clips that keep the "
                             "action label (default 1, as MTL-AQA; 0: the score only, as AQA-7)")
    add_config_flag(parser, "SynthConfig")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier synth output in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run, accepts_overrides=True)


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    """The generation settings: config file, then key=value overrides, then explicit flags."""
    return settings_from_args(SynthConfig, args, _FLAG_FIELDS)


def format_summary(summary: SynthSummary) -> str:
    """The lines printed after a run."""
    rho = summary.reference_rho
    return "\n".join([
        (
            f"wrote {summary.n} clips to {summary.out_dir} "
            f"(train {summary.splits['train']}, val {summary.splits['val']}, "
            f"test {summary.splits['test']}) in {summary.seconds:.1f} s "
            f"with {summary.workers} worker(s), codec {summary.codec}"
        ),
        f"records: {summary.records_path}",
        (
            f"Spearman rho on test ({rho['clips']} clips): difficulty oracle "
            f"{rho['difficulty_oracle']}, perfect quality reader {rho['quality_reader']}"
        ),
    ])


def run(args: argparse.Namespace) -> int:
    """Handler of ``hieroaction synth``."""
    config = config_from_args(args)
    summary = generate(args.out, config, overwrite=args.overwrite, progress=not args.quiet)
    print(format_summary(summary), file=sys.stdout)
    return 0
