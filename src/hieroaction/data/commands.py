"""``hieroaction data ...``: validate, convert and summarise datasets; precompute frames."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from hieroaction.data.adapters import Problem, dataset_names, get_adapter
from hieroaction.data.records import BadLine, Record, read_jsonl, write_jsonl
from hieroaction.data.splits import carve_split
from hieroaction.data.stats import dataset_stats, format_stats
from hieroaction.data.validate import split_counts, validate_dataset


@dataclass
class ConvertSummary:
    """What :func:`convert_dataset` wrote and what it left out."""

    out: Path
    written: int
    splits: dict[str, int]
    skipped: list[Problem] = field(default_factory=list)  # records that could not be converted
    warnings: list[Problem] = field(default_factory=list)  # converted, but with noisy labels


def convert_dataset(
    name: str, annotations: str | Path, out: str | Path, frames: str | Path | None = None
) -> ConvertSummary:
    """Convert a dataset's original files to a unified-records JSONL file.

    Good records are always written, whatever the bad ones; the bad ones are returned.
    """
    adapter = get_adapter(name)
    result = adapter.load(Path(annotations), Path(frames) if frames else None)
    records = tqdm(
        result.records, desc=f"writing {adapter.name}", unit="rec", disable=None, leave=False
    )
    written = write_jsonl(records, out)
    skipped = [p for p in result.problems if p.kind in ("unreadable", "missing")]
    warnings = [p for p in result.problems if p.kind not in ("unreadable", "missing")]
    return ConvertSummary(Path(out), written, split_counts(result.records), skipped, warnings)


def load_records_file(path: str | Path) -> tuple[list[Record], list[BadLine]]:
    """All good records of a JSONL file, and the lines that are not records."""
    bad: list[BadLine] = []
    return read_jsonl(path, bad), bad


def _validate(args: argparse.Namespace) -> int:
    report = validate_dataset(args.dataset, args.annotations, args.frames)
    print(report.to_json() if args.json else report.to_text())
    return 0


def _convert(args: argparse.Namespace) -> int:
    summary = convert_dataset(args.dataset, args.annotations, args.out, args.frames)
    splits = ", ".join(f"{k} {v}" for k, v in summary.splits.items())
    print(f"wrote {summary.written} records to {summary.out} ({splits})")
    if summary.warnings:
        print(f"{len(summary.warnings)} converted records have noisy labels "
              "(run `hieroaction data validate` for the list)")
    if summary.skipped:
        print(f"{len(summary.skipped)} records could not be converted:")
        for p in summary.skipped:
            print(f"  {p.kind}  {p.id}: {p.detail}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    records, bad = load_records_file(args.data)
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hieroaction data`` and its subcommands."""
    from hieroaction.video.commands import add_frames_command

    data = subparsers.add_parser("data", help="read, check and prepare datasets")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True
    names = ", ".join(dataset_names())

    p = sub.add_parser(
        "validate",
        help="report records whose annotations contradict each other",
        description=f"Read a dataset's original annotation files and report problems. Datasets: {names}.",
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
    p.add_argument("--frames", type=Path, default=None, help="root folder of the frames or videos")
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

    add_frames_command(sub)
