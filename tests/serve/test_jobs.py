"""The job queue in front of the single worker: admission, first come first served, failures,
shutdown, and the Retry-After it derives from its state."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hieroaction.errors import ConfigError
from hieroaction.serve.jobs import (
    FIRST_GUESS_S,
    Busy,
    Job,
    JobQueue,
    expected_wait,
    retry_after,
)
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


def test_capacity_counts_waiting_and_running_jobs(gate_queue):
    gate, q = gate_queue
    a = q.submit(job("a"))
    assert gate.entered.acquire(timeout=10)  # a is running
    b = q.submit(job("b"))
    c = q.submit(job("c"))
    assert q.stats() == {"capacity": 3, "held": 3, "waiting": 2, "running": 1, "completed": 0}
    with pytest.raises(Busy) as info:
        q.check_room()
    assert info.value.retry_after >= 1 and "busy" in str(info.value)
    refused = job("refused")
    with pytest.raises(Busy):
        q.submit(refused)
    assert refused.number == 0 and q.get(refused.id) is None
    assert (q.position(a), q.position(b), q.position(c)) == (0, 1, 2)
    assert (a.number, b.number, c.number) == (1, 2, 3)
    for _ in range(3):
        gate.release.release()
    assert [wait(j).outcome for j in (a, b, c)] == ["assessed a", "assessed b", "assessed c"]
    assert gate.ran == ["a", "b", "c"] and len(gate.threads) == 1  # in order, on one thread
    assert q.stats()["held"] == 0 and q.stats()["completed"] == 3
    assert q.mean_seconds() is not None
    q.check_room()  # room again


def test_concurrent_submissions_are_served_in_the_order_they_were_taken(gate_queue):
    """Many threads submit at once while the worker is held: the worker then runs them in
    exactly the order the queue numbered them, and each one's position counted the ones ahead."""
    gate, q = gate_queue
    q.capacity = 40
    first = q.submit(job("first"))
    assert gate.entered.acquire(timeout=10)  # the worker is busy with it
    start = threading.Barrier(30)
    taken: list[tuple[Job, int]] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        start.wait(timeout=10)
        j = q.submit(job(f"j{i}"))
        position = q.position(j)
        with lock:
            taken.append((j, position))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(taken) == 30
    by_number = sorted(taken, key=lambda jp: jp[0].number)
    assert [j.number for j, _ in by_number] == list(range(2, 32))
    # each job saw at least the ones numbered before it still ahead (none could run: gate held)
    assert all(position == j.number - 1 for j, position in taken)
    for _ in range(31):
        gate.release.release()
    for j, _ in taken:
        wait(j)
    assert gate.ran == ["first"] + [j.name for j, _ in by_number]
    assert wait(first).state == "done"


def test_retry_after_is_the_work_ahead_at_the_measured_pace():
    assert retry_after(3, 2.0) == 6  # three jobs of 2 s each
    assert retry_after(3, 2.0, running_elapsed_s=1.5) == 5  # the running one is nearly done
    assert retry_after(3, 2.0, running_elapsed_s=60.0) == 4  # over its mean: taken to end now
    assert retry_after(1, 0.2) == 1 and retry_after(0, 9.0) == 1  # at least 1 s
    assert retry_after(4, 2.01) == 9  # rounded up
    assert retry_after(2, None) == 2 * FIRST_GUESS_S  # before any job has finished
    assert expected_wait(2, None) is None and expected_wait(0, 3.0) == 0.0
    assert expected_wait(2, 3.0, 1.0) == pytest.approx(5.0)


def test_a_full_queue_answers_with_the_retry_after_of_its_jobs(gate_queue):
    gate, q = gate_queue
    q._mean_s = 7.0  # as measured over earlier jobs
    jobs = [q.submit(job(n)) for n in ("a", "b", "c")]
    assert gate.entered.acquire(timeout=10)
    with pytest.raises(Busy) as info:
        q.check_room()
    # three jobs ahead of 7 s each, less what the running one has spent (at most its mean)
    assert 14 <= info.value.retry_after <= 21 and 14 <= q.retry_after() <= 21
    # the last one waits for two: the running one and the next
    assert 7.0 <= q.wait_estimate(jobs[2]) <= 14.0 and q.position(jobs[2]) == 2
    for _ in range(3):
        gate.release.release()
    for j in jobs:
        wait(j)
    assert q.wait_estimate(jobs[2]) == 0.0


def test_failures_keep_their_status_and_do_not_stop_the_worker(gate_queue):
    gate, q = gate_queue
    jobs = [q.submit(job(n)) for n in ("bad-user-input", "bad-config", "bug")]
    for _ in jobs:
        gate.release.release()
    done = [wait(j) for j in jobs]
    assert [(j.state, j.failure.status) for j in done] == [("failed", 415), ("failed", 422), ("failed", 500)]
    assert "boom" not in done[2].failure.message  # internals stay in the log
    ok = q.submit(job("after"))
    gate.release.release()
    assert wait(ok).state == "done"


def test_finished_jobs_are_remembered_up_to_keep(gate_queue):
    gate, q = gate_queue
    jobs = []
    for name in ("1", "2", "3"):
        jobs.append(q.submit(job(name)))
        gate.release.release()
        wait(jobs[-1])
    assert q.get(jobs[0].id) is None  # keep=2: the oldest went
    assert q.get(jobs[2].id) is jobs[2]
    hidden = q.submit(job("sync"), remember=False)
    gate.release.release()
    assert wait(hidden).state == "done" and q.get(hidden.id) is None


def test_finished_jobs_are_forgotten_after_their_ttl():
    q = JobQueue(lambda j: "ok", capacity=1, keep=10, ttl_s=0.05)
    q.start()
    try:
        done = wait(q.submit(job("x")))
        assert q.get(done.id) is done
        time.sleep(0.1)
        assert q.get(done.id) is None
    finally:
        q.close(timeout=10)


def test_a_job_whose_client_gave_up_is_not_run(gate_queue):
    gate, q = gate_queue
    first = q.submit(job("first"))
    assert gate.entered.acquire(timeout=10)
    gone = q.submit(job("gone"))
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
    running = q.submit(job("running"))
    assert gate.entered.acquire(timeout=10)
    waiting = q.submit(job("waiting"))
    closer = threading.Thread(target=q.close, kwargs={"timeout": 10})
    closer.start()
    time.sleep(0.05)
    gate.release.release()
    closer.join(10)
    assert wait(running).state == "done"
    assert wait(waiting).state == "failed" and waiting.failure.status == 503
    assert discarded == ["waiting"] and gate.ran == ["running"]
