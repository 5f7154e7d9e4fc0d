"""render_sar writes SPEC section 2's layout exactly, and escapes what would break a tag."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hieroaction.sar import Assessment, StepAssessment, parse_sar, render_sar, sar_skeleton
from hieroaction.sar.markup import escape_attribute, escape_text, format_number, unescape

EXPECTED = """<recognition>
Inward take-off, tight tuck &amp; 3.5 somersaults &lt;clean&gt;.
<action>407C</action>
</recognition>
<subactions>
<step label="Inward" start="0" end="0.84" quality="8.5">Balanced "hurdle" and take-off.</step>
<step label="3.5 Soms.Tuck" start="0.84" end="3.24" quality="7.5">Tight tuck, slight opening late.</step>
<step label="Entry" start="3.24" end="4">Small splash.</step>
</subactions>
<scoring>
DD 3.2 times execution 27 gives 86.4.
<component name="difficulty">3.2</component>
<component name="execution">27</component>
<score>86.4</score>
</scoring>"""


def test_layout_is_exactly_the_spec(completion: str) -> None:
    assert completion == EXPECTED


def test_round_trip_of_the_example(assessment: Assessment, completion: str) -> None:
    for strict in (True, False):
        result = parse_sar(completion, strict=strict)
        assert result.ok, result.problems
        assert result.assessment == assessment
        assert all(b.well_formed for b in result.blocks.values())


def test_empty_assessment_renders_empty_elements_and_reads_back() -> None:
    text = render_sar(Assessment())
    assert text == (
        "<recognition>\n<action></action>\n</recognition>\n<subactions>\n</subactions>\n"
        "<scoring>\n<score></score>\n</scoring>"
    )
    assert parse_sar(text).assessment == Assessment()


@pytest.mark.parametrize(
    ("value", "text"),
    [(3.0, "3"), (86.4, "86.4"), (0.0005, "0.001"), (-0.0001, "0"), (1e6, "1000000"),
     (-2.5, "-2.5"), (1 / 3, "0.333")],
)
def test_numbers_are_compact(value: float, text: str) -> None:
    a = Assessment(score=value)
    assert f"<score>{text}</score>" in render_sar(a)
    assert format_number(a.score) == text


def test_escaping_is_exact_and_reversible() -> None:
    nasty = 'a<b>&"c"&amp;&lt;</step>'
    assert "<" not in escape_text(nasty) and ">" not in escape_text(nasty)
    assert '"' not in escape_attribute(nasty)
    assert unescape(escape_text(nasty)) == nasty
    assert unescape(escape_attribute(nasty)) == nasty
    a = Assessment(action=nasty, steps=[StepAssessment(label=nasty, start=0, end=1,
                                                       analysis=nasty)],
                   recognition_reasoning=nasty, scoring_reasoning=nasty,
                   components={nasty: 1.0}, score=2.0)
    result = parse_sar(render_sar(a), strict=True)
    assert result.ok, result.problems
    assert result.assessment == a


def test_assessment_normalises_and_rejects() -> None:
    a = Assessment(action="  inward \n 3.5  ", score=86.40000001, recognition_reasoning="  x \n")
    assert a.action == "inward 3.5" and a.score == 86.4 and a.recognition_reasoning == "x"
    assert Assessment(action="   ").action is None
    for bad in ({"score": float("nan")}, {"score": float("inf")}, {"score": 2e6},
                {"components": {"": 1.0}}, {"components": {"a": float("nan")}},
                {"components": {"a": 1.0, " a ": 2.0}}):
        with pytest.raises(ValidationError):
            Assessment(**bad)
    for bad_step in ({"start": 2, "end": 1}, {"start": -1, "end": 1}, {"label": " "},
                     {"quality": float("inf")}):
        with pytest.raises(ValidationError):
            StepAssessment(**{"label": "x", "start": 0, "end": 1, **bad_step})


def test_json_round_trip(assessment: Assessment) -> None:
    assert Assessment.model_validate_json(assessment.model_dump_json()) == assessment
    assert assessment.model_dump()["version"] == 1


def test_skeleton_has_placeholders_only() -> None:
    text = sar_skeleton(["difficulty", "execution"], step_quality=True)
    assert '<component name="difficulty">NUMBER</component>' in text
    assert 'quality="NUMBER"' in text
    assert "quality" not in sar_skeleton([], step_quality=False)
    assert not any(ch.isdigit() for ch in text)
    # The skeleton has the layout of the format: only its numbers are not numbers.
    result = parse_sar(text, strict=True)
    assert {p.code.value for p in result.problems} == {"bad_number"}
    assert all(b.count == 1 and b.closed for b in result.blocks.values())
