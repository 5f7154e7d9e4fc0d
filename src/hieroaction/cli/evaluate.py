"""``hieroaction evaluate``: score a model on a records file, or score existing predictions.

``hieroaction evaluate --model M --data FILE.jsonl --out DIR [--split test] [--batch-size N]
[--max-new-tokens N] [--frames-cache DIR] [--config FILE] [key=value ...]`` runs the model and
writes predictions.jsonl, metrics.json and the report to DIR.

``hieroaction evaluate --predictions P.jsonl --truth T.jsonl [--json] [--out DIR]
[--calibration FILE]`` scores predictions that already exist, from this system or any other,
with the same code; score intervals in the predictions are scored too (their coverage and
width; their reliability with ``--calibration``, the calibration file that made them).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hieroaction.cli.common import (
    add_batch_size_flag,
    add_config_flag,
    add_device_flags,
    add_max_new_tokens_flag,
    add_model_flag,
    saved_inference_settings,
    settings_from_args,
)
from hieroaction.errors import ConfigError

# Command-line flags that set a config field: flag dest -> dotted EvalConfig path.
_FLAG_FIELDS = {
    "batch_size": "inference.batch_size",
    "max_new_tokens": "inference.max_new_tokens",
    "device": "inference.device",
    "dtype": "inference.dtype",
    "bootstrap": "scoring.bootstrap.n_resamples",
}


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on a records file, or score existing predictions",
        description=(
            "With --model: run the model on the records of --data (greedy, batched) and write "
            "predictions.jsonl, metrics.json and report.md/report.html to --out. With "
            "--predictions and --truth: score existing predictions (JSONL keyed by id, a "
            "prediction needing at least a score; score intervals in it are scored too, their "
            "reliability with --calibration). Choose checkpoints and settings on a "
            "validation split, never on test. Other settings: key=value (e.g. "
            "inference.frames.num_frames=8 scoring.class_by=domain)."
        ),
    )
    model = parser.add_argument_group("running a model")
    add_model_flag(model)
    model.add_argument("--data", metavar="FILE", help="records JSONL file")
    model.add_argument("--split", help="only records of this split (e.g. val, test); default all")
    model.add_argument("--out", metavar="DIR", help="output folder (also allowed with --predictions)")
    add_batch_size_flag(model)
    add_max_new_tokens_flag(model)
    model.add_argument("--frames-cache", metavar="DIR", help="frame cache folder (hieroaction data frames)")
    add_device_flags(model)
    model.add_argument("--quiet", action="store_true", help="no progress bar")
    files = parser.add_argument_group("scoring existing predictions")
    files.add_argument("--predictions", metavar="FILE", help="predictions JSONL keyed by id")
    files.add_argument("--truth", metavar="FILE", help="truth JSONL: records or {id, score} lines")
    files.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    files.add_argument(
        "--calibration", metavar="FILE",
        help="the calibration file (hieroaction_calibration.json) that made the predictions' score "
             "intervals: adds their reliability to the coverage and width",
    )
    add_config_flag(parser, "EvalConfig")
    parser.add_argument("--bootstrap", type=int, metavar="N",
                        help="bootstrap resamples of the confidence intervals (default 1000; 0: none)")
    parser.set_defaults(handler=run, accepts_overrides=True)


def _config(args: argparse.Namespace) -> Any:
    from hieroaction.evaluation.runner import EvalConfig

    # with --model, the model folder's own inference settings come first (what it was trained with)
    saved = saved_inference_settings(args)
    return settings_from_args(EvalConfig, args, _FLAG_FIELDS, defaults={"inference": saved} if saved else None)


def _check_mode(args: argparse.Namespace) -> str:
    if args.model and args.predictions:
        raise ConfigError("give either --model (run a model) or --predictions (score a file), not both")
    if args.model:
        missing = [flag for flag, value in (("--data", args.data), ("--out", args.out)) if not value]
        if missing:
            raise ConfigError(f"evaluate --model also needs {' and '.join(missing)}")
        if args.truth or args.json or args.calibration:
            raise ConfigError(
                "--truth, --json and --calibration belong to evaluate --predictions, not --model "
                "(a calibrated model folder holds its own calibration)"
            )
        return "model"
    if args.predictions:
        if not args.truth:
            raise ConfigError("evaluate --predictions also needs --truth (the ground truth JSONL)")
        unused = [f for f, v in (("--data", args.data), ("--split", args.split),
                                 ("--frames-cache", args.frames_cache)) if v]
        if unused:
            raise ConfigError(f"{unused[0]} belongs to evaluate --model, not --predictions")
        return "files"
    raise ConfigError("evaluate needs --model M --data FILE --out DIR, or --predictions P --truth T")


def run(args: argparse.Namespace) -> int:
    """Handler of ``hieroaction evaluate``."""
    from hieroaction.evaluation.runner import evaluate_files, evaluate_model
    from hieroaction.io import dumps_json
    from hieroaction.reports.evaluation import evaluation_text

    mode = _check_mode(args)
    config = _config(args)
    if mode == "model":
        outcome = evaluate_model(
            args.model, args.data, args.out, config=config, split=args.split,
            frames_cache=args.frames_cache, progress=not args.quiet,
        )
    else:
        outcome = evaluate_files(args.predictions, args.truth, config=config, out_dir=args.out,
                                 calibration=args.calibration)
    if args.json:
        sys.stdout.write(dumps_json(outcome.evaluation.metrics, indent=None))
        return 0
    sys.stdout.write(evaluation_text(outcome.evaluation))
    for path in outcome.files:
        if path.parent.name != "report_assets":
            print(f"wrote {path}")
    return 0
