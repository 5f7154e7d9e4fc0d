"""Fairness of ``hieroaction serve`` under load: how long each of 50 clients waits for its result
when every client retries after the ``Retry-After`` it is given, optionally while a few
connections trickle bytes into uploads they never finish.

The server is started by the real command line as its own process (``--src DIR`` runs it from
another checkout's ``src``, e.g. an older commit's, to compare), serving a tiny random
Qwen2.5-VL (or ``--model``) with 4 frames and ``--new-tokens`` new tokens (more tokens, a longer
assessment: 4 take about 0.2 s on a 2-core CPU, 256 about 1.3 s). After two warm-up requests:

- ``--tricklers N`` raw connections each send the headers and the first bytes of an MP4 upload
  (declaring 10 MiB), then one byte a second until the server answers them;
- ``--clients`` clients start at once; each sends the same clip, through ``POST /api/assess``
  (``--api assess``: answered when done) or ``POST /api/jobs`` and polling the job's URL
  (``--api jobs``), and on 429 sleeps the ``Retry-After`` seconds and sends it again. A client's
  wait is from its first attempt to its result.

Prints the median, 95th percentile and largest wait, the attempts, the answers' statuses and
what happened to the tricklers, as a Markdown table row and as JSON.

    python benchmarks/bench_serve_fairness.py [--clients 50] [--tricklers 4] [--api assess|jobs]
        [--new-tokens 4] [--src DIR] [--model DIR] [--workdir DIR] [--set KEY=VALUE ...]

e.g. the server as committed at an older commit, against the working tree's::

    git archive OLD src | tar -x -C /tmp/before
    python benchmarks/bench_serve_fairness.py --src /tmp/before/src --tricklers 4
    python benchmarks/bench_serve_fairness.py --tricklers 4
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Only the serve command is registered (as tests/serve/test_load.py does).
LAUNCH = "import sys; from hieroaction import cli; sys.exit(cli.main(sys.argv[1:], groups=('serve',)))"
CLIENT_DEADLINE_S = 900.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _multipart(clip: bytes) -> tuple[bytes, str]:
    boundary = "fairnessbenchmark"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="domain"\r\n\r\nsynth\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="clip.mp4"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + clip + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _call(port: int, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_DEADLINE_S)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def _percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class Trickler(threading.Thread):
    """One connection that starts an upload and then sends a byte a second until answered."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.status: str = "never answered"
        self.held_s = 0.0

    def run(self) -> None:
        began = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port)) as sock:
                sock.sendall(
                    b"POST /api/jobs HTTP/1.1\r\nHost: bench\r\n"
                    b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 10485760\r\n\r\n"
                    b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="slow.mp4"\r\n\r\n'
                    b"\x00\x00\x00\x18ftypmp42"
                )
                sock.settimeout(1.0)
                while not self.stop.is_set():
                    try:
                        head = sock.recv(4096)
                    except TimeoutError:
                        sock.sendall(b"\x00")
                        continue
                    self.status = head.split(b"\r\n", 1)[0].decode(errors="replace") if head else "closed"
                    break
        except OSError as exc:
            self.status = f"connection error ({exc.__class__.__name__})"
        self.held_s = time.monotonic() - began


def _one_client(port: int, api: str, body: bytes, ctype: str, start: threading.Barrier) -> dict:
    start.wait(timeout=60)
    began = time.monotonic()
    attempts, statuses = 0, []
    while time.monotonic() - began < CLIENT_DEADLINE_S:
        attempts += 1
        status, headers, data = _call(port, "POST", f"/api/{api}", body, {"Content-Type": ctype})
        statuses.append(status)
        if status == 429:
            time.sleep(float(headers.get("retry-after", "1")))
            continue
        if api == "jobs" and status == 202:
            url = headers.get("location") or f"/api/jobs/{json.loads(data)['id']}"
            while True:
                time.sleep(0.2)
                code, _, data = _call(port, "GET", url)
                state = json.loads(data).get("state") if code == 200 else None
                if state in ("done", "failed") or code != 200:
                    status = 200 if state == "done" else (code if code != 200 else 500)
                    statuses.append(status)
                    break
        return {"wait_s": time.monotonic() - began, "attempts": attempts, "status": status, "statuses": statuses}
    return {"wait_s": time.monotonic() - began, "attempts": attempts, "status": "deadline", "statuses": statuses}


