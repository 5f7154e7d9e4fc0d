"""Load on loopback: 50 concurrent uploads against the tiny model, on a server started as its own
process by the real command line (so its memory is measured alone).

Bounded in count (two bursts of 50) and in time (every request has a deadline). Checks: no
5xx, the excess is answered 429 with Retry-After, the server's memory does not grow from one
burst to the next, and it still answers afterwards.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.serve.client import multipart, require_serve_extra

require_serve_extra()

CONCURRENT = 50
QUEUE_SIZE = 2
REQUEST_TIMEOUT_S = 60.0
START_TIMEOUT_S = 90.0
# The server's RSS may grow this much from the first burst to the second (allocator noise);
# a leak of one upload (~20 KB) or one result (~50 KB) per request would be 1-3 MiB per burst,
# a leak of decoded frames or model activations far more.
PLATEAU_MIB = 24

# Only the serve command is registered, so other areas' commands cannot break this test.
LAUNCH = (
    "import sys; from hieroaction import cli; sys.exit(cli.main(sys.argv[1:], groups=('serve',)))"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


class Client:
    """Minimal HTTP/1.1 client over one socket per request (no pooling, so 50 are 50)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, dict[str, str]]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": content_type})
            response = conn.getresponse()
            response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()

    def get(self, path: str) -> int:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


@pytest.fixture()
def server_process(tiny_model, tmp_path):
    if not Path("/proc/self/status").is_file():
        pytest.skip("memory is measured from /proc (Linux)")
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "--model", str(tiny_model), "--port", str(port),
         "--domain", "synth", "--max-new-tokens", "4", "--set", "inference.frames.num_frames=4",
         "--set", "inference.batch_size=1", "--queue-size", str(QUEUE_SIZE), "--examples", "0",
         "--max-upload-mb", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    client = Client(port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if client.get("/api/health") == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
        time.sleep(0.2)
    try:
        yield proc, client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _burst(client: Client, body: bytes, content_type: str) -> list[tuple[int, dict[str, str]]]:
    start = threading.Barrier(CONCURRENT)

    def one(_: int) -> tuple[int, dict[str, str]]:
        start.wait(timeout=30)  # all 50 connect and send at once
        return client.post("/api/assess", body, content_type)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(one, range(CONCURRENT)))


def test_fifty_concurrent_uploads(server_process, clips):
    proc, client = server_process
    body, content_type = multipart({"domain": "synth"}, {"video": ("clip.mp4", clips[0].read_bytes())})
    for _ in range(2):  # warm up: lazy imports, allocator pools, the first generate
        assert client.post("/api/assess", body, content_type)[0] == 200

    began = time.monotonic()
    bursts = []
    rss = [_rss_mib(proc.pid)]
    for _ in range(2):
        bursts.append(_burst(client, body, content_type))
        rss.append(_rss_mib(proc.pid))
    took = time.monotonic() - began

    for answers in bursts:
        statuses = [status for status, _ in answers]
        assert not [s for s in statuses if s >= 500], statuses
        assert set(statuses) <= {200, 429}, statuses
        # the first QUEUE_SIZE to arrive hold places and are assessed; the excess is told to wait
        assert statuses.count(200) >= QUEUE_SIZE and statuses.count(429) >= 1
        assert all(int(h["retry-after"]) >= 1 for s, h in answers if s == 429)
    print(f"\nload: 2 x {CONCURRENT} concurrent in {took:.1f} s; "
          f"200/429 per burst: {[(sum(s == 200 for s, _ in b), sum(s == 429 for s, _ in b)) for b in bursts]}; "
          f"server RSS MiB before/after burst 1/after burst 2: {[round(r) for r in rss]}")
    assert rss[2] - rss[1] < PLATEAU_MIB, rss
    # still answering, and still assessing
    assert client.get("/api/health") == 200
    assert client.post("/api/assess", body, content_type)[0] == 200
    assert proc.poll() is None
