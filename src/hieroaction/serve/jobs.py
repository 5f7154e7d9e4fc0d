"""The job queue in front of one worker thread, served first come, first served.

The model is loaded once and used by one thread only, so requests never compete for it (and
memory does not grow with the number of clients). :class:`JobQueue` holds the jobs that are
waiting or running, at most ``capacity`` of them, and hands them to the worker in the order
they arrived. A job enters the queue only once its upload is complete and checked: a client
still sending its video holds an upload slot (:class:`~hieroaction.serve.uploads.UploadSlots`),
never a place here, so slow uploads cannot keep others' work from running. When the queue is
full the next job is refused at once with :class:`Busy` (answered 429), whose ``retry_after``
is computed from the queue's real state by :func:`retry_after`: the jobs ahead times the
measured mean time of one job, less what the running job has already spent.

Finished jobs are kept for clients to fetch (at most ``keep``, for at most ``ttl_s``).
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
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
FIRST_GUESS_S = 5.0


def expected_wait(jobs_ahead: int, mean_s: float | None, running_elapsed_s: float = 0.0) -> float | None:
    """Seconds until ``jobs_ahead`` jobs have finished, one at a time: ``jobs_ahead`` times the
    mean time of a job, less what the running one (counted among them) has already spent
    (at most one mean: a job over its mean is taken to end now). ``None`` without a mean yet."""
    if mean_s is None:
        return None
    if jobs_ahead <= 0:
        return 0.0
    return max(0.0, jobs_ahead * mean_s - min(max(running_elapsed_s, 0.0), mean_s))


def retry_after(jobs_ahead: int, mean_s: float | None, running_elapsed_s: float = 0.0) -> int:
    """The ``Retry-After`` seconds for a client refused now: :func:`expected_wait` of the jobs
    ahead of it (:data:`FIRST_GUESS_S` per job before any has finished), rounded up, at
    least 1.

    A refused client told to come back when the work ahead of it is done returns when there is
    room, and clients refused later are told later, instead of every one of them being told the
    same few seconds and racing for the next free place.
    """
    wait = expected_wait(jobs_ahead, FIRST_GUESS_S if mean_s is None else mean_s, running_elapsed_s)
    return max(1, math.ceil(wait or 0.0))


class Busy(HieroActionError):
    """The queue (or the upload slots) are full; ``retry_after`` is the server's estimate
    (whole seconds, at least 1) of when there will be room."""

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
        number: its place in the order of arrival (1 for the first job the queue took).
    """

    name: str
    path: Path
    domain: str
    delete_after: bool = True
    example: str | None = None
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    number: int = 0
    state: State = "queued"
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    outcome: Any = None
    failure: JobFailure | None = None
    future: Future = field(default_factory=Future, repr=False)


class JobQueue:
    """At most ``capacity`` jobs, waiting or running, and one worker thread running
    ``work(job) -> outcome`` on them in the order they were submitted.

    Args:
        work: called in the worker thread for each job; its return value becomes
            ``job.outcome``. A :class:`HieroActionError` with a ``status`` attribute fails the
            job with that status and message; any other exception fails it with 500.
        capacity: jobs held at once (waiting or running).
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
        self._wake = threading.Condition(self._lock)
        self._waiting: deque[Job] = deque()  # in order of arrival; the worker takes the front
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # remembered jobs, oldest first
        self._running: Job | None = None
        self._numbers = itertools.count(1)
        self._mean_s: float | None = None
        self._completed = 0
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- admission ----------------------------------------------------------------------------

    def _held_locked(self) -> int:
        return len(self._waiting) + (self._running is not None)

    def _busy_locked(self) -> Busy:
        held = self._held_locked()
        return Busy(
            f"the server is busy ({held} videos waiting or being assessed, the limit is "
            f"{self.capacity}); try again later",
            retry_after(held, self._mean_s, self._running_elapsed_locked()),
        )

    def check_room(self) -> None:
        """Raise :class:`Busy` when the queue is full now (so an upload can be refused before
        its body is read); takes no place."""
        with self._lock:
            if self._held_locked() >= self.capacity:
                raise self._busy_locked()

    def submit(self, job: Job, remember: bool = True) -> Job:
        """Put ``job`` at the back of the line; ``remember``: keep it for :meth:`get`.

        Raises:
            Busy: ``capacity`` jobs are already waiting or running (the job is not queued;
                its file is the caller's to delete).
        """
        with self._lock:
            if self._stopping:
                raise Busy("the server is stopping", retry_after(1, self._mean_s))
            if self._held_locked() >= self.capacity:
                raise self._busy_locked()
            job.number = next(self._numbers)
            job.submitted = time.monotonic()
            self._waiting.append(job)
            if remember:
                self._forget_old_locked()
                self._jobs[job.id] = job
            self._wake.notify()
        return job

    # -- state --------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """A remembered job by id (``None`` when unknown or forgotten)."""
        with self._lock:
            self._forget_old_locked()
            return self._jobs.get(job_id)

    def _position_locked(self, job: Job) -> int:
        if job.state != "queued" or job not in self._waiting:
            return 0
        return self._waiting.index(job) + (1 if self._running is not None else 0)

    def _running_elapsed_locked(self) -> float:
        running = self._running
        if running is None or running.started is None:
            return 0.0
        return time.monotonic() - running.started

    def position(self, job: Job) -> int:
        """Jobs ahead of ``job``, the running one included (0: it is running or finished)."""
        with self._lock:
            return self._position_locked(job)

    def wait_estimate(self, job: Job) -> float | None:
        """Seconds until ``job`` should start (:func:`expected_wait` of the jobs ahead of it);
        ``None`` before any job has finished, 0 once it runs."""
        with self._lock:
            ahead = self._position_locked(job)
            return expected_wait(ahead, self._mean_s, self._running_elapsed_locked())

    def mean_seconds(self) -> float | None:
        """Running mean of recent jobs' durations (``None`` before the first)."""
        return self._mean_s

    def retry_after(self) -> int:
        """:func:`retry_after` for a client arriving now: every job held is ahead of it."""
        with self._lock:
            return retry_after(self._held_locked(), self._mean_s, self._running_elapsed_locked())

    def stats(self) -> dict[str, int]:
        """Counts for the health endpoint."""
        with self._lock:
            return {
                "capacity": self.capacity,
                "held": self._held_locked(),
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
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        while True:
            with self._lock:
                if not self._waiting:
                    break
                job = self._waiting[0]
            self._drop(job, JobFailure(503, "the server stopped before this video was assessed"))

    def _drop(self, job: Job, failure: JobFailure) -> None:
        """End a job that will not run, deleting its file."""
        self._finish(job, None, failure)
        if self._on_discard is not None:
            self._on_discard(job)

    def _next(self) -> Job | None:
        """The job at the front of the line, marked running (``None``: stop)."""
        while True:
            with self._lock:
                while not self._waiting and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return None
                job = self._waiting[0]
                if job.future.set_running_or_notify_cancel():
                    self._waiting.popleft()
                    self._running = job
                    job.state = "running"
                    job.started = time.monotonic()
                    return job
            # Its client stopped waiting (POST /api/assess disconnected): skip the work.
            self._drop(job, JobFailure(499, "the client stopped waiting"))

    def _loop(self) -> None:
        while (job := self._next()) is not None:
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
            self._forget_old_locked()
        if not job.future.done():
            job.future.set_result(job)
