import pytest

from hieroaction.cli import main
from hieroaction.data.records import Record, read_jsonl, write_jsonl
from hieroaction.data.splits import carve_split
from hieroaction.errors import DataError


def _records(n=40):
    return [Record(id=f"r{i}", split="train" if i < 30 else "test", action={"label": "abc"[i % 3]}) for i in range(n)]


def test_carve_is_seeded_stratified_and_leaves_test_alone():
    records = _records()
    out = carve_split(records, fraction=0.2, seed=1)
    val = [r for r in out if r.split == "val"]
    assert len(val) == 6 and {r.action.label for r in val} == {"a", "b", "c"}
    assert [r.split for r in out[30:]] == ["test"] * 10
    assert [r.id for r in out] == [r.id for r in records]
    assert carve_split(records, fraction=0.2, seed=1) == out
    assert carve_split(records, fraction=0.2, seed=2) != out
    with pytest.raises(DataError, match="already have a 'val' split"):
        carve_split(out)
    with pytest.raises(DataError, match="between 0 and 1"):
        carve_split(records, fraction=1.5)


def test_split_command(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    write_jsonl(_records(), path)
    assert main(["data", "split", str(path), "--val-fraction", "0.1", "--out", str(tmp_path / "o.jsonl")]) == 0
    assert "val 3" in capsys.readouterr().out
    assert sum(r.split == "val" for r in read_jsonl(tmp_path / "o.jsonl")) == 3
