"""Prompts: built from per-domain data, never from a record's ground truth."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from hieroaction.data.records import Record
from hieroaction.domains import Domain, builtin_domain_names, get_domain
from hieroaction.errors import ConfigError
from hieroaction.prompts import (
    ClipInfo,
    PromptConfig,
    assistant_message,
    build_prompt,
    builtin_template_names,
    render_prompt,
)
from hieroaction.sar import parse_sar
from hieroaction.sar.markup import format_number
from tests.sar.fixtures import fixture_records

CLIP = ClipInfo((0.0, 0.5, 1.25, 2.0), duration=2.4)
# Labels a domain's template names as its vocabulary (the domain file has no list of them).
TEMPLATE_VOCABULARY = {"surgical": {"Suturing", "Knot_Tying", "Needle_Passing"}}


def test_every_builtin_domain_has_a_template() -> None:
    assert set(builtin_domain_names()) <= set(builtin_template_names())


@pytest.mark.parametrize("name", builtin_domain_names())
def test_prompt_for_each_domain(name: str) -> None:
    domain = get_domain(name)
    messages = build_prompt(name, CLIP)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == [{"type": "text", "text": messages[0]["content"][0]["text"]}]
    assert messages[1]["content"][0] == {"type": "video"}
    assert messages[1]["content"][1]["type"] == "text"
    system, user = messages[0]["content"][0]["text"], messages[1]["content"][1]["text"]
    assert domain.description in system
    for component in domain.components:
        assert f'<component name="{component}">NUMBER</component>' in system
    if domain.score_range:
        low, high = (format_number(x) for x in domain.score_range)
        assert f"between {low} and {high}" in system
    if domain.action_labels:
        assert ", ".join(domain.action_labels) in system
    if domain.step_labels:
        assert ", ".join(domain.step_labels) in system
    assert "0, 0.5, 1.25, 2" in user and "4 frames" in user and "2.4 seconds" in user
    assert "{" not in system + user and "}" not in system + user  # every field was filled
    assert "\n\n\n" not in system
    # The skeleton inside the prompt has the format's layout.
    start = system.index("<recognition>\n")
    end = system.index("</scoring>") + len("</scoring>")
    skeleton = parse_sar(system[start:end], strict=True)
    assert all(b.count == 1 and b.closed for b in skeleton.blocks.values())


def test_domain_rules_are_stated() -> None:
    assert "DD x execution" in render_prompt("diving")[0]
    assert "DD x execution x 0.6" in render_prompt("diving_sync")[0]
    assert "tes + pcs - deductions" in render_prompt("figure_skating")[0]
    surgical = render_prompt("surgical")[0]
    assert "between 1 and 5" in surgical and "respect_for_tissue" in surgical
    synth = render_prompt("synth")[0]
    assert 'quality="NUMBER"' in synth and "(0 to 10)" in synth
    assert 'quality="NUMBER"' not in render_prompt("diving")[0]


def test_empty_sections_vanish() -> None:
    system, user = render_prompt("generic")
    assert "lies between" not in system and "<component" not in system
    assert "one of:" not in system
    assert user == "Assess the action in this clip and give its quality score."


def _strip_truth(record: Record) -> Record:
    return Record(id=record.id, dataset=record.dataset, domain=record.domain,
                  split=record.split, video=record.video)


@pytest.mark.parametrize("record", fixture_records(), ids=lambda r: r.id)
def test_ground_truth_never_reaches_the_prompt(record: Record) -> None:
    messages = build_prompt(record, CLIP)
    assert messages == build_prompt(_strip_truth(record), CLIP)
    text = messages[0]["content"][0]["text"] + messages[1]["content"][1]["text"]
    domain = get_domain(record.domain)
    if record.commentary:
        assert record.commentary not in text
    assert format_number(round(record.score.final, 3)) not in text.replace("\n", " ")
    vocabulary = {*domain.action_labels, *domain.step_labels,
                  *TEMPLATE_VOCABULARY.get(domain.name, ())}
    labels = [record.action.label, *(s.label for s in record.steps)]
    for label in labels:
        if label and label not in vocabulary:
            assert not re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text), label


def test_clip_information_in_several_shapes() -> None:
    expected = render_prompt("diving", CLIP)[1]
    mapping = {"timestamps": [0, 0.5, 1.25, 2], "duration": 2.4}
    assert render_prompt("diving", mapping)[1] == expected
    assert render_prompt("diving", SimpleNamespace(timestamps=[0, 0.5, 1.25, 2],
                                                   duration=2.4))[1] == expected
    only_times = render_prompt("diving", [0, 0.5, 1.25, 2])[1]
    assert "4 frames" in only_times and "lasts" not in only_times
    quiet = render_prompt("diving", CLIP, PromptConfig(include_timestamps=False))[1]
    assert "0.5" not in quiet and "4 frames" not in quiet and "2.4 seconds" in quiet
    with pytest.raises(ConfigError, match="timestamps"):
        render_prompt("diving", ["a", "b"])
    assert ClipInfo.evenly_spaced(4, 2.0).timestamps == (0.0, 0.5, 1.0, 1.5)
    with pytest.raises(ConfigError):
        ClipInfo.evenly_spaced(0, 2.0)


def test_vocabulary_can_be_left_out() -> None:
    system = render_prompt("synth", config=PromptConfig(include_vocabulary=False))[0]
    assert "inward-2-head" not in system
    assert "inward-2-head" in render_prompt("synth")[0]


def test_video_and_assistant_turn() -> None:
    frames = object()
    messages = build_prompt("generic", CLIP, video=frames)
    assert messages[1]["content"][0] == {"type": "video", "video": frames}
    turn = assistant_message("<recognition>...")
    assert turn == {"role": "assistant", "content": [{"type": "text", "text": "<recognition>..."}]}


def test_a_domain_without_a_template_gets_the_base_prompt() -> None:
    domain = Domain.from_mapping({
        "name": "gymnastics_vault", "description": "Gymnastics vaults.",
        "score_range": [0, 20], "components": ["d_score", "e_score"],
        "formula": {"kind": "signed_sum", "plus": ["d_score", "e_score"]},
        "action_labels": ["Yurchenko", "Handspring"],
    })
    system, user = render_prompt(domain, CLIP)
    assert "Gymnastics vaults." in system and "Yurchenko, Handspring" in system
    assert '<component name="e_score">NUMBER</component>' in system
    assert "gymnastics vault action" in user


def test_user_template_overrides_keys(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "task: 'Judge this {domain_title} with care{extra_note}.'\n"
        "optional:\n  extra_note: ' ({score_high} is perfect)'\n"
        "role: 'You are a strict judge.'\n",
        encoding="utf-8",
    )
    system, user = render_prompt("diving", CLIP, PromptConfig(template=str(path)))
    assert system.startswith("You are a strict judge.")
    assert "Judge this diving with care (125 is perfect)." in user
    assert "DD x execution" in system  # the domain's other keys are kept
    generic = render_prompt("generic", None, PromptConfig(template=str(path)))[1]
    assert generic == "Judge this generic with care."  # no score range: the note vanishes


@pytest.mark.parametrize(
    ("content", "match"),
    [("task: '{no_such_field}'", "unknown field"),
     ("task: '{score_high'", "bad braces"),
     ("task: '{domain.name}'", "plain field name"),
     ("task: '{a}'\na: '{b}'\nb: '{a}'", "loop"),
     ("- a list", "mapping"),
     ("task: [1, 2]", "must be a text"),
     ("optional: [x]", "optional"),
     ("skeleton_step_quality: maybe", "true or false"),
     ("task: 'x\n", "YAML")],
)
def test_bad_user_templates(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        render_prompt("diving", CLIP, PromptConfig(template=str(path)))


def test_missing_template_file_and_unknown_domain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        render_prompt("diving", None, PromptConfig(template=str(tmp_path / "none.yaml")))
    with pytest.raises(ConfigError, match="unknown domain"):
        render_prompt("quidditch")
    with pytest.raises(ConfigError, match="record, a domain"):
        render_prompt(3)  # type: ignore[arg-type]


def test_an_edited_template_file_is_read_again(tmp_path: Path) -> None:
    # The file is parsed once while unchanged (a prompt is built per example), not for ever.
    path = tmp_path / "mine.yaml"
    path.write_text("role: 'You are a strict judge.'\n", encoding="utf-8")
    assert render_prompt("diving", CLIP, PromptConfig(template=str(path)))[0].startswith("You are a strict judge.")
    path.write_text("role: 'You are a lenient judge, kind to all.'\n", encoding="utf-8")
    assert render_prompt("diving", CLIP, PromptConfig(template=str(path)))[0].startswith("You are a lenient judge")
    path.write_text("role: [1]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a text"):
        render_prompt("diving", CLIP, PromptConfig(template=str(path)))
