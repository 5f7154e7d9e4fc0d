"""``hieroaction sar parse | target | prompt``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hieroaction.cli import sar as sar_commands
from hieroaction.data.records import write_jsonl
from hieroaction.errors import DataError
from hieroaction.sar import parse_sar
from tests.sar.fixtures import fixture_records


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hieroaction")
    sar_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_parse(tmp_path: Path, completion: str, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.txt"
    good.write_text(completion, encoding="utf-8")
    assert run(["sar", "parse", str(good), "--strict"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["assessment"]["score"] == 86.4 and out["problems"] == []
    bad = tmp_path / "bad.txt"
    bad.write_text(completion.replace("86.4<", "nan<"), encoding="utf-8")
    assert run(["sar", "parse", str(bad)]) == 1
    assert json.loads(capsys.readouterr().out)["problems"][0]["code"] == "non_finite"
    with pytest.raises(DataError, match="cannot read"):
        run(["sar", "parse", str(tmp_path / "missing.txt")])


def test_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "records.jsonl"
    write_jsonl(fixture_records(), records)
    out = tmp_path / "targets.jsonl"
    assert run(["sar", "target", str(records), "--default-fps", "25", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 9 targets to {out}\n"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in fixture_records()]
    assert all(parse_sar(r["completion"], strict=True).ok for r in rows)
    assert run(["sar", "target", str(records), "--id", "c1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# c1\n<recognition>") and "7.25" in printed
    with pytest.raises(DataError, match="'nope'"):
        run(["sar", "target", str(records), "--id", "nope"])
    with pytest.raises(DataError, match="no video.fps"):
        run(["sar", "target", str(records)])


def test_prompt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sar", "prompt", "diving", "--frames", "4", "--duration", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[system]\n") and "0, 0.5, 1, 1.5" in out
    records = tmp_path / "records.jsonl"
    write_jsonl(fixture_records(), records)
    assert run(["sar", "prompt", "--records", str(records), "--id", "synth-000042", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "inward-2-head" in shown["system"] and set(shown) == {"system", "user"}
    with pytest.raises(DataError, match="domain name or --records"):
        run(["sar", "prompt"])
