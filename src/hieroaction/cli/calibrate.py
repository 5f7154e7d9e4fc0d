"""``hieroaction calibrate``: conformal score intervals for a model, measured on a validation split.

``hieroaction calibrate --model M --data FILE.jsonl [--split val] [--samples N] [--coverage 0.9]``
answers the split's clips with the model, fits a split-conformal interval for the final score
and stores it in the model folder (``hieroaction_calibration.json``); from then on ``assess``,
``serve`` and ``evaluate --model`` give every score its interval. The library function is
:func:`hieroaction.inference.calibrate.calibrate`.
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
    add_set_flag,
    saved_inference_settings,
    settings_from_args,
)

# Command-line flags that set an InferenceConfig field.
_FLAG_FIELDS = {
    "batch_size": "batch_size",
    "max_new_tokens": "max_new_tokens",
    "device": "device",
    "dtype": "dtype",
}


def register(subparsers: Any) -> None:
    """Add the ``calibrate`` command."""
    parser = subparsers.add_parser(
        "calibrate",
        help="fit conformal score intervals on a validation split and store them with the model",
        description=(
            "Answer the clips of a validation split with the model, measure how far each "
            "predicted score lies from the true one, and store a split-conformal calibration in "
            "the model folder: from then on every assessment of the model gives its score with "
            "an interval that holds the true score for --coverage of clips like these. With "
            "--samples N > 1 the model also samples N answers per clip and intervals widen "
            "where they disagree (the same N answers are then sampled at every assessment). A "
            "clip without a predicted score counts as an infinite error. Calibrate on a "
            "validation split, never on test."
        ),
    )
    add_model_flag(parser, required=True)
    parser.add_argument("--data", required=True, metavar="FILE", help="records JSONL file")
    parser.add_argument("--split", default="val", help="the split to calibrate on (default val)")
    parser.add_argument("--samples", type=int, default=1, metavar="N",
                        help="answers per clip: 1 (default) uses the absolute error of the greedy "
                             "answer; N > 1 samples N more and normalises by their spread")
    parser.add_argument("--coverage", type=float, default=0.9, metavar="P",
                        help="nominal coverage of the intervals, between 0 and 1 (default 0.9)")
    parser.add_argument("--temperature", type=float, default=1.0, metavar="T",
                        help="sampling temperature with --samples > 1 (default 1)")
    parser.add_argument("--spread", choices=("std", "mad"), default="std",
                        help="spread of the sampled scores: std (default) or mad (1.4826 x MAD)")
    parser.add_argument("--floor", type=float, metavar="F",
                        help="added to the spread (default: 1%% of the clips' true score range)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    parser.add_argument("--frames-cache", metavar="DIR", help="frame cache folder (hieroaction data frames)")
    add_batch_size_flag(parser)
    add_max_new_tokens_flag(parser)
    add_device_flags(parser)
    add_config_flag(parser, "InferenceConfig")
    add_set_flag(parser, "frames.num_frames=8")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the calibration as one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``hieroaction calibrate``."""
    from hieroaction.inference.calibrate import calibrate
    from hieroaction.inference.config import InferenceConfig
    from hieroaction.io import dumps_json

    config = settings_from_args(InferenceConfig, args, _FLAG_FIELDS, overrides=args.set,
                                defaults=saved_inference_settings(args))
    calibration = calibrate(
        args.model, args.data, args.split, args.samples, args.coverage,
        temperature=args.temperature, spread=args.spread, floor=args.floor, seed=args.seed,
        config=config, frames_cache=args.frames_cache, progress=not args.quiet,
    )
    if args.json:
        sys.stdout.write(dumps_json(calibration.to_dict(), indent=None))
        return 0
    print(calibration.summary())
    print(f"wrote {calibration.path}")
    return 0
