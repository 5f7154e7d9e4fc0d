"""A bounded job queue in front of one worker thread.

The model is loaded once and used by one thread only, so requests never compete for it (and
memory does not grow with the number of clients). :class:`JobQueue` counts every video the
server holds, from the moment its upload starts (:meth:`JobQueue.reserve`) until it is
assessed; when ``capacity`` are held, the next request is refused at once with :class:`Busy`
(answered 429 with ``Retry-After``) instead of waiting in an ever longer line.

Finished jobs are kept for the page to fetch (at most ``keep``, for at most ``ttl_s``).
"""

from __future__ import annotations

import logging
import math
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hieroaction.errors import HieroActionError

logger = logging.getLogger("hieroaction.serve")

State = Literal["queued", "running", "done", "failed"]

# Weight of the newest job in the running mean of job durations (progress and Retry-After).
_DURATION_SMOOTHING = 0.3
# Seconds per job assumed before any job has finished (only for Retry-After).
_FIRST_GUESS_S = 5.0


class Busy(HieroActionError):
    """The queue is full; ``retry_after`` is the server's estimate (seconds) of when a place frees."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class JobFailure:
    """Why a job produced no result: the HTTP status and one sentence."""

    status: int
    message: str


@dataclass
class Job:
    """One video on its way through the queue.

    Attributes:
        name: what the client called the file (display only).
        path: the file to assess (an upload in the private folder, or a bundled example).
        domain: the domain to prompt for.
        delete_after: delete ``path`` when the job ends (uploads: yes, examples: no).
        example: id of the bundled example, when the job is one.
        id: random, unguessable id (the only handle a client gets).
    """

    name: str
    path: Path
    domain: str
    delete_after: bool = True
    example: str | None = None
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    state: State = "queued"
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    outcome: Any = None
    failure: JobFailure | None = None
    future: Future = field(default_factory=Future, repr=False)


class Reservation:
    """A place in the queue, held from the start of an upload; give it to :meth:`JobQueue.submit`
    or let it go (leaving the ``with`` block without submitting releases it)."""

    def __init__(self, owner: JobQueue) -> None:
        self._owner = owner
        self.used = False
        self.released = False

    def release(self) -> None:
        """Give the place back (idempotent; a no-op once submitted)."""
        if not self.used and not self.released:
            self.released = True
            self._owner._release()

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_STOP = object()


class JobQueue:
    """Bounded queue + one worker thread running ``work(job) -> outcome``.

    Args:
        work: called in the worker thread for each job; its return value becomes
            ``job.outcome``. A :class:`HieroActionError` with a ``status`` attribute fails the
            job with that status and message; any other exception fails it with 500.
        capacity: jobs held at once (reserved, waiting or running).
        keep: finished jobs remembered for :meth:`get`.
        ttl_s: seconds a finished job is remembered.
        on_discard: called for a job that never ran (shutdown, or its client gave up), to
            delete its file.
    """

    def __init__(
        self,
        work: Callable[[Job], Any],
        capacity: int,
        keep: int = 32,
        ttl_s: float = 3600.0,
        on_discard: Callable[[Job], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._work = work
        self.capacity = capacity
        self._keep = keep
        self._ttl_s = ttl_s
        self._on_discard = on_discard
        self._lock = threading.Lock()
        self._held = 0
        self._waiting: list[Job] = []  # in order; the worker takes from the front
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # remembered jobs, oldest first
        self._running: Job | None = None
        self._mean_s: float | None = None
        self._completed = 0
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- admission ----------------------------------------------------------------------------

    def reserve(self) -> Reservation:
        """A place for one more video, or :class:`Busy` when ``capacity`` are held."""
        with self._lock:
            if self._held >= self.capacity:
                raise Busy(
                    f"the server is busy ({self._held} videos in hand, the limit is {self.capacity}); "
                    "try again shortly",
                    self._retry_after_locked(),
                )
            self._held += 1
        return Reservation(self)

    def _release(self) -> None:
        with self._lock:
            self._held -= 1

    def submit(self, reservation: Reservation, job: Job, remember: bool = True) -> Job:
        """Queue ``job`` in the place ``reservation`` holds; ``remember``: keep it for :meth:`get`."""
        if reservation.used or reservation.released:
            raise RuntimeError("a reservation can be used once")
        reservation.used = True
        with self._lock:
            self._waiting.append(job)
            if remember:
                self._forget_old_locked()
                self._jobs[job.id] = job
        self._inbox.put(job)
        return job

    # -- state --------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """A remembered job by id (``None`` when unknown or forgotten)."""
        with self._lock:
            self._forget_old_locked()
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """Jobs ahead of ``job``, the running one included (0: it is running or finished)."""
        with self._lock:
            if job.state != "queued":
                return 0
            ahead = self._waiting.index(job) if job in self._waiting else 0
            return ahead + (1 if self._running is not None else 0)

    def mean_seconds(self) -> float | None:
        """Running mean of recent jobs' durations (``None`` before the first)."""
        return self._mean_s

    def _retry_after_locked(self) -> int:
        per_job = self._mean_s if self._mean_s is not None else _FIRST_GUESS_S
        # The first place frees when the running job ends; one job's time is the fair estimate.
        return max(1, math.ceil(per_job))

    def stats(self) -> dict[str, int]:
        """Counts for the health endpoint."""
        with self._lock:
            return {
                "capacity": self.capacity,
                "held": self._held,
                "waiting": len(self._waiting),
                "running": int(self._running is not None),
                "completed": self._completed,
            }

    def _forget_old_locked(self) -> None:
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.finished is not None]
        for job in finished:
            if now - job.finished > self._ttl_s:  # type: ignore[operator]
                del self._jobs[job.id]
        finished = [j for j in self._jobs.values() if j.finished is not None]
        for job in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job.id]

    # -- worker -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="hieroaction-serve-worker", daemon=True)
            self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Stop after the running job; jobs still waiting fail with 503 and are discarded."""
        self._stopping = True
        self._inbox.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        while True:
            try:
                job = self._inbox.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                self._drop(job, JobFailure(503, "the server stopped before this video was assessed"))

    def _drop(self, job: Job, failure: JobFailure) -> None:
        """End a job that will not run, deleting its file."""
        self._finish(job, None, failure)
        if self._on_discard is not None:
            self._on_discard(job)

    def _loop(self) -> None:
        while True:
            job = self._inbox.get()
            if job is _STOP:
                return
            if self._stopping:
                self._drop(job, JobFailure(503, "the server stopped before this video was assessed"))
                continue
            if not job.future.set_running_or_notify_cancel():
                # Its client stopped waiting (POST /api/assess disconnected): skip the work.
                self._drop(job, JobFailure(499, "the client stopped waiting"))
                continue
            with self._lock:
                self._waiting.remove(job)
                self._running = job
                job.state = "running"
                job.started = time.monotonic()
            outcome, failure = None, None
            try:
                outcome = self._work(job)
            except HieroActionError as exc:
                failure = JobFailure(getattr(exc, "status", 422), str(exc))
            except Exception:  # noqa: BLE001 - a bug must not kill the worker; it is logged
                logger.exception("assessing %s failed", job.name)
                failure = JobFailure(500, "the server failed while assessing this video; see its log")
            self._finish(job, outcome, failure)

    def _finish(self, job: Job, outcome: Any, failure: JobFailure | None) -> None:
        with self._lock:
            if job in self._waiting:
                self._waiting.remove(job)
            job.finished = time.monotonic()
            job.outcome, job.failure = outcome, failure
            job.state = "failed" if failure is not None else "done"
            if self._running is job:
                self._running = None
                self._completed += 1
                took = job.finished - (job.started or job.finished)
                self._mean_s = took if self._mean_s is None else (
                    (1 - _DURATION_SMOOTHING) * self._mean_s + _DURATION_SMOOTHING * took
                )
            self._held -= 1
            self._forget_old_locked()
        if not job.future.done():
            job.future.set_result(job)
