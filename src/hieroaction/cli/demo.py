"""``hieroaction demo``: the whole recipe, end to end, on a CPU, as a fixed amount of work."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hieroaction.cli.common import add_config_flag, settings_from_args
from hieroaction.demo.config import DemoConfig

# Command-line flags that set a config field directly: flag dest -> config key.
_FLAG_FIELDS = {
    "out": "out_dir",
    "budget_minutes": "budget_minutes",
    "seeds": "seeds",
    "seed": "first_seed",
    "threads": "threads",
    "jobs": "jobs",
    "family": "family",
    "model_size": "model_size",
    "ablations": "ablations",
    "overwrite": "overwrite",
    "progress": "progress",
}


def register(subparsers: Any) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="train and evaluate the whole recipe on a synthetic benchmark (CPU, a fixed amount of work)",
        description=(
            "Generate the synthetic benchmark, build a small random video VLM, run the SFT cold "
            "start and HPL for a fixed number of steps, evaluate both (and two reference baselines) on "
            "the test split, and write DIR/report.html and DIR/metrics.json. Any DemoConfig "
            "setting can be given as key=value (e.g. evaluation.batch_size=4)."
        ),
    )
    parser.add_argument("--out", metavar="DIR", help="output folder (default runs/demo)")
    parser.add_argument("--budget-minutes", type=float, metavar="M",
                        help="scales the step and clip counts by M / 15 (default 15: the reference work; not a wall clock)")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="repeat everything over N seeds and report mean and spread (default 1)")
    parser.add_argument("--seed", type=int, help="first seed (default 0)")
    parser.add_argument("--ablations", action="store_const", const=True,
                        help="also run GRPO with the final-score reward only from the same SFT model")
    parser.add_argument("--threads", type=int,
                        help="torch threads (default 1: fastest on a busy 2-core machine)")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="processes at once (default: the cores over --threads): seeds first, one "
                             "process each; the processes left over run a seed's independent training "
                             "runs at once (both SFT runs, then the GRPO runs); the numbers do not "
                             "change, only the time")
    parser.add_argument("--family", choices=["qwen2_5_vl", "qwen3_vl"], help="model family")
    parser.add_argument("--model-size", choices=["tiny", "medium", "small"],
                        help="size of the random model (default tiny, see docs/demo.md)")
    add_config_flag(parser, "DemoConfig")
    parser.add_argument("--overwrite", action="store_const", const=True,
                        help="replace an earlier demo output in DIR")
    parser.add_argument("--quiet", dest="progress", action="store_const", const=False, help="no progress lines")
    parser.set_defaults(handler=run, accepts_overrides=True)


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    """The demo settings: config file, then key=value overrides, then explicit flags."""
    return settings_from_args(DemoConfig, args, _FLAG_FIELDS)


def run(args: argparse.Namespace) -> int:
    """Handler of ``hieroaction demo``."""
    from hieroaction.demo.runner import run_demo
    from hieroaction.demo.summary import FINAL_MODEL

    result = run_demo(config_from_args(args))
    out = sys.stdout
    for target in result.summary["targets"]:
        met = {True: "met", False: "not met", None: "not measured"}[target["met"]]
        value = target["value"]
        shown = "-" if value is None else f"{value:.3f}"
        print(f"{target['target']:<55} {shown:>8}  (wanted {target['wanted']}): {met}", file=out)
    print(f"model evaluated against the targets: {FINAL_MODEL}; report: {result.report}; "
          f"metrics: {result.metrics}", file=out)
    return 0
