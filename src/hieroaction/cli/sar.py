"""``hieroaction sar ...``: parse a completion, write SFT targets, show a prompt."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hieroaction.cli.common import subcommands
from hieroaction.data.records import Record, read_jsonl
from hieroaction.errors import DataError
from hieroaction.io import write_atomic
from hieroaction.prompts.builder import ClipInfo, PromptConfig, render_prompt
from hieroaction.sar.parse import parse_sar
from hieroaction.sar.targets import TargetConfig, build_target


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the completion file ({exc.strerror})") from None


def _select(records: list[Record], ids: list[str] | None, source: Path) -> list[Record]:
    if not ids:
        return records
    by_id = {r.id: r for r in records}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise DataError(f"{source}: no record with id {missing[0]!r}")
    return [by_id[i] for i in ids]


def _parse(args: argparse.Namespace) -> int:
    result = parse_sar(_read_text(args.file), strict=args.strict)
    print(result.model_dump_json(indent=2))
    return 0 if result.ok else 1


def _target(args: argparse.Namespace) -> int:
    records = _select(read_jsonl(args.records), args.id, args.records)
    config = TargetConfig(seed=args.seed, default_fps=args.default_fps, phrases=args.phrases)
    if args.out is None:
        for record in records:
            print(f"# {record.id}")
            print(build_target(record, config))
        return 0
    rows = [{"id": r.id, "completion": build_target(r, config)} for r in records]
    write_atomic(args.out, "".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} targets to {args.out}")
    return 0


def _prompt(args: argparse.Namespace) -> int:
    if args.records is not None:
        subject: Record | str = _select(read_jsonl(args.records), [args.id] if args.id else None,
                                        args.records)[0]
    elif args.domain:
        subject = args.domain
    else:
        raise DataError("give a domain name or --records FILE to show a prompt for")
    clip = ClipInfo.evenly_spaced(args.frames, args.duration) if args.frames else None
    system, user = render_prompt(subject, clip, PromptConfig(template=args.template))
    if args.json:
        print(json.dumps({"system": system, "user": user}, indent=2))
    else:
        print(f"[system]\n{system}\n\n[user]\n{user}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hieroaction sar`` and its subcommands."""
    sar = subparsers.add_parser("sar", help="the SAR answer format: parse, targets, prompts")
    sub = subcommands(sar, "sar_command")

    p = sub.add_parser("parse", help="read a SAR completion and print the assessment and problems")
    p.add_argument("file", help="a text file holding one completion, or - for standard input")
    p.add_argument("--strict", action="store_true",
                   help="strict mode (the format reward): only flawless elements count")
    p.set_defaults(handler=_parse)

    p = sub.add_parser("target", help="write the SFT target completions of records")
    p.add_argument("records", type=Path, help="a unified-records JSONL file")
    p.add_argument("--id", action="append", help="only this record (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="phrasing seed (default 0)")
    p.add_argument("--default-fps", type=float, default=None,
                   help="frame rate for records whose video has none")
    p.add_argument("--phrases", default=None, help="a YAML file replacing the phrasing pools")
    p.add_argument("--out", type=Path, default=None,
                   help="write JSONL rows {id, completion} here instead of printing")
    p.set_defaults(handler=_target)

    p = sub.add_parser("prompt", help="show the prompt a model gets for a domain or a record")
    p.add_argument("domain", nargs="?", help="a domain name")
    p.add_argument("--records", type=Path, default=None, help="a unified-records JSONL file")
    p.add_argument("--id", default=None, help="the record to use (default: the first)")
    p.add_argument("--frames", type=int, default=0, help="frames the model sees (evenly spaced)")
    p.add_argument("--duration", type=float, default=1.0, help="clip length in seconds")
    p.add_argument("--template", default=None, help="a YAML file overriding template keys")
    p.add_argument("--json", action="store_true", help="print {system, user} as JSON")
    p.set_defaults(handler=_prompt)
