"""The HTTP API on a real server (uvicorn on a loopback port) with the tiny model."""

from __future__ import annotations

import select
import socket
import time

import pytest

from tests.serve.client import (
    post_form,
    read_answer,
    request,
    require_serve_extra,
    upload_files,
    wait_until,
)

require_serve_extra()

LIMIT_MB = 1


@pytest.fixture(scope="module")
def server(start_server):
    with start_server(max_upload_mb=LIMIT_MB) as running:
        yield running


def test_health_info_and_the_openapi_description(server):
    health = request(server, "GET", "/api/health")
    assert health.status == 200 and health.json()["status"] == "ok"
    assert health.json()["queue"]["capacity"] == 16 and health.json()["uploads"]["capacity"] == 8
    info = request(server, "GET", "/api/info").json()
    assert info["max_upload_bytes"] == LIMIT_MB * 1024 * 1024 and "synth" in info["domains"]
    assert len(info["examples"]) == 1 and info["examples"][0]["thumbnail"].startswith("data:image/jpeg;base64,")
    spec = request(server, "GET", "/openapi.json").json()
    body = spec["paths"]["/api/assess"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["video"] == {**body["properties"]["video"], "type": "string", "format": "binary"}
    assert {"413", "415", "422", "429", "504"} <= set(spec["paths"]["/api/assess"]["post"]["responses"])
    assert "/api/health" in spec["paths"] and "/api/jobs/{job_id}" in spec["paths"]


def test_a_good_upload_is_assessed_and_then_deleted(server, clips):
    answer = post_form(server, "/api/assess", {"domain": "synth"}, {"video": ("my dive.mp4", clips[0].read_bytes())})
    assert answer.status == 200, answer
    result = answer.json()
    assert result["source"] == "my dive.mp4" and result["domain"] == "synth" and result["error"] is None
    assert set(result["assessment"]) >= {"action", "steps", "score", "components", "recognition_reasoning"}
    assert len(result["frame_times"]) == 4 and isinstance(result["completion"], str)
    assert result["window"][1] > result["window"][0]
    assert answer.headers["content-type"] == "application/json" and answer.headers["cache-control"] == "no-store"
    # the server's private paths never reach the client
    assert str(server.app.state.service.uploads.path) not in answer.body.decode()
    assert upload_files(server) == []


def test_a_corrupt_file_is_refused_with_its_name_and_deleted(server, corrupt_mp4):
    answer = post_form(server, "/api/assess", files={"video": ("broken.mp4", corrupt_mp4.read_bytes())})
    assert answer.status == 422
    detail = answer.json()["detail"]
    assert detail.startswith("broken.mp4:") and "no video frame can be decoded" in detail
    assert ".upload" not in detail and upload_files(server) == []


def test_a_text_file_named_mp4_is_refused_by_content(server, text_mp4):
    answer = post_form(server, "/api/assess", files={"video": ("notes.mp4", text_mp4.read_bytes())})
    assert answer.status == 415
    assert "notes.mp4: not a video file" in answer.json()["detail"]
    assert upload_files(server) == []


def test_a_video_named_txt_is_accepted_with_the_servers_domain(server, clips):
    answer = post_form(server, "/api/assess", files={"video": ("clip.txt", clips[1].read_bytes())})
    assert answer.status == 200 and answer.json()["domain"] == "synth"


def test_an_oversized_declared_body_is_refused_before_any_of_it_is_sent(server):
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(
            b"POST /api/assess HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\n"
            b"Content-Length: 2000000000\r\n\r\n"
        )
        head = read_answer(sock)  # answered without one byte of the body
    assert head.startswith(b"HTTP/1.1 413"), head
    assert upload_files(server) == []


def test_an_oversized_streamed_body_is_refused_before_it_is_read_in_full(server, clips):
    """A chunked body has no length: the server counts and answers 413 once past the limit,
    while the client is still sending."""
    total = 64 * 1024 * 1024
    start = (
        b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n\r\n'
        + clips[0].read_bytes()
    )
    piece = bytes(64 * 1024)

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    sent, head = 0, b""
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(
            b"POST /api/assess HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(chunk(start))
        sent = len(start)
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the answer is here: stop sending
                sock.sendall(chunk(piece))
                sent += len(piece)
        except OSError:
            pass  # the server may close while we send; its answer is already on its way
        head = read_answer(sock)
    assert head.startswith(b"HTTP/1.1 413"), head
    # the client had sent about the limit plus what the socket buffers hold, not the body
    assert sent < total / 2
    assert upload_files(server) == []


@pytest.mark.parametrize(
    ("fields", "files", "status", "words"),
    [
        ({"domain": "synth"}, None, 422, "no 'video' file field"),
        ({"domain": "synth"}, {"file": ("a.mp4", b"x")}, 422, "no 'video' file field"),
        ({"domain": "curling"}, "clip", 422, "unknown domain 'curling'"),
        ({"domain": "../domains/data/diving"}, "clip", 422, "unknown domain"),
        ({"example": "nope"}, None, 422, "unknown example"),
    ],
    ids=["no-fields", "wrong-field-name", "unknown-domain", "path-as-domain", "unknown-example"],
)
def test_missing_or_bad_fields_are_refused_with_a_sentence(server, clips, fields, files, status, words):
    if files == "clip":
        files = {"video": ("a.mp4", clips[0].read_bytes())}
    answer = post_form(server, "/api/assess", fields, files)
    assert answer.status == status and words in answer.json()["detail"]
    assert upload_files(server) == []


def test_a_body_that_is_not_a_form_is_refused(server):
    answer = request(server, "POST", "/api/assess", b'{"video": 1}', {"Content-Type": "application/json"})
    assert answer.status == 415 and "multipart/form-data" in answer.json()["detail"]


def _wait_for(server, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        status = request(server, "GET", f"/api/jobs/{job_id}").json()
        seen.add(status["state"])
        if status["state"] in ("done", "failed"):
            status["seen"] = seen
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_a_queued_example_job_is_followed_and_downloaded(server):
    example = request(server, "GET", "/api/info").json()["examples"][0]
    queued = post_form(server, "/api/jobs", {"example": example["id"]})
    assert queued.status == 202
    job = queued.json()
    assert job["state"] in ("queued", "running", "done") and job["name"] == example["name"]
    assert queued.headers["location"] == job["url"] == f"/api/jobs/{job['id']}"
    assert isinstance(job["position"], int) and job["position"] >= 0
    done = _wait_for(server, job["id"])
    assert done["state"] == "done" and done["domain"] == "synth"
    assert done["truth"]["action"] == example["action"] and done["truth"]["score"] == example["score"]
    assert len(done["truth"]["steps"]) >= 3
    as_json = request(server, "GET", done["links"]["json"])
    assert as_json.status == 200 and "attachment" in as_json.headers["content-disposition"]
    assert as_json.json() == done["result"]
    report = request(server, "GET", done["links"]["report"])
    assert report.status == 200 and report.headers["content-type"].startswith("text/html")
    assert "sandbox" in report.headers["content-security-policy"]
    html = report.body.decode()
    assert "<svg" in html and "data:image/jpeg;base64," in html and example["action"] in html
    svg = request(server, "GET", done["links"]["timeline"])
    assert svg.headers["content-type"].startswith("image/svg+xml") and svg.body.startswith(b"<svg")
    assert b">true</text>" in svg.body  # the example's true steps are drawn under the predicted ones


def test_a_failed_upload_job_reports_its_reason(server, corrupt_mp4):
    answer = post_form(server, "/api/jobs", files={"video": ("broken.mp4", corrupt_mp4.read_bytes())})
    assert answer.status == 422  # refused before it is queued


def test_unknown_jobs_and_files_are_not_found(server):
    unknown = request(server, "GET", "/api/jobs/nope")
    assert unknown.status == 404 and "no such job" in unknown.json()["detail"]
    assert request(server, "GET", "/api/jobs/nope/report.html").status == 404
    for path in ("/static/../app.py", "/static/index.html", "/static/config.py", "/uploads", "/api/uploads"):
        assert request(server, "GET", path).status == 404, path


def test_the_page_loads_only_its_own_files(server):
    page = request(server, "GET", "/")
    assert page.status == 200 and b'<script src="/static/app.js"' in page.body
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert request(server, "GET", "/static/app.js").headers["content-type"].startswith("text/javascript")
    assert request(server, "GET", "/static/style.css").status == 200


def test_an_assessment_over_the_time_limit_is_answered_504(server, start_server, assessor, clips):
    inference = {"max_new_tokens": 64, "frames": {"num_frames": 4}, "domain": "synth"}
    with start_server(timeout_s=0.01, inference=inference) as slow:
        answer = post_form(slow, "/api/assess", files={"video": ("slow.mp4", clips[0].read_bytes())})
        assert answer.status == 504 and "longer than the limit of 0.01 s" in answer.json()["detail"]
        assert upload_files(slow) == []
        assert request(slow, "GET", "/api/health").status == 200
    # generation's time limit belongs to the app: it is put back when the app stops
    assert assessor.model.generation_config.max_time == server.app.state.service.config.timeout_s


def test_an_upload_that_takes_too_long_is_answered_408(start_server):
    with start_server(upload_timeout_s=0.3) as server:
        with socket.create_connection((server.host, server.port)) as sock:
            sock.sendall(
                b"POST /api/assess HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
                b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n'
                b"\x00\x00\x00\x18ftypmp42"
            )
            head = read_answer(sock)  # ... and then nothing more
        assert head.startswith(b"HTTP/1.1 408"), head
        assert upload_files(server) == []
        assert request(server, "GET", "/api/health").json()["queue"]["held"] == 0


def test_a_finished_job_is_dropped_after_its_time(start_server):
    with start_server(result_ttl_s=0.2) as server:
        example = request(server, "GET", "/api/info").json()["examples"][0]
        job = post_form(server, "/api/jobs", {"example": example["id"]}).json()
        done = _wait_for(server, job["id"])
        assert done["state"] == "done"
        service = server.app.state.service
        finished = service.queue.get(job["id"])  # None when its time has passed already
        # once the result is older than result_ttl_s it is gone (404), not merely hidden
        wait_until(lambda: finished is None or time.monotonic() - finished.finished > 0.2,
                   what="the result's time to pass")
        assert request(server, "GET", job["url"]).status == 404
        assert request(server, "GET", f"{job['url']}/result.json").status == 404


def test_the_server_removes_its_private_folders_when_it_stops(start_server):
    with start_server() as server:
        service = server.app.state.service
        uploads, examples = service.uploads.path, service.examples.folder
        assert uploads.is_dir() and examples.is_dir()
    assert not uploads.exists() and not examples.exists()
