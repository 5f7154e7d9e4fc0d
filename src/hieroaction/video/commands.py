"""``hieroaction data frames``: precompute the frame cache of a records file."""

from __future__ import annotations

import argparse
from pathlib import Path

from hieroaction.config import load_config
from hieroaction.data.records import BadLine, read_jsonl
from hieroaction.video.cache import PrecomputeSummary, precompute
from hieroaction.video.sample import FrameConfig


def frames_command(
    data: str | Path,
    cache: str | Path,
    *,
    workers: int = 1,
    config: FrameConfig | None = None,
    video_root: str | Path | None = None,
    progress: bool = True,
) -> PrecomputeSummary:
    """Decode, sample and resize every record's clip of ``data`` into the cache ``cache``.

    Relative video paths are relative to ``video_root``, by default the records file's folder.
    Unreadable lines and clips are listed in ``<cache>/failures.jsonl``; the rest is cached.
    """
    data = Path(data)
    bad: list[BadLine] = []
    records = read_jsonl(data, bad=bad)
    return precompute(
        records,
        cache,
        config or FrameConfig(),
        workers,
        base_dir=Path(video_root) if video_root is not None else data.parent,
        progress=progress,
        bad_lines=bad,
    )


def _frames(args: argparse.Namespace) -> int:
    config = load_config(FrameConfig, args.config, getattr(args, "overrides", None))
    summary = frames_command(
        args.data,
        args.cache,
        workers=args.workers,
        config=config,
        video_root=args.video_root,
        progress=not args.no_progress,
    )
    print(summary)
    return 1 if summary.failures else 0


def add_frames_command(data_subparsers: argparse._SubParsersAction) -> None:
    """Add ``frames`` to the ``hieroaction data`` subcommands."""
    p = data_subparsers.add_parser(
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
