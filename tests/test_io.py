"""hieroaction.io: a write leaves the old file or the new one, never part of one; the readers
say in one sentence why a file is unusable."""

from __future__ import annotations

import json
import os
import stat
from importlib import resources
from pathlib import Path

import pytest

from hieroaction import io
from hieroaction.errors import ConfigError, DataError
from hieroaction.io import (
    append_jsonl,
    atomic_open,
    atomic_path,
    read_json,
    read_json_object,
    read_yaml_mapping,
    write_atomic,
    write_json_atomic,
    write_jsonl_atomic,
)

OLD = {"n": 1, "spearman": 0.5}


@pytest.fixture()
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(OLD))
    return path


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- writing ------------------------------------------------------------------------------------


def test_text_bytes_and_json_round_trip(tmp_path: Path) -> None:
    assert write_atomic(tmp_path / "a" / "b.txt", "é\n").read_bytes() == "é\n".encode()
    assert write_atomic(tmp_path / "c.bin", b"\x00\xff").read_bytes() == b"\x00\xff"
    assert json.loads(write_json_atomic(tmp_path / "d.json", {"k": (1, 2)}).read_text()) == {"k": [1, 2]}
    rows = [{"a": 1}, {"b": "x"}]
    assert write_jsonl_atomic(tmp_path / "e.jsonl", rows).read_text() == '{"a": 1}\n{"b": "x"}\n'
    assert leftovers(tmp_path) == []


def test_a_value_that_is_not_json_never_touches_the_file(old_file: Path) -> None:
    with pytest.raises(TypeError):
        write_json_atomic(old_file, {"n": object()})
    assert json.loads(old_file.read_text()) == OLD
    assert leftovers(old_file.parent) == []


def test_nan_becomes_null_not_invalid_json(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "m.json", {"spearman": float("nan"), "ci": (1.0, float("inf"))})
    assert json.loads(path.read_text()) == {"spearman": None, "ci": [1.0, None]}


def test_a_failure_midway_through_a_write_keeps_the_old_file(old_file: Path) -> None:
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_open(old_file, "w") as fh:
            fh.write('{"n": 2, "spear')
            raise RuntimeError("failed midway")
    assert json.loads(old_file.read_text()) == OLD
    assert leftovers(old_file.parent) == []


def test_a_failed_sync_keeps_the_old_file(old_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_json_atomic(old_file, {"n": 2, "spearman": 0.9})
    assert json.loads(old_file.read_text()) == OLD
    assert leftovers(old_file.parent) == []


def test_the_file_is_synced_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "fsync", fsync)
    monkeypatch.setattr(io.os, "replace", replace)
    write_json_atomic(target, {"n": 3})
    expected = ["fsync file", "replace", "fsync folder"] if os.name == "posix" else ["fsync file", "replace"]
    assert events == expected
    assert json.loads(target.read_text()) == {"n": 3}


def test_a_folder_that_cannot_be_synced_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)
    assert write_atomic(tmp_path / "x.txt", "ok").read_text() == "ok"


def test_atomic_path_renames_what_a_writer_wrote_by_name(old_file: Path) -> None:
    with atomic_path(old_file) as tmp:
        assert tmp.parent == old_file.parent and tmp != old_file
        tmp.write_text('{"n": 4}')
        assert json.loads(old_file.read_text()) == OLD  # not yet
    assert json.loads(old_file.read_text()) == {"n": 4}
    with pytest.raises(ValueError):
        with atomic_path(old_file) as tmp:
            tmp.write_text("half")
            raise ValueError("encoder failed")
    assert json.loads(old_file.read_text()) == {"n": 4}
    assert leftovers(old_file.parent) == []


def test_append_jsonl_adds_whole_lines_or_nothing(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    append_jsonl(log, {"step": 1})
    append_jsonl(log, {"step": 2, "kl": float("nan")}, {"step": 3})
    with pytest.raises(TypeError):
        append_jsonl(log, {"step": 4}, {"bad": object()})
    assert log.read_text() == '{"step": 1}\n{"step": 2, "kl": null}\n{"step": 3}\n'


# --- reading ------------------------------------------------------------------------------------


def one_sentence(message: str) -> bool:
    return "\n" not in message and message.count(". ") == 0


def test_read_json_object(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"a": 1}')
    assert read_json_object(good) == {"a": 1}
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    assert read_json(listed) == [1, 2]
    cases = {
        listed: "list.json: expected a JSON object, found a list",
        tmp_path / "missing.json": "missing.json: not a readable JSON file (No such file or directory)",
        tmp_path: f"{tmp_path}: not a readable JSON file (Is a directory)",
    }
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": ')
    cases[broken] = "broken.json: not a readable JSON file (Expecting value at line 1, column 7)"
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"a": "\xe9"}')
    cases[latin] = "latin.json: not a readable JSON file (not UTF-8 text)"
    for path, message in cases.items():
        if path == tmp_path and os.name != "posix":
            continue
        with pytest.raises(ConfigError) as caught:
            read_json_object(path)
        assert str(caught.value).endswith(message), str(caught.value)
        assert one_sentence(str(caught.value))


def test_read_json_object_raises_the_callers_error_type(tmp_path: Path) -> None:
    (tmp_path / "null.json").write_text("null")
    with pytest.raises(DataError, match="expected a JSON object, found null"):
        read_json_object(tmp_path / "null.json", error=DataError)
    with pytest.raises(DataError, match="^annotations: not a readable JSON file"):
        read_json(tmp_path / "none.json", name="annotations", error=DataError)


def test_read_yaml_mapping(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("a: 1\nb: [x]\n")
    assert read_yaml_mapping(good) == {"a": 1, "b": ["x"]}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_yaml_mapping(empty, empty_ok=True) == {}
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [1, 2\n")
    cases = {
        listed: "list.yaml: the config file must be a YAML mapping of keys to values, not a list",
        empty: "empty.yaml: the config file must be a YAML mapping of keys to values, not an empty file",
        tmp_path / "missing.yaml": "missing.yaml: cannot read the config file (No such file or directory)",
        broken: "broken.yaml: cannot read the config file (not valid YAML: expected ',' or ']', but got "
                "'<stream end>' at line 2, column 1)",
    }
    for path, message in cases.items():
        with pytest.raises(ConfigError) as caught:
            read_yaml_mapping(path, what="config file")
        assert str(caught.value).endswith(message), str(caught.value)
        assert one_sentence(str(caught.value))
    with pytest.raises(DataError, match="^described: the dataset description must be a YAML mapping"):
        read_yaml_mapping(listed, what="dataset description", name="described", error=DataError)


def test_read_yaml_mapping_reads_files_shipped_with_the_package() -> None:
    ref = resources.files("hieroaction.domains") / "data" / "diving.yaml"
    assert isinstance(read_yaml_mapping(ref), dict)


def test_io_is_the_bottom_floor() -> None:
    source = Path(io.__file__).read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert [line for line in imports if "hieroaction" in line] == [
        "from hieroaction.errors import ConfigError, HieroActionError"
    ]
