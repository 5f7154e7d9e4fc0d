"""Composition on hand-made groups of reward values (no completions to parse)."""

import pytest

from hieroaction.rewards.compose import CompositionConfig, compose, reward_variance_share

LEVEL_OF = {"recognition": "action", "score": "score"}


def test_gated_normalisation_gates_the_raw_values_then_standardises():
    # three completions of one prompt: right action and a poor score, WRONG action and the same
    # poor score, right action and a perfect score; recognition only gates (weight 0)
    rewards = {"recognition": [1.0, 0.0, 1.0], "score": [0.2, 0.2, 1.0]}
    config = CompositionConfig(mode="gated", gate_floor=0.5, normalise=True, normalise_eps=0.0)
    right, wrong, best = compose(rewards, {"recognition": 0.0, "score": 2.0}, LEVEL_OF, config, group_size=3)
    # gated values 0.2, 0.5 x 0.2 = 0.1 and 1.0, standardised (population std), weight 2
    gated = [0.2, 0.1, 1.0]
    mean = sum(gated) / 3
    std = (sum((v - mean) ** 2 for v in gated) / 3) ** 0.5
    expected = [2.0 * (v - mean) / std for v in gated]
    assert [right.total, wrong.total, best.total] == pytest.approx(expected)
    # the wrong action costs: its penalty is larger, never shrunk by the gate (gating the
    # z-scores instead gave the wrong reading -0.71 x 0.5 > -0.71 of the right one)
    assert wrong.total < right.total < 0 < best.total
    # the logged components stay the raw values; the contributions add up to the total
    assert wrong.components == {"recognition": 0.0, "score": 0.2}
    assert sum(wrong.contributions.values()) == pytest.approx(wrong.total)
    assert wrong.contributions["recognition"] == 0.0


def test_sum_mode_normalisation_is_unchanged_by_the_gate_order():
    rewards = {"recognition": [1.0, 0.0], "score": [0.25, 0.75]}
    config = CompositionConfig(mode="sum", normalise=True, normalise_eps=0.0)
    a, b = compose(rewards, {"recognition": 1.0, "score": 1.0}, LEVEL_OF, config, group_size=2)
    assert (a.total, b.total) == pytest.approx((1.0 - 1.0, -1.0 + 1.0))
    assert a.contributions == pytest.approx({"recognition": 1.0, "score": -1.0})


def test_reward_variance_share_by_hand():
    # group 1: only `a` varies; group 2: `b` moves against the total
    contributions = {"a": [1.0, 0.0, 1.0, 0.0], "b": [0.5, 0.5, 0.0, 0.5]}
    shares = reward_variance_share(contributions, group_size=2)
    # covariances with the total: a 0.5 + 0.25, b 0 - 0.125; variance of the total 0.5 + 0.125
    assert shares == pytest.approx({"a": 0.75 / 0.625, "b": -0.125 / 0.625})
    assert sum(shares.values()) == pytest.approx(1.0)
    # one group only: a alone carries the spread
    assert reward_variance_share({k: v[:2] for k, v in contributions.items()}, 2) == pytest.approx({"a": 1.0, "b": 0.0})
    # no spread at all: every share 0
    assert reward_variance_share({"a": [1.0, 1.0], "b": [0.0, 0.0]}, 2) == {"a": 0.0, "b": 0.0}
    with pytest.raises(ValueError, match="whole number of groups"):
        reward_variance_share({"a": [1.0, 0.0, 1.0]}, 2)
