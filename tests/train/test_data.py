"""The shared training-data layer: examples, labels, prompt inputs and bad records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hieroaction.config import config_from_dict
from hieroaction.errors import ConfigError, DataError
from hieroaction.models import load_model_and_processor
from hieroaction.train.data import (
    IGNORE_INDEX,
    DataConfig,
    SupervisedCollator,
    SupervisedDataset,
    encode_prompt,
    encode_supervised,
    load_examples,
)
from tests.train.conftest import FRAME_OVERRIDES, QWEN3_FRAME_OVERRIDES


def _config(records: Path, cache: Path, family: str = "qwen2_5_vl", **extra) -> DataConfig:
    frames = QWEN3_FRAME_OVERRIDES if family == "qwen3_vl" else FRAME_OVERRIDES
    return config_from_dict(
        DataConfig,
        {"records": str(records), "cache_dir": str(cache), "max_train_samples": 2, "frames": dict(frames), **extra},
    )


@pytest.fixture(scope="module")
def processors(tiny_models):
    out = {}
    for family, path in tiny_models.items():
        model, processor = load_model_and_processor(path)
        out[family] = (model, processor)
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_labels_cover_only_the_answer_and_its_end_of_turn(family, processors, synth_data, frame_cache):
    model, processor = processors[family]
    config = _config(synth_data, frame_cache, family)
    processor.video = processor.video.for_frames(config.frames)
    example = load_examples(config, progress=False)["train"][0]
    enc = encode_supervised(processor, example)
    ids, labels = enc["input_ids"][0], enc["labels"][0]
    learned = labels != IGNORE_INDEX
    # Exactly one contiguous run of learned labels, at the end of the prompt.
    prompt = encode_prompt(processor, example)["input_ids"][0]
    assert torch.equal(ids[: len(prompt)], prompt)
    assert not learned[: len(prompt)].any()
    assert torch.equal(labels[learned], ids[learned])
    positions = learned.nonzero().flatten()
    assert positions[0] == len(prompt) and torch.all(positions.diff() == 1)
    text = processor.tokenizer.decode(ids[learned], skip_special_tokens=False)
    assert text == example.target + "<|im_end|>"
    # Everything after the end-of-turn token (the template's newline) is ignored.
    assert int(positions[-1]) < len(ids) - 1
    # The video tokens are all in the prompt, none of them learned.
    video = enc["mm_token_type_ids"][0] == 2
    assert video.sum() == processor.family.num_video_tokens(tuple(enc["video_grid_thw"][0].tolist()))
    assert not (video & learned).any()
    assert model(**enc).loss.isfinite()


def test_prompt_inputs_end_with_the_assistant_header(processors, synth_data, frame_cache):
    _, processor = processors["qwen2_5_vl"]
    config = _config(synth_data, frame_cache)
    processor.video = processor.video.for_frames(config.frames)
    example = load_examples(config, targets=False, progress=False)["train"][1]
    assert example.target is None
    enc = encode_prompt(processor, example)
    assert processor.tokenizer.decode(enc["input_ids"][0]).endswith("<|im_start|>assistant\n")
    assert enc["pixel_values_videos"].shape[0] == int(enc["video_grid_thw"].prod())
    # The prompt tells the model the times of the frames it is given.
    times = ", ".join(f"{t:g}" for t in np.round(example.clip.timestamps, 3))
    assert times in example.messages[1]["content"][1]["text"]


def test_examples_come_from_the_cache_without_decoding(synth_data, frame_cache, monkeypatch):
    config = _config(synth_data, frame_cache)
    load_examples(config, progress=False)  # fills the cache

    import hieroaction.video.cache as cache_module

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached clip was decoded again")

    monkeypatch.setattr(cache_module, "read_clip", no_decoding)
    examples = load_examples(config, progress=False)["train"]
    assert examples[0].clip.frames.shape == (4, 56, 56, 3)
    assert examples.ids == [json.loads(line)["id"] for line in _lines(synth_data) if json.loads(line)["split"] == "train"][:2]


def test_collator_pads_right_and_keeps_every_video(processors, synth_data, frame_cache):
    _, processor = processors["qwen2_5_vl"]
    config = _config(synth_data, frame_cache)
    processor.video = processor.video.for_frames(config.frames)
    dataset = SupervisedDataset(load_examples(config, progress=False)["train"], processor)
    items = [dataset[0], dataset[1]]
    batch = SupervisedCollator(pad_token_id=0)(items)
    lengths = [int(i["input_ids"].shape[1]) for i in items]
    assert batch["input_ids"].shape == (2, max(lengths))
    short = int(np.argmin(lengths))
    assert (batch["labels"][short, min(lengths):] == IGNORE_INDEX).all()
    assert (batch["attention_mask"][short, min(lengths):] == 0).all()
    assert batch["pixel_values_videos"].shape[0] == sum(i["pixel_values_videos"].shape[0] for i in items)
    assert batch["example_index"].tolist() == [0, 1]


def test_kept_encodings_equal_fresh_ones(processors, synth_data, frame_cache):
    _, processor = processors["qwen2_5_vl"]
    config = _config(synth_data, frame_cache)
    processor.video = processor.video.for_frames(config.frames)
    examples = load_examples(config, progress=False)["train"]
    fresh = SupervisedDataset(examples, processor)
    kept = SupervisedDataset(examples, processor, keep_encoded=True)
    first = [kept[0], kept[1]]
    collator = SupervisedCollator(pad_token_id=0)
    collator(first)
    again = [kept[0], kept[1]]
    assert again[0]["input_ids"] is first[0]["input_ids"]  # held, not encoded again
    for batch in (collator(first), collator(again)):
        expected = collator([fresh[0], fresh[1]])
        assert batch.keys() == expected.keys()
        for key in expected:
            assert torch.equal(batch[key], expected[key]), key
    again[0]["input_ids"] = None  # what a caller does to its item does not reach the kept one
    assert kept[0]["input_ids"] is not None


def test_unreadable_line_stops_with_file_and_line(synth_data, frame_cache, tmp_path):
    lines = _lines(synth_data)
    bad = _write(tmp_path / "bad.jsonl", lines[:2] + ['{"id": "x", "dataset": '] + lines[2:])
    with pytest.raises(DataError) as info:
        load_examples(_config(bad, frame_cache), progress=False)
    message = str(info.value)
    assert f"{bad}:3:" in message and "not valid JSON" in message and "\n" not in message


def test_record_without_a_score_is_named_with_its_line(synth_data, frame_cache, tmp_path):
    rows = [json.loads(line) for line in _lines(synth_data)]
    first_train = next(i for i, r in enumerate(rows) if r["split"] == "train")
    rows[first_train]["score"] = {"final": None, "components": {}, "judges": [], "range": None}
    bad = _write(tmp_path / "noscore.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(DataError) as info:
        load_examples(_config(bad, frame_cache), progress=False)
    message = str(info.value)
    assert f"{bad}:{first_train + 1}: record {rows[first_train]['id']!r}" in message
    assert "final score" in message and "\n" not in message


def test_missing_video_is_named_before_training(synth_data, frame_cache, tmp_path):
    rows = [json.loads(line) for line in _lines(synth_data)]
    first_train = next(i for i, r in enumerate(rows) if r["split"] == "train")
    rows[first_train]["video"]["path"] = str(tmp_path / "gone.mp4")
    bad = _write(tmp_path / "novideo.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(DataError) as info:
        load_examples(_config(bad, frame_cache), progress=False)
    message = str(info.value)
    assert rows[first_train]["id"] in message and "gone.mp4" in message and "\n" not in message


def test_skip_policy_lists_bad_records_and_keeps_the_rest(synth_data, frame_cache, tmp_path):
    rows = [json.loads(line) for line in _lines(synth_data)]
    train = [i for i, r in enumerate(rows) if r["split"] == "train"]
    rows[train[0]]["video"]["path"] = str(tmp_path / "gone.mp4")
    lines = [json.dumps(r) for r in rows] + ["not json"]
    bad = _write(tmp_path / "mixed.jsonl", lines)
    data = load_examples(_config(bad, frame_cache, bad_records="skip", max_train_samples=3), progress=False)
    assert data["train"].ids == [rows[i]["id"] for i in train[1:3]]
    reasons = {(s.line, s.id) for s in data.skipped}
    assert reasons == {(len(lines), None), (train[0] + 1, rows[train[0]]["id"])}


def test_split_and_id_problems(synth_data, frame_cache, tmp_path):
    with pytest.raises(DataError, match=r"no records in split 'validation' \(splits present: \['test', 'train', 'val'\]\)"):
        load_examples(_config(synth_data, frame_cache, train_split="validation"), progress=False)
    lines = _lines(synth_data)
    first = next(line for line in lines if json.loads(line)["split"] == "train")
    dup = _write(tmp_path / "dup.jsonl", [first, first])
    with pytest.raises(DataError, match="appears twice"):
        load_examples(_config(dup, frame_cache), progress=False)
    with pytest.raises(DataError, match="no such records file"):
        load_examples(_config(tmp_path / "none.jsonl", frame_cache), progress=False)


def test_target_fps_must_agree_with_frame_fps():
    with pytest.raises(ConfigError, match="target.default_fps"):
        config_from_dict(DataConfig, {"records": "x.jsonl", "target": {"default_fps": 30.0}})
    config = config_from_dict(DataConfig, {"records": "x.jsonl", "frames": {"default_fps": 30.0}})
    assert config.target_config().default_fps == 30.0
