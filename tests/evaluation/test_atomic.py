"""No input and no failure can leave a partial metrics.json: the old file or the new one.

The writer itself (hieroaction.io) is tested in tests/test_io.py; these are the evaluation's uses."""

from __future__ import annotations

import json
import os

import pytest

from hieroaction.evaluation.runner import METRICS, evaluate_files, evaluate_model

OLD = {"n": 1, "spearman": 0.5}


@pytest.fixture()
def out_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / METRICS).write_text(json.dumps(OLD))
    return out


def test_scoring_failure_leaves_the_old_metrics(tmp_path, out_dir):
    truth = tmp_path / "t.jsonl"
    truth.write_text('{"id": "a", "score": 1}\n')
    pred = tmp_path / "p.jsonl"
    pred.write_text('{"id": "zzz", "score": 1}\n')
    with pytest.raises(Exception, match="none of the 1 prediction ids"):
        evaluate_files(pred, truth, out_dir=out_dir)
    assert json.loads((out_dir / METRICS).read_text()) == OLD


def test_a_model_failure_mid_way_writes_nothing(out_dir, records_path, assessor, monkeypatch):
    calls = {"n": 0}
    real = assessor.model.generate

    def fails_on_second_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(assessor.model, "generate", fails_on_second_batch)
    with pytest.raises(RuntimeError, match="simulated"):
        evaluate_model("unused", records_path, out_dir, assessor=assessor, progress=False)
    assert calls["n"] == 2  # the first batch went through; the second failed
    assert json.loads((out_dir / METRICS).read_text()) == OLD
    assert sorted(os.listdir(out_dir)) == [METRICS]


def test_a_bad_recipe_key_is_one_sentence(tmp_path, cli, records_path):
    recipe = tmp_path / "eval.yaml"
    recipe.write_text("inference:\n  frames:\n    strategy: steps\n")
    status, _, err = cli("evaluate", "--model", tmp_path, "--data", records_path, "--out", tmp_path / "o",
                         "--config", recipe)
    assert status == 2 and "would show the answer to the model" in err
    status, _, err = cli("evaluate", "--model", tmp_path, "--data", records_path, "--out", tmp_path / "o",
                         "scoring.bootstrap.resamples=5")
    assert status == 2 and "unknown config key 'scoring.bootstrap.resamples'" in err
    assert not (tmp_path / "o").exists()
