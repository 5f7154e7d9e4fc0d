"""Hand-written good and adversarial completions for every reward (open-r1 style)."""

import pytest

from hieroaction import rewards
from hieroaction.data.records import Record
from hieroaction.errors import ConfigError
from hieroaction.rewards import CompositionConfig, CurriculumStage, HierarchicalReward, RewardsConfig

GOOD = """<recognition>
A back take-off into two turns, entering head first.
<action>back-2-head</action>
</recognition>
<subactions>
<step label="back take-off" start="0" end="0.5" quality="8">upright and balanced</step>
<step label="2 turns" start="0.5" end="1.5" quality="6">a slight wobble</step>
<step label="head-first entry" start="1.5" end="2" quality="7">small splash</step>
</subactions>
<scoring>
Difficulty 2.8 times the judges' sum.
<component name="difficulty">2.8</component>
<component name="execution">21</component>
<score>58.8</score>
</scoring>"""

TRUTH = {
    "domain": "synth",
    "action": "back-2-head",
    "steps": [
        {"label": "back take-off", "start": 0.0, "end": 0.5, "score": 8.0},
        {"label": "2 turns", "start": 0.5, "end": 1.5, "score": 6.0},
        {"label": "head-first entry", "start": 1.5, "end": 2.0, "score": 7.0},
    ],
    "score": 58.8,
    "components": {"difficulty": 2.8, "execution": 21.0},
    "score_range": [0.0, 120.0],
}

CONTENT = ["recognition", "sequence", "localisation", "subscore", "score", "consistency"]


def run(name, completions, truth=TRUTH, **params):
    columns = {k: [v] * len(completions) for k, v in truth.items()}
    return rewards.get(name, **params)(completions, **columns)


def edit(old, new, text=GOOD):
    assert old in text
    return text.replace(old, new, 1)


# --- every reward: a correct answer earns the maximum, garbage earns 0 -----------------------

@pytest.mark.parametrize("name", ["format"] + CONTENT)
def test_correct_answer_earns_the_maximum(name):
    assert run(name, [GOOD]) == [1.0]


@pytest.mark.parametrize("name", ["format"] + CONTENT)
@pytest.mark.parametrize("bad", ["", "   ", "I think it was a good dive, 9/10.", "<<<>>>", "\x00\ufffd" * 50,
                                 "<score>", "</recognition></subactions></scoring>"])
def test_empty_or_unparsable_answers_earn_zero_not_none(name, bad):
    assert run(name, [bad]) == [0.0]


# Where the last element each reward reads begins in GOOD.
LAST_READ = {"format": "</scoring>", "recognition": "<action>", "sequence": "<step ", "localisation": "<step ",
             "subscore": "<component ", "score": "<score>", "consistency": "<score>"}


@pytest.mark.parametrize("name", ["format"] + CONTENT)
def test_truncated_answers_never_earn_more_than_the_full_one(name):
    full = run(name, [GOOD])[0]
    lengths = list(range(0, len(GOOD), 7))
    values = run(name, [GOOD[:i] for i in lengths])
    assert all(v is not None and 0.0 <= v <= full for v in values), (full, values)
    # cutting more never earns more; a cut that loses the last element the reward reads earns less
    assert values == sorted(values)
    assert values[0] == 0.0
    last = GOOD.rindex(LAST_READ[name])
    assert all(v < full for i, v in zip(lengths, values) if i <= last)
    assert run(name, [GOOD[:last]])[0] < full


@pytest.mark.parametrize("name", ["format"] + CONTENT)
def test_padded_answers_never_earn_more_than_the_full_one(name):
    full = run(name, [GOOD])[0]
    padded = [GOOD + "\n" + GOOD, "Sure! Here is my answer.\n" + GOOD, GOOD + "\n<score>58.8</score><score>120</score>",
              GOOD + "\n<action>back-2-head</action><action>inward-1-feet</action>",
              edit("</subactions>", '<step label="2 turns" start="0.5" end="1.5" quality="6">again</step>\n</subactions>')]
    assert all(0.0 <= v <= full for v in run(name, padded))


def test_chat_message_completions_are_read():
    assert rewards.get("score")([[{"role": "assistant", "content": GOOD}]], **{k: [v] for k, v in TRUTH.items()}) == [1.0]


# --- format -----------------------------------------------------------------------------------

def test_format_partial_credit_per_block_but_never_full():
    no_scoring = GOOD.split("<scoring>")[0]
    assert run("format", [no_scoring]) == [0.5]
    spammed = GOOD + "\n<score>58.8</score><score>58.8</score>"
    assert run("format", [spammed])[0] < 1.0
    repeated = GOOD + "\n" + GOOD
    assert run("format", [repeated])[0] < 1.0
    chatter = "Sure! Here is my answer.\n" + GOOD
    assert run("format", [chatter])[0] < 1.0


# --- recognition ------------------------------------------------------------------------------

