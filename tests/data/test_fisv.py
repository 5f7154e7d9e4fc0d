"""Fis-V adapter on fixtures in the format of the released fs_dataset.csv and split lists."""

from pathlib import Path

import pytest

from hieroaction.data.adapters import get_adapter
from hieroaction.data.adapters.fisv import load
from hieroaction.data.validate import validate_dataset
from hieroaction.errors import DataError
from tests.data.other_fixtures import by_id, write_fisv


def test_scores_splits_and_attributes(tmp_path):
    root = write_fisv(tmp_path / "fisv")
    result = get_adapter("fisv").load(root, None)
    records = by_id(result)
    assert sorted(records) == [f"fis-v/{n}" for n in range(1, 6)]  # padding rows 7, 8 ignored
    rec = records["fis-v/1"]
    assert (rec.dataset, rec.domain, rec.split) == ("fis-v", "figure_skating", "train")
    assert rec.action.label == "short program"
    assert rec.action.attributes == {"skater": "Kaetlyn OSMOND", "year": 2015, "event": "NHK"}
    assert rec.score.final == 57.07
    assert rec.score.components == {"tes": 28.71, "pcs": 29.36, "deductions": 1.0}
    assert rec.score.range == (54.96, 61.1)  # observed totals
    assert rec.video.path == str(root / "videos" / "1.mp4")
    assert records["fis-v/3"].split == "test"
    problems = sorted((p.kind, p.id) for p in result.problems)
    assert problems == [("label", "fis-v/3"), ("missing", "fis-v/9"),
                        ("unreadable", "fs_dataset.csv:7")]
    assert "pcs 28.75" in next(p.detail for p in result.problems if p.kind == "label")


def test_validator_reports_the_total_that_breaks_the_formula(tmp_path):
    report = validate_dataset("fis-v", write_fisv(tmp_path / "fisv"))
    assert report.records == 5 and report.splits == {"test": 1, "train": 4}
    rules = [p for p in report.problems if p.kind == "score_rule"]
    assert [p.id for p in rules] == ["fis-v/4"]


def test_headerless_copy_and_short_split_names_read_the_same(tmp_path):
    a = load(write_fisv(tmp_path / "a"))
    b = load(write_fisv(tmp_path / "b", header=False, split_names=("train.txt", "test.txt")))
    assert [r.model_dump(exclude={"video"}) for r in a.records] == [
        r.model_dump(exclude={"video"}) for r in b.records]


def test_without_split_files_and_without_scores(tmp_path):
    root = write_fisv(tmp_path / "fisv")
    (root / "train_dataset.txt").unlink()
    (root / "test_dataset.txt").unlink()
    records = by_id(load(root))
    assert {r.split for r in records.values()} == {None}
    (root / "fs_dataset.csv").unlink()
    with pytest.raises(DataError, match="fs_dataset.csv"):
        load(root)


def test_clip_paths_are_absolute_whatever_the_working_folder(tmp_path, monkeypatch):
    """A relative --annotations / --frames still gives absolute clip paths, so the records file
    works from any folder (docs/data-formats.md)."""
    write_fisv(tmp_path / "fisv")
    monkeypatch.chdir(tmp_path)
    records = {r.id: r for r in load(Path("fisv"), Path("fisv")).records}
    assert records["fis-v/1"].video.path == str(tmp_path / "fisv" / "videos" / "1.mp4")
    assert records["fis-v/2"].video.path is None and records["fis-v/2"].video.frames_dir is None
