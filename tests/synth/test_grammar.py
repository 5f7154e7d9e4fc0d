import copy
from importlib import resources

import pytest
import yaml

from hieroaction.domains import Domain, get_domain
from hieroaction.errors import ConfigError
from hieroaction.synth.grammar import grammar_from_domain, load_grammar


def _synth_yaml() -> dict:
    ref = resources.files("hieroaction.domains") / "data" / "synth.yaml"
    return yaml.safe_load(ref.read_text(encoding="utf-8"))


def test_vocabulary_and_difficulty_come_from_the_domain_file():
    grammar = load_grammar()
    domain = get_domain("synth")
    assert 12 <= len(grammar.actions) <= 24
    assert domain.components == ("difficulty", "execution")
    assert domain.formula.kind == "product"
    action = grammar.action("inward-3-head")
    assert action.step_labels == ("inward take-off", "3 turns", "head-first entry")
    assert action.difficulty == pytest.approx(1.8 + 1.8 + 0.4)
    assert action.attributes() == {"takeoff": "inward", "turns": 3, "entry": "head",
                                   "difficulty": action.difficulty}
    # Difficulty spreads: the hardest action is more than twice the easiest.
    assert grammar.max_difficulty > 2 * min(a.difficulty for a in grammar.actions)
    # Distinct take-off colours: the only thing that tells take-offs apart in the pixels.
    assert len({t.colour for t in grammar.takeoffs}) == len(grammar.takeoffs)
    with pytest.raises(ConfigError, match="unknown synth action 'nope'"):
        grammar.action("nope")


def test_commentary_bands():
    grammar = load_grammar()
    assert grammar.describe("entry", 10.0) == "vertical with almost no splash"
    assert grammar.describe("entry", 0.0) == "badly tilted with a big splash"
    assert grammar.describe("turns", 6.0) == "a slight wobble off the axis"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["action_labels"].pop(), "action_labels must list"),
        (lambda d: d["step_labels"].reverse(), "step_labels must list"),
        (lambda d: d.update(score_range=[0.0, 100.0]), "score_range must end at"),
        (lambda d: d.pop("takeoffs"), "needs the key 'takeoffs'"),
        (lambda d: d["turns"][0].pop("difficulty"), "not a valid synth grammar"),
        (lambda d: d.update(label_template="{takeoff}"), "same label"),
    ],
)
def test_incoherent_domain_is_a_config_error(edit, message):
    data = copy.deepcopy(_synth_yaml())
    edit(data)
    with pytest.raises(ConfigError, match=message):
        grammar_from_domain(Domain.from_mapping(data))
