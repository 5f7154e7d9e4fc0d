"""The pixel limit per frame in the web app and in ``hieroaction assess`` (project issue 13): an
upload whose frames are over the limit is answered 422 with one sentence, from its header,
before any frame is decoded; the limit is the frame setting ``max_frame_pixels``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hieroaction.serve.uploads import Refused, probe_video
from hieroaction.video.sample import MAX_FRAME_PIXELS
from tests.serve.client import post_form, request, require_serve_extra, upload_files
from tests.serve.conftest import FAST_INFERENCE
from tests.video.media import OpenedContainers, make_black_video

require_serve_extra()


@pytest.fixture(scope="module")
def huge_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two black 8192x4096 H.264 frames: about 100 KB, four times the default pixel limit."""
    return make_black_video(tmp_path_factory.mktemp("huge") / "huge.mp4", 8192, 4096)


def _small_limit(limit: int) -> dict:
    return {**FAST_INFERENCE, "frames": {**FAST_INFERENCE["frames"], "max_frame_pixels": limit}}


def test_the_upload_check_refuses_huge_frames_from_the_header(huge_video, monkeypatch):
    opened = OpenedContainers().install(monkeypatch)
    with pytest.raises(Refused) as info:
        probe_video(huge_video, "mp4", "huge.mp4", MAX_FRAME_PIXELS)
    assert info.value.status == 422
    assert str(info.value).startswith("huge.mp4: its frames are 8192x4096 pixels (width x height)")
    assert "limit of 8,847,360 pixels per frame" in str(info.value)
    # one header-only open; nothing demuxed or decoded
    assert len(opened.options) == 1 and opened.header_only and opened.calls == []


def test_a_huge_upload_is_answered_422_with_one_sentence_and_deleted(start_server, huge_video):
    with start_server() as server:
        info = request(server, "GET", "/api/info").json()
        assert info["max_frame_pixels"] == MAX_FRAME_PIXELS
        answer = post_form(server, "/api/assess", files={"video": ("my dive.mp4", huge_video.read_bytes())})
        assert answer.status == 422, answer
        detail = answer.json()["detail"]
        assert detail.startswith("my dive.mp4: its frames are 8192x4096 pixels")
        assert "limit of 8,847,360 pixels per frame" in detail and "max_frame_pixels" in detail
        assert ".upload" not in detail and upload_files(server) == []
        # the queued API refuses it the same way, before it takes a place in the queue
        answer = post_form(server, "/api/jobs", files={"video": ("clip.mp4", huge_video.read_bytes())})
        assert answer.status == 422 and "max_frame_pixels" in answer.json()["detail"]
        assert server.app.state.service.queue.stats()["held"] == 0


def test_the_server_takes_the_limit_from_inference_frames(start_server, clips):
    with start_server(inference=_small_limit(1000)) as server:
        assert request(server, "GET", "/api/info").json()["max_frame_pixels"] == 1000
        answer = post_form(server, "/api/assess", files={"video": ("clip.mp4", clips[0].read_bytes())})
        assert answer.status == 422
        assert answer.json()["detail"].startswith("clip.mp4: its frames are")
        assert "limit of 1,000 pixels per frame" in answer.json()["detail"]


def test_a_limit_the_assessor_was_built_with_applies_to_uploads_too(start_server, tiny_model, clips):
    from hieroaction.inference import Assessor, InferenceConfig

    strict = Assessor.from_pretrained(tiny_model, InferenceConfig(**_small_limit(1000)))
    with start_server(model=strict) as server:
        assert request(server, "GET", "/api/info").json()["max_frame_pixels"] == 1000
        answer = post_form(server, "/api/assess", files={"video": ("clip.mp4", clips[0].read_bytes())})
        assert answer.status == 422 and "limit of 1,000 pixels per frame" in answer.json()["detail"]


def test_assess_takes_the_limit_from_set(tiny_model, clips, capsys):
    from hieroaction.cli import main

    args = ["assess", str(clips[0]), "--model", str(tiny_model), "--format", "json",
            "--max-new-tokens", "4", "--set", "frames.num_frames=4"]
    assert main([*args, "--set", "frames.max_frame_pixels=1000"]) == 1
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "limit of 1,000 pixels per frame (the frame setting max_frame_pixels)" in result["error"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["error"] is None
