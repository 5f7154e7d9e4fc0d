"""The demo's fixed work: step counts scaled by the budget, clip counts, progress lines."""

from __future__ import annotations

import io

import pytest

from hieroaction.config import config_from_dict
from hieroaction.demo.budget import Clock, Progress, format_metrics, format_seconds
from hieroaction.demo.config import DemoConfig, DemoDataConfig, WorkConfig
from hieroaction.errors import ConfigError


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_clock_only_reports_elapsed_time():
    now = FakeTime()
    clock = Clock(now=now)
    now.t += 61.5
    assert clock.elapsed() == pytest.approx(61.5)


def test_format_seconds():
    assert format_seconds(0) == "0:00"
    assert format_seconds(61.4) == "1:01"
    assert format_seconds(3725) == "1:02:05"
    assert format_seconds(-5) == "0:00"


def test_progress_lines_name_the_stage_and_the_time_spent():
    now = FakeTime()
    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress.start_seed(Clock(now=now), "seed 3", 6)
    progress.stage("SFT cold start", "planning")
    now.t += 65.0
    progress.line("step 1/10")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[demo seed 3 | 1/6 SFT cold start] planning (0:00 in)",
        "[demo seed 3 | 1/6 SFT cold start] step 1/10 (1:05 in)",
    ]
    quiet = io.StringIO()
    Progress(enabled=False, stream=quiet).note("nothing")
    assert quiet.getvalue() == ""


def test_format_metrics_keeps_numbers_only():
    text = format_metrics({"loss": 0.12345, "kl": None, "name": "x"}, {"loss": "loss", "kl": "kl", "name": "n"})
    assert text == "loss 0.123"


def test_clip_count_scales_with_the_budget_within_bounds():
    data = DemoDataConfig(clips_per_minute=100, min_clips=150, max_clips=2000)
    assert data.clips(0.5) == 150
    assert data.clips(3) == 300
    assert data.clips(60) == 2000


def test_the_budget_scales_the_step_counts_not_the_clock():
    work = WorkConfig()
    assert work.steps(1200, 15) == 1200 and work.steps(1200, 7.5) == 600
    assert work.steps(60, 0.1) == 1  # at least one step
    assert DemoConfig(budget_minutes=30).work.steps(60, 30) == 120


@pytest.mark.parametrize("data, key", [
    ({"budget_minutes": 0}, "budget_minutes"),
    ({"seeds": 0}, "seeds"),
    ({"threads": 0}, "threads"),
    ({"work": {"sft_steps": 0}}, "work.sft_steps"),
    ({"work": {"hpl_validations": -1}}, "work.hpl_validations"),
    ({"data": {"full_labels": 0}}, r"data.full_labels must be in \(0, 1\]"),
    ({"data": {"full_labels": 1.5}}, "data.full_labels"),
    ({"data": {"action_labels": -0.5}}, "data.action_labels"),
    ({"no_such_key": 1}, "no_such_key"),
    ({"jobs": -1}, "jobs must be >= 0"),
])
def test_bad_settings_are_one_sentence(data, key):
    with pytest.raises(ConfigError, match=key):
        config_from_dict(DemoConfig, data)


def test_seeds_run_at_once_as_the_cores_allow(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert DemoConfig(seeds=3).seed_jobs() == 2  # 2 cores, one thread each
    assert DemoConfig(seeds=3, threads=2).seed_jobs() == 1
    assert DemoConfig(seeds=1).seed_jobs() == 1  # never more processes than seeds
    assert DemoConfig(seeds=3, jobs=3).seed_jobs() == 3  # asked for
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert DemoConfig(seeds=3).seed_jobs() == 1


def test_the_processes_left_over_run_a_seeds_training_runs_at_once(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert DemoConfig(seeds=1).stage_jobs() == 2  # 1 seed on 2 cores: the SFT runs, then the GRPO runs, in pairs
    assert DemoConfig(seeds=2).stage_jobs() == 1  # 2 seeds at once, each one stage after the other
    assert DemoConfig(seeds=3, jobs=2).stage_jobs() == 1
    assert DemoConfig(seeds=1, jobs=1).stage_jobs() == 1
    assert DemoConfig(seeds=2, jobs=4).stage_jobs() == 2
    assert DemoConfig(seeds=3, jobs=4).stage_jobs() == 1  # 3 seeds at once, 4 // 3
    assert DemoConfig(seeds=1, threads=2).stage_jobs() == 1
