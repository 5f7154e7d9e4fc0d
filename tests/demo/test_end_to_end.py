"""End-to-end: the whole demo, generation to report, as a small fixed amount of work.

``test_a_short_demo_runs_every_stage`` (default suite, once per model family) runs the command
line at a 0.3-minute budget (48 SFT steps per SFT run, 5 GRPO steps per GRPO run), 40 clips and the demo's HPL recipe
with shorter answers: data, model, both SFT runs, HPL, the shuffled control, evaluation and
report all run (Qwen2.5-VL with ``--jobs 2``: the SFT runs, then the GRPO runs, in pairs of
processes; Qwen3-VL with ``--jobs 1``). ``test_demo_runs_end_to_end_in_two_minutes`` is the
smoke test with the real recipes (``--budget-minutes 2``), and
``test_the_same_seed_gives_the_same_numbers`` runs the short demo three ways (seeds one after
the other, seeds at once, a seed's training runs at once); both are marked ``slow`` (``python -m pytest -m slow tests/demo``). None
checks what the models learned: only that every stage ran and the outputs hold every model,
baseline, curve and target.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hieroaction.cli import main

DEMO_HPL_RECIPE = Path(__file__).parents[2] / "configs" / "demo" / "hpl.yaml"

EXPECTED_MODELS = {"sft", "sft_all_labels", "hpl", "hpl_shuffled", "mean_score", "difficulty_oracle"}
STAGES = ["data", "model", "sft", "sft_all_labels", "hpl", "hpl_shuffled", "calibration", "evaluation"]


def check_outputs(out: Path, models: set[str] = EXPECTED_MODELS) -> dict:
    report = (out / "report.html").read_text(encoding="utf-8")
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert json.loads((out / "demo.json").read_text(encoding="utf-8"))["complete"] is True
    (seed,) = data["seeds"]
    assert set(seed["models"]) == models
    for name in models:
        metrics = seed["models"][name]
        assert metrics["n"] == seed["evaluation"]["test_clips"] >= 8
        assert "spearman_ci" in metrics and "rl2_x100" in metrics
    assert seed["sft"]["steps"] >= 1 and seed["sft"]["log_history"]
    assert seed["hpl"]["steps"] >= 1 and seed["hpl"]["history"]
    assert seed["hpl_shuffled"]["shuffle_rewards"] is True and seed["hpl"]["shuffle_rewards"] is False
    assert [t["stage"] for t in seed["timings"]][:len(STAGES)] == STAGES
    labels = seed["data"]["labels"]
    assert labels["full"] == round(0.25 * labels["train"]) and seed["sft"]["train_examples"] == labels["full"]
    assert seed["sft_all_labels"]["train_examples"] == labels["train"]
    for text in ("SFT: loss per step", "HPL: reward components", "HPL: KL", "Targets",
                 "HPL, shuffled rewards: reward components", "HPL: validation (greedy answers)",
                 "baseline: difficulty oracle", "Example assessments", "data:image/jpeg;base64,",
                 "shuffled-reward control", "Partial labels:"):
        assert text in report, text
    assert "<script" not in report
    for name in ("sft", "hpl", "hpl_shuffled", "sft_all_labels"):
        assert (out / "seed-0" / "eval" / name / "predictions.jsonl").is_file()
        assert len(seed["evaluation"]["scores"][name]) == seed["evaluation"]["test_clips"]
    assert (Path(seed["hpl"]["best"]) / "config.json").is_file()
    return data


@pytest.mark.slow
def test_demo_runs_end_to_end_in_two_minutes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--budget-minutes", "2"]) == 0
    check_outputs(out)
    printed = capsys.readouterr()
    assert "report:" in printed.out and "Spearman rho" in printed.out  # results on stdout
    assert "SFT (labelled part)" in printed.err and " in)" in printed.err  # progress: stage and time spent


SHORT = ["--budget-minutes", "0.3", "data.min_clips=40", "evaluation.test_clips=8",
         "evaluation.bootstrap_resamples=100", "work.val_clips=2"]


def _short_recipe(tmp_path: Path) -> Path:
    # The demo's own HPL recipe with shorter answers (also the evaluation's answer length) and
    # a smaller group.
    recipe = tmp_path / "hpl_short.yaml"
    recipe.write_text(f"base: {DEMO_HPL_RECIPE}\ngroup_size: 4\nmax_completion_length: 48\n", encoding="utf-8")
    return recipe


# qwen2_5_vl with --jobs 2: one seed, so both SFT runs at once, then both GRPO runs, each in a
# process of its own; qwen3_vl with --jobs 1: every stage one after the other in this process.
@pytest.mark.parametrize("family, jobs", [("qwen2_5_vl", "2"), ("qwen3_vl", "1")])
def test_a_short_demo_runs_every_stage(tmp_path, capfd, family, jobs):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--family", family, f"recipes.hpl={_short_recipe(tmp_path)}",
                 "--jobs", jobs, *SHORT]) == 0
    data = check_outputs(out)
    (seed,) = data["seeds"]
    assert seed["data"]["clips"] == 40
    # the frames fit the family's grid: 64 visual tokens per clip either way (configs/demo/base/data.yaml)
    frames = seed["data"]["frames"]
    assert (frames["factor"], frames["clip_budget"]) == ((32, True) if family == "qwen3_vl" else (28, False))
    assert seed["sft"]["steps"] == seed["sft_all_labels"]["steps"] == 48  # 2400 x 0.3 / 15
    assert seed["hpl"]["steps"] == seed["hpl_shuffled"]["steps"] == 4  # 180 x 0.3 / 15
    assert seed["hpl"]["group_size"] == 4 and seed["evaluation"]["max_new_tokens"] == 48
    printed = capfd.readouterr()  # the stages' processes print to the file descriptors
    assert "report:" in printed.out and "Spearman rho" in printed.out
    for stage in ("1/9 data", "2/9 model", "3/9 SFT (labelled part)", "4/9 SFT (every clip labelled)",
                  "5/9 HPL", "6/9 HPL, shuffled rewards", "7/9 calibration", "8/9 evaluation"):
        assert f"[demo seed 0 | {stage}]" in printed.err, stage
    for stage in ("sft", "sft_all_labels", "hpl", "hpl_shuffled"):  # what the libraries print
        assert (out / "seed-0" / "logs" / f"{stage}.log").is_file(), stage
    # 4 validation clips: too few for a calibration, which the demo says instead of failing
    assert "a calibration needs at least 20" in seed["calibration"]["skipped"]


def _numbers(path: Path) -> list:
    """metrics.json without what depends on the machine (times, load, paths)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    drop = {"seconds", "timings", "info", "generate_seconds", "seconds_per_step", "step_seconds",
            "folder", "records", "records_partial", "output_dir", "best", "final", "subset_file"}

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()
                    if k not in drop and not any(t in k for t in ("seconds", "runtime", "per_second"))}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(data["seeds"])


