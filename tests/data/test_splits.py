import math

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


def _distinct(n=16):
    return [Record(id=f"d{i:02d}", split="train", action={"label": f"dive{i}"}) for i in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_singleton_labels_still_give_the_fraction_asked_for(seed):
    # Every label differs: rounding each label's share (0.25 of 1) down to 0 gave 1 record.
    out = carve_split(_distinct(16), fraction=0.25, seed=seed)
    assert sum(r.split == "val" for r in out) == 4


def test_split_command_with_distinct_labels(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    write_jsonl(_distinct(16), path)
    assert main(["data", "split", str(path), "--val-fraction", "0.25"]) == 0
    assert sum(r.split == "val" for r in read_jsonl(path)) == 4


@pytest.mark.parametrize(
    ("sizes", "fraction"),
    [((1,) * 16, 0.25), ((10, 10, 10), 0.2), ((7, 5, 3, 1, 1, 1), 0.3), ((2, 1, 1), 0.5),
     ((50, 1, 1, 1, 1), 0.1), ((3, 3), 0.9), ((1, 1), 0.1), ((13, 4, 9, 1, 2, 2, 1), 0.15)],
)
def test_total_is_the_rounded_fraction_and_each_label_gets_its_share(sizes, fraction):
    records = [Record(id=f"{k}-{i}", split="train", action={"label": f"L{k}"})
               for k, size in enumerate(sizes) for i in range(size)]
    n = len(records)
    for seed in range(3):
        val = [r for r in carve_split(records, fraction=fraction, seed=seed) if r.split == "val"]
        assert len(val) == min(n - 1, max(1, round(fraction * n)))
        for k, size in enumerate(sizes):  # within one of the label's exact share
            taken = sum(r.action.label == f"L{k}" for r in val)
            assert math.floor(fraction * size) <= taken <= math.ceil(fraction * size)


def test_which_singleton_labels_go_to_val_depends_on_the_seed():
    picks = {frozenset(r.id for r in carve_split(_distinct(16), 0.25, seed=s) if r.split == "val")
             for s in range(6)}
    assert len(picks) > 1


def test_unstratified_split_takes_the_rounded_fraction():
    out = carve_split(_distinct(16), fraction=0.25, seed=0, stratify=False)
    assert sum(r.split == "val" for r in out) == 4
