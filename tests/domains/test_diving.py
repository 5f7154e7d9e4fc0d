import pytest

from hieroaction.domains import builtin_domain_names, get_domain
from hieroaction.domains.diving import (
    dive_number_from_parts,
    expected_final,
    judge_rule,
    parse_dive_number,
)
from hieroaction.errors import ConfigError


@pytest.mark.parametrize(
    "code, group, soms, twists, position, flags",
    [
        ("205b", "back", 2.5, 0.0, "pike", ()),
        ("107B", "forward", 3.5, 0.0, "pike", ()),
        ("407C", "inward", 3.5, 0.0, "tuck", ()),
        ("5253B", "back", 2.5, 1.5, "pike", ("twisting",)),
        ("5132D", "forward", 1.5, 1.0, "free", ("twisting",)),
        ("626C", "back", 3.0, 0.0, "tuck", ("armstand",)),
        ("6243D", "back", 2.0, 1.5, "free", ("armstand", "twisting")),
        ("1011B", "forward", 5.5, 0.0, "pike", ()),
        ("112A", "forward", 1.0, 0.0, "straight", ("flying",)),
    ],
)
def test_dive_number_grammar(code, group, soms, twists, position, flags):
    dive = parse_dive_number(code)
    assert dive is not None
    assert (dive.group, dive.somersaults, dive.twists, dive.position) == (group, soms, twists, position)
    for flag in ("twisting", "armstand", "flying"):
        assert getattr(dive, flag) is (flag in flags)
    assert dive.code == code.upper()


@pytest.mark.parametrize("code", ["", "x", "205", "205E", "705B", "5753B", "600", "100B", "125B", None, 205])
def test_bad_dive_numbers_are_none(code):
    assert parse_dive_number(code) is None


def test_dive_numbers_compose_back():
    assert dive_number_from_parts("back", 5, 3, "pike") == "5253B"
    assert dive_number_from_parts("inward", 7, 0, "tuck") == "407C"
    assert dive_number_from_parts("back", 6, 0, "tuck", armstand=True) == "626C"
    assert dive_number_from_parts("sideways", 5, 0, "tuck") is None
    for code in ("5253B", "407C", "626C", "6243D", "305C"):
        d = parse_dive_number(code)
        assert dive_number_from_parts(d.group, int(d.somersaults * 2), int(d.twists * 2), d.position, d.armstand) == code


def test_judge_rules():
    assert expected_final(3.2, [7.0, 7.0, 7.0]) == pytest.approx(67.2)
    assert expected_final(3.0, [6.0, 6.5, 7.0, 7.0, 7.5]) == pytest.approx(3.0 * 34.0 * 0.6)
    # 7 judges: drop the 2 highest and the 2 lowest
    assert expected_final(2.0, [1, 9, 5, 6, 2, 7, 8]) == pytest.approx(2.0 * (5 + 6 + 7))
    assert judge_rule(4) is None and expected_final(2.0, [1, 2, 3, 4]) is None


def test_domain_formulas():
    assert get_domain("figure_skating").final_score({"tes": 40.5, "pcs": 30.25, "deductions": 1}) == pytest.approx(69.75)
    assert get_domain("diving_sync").final_score({"difficulty": 3.0, "execution": 30.0}) == pytest.approx(54.0)
    surgical = get_domain("surgical")
    assert surgical.final_score({c: 3.0 for c in surgical.components}) == pytest.approx(18.0)
    assert surgical.final_score({"respect_for_tissue": 3.0}) is None
    assert get_domain("generic").final_score({}) is None
    assert {"diving", "diving_sync", "figure_skating", "surgical", "generic"} <= set(builtin_domain_names())
    with pytest.raises(ConfigError, match="unknown domain 'curling'"):
        get_domain("curling")
    with pytest.raises(ConfigError, match="unknown domain"):
        get_domain("../domains/data/diving")
