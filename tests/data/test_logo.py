"""LOGO adapter on fixtures in the format of anno_dict.pkl and its split pickles."""

import os
import pickle

import pytest

from hieroaction.data.adapters import get_adapter
from hieroaction.data.adapters.logo import end_frames_issue, frame_runs, load
from hieroaction.data.validate import validate_dataset
from hieroaction.errors import DataError, UnsafePickleError
from tests.data.other_fixtures import by_id, write_logo

FREE0 = "logo/WorldChampionship2019_free_final/0"
FREE1 = "logo/WorldChampionship2019_free_final/1"
TECH3 = "logo/WorldChampionship2022_tech_final/3"


def test_records_steps_and_splits(tmp_path):
    root = write_logo(tmp_path / "root")
    result = get_adapter("logo").load(root, None)
    records = by_id(result)
    assert sorted(records) == [FREE0, FREE1, TECH3]
    rec = records[FREE0]
    assert (rec.dataset, rec.domain, rec.action.label) == ("logo", "artistic_swimming",
                                                          "free routine")
    assert rec.action.attributes == {"event": "free",
                                     "competition": "WorldChampionship2019_free_final",
                                     "routine": 0}
    assert rec.score.final == 88.25 and rec.score.range == (88.25, 91.25)
    assert (rec.video.start_frame, rec.video.end_frame, rec.video.fps) == (0, 27, 25.0)
    assert rec.video.frames_dir == str(root / "LOGO" / "WorldChampionship2019_free_final" / "0")
    assert rec.video.frame_template == "{:05d}.jpg"
    assert [(s.label, s.start_frame, s.end_frame) for s in rec.steps] == [
        ("None", 0, 4), ("Free", 5, 14), ("Acrobatic movements", 15, 18), ("Upper", 19, 24),
        ("None", 25, 27)]
    assert [s.label for s in records[FREE1].steps] == [
        "None", "Required element 1", "Required element 2", "Cadence action"]
    assert records[FREE1].video.frames_dir is None  # no frame folder for it
    # train_split3.pkl / test_split3.pkl, not the higher-numbered train_split4.pkl
    assert (rec.split, records[FREE1].split, records[TECH3].split) == ("train", "train", "test")


def test_problems_and_validation(tmp_path):
    root = write_logo(tmp_path / "root")
    report = validate_dataset("logo", root)
    assert report.records == 3 and report.splits == {"test": 1, "train": 2}
    assert sorted((p.kind, p.id) for p in report.problems) == [
        ("missing", "logo/WorldChampionship2022_tech_final/9"),
        ("steps", TECH3),  # its end-frame list [2, 9, 12] does not match runs ending 2, 8, 12
        ("unreadable", "logo/WorldChampionship2019_free_final/7"),  # event 'duet'
    ]


def test_end_frame_cross_check():
    runs = frame_runs([12, 12, 8, 8, 8, 6])
    assert runs == [(12, 0, 1), (8, 2, 4), (6, 5, 5)]
    ends = [last for _, _, last in runs]
    for given in ([1, 4, 5], [1, 4], [2, 5, 6], [2, 5]):
        assert end_frames_issue(given, ends, 6) is None
    assert "outside" in end_frames_issue([1, 4, 9], ends, 6)
    assert "-1" in end_frames_issue([-1, 4], ends, 6)
    assert "strictly increasing" in end_frames_issue([4, 1, 5], ends, 6)
    assert "disagree" in end_frames_issue([1, 3, 5], ends, 6)


def test_unknown_action_ids_are_kept_as_labelled_steps(tmp_path):
    anno = {("Comp_free_final", 0): ["free", 80.0, "/", [1, 3], [12, 12, 13, 13]]}
    (tmp_path / "anno_dict.pkl").write_bytes(pickle.dumps(anno))
    result = load(tmp_path)
    (rec,) = result.records
    assert [s.label for s in rec.steps] == ["None", "action 13"]
    assert [p.kind for p in result.problems] == ["label"]
    assert rec.split is None and rec.score.range == (0.0, 100.0)


def test_missing_and_unsafe_annotation_file(tmp_path):
    with pytest.raises(DataError, match="anno_dict.pkl"):
        load(tmp_path)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    (tmp_path / "anno_dict.pkl").write_bytes(pickle.dumps({("a", 0): Exploit()}))
    with pytest.raises(UnsafePickleError):
        load(tmp_path)
