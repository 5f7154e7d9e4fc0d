"""SFT targets: true values, strict-valid text, seeded and varied phrasing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hieroaction.data.records import Record
from hieroaction.domains import builtin_domain_names
from hieroaction.errors import ConfigError, DataError
from hieroaction.sar import parse_sar
from hieroaction.sar.assessment import normalise_label
from hieroaction.sar.targets import (
    TargetConfig,
    build_target,
    frames_to_seconds,
    load_phrases,
    target_assessment,
)
from tests.sar.fixtures import fixture_records

CONFIG = TargetConfig(default_fps=25.0)


@pytest.mark.parametrize("record", fixture_records(), ids=lambda r: r.id)
def test_target_is_strictly_valid_and_carries_the_truth(record: Record) -> None:
    text = build_target(record, CONFIG)
    result = parse_sar(text, strict=True)
    assert result.ok, result.problems
    a = result.assessment
    assert a == target_assessment(record, CONFIG)
    assert a.action == record.action.label
    assert a.score == round(record.score.final, 3)
    assert a.components == {k: round(v, 3) for k, v in record.score.components.items()}
    fps = record.video.fps or CONFIG.default_fps
    truth = sorted(record.steps, key=lambda s: s.start_frame)
    assert [s.label for s in a.steps] == [s.label for s in truth]
    for got, want in zip(a.steps, truth):
        assert got.start == round(want.start_frame / fps, 3)
        assert got.end == round((want.end_frame + 1) / fps, 3)
        assert got.quality == want.score
        assert got.analysis  # every step has its analysis text
    assert a.recognition_reasoning and a.scoring_reasoning
    assert "{" not in text and "}" not in text  # every phrase field was filled


def test_frames_to_seconds_is_half_open() -> None:
    assert frames_to_seconds(0, 24, 25.0) == (0.0, 1.0)
    assert frames_to_seconds(25, 25, 25.0) == (1.0, 1.04)  # one frame lasts 1 / fps
    with pytest.raises(ValueError):
        frames_to_seconds(0, 1, 0.0)


def test_consecutive_steps_meet() -> None:
    record = fixture_records()[0]
    steps = target_assessment(record, CONFIG).steps
    assert all(a.end == b.start for a, b in zip(steps, steps[1:]))
    assert steps[-1].end == record.video.num_frames / CONFIG.default_fps


def test_record_fps_wins_over_the_default() -> None:
    record = fixture_records()[-1]  # synth, 12 fps
    steps = target_assessment(record, TargetConfig(default_fps=1000.0)).steps
    assert steps[-1].end == 4.0


def test_steps_are_written_in_temporal_order() -> None:
    record = next(r for r in fixture_records() if r.dataset == "finefs")
    assert [s.start_frame for s in record.steps] != sorted(s.start_frame for s in record.steps)
    starts = [s.start for s in target_assessment(record, CONFIG).steps]
    assert starts == sorted(starts)


def test_same_seed_same_text_other_seeds_vary() -> None:
    for record in fixture_records():
        texts = {build_target(record, TargetConfig(default_fps=25.0, seed=s)) for s in range(12)}
        assert build_target(record, CONFIG) == build_target(record, CONFIG)
        assert len(texts) >= 3, record.id


def test_records_with_the_same_truth_read_differently() -> None:
    base = fixture_records()[0]
    texts = {build_target(base.model_copy(update={"id": f"dive-{i}"}), CONFIG) for i in range(10)}
    assert len(texts) >= 5
    parsed = [parse_sar(t).assessment for t in texts]
    assert len({(a.action, a.score, tuple(a.components.items()), tuple(a.steps[i].end
                 for i in range(len(a.steps)))) for a in parsed}) == 1


def test_commentary_is_quoted_and_can_be_left_out() -> None:
    record = next(r for r in fixture_records() if r.dataset == "mtlaqa")
    a = parse_sar(build_target(record, CONFIG), strict=True).assessment
    assert record.commentary in a.scoring_reasoning  # escaped in the text, exact when read
    off = target_assessment(record, TargetConfig(include_commentary=False))
    assert "rip" not in off.scoring_reasoning


def test_formula_is_only_stated_when_it_holds() -> None:
    good, bad = fixture_records()[:2]
    texts = [target_assessment(good, TargetConfig(default_fps=25.0, seed=s)).scoring_reasoning
             for s in range(10)]
    assert all("3.2 x 24.3 = 77.76" in t for t in texts)
    for seed in range(10):
        text = target_assessment(bad, TargetConfig(default_fps=25.0, seed=seed)).scoring_reasoning
        assert " = " not in text  # 3 x 21.5 is 64.5, not the stored 61.05
        assert "61.05" in text


def test_diving_attributes_are_described() -> None:
    record = fixture_records()[0]  # 5253B: back, 2.5 somersaults, 1.5 twists, pike
    texts = [target_assessment(record, TargetConfig(default_fps=25.0, seed=s)).recognition_reasoning
             for s in range(6)]
    assert all("2.5" in t and "1.5" in t and "pike" in t for t in texts)


def test_records_that_cannot_become_targets() -> None:
    record = fixture_records()[0]
    with pytest.raises(DataError, match="no video.fps"):
        target_assessment(record, TargetConfig())
    no_score = Record(id="x", domain="generic")
    with pytest.raises(DataError, match="no final score"):
        target_assessment(no_score)
    # With components the domain formula can combine, the score follows from them.
    from_components = Record.model_validate(
        {"id": "y", "domain": "figure_skating",
         "score": {"components": {"tes": 40.0, "pcs": 30.0, "deductions": 2.0}}})
    assert target_assessment(from_components).score == 68.0
    huge = Record.model_validate({"id": "z", "score": {"final": 1.0,
                                                       "components": {"a": float("inf")}}})
    with pytest.raises(DataError, match="'z'"):
        target_assessment(huge)


def test_custom_phrases(tmp_path: Path) -> None:
    path = tmp_path / "phrases.yaml"
    path.write_text(
        "recognition:\n  opening: ['Custom opening about {label}.', 'Needs {unknown_field}.']\n"
        "scoring:\n  final: ['Final answer {score}.']\n"
        "domains:\n  diving:\n    scoring:\n      final: ['Diving total {score}.']\n",
        encoding="utf-8",
    )
    config = TargetConfig(default_fps=25.0, phrases=str(path))
    record = fixture_records()[0]
    a = target_assessment(record, config)
    assert a.recognition_reasoning == "Custom opening about 5253B."  # other slots are empty
    assert a.scoring_reasoning == "Diving total 77.76."
    user = next(r for r in fixture_records() if r.id == "c1")
    assert target_assessment(user, config).scoring_reasoning == "Final answer 7.25."


@pytest.mark.parametrize(
    "content",
    ["- a list", "recognition: {opening: 'not a list'}", "nonsense: {x: []}",
     "recognition: {closing: ['x']}", "scoring: {final: ['{score']}",
     "scoring: {final: ['{score.real}']}", "recognition: [unclosed"],
)
def test_bad_phrase_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_phrases(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_phrases(str(tmp_path / "missing.yaml"))


def test_builtin_phrases_load() -> None:
    phrases = load_phrases()
    assert phrases.pool("diving", "recognition", "attributes")
    assert phrases.pool("generic", "recognition", "attributes") == []
    assert phrases.pool("diving", "step", "analysis") == phrases.pool("synth", "step", "analysis")


_names = st.text(min_size=1, max_size=12).filter(lambda s: s.split() != [])
_values = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@st.composite
def _records(draw: st.DrawFn) -> Record:
    spans = draw(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 300)), max_size=6))
    return Record.model_validate({
        "id": draw(_names),
        "domain": draw(st.sampled_from(builtin_domain_names())),
        "video": {"fps": draw(st.none() | st.floats(min_value=1.0, max_value=240.0))},
        "action": {"label": draw(st.none() | st.text(max_size=15)),
                   "attributes": draw(st.dictionaries(st.sampled_from(
                       ["group", "position", "somersaults", "twists", "event"]),
                       st.text(max_size=8) | _values | st.booleans(), max_size=4))},
        "steps": [{"label": draw(_names), "start_frame": s, "end_frame": s + n,
                   "score": draw(st.none() | _values)} for s, n in spans],
        "score": {"final": draw(_values),
                  "components": draw(st.dictionaries(_names, _values, max_size=4)),
                  "judges": draw(st.lists(_values, max_size=7))},
        "commentary": draw(st.none() | st.text(max_size=80)),
    })


@settings(max_examples=150, deadline=None)
@given(_records(), st.integers(0, 10**9))
def test_every_target_is_strictly_valid(record: Record, seed: int) -> None:
    components = {normalise_label(k) for k in record.score.components}
    assume(len(components) == len(record.score.components))  # names equal after normalising
    text = build_target(record, TargetConfig(seed=seed, default_fps=30.0))
    result = parse_sar(text, strict=True)
    assert result.ok, (text, result.problems)
    assert result.assessment == target_assessment(record, TargetConfig(seed=seed,
                                                                       default_fps=30.0))
    assert len(result.assessment.steps) == len(record.steps)
