"""The server accepts what the command line reads (the one list of hieroaction.video.formats):
a GIF and an MPEG-TS upload are assessed, by default, and a narrowed list still refuses."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from hieroaction.serve import ServeConfig
from hieroaction.video.formats import CONTAINER_NAMES
from tests.serve.client import post_form, request, require_serve_extra, upload_files

require_serve_extra()


def _frames(n: int = 8, height: int = 48, width: int = 64) -> list[np.ndarray]:
    out = []
    for i in range(n):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[..., 0] = 30 * i
        frame[8:24, 4 * i:4 * i + 16] = 255  # a square moving right
        out.append(frame)
    return out


def gif_bytes() -> bytes:
    """A small animated GIF, written by PIL as a browser or phone would."""
    images = [Image.fromarray(f) for f in _frames()]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def ts_bytes(tmp_path: Path) -> bytes:
    """A small H.264 MPEG transport stream, written by PyAV."""
    path = tmp_path / "clip.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in _frames():
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return path.read_bytes()


@pytest.fixture(scope="module")
def server(start_server):
    with start_server(examples=0) as running:
        yield running


def test_by_default_the_server_accepts_every_container_the_command_line_reads(server):
    assert ServeConfig().accepted_formats == list(CONTAINER_NAMES)
    info = request(server, "GET", "/api/info").json()
    assert info["accepted_formats"] == list(CONTAINER_NAMES)
    assert {".gif", ".ts", ".mp4"} <= set(info["file_accept"].split(","))


@pytest.mark.parametrize("kind", ["gif", "ts"])
def test_a_gif_and_an_mpeg_ts_upload_are_assessed(server, tmp_path, kind):
    data = gif_bytes() if kind == "gif" else ts_bytes(tmp_path)
    name = f"my dive.{kind}"
    answer = post_form(server, "/api/assess", {"domain": "synth"}, {"video": (name, data)})
    assert answer.status == 200, answer
    result = answer.json()
    assert result["source"] == name and result["error"] is None
    assert len(result["frame_times"]) == 4 and result["window"][1] > result["window"][0]
    assert upload_files(server) == []


def test_a_narrowed_list_still_refuses_them_by_content(start_server, tmp_path):
    with start_server(examples=0, accepted_formats=["mp4"]) as server:
        answer = post_form(server, "/api/assess", files={"video": ("dive.mp4", gif_bytes())})
        assert answer.status == 415
        assert answer.json()["detail"] == "dive.mp4: a gif file, which this server does not accept; accepted: mp4"
        answer = post_form(server, "/api/assess", files={"video": ("dive.ts", ts_bytes(tmp_path))})
        assert answer.status == 415 and "a mpegts file" in answer.json()["detail"]
        assert upload_files(server) == []
