"""The web app: a FastAPI application around one shared :class:`~hieroaction.inference.Assessor`.

``create_app(assessor, config)`` returns the ASGI application; :func:`serve` runs it with
uvicorn (what ``hieroaction serve`` does) and :class:`BackgroundServer` runs it in a thread
(tests, notebooks). Endpoints:

- ``GET /``: the page (upload or pick an example, choose the domain, follow the progress,
  read the assessment, download JSON or the HTML report);
- ``POST /api/jobs``: multipart ``video`` (+ optional ``domain``), or ``example`` instead of
  ``video`` -> 202 with the job's URL (``Location``), id and place in line;
  ``GET /api/jobs/{id}`` its state, place and, when done, its result; ``.../result.json``,
  ``.../report.html`` and ``.../timeline.svg`` its downloads;
- ``POST /api/assess``: the same form -> the assessment as JSON, answered when done (a job
  like any other, waited for);
- ``GET /api/health``, ``GET /api/info`` (limits, domains, examples), ``GET /openapi.json``.

Every refusal is JSON ``{"detail": "<one sentence>"}`` with its status: 413 too large, 415 not
an accepted video, 422 a bad field or an undecodable video, 408 an upload that took too long or
fell below the minimum rate, 429 busy (with ``Retry-After`` from the queue's state), 504 an
assessment over the time limit.

Uploads are received apart from the job queue (:class:`~hieroaction.serve.uploads.UploadSlots`):
a slow upload holds an upload slot, for a bounded time, never a place in line; the jobs are
assessed first come, first served by one worker (:class:`~hieroaction.serve.jobs.JobQueue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hieroaction import __version__
from hieroaction.domains import builtin_domain_names, get_domain
from hieroaction.errors import ConfigError, HieroActionError, VideoError
from hieroaction.serve.config import ServeConfig, check_settings
from hieroaction.serve.examples import ExampleSet
from hieroaction.serve.jobs import Busy, Job, JobQueue
from hieroaction.serve.uploads import (
    VIDEO_FIELD,
    Refused,
    UploadFolder,
    UploadForm,
    UploadLimits,
    UploadPace,
    UploadSlots,
    check_declared_length,
    paced,
    probe_video,
    read_form,
    remove_quietly,
)
from hieroaction.video.formats import describe, file_picker_accept

logger = logging.getLogger("hieroaction.serve")

# What a domain name from a form may look like (the built-in names are identifiers).
_DOMAIN_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")

# The page's own files, served by name from the package (never a path taken from a request).
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}

# The page loads nothing from elsewhere and runs only its own script.
_PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Reports and timelines are documents of our own making: inline styles and data: images only.
_DOCUMENT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"

_MULTIPART_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        VIDEO_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": (
                                f"the video ({describe()}; checked by content; GET /api/info lists "
                                "the containers this server accepts)"
                            ),
                        },
                        "domain": {
                            "type": "string",
                            "description": "domain of the prompt, e.g. diving (default: the server's)",
                        },
                        "example": {
                            "type": "string",
                            "description": "id of a bundled example clip instead of a video (see GET /api/info)",
                        },
                    },
                }
            }
        },
    }
}


def _error_doc(text: str) -> dict[str, Any]:
    return {
        "description": text,
        "content": {"application/json": {"schema": {
            "type": "object", "properties": {"detail": {"type": "string"}},
        }}},
    }


_REFUSALS = {
    408: _error_doc("the upload took longer than the upload time limit, or fell below the minimum upload rate"),
    413: _error_doc("the body is larger than the upload limit (answered before it is read in full)"),
    415: _error_doc("not multipart/form-data, or the file is not an accepted video (checked by content)"),
    422: _error_doc("a missing or bad field, an unknown domain, or a video that cannot be decoded"),
    429: _error_doc(
        "the job queue (or the upload slots) are full; retry after the Retry-After seconds, "
        "estimated from the jobs ahead and the measured time of one"
    ),
    504: _error_doc("the assessment took longer than the processing time limit"),
}


@dataclass
class Outcome:
    """A finished assessment, ready to serve: its JSON, the HTML report and the timeline SVG."""

    data: dict[str, Any]
    report_html: str
    timeline_svg: str
    truth: dict[str, Any] | None = None


class Service:
    """What the app holds while it runs: the shared assessor, the job queue and its one worker,
    the upload slots, the private upload folder and the bundled examples.

    Args:
        assessor: the loaded model, used by the worker thread only.
        config: the server's settings.
    """

    def __init__(self, assessor: Any, config: ServeConfig) -> None:
        self.assessor = assessor
        self.config = config
        self.limits = UploadLimits(config.max_upload_bytes, tuple(config.accepted_formats))
        self.queue = JobQueue(
            self._assess, config.queue_size, keep=config.results_kept, ttl_s=config.result_ttl_s,
            on_discard=self._discard,
        )
        self.upload_slots = UploadSlots(config.max_uploads)
        self.uploads: UploadFolder | None = None
        self.examples: ExampleSet | None = None
        self.started = time.monotonic()
        self._previous_max_time: float | None = None
        self.max_frame_pixels = _frame_pixel_limit(assessor, config)

    def start(self) -> None:
        """Make the upload folder, render the examples, start the worker."""
        get_domain(self.config.inference.domain)
        self.uploads = UploadFolder(self.config.upload_dir)
        self.examples = ExampleSet(self.config.examples, self.config.examples_seed, self.config.upload_dir)
        generation = getattr(self.assessor.model, "generation_config", None)
        if generation is not None:
            # generate() stops itself at this limit, so an overlong answer cannot hold the
            # worker (and everyone queued behind it) past the processing timeout.
            self._previous_max_time = getattr(generation, "max_time", None)
            generation.max_time = self.config.timeout_s
        self.queue.start()

    def close(self) -> None:
        """Stop the worker and remove the upload folder and the examples."""
        self.queue.close(timeout=self.config.timeout_s)
        generation = getattr(self.assessor.model, "generation_config", None)
        if generation is not None:
            generation.max_time = self._previous_max_time  # the model may outlive the app
        if self.uploads is not None:
            self.uploads.cleanup()
        if self.examples is not None:
            self.examples.cleanup()

    @property
    def model_name(self) -> str:
        """The model folder's name (not its path on this machine)."""
        name = str(getattr(getattr(self.assessor.model, "config", None), "_name_or_path", "") or "")
        return Path(name).name or name

    # -- requests -----------------------------------------------------------------------------

    def make_job(self, form: UploadForm) -> Job:
        """Check a received form and turn it into a job (runs in a worker thread: it probes the
        video with FFmpeg). The upload is deleted when the form is refused."""
        try:
            return self._make_job(form)
        except BaseException:
            remove_quietly(form.video.path if form.video else None)
            raise

    def _make_job(self, form: UploadForm) -> Job:
        example_id = form.fields.get("example") or None
        if form.video is not None and example_id:
            raise Refused(422, "send either a 'video' file or an 'example' id, not both")
        example = None
        if example_id:
            example = self.examples.get(example_id) if self.examples else None
            if example is None:
                raise Refused(422, f"unknown example {example_id!r}; GET /api/info lists the examples")
        elif form.video is None:
            raise Refused(422, f"the form has no '{VIDEO_FIELD}' file field; send the video as '{VIDEO_FIELD}'")
        domain = form.fields.get("domain") or (example.record.domain if example else self.config.inference.domain)
        try:
            # A name only: the domain files are looked up by name, so no path may reach them.
            if not _DOMAIN_NAME.fullmatch(domain):
                raise ConfigError(f"unknown domain {domain!r}; a domain name has letters, digits and _ only")
            get_domain(domain)
        except ConfigError as exc:
            raise Refused(422, str(exc)) from None
        if example is not None:
            return Job(name=example.path.name, path=example.path, domain=domain, delete_after=False, example=example.id)
        assert form.video is not None
        probe_video(form.video.path, form.video.format, form.video.name, self.max_frame_pixels)
        return Job(name=form.video.name, path=form.video.path, domain=domain)

    async def receive(self, request: Request) -> Job:
        """Read and check an upload into a job, in one of the upload slots (not in the queue).

        A full queue refuses before the body is read (429); so do full upload slots. The upload
        must arrive within ``upload_timeout_s`` and keep up ``min_upload_bytes_per_second``
        after ``upload_grace_s`` (else 408, the partial file deleted). The job is not queued
        yet: :meth:`enqueue` does that.
        """
        import anyio
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import ClientDisconnect

        assert self.uploads is not None
        self.queue.check_room()
        with self.upload_slots.take():
            check_declared_length(request.headers, self.limits)
            pace = UploadPace(self.config.min_upload_bytes_per_second, self.config.upload_grace_s)
            try:
                with anyio.fail_after(self.config.upload_timeout_s):
                    form = await read_form(
                        request.headers.get("content-type"), paced(request.stream(), pace), self.uploads, self.limits
                    )
            except TimeoutError:
                raise Refused(
                    408, f"the upload took longer than the limit of {self.config.upload_timeout_s:g} s"
                ) from None
            except ClientDisconnect:
                raise Refused(400, "the client went away before the upload was complete") from None
            # the probe still counts as receiving: at most max_uploads files are being checked
            return await run_in_threadpool(self.make_job, form)

    def enqueue(self, job: Job, remember: bool = True) -> Job:
        """Put a received job at the back of the line; when the queue filled up while it was
        being uploaded, its file is deleted and :class:`Busy` raised (429)."""
        try:
            return self.queue.submit(job, remember=remember)
        except Busy:
            self._discard(job)
            raise

    # -- the worker ---------------------------------------------------------------------------

    def _discard(self, job: Job) -> None:
        if job.delete_after:
            remove_quietly(job.path)

    def _assess(self, job: Job) -> Outcome:
        """Assess one job (the worker thread); the upload is deleted whatever happens."""
        from hieroaction.reports.assessment import assessment_html, assessment_timeline
        from hieroaction.reports.html import Markup, page

        began = time.monotonic()
        try:
            result = self.assessor.assess(job.path, domain=job.domain, keep_clip=True)
        except VideoError as exc:
            # The message names the private file; the client knows it by its own name.
            raise Refused(422, str(exc).replace(str(job.path), job.name)) from None
        finally:
            self._discard(job)
        took = time.monotonic() - began
        if took > self.config.timeout_s:
            raise Refused(
                504, f"{job.name}: the assessment took {took:.1f} s, longer than the limit of "
                f"{self.config.timeout_s:g} s"
            )
        result.source = job.name
        example = self.examples.get(job.example) if (self.examples and job.example) else None
        truth = example.truth if example is not None else None
        card = assessment_html(result, truth, self.config.report)
        report = page(
            f"Assessment of {job.name}", Markup(card), f"model {self.model_name}, domain {job.domain}"
        )
        timeline = assessment_timeline(result, truth, self.config.report)
        result.clip = None  # the frames are in the report now; do not keep them in memory
        truth_data = None
        if truth is not None:
            truth_data = {
                "action": truth.action,
                "score": truth.score,
                "steps": [{"label": s.label, "start": s.start, "end": s.end} for s in truth.steps or []],
            }
        return Outcome(result.to_dict(), report, timeline, truth_data)