@pytest.mark.slow
def test_the_same_seed_gives_the_same_numbers(tmp_path):
    # two seeds one after the other in this process, then both at once in processes of their
    # own, then seed 0 alone with its independent training runs at once (stage processes)
    recipe = _short_recipe(tmp_path)
    for name, seeds, jobs in (("a", "2", "1"), ("b", "2", "2"), ("c", "1", "2")):
        assert main(["demo", "--out", str(tmp_path / name), f"recipes.hpl={recipe}", "--quiet", "--seeds", seeds,
                     "--jobs", jobs, *SHORT]) == 0
    a = _numbers(tmp_path / "a" / "metrics.json")
    assert [s["seed"] for s in a] == [0, 1]
    assert a == _numbers(tmp_path / "b" / "metrics.json")
    assert json.loads((tmp_path / "b" / "metrics.json").read_text(encoding="utf-8"))["demo"]["jobs"] == 2
    assert _numbers(tmp_path / "c" / "metrics.json") == a[:1]
    c = json.loads((tmp_path / "c" / "metrics.json").read_text(encoding="utf-8"))["seeds"][0]
    assert [t["stage"] for t in c["timings"]][:len(STAGES)] == STAGES


def test_a_second_run_needs_overwrite(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo.json").write_text('{"complete": true}\n', encoding="utf-8")
    assert main(["demo", "--out", str(out), "--quiet"]) == 2
