"""``hieroaction assess``: assess new videos with a trained model.

``hieroaction assess VIDEO [VIDEO ...] --model M [--domain diving] [--start S --end E]
[--format text|json|html] [--out DIR]``

- ``text`` (default): aligned, wrapped terminal text per video.
- ``json``: one JSON object per video and line: the typed assessment, its problems, the raw
  answer, the window, the frame times and the timings (``error`` for a video that could not be
  read).
- ``html``: a self-contained page with a timeline of the steps over key frames.

Without ``--out`` everything goes to standard output (several videos: one HTML page holding all
of them); with ``--out DIR`` each video gets ``DIR/<name>.txt|.json|.html``. A missing, corrupt or
non-video file is reported with the reason and the others are assessed; the exit status is then
1 (0 when every video was assessed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
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
from hieroaction.errors import ConfigError

FORMATS = ("text", "json", "html")
_SUFFIX = {"text": ".txt", "json": ".json", "html": ".html"}

# Command-line flags that set a config field: flag dest -> InferenceConfig field.
_FLAG_FIELDS = {
    "batch_size": "batch_size",
    "max_new_tokens": "max_new_tokens",
    "device": "device",
    "dtype": "dtype",
    "domain": "domain",
}


def register(subparsers: Any) -> None:
    """Add the ``assess`` command."""
    from hieroaction.video.formats import describe

    parser = subparsers.add_parser(
        "assess",
        help="assess videos with a trained model (action, steps, score, reasoning)",
        description=(
            "Decode and sample each video, run the model, parse its stepwise answer and show "
            "the action, each step with its time span and notes, the score with its components "
            "and the reasoning. An answer the parser cannot fully read is shown with its "
            "problems. Device and dtype are chosen automatically (CUDA + bfloat16 where "
            "available, else CPU + float32)."
        ),
        epilog=(
            f"Videos: {describe()} (the container is recognised from the file's bytes, not its "
            "name; the web server accepts the same list), or a folder of frame images."
        ),
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or frame folders")
    add_model_flag(parser, required=True)
    parser.add_argument("--domain", help="domain of the prompt, e.g. diving (default generic)")
    parser.add_argument("--start", type=float, metavar="S", help="assess from this second")
    parser.add_argument("--end", type=float, metavar="E", help="assess up to this second")
    parser.add_argument("--format", choices=FORMATS, default="text", help="text (default), json or html")
    parser.add_argument("--out", metavar="DIR", help="write one file per video to DIR")
    add_batch_size_flag(parser)
    add_max_new_tokens_flag(parser)
    add_device_flags(parser)
    add_config_flag(parser, "InferenceConfig")
    add_set_flag(parser, "frames.num_frames=8")
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """The inference settings: the model folder's own (what it was trained with), then the
    config file, then ``--set`` values, then explicit flags."""
    from hieroaction.inference.config import InferenceConfig

    return settings_from_args(InferenceConfig, args, _FLAG_FIELDS, overrides=args.set,
                              defaults=saved_inference_settings(args))


def _file_names(videos: list[str], suffix: str) -> list[str]:
    """One output name per video (``clip.mp4`` -> ``clip.json``), unique even for equal stems."""
    names: list[str] = []
    for video in videos:
        stem = Path(video.rstrip("/")).stem or "video"
        name, n = stem + suffix, 2
        while name in names:
            name, n = f"{stem}-{n}{suffix}", n + 1
        names.append(name)
    return names


def render(results: list[Any], fmt: str, single_page: bool = True) -> list[str]:
    """The output text per result (``html`` with ``single_page``: one page for all)."""
    from hieroaction.reports.assessment import assessment_text, assessments_page

    if fmt == "json":
        return [json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in results]
    if fmt == "html":
        if single_page:
            return [assessments_page(results)]
        return [assessments_page([r], title=f"Assessment of {Path(r.source).name}") for r in results]
    return [assessment_text(r) for r in results]


def run(args: argparse.Namespace) -> int:
    """Handler of ``hieroaction assess``."""
    from hieroaction.domains import get_domain
    from hieroaction.inference.assessor import Assessor, check_window_seconds
    from hieroaction.io import write_atomic

    config = config_from_args(args)
    # Checked before the model is loaded: a typo should not cost a model load.
    get_domain(config.domain)
    check_window_seconds(args.start, args.end)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; --out expects a folder")
    assessor = Assessor.from_pretrained(args.model, config)
    results = assessor.assess_many(
        args.videos, start=args.start, end=args.end, keep_clips=args.format == "html"
    )
    if out is None:
        texts = render(results, args.format, single_page=True)
        sys.stdout.write("\n".join(texts) if args.format == "text" else "".join(texts))
    else:
        texts = render(results, args.format, single_page=False)
        for name, text in zip(_file_names(args.videos, _SUFFIX[args.format]), texts):
            print(f"wrote {write_atomic(out / name, text)}")
    failed = [r for r in results if r.error is not None]
    if out is not None or args.format != "text":
        # Text on the terminal already shows each reason; elsewhere it would go unseen.
        for r in failed:
            print(f"hieroaction: not assessed: {r.error}", file=sys.stderr)
    if failed:
        print(f"hieroaction: {len(failed)} of {len(results)} video(s) could not be assessed", file=sys.stderr)
    return 1 if failed else 0
