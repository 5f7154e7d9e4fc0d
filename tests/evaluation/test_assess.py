"""``hieroaction assess`` and the Assessor API: a good and a corrupt video, every format."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from hieroaction.errors import ConfigError, VideoError
from hieroaction.inference import Assessor, InferenceConfig, pick_device, pick_dtype

FAST = ["--max-new-tokens", "24", "--set", "frames.num_frames=8", "--domain", "synth"]


def test_text_shows_the_good_video_and_the_reason_for_the_bad_one(cli, tiny_model, good_video, corrupt_video):
    status, out, err = cli("assess", good_video, corrupt_video, "--model", tiny_model, *FAST)
    assert status == 1  # one video could not be assessed
    good, bad = out.split("\n\n", 1)
    assert good.startswith(str(good_video))
    for key in ("clip", "action", "steps", "score", "problems", "timings"):
        assert f"\n  {key} " in good
    assert "window 0.00-" in good and "8 frames" in good and "domain synth" in good
    # the random model's answer is not SAR: shown with its problems, not a crash
    assert "missing_block" in good or "stray_text" in good or "truncated" in good
    assert bad.startswith(str(corrupt_video)) and "error" in bad and "not a video" in bad
    assert "1 of 2 video(s) could not be assessed" in err


def test_json_is_one_typed_object_per_video(cli, tiny_model, good_video, corrupt_video):
    status, out, _ = cli("assess", good_video, corrupt_video, "--model", tiny_model, "--format", "json", *FAST)
    assert status == 1
    good, bad = (json.loads(line) for line in out.splitlines())
    from hieroaction.sar import Assessment

    assessment = Assessment.model_validate(good["assessment"])
    assert assessment.version == 1 and good["error"] is None
    assert isinstance(good["completion"], str) and len(good["frame_times"]) == 8
    assert all({"code", "message"} <= set(p) for p in good["problems"])
    assert set(good["timings"]) == {"decode_s", "preprocess_s", "generate_s", "batch_size"}
    assert bad["assessment"] is None and "broken.mp4" in bad["error"]


def test_html_files_per_video_with_a_timeline_over_frames(cli, tmp_path, tiny_model, good_video, corrupt_video):
    out = tmp_path / "html"
    status, text, _ = cli("assess", good_video, corrupt_video, "--model", tiny_model, "--format", "html",
                          "--out", out, *FAST)
    assert status == 1
    good = (out / f"{good_video.stem}.html").read_text()
    bad = (out / "broken.html").read_text()
    assert f"wrote {out / 'broken.html'}" in text
    assert good.startswith("<!DOCTYPE html>") and "<script" not in good
    assert good.count("<image ") == 8 and "data:image/jpeg;base64," in good  # 8 key frames
    assert "predicted" in good and "Raw answer" in good
    assert "Not assessed" in bad and "not a video" in bad


def test_all_good_videos_exit_zero_and_same_names_do_not_collide(cli, tmp_path, tiny_model, good_video):
    other = tmp_path / "b" / good_video.name
    other.parent.mkdir()
    shutil.copy(good_video, other)
    status, _, _ = cli("assess", good_video, other, "--model", tiny_model, "--format", "json",
                       "--out", tmp_path / "o", *FAST)
    assert status == 0
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == [f"{good_video.stem}-2.json", f"{good_video.stem}.json"]


def test_api_assess_and_assess_many(assessor, good_video, corrupt_video, tmp_path):
    result = assessor.assess(good_video)
    assert result.ok and result.assessment is not None and result.completion is not None
    assert result.timings.decode_s > 0 and result.timings.generate_s > 0
    with pytest.raises(VideoError, match="not a video"):
        assessor.assess(corrupt_video)
    results = assessor.assess_many([corrupt_video, good_video, tmp_path / "missing.mp4"])
    assert [r.ok for r in results] == [False, True, False]
    assert "no such video file" in results[2].error
    # greedy: the same clip gives the same answer, alone or in a batch
    assert results[1].completion == result.completion


def test_a_folder_of_frames_is_a_video(assessor, tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(folder / f"img_{i + 1}.png")
    result = assessor.assess(folder)
    assert result.ok and len(result.frame_times) == 8
    assert result.fps == assessor.frame_config.default_fps  # a folder has no frame rate of its own


def test_window_in_seconds(assessor, good_video):
    whole = assessor.assess(good_video)
    part = assessor.assess(good_video, start=0.5, end=1.5)
    fps = part.fps
    assert part.window[0] == pytest.approx(round(0.5 * fps) / fps)
    assert part.window[1] <= 1.5 + 1 / fps and part.window[1] < whole.window[1]
    with pytest.raises(ConfigError, match="must be after"):
        assessor.assess(good_video, start=2.0, end=1.0)
    with pytest.raises(VideoError, match="past the end"):
        assessor.assess(good_video, start=1000.0)


def test_one_assessor_shared_by_threads(assessor, good_video):
    expected = assessor.assess(good_video).completion
    answers: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            answers.append(assessor.assess(good_video).completion)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and answers == [expected] * 3


def test_model_folder_without_processor_is_one_sentence(cli, tmp_path, tiny_model, good_video):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(tiny_model / name, bare / name)
    with pytest.raises(ConfigError, match="has no processor"):
        Assessor.from_pretrained(bare)
    status, out, err = cli("assess", good_video, "--model", bare)
    assert status == 2 and out == "" and err.count("\n") == 1 and "no processor" in err
    status, _, err = cli("assess", good_video, "--model", tmp_path / "nowhere")
    assert status == 2 and "no such model folder" in err


def test_unknown_domain_fails_before_loading(cli, tmp_path, good_video):
    status, _, err = cli("assess", good_video, "--model", tmp_path / "never-loaded", "--domain", "curling")
    assert status == 2 and "unknown domain 'curling'" in err


def test_qwen3_family_gets_frames_on_its_own_grid(tmp_path, good_video):
    from hieroaction.models.tiny import build_tiny

    folder = build_tiny("qwen3_vl", tmp_path / "q3")
    q3 = Assessor.from_pretrained(folder, InferenceConfig(max_new_tokens=8, frames={"num_frames": 8}))
    assert q3.frame_config.factor == 32 and q3.frame_config.clip_budget
    result = q3.assess(good_video, keep_clip=True)
    assert result.ok and result.clip.height % 32 == 0 and result.clip.width % 32 == 0


def test_device_and_dtype_choice():
    import torch

    device = pick_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            pick_device("cuda")
    with pytest.raises(ConfigError):
        InferenceConfig(dtype="float8")


@pytest.mark.gpu
@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_cuda_bf16_by_default(tiny_model, good_video):
    import torch

    gpu = Assessor.from_pretrained(tiny_model, InferenceConfig(max_new_tokens=8, frames={"num_frames": 8}))
    assert gpu.device.type == "cuda"
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert next(gpu.model.parameters()).dtype == expected
    assert gpu.assess(good_video).ok


def test_a_score_outside_the_domains_range_is_a_problem_not_a_score():
    from hieroaction.inference.assessor import check_score_range
    from hieroaction.sar import parse_sar

    def answer(score: str) -> str:
        return ("<recognition>\n<action>back-2-head</action>\n</recognition>\n<subactions>\n"
                '<step label="back take-off" start="0" end="1" quality="4"></step>\n</subactions>\n'
                f"<scoring>\n<score>{score}</score>\n</scoring>")

    parsed = parse_sar(answer("5920"))
    assert parsed.ok and parsed.assessment.score == 5920
    assessment, problems = check_score_range(parsed.assessment, list(parsed.problems), "synth")
    assert assessment.score is None and assessment.action == "back-2-head"  # the rest is kept
    assert [p.code.value for p in problems] == ["out_of_range"]
    assert "outside the synth score range [0, 120]" in problems[0].message
    # in range, or a domain without a range: unchanged
    inside = parse_sar(answer("59.2"))
    assert check_score_range(inside.assessment, [], "synth") == (inside.assessment, [])
    assert check_score_range(parsed.assessment, [], "generic") == (parsed.assessment, [])
