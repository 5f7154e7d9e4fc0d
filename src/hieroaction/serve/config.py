"""Settings of the web app: where it listens, what it accepts, how much work it takes on.

:class:`ServeConfig` is what ``hieroaction serve --config FILE --set key=value`` reads; every
limit of the server is one of its fields. The model's own settings (frames, answer length,
device) are its ``inference`` section, the downloadable report's look its ``report`` section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hieroaction.errors import ConfigError
from hieroaction.inference.config import InferenceConfig
from hieroaction.reports.assessment import ReportConfig
from hieroaction.video.formats import CONTAINER_NAMES

# Container families the server recognises from a file's first bytes: the one list of
# hieroaction.video.formats, the containers the command line reads.
KNOWN_FORMATS = CONTAINER_NAMES


@dataclass
class ServeConfig:
    """Everything ``hieroaction serve`` needs besides the model.

    Attributes:
        host: address to listen on (``127.0.0.1``: this machine only; ``0.0.0.0``: every
            interface, for a server others reach).
        port: TCP port.
        max_upload_mb: largest video accepted, in MiB; a bigger body is answered 413 as soon
            as its size is known (from Content-Length, or while counting a streamed body).
        accepted_formats: container families accepted, recognised from the file's bytes, never
            from its name: names from :data:`~hieroaction.video.formats.CONTAINERS`, by
            default all of them (what ``hieroaction assess`` reads, the server accepts).
        timeout_s: longest time one assessment may run; generation is stopped at this limit
            and the request answered 504.
        upload_timeout_s: longest time a client may take to send its upload (answered 408), so
            a slow client cannot hold a place in the queue.
        queue_size: videos the server holds at once: being uploaded, waiting and being
            assessed. One more is answered 429 with a Retry-After header.
        results_kept: finished jobs whose results the page can still fetch (oldest dropped).
        result_ttl_s: seconds a finished job's result is kept.
        examples: bundled synthetic example clips generated at start-up (0: none).
        examples_seed: seed of those clips (the same seed gives the same clips).
        upload_dir: folder in which the private (0700) upload folder is made (default: the
            system temporary folder).
        inference: the model's settings (frames, answer length, device, default domain).
        report: the downloadable HTML report's settings (key frames, sizes).
    """

    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: float = 200.0
    accepted_formats: list[str] = field(default_factory=lambda: list(KNOWN_FORMATS))
    timeout_s: float = 300.0
    upload_timeout_s: float = 120.0
    queue_size: int = 4
    results_kept: int = 32
    result_ttl_s: float = 3600.0
    examples: int = 3
    examples_seed: int = 7
    upload_dir: str | None = None
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        for name in ("max_upload_mb", "timeout_s", "upload_timeout_s", "result_ttl_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value}")
        for name in ("queue_size", "results_kept"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.examples < 0:
            raise ConfigError(f"examples must be >= 0, got {self.examples}")
        unknown = [f for f in self.accepted_formats if f not in KNOWN_FORMATS]
        if unknown or not self.accepted_formats:
            raise ConfigError(
                f"accepted_formats must be a non-empty list from {list(KNOWN_FORMATS)}, "
                f"got {self.accepted_formats}"
            )

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)
