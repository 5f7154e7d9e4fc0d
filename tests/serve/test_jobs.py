"""The bounded queue in front of the single worker: admission, order, failures, shutdown."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hieroaction.errors import ConfigError
from hieroaction.serve.jobs import Busy, Job, JobQueue
from hieroaction.serve.uploads import Refused


class Gate:
    """A work function that records the jobs it runs and waits for permission to finish each."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.threads: set[int] = set()
        self.release = threading.Semaphore(0)
        self.entered = threading.Semaphore(0)

    def __call__(self, job: Job) -> str:
        self.threads.add(threading.get_ident())
        self.ran.append(job.name)
        self.entered.release()
        assert self.release.acquire(timeout=10)
        if job.name == "bad-user-input":
            raise Refused(415, "not a video")
        if job.name == "bad-config":
            raise ConfigError("unknown domain")
        if job.name == "bug":
            raise RuntimeError("boom")
        return f"assessed {job.name}"


def job(name: str) -> Job:
    return Job(name=name, path=Path(f"/nonexistent/{name}"), domain="generic")


def wait(job_: Job) -> Job:
    return job_.future.result(timeout=10)


@pytest.fixture()
def gate_queue():
    gate = Gate()
    q = JobQueue(gate, capacity=3, keep=2, ttl_s=60)
    q.start()
    yield gate, q
    for _ in range(10):
        gate.release.release()
    q.close(timeout=10)


def test_capacity_counts_uploads_waiting_and_running_jobs(gate_queue):
    gate, q = gate_queue
    a = q.submit(q.reserve(), job("a"))
    assert gate.entered.acquire(timeout=10)  # a is running
    b = q.submit(q.reserve(), job("b"))
    uploading = q.reserve()  # a third client is still sending its video
    assert q.stats() == {"capacity": 3, "held": 3, "waiting": 1, "running": 1, "completed": 0}
    with pytest.raises(Busy) as info:
        q.reserve()
    assert info.value.retry_after >= 1 and "busy" in str(info.value)
    assert q.position(a) == 0 and q.position(b) == 1
    uploading.release()  # its upload was refused: the place comes back at once
    c = q.submit(q.reserve(), job("c"))
    for _ in range(3):
        gate.release.release()
    assert [wait(j).outcome for j in (a, b, c)] == ["assessed a", "assessed b", "assessed c"]
    assert gate.ran == ["a", "b", "c"] and len(gate.threads) == 1  # in order, on one thread
    assert q.stats()["held"] == 0 and q.stats()["completed"] == 3
    assert q.mean_seconds() is not None


def test_a_reservation_left_unused_is_given_back(gate_queue):
    _, q = gate_queue
    for _ in range(5):
        with q.reserve():
            pass  # e.g. the upload was too large
    assert q.stats()["held"] == 0


def test_failures_keep_their_status_and_do_not_stop_the_worker(gate_queue):
    gate, q = gate_queue
    jobs = [q.submit(q.reserve(), job(n)) for n in ("bad-user-input", "bad-config", "bug")]
    for _ in jobs:
        gate.release.release()
    done = [wait(j) for j in jobs]
    assert [(j.state, j.failure.status) for j in done] == [("failed", 415), ("failed", 422), ("failed", 500)]
    assert "boom" not in done[2].failure.message  # internals stay in the log
    ok = q.submit(q.reserve(), job("after"))
    gate.release.release()
    assert wait(ok).state == "done"


def test_finished_jobs_are_remembered_up_to_keep(gate_queue):
    gate, q = gate_queue
    jobs = []
    for name in ("1", "2", "3"):
        jobs.append(q.submit(q.reserve(), job(name)))
        gate.release.release()
        wait(jobs[-1])
    assert q.get(jobs[0].id) is None  # keep=2: the oldest went
    assert q.get(jobs[2].id) is jobs[2]
    hidden = q.submit(q.reserve(), job("sync"), remember=False)
    gate.release.release()
    assert wait(hidden).state == "done" and q.get(hidden.id) is None


def test_finished_jobs_are_forgotten_after_their_ttl():
    q = JobQueue(lambda j: "ok", capacity=1, keep=10, ttl_s=0.05)
    q.start()
    try:
        done = wait(q.submit(q.reserve(), job("x")))
        assert q.get(done.id) is done
        time.sleep(0.1)
        assert q.get(done.id) is None
    finally:
        q.close(timeout=10)


def test_a_job_whose_client_gave_up_is_not_run(gate_queue):
    gate, q = gate_queue
    first = q.submit(q.reserve(), job("first"))
    assert gate.entered.acquire(timeout=10)
    gone = q.submit(q.reserve(), job("gone"))
    assert gone.future.cancel()
    gate.release.release()
    wait(first)
    deadline = time.monotonic() + 10
    while gone.state == "queued" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone.state == "failed" and "gone" not in gate.ran
    assert q.stats()["held"] == 0


def test_close_finishes_the_running_job_and_discards_the_waiting_ones():
    gate = Gate()
    discarded: list[str] = []
    q = JobQueue(gate, capacity=3, on_discard=lambda j: discarded.append(j.name))
    q.start()
    running = q.submit(q.reserve(), job("running"))
    assert gate.entered.acquire(timeout=10)
    waiting = q.submit(q.reserve(), job("waiting"))
    closer = threading.Thread(target=q.close, kwargs={"timeout": 10})
    closer.start()
    time.sleep(0.05)
    gate.release.release()
    closer.join(10)
    assert wait(running).state == "done"
    assert wait(waiting).state == "failed" and waiting.failure.status == 503
    assert discarded == ["waiting"] and gate.ran == ["running"]
