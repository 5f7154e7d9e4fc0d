"""The demo's budget: time shared between stages by weight, sizes scaled from the budget."""

from __future__ import annotations

import io

import pytest

from hieroaction.config import config_from_dict
from hieroaction.demo.budget import Clock, Progress, format_metrics, format_seconds
from hieroaction.demo.config import DemoConfig, DemoDataConfig
from hieroaction.errors import ConfigError


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_share_splits_the_time_left_by_weight_among_unfinished_stages():
    now = FakeTime()
    clock = Clock(100.0, {"sft": 0.5, "hpl": 0.25, "evaluation": 0.25}, reserve_s=10.0, now=now)
    assert clock.share("sft") == pytest.approx(45.0)
    # SFT overran: it took 60 s instead of 45, so the later stages share what is left.
    now.t += 60.0
    clock.finish("sft", 60.0)
    assert clock.share("hpl") == pytest.approx(15.0)
    assert clock.share("evaluation") == pytest.approx(15.0)
    now.t += 15.0
    clock.finish("hpl", 15.0)
    assert clock.share("evaluation") == pytest.approx(15.0)
    assert clock.left() == pytest.approx(25.0)
    with pytest.raises(KeyError):
        clock.share("hpl")


def test_share_is_never_negative_after_the_deadline():
    now = FakeTime()
    clock = Clock(10.0, {"sft": 1.0}, now=now)
    now.t += 30.0
    assert clock.share("sft") == 0.0
    assert clock.left() == pytest.approx(-20.0)


def test_format_seconds():
    assert format_seconds(0) == "0:00"
    assert format_seconds(61.4) == "1:01"
    assert format_seconds(3725) == "1:02:05"
    assert format_seconds(-5) == "0:00"


def test_progress_lines_name_the_stage_and_the_time_left():
    now = FakeTime()
    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress.start_seed(Clock(125.0, {}, now=now), "seed 3", 6)
    progress.stage("SFT cold start", "planning")
    now.t += 5.0
    progress.line("step 1/10")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[demo seed 3 | 1/6 SFT cold start] planning (2:05 left)",
        "[demo seed 3 | 1/6 SFT cold start] step 1/10 (2:00 left)",
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


def test_ablation_adds_its_share_to_the_budget_and_the_weights():
    plain = DemoConfig(budget_minutes=10)
    assert plain.seconds_per_seed == pytest.approx(600.0)
    assert set(plain.stage_weights) == {"sft", "hpl", "evaluation"}
    ablated = DemoConfig(budget_minutes=10, ablations=True)
    extra = sum(ablated.budget.ablation_weights.values())
    assert ablated.seconds_per_seed == pytest.approx(600.0 * (1 + extra))
    assert ablated.stage_weights["ablation"] == pytest.approx(ablated.budget.ablation_weights["ablation"])
    assert ablated.stage_weights["evaluation"] == pytest.approx(
        plain.budget.weights["evaluation"] + ablated.budget.ablation_weights["evaluation"])


@pytest.mark.parametrize("data, key", [
    ({"budget_minutes": 0}, "budget_minutes"),
    ({"seeds": 0}, "seeds"),
    ({"threads": 0}, "threads"),
    ({"budget": {"weights": {"sft": 1.0}}}, "missing"),
    ({"budget": {"hpl_loop_fraction": 1.5}}, "hpl_loop_fraction"),
    ({"budget": {"weights": {"sft": -1, "hpl": 1, "evaluation": 1}}}, "budget.weights.sft"),
    ({"no_such_key": 1}, "no_such_key"),
])
def test_bad_settings_are_one_sentence(data, key):
    with pytest.raises(ConfigError, match=key):
        config_from_dict(DemoConfig, data)
