"""AQA-7 adapter on fixtures written in the format of the released split-4 .mat files."""

import numpy as np
import pytest
import scipy.io

from hieroaction.data.adapters import get_adapter
from hieroaction.data.adapters.aqa7 import classes, load
from hieroaction.data.validate import validate_dataset
from hieroaction.errors import DataError
from tests.data.other_fixtures import AQA7_TEST, AQA7_TRAIN, by_id, write_aqa7


def test_reads_both_lists_and_undoes_the_x100_copy(tmp_path):
    root = write_aqa7(tmp_path / "AQA-7")
    result = get_adapter("aqa7").load(root, None)
    records = by_id(result)
    assert len(records) == len(AQA7_TRAIN) + len(AQA7_TEST)
    assert sum(r.split == "train" for r in records.values()) == len(AQA7_TRAIN)
    # the test list stores scores x 100; they come back on the sport's scale
    vault = records["aqa-7/gym_vault/003"]
    assert vault.split == "test" and vault.score.final == pytest.approx(16.87)
    assert records["aqa-7/diving/004"].score.final == pytest.approx(70.5)
    dive = records["aqa-7/diving/001"]
    assert (dive.dataset, dive.domain, dive.action.label) == ("aqa-7", "diving", "diving")
    assert dive.action.attributes == {"class_id": 1, "sample": 1}
    assert dive.score.final == pytest.approx(84.15) and dive.score.components == {}
    # per-class observed range over both lists
    assert dive.score.range == pytest.approx((21.6, 102.6))
    assert records["aqa-7/gym_vault/001"].score.range == pytest.approx((12.3, 16.87))
    assert records["aqa-7/sync_diving_3m/001"].domain == "diving_sync"
    assert records["aqa-7/sync_diving_10m/003"].domain == "diving_sync"
    assert records["aqa-7/ski_big_air/001"].domain == "generic"


def test_bad_rows_are_reported_and_skipped(tmp_path):
    result = load(write_aqa7(tmp_path / "AQA-7"))
    kinds = sorted((p.kind, p.id) for p in result.problems)
    assert kinds == [("unreadable", "aqa-7/diving/002"),
                     ("unreadable", "split_4_train_list.mat:row 14")]
    details = " ".join(p.detail for p in result.problems)
    assert "class id 9" in details and "the first is kept" in details
    # the repeated sample keeps the first row's score
    assert by_id(result)["aqa-7/diving/002"].score.final == pytest.approx(21.6)


def test_clips_in_the_release_and_frame_folder_layouts(tmp_path):
    root = write_aqa7(tmp_path / "AQA-7")
    records = by_id(load(root))
    assert records["aqa-7/diving/001"].video.path == str(root / "Actions" / "diving" / "001.avi")
    assert records["aqa-7/gym_vault/002"].video.frames_dir == str(root / "gym_vault-out" / "002")
    assert records["aqa-7/diving/003"].video.path is None
    assert records["aqa-7/diving/003"].video.frames_dir is None
    # --frames elsewhere: nothing found there
    elsewhere = by_id(load(root, tmp_path / "empty"))
    assert elsewhere["aqa-7/diving/001"].video.path is None


def test_consolidated_names_and_unscaled_copy_read_the_same(tmp_path):
    a = by_id(load(write_aqa7(tmp_path / "a")))
    b = by_id(load(write_aqa7(tmp_path / "b", alt_names=True, test_x100=False)))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].score.final == pytest.approx(b[key].score.final)
        assert a[key].split == b[key].split


def test_missing_list_and_wrong_array_are_errors(tmp_path):
    root = write_aqa7(tmp_path / "AQA-7")
    (root / "Split_4" / "split_4_test_list.mat").unlink()
    with pytest.raises(DataError, match="split_4_test_list.mat.*consolidated_test_list.mat"):
        load(root)
    scipy.io.savemat(root / "Split_4" / "split_4_test_list.mat", {"other": np.zeros((4, 5))})
    with pytest.raises(DataError, match="N x 3"):
        load(root)
    (root / "Split_4" / "split_4_test_list.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="split_4_test_list.mat"):
        load(root)
    with pytest.raises(DataError, match="no such annotations folder"):
        load(tmp_path / "nowhere")


def test_classes_are_data_and_validation_finds_no_formula_problems(tmp_path):
    assert [c.name for c in classes().values()] == [
        "diving", "gym_vault", "ski_big_air", "snowboard_big_air", "sync_diving_3m",
        "sync_diving_10m"]
    report = validate_dataset("aqa-7", write_aqa7(tmp_path / "AQA-7", bad_rows=False))
    assert report.records == len(AQA7_TRAIN) + len(AQA7_TEST)
    assert report.splits == {"test": len(AQA7_TEST), "train": len(AQA7_TRAIN)}
    assert report.problems == []
