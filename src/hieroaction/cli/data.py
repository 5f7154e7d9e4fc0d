"""``hieroaction data ...``: validate, convert, summarise and split datasets; precompute frames."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hieroaction.cli.common import subcommands
from hieroaction.config import load_config
from hieroaction.data.adapters import dataset_names
from hieroaction.data.convert import convert_dataset
from hieroaction.data.records import BadLine, read_jsonl, write_jsonl
from hieroaction.data.splits import carve_split
from hieroaction.data.stats import dataset_stats, format_stats
from hieroaction.data.validate import split_counts, validate_dataset
from hieroaction.video.cache import precompute
from hieroaction.video.sample import FrameConfig


def _validate(args: argparse.Namespace) -> int:
    report = validate_dataset(args.dataset, args.annotations, args.frames)
    print(report.to_json() if args.json else report.to_text())
    if report.failure is not None:
        print(f"hieroaction: {report.failure}", file=sys.stderr)
        return 1
    return 0


def _convert(args: argparse.Namespace) -> int:
    summary = convert_dataset(args.dataset, args.annotations, args.out, args.frames)
    splits = ", ".join(f"{k} {v}" for k, v in summary.splits.items())
    print(f"wrote {summary.written} records to {summary.out} ({splits})")
    no_video = summary.no_video_line(args.frames)
    if no_video:
        print(no_video)
    if summary.warnings:
        print(f"{len(summary.warnings)} converted records have noisy labels "
              "(run `hieroaction data validate` for the list)")
    if summary.skipped:
        print(f"{len(summary.skipped)} records could not be converted:")
        for p in summary.skipped:
            print(f"  {p.kind}  {p.id}: {p.detail}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    bad: list[BadLine] = []
    records = read_jsonl(args.data, bad)
    stats = dataset_stats(records)
    stats["bad_lines"] = [str(b) for b in bad]
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(format_stats(stats))
        for line in stats["bad_lines"]:
            print(f"bad line: {line}", file=sys.stderr)
    return 1 if bad and not records else 0


def _split(args: argparse.Namespace) -> int:
    records = read_jsonl(args.data)
    out = carve_split(records, args.val_fraction, args.seed, args.source, args.target, not args.no_stratify)
    write_jsonl(out, args.out or args.data)
    counts = ", ".join(f"{k} {v}" for k, v in split_counts(out).items())
    print(f"wrote {len(out)} records to {args.out or args.data} ({counts})")
    return 0


def _partial_labels(args: argparse.Namespace) -> int:
    from hieroaction.data.partial import partial_labels

    records = read_jsonl(args.data)
    out, summary = partial_labels(records, args.full_labels, action_fraction=args.action_labels,
                                  seed=args.seed, split=args.split)
    write_jsonl(out, args.out)
    print(f"wrote {len(out)} records to {args.out}; {summary.line()}")
    return 0


def _frames(args: argparse.Namespace) -> int:
    # Relative video paths start from --video-root, by default the records file's folder;
    # unreadable lines and clips are listed in CACHE/failures.jsonl, the rest is cached.
    config = load_config(FrameConfig, args.config, getattr(args, "overrides", None))
    bad: list[BadLine] = []
    records = read_jsonl(args.data, bad=bad)
    summary = precompute(
        records,
        args.cache,
        config,
        args.workers,
        base_dir=args.video_root if args.video_root is not None else args.data.parent,
        progress=not args.no_progress,
        bad_lines=bad,
    )
    print(summary)
    return 1 if summary.failures else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hieroaction data`` and its subcommands."""
    data = subparsers.add_parser("data", help="read, check and prepare datasets")
    sub = subcommands(data, "data_command")
    names = ", ".join(dataset_names())

    p = sub.add_parser(
        "validate",
        help="report records whose annotations contradict each other",
        description=f"Read a dataset's original annotation files and report problems. Datasets: {names}.",
        epilog=(
            "Exit status: 0 when every annotation was read into a record (records whose labels "
            "contradict each other are listed, and still count as read); 1 when no record was "
            "read at all (an empty or header-only file, the wrong folder) or some annotation "
            "could not be read (an 'unreadable' problem: a file, line or entry that became no "
            "record); 2 when the dataset cannot be read at all (no such folder, a required file "
            "missing or of the wrong type)."
        ),
    )
    p.add_argument("dataset", help=f"dataset name ({names})")
    p.add_argument("--annotations", required=True, type=Path,
                   help="folder holding the dataset's files under their original names (searched recursively)")
    p.add_argument("--frames", type=Path, default=None, help="root folder of the frames or videos")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_validate)

    p = sub.add_parser(
        "convert",
        help="convert a dataset's original files to unified records (JSONL)",
        description=f"Datasets: {names}.",
    )
    p.add_argument("dataset", help=f"dataset name ({names})")
    p.add_argument("--annotations", required=True, type=Path)
    p.add_argument("--frames", type=Path, default=None,
                   help="root folder of the frames or videos; clips found there are written with "
                        "absolute paths, the others with video.path and video.frames_dir null")
    p.add_argument("--out", required=True, type=Path, help="the JSONL file to write")
    p.set_defaults(handler=_convert)

    p = sub.add_parser("stats", help="counts, score ranges, vocabularies and step statistics")
    p.add_argument("data", type=Path, help="a unified-records JSONL file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_stats)

    p = sub.add_parser(
        "split",
        help="move a seeded fraction of the train split into a validation split",
        description="Model selection must never look at test: carve a validation split out of train.",
    )
    p.add_argument("data", type=Path, help="a unified-records JSONL file")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source", default="train", help="the split to take records from")
    p.add_argument("--target", default="val", help="the new split's name")
    p.add_argument("--no-stratify", action="store_true", help="do not balance action labels")
    p.add_argument("--out", type=Path, default=None, help="write here instead of rewriting DATA")
    p.set_defaults(handler=_split)

    p = sub.add_parser(
        "partial-labels",
        help="keep every label for a fraction of the training clips, only the score (and action) for the rest",
        description=(
            "The paper's partial-label setting (docs/data-formats.md): a seeded fraction F of the "
            "training clips keeps the whole hierarchy; the rest keep the final score and, for a "
            "seeded fraction A of them, the action label (as MTL-AQA gives; A = 0: as AQA-7). "
            "Validation and test clips are not changed."
        ),
    )
    p.add_argument("data", type=Path, help="a unified-records JSONL file")
    p.add_argument("--full-labels", type=float, required=True, metavar="F", help="in (0, 1]")
    p.add_argument("--action-labels", type=float, default=1.0, metavar="A", help="in [0, 1] (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train", help="the split whose labels are reduced")
    p.add_argument("--out", required=True, type=Path, help="the JSONL file to write")
    p.set_defaults(handler=_partial_labels)

    p = sub.add_parser(
        "frames",
        help="decode, sample and resize every clip once into a frame cache",
        description=(
            "Precompute the model-ready frames of every record of a JSONL file into a cache "
            "folder, so training and evaluation never decode video. A second run with the same "
            "settings finds everything cached. Frame settings come from --config (a YAML of "
            "FrameConfig fields) and --key value overrides, e.g. --num_frames 8 --strategy fps. "
            "Exits with status 1 when some clips failed (listed in CACHE/failures.jsonl)."
        ),
    )
    p.add_argument("--data", required=True, type=Path, help="a unified-records JSONL file")
    p.add_argument("--cache", required=True, type=Path, help="the frame cache folder")
    p.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    p.add_argument("--config", type=Path, default=None, help="YAML file of frame settings")
    p.add_argument(
        "--video-root", type=Path, default=None,
        help="folder relative video paths start from (default: the records file's folder)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_frames, accepts_overrides=True)
