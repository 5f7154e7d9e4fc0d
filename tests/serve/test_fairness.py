"""Fairness on a real server: jobs are assessed in the order they arrive, a slow upload holds an
upload slot and never a place in the job queue, an upload under the minimum rate is cut, and a
full queue answers with a Retry-After taken from its state.

The model is the shared tiny one behind a gate (:class:`~tests.serve.client.GatedAssessor`) that holds the worker
until the test lets it go, so the tests count order and places, never time.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.serve.client import (
    GatedAssessor,
    answered,
    post_form,
    read_answer,
    request,
    require_serve_extra,
    start_upload,
    upload_files,
    wait_until,
)

require_serve_extra()


def _health(server: Any) -> dict:
    return request(server, "GET", "/api/health").json()


def _finish(server: Any, job_id: str) -> dict:
    status: dict = {}

    def done() -> bool:
        status.update(request(server, "GET", f"/api/jobs/{job_id}").json())
        return status["state"] in ("done", "failed")

    wait_until(done, timeout=120, what=f"job {job_id} to finish")
    return status


def test_concurrent_submissions_are_assessed_first_come_first_served(start_server, assessor, clips):
    gated = GatedAssessor(assessor)
    video = {"video": ("clip.mp4", clips[0].read_bytes())}
    clients = 8
    with start_server(gated, queue_size=clients + 1) as server:
        first = post_form(server, "/api/jobs", {"domain": "synth"}, video).json()
        assert gated.entered.acquire(timeout=60)  # the worker holds the first job
        start = threading.Barrier(clients)

        def submit(_: int) -> Any:
            start.wait(timeout=30)
            return post_form(server, "/api/jobs", {"domain": "synth"}, video)

        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(submit, range(clients)))
        assert [a.status for a in answers] == [202] * clients
        jobs = [a.json() for a in answers]
        # each was told its place in line: all different, right behind the running job
        assert sorted(j["position"] for j in jobs) == list(range(1, clients + 1))
        assert all(j["state"] == "queued" for j in jobs)
        ahead = {j["id"]: request(server, "GET", j["url"]).json()["position"] for j in jobs}
        assert ahead == {j["id"]: j["position"] for j in jobs}  # nothing moved while the worker is held

        gated.gate.set()
        for j in [first, *jobs]:
            assert _finish(server, j["id"])["state"] == "done"
        queue = server.app.state.service.queue
        path_of = {queue.get(j["id"]).path: j for j in jobs}
        served = [path_of[p]["position"] for p in gated.order[1:]]
        assert served == list(range(1, clients + 1))  # in the order they were given places
        assert upload_files(server) == []


def test_a_trickling_upload_takes_no_place_in_the_queue(start_server, assessor, clips):
    """One place in the queue; a client sends the start of its video and then nothing. Before,
    it held the only place until the upload time limit; now another client's job runs while it
    still trickles."""
    with start_server(queue_size=1, max_uploads=2, upload_grace_s=300) as server:
        slow = start_upload(server)
        try:
            wait_until(lambda: _health(server)["uploads"]["active"] == 1, what="the slow upload to start")
            health = _health(server)
            assert health["queue"]["held"] == 0  # receiving is not queueing
            answer = post_form(server, "/api/assess", {"domain": "synth"}, {"video": ("a.mp4", clips[0].read_bytes())})
            assert answer.status == 200, answer
            assert not answered(slow)  # the slow client is still sending, unharmed
            slow.sendall(b"\x00" * 100)
            assert _health(server)["uploads"]["active"] == 1
        finally:
            slow.close()
        wait_until(lambda: _health(server)["uploads"]["active"] == 0 and upload_files(server) == [],
                   what="the abandoned upload to be deleted")


def test_an_upload_under_the_minimum_rate_is_cut_with_408(start_server):
    with start_server(min_upload_bytes_per_second=1000, upload_grace_s=0.2) as server:
        slow = start_upload(server)
        sent = 0
        try:
            # a byte every few hundredths of a second, far under 1000 bytes/s, until answered
            while not answered(slow) and sent < 20_000:
                time.sleep(0.02)
                try:
                    slow.sendall(b"\x00")
                except OSError:
                    break
                sent += 1
            head = read_answer(slow)
        finally:
            slow.close()
        assert head.startswith(b"HTTP/1.1 408"), head
        assert b"too slow" in head and b"minimum of 1,000 bytes/s" in head
        assert sent < 20_000  # cut while it was still sending
        assert upload_files(server) == []  # its partial file is deleted
        health = _health(server)
        assert health["uploads"]["active"] == 0 and health["queue"]["held"] == 0


def test_full_upload_slots_answer_429_before_reading(start_server, clips):
    with start_server(max_uploads=1, upload_grace_s=300) as server:
        slow = start_upload(server)
        try:
            wait_until(lambda: _health(server)["uploads"]["active"] == 1, what="the slow upload to start")
            answer = post_form(server, "/api/jobs", files={"video": ("a.mp4", clips[0].read_bytes())})
            assert answer.status == 429 and "uploads" in answer.json()["detail"]
            assert int(answer.headers["retry-after"]) >= 1
        finally:
            slow.close()
        wait_until(lambda: _health(server)["uploads"]["active"] == 0, what="the slot to come back")
        assert post_form(server, "/api/jobs", {"domain": "synth"}, {"video": ("a.mp4", clips[0].read_bytes())}).status == 202


def test_a_full_queue_answers_429_with_retry_after_from_its_jobs(start_server, assessor, clips):
    gated = GatedAssessor(assessor)
    video = {"video": ("a.mp4", clips[0].read_bytes())}
    with start_server(gated, queue_size=2) as server:
        queue = server.app.state.service.queue
        queue._mean_s = 6.0  # as if measured over earlier jobs
        jobs = [post_form(server, "/api/jobs", {"domain": "synth"}, video).json() for _ in range(2)]
        assert gated.entered.acquire(timeout=60)
        answer = post_form(server, "/api/assess", files=video)
        assert answer.status == 429 and "busy" in answer.json()["detail"]
        # two jobs ahead at 6 s each, less what the running one has spent (at most its mean)
        assert 6 <= int(answer.headers["retry-after"]) <= 12
        assert len(upload_files(server)) == 2  # the two jobs' files; the refused body was never read
        gated.gate.set()
        for j in jobs:
            assert _finish(server, j["id"])["state"] == "done"
        assert post_form(server, "/api/assess", files=video).status == 200
