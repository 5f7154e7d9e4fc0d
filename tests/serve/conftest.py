"""Fixtures of the web app tests: a tiny model loaded once, synthetic clips, bad files, a
running server on a free loopback port, and small HTTP helpers (standard library only, so the
requests say exactly what goes on the wire)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Short answers and few frames keep each assessment well under a second on a CPU.
FAST_INFERENCE = {"max_new_tokens": 4, "batch_size": 1, "frames": {"num_frames": 4}, "domain": "synth"}


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoints) -> Path:
    """A randomly initialised Qwen2.5-VL checkpoint folder (model + processor; tests/conftest.py)."""
    return tiny_checkpoints["qwen2_5_vl"]


@pytest.fixture(scope="session")
def assessor(tiny_model):
    """The tiny model loaded once and shared by every server of the session, as in production."""
    from hieroaction.inference import Assessor, InferenceConfig

    return Assessor.from_pretrained(tiny_model, InferenceConfig(**FAST_INFERENCE))


@pytest.fixture(scope="session")
def clips(synth_set) -> list[Path]:
    """Two rendered synthetic clips (MP4, seed 5)."""
    return sorted((synth_set(2, 5) / "videos").glob("*.mp4"))


@pytest.fixture()
def corrupt_mp4(tmp_path) -> Path:
    """Starts like an MP4 (an ftyp box) but the rest is not a video."""
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
    return path


@pytest.fixture()
def text_mp4(tmp_path) -> Path:
    """A text file named like a video."""
    path = tmp_path / "notes.mp4"
    path.write_text("These are not the frames you are looking for.\n" * 200, encoding="utf-8")
    return path


def serve_config(**overrides: Any) -> Any:
    """A ServeConfig for tests: the fast inference settings, one example, then ``overrides``."""
    from hieroaction.config import config_from_dict
    from hieroaction.serve import ServeConfig

    data: dict[str, Any] = {"examples": 1, "inference": dict(FAST_INFERENCE)}
    data.update(overrides)
    return config_from_dict(ServeConfig, data)


@pytest.fixture(scope="session")
def start_server(assessor) -> Callable[..., Any]:
    """``with start_server(**config_overrides) as server:`` a BackgroundServer on a free port,
    serving the shared tiny model (or ``model=`` another loaded Assessor)."""
    from hieroaction.serve import BackgroundServer, create_app

    @contextmanager
    def start(model: Any = None, **overrides: Any) -> Iterator[Any]:
        server = BackgroundServer(create_app(model or assessor, serve_config(**overrides)))
        server.start()
        try:
            yield server
        finally:
            server.stop()

    return start
