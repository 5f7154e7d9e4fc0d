"""Settings of the web app: where it listens, what it accepts, how much work it takes on.

:class:`ServeConfig` is what ``hieroaction serve --config FILE --set key=value`` reads; every
limit of the server is one of its fields. The model's own settings (frames, answer length,
device) are its ``inference`` section, the downloadable report's look its ``report`` section.

:func:`check_settings` checks what the settings ask of this machine (the upload folder, the
address and port, the domain, the frame settings) before the model is loaded, so a mistake ends
in one sentence instead of a model load followed by a failed start-up.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

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
        upload_timeout_s: longest time a client may take to send its upload (answered 408).
        min_upload_bytes_per_second: the slowest upload accepted: after ``upload_grace_s``, an
            upload must have sent this many bytes for every second past the grace period (an
            average, as Apache's ``MinRate``); a slower one is cut with 408 and its partial
            file deleted (0: no minimum).
        upload_grace_s: seconds at the start of an upload during which any rate is accepted.
        max_uploads: uploads received at once. Uploads are received apart from the job
            queue: a client still sending holds one of these slots, never a place in the
            queue. One more is answered 429 with a Retry-After header.
        queue_size: jobs the server holds at once, waiting in line or being assessed (a job
            enters once its upload is complete and checked); they are assessed in the order
            they arrived. One more is answered 429 with a Retry-After header from the queue's
            state (the jobs ahead times the measured mean time of one).
        results_kept: finished jobs whose results can still be fetched (oldest dropped).
        result_ttl_s: seconds a finished job's result is kept; then it is dropped (404).
        examples: bundled synthetic example clips generated at start-up (0: none).
        examples_seed: seed of those clips (the same seed gives the same clips).
        upload_dir: folder in which the private (0700) upload folder is made (default: the
            system temporary folder); :func:`check_settings` creates it when missing.
        inference: the model's settings (frames, answer length, device, default domain).
        report: the downloadable HTML report's settings (key frames, sizes).
    """

    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: float = 200.0
    accepted_formats: list[str] = field(default_factory=lambda: list(KNOWN_FORMATS))
    timeout_s: float = 300.0
    upload_timeout_s: float = 120.0
    min_upload_bytes_per_second: float = 16384.0
    upload_grace_s: float = 10.0
    max_uploads: int = 8
    queue_size: int = 16
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
        for name in ("min_upload_bytes_per_second", "upload_grace_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value}")
        for name in ("queue_size", "max_uploads", "results_kept"):
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


# Frame settings the loaded model's processor supplies (InferenceConfig.frame_config); they are
# checked against that processor when the model is loaded, the others here.
_MODEL_FRAME_FIELDS = ("factor", "clip_budget", "temporal_factor", "min_pixels", "max_pixels")


def check_settings(config: ServeConfig) -> None:
    """Check everything about ``config`` that does not need the model, so that ``hieroaction
    serve`` refuses a mistake before it spends the model load on it.

    - the default domain exists;
    - the frame settings (``inference.frames``) are valid, apart from the pixel budgets and
      grid the model's processor supplies;
    - ``upload_dir`` is a folder the server can make its private upload folder in (a missing
      one is created, with its parents);
    - ``host`` is an address of this machine and ``port`` is free there (bound and released at
      once, as uvicorn binds it).

    Raises:
        ConfigError: one sentence naming the setting and what is wrong.
    """
    from hieroaction.config import config_from_dict
    from hieroaction.domains import get_domain
    from hieroaction.video import FrameConfig

    get_domain(config.inference.domain)
    frames = {k: v for k, v in config.inference.frames.items() if k not in _MODEL_FRAME_FIELDS}
    try:
        config_from_dict(FrameConfig, frames)
    except ConfigError as exc:
        raise ConfigError(f"inference.frames: {exc}") from None
    check_upload_dir(config.upload_dir)
    check_address(config.host, config.port)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_upload_dir(upload_dir: str | None) -> Path:
    """The folder uploads go under (``None``: the system temporary folder), created when it is
    missing, after checking that a private folder can be made in it.

    Raises:
        ConfigError: it is not a folder, cannot be created or is not writable.
    """
    folder = Path(upload_dir).expanduser() if upload_dir else Path(tempfile.gettempdir())
    where = f"upload_dir {str(folder)!r}" if upload_dir else f"the temporary folder {str(folder)!r}"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{where} is not a folder; set upload_dir to a folder the server may write in")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{where} cannot be created ({_reason(exc)}); set upload_dir to a folder the server may write in"
        ) from None
    try:
        os.rmdir(tempfile.mkdtemp(prefix="hieroaction-check-", dir=folder))
    except OSError as exc:
        raise ConfigError(
            f"{where} is not writable ({_reason(exc)}); set upload_dir to a folder the server may write in"
        ) from None
    return folder


def check_address(host: str, port: int) -> None:
    """Check that the server can listen on ``host:port``: bind a socket there as uvicorn does
    (``SO_REUSEADDR``) and close it again.

    Raises:
        ConfigError: the host is not an address of this machine, the port is in use, or
            binding it is not allowed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock: socket.socket | None = None
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except socket.gaierror as exc:
        raise ConfigError(f"host {host!r} is not a known address ({_reason(exc)})") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use; stop what listens there or choose another --port"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"port {port} on {host} may not be used by this user (ports below 1024 need "
                "privileges); choose another --port"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"host {host!r} is not an address of this machine; use 127.0.0.1 or 0.0.0.0") from None
        raise ConfigError(f"cannot listen on {host}:{port} ({_reason(exc)})") from None
    finally:
        if sock is not None:
            sock.close()