def _frame_pixel_limit(assessor: Any, config: ServeConfig) -> int:
    """The most pixels an uploaded video's frames may have, checked from its header before
    anything is decoded: the frame setting ``max_frame_pixels`` of the server's
    ``inference.frames`` or of the assessor's own frame settings, whichever is smaller (the
    assessor checks its own again when it decodes)."""
    from hieroaction.config import config_from_dict
    from hieroaction.video import FrameConfig

    configured = {k: v for k, v in config.inference.frames.items() if k == "max_frame_pixels"}
    limits = [config_from_dict(FrameConfig, configured).max_frame_pixels]  # checks the value
    frame_config = getattr(assessor, "frame_config", None)
    if isinstance(frame_config, FrameConfig):
        limits.append(frame_config.max_frame_pixels)
    return min(limits)


# ---------------------------------------------------------------------------------------------
# The application
# ---------------------------------------------------------------------------------------------


def _page_file(name: str) -> str:
    return (resources.files("hieroaction.serve") / "page" / name).read_text(encoding="utf-8")


def _download_name(name: str, suffix: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:60].strip("._") or "video"
    return f"assessment-{stem}{suffix}"


def create_app(assessor: Any, config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI application serving ``assessor`` (one instance, shared by every request).

    Args:
        assessor: a loaded :class:`~hieroaction.inference.Assessor`. Its model's
            ``generation_config.max_time`` is set to ``config.timeout_s``.
        config: the server's settings (default :class:`ServeConfig`).
    """
    config = config or ServeConfig()
    service = Service(assessor, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(service.start)
        try:
            yield
        finally:
            await asyncio.to_thread(service.close)

    app = FastAPI(
        title="HieroAction",
        version=__version__,
        description=(
            "Interpretable action quality assessment of videos: the action, its steps with "
            "notes and quality, the score with its components, and the reasoning."
        ),
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Busy)
    async def _busy(request: Request, exc: Busy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # -- the page ---------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(_page_file("index.html"), headers={"Content-Security-Policy": _PAGE_CSP})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return Response(_page_file(name), media_type=_STATIC[name])

    # -- API --------------------------------------------------------------------------------

    @app.get("/api/health", summary="Is the server up, and how full is its queue")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": service.model_name,
            "device": str(getattr(assessor, "device", "")),
            "queue": service.queue.stats(),
            "uploads": service.upload_slots.stats(),
            "uptime_s": round(time.monotonic() - service.started, 1),
        }

    @app.get("/api/info", summary="Limits, domains and bundled examples")
    def info() -> dict[str, Any]:
        calibration = getattr(assessor, "calibration", None)
        return {
            "model": service.model_name,
            "calibration": None if calibration is None else calibration.summary(),
            "domains": builtin_domain_names(),
            "default_domain": config.inference.domain,
            "max_upload_bytes": config.max_upload_bytes,
            "max_frame_pixels": service.max_frame_pixels,
            "accepted_formats": list(config.accepted_formats),
            "file_accept": file_picker_accept(config.accepted_formats),
            "timeout_s": config.timeout_s,
            "queue_size": config.queue_size,
            "max_uploads": config.max_uploads,
            "min_upload_bytes_per_second": config.min_upload_bytes_per_second,
            "examples": service.examples.describe() if service.examples else [],
        }

    @app.post(
        "/api/assess",
        summary="Assess a video and answer with the assessment as JSON",
        description=(
            "Send the video as the multipart field `video` (optional `domain`). The answer is "
            "the assessment: `assessment` (action, steps with start/end seconds, quality and "
            "analysis, components, score, reasoning), `problems` the parser found in the "
            "model's answer, `completion` (the raw answer), `window`, `fps`, `frame_times` "
            "and `timings`; for a calibrated model `interval` (the score's conformal "
            "interval) and `samples` (how sampled answers agree). `source` is the client's "
            "file name."
        ),
        openapi_extra=_MULTIPART_SCHEMA,
        responses=_REFUSALS,
    )
    async def assess(request: Request) -> JSONResponse:
        job = service.enqueue(await service.receive(request), remember=False)
        await asyncio.wrap_future(job.future)
        if job.failure is not None:
            raise Refused(job.failure.status, job.failure.message)
        return JSONResponse(job.outcome.data)

    @app.post(
        "/api/jobs",
        status_code=202,
        summary="Queue a video (or a bundled example) and answer at once with the job's URL",
        description=(
            "The same form as /api/assess, or `example` instead of `video`. Answers 202 once the "
            "upload is received and checked, with the job's URL (`Location` header and `url`), "
            "its `id`, `state` and `position` (jobs ahead of it); poll GET /api/jobs/{id} until "
            "`state` is `done` or `failed`. Jobs are assessed in the order they arrive."
        ),
        openapi_extra=_MULTIPART_SCHEMA,
        responses=_REFUSALS,
    )
    async def submit(request: Request) -> JSONResponse:
        job = service.enqueue(await service.receive(request))
        return JSONResponse(_job_status(service, job), status_code=202, headers={"Location": _job_url(job)})

    def _job(job_id: str) -> Job:
        job = service.queue.get(job_id)
        if job is None:
            raise Refused(404, "no such job (unknown id, or its result was dropped after a while)")
        return job

    def _done(job: Job) -> Outcome:
        if job.failure is not None:
            raise Refused(job.failure.status, job.failure.message)
        if job.outcome is None:
            raise Refused(409, "the job is not finished yet")
        return job.outcome

    @app.get("/api/jobs/{job_id}", summary="A job's state, progress and, when done, its result")
    def job_status(job_id: str) -> dict[str, Any]:
        return _job_status(service, _job(job_id))

    @app.get("/api/jobs/{job_id}/result.json", summary="Download a finished job's assessment as JSON")
    def job_json(job_id: str) -> JSONResponse:
        job = _job(job_id)
        outcome = _done(job)
        disposition = f'attachment; filename="{_download_name(job.name, ".json")}"'
        return JSONResponse(outcome.data, headers={"Content-Disposition": disposition})

    @app.get("/api/jobs/{job_id}/report.html", summary="Download a finished job's HTML report")
    def job_report(job_id: str) -> HTMLResponse:
        job = _job(job_id)
        outcome = _done(job)
        disposition = f'attachment; filename="{_download_name(job.name, ".html")}"'
        return HTMLResponse(
            outcome.report_html,
            headers={"Content-Disposition": disposition, "Content-Security-Policy": _DOCUMENT_CSP},
        )

    @app.get("/api/jobs/{job_id}/timeline.svg", summary="A finished job's step timeline over key frames")
    def job_timeline(job_id: str) -> Response:
        outcome = _done(_job(job_id))
        return Response(
            outcome.timeline_svg, media_type="image/svg+xml",
            headers={"Content-Security-Policy": _DOCUMENT_CSP},
        )

    return app


def _job_url(job: Job) -> str:
    return f"/api/jobs/{job.id}"


def _job_status(service: Service, job: Job) -> dict[str, Any]:
    now = time.monotonic()
    wait = service.queue.wait_estimate(job)
    out: dict[str, Any] = {
        "id": job.id,
        "url": _job_url(job),
        "name": job.name,
        "domain": job.domain,
        "example": job.example,
        "state": job.state,
        "position": service.queue.position(job),
        "wait_s": None if wait is None else round(wait, 1),
        "elapsed_s": round((job.finished or now) - (job.started or now), 2),
        "expected_s": service.queue.mean_seconds(),
        "error": None,
        "result": None,
        "truth": None,
    }
    if job.failure is not None:
        out["error"] = {"status": job.failure.status, "message": job.failure.message}
    if job.outcome is not None:
        base = _job_url(job)
        out["result"] = job.outcome.data
        out["truth"] = job.outcome.truth
        out["links"] = {
            "json": f"{base}/result.json",
            "report": f"{base}/report.html",
            "timeline": f"{base}/timeline.svg",
        }
    return out


# ---------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    # One process: the model is loaded once and shared; concurrency comes from the event loop
    # (uploads) and the queue (the model).
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", workers=1)


def serve(assessor: Any, config: ServeConfig | None = None, log_level: str = "info") -> None:
    """Run the app on ``config.host:config.port`` until interrupted (Ctrl-C).

    Raises:
        ConfigError: a setting this machine cannot meet (:func:`~hieroaction.serve.config.check_settings`:
            the upload folder, the address and port, ...), before anything starts.
        HieroActionError: the app did not start (uvicorn's log says why).
    """
    import uvicorn

    config = config or ServeConfig()
    check_settings(config)
    app = create_app(assessor, config)
    server = uvicorn.Server(_uvicorn_config(app, config.host, config.port, log_level))
    try:
        server.run()
    except SystemExit:
        if server.started:
            raise
        # uvicorn logs a failed start-up, then exits the process (or, in older versions, returns)
    if not server.started:
        raise HieroActionError(f"the server did not start on {config.host}:{config.port}; its log above says why")


class BackgroundServer:
    """The app served by uvicorn in a background thread (tests, notebooks).

    ``with BackgroundServer(app) as server: requests to server.url``. Port 0 picks a free port.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self.server = uvicorn.Server(_uvicorn_config(app, host, self.port, log_level))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, name="hieroaction-serve", daemon=True
        )

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        """Start serving; returns once the app has started (examples rendered, worker running)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise HieroActionError("the server stopped while starting; see its log")
            if time.monotonic() > deadline:
                raise HieroActionError(f"the server did not start within {timeout:g} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving and wait for the app's shutdown (upload folder and examples removed)."""
        self.server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
