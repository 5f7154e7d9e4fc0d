"""Reading chosen frames of a video file through decord (optional; ``decoder="decord"``).

``decoder="auto"`` picks PyAV instead: decord 0.6 returns wrong frames on some streams (MPEG-4
with B-frames, open-GOP H.264; see the tests) and was slower in every measurement in
docs/video.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hieroaction.errors import VideoError
from hieroaction.video.pyav import (
    _check_header,
    _check_video_file,
    _fraction_to_float,
    _open_container,
    _probe,
)
from hieroaction.video.reader import FrameReader, SourceInfo, Transform, _pick_fps, _worker_count
from hieroaction.video.sample import MAX_SOURCE_SIDE


def decord_available() -> bool:
    """Whether the optional decord decoder imports here."""
    try:
        import decord  # noqa: F401
    except Exception:  # decord's native library can fail to load with errors other than ImportError
        return False
    return True


class DecordReader(FrameReader):
    """Chosen frames of a video file through decord (optional; ``decoder="decord"``).

    The stream's size and fps come from a PyAV probe (no decoding); the frame count is
    decord's own, which a test checks against PyAV's on every codec.
    """

    # decord returns a batch as one array: keep batches small so memory stays bounded.
    _BATCH = 8

    def __init__(
        self,
        path: Path,
        record_fps: float | None = None,
        default_fps: float = 25.0,
        max_source_side: int = MAX_SOURCE_SIDE,
        threads: int = 0,
        *,
        max_frame_pixels: int | None = None,
    ) -> None:
        if not decord_available():
            raise VideoError(
                f"{path}: decoder 'decord' was asked for but decord is not installed "
                "(pip install decord, or use decoder 'pyav')"
            )
        import decord

        self.path = path
        self.threads = threads
        _check_video_file(path)
        if max_frame_pixels is not None:
            _check_header(path, max_source_side, max_frame_pixels)
        container = _open_container(path)
        try:
            height, width, codec, _ = _probe(container, path, max_source_side, max_frame_pixels)
        finally:
            container.close()
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)
            count = len(self._reader)
            container_fps = _fraction_to_float(self._reader.get_avg_fps())
        except decord.DECORDError as exc:
            raise VideoError(f"{path}: decord cannot read the video ({str(exc)[:120]})") from None
        if count == 0:
            raise VideoError(f"{path}: the video stream holds no frames")
        fps, fps_source = _pick_fps(record_fps, container_fps, default_fps)
        self.info = SourceInfo(
            source=str(path), kind="video", first_frame=0, num_frames=count, fps=fps,
            fps_source=fps_source, height=height, width=width, codec=codec, decoder="decord",
        )

    def read(self, indices: Sequence[int], transform: Transform | None = None) -> list[np.ndarray]:
        import decord

        wanted = sorted({int(i) for i in indices})
        if not wanted:
            return []
        self.window(wanted[0], wanted[-1])
        got: dict[int, np.ndarray] = {}
        with ThreadPoolExecutor(max_workers=_worker_count(self.threads)) as pool:
            for lo in range(0, len(wanted), self._BATCH):
                chunk = wanted[lo:lo + self._BATCH]
                try:
                    batch = self._reader.get_batch(chunk).asnumpy()
                except decord.DECORDError as exc:
                    raise VideoError(
                        f"{self.path}: decord cannot decode frames {chunk[0]}..{chunk[-1]} "
                        f"({str(exc)[:120]})"
                    ) from None
                frames = list(batch)
                if transform is not None:
                    frames = list(pool.map(transform, frames))
                got.update(zip(chunk, frames))
        return [got[int(i)] for i in indices]

    def close(self) -> None:
        self._reader = None
