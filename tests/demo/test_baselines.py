"""The reference baselines: the mean training score and the difficulty oracle."""

from __future__ import annotations

import math

import pytest

from hieroaction.data.records import Action, Record, Score, VideoRef
from hieroaction.demo.baselines import (
    difficulty_oracle_predictions,
    mean_score_predictions,
    score_baselines,
)
from hieroaction.errors import DataError
from hieroaction.evaluation.predictions import truth_from_record


def record(i: int, difficulty: float, execution: float, split: str = "test", domain: str = "synth") -> Record:
    return Record(
        id=f"r{i}", dataset="synth", domain=domain, split=split,
        video=VideoRef(path=f"v{i}.mp4", start_frame=0, end_frame=23, fps=12.0),
        action=Action(label="forward-1-feet", attributes={"difficulty": difficulty}),
        score=Score(final=round(difficulty * execution, 2),
                    components={"difficulty": difficulty, "execution": execution}),
    )


TRAIN = [record(0, 1.0, 10.0, "train"), record(1, 2.0, 20.0, "train"), record(2, 3.0, 30.0, "train")]


def test_mean_score_predicts_the_training_mean_everywhere():
    test = [record(10, 1.5, 12.0), record(11, 2.5, 25.0)]
    rows = mean_score_predictions(TRAIN, test)
    mean = (10.0 + 40.0 + 90.0) / 3
    assert [r.id for r in rows] == ["r10", "r11"]
    assert all(r.score == pytest.approx(mean) for r in rows)
    assert not any(r.has_action or r.has_steps for r in rows)


def test_difficulty_oracle_is_difficulty_times_mean_training_execution():
    test = [record(10, 1.5, 12.0), record(11, 2.5, 25.0)]
    rows = difficulty_oracle_predictions(TRAIN, test)
    assert [r.score for r in rows] == pytest.approx([1.5 * 20.0, 2.5 * 20.0])


def test_baselines_are_scored_like_models():
    # Execution varies against difficulty, so the oracle ranks only partly right.
    test = [record(10 + i, d, e) for i, (d, e) in enumerate([(1.0, 28.0), (2.0, 10.0), (3.0, 12.0), (4.0, 25.0)])]
    truths = [truth_from_record(r) for r in test]
    out = score_baselines(TRAIN, test, truths)
    mean = out["mean_score"].metrics
    assert mean["spearman"] is None or math.isnan(mean["spearman"])  # constant: undefined
    assert mean["rl2_x100"] > 0
    oracle = out["difficulty_oracle"].metrics
    # true finals 28, 20, 36, 100 -> ranks 2,1,3,4; the oracle's 1,2,3,4
    assert oracle["spearman"] == pytest.approx(0.8)
    assert oracle["n"] == 4


def test_oracle_needs_a_product_formula_and_a_difficulty():
    generic = [record(10, 1.0, 10.0, domain="generic")]
    with pytest.raises(DataError, match="difficulty x execution"):
        difficulty_oracle_predictions(TRAIN, generic)
    no_difficulty = record(12, 1.0, 10.0)
    no_difficulty = no_difficulty.model_copy(update={
        "score": Score(final=10.0, components={"execution": 10.0}),
        "action": Action(label="forward-1-feet"),
    })
    with pytest.raises(DataError, match="r12"):
        difficulty_oracle_predictions(TRAIN, [no_difficulty])
    with pytest.raises(DataError, match="no final score"):
        mean_score_predictions([], generic)


def test_the_oracle_is_calibrated_as_a_model_is(tmp_path):
    from hieroaction.data.records import read_jsonl
    from hieroaction.demo.baselines import calibrated_oracle
    from hieroaction.synth import SynthConfig, generate

    out = tmp_path / "synth"
    summary = generate(out, SynthConfig(n=60, seed=1, workers=1), progress=False)
    records = read_jsonl(summary.records_path)
    train = [r for r in records if r.split == "train"]
    val, test = train[:25], [r for r in records if r.split != "train"]
    result = calibrated_oracle(train[25:], val, test, 0.8)
    errors = sorted(abs(r.score.final - p.score) for r, p in zip(val, difficulty_oracle_predictions(train[25:], val)))
    # the ceil((n + 1) x 0.8) = 21st smallest of 25 validation errors
    assert result["quantile"] == pytest.approx(errors[20])
    assert result["n_calibration"] == 25 and result["n_interval"] == len(test)
    assert 0 <= result["interval_coverage"] <= 1 and 0 < result["interval_width"] <= 2 * result["quantile"] + 1e-9
