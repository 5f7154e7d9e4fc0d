"""parse_sar on hand-written completions, good and adversarial, in both modes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType

import pytest

from hieroaction.sar import ProblemCode, parse_sar, render_sar
from hieroaction.sar.assessment import Assessment
from hieroaction.sar.parse import MAX_CHARS, MAX_PROBLEMS_PER_CODE

C = ProblemCode


def codes(text: str, strict: bool = False) -> set[str]:
    return {p.code.value for p in parse_sar(text, strict=strict).problems}


def test_well_formed_completion(completion: str, assessment: Assessment) -> None:
    result = parse_sar(completion, strict=True)
    assert result.ok and result.in_order and result.step_tags == 3
    assert result.assessment == assessment
    assert {n: b.well_formed for n, b in result.blocks.items()} == {
        "recognition": True, "subactions": True, "scoring": True}


def test_surrounding_whitespace_is_fine(completion: str) -> None:
    assert parse_sar("\n\n  " + completion + "\n \n", strict=True).ok


@pytest.mark.parametrize("text", ["", "   \n", None, 42, b"", ["<score>1</score>"]])
def test_empty_or_not_text(text: object) -> None:
    result = parse_sar(text)
    assert C.EMPTY in result.codes and C.MISSING_BLOCK in result.codes
    assert result.assessment == Assessment()
    assert not any(b.well_formed for b in result.blocks.values())


def test_bytes_are_decoded(completion: str) -> None:
    assert parse_sar(completion.encode()).ok


def test_missing_block_strict_and_lenient(completion: str) -> None:
    start = completion.index("<subactions>")
    end = completion.index("</subactions>") + len("</subactions>\n")
    text = completion[:start] + completion[end:]
    result = parse_sar(text, strict=True)
    assert result.codes == {C.MISSING_BLOCK}
    assert result.blocks["subactions"].count == 0 and not result.blocks["subactions"].well_formed
    assert result.blocks["recognition"].well_formed and result.blocks["scoring"].well_formed
    assert result.assessment.steps == [] and result.assessment.score == 86.4


def test_blocks_out_of_order(completion: str) -> None:
    rec_end = completion.index("</recognition>") + len("</recognition>")
    rec, rest = completion[:rec_end], completion[rec_end:]
    text = rest + "\n" + rec
    result = parse_sar(text, strict=True)
    assert C.BLOCK_ORDER in result.codes and not result.in_order
    # Each block is fine by itself, and even strict mode reads its values.
    assert all(b.well_formed for b in result.blocks.values())
    assert result.assessment.action == "407C" and result.assessment.score == 86.4


def test_repeated_block(completion: str) -> None:
    result = parse_sar(completion + "\n" + completion)
    assert C.REPEATED_BLOCK in result.codes
    assert all(b.count == 2 and not b.well_formed for b in result.blocks.values())
    assert result.assessment.score == 86.4  # lenient takes the first


def test_text_outside_blocks(completion: str) -> None:
    result = parse_sar("Sure! Here is my assessment.\n" + completion, strict=True)
    assert result.codes == {C.STRAY_TEXT}
    assert all(b.well_formed for b in result.blocks.values())  # the blocks themselves are fine
    assert result.assessment.score == 86.4


def test_missing_closing_tags_when_truncated(completion: str) -> None:
    text = completion[: completion.index("</scoring>")]
    lenient = parse_sar(text)
    assert C.UNCLOSED_TAG in lenient.codes
    assert lenient.assessment.score == 86.4
    assert not lenient.blocks["scoring"].closed and lenient.blocks["recognition"].well_formed
    # The answer was cut in the middle of the score: 86.4 -> "86." must not be read as 86.
    cut = completion[: completion.index("<score>") + len("<score>86.")]
    for strict in (False, True):
        result = parse_sar(cut, strict=strict)
        assert result.assessment.score is None
        assert C.TRUNCATED in result.codes
    # A newline after the value shows it was complete.
    assert parse_sar(cut + "4\n").assessment.score == 86.4
    # Cut inside the closing tag: the value before it is complete.
    cut = completion[: completion.index("</score>") + 4]
    assert parse_sar(cut).assessment.score == 86.4
    assert C.TRUNCATED in codes(cut)


def test_unclosed_element_in_the_middle() -> None:
    text = ("<recognition>\nr\n<action>407C\n</recognition>\n<subactions>\n"
            '<step label="A" start="0" end="1">a\n<step label="B" start="1" end="2">b</step>\n'
            "</subactions>\n<scoring>\n<score>50</score>\n</scoring>")
    lenient = parse_sar(text)
    assert lenient.assessment.action == "407C"
    assert [s.label for s in lenient.assessment.steps] == ["A", "B"]
    assert lenient.assessment.steps[0].analysis == "a"
    strict = parse_sar(text, strict=True)
    assert strict.assessment.action is None
    assert [s.label for s in strict.assessment.steps] == ["B"]
    assert not strict.blocks["recognition"].well_formed
    assert not strict.blocks["subactions"].well_formed
    assert strict.blocks["scoring"].well_formed


def test_block_opened_inside_another() -> None:
    text = ("<recognition>\nr\n<action>X</action>\n<subactions>\n"
            '<step label="A" start="0" end="1">a</step>\n</subactions>\n'
            "<scoring>\n<score>5</score>\n</scoring>")
    result = parse_sar(text)
    assert C.UNCLOSED_TAG in result.codes
    assert result.assessment.action == "X" and len(result.assessment.steps) == 1
    assert result.blocks["subactions"].well_formed and not result.blocks["recognition"].closed


def test_nested_and_stray_closing_tags() -> None:
    text = ("<recognition><recognition>\nr\n<action>X</action>\n</recognition></recognition>\n"
            "<subactions>\n</subactions>\n<scoring>\n<score>5</score></score>\n</scoring>")
    result = parse_sar(text)
    assert {C.REPEATED_BLOCK, C.UNEXPECTED_CLOSE, C.UNCLOSED_TAG} <= result.codes
    assert result.assessment.action == "X"  # lenient: from the repeated block
    assert parse_sar(text, strict=True).assessment.action is None


def test_elements_outside_their_block() -> None:
    text = ("<recognition>\nr\n</recognition>\n<action>X</action>\n<subactions>\n</subactions>\n"
            "<scoring>\n</scoring>\n<score>7.5</score>")
    lenient = parse_sar(text)
    assert {C.MISPLACED_TAG, C.MISSING_ELEMENT} <= lenient.codes
    assert lenient.assessment.action == "X" and lenient.assessment.score == 7.5
    strict = parse_sar(text, strict=True)
    assert strict.assessment.action is None and strict.assessment.score is None


def test_repeated_action_and_score_first_wins() -> None:
    text = ("<recognition>\n<action>A</action>\n<action>B</action>\n</recognition>\n"
            "<subactions>\n</subactions>\n<scoring>\n<score>1</score>\n<score>2</score>\n"
            "</scoring>")
    result = parse_sar(text, strict=True)
    assert C.REPEATED_ELEMENT in result.codes
    assert result.assessment.action == "A" and result.assessment.score == 1


@pytest.mark.parametrize(
    ("raw", "lenient", "code"),
    [("nan", None, C.NON_FINITE), ("-inf", None, C.NON_FINITE), ("Infinity", None, C.NON_FINITE),
     ("1e400", None, C.OUT_OF_RANGE), ("-2e6", None, C.OUT_OF_RANGE),
     ("9" * 1000, None, C.OUT_OF_RANGE), ("about 86.4 points", 86.4, C.NUMBER_WITH_TEXT),
     ("86.4/100", 86.4, C.NUMBER_WITH_TEXT), ("N/A", None, C.BAD_NUMBER), ("", None, C.BAD_NUMBER),
     ("1_000", 1.0, C.NUMBER_WITH_TEXT)],
)
def test_bad_scores(raw: str, lenient: float | None, code: ProblemCode) -> None:
    text = render_sar(Assessment(score=1.0)).replace("<score>1<", f"<score>{raw}<")
    result = parse_sar(text)
    assert code in result.codes
    assert result.assessment.score == lenient
    assert parse_sar(text, strict=True).assessment.score is None
    assert not parse_sar(text, strict=True).blocks["scoring"].well_formed


@pytest.mark.parametrize("raw", ["86.4", "+86.4", "86.40", "8.64e1", ".5", "7."])
def test_plain_numbers_are_fine(raw: str) -> None:
    text = render_sar(Assessment(score=1.0)).replace("<score>1<", f"<score> {raw} <")
    result = parse_sar(text, strict=True)
    assert result.ok and result.assessment.score == round(float(raw), 3)


def test_last_resort_score_from_text() -> None:
    text = "I think the dive was good. Final score: 72.5 overall."
    result = parse_sar(text)
    assert result.assessment.score == 72.5 and C.SCORE_FROM_TEXT in result.codes
    assert parse_sar(text, strict=True).assessment.score is None


def test_bad_steps_are_dropped_with_a_problem() -> None:
    steps = [
        '<step label="ok" start="0" end="1">fine</step>',
        '<step label="rev" start="2" end="1">reversed</step>',
        '<step label="neg" start="-1" end="1">negative</step>',
        '<step label="nan" start="nan" end="1">nan</step>',
        '<step start="0" end="1">no label</step>',
        '<step label="" start="0" end="1">empty label</step>',
        '<step label="q" start="1" end="2" quality="inf">bad quality</step>',
        '<step label="x" start="1" end="2" extra="1">unknown attribute</step>',
        "<step label='sq' start='2' end='3'>single quotes</step>",
        '<step label="uq" start=3 end=4>unquoted</step>',
        '<step label="dup" label="d2" start="4" end="5">duplicate</step>',
        '<step label="self" start="5" end="6"/>',
    ]
    text = ("<recognition>\n<action>A</action>\n</recognition>\n<subactions>\n"
            + "\n".join(steps) + "\n</subactions>\n<scoring>\n<score>1</score>\n</scoring>")
    lenient = parse_sar(text)
    assert [s.label for s in lenient.assessment.steps] == [
        "ok", "q", "x", "sq", "uq", "dup", "self"]
    assert lenient.assessment.steps[1].quality is None
    assert lenient.step_tags == len(steps)
    assert {C.BAD_STEP_SPAN, C.NON_FINITE, C.BAD_ATTRIBUTES, C.SELF_CLOSING} <= lenient.codes
    strict = parse_sar(text, strict=True)
    assert [s.label for s in strict.assessment.steps] == ["ok"]
    assert not strict.blocks["subactions"].well_formed
    assert strict.blocks["recognition"].well_formed and strict.blocks["scoring"].well_formed


def test_steps_out_of_order_are_kept_in_their_order_and_reported() -> None:
    text = ("<recognition>\n<action>A</action>\n</recognition>\n<subactions>\n"
            '<step label="b" start="2" end="3">x</step>\n'
            '<step label="a" start="0" end="1">y</step>\n'
            "</subactions>\n<scoring>\n<score>1</score>\n</scoring>")
    for strict in (False, True):
        result = parse_sar(text, strict=strict)
        assert result.codes == {C.STEPS_OUT_OF_ORDER}
        assert [s.label for s in result.assessment.steps] == ["b", "a"]
        assert not result.blocks["subactions"].well_formed


def test_components() -> None:
    text = ("<recognition>\n<action>A</action>\n</recognition>\n<subactions>\n</subactions>\n"
            '<scoring>\nr\n<component name="difficulty">3.2</component>\n'
            '<component name="difficulty">9</component>\n'
            '<component name="execution">lots</component>\n<component>1</component>\n'
            "<score>86.4</score>\n</scoring>")
    result = parse_sar(text)
    assert {C.DUPLICATE_COMPONENT, C.BAD_NUMBER, C.BAD_ATTRIBUTES} <= result.codes
    assert result.assessment.components == {"difficulty": 3.2}


def test_scoring_layout() -> None:
    base = ("<recognition>\n<action>A</action>\n</recognition>\n<subactions>\n</subactions>\n"
            "<scoring>\n{body}\n</scoring>")
    good = base.format(body='why\n<component name="c">1</component>\n<score>2</score>')
    assert parse_sar(good, strict=True).ok
    after = base.format(body='<component name="c">1</component>\nbecause\n<score>2</score>')
    assert codes(after, strict=True) == {"stray_text"}
    late = base.format(body='<score>2</score>\n<component name="c">1</component>')
    assert codes(late, strict=True) == {"misplaced_tag"}
    # Lenient reading keeps all text as reasoning.
    assert parse_sar(after).assessment.scoring_reasoning == "because"


def test_text_after_action_and_between_steps() -> None:
    text = ("<recognition>\nwhy\n<action>A</action>\nmore\n</recognition>\n<subactions>\nchat\n"
            '<step label="a" start="0" end="1">x</step>\n</subactions>\n'
            "<scoring>\n<score>1</score>\n"
            "</scoring>")
    result = parse_sar(text, strict=True)
    assert result.codes == {C.STRAY_TEXT}
    assert result.assessment.recognition_reasoning == "why\nmore"
    assert len(result.assessment.steps) == 1


def test_attributes_on_plain_tags_and_tag_case() -> None:
    text = ('<recognition id="1">\n<Action>A</Action>\n</recognition>\n<subactions>\n'
            '</subactions>\n<scoring>\n<SCORE>3</SCORE>\n</scoring >')
    lenient = parse_sar(text)
    assert {C.BAD_ATTRIBUTES, C.TAG_CASE} <= lenient.codes
    assert lenient.assessment.action == "A" and lenient.assessment.score == 3
    strict = parse_sar(text, strict=True)
    assert strict.assessment.action is None and strict.assessment.score is None


def test_similar_tag_names_are_not_tags() -> None:
    text = render_sar(Assessment(action="A", score=1.0)).replace(
        "<scoring>\n", "<scoring>\n<scores>9</scores> <actions> <step-by-step>\n")
    result = parse_sar(text, strict=True)
    assert result.assessment.score == 1  # <scores>9</scores> is not a score
    # They are markup all the same: reported, and left out of the reasoning.
    assert result.codes == {C.STRAY_MARKUP} and not result.blocks["scoring"].well_formed
    assert result.assessment.scoring_reasoning == "9"


def test_entities_in_model_output_are_decoded_and_bare_ampersands_kept() -> None:
    text = render_sar(Assessment(action="A", score=1.0)).replace(
        "<recognition>\n", "<recognition>\nR&D &lt;ok&gt; &unknown;\n")
    result = parse_sar(text, strict=True)
    assert result.ok
    assert result.assessment.recognition_reasoning == "R&D <ok> &unknown;"


def test_problems_name_their_block_and_position(completion: str) -> None:
    text = completion.replace("<score>86.4</score>", "<score>nan</score>")
    (problem,) = parse_sar(text).problems
    assert problem.block == "scoring"
    assert text[problem.position:].startswith("<score>")
    assert "nan" in problem.message


def test_markup_never_reaches_a_field() -> None:
    # The web page showed this action for a real video: a tag missing its '>' was read as text.
    text = ('<action>\n<component name="reverse take-off" start="\n<step label="execution">'
            "</component>...")
    result = parse_sar(text)
    assert result.assessment.action is None and C.STRAY_MARKUP in result.codes
    assert "<" not in result.assessment.model_dump_json()


def test_values_end_at_markup_and_free_text_leaves_it_out() -> None:
    text = ("<recognition>\nGood <b>entry</b> here.\n<action>407C<br>junk</action>\n"
            "</recognition>\n<subactions>\n"
            '<step label="a" start="0" end="1">tight <em>tuck</em>.</step>\n'
            '<step label="b" start="1" end="2">fine</step>\n</subactions>\n<scoring>\n'
            "<think>hmm</think> so 86.4\n<component name=\"difficulty\">3.2<i>x</i></component>\n"
            "<score>86.4<!-- sure --></score>\n</scoring>")
    lenient = parse_sar(text)
    a = lenient.assessment
    assert a.recognition_reasoning == "Good entry here."
    assert a.action == "407C" and a.score == 86.4 and a.components == {"difficulty": 3.2}
    assert [s.analysis for s in a.steps] == ["tight tuck.", "fine"]
    assert a.scoring_reasoning == "hmm so 86.4"
    assert lenient.codes == {C.STRAY_MARKUP}
    messages = [p.message for p in lenient.problems]
    assert any("<action> ends where it starts" in m for m in messages)
    # Strict mode leaves out every element holding markup, and no block is well formed.
    strict = parse_sar(text, strict=True)
    assert strict.assessment.action is None and strict.assessment.score is None
    assert [s.label for s in strict.assessment.steps] == ["b"]
    assert not any(b.well_formed for b in strict.blocks.values())


def test_entities_are_not_made_across_markup() -> None:
    text = "<recognition>x&<b>lt;y, &lt;<i>b and R&amp;D</recognition>"
    assert parse_sar(text).assessment.recognition_reasoning == "x&lt;y, < b and R&D"


def test_a_tag_without_its_closing_bracket_is_markup() -> None:
    text = ("<recognition>\n<action>A</action>\n</recognition>\n<subactions>\n"
            '<step label="a" start="0" end="1"\n<step label="b" start="1" end="2">x</step>\n'
            "</subactions>\n<scoring>\n<score>5</score>\n</scoring>")
    result = parse_sar(text)
    assert [s.label for s in result.assessment.steps] == ["b"] and result.step_tags == 1
    assert result.codes == {C.STRAY_MARKUP}
    assert "has no closing '>'" in result.problems[0].message


def test_unclosed_element_stops_at_markup() -> None:
    text = "<recognition>\n<action>407C\n<think>x</think>\n</recognition>"
    result = parse_sar(text)
    assert result.assessment.action == "407C"
    # At the very end of the text, markup after the value shows the value was complete.
    assert parse_sar("<score>86.4<br").assessment.score == 86.4


def test_a_lone_less_than_sign_is_text_not_markup() -> None:
    text = render_sar(Assessment(action="A", score=1.0)).replace(
        "<scoring>\n", "<scoring>\nexecution < 8 and <3 points\n")
    result = parse_sar(text)
    assert result.assessment.scoring_reasoning == "execution < 8 and <3 points"
    assert C.STRAY_MARKUP not in result.codes


def test_score_from_text_ignores_broken_tags() -> None:
    # label="score" start="0" in a tag missing its '>' is markup, not words about the score.
    assert parse_sar('<step label="score" start="0" end="1"\n<b>').assessment.score is None
    text = '<step label="x" end="1"\n<b>the score is 7'
    assert parse_sar(text).assessment.score == 7


def test_max_chars_cuts_the_text_with_a_problem(completion: str) -> None:
    assert MAX_CHARS == 100_000
    assert parse_sar(completion, max_chars=len(completion), strict=True).ok
    cut_at = completion.index("<score>") + len("<score>86")
    result = parse_sar(completion, max_chars=cut_at)
    assert C.TOO_LONG in result.codes and result.assessment.score is None  # "86" may be cut
    (too_long,) = [p for p in result.problems if p.code == C.TOO_LONG]
    assert too_long.position == cut_at and str(cut_at) in too_long.message
    assert result.assessment.action == "407C"
    long = completion + "\n" + "x" * MAX_CHARS
    assert C.TOO_LONG in parse_sar(long).codes
    assert C.TOO_LONG not in parse_sar(long, max_chars=None).codes
    # Bytes are cut too, without splitting a character into a wrong one.
    data = ("\u00e9" * 50).encode()
    result = parse_sar(data, max_chars=10)
    assert C.TOO_LONG in result.codes and "\ufffd" not in result.problems[-1].message


def test_each_problem_code_is_listed_a_bounded_number_of_times() -> None:
    result = parse_sar("<b>x" * 1000, max_chars=None)
    markup = [p for p in result.problems if p.code == C.STRAY_MARKUP]
    assert len(markup) == MAX_PROBLEMS_PER_CODE + 1
    assert markup[-1].message.startswith(f"{1000 - MAX_PROBLEMS_PER_CODE} more stray_markup")
    assert markup[-1].position == 4 * MAX_PROBLEMS_PER_CODE
    # Markup with nothing between is one problem.
    (run,) = [p for p in parse_sar("<b>" * 1000).problems if p.code == C.STRAY_MARKUP]
    assert run.message.startswith("'<b><b><b>")


# --- work, not time ------------------------------------------------------------------------


def _work(run: Callable[[], object]) -> int:
    """Steps the interpreter takes in ``run()``: every Python line, call and return traced,
    plus every call of a built-in (a regex search, a str method). Deterministic, unlike a clock;
    the work done inside one built-in call is not counted (benchmarks/bench_parse.py times it)."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Callable:
        nonlocal count
        count += 1
        return tracer

    def profiler(frame: FrameType, event: str, arg: object) -> None:
        nonlocal count
        count += event == "c_call"

    old_trace, old_profile = sys.gettrace(), sys.getprofile()
    sys.settrace(tracer)
    sys.setprofile(profiler)
    try:
        run()
    finally:
        sys.settrace(old_trace)
        sys.setprofile(old_profile)
    return count


