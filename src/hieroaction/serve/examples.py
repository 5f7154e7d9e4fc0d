"""Bundled example clips: a few synthetic clips rendered when the server starts.

Rendering three clips takes under a second, so nothing binary ships with the package and the
examples always match the installed generator. They live in a private temporary folder that
the server removes when it stops; their ground truth (action, steps, score) is known, so the
page shows it next to the model's answer.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hieroaction.data.records import Record, read_jsonl
from hieroaction.evaluation.predictions import TruthRow, truth_from_record

# Height of an example's preview image on the page.
_THUMB_HEIGHT = 72


@dataclass
class Example:
    """One bundled clip.

    Attributes:
        id: the clip's record id (what the page sends back as ``example``).
        path: the video file.
        record: its record (labels, steps, score).
        thumbnail: a middle frame as a ``data:`` URI.
    """

    id: str
    path: Path
    record: Record
    thumbnail: str

    @property
    def truth(self) -> TruthRow:
        """The ground truth as the reports show it (step times in seconds)."""
        return truth_from_record(self.record)

    def describe(self) -> dict[str, Any]:
        """What the page lists: id, name, domain, true action and score, duration, preview."""
        video = self.record.video
        frames = (video.end_frame or 0) - video.start_frame + 1
        return {
            "id": self.id,
            "name": self.path.name,
            "domain": self.record.domain,
            "action": self.record.action.label,
            "score": self.record.score.final,
            "duration_s": round(frames / video.fps, 2) if video.fps else None,
            "thumbnail": self.thumbnail,
        }


class ExampleSet:
    """``count`` synthetic clips rendered into a private temporary folder.

    Args:
        count: clips to render (0: none, nothing is written).
        seed: generator seed.
        parent: folder to make the temporary folder in (default: the system one).
    """

    def __init__(self, count: int, seed: int = 7, parent: str | Path | None = None) -> None:
        self.examples: dict[str, Example] = {}
        self.folder: Path | None = None
        if count <= 0:
            return
        from hieroaction.config import config_from_dict
        from hieroaction.synth.generator import RECORDS_FILE, SynthConfig, generate

        self.folder = Path(tempfile.mkdtemp(prefix="hieroaction-examples-", dir=parent))
        # One process renders them: a few clips do not repay starting workers inside a server.
        config = config_from_dict(SynthConfig, {"n": count, "seed": seed, "workers": 1})
        generate(self.folder, config, progress=False)
        for record in read_jsonl(self.folder / RECORDS_FILE):
            path = Path(record.video.path or "")
            self.examples[record.id] = Example(record.id, path, record, _thumbnail(record))

    def get(self, example_id: str) -> Example | None:
        """The example called ``example_id``, if there is one."""
        return self.examples.get(example_id)

    def describe(self) -> list[dict[str, Any]]:
        """Every example as the page lists it."""
        return [e.describe() for e in self.examples.values()]

    def cleanup(self) -> None:
        """Remove the rendered clips."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def _thumbnail(record: Record) -> str:
    from hieroaction.reports.html import image_data_uri
    from hieroaction.video import open_reader

    with open_reader(record.video) as reader:
        first, last = reader.window(record.video.start_frame, record.video.end_frame)
        frame = reader.read([(first + last) // 2])[0]
    return image_data_uri(frame, height=_THUMB_HEIGHT)
