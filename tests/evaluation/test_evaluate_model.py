"""``hieroaction evaluate --model``: the tiny random model on a few synthetic clips.

The model is untrained, so the numbers mean nothing; what is checked is that every file is
written, that the files agree with each other, and that scoring the written predictions again
with ``--predictions`` gives the same metrics.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from hieroaction.data.records import read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model, records_path):
    from hieroaction import cli as cli_module

    out = tmp_path_factory.mktemp("eval") / "run"
    cache = tmp_path_factory.mktemp("cache")
    status = cli_module.main([
        "evaluate", "--model", str(tiny_model), "--data", str(records_path), "--out", str(out),
        "--batch-size", "4", "--max-new-tokens", "24", "--frames-cache", str(cache), "--quiet",
        "--bootstrap", "50", "inference.frames.num_frames=8", "inference.domain=synth",
    ], groups=("evaluate",))
    assert status == 0
    return out, cache


def test_every_file_is_written_and_consistent(run_dir, records_path, tiny_model):
    out, cache = run_dir
    records = read_jsonl(records_path)
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [r.id for r in records]
    assert all(set(x) >= {"id", "assessment", "completion", "problems"} for x in lines)
    assert all(isinstance(x["completion"], str) and x["assessment"]["version"] == 1 for x in lines)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == len(records) == metrics["n_completions"]
    # R-l2 always has an interval; Spearman has one wherever the predicted scores vary (the
    # random model parses few or none: all filled with one value, and no rank correlation)
    assert_interval_holds(metrics, "rl2_x100")
    known = {x["assessment"]["score"] for x in lines} - {None}
    if len(known) > 1:
        assert_interval_holds(metrics, "spearman")
    else:
        assert metrics["spearman"] is None and metrics["spearman_ci"] is None
    failures = sum(bool(x["problems"]) for x in lines)
    assert metrics["parse_failure_rate"] == pytest.approx(failures / len(lines))
    missing = sum(x["assessment"]["score"] is None for x in lines)
    assert metrics["missing_scores"] == missing
    assert metrics["run"]["config"]["inference"]["frames"] == {"num_frames": 8}
    # the frames of every clip went through the cache, under the model's frame settings
    from hieroaction.inference import InferenceConfig
    from hieroaction.models import VideoChatProcessor
    from hieroaction.video import FrameCache

    video = VideoChatProcessor.from_pretrained(tiny_model).video
    frames = InferenceConfig(frames={"num_frames": 8}).frame_config(video)
    assert all(FrameCache(cache).get(r, frames) is not None for r in records)


def assert_interval_holds(metrics, key):
    """``metrics[key + "_ci"]`` is a finite interval around the estimate ``metrics[key]``."""
    estimate, interval = metrics[key], metrics[f"{key}_ci"]
    assert isinstance(estimate, float) and math.isfinite(estimate), (key, estimate)
    assert isinstance(interval, list) and len(interval) == 2 and all(math.isfinite(x) for x in interval), interval
    assert interval[0] <= estimate <= interval[1], (key, estimate, interval)


def test_reports_are_self_contained(run_dir):
    out, _ = run_dir
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "data:image/jpeg;base64," in html
    # nothing is fetched from elsewhere: no scripts, no external sources or stylesheets
    assert "<script" not in html
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert html.count('class="point"') == json.loads((out / "metrics.json").read_text())["n"]
    md = (out / "report.md").read_text()
    for asset in re.findall(r"\]\((report_assets/[^)]+)\)", md):
        assert (out / asset).is_file()
    assert "## Metrics" in md and "## Example assessments" in md and "## Per class" in md


def test_rescoring_the_predictions_gives_the_same_metrics(run_dir, records_path, cli):
    out, _ = run_dir
    status, text, err = cli("evaluate", "--predictions", out / "predictions.jsonl", "--truth", records_path,
                            "--json", "--bootstrap", "50")
    assert status == 0, err
    again = json.loads(text)
    first = json.loads((out / "metrics.json").read_text())
    for key in ("n", "spearman", "rl2_x100", "spearman_ci", "rl2_x100_ci", "action_accuracy", "step_tiou",
                "parse_failure_rate", "missing_scores"):
        assert again[key] == first[key], key


def test_varying_scores_get_a_spearman_interval_around_the_estimate(records_path, cli, tmp_path):
    # scores that follow the truth with noise, in the plain {"id", "score"} format of any system
    rows = [json.loads(line) for line in records_path.read_text().splitlines()]
    predictions = tmp_path / "scores.jsonl"
    predictions.write_text("".join(
        json.dumps({"id": r["id"], "score": r["score"]["final"] + (-4.0, 3.0, 9.0)[i % 3]}) + "\n"
        for i, r in enumerate(rows)))
    status, text, err = cli("evaluate", "--predictions", predictions, "--truth", records_path, "--json",
                            "--bootstrap", "200")
    assert status == 0, err
    metrics = json.loads(text)
    assert metrics["n"] == len(rows) and metrics["missing_scores"] == 0
    assert_interval_holds(metrics, "spearman")
    assert_interval_holds(metrics, "rl2_x100")


def test_a_broken_clip_is_reported_and_the_rest_evaluated(tmp_path, records_path, assessor, corrupt_video):
    from hieroaction.evaluation.runner import EvalConfig, evaluate_model
    from hieroaction.evaluation.scoring import BootstrapConfig, ScoringConfig

    records = read_jsonl(records_path)[:3]
    broken = records[1].video.model_copy(update={"path": str(corrupt_video)})
    records[1] = records[1].model_copy(update={"video": broken})
    data = tmp_path / "records.jsonl"
    write_jsonl(records, data)
    config = EvalConfig(scoring=ScoringConfig(bootstrap=BootstrapConfig(n_resamples=0)))
    config.report.examples = 2
    run = evaluate_model("unused", data, tmp_path / "out", config=config, assessor=assessor, progress=False)
    m = run.evaluation.metrics
    assert m["n"] == 3 and m["clip_errors"] == 1 and m["ids"]["clip_errors"] == [records[1].id]
    lines = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert "broken.mp4" in lines[1]["error"] and lines[1]["assessment"] is None
    assert lines[0]["completion"] is not None and lines[2]["completion"] is not None
    assert "could not be read" in (tmp_path / "out" / "report.md").read_text()


def test_unknown_split_is_one_sentence(cli, tmp_path, records_path, tiny_model):
    status, _, err = cli("evaluate", "--model", tiny_model, "--data", records_path, "--out", tmp_path / "o",
                         "--split", "holdout")
    assert status == 2 and "no record has split 'holdout' (splits present:" in err
    assert err.count("\n") == 1