def _parse_work(text: str) -> int:
    return _work(lambda: (parse_sar(text, max_chars=None),
                          parse_sar(text, strict=True, max_chars=None)))


PATHOLOGICAL = [
    lambda n: "<" * n,
    lambda n: "<step" * (n // 5),
    lambda n: "<step " + "a" * n,
    lambda n: "<step label=\"" + "x" * n,
    lambda n: "<" + "a" * n,
    lambda n: "<score>" + "1" * n + "</score>",
    lambda n: "<score>" + " " * n + "x</score>",
    lambda n: "score " * (n // 6),
    lambda n: "&" * n,
    lambda n: '<step label="a" start="0" end="1">x</step>' * (n // 42),
    lambda n: "<recognition>" * (n // 13),
    lambda n: "<scoring><score>1</score></scoring>" * (n // 34),
    lambda n: "<step " + 'a="1" ' * (n // 6) + ">",
    lambda n: "<action>" * (n // 8),
    lambda n: "<score>" * (n // 7),
    lambda n: "<b>" * (n // 3),
    lambda n: "<b>x" * (n // 4),
    lambda n: "<recognition>\n" + "why <i>so</i> " * (n // 14) + "<action>A</action>",
]


@pytest.mark.parametrize("make", PATHOLOGICAL)
def test_work_grows_linearly_with_the_input(make: Callable[[int], str]) -> None:
    # 10x the input: linear work is at most about 10x (less with fixed costs), quadratic 100x.
    small, big = _parse_work(make(2_000)), _parse_work(make(20_000))
    assert big <= 12 * small, (small, big)


def test_work_counter_sees_a_quadratic_path() -> None:
    def quadratic(text: str) -> None:
        for i in range(len(text)):
            for _ in text[:i]:
                pass

    ratio = _work(lambda: quadratic("x" * 200)) / _work(lambda: quadratic("x" * 20))
    assert ratio > 50