def test_recognition_partial_credit_from_attributes():
    one_part_wrong = edit("<action>back-2-head</action>", "<action>back-3-head</action>")
    all_wrong = edit("<action>back-2-head</action>", "<action>inward-1-feet</action>")
    not_a_label = edit("<action>back-2-head</action>", "<action>a dive</action>")
    assert run("recognition", [one_part_wrong, all_wrong, not_a_label]) == [pytest.approx(0.5 * 2 / 3), 0.0, 0.0]


def test_recognition_dive_numbers():
    truth = dict(TRUTH, domain="diving", action="5253B", score_range=[0, 125])
    answers = [edit("back-2-head", x) for x in ("5253b", "5253C", "5255B", "107B")]
    got = run("recognition", answers, truth)
    assert got[0] == 1.0  # case does not matter for dive numbers
    assert got[1] == pytest.approx(0.5 * 3 / 4)  # position wrong
    assert got[2] == pytest.approx(0.5 * 3 / 4)  # twists wrong
    assert got[3] == pytest.approx(0.5 * 1 / 4)  # only the pike position matches
    assert run("recognition", [GOOD], dict(TRUTH, action=None)) == [None]


# --- sub-actions ------------------------------------------------------------------------------

def test_repeating_steps_earns_nothing_extra():
    step = '<step label="2 turns" start="0.5" end="1.5" quality="6">a slight wobble</step>\n'
    repeated = edit(step, step * 5)
    for name in ("sequence", "localisation", "subscore"):
        assert run(name, [repeated])[0] < 1.0, name


def test_sequence_and_localisation_by_hand():
    missing_entry = edit('<step label="head-first entry" start="1.5" end="2" quality="7">small splash</step>\n', "")
    assert run("sequence", [missing_entry]) == [pytest.approx(2 / 3)]
    assert run("localisation", [missing_entry]) == [pytest.approx(2 / 3)]
    shifted = edit('start="0.5" end="1.5"', 'start="1" end="1.5"')
    assert run("localisation", [shifted]) == [pytest.approx((1 + 0.5 + 1) / 3)]
    assert run("sequence", [GOOD], dict(TRUTH, steps=[])) == [None]
    assert run("localisation", [GOOD], dict(TRUTH, steps=[])) == [None]


def test_subscore_errors_are_normalised_by_the_domain_ranges():
    worse = edit('quality="8"', 'quality="3"')  # 5 off on a 0..10 quality range
    # 3 steps + 2 components = 5 terms, one of them with error 0.5
    assert run("subscore", [worse]) == [pytest.approx(1 - 0.5 / 5)]
    no_qualities = GOOD.replace(' quality="8"', "").replace(' quality="6"', "").replace(' quality="7"', "")
    assert run("subscore", [no_qualities]) == [pytest.approx(1 - 3 / 5)]


# --- score ------------------------------------------------------------------------------------

def test_score_kernels():
    off = edit("<score>58.8</score>", "<score>64.8</score>")  # 6 off; tau x range = 12
    assert run("score", [off]) == [pytest.approx(0.5)]
    assert run("score", [off], kernel="gaussian")[0] == pytest.approx(0.8824969)
    assert run("score", [off], kernel="laplace")[0] == pytest.approx(0.6065307)
    far = edit("<score>58.8</score>", "<score>100</score>")
    assert run("score", [far]) == [0.0]


def test_scores_outside_the_range_earn_nothing():
    for value in ("121", "-1", "1e9", "nan", "inf"):
        answer = edit("<score>58.8</score>", f"<score>{value}</score>")
        assert run("score", [answer]) == [0.0], value
        assert run("consistency", [answer]) == [0.0], value


def test_consistency_checks_the_formula_on_predicted_components():
    inconsistent = edit("<score>58.8</score>", "<score>70</score>")
    assert run("consistency", [inconsistent]) == [0.0]
    no_components = GOOD.replace('<component name="difficulty">2.8</component>\n', "")
    assert run("consistency", [no_components]) == [0.0]
    assert run("consistency", [GOOD], dict(TRUTH, domain="generic")) == [None]


# --- composition ------------------------------------------------------------------------------

def _batch(completions):
    return {k: [v] * len(completions) for k, v in TRUTH.items()}


def test_gated_composition_ties_score_to_the_lower_levels():
    wrong_action_right_score = edit("<action>back-2-head</action>", "<action>inward-1-feet</action>")
    config = RewardsConfig(weights={"recognition": 1.0, "score": 1.0},
                           composition=CompositionConfig(mode="gated", gate_floor=0.2))
    reward = HierarchicalReward(config)
    good, hacked = reward([GOOD, wrong_action_right_score], group_size=2, **_batch([0, 0]))
    assert good.total == pytest.approx(2.0)
    # score counts only gate_floor when the action below it is wrong
    assert hacked.total == pytest.approx(0.2)
    summed = HierarchicalReward(RewardsConfig(weights={"recognition": 1.0, "score": 1.0},
                                              composition=CompositionConfig(mode="sum")))
    assert summed([wrong_action_right_score], group_size=1, **_batch([0]))[0].total == pytest.approx(1.0)


