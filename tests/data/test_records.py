import json

import pytest

from hieroaction.data.records import BadLine, Record, iter_jsonl, read_jsonl, write_jsonl
from hieroaction.errors import DataError

FULL = {
    "id": "finediving/FINADivingWorldCup2021_Men3m_final_r1/8",
    "dataset": "finediving",
    "domain": "diving",
    "split": "train",
    "video": {
        "path": None,
        "frames_dir": "/frames/FINADivingWorldCup2021_Men3m_final_r1/8",
        "frame_template": "{:05d}.jpg",
        "start_frame": 100,
        "end_frame": 199,
        "fps": None,
    },
    "action": {"label": "5253B", "attributes": {"group": "back", "somersaults": 2.5, "twists": 1.5}},
    "steps": [
        {"label": "Back", "start_frame": 0, "end_frame": 14, "score": None},
        {"label": "1.5 Twists", "start_frame": 15, "end_frame": 60, "score": 7.5},
        {"label": "Entry", "start_frame": 61, "end_frame": 99, "score": None},
    ],
    "score": {
        "final": 67.2,
        "components": {"difficulty": 3.2, "execution": 21.0},
        "judges": [7.0, 7.0, 7.0],
        "range": [0.0, 125.0],
    },
    "commentary": "a clean entry",
}


def test_full_record_round_trips_exactly(tmp_path):
    record = Record.model_validate(FULL)
    path = tmp_path / "r.jsonl"
    write_jsonl([record, record.model_copy(update={"id": "x"})], path)
    back = read_jsonl(path)
    assert back[0] == record
    assert json.loads(back[0].to_json()) == json.loads(json.dumps(FULL))
    # a second write of what was read gives the same bytes
    write_jsonl(back, tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == path.read_bytes()


def test_minimal_user_record_is_valid():
    record = Record.from_json('{"id": "clinic/001", "video": "clips/001.mp4", "score": 7.5}')
    assert record.video.path == "clips/001.mp4"
    assert record.score.final == 7.5
    assert record.domain == "generic" and record.steps == []


@pytest.mark.parametrize(
    "line, needle",
    [
        ('{"video": "a.mp4"}', "id"),
        ('{"id": "a", "unknown_key": 1}', "unknown_key"),
        ('{"id": "a", "score": {"final": "high"}}', "score.final"),
        ('{"id": "a", "video": {"start_frame": 10, "end_frame": 5}}', "before start_frame"),
        ('{"id": "a", "video": {"start_frame": 0, "end_frame": 9}, '
         '"steps": [{"label": "s", "start_frame": 0, "end_frame": 12}]}', "past the 10-frame"),
        ('{"id": "a", "score": {"range": [5, 1]}}', "low < high"),
    ],
)
def test_invalid_records_name_the_field(line, needle):
    with pytest.raises(DataError, match=needle):
        Record.from_json(line)


def test_bad_lines_are_collected_and_good_ones_kept(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "a", "score": 1}\n{not json\n\n{"id": "b", "score": {"final": "x"}}\n{"id": "c"}\n')
    bad: list[BadLine] = []
    records = list(iter_jsonl(path, bad))
    assert [r.id for r in records] == ["a", "c"]
    assert [b.line for b in bad] == [2, 4]
    assert "not valid JSON" in bad[0].reason
    with pytest.raises(DataError, match=r"mixed.jsonl:2"):
        read_jsonl(path)


def test_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(DataError, match="no such records file"):
        read_jsonl(tmp_path / "nope.jsonl")
