"""Clips and prompts the model tests feed the tiny models."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def make_clip(
    num_frames: int = 8,
    height: int = 96,
    width: int = 128,
    seed: int = 0,
    fps: float = 25.0,
    step: int = 4,
) -> SimpleNamespace:
    """Random uint8 frames sampled every ``step`` source frames, with their true times."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    return SimpleNamespace(
        frames=frames, timestamps=[i * step / fps for i in range(num_frames)], fps=fps
    )


def video_messages(text: str = "Assess the dive.") -> list[dict]:
    """One user turn: a clip then a question."""
    return [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