def test_curriculum_switches_levels_on_by_step():
    config = RewardsConfig(weights={"recognition": 1.0, "score": 1.0}, composition=CompositionConfig(
        mode="sum", curriculum=[CurriculumStage(levels=["action"], until_step=10)]))
    reward = HierarchicalReward(config)
    assert reward([GOOD], group_size=1, step=0, **_batch([0]))[0].total == pytest.approx(1.0)
    assert reward([GOOD], group_size=1, step=10, **_batch([0]))[0].total == pytest.approx(2.0)


def test_group_normalisation_and_zero_spread():
    off = edit("<score>58.8</score>", "<score>64.8</score>")
    config = RewardsConfig(weights={"score": 1.0}, composition=CompositionConfig(mode="sum", normalise=True))
    results = HierarchicalReward(config)([GOOD, off, GOOD, GOOD], group_size=2, **_batch([0] * 4))
    assert results[0].total == pytest.approx(1.0, abs=1e-3) and results[1].total == pytest.approx(-1.0, abs=1e-3)
    assert results[2].total == 0.0 and results[3].total == 0.0
    assert rewards.zero_spread_fraction([r.total for r in results], 2) == 0.5
    assert results[1].log()["reward/score"] == 0.5


def test_a_correct_answer_earns_the_maximum_total():
    reward = HierarchicalReward(RewardsConfig())
    results = reward([GOOD, "", GOOD[:200]], group_size=3, **_batch([0] * 3))
    best = sum(RewardsConfig().weights.values())
    assert results[0].total == pytest.approx(best)
    assert results[1].total == 0.0
    assert results[2].total < results[0].total


# --- configuration errors, before any model is loaded -------------------------------------------

def test_bad_reward_configs_are_one_sentence():
    with pytest.raises(ConfigError, match="unknown reward 'scroe'"):
        HierarchicalReward(RewardsConfig(weights={"scroe": 1.0}))
    with pytest.raises(ConfigError, match="no weight"):
        HierarchicalReward(RewardsConfig(weights={"score": 1.0}, params={"format": {}}))
    with pytest.raises(ConfigError, match="must be a number >= 0"):
        HierarchicalReward(RewardsConfig(weights={"score": -1.0}))
    with pytest.raises(ConfigError, match="needs the column 'steps'"):
        HierarchicalReward(RewardsConfig(weights={"sequence": 1.0})).check_columns(["domain", "score"])
    with pytest.raises(ConfigError, match="unknown reward"):
        rewards.get("nope")
    with pytest.raises(ConfigError, match="every reward weight is 0"):
        HierarchicalReward(RewardsConfig(weights={"score": 0.0}))
    # a zero weight switches a reward off, columns included
    HierarchicalReward(RewardsConfig(weights={"score": 1.0, "sequence": 0.0})).check_columns(["domain", "score", "score_range"])


def test_reward_columns_from_a_record():
    record = Record.model_validate({
        "id": "r", "domain": "synth", "video": {"path": "x.mp4", "start_frame": 0, "end_frame": 23, "fps": 12.0},
        "action": {"label": "back-2-head"}, "score": {"final": 58.8, "components": {"difficulty": 2.8, "execution": 21.0}},
        "steps": [{"label": "back take-off", "start_frame": 0, "end_frame": 5, "score": 8.0}]})
    columns = rewards.reward_columns(record)
    assert columns["steps"] == [{"label": "back take-off", "start": 0.0, "end": 0.5, "score": 8.0}]
    assert columns["score_range"] == [0.0, 120.0] and columns["action"] == "back-2-head"


def test_structure_gate_makes_a_broken_attribute_cost_every_level():
    # the same answer with one attribute given twice: the strict parser refuses it (format 0.5),
    # the lenient reading still finds the right action and score
    broken = GOOD.replace('quality="', 'quality="" quality="', 1)
    assert broken != GOOD
    weights = {"format": 0.5, "recognition": 1.0, "score": 2.0}
    plain = HierarchicalReward(RewardsConfig(weights=weights, composition=CompositionConfig(mode="gated")))
    good, bad = plain([GOOD, broken], group_size=2, **_batch([0, 0]))
    assert bad.components["format"] == 0.5 and bad.components["recognition"] == 1.0
    # without the structure gate the broken answer loses only the format reward's share
    assert good.total - bad.total == pytest.approx(0.25)
    gated = HierarchicalReward(RewardsConfig(
        weights=weights, composition=CompositionConfig(mode="gated", structure_gate_floor=0.0)))
    good_g, bad_g = gated([GOOD, broken], group_size=2, **_batch([0, 0]))
    assert good_g.total == pytest.approx(good.total)  # a right answer is not touched
    # with floor 0 every content reward is halved by format 0.5: 0.25 + 0.5 x (1 + 2)
    assert bad_g.total == pytest.approx(0.25 + 0.5 * 3.0)
    assert bad_g.contributions["score"] == pytest.approx(1.0)


def test_structure_gate_is_refused_outside_gated_mode_and_out_of_range():
    with pytest.raises(ConfigError, match="only mode 'gated'"):
        CompositionConfig(mode="sum", structure_gate_floor=0.5)
    with pytest.raises(ConfigError, match=r"structure_gate_floor must be in \[0, 1\]"):
        CompositionConfig(mode="gated", structure_gate_floor=1.5)