def run(args: argparse.Namespace) -> dict:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hieroaction-fairness-"))
    workdir.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from hieroaction.models.tiny import build_tiny

        model = str(workdir / "tiny")
        if not (Path(model) / "config.json").is_file():
            build_tiny("qwen2_5_vl", Path(model), size="tiny", seed=0)
    clip_dir = workdir / "synth"
    if not list((clip_dir / "videos").glob("*.mp4")):
        from hieroaction.config import config_from_dict
        from hieroaction.synth.generator import SynthConfig, generate

        generate(clip_dir, config_from_dict(SynthConfig, {"n": 1, "seed": 5, "workers": 1}), progress=False)
    clip = min((clip_dir / "videos").glob("*.mp4")).read_bytes()
    body, ctype = _multipart(clip)

    port = _free_port()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-c", LAUNCH, "serve", "--model", model, "--port", str(port), "--domain", "synth",
               "--max-new-tokens", str(args.new_tokens), "--set", "inference.frames.num_frames=4", "--set", "inference.batch_size=1",
               "--examples", "0"]
    for item in args.set or []:
        command += ["--set", item]
    log_path = workdir / f"server-{port}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if _call(port, "GET", "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.3)
        info = json.loads(_call(port, "GET", "/api/info")[2])
        warm = []
        for _ in range(2):  # lazy imports, the first generate
            t = time.monotonic()
            assert _call(port, "POST", "/api/assess", body, {"Content-Type": ctype})[0] == 200
            warm.append(time.monotonic() - t)

        stop = threading.Event()
        tricklers = [Trickler(port, stop) for _ in range(args.tricklers)]
        for t in tricklers:
            t.start()
        time.sleep(1.0 if tricklers else 0.0)  # they hold what they can before the clients come
        start = threading.Barrier(args.clients)
        began = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(lambda _: _one_client(port, args.api, body, ctype, start), range(args.clients)))
        took = time.monotonic() - began
        stop.set()
        for t in tricklers:
            t.join(5)
        health = json.loads(_call(port, "GET", "/api/health")[2])
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()

    waits = [r["wait_s"] for r in results]
    statuses = Counter(s for r in results for s in r["statuses"])
    return {
        "server": args.src or "this checkout",
        "api": args.api,
        "clients": args.clients,
        "tricklers": args.tricklers,
        "new_tokens": args.new_tokens,
        "queue_size": info.get("queue_size"),
        "max_uploads": info.get("max_uploads"),
        "warm_assess_s": round(warm[-1], 2),
        "median_wait_s": round(statistics.median(waits), 1),
        "p95_wait_s": round(_percentile(waits, 0.95), 1),
        "max_wait_s": round(max(waits), 1),
        "mean_attempts": round(statistics.mean(r["attempts"] for r in results), 1),
        "max_attempts": max(r["attempts"] for r in results),
        "failed": sum(r["status"] != 200 for r in results),
        "statuses": dict(sorted(statuses.items(), key=str)),
        "tricklers_answered": [(t.status, round(t.held_s, 1)) for t in tricklers],
        "total_s": round(took, 1),
        "s_per_job": round(took / args.clients, 2),
        "completed": health.get("queue", {}).get("completed"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tricklers", type=int, default=0, help="connections trickling a byte a second")
    parser.add_argument("--api", choices=("assess", "jobs"), default="assess")
    parser.add_argument("--new-tokens", type=int, default=4, help="answer length: the time of one assessment")
    parser.add_argument("--src", help="run the server from this src folder (another checkout)")
    parser.add_argument("--model", help="model folder (default: a tiny random Qwen2.5-VL, built once)")
    parser.add_argument("--workdir", help="where the tiny model, the clip and the server's log go")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="server setting (serve --set)")
    args = parser.parse_args()
    out = run(args)
    print("| server | api | tricklers | median wait s | p95 wait s | max wait s | attempts mean/max | "
          "one assessment s (warm-up) | total s (s per job) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {out['server']} | {out['api']} | {out['tricklers']} | {out['median_wait_s']} | {out['p95_wait_s']} | "
          f"{out['max_wait_s']} | {out['mean_attempts']}/{out['max_attempts']} | {out['warm_assess_s']} | "
          f"{out['total_s']} ({out['s_per_job']}) |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
