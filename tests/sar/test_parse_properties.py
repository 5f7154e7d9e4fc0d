"""Property tests: parse_sar never raises, reads back what render_sar writes, and degrades
gracefully on random and mutated completions."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hieroaction.sar import Assessment, ParseResult, ProblemCode, StepAssessment, parse_sar
from hieroaction.sar.assessment import MAX_ABS, normalise_label
from hieroaction.sar.render import render_sar
from tests.sar.fixtures import example_assessment

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that make random text look like (broken) completions.
FRAGMENTS = [
    "<recognition>", "</recognition>", "<subactions>", "</subactions>", "<scoring>",
    "</scoring>", "<action>", "</action>", "<score>", "</score>", "</step>", "<step ",
    '<step label="a" start="0" end="1">', '<step label="b" start="1" end="0.5" quality="x">',
    '<component name="difficulty">', "</component>", "<component>", "<Score>", "<score/>",
    'label="', 'start="', '"', "'", "=", ">", "<", "/", "&", "&amp;", "&lt;", "&quot;", "\n",
    " ", "3.2", "-1", "nan", "inf", "1e999", "9" * 80, "score: 7", "\u00e9\u4e2d\U0001f600",
    "\x00", "\r\n", "\u2028",
]
completion_like = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=60
).map("".join)


def check_ok(text: object, result: ParseResult) -> None:
    """``ok`` means the completion is exactly in the format: then every block is there once,
    well formed and in order, nothing was dropped or guessed, and writing the assessment back
    gives a completion that is ok too, with the same values. And a completion written by
    render_sar (with a score and its steps in order) is ok."""
    a = result.assessment
    if result.ok:
        assert result.in_order
        assert all(b.count == 1 and b.closed and b.well_formed for b in result.blocks.values())
        assert a.score is not None and result.step_tags == len(a.steps)
        assert all(x.start <= y.start for x, y in zip(a.steps, a.steps[1:]))
        again = parse_sar(render_sar(a), strict=True)
        assert again.ok and again.assessment == a
    ordered = all(x.start <= y.start for x, y in zip(a.steps, a.steps[1:]))
    if isinstance(text, str) and text.strip() == render_sar(a) and a.score is not None:
        assert result.ok == ordered


def check_invariants(text: object) -> tuple[ParseResult, ParseResult]:
    """What must hold for any input, in both modes."""
    lenient, strict = parse_sar(text), parse_sar(text, strict=True)
    for result in (lenient, strict):
        assert isinstance(result, ParseResult)
        assert ProblemCode.PARSER_ERROR not in result.codes, result.problems
        assert set(result.blocks) == {"recognition", "subactions", "scoring"}
        check_ok(text, result)
        a = result.assessment
        # Whatever was read is a valid assessment (finite, in range, ordered spans).
        assert Assessment.model_validate(a.model_dump()) == a
        assert a.score is None or abs(a.score) <= MAX_ABS
        for name, block in result.blocks.items():
            if block.well_formed:
                assert block.count == 1 and block.closed
                assert not any(p.block == name for p in result.problems)
    # Strict mode finds the same problems (less the lenient fall-backs) and reads a subset.
    assert strict.codes <= lenient.codes
    assert strict.ok == lenient.ok
    if strict.ok:  # exactly in the format: nothing for the lenient reading to add
        assert strict.assessment == lenient.assessment
    s, le = strict.assessment, lenient.assessment
    assert s.action is None or s.action == le.action
    assert s.score is None or s.score == le.score
    assert all(le.components.get(k) == v for k, v in s.components.items())
    it = iter(le.steps)
    assert all(any(step == other for other in it) for step in s.steps)  # a subsequence
    return lenient, strict


@FAST
@given(st.text(max_size=300))
def test_random_text_never_raises(text: str) -> None:
    check_invariants(text)


@FAST
@given(completion_like)
def test_completion_like_text_never_raises(text: str) -> None:
    check_invariants(text)


# --- no markup in any field -------------------------------------------------------------

# Markup as a browser or an XML reader would see it: '<' then a letter, '/' and a letter, '!' or
# '?'. (A lone '<', as in "a < b", is not markup.)
TAG_LIKE = re.compile(r"<(?:/?[A-Za-z]|[!?])")
MARKUP_FRAGMENTS = [
    "<recognition>", "</recognition>", "<subactions>", "</subactions>", "<scoring>",
    "</scoring>", "<action>", "</action>", "<score>", "</score>", "<step", "<step ", "</step>",
    '<step label="a" start="0" end="1">', '<step label="x" start="0" end="1"',
    '<component name="reverse take-off" start="', '<component name="difficulty">',
    "<component", "</component>", "<Score>", "<score/>", "<scores>", "<b>", "</b>", "<think>",
    "</think>", "<br/>", "<!--", "-->", "<?xml", "<!DOCTYPE x>", "</", "<", ">", "/", '"', "'",
    "=", " ", "\n", "label=", 'name="', "3.2", "86.4", "score: 7", "x", "Entry", "a<b",
]
# Text without '&', so that no '<' can come from an entity (&lt; is how a field holds '<').
markup_mixture = st.lists(
    st.one_of(
        st.sampled_from(MARKUP_FRAGMENTS),
        st.text(st.characters(blacklist_characters="&"), max_size=6),
    ),
    max_size=40,
).map("".join)


def fields(a: Assessment) -> list[str]:
    """Every text an assessment holds."""
    out = [a.recognition_reasoning, a.action or "", a.scoring_reasoning, *a.components]
    for step in a.steps:
        out += [step.label, step.analysis]
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markup_mixture)
@example('<action>\n<component name="reverse take-off" start="\n<step label="execution">'
         "</component>...")
def test_no_field_holds_markup(text: str) -> None:
    lenient, strict = check_invariants(text)
    for result in (lenient, strict):
        for value in fields(result.assessment):
            assert not TAG_LIKE.search(value), (value, text)


@FAST
@given(st.binary(max_size=200))
def test_bytes_never_raise(data: bytes) -> None:
    check_invariants(data)


# --- round trip ----------------------------------------------------------------------------

labels = st.text(min_size=1, max_size=20).filter(lambda s: normalise_label(s) != "")
numbers = st.floats(min_value=-MAX_ABS, max_value=MAX_ABS, allow_nan=False)
times = st.floats(min_value=0, max_value=1e5, allow_nan=False)


@st.composite
def steps(draw: st.DrawFn) -> StepAssessment:
    a, b = draw(times), draw(times)
    return StepAssessment(
        label=draw(labels), start=min(a, b), end=max(a, b),
        quality=draw(st.none() | numbers), analysis=draw(st.text(max_size=40)),
    )


@st.composite
def assessments(draw: st.DrawFn) -> Assessment:
    names = draw(st.lists(labels, max_size=4, unique_by=normalise_label))
    return Assessment(
        recognition_reasoning=draw(st.text(max_size=60)),
        action=draw(st.none() | labels),
        steps=draw(st.lists(steps(), max_size=5)),
        scoring_reasoning=draw(st.text(max_size=60)),
        components={n: draw(numbers) for n in names},
        score=draw(st.none() | numbers),
    )


@FAST
@given(assessments())
# found by CI: a step labelled "SCORE" whose start="0" was read as a score from the words
@example(Assessment(steps=[StepAssessment(label="0", start=0.0, end=0.0),
                           StepAssessment(label="SCORE", start=0.0, end=0.0)]))
def test_parse_render_round_trip(a: Assessment) -> None:
    text = render_sar(a)
    lenient, strict = check_invariants(text)
    assert lenient.assessment == a
    assert strict.assessment == a
    ordered = all(x.start <= y.start for x, y in zip(a.steps, a.steps[1:]))
    assert strict.ok == (ordered and a.score is not None)
    if ordered and a.score is not None:
        assert all(b.well_formed for b in strict.blocks.values())


# --- mutations of one valid completion --------------------------------------------------

EXAMPLE = example_assessment()
TEXT = render_sar(EXAMPLE)


def test_truncation_at_every_position() -> None:
    """A cut-off answer never yields a value the full answer does not have."""
    for cut in range(len(TEXT) + 1):
        lenient, _ = check_invariants(TEXT[:cut])
        a = lenient.assessment
        assert a.action in (None, EXAMPLE.action), cut
        assert a.score in (None, EXAMPLE.score), cut
        assert all(EXAMPLE.components[k] == v for k, v in a.components.items()), cut
        assert EXAMPLE.recognition_reasoning.startswith(a.recognition_reasoning), cut
        assert EXAMPLE.scoring_reasoning.startswith(a.scoring_reasoning), cut
        assert len(a.steps) <= len(EXAMPLE.steps), cut
        for got, want in zip(a.steps, EXAMPLE.steps):
            assert (got.label, got.start, got.end, got.quality) == (
                want.label, want.start, want.end, want.quality), cut
            assert want.analysis.startswith(got.analysis), cut
        if cut < len(TEXT):
            assert not lenient.ok, cut
    assert parse_sar(TEXT, strict=True).ok


@FAST
@given(st.integers(0, len(TEXT)), st.sampled_from(FRAGMENTS) | st.text(max_size=10))
def test_insertions(at: int, piece: str) -> None:
    check_invariants(TEXT[:at] + piece + TEXT[at:])


@FAST
@given(st.integers(0, len(TEXT)), st.integers(1, 40))
def test_deletions(at: int, length: int) -> None:
    check_invariants(TEXT[:at] + TEXT[at + length:])


@FAST
@given(st.lists(st.integers(0, 2), min_size=1, max_size=6))
def test_repeated_and_reordered_blocks(order: list[int]) -> None:
    blocks = [TEXT[: TEXT.index("<subactions>")],
              TEXT[TEXT.index("<subactions>"): TEXT.index("<scoring>")],
              TEXT[TEXT.index("<scoring>"):] + "\n"]
    lenient, strict = check_invariants("".join(blocks[i] for i in order))
    assert strict.ok == (order == [0, 1, 2])
    # The first copy of each block present is always read in full, whatever the order.
    if 0 in order:
        assert lenient.assessment.action == EXAMPLE.action
    if 1 in order:
        assert lenient.assessment.steps == EXAMPLE.steps
    if 2 in order:
        assert lenient.assessment.score == EXAMPLE.score


@FAST
@given(st.permutations(range(3)))
def test_steps_out_of_order(perm: list[int]) -> None:
    lines = TEXT.split("\n")
    at = [i for i, line in enumerate(lines) if line.startswith("<step ")]
    shuffled = [lines[at[p]] for p in perm]
    for i, line in zip(at, shuffled):
        lines[i] = line
    result = parse_sar("\n".join(lines), strict=True)
    assert [s.label for s in result.assessment.steps] == [EXAMPLE.steps[p].label for p in perm]
    sorted_ = list(perm) == sorted(perm)
    assert (ProblemCode.STEPS_OUT_OF_ORDER in result.codes) == (not sorted_)
    assert result.blocks["subactions"].well_formed == sorted_


@FAST
@given(st.sampled_from(["nan", "inf", "-inf", "1e309", "1" * 400, "1e7", "-1e7", "0x10"]))
def test_non_finite_and_huge_numbers_are_problems(raw: str) -> None:
    for old, new in (('start="0.84"', 'start="{}"'), ('quality="8.5"', 'quality="{}"'),
                     (">3.2<", ">{}<"), (">86.4<", ">{}<")):
        text = TEXT.replace(old, new.format(raw), 1)
        assert text != TEXT
        lenient, strict = check_invariants(text)
        assert not strict.ok
        values = [lenient.assessment.score, *lenient.assessment.components.values()]
        values += [x for s in lenient.assessment.steps for x in (s.start, s.end, s.quality)]
        assert all(v is None or abs(v) <= MAX_ABS for v in values)
