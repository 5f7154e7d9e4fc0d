"""Frames stored as one image per frame in a folder: :class:`FrameFolderReader`.

Images are named by ``VideoRef.frame_template`` from the absolute frame index (FineDiving
``{:05d}.jpg``, MTL-AQA ``{:06d}.jpg``), or, without a template, the folder's images in natural
order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from hieroaction.errors import VideoError
from hieroaction.video.reader import (
    IMAGE_EXTENSIONS,
    FrameReader,
    SourceInfo,
    Transform,
    _error_reason,
    _pick_fps,
    _worker_count,
)
from hieroaction.video.resize import check_frame_pixels, check_frame_size
from hieroaction.video.sample import MAX_SOURCE_SIDE


def _natural_key(name: str) -> list[Any]:
    # "frame_2.jpg" before "frame_10.jpg": digit runs compare as numbers.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class FrameFolderReader(FrameReader):
    """Frames stored as one image per frame in a folder.

    With ``template`` (e.g. ``"{:05d}.jpg"``) frame ``i`` is ``folder / template.format(i)``;
    without it the folder's images in natural name order are frames ``0, 1, 2, ...``.
    """

    def __init__(
        self,
        folder: Path,
        template: str | None = None,
        start_frame: int | None = None,
        end_frame: int | None = None,
        record_fps: float | None = None,
        default_fps: float = 25.0,
        max_source_side: int = MAX_SOURCE_SIDE,
        threads: int = 0,
        *,
        max_frame_pixels: int | None = None,
    ) -> None:
        self.folder = folder
        self.template = template
        self.threads = threads
        self.max_source_side = max_source_side
        if not folder.exists():
            raise VideoError(f"{folder}: no such frame folder")
        if not folder.is_dir():
            raise VideoError(f"{folder}: is a file, not a frame folder (use video.path for videos)")
        self._names: list[str] | None = None
        if template is not None:
            try:
                template.format(0)
            except (IndexError, KeyError, ValueError) as exc:
                raise VideoError(
                    f"{folder}: frame_template {template!r} cannot name a frame from its index ({exc})"
                ) from None
            if start_frame is None or end_frame is None:
                present = self._template_indices()
                if not present:
                    raise VideoError(f"{folder}: no frame images named like {template!r}")
                first = present[0] if start_frame is None else start_frame
                last = present[-1]
                if end_frame is None:
                    # The window runs to the end of the consecutive frames from its start.
                    have = set(present)
                    last = first
                    while last + 1 in have:
                        last += 1
                num_frames = last + 1
                first_frame = min(first, present[0])
            else:
                num_frames = end_frame + 1
                first_frame = start_frame
        else:
            self._names = self._listing()
            if not self._names:
                raise VideoError(
                    f"{folder}: the frame folder holds no images ({', '.join(IMAGE_EXTENSIONS)})"
                )
            num_frames = len(self._names)
            first_frame = 0
        probe = start_frame if start_frame is not None else first_frame
        if probe >= num_frames:
            probe = first_frame
        # PIL reads an image's size from its header; no pixels are decoded before these checks.
        height, width = self._probe_size(probe)
        where = str(self.frame_path(probe))
        check_frame_size(height, width, max_side=max_source_side, where=where)
        check_frame_pixels(height, width, max_frame_pixels, where=where)
        fps, fps_source = _pick_fps(record_fps, None, default_fps)
        self.info = SourceInfo(
            source=str(folder), kind="frames", first_frame=first_frame, num_frames=num_frames,
            fps=fps, fps_source=fps_source, height=height, width=width, codec=None,
            decoder="images",
        )

    def _listing(self) -> list[str]:
        try:
            names = [n for n in os.listdir(self.folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
        except OSError as exc:
            raise VideoError(f"{self.folder}: cannot list the frame folder ({exc.strerror})") from None
        return sorted(names, key=_natural_key)

    def _template_indices(self) -> list[int]:
        assert self.template is not None
        head, sep, tail = self.template.partition("{")
        _, sep2, rest = tail.partition("}")
        if not sep or not sep2:
            raise VideoError(f"{self.folder}: frame_template {self.template!r} has no {{}} field")
        try:
            names = os.listdir(self.folder)
        except OSError as exc:
            raise VideoError(f"{self.folder}: cannot list the frame folder ({exc.strerror})") from None
        found = []
        for name in names:
            if name.startswith(head) and name.endswith(rest) and len(name) > len(head) + len(rest):
                middle = name[len(head):len(name) - len(rest)]
                if middle.isdigit() and self.template.format(int(middle)) == name:
                    found.append(int(middle))
        return sorted(found)

    def frame_path(self, index: int) -> Path:
        """The image file of absolute frame ``index``."""
        if self.template is not None:
            return self.folder / self.template.format(index)
        assert self._names is not None
        return self.folder / self._names[index]

    def identity(self, start: int, end: int) -> list[Any]:
        """What the frames of ``[start, end]`` are: names, sizes and modification times."""
        out: list[Any] = [] if self._names is None else [len(self._names)]
        for i in range(start, end + 1):
            path = self.frame_path(i)
            try:
                st = path.stat()
            except OSError:
                out.append([path.name, None])
                continue
            out.append([path.name, st.st_size, st.st_mtime_ns])
        return out

    def _probe_size(self, index: int) -> tuple[int, int]:
        path = self.frame_path(index)
        image = self._open(path)
        with image:
            return image.height, image.width

    def _open(self, path: Path) -> Image.Image:
        try:
            return Image.open(path)
        except FileNotFoundError:
            raise VideoError(f"{path}: missing frame image") from None
        except Image.DecompressionBombError:
            raise VideoError(f"{path}: the frame image has absurd dimensions") from None
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise VideoError(f"{path}: unreadable frame image ({_error_reason(exc)})") from None

    def _load(self, index: int, transform: Transform | None) -> np.ndarray:
        path = self.frame_path(index)
        image = self._open(path)
        try:
            with image:
                if (image.height, image.width) != (self.info.height, self.info.width):
                    raise VideoError(
                        f"{path}: frame image is {image.height}x{image.width}, but the clip's "
                        f"frames are {self.info.height}x{self.info.width}"
                    )
                array = np.asarray(image.convert("RGB"))
        except VideoError:
            raise
        except Image.DecompressionBombError:
            raise VideoError(f"{path}: the frame image has absurd dimensions") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise VideoError(f"{path}: unreadable frame image ({_error_reason(exc)})") from None
        return transform(array) if transform is not None else array

    def read(self, indices: Sequence[int], transform: Transform | None = None) -> list[np.ndarray]:
        wanted = sorted({int(i) for i in indices})
        if not wanted:
            return []
        self.window(wanted[0], wanted[-1])
        with ThreadPoolExecutor(max_workers=_worker_count(self.threads)) as pool:
            loaded = dict(zip(wanted, pool.map(lambda i: self._load(i, transform), wanted)))
        return [loaded[int(i)] for i in indices]
