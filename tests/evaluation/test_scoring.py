"""Scoring existing predictions (``evaluate --predictions``): numbers computed by hand,
ids in one file only, lines without a score, both prediction shapes, bad files."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from hieroaction.evaluation.predictions import read_predictions, read_truth
from hieroaction.evaluation.scoring import BootstrapConfig, ScoringConfig, score_predictions


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def four(tmp_path):
    truth = write_jsonl(tmp_path / "truth.jsonl", [
        {"id": "a", "score": 1.0}, {"id": "b", "score": 2.0},
        {"id": "c", "score": 3.0}, {"id": "d", "score": 4.0},
    ])
    pred = write_jsonl(tmp_path / "pred.jsonl", [
        {"id": "a", "score": 1.0}, {"id": "b", "score": 3.0},
        {"id": "c", "score": 2.0}, {"id": "d", "score": 4.0},
    ])
    return pred, truth


def test_json_output_matches_hand_computed_numbers(cli, four):
    status, out, err = cli("evaluate", "--predictions", four[0], "--truth", four[1], "--json", "--bootstrap", "0")
    assert status == 0, err
    metrics = json.loads(out)
    assert metrics["n"] == 4
    # rank differences 0, 1, 1, 0: rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    assert metrics["spearman"] == pytest.approx(0.8)
    # errors 0, 1, 1, 0 over the truth range 3: mean((e / 3)^2) = (2 / 9) / 4
    assert metrics["rl2_x100"] == pytest.approx(100 * (2 / 9) / 4)
    assert metrics["score_range"] == [1.0, 4.0]
    assert metrics["action_accuracy"] is None and metrics["step_tiou"] is None
    assert metrics["parse_failure_rate"] is None  # no completions: not this system's answers


def test_text_output_lists_the_metrics(cli, four):
    status, out, _ = cli("evaluate", "--predictions", four[0], "--truth", four[1], "--bootstrap", "20")
    assert status == 0
    assert "Spearman rho" in out and "0.8" in out and "R-l2 x 100" in out


def test_actions_and_steps_by_hand(tmp_path, cli):
    truth = write_jsonl(tmp_path / "t.jsonl", [
        {"id": "1", "score": 10, "action": "A", "steps": [
            {"label": "x", "start": 0, "end": 1}, {"label": "y", "start": 1, "end": 2}]},
        {"id": "2", "score": 20, "action": "B", "steps": [
            {"label": "x", "start": 0, "end": 1}, {"label": "y", "start": 1, "end": 2}]},
        {"id": "3", "score": 30, "action": "A", "steps": [{"label": "x", "start": 0, "end": 4}]},
        {"id": "4", "score": 40, "action": "B"},
    ])
    pred = write_jsonl(tmp_path / "p.jsonl", [
        # same labels; second step 1.5-2 against 1-2: IoU 0.5 -> tIoU (1 + 0.5) / 2 = 0.75
        {"id": "1", "score": 12, "action": "A", "steps": [
            {"label": "x", "start": 0, "end": 1}, {"label": "y", "start": 1.5, "end": 2}]},
        # one step x 0-2 for x 0-1, y missing: edit 1 - 1/2, tIoU (0.5 + 0) / 2 = 0.25
        {"id": "2", "score": 18, "action": "A", "steps": [{"label": "x", "start": 0, "end": 2}]},
        # right label, span 0-1 of 0-4: IoU 0.25
        {"id": "3", "score": 33, "action": "A", "steps": [{"label": "x", "start": 0, "end": 1}]},
        {"id": "4", "score": 41, "action": None},
    ])
    status, out, err = cli("evaluate", "--predictions", pred, "--truth", truth, "--json", "--bootstrap", "0")
    assert status == 0, err
    m = json.loads(out)
    assert m["n_action"] == 4 and m["action_accuracy"] == pytest.approx(2 / 4)
    assert m["n_steps"] == 3
    assert m["step_sequence_accuracy"] == pytest.approx(2 / 3)
    assert m["step_edit_score"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["step_tiou"] == pytest.approx((0.75 + 0.25 + 0.25) / 3)
    assert m["aiou@0.5"] == pytest.approx(1 / 3) and m["aiou@0.75"] == pytest.approx(1 / 3)
    assert m["spearman"] == pytest.approx(1.0)
    # classes default to the true action: A = {10, 30} -> rho 1, B = {20, 40} -> rho 1
    assert m["per_class"] == {"A": {"n": 2, "spearman": pytest.approx(1.0), "action_accuracy": 1.0},
                              "B": {"n": 2, "spearman": pytest.approx(1.0), "action_accuracy": 0.0}}


def test_ids_in_one_file_only_are_counted_and_listed(tmp_path, cli):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": i, "score": s} for i, s in zip("abcde", [1, 2, 3, 4, 5])])
    pred = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "score": s} for i, s in zip("abcxy", [1, 2, 4, 9, 9])])
    status, out, _ = cli("evaluate", "--predictions", pred, "--truth", truth, "--json", "--bootstrap", "0")
    assert status == 0
    m = json.loads(out)
    assert m["n"] == 3
    assert m["ids"]["only_in_predictions"] == {"count": 2, "ids": ["x", "y"]}
    assert m["ids"]["only_in_truth"] == {"count": 2, "ids": ["d", "e"]}
    status, out, _ = cli("evaluate", "--predictions", pred, "--truth", truth, "--bootstrap", "0")
    assert "2 id(s) only in the predictions, not in the truth: 'x', 'y'" in out
    assert "2 id(s) only in the truth, not in the predictions: 'd', 'e'" in out


def test_a_line_without_score_is_reported_and_scored_as_missing(tmp_path):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": str(i), "score": float(i)} for i in range(5)])
    pred = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "0", "score": 0.5}, {"id": "1", "action": "A"}, {"id": "2", "score": "high"},
        {"id": "3", "score": 2.5}, {"id": "4", "score": 4.5},
    ])
    problems = []
    evaluation = score_predictions(read_predictions(pred, problems), read_truth(truth, problems),
                                   ScoringConfig(bootstrap=BootstrapConfig(n_resamples=0)), problems)
    reasons = [str(p) for p in problems]
    assert any("'1'" in r and 'no "score"' in r for r in reasons)
    assert any("'2'" in r and "not a finite number" in r for r in reasons)
    m = evaluation.metrics
    assert m["missing_scores"] == 2 and m["ids"]["without_predicted_score"] == ["1", "2"]
    # missing predictions are the mean of the others: (0.5 + 2.5 + 4.5) / 3 = 2.5
    filled = [0.5, 2.5, 2.5, 2.5, 4.5]
    assert m["spearman"] == pytest.approx(stats.spearmanr(filled, range(5)).statistic)
    assert evaluation.problems == reasons


def test_own_predictions_file_and_full_records_as_truth(tmp_path):
    from hieroaction.data.records import Record
    from hieroaction.sar import Assessment, StepAssessment

    records = [
        Record.model_validate({
            "id": "r1", "domain": "synth", "video": {"path": "v.mp4", "start_frame": 0, "end_frame": 23, "fps": 12},
            "action": {"label": "back-1-feet"}, "score": {"final": 20.0},
            "steps": [{"label": "back take-off", "start_frame": 0, "end_frame": 11},
                      {"label": "1 turn", "start_frame": 12, "end_frame": 23}],
        }),
        Record.model_validate({"id": "r2", "score": 30.0, "action": {"label": "back-1-feet"}}),
        Record.model_validate({"id": "r3", "score": 10.0, "action": {"label": "forward-1-feet"}}),
    ]
    truth = write_jsonl(tmp_path / "records.jsonl", [r.model_dump(mode="json") for r in records])
    good = Assessment(action="back-1-feet", score=21.0, steps=[
        StepAssessment(label="back take-off", start=0.0, end=1.0), StepAssessment(label="1 turn", start=1.0, end=2.0)])
    pred = write_jsonl(tmp_path / "predictions.jsonl", [
        {"id": "r1", "assessment": good.model_dump(mode="json"), "completion": "<recognition>...", "problems": []},
        {"id": "r2", "assessment": Assessment(score=25.0).model_dump(mode="json"), "completion": "score 25",
         "problems": [{"code": "missing_block", "message": "no <recognition> block"}]},
        {"id": "r3", "assessment": None, "completion": None, "problems": [], "error": "v3.mp4: no such video file"},
    ])
    problems = []
    evaluation = score_predictions(read_predictions(pred, problems), read_truth(truth, problems),
                                   ScoringConfig(bootstrap=BootstrapConfig(n_resamples=0)), problems)
    m = evaluation.metrics
    assert problems == []
    assert m["n"] == 3 and m["clip_errors"] == 1 and m["ids"]["clip_errors"] == ["r3"]
    # record steps at 12 fps: frames 0-11 -> 0-1 s, 12-23 -> 1-2 s, exactly the predicted spans
    assert m["n_steps"] == 1 and m["step_tiou"] == pytest.approx(1.0)
    assert m["action_accuracy"] == pytest.approx(1 / 3)
    # two answers were produced; one has a problem, none is unreadable
    assert m["n_completions"] == 2 and m["parse_failure_rate"] == pytest.approx(0.5)
    assert m["unreadable_rate"] == 0.0


def test_bootstrap_interval_holds_the_estimate_and_repeats(tmp_path):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": str(i), "score": float(i)} for i in range(30)])
    pred = write_jsonl(tmp_path / "p.jsonl", [{"id": str(i), "score": i + (7 if i % 4 == 0 else 0)} for i in range(30)])
    config = ScoringConfig(bootstrap=BootstrapConfig(n_resamples=200, seed=1))
    first = score_predictions(read_predictions(pred), read_truth(truth), config).metrics
    again = score_predictions(read_predictions(pred), read_truth(truth), config).metrics
    lo, hi = first["spearman_ci"]
    assert lo <= first["spearman"] <= hi < 1.0
    assert first["rl2_x100_ci"][0] <= first["rl2_x100"] <= first["rl2_x100_ci"][1]
    assert first["spearman_ci"] == again["spearman_ci"]


def test_no_common_id_is_one_sentence(tmp_path, cli):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": "a", "score": 1}, {"id": "b", "score": 2}])
    pred = write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "score": 1}])
    status, out, err = cli("evaluate", "--predictions", pred, "--truth", truth)
    assert status == 2 and out == ""
    assert err.startswith("hieroaction: error: none of the 1 prediction ids matches") and err.count("\n") == 1


@pytest.mark.parametrize("case", ["duplicate", "missing_file", "all_bad", "no_mode", "both_modes"])
def test_bad_input_is_one_sentence(tmp_path, cli, case):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": "a", "score": 1}, {"id": "b", "score": 2}])
    pred = tmp_path / "p.jsonl"
    argv = ["evaluate", "--predictions", pred, "--truth", truth]
    expect = {
        "duplicate": "id 'a' appears twice (lines 1 and 2)",
        "missing_file": "no such predictions file",
        "all_bad": "holds no usable prediction line",
        "no_mode": "evaluate needs --model",
        "both_modes": "not both",
    }[case]
    if case == "duplicate":
        write_jsonl(pred, [{"id": "a", "score": 1}, {"id": "a", "score": 2}])
    elif case == "all_bad":
        pred.write_text("{not json\n[1, 2]\n", encoding="utf-8")
    elif case == "no_mode":
        argv = ["evaluate", "--truth", truth]
    elif case == "both_modes":
        argv += ["--model", tmp_path]
    status, out, err = cli(*argv)
    assert status == 2 and expect in err and err.count("\n") == 1


def test_unreadable_lines_are_reported_not_fatal(tmp_path):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": i, "score": s} for i, s in zip("abc", [1, 2, 3])])
    pred = tmp_path / "p.jsonl"
    pred.write_text('{"id": "a", "score": 1}\n{oops\n{"score": 3}\n{"id": "b", "score": 2, "steps": "none"}\n')
    problems = []
    rows = read_predictions(pred, problems)
    assert [r.id for r in rows] == ["a", "b"]
    text = [str(p) for p in problems]
    assert any(":2: not valid JSON" in t for t in text)
    assert any(':3: no "id"' in t for t in text)
    assert any("'b'" in t and '"steps"' in t for t in text)
    m = score_predictions(rows, read_truth(truth), ScoringConfig(bootstrap=BootstrapConfig(0))).metrics
    assert m["n"] == 2 and m["ids"]["only_in_truth"]["ids"] == ["c"]
    assert math.isclose(m["spearman"], 1.0)
