"""SFT's best/: greedy validation during training, chosen on what users measure."""

from __future__ import annotations

import json
import math

import pytest

from hieroaction.config import config_from_dict
from hieroaction.errors import ConfigError
from hieroaction.train.selection import SelectionConfig, replaces, run_reference
from hieroaction.train.sft import SFTConfig, check_sft_config, train_sft
from hieroaction.train.sft_validation import SFTValidation


def _val(step, rho, failures, action):
    return {"step": step, "val/spearman": rho, "val/parse_failure_rate": failures, "val/action_accuracy": action}


def test_the_run_guards_itself_with_its_best_parse_failures_and_action_accuracy():
    config = SelectionConfig(guard_margin=0.02)
    early = _val(400, 0.70, 0.40, 0.50)
    assert replaces(early, None, config, [early])
    # better rho and fewer failures: it replaces
    mid = _val(800, 0.80, 0.03, 0.85)
    assert replaces(mid, early, config, [early, mid])
    # higher rho, but its failures are 0.10 above the run's best 0.03: the guard keeps mid
    late = _val(1200, 0.90, 0.13, 0.86)
    assert run_reference([early, mid, late]) == {"val/parse_failure_rate": 0.03, "val/action_accuracy": 0.86}
    assert not replaces(late, mid, config, [early, mid, late])
    # within the margin of the run's best, the higher rho wins
    fine = _val(1600, 0.85, 0.04, 0.86)
    assert replaces(fine, mid, config, [early, mid, late, fine])
    # an early best that later falls out of the guard loses to any guarded checkpoint
    guarded = _val(2000, 0.60, 0.01, 0.99)
    assert replaces(guarded, early, config, [early, guarded])
    # both outside the guard: rho decides
    assert replaces(_val(5, 0.9, 0.5, 0.5), _val(4, 0.8, 0.5, 0.5), config,
                    [_val(4, 0.8, 0.5, 0.5), _val(5, 0.9, 0.5, 0.5), _val(1, 0.1, 0.0, 1.0)])


def test_validation_settings_refuse_bad_values_and_need_a_validation_split(sft_settings, monkeypatch):
    with pytest.raises(ConfigError, match="validation.every must be at least 1"):
        SFTValidation(every=0)
    with pytest.raises(ConfigError, match="validation.max_new_tokens"):
        SFTValidation(every=2, max_new_tokens=0)
    assert [s for s in range(1, 11) if SFTValidation(every=3, first=4).due(s, 10)] == [6, 9, 10]
    assert not SFTValidation().due(10, 10)
    config = config_from_dict(SFTConfig, sft_settings(validation={"every": 2}))
    with pytest.raises(ConfigError, match="needs a validation split"):
        check_sft_config(config)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    config = config_from_dict(SFTConfig, sft_settings(validation={"every": 2}, data={"eval_split": "val"}))
    with pytest.raises(ConfigError, match="cannot run under FSDP"):
        check_sft_config(config)


def test_best_is_a_validated_checkpoint_scored_as_evaluate_scores_it(sft_settings, synth_data, frame_cache):
    from hieroaction.data.records import read_jsonl
    from hieroaction.inference import Assessor
    from hieroaction.train.validation import read_row, validation_metrics
    from hieroaction.video import FrameCache

    settings = sft_settings(
        max_steps=4, save_steps=100, learning_rate=5e-3, data={"eval_split": "val", "max_train_samples": 4},
        validation={"every": 2, "max_new_tokens": 24, "batch_size": 2,
                    "selection": {"metric": "parse_failure_rate", "tie_break": None}},
    )
    result = train_sft(config_from_dict(SFTConfig, settings), progress=False)
    out = result.output_dir
    rows = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(r["val/clips"] == 2 for r in rows)
    # every validation metric is in the log history (the demo's learning curves read it)
    logged = [h for h in result.log_history if "val/parse_failure_rate" in h]
    assert [h["step"] for h in logged] == [2, 4]
    best = json.loads((out / "best" / "best.json").read_text())
    assert best["step"] in (2, 4) and any(r["best"] and r["step"] == best["step"] for r in rows)
    # best/ loads as a model, and `evaluate`'s decoding of its answers gives the logged metrics
    val = [r for r in read_jsonl(synth_data) if r.split == "val"]
    assessor = Assessor.from_pretrained(out / "best")
    assessor.config.max_new_tokens = 24
    answers = list(assessor.assess_records(val, cache=FrameCache(frame_cache, base_dir=synth_data.parent)))
    written = [json.loads(line) for line in (out / "best" / "validation_answers.jsonl").read_text().splitlines()]
    assert [w["id"] for w in written] == [r.id for r in val]
    assert [w["completion"] for w in written] == [a.completion for a in answers]
    again = validation_metrics([read_row(r, a.completion) for r, a in zip(val, answers)], {r.id: r for r in val})
    for key, value in again.items():
        logged_value = best[key]
        assert (math.isnan(value) and math.isnan(logged_value)) or value == pytest.approx(logged_value), key


def test_validation_settings_may_change_on_resume(tmp_path):
    # a run saved before validation existed, or with other validation settings, resumes
    from hieroaction.config import config_to_dict, save_config
    from hieroaction.train.sft_resume import check_resume_matches

    config = SFTConfig(model="m", output_dir=str(tmp_path))
    saved = tmp_path / "sft_config.yaml"
    save_config(config, saved)
    text = saved.read_text()
    assert "validation" in config_to_dict(config)
    changed = SFTConfig(model="m", output_dir=str(tmp_path), validation=SFTValidation(every=100, first=50))
    check_resume_matches(changed, saved)
    # an old file without the section
    import yaml

    old = yaml.safe_load(text)
    old.pop("validation")
    saved.write_text(yaml.safe_dump(old))
    check_resume_matches(changed, saved)
    with pytest.raises(ConfigError, match="learning_rate"):
        check_resume_matches(SFTConfig(model="m", output_dir=str(tmp_path), learning_rate=1.0), saved)
