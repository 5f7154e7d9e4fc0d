"""Checkpoint selection: on what users measure, guarded against format collapse."""

from __future__ import annotations

import math

import pytest

from hieroaction.errors import ConfigError
from hieroaction.train.selection import SelectionConfig, guard_failure, is_better


def val(rho, rl2=2.0, failures=0.0, accuracy=0.9, reward=3.0):
    return {"val/spearman": rho, "val/rl2_x100": rl2, "val/parse_failure_rate": failures,
            "val/action_accuracy": accuracy, "val/reward": reward}


def test_higher_rho_wins_even_when_the_reward_fell():
    # the case of the demo: rho rose from 0.70 to 0.95 while the greedy reward fell
    config = SelectionConfig()
    start = val(0.70, reward=3.65)
    assert is_better(val(0.95, reward=3.45), start, config, start)
    assert not is_better(val(0.95, reward=3.45), start, SelectionConfig(metric="reward"), start)


def test_ties_are_broken_by_rl2_and_lower_is_better():
    config = SelectionConfig()
    best = val(0.9, rl2=2.0)
    assert is_better(val(0.9, rl2=1.5), best, config)
    assert not is_better(val(0.9, rl2=2.5), best, config)
    assert not is_better(val(0.9, rl2=2.0), best, config)  # equal: the earlier stays
    assert not is_better(val(0.9, rl2=1.5), best, SelectionConfig(tie_break=None))
    assert is_better(val(0.9, rl2=1.5), best, SelectionConfig(metric="rl2_x100"))


def test_the_guard_refuses_a_model_that_gave_up_the_format_or_the_action():
    config = SelectionConfig(guard_margin=0.02)
    start = val(0.70, failures=0.01, accuracy=0.90)
    broken = val(0.99, failures=0.05, accuracy=0.90)
    wrong = val(0.99, failures=0.01, accuracy=0.85)
    assert "parse-failure rate" in guard_failure(broken, start, config)
    assert "action accuracy" in guard_failure(wrong, start, config)
    assert not is_better(broken, start, config, start) and not is_better(wrong, start, config, start)
    within = val(0.99, failures=0.025, accuracy=0.885)
    assert guard_failure(within, start, config) is None and is_better(within, start, config, start)
    assert is_better(broken, start, SelectionConfig(guard_margin=None), start)


def test_an_undefined_metric_never_wins_and_any_number_beats_it():
    config = SelectionConfig()
    assert not is_better(val(math.nan), val(0.1), config)
    assert is_better(val(0.1), val(math.nan), config)
    assert is_better(val(math.nan), None, config)  # the first validation is the best so far


def test_bad_settings_are_one_sentence():
    with pytest.raises(ConfigError, match="selection.metric must be one of"):
        SelectionConfig(metric="loss")
    with pytest.raises(ConfigError, match="guard_margin must be a number >= 0"):
        SelectionConfig(guard_margin=-1)
    with pytest.raises(ConfigError, match="needs the true score of the validation clips, and the 'val' split has none"):
        SelectionConfig().check_split({"domain", "action"}, "val")
    SelectionConfig(metric="reward", tie_break=None).check_split({"domain"}, "val")
