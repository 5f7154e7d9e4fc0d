"""Benchmark: how much memory and time small files with huge frames cost (project issue 13).

Generates, with PyAV, into a work folder (never the repository; kept with ``--workdir``):

- ``16384x8192 black``: 50 black H.264 frames (about 400 KB, the issue's file);
- ``8192x8192 black``: 50 black H.264 frames (about 200 KB);
- ``4096x2160 black refs16``: 50 black frames at the default limit, 16 reference frames (the
  largest picture buffer an H.264 stream may ask its decoder for);
- ``3840x2160 moving``: 50 frames of a moving pattern at 4K UHD (a real-size video).

Each measurement is a fresh process that first reads a tiny clip (so FFmpeg, PIL and numpy are
loaded), then does what the web server does with an upload: ``probe_video`` (the upload check)
and ``read_clip`` with the default frame settings (16 frames at Qwen2.5-VL's budget, what
``hieroaction assess`` and ``hieroaction data frames`` do too). It reports the rise of the
process's peak resident memory (VmHWM in ``/proc/self/status``; ``resource.getrusage`` where
that is missing) over the warmed-up process, the wall time, and the resident memory left
afterwards (VmRSS). Run::

    python benchmarks/bench_decode_memory.py --workdir /tmp/hieroaction-mem

``--src DIR`` measures another checkout's ``src`` folder instead (e.g. the code before the
limit: ``git archive <commit> src | tar -x -C /tmp/old`` then ``--src /tmp/old/src``);
``--max-frame-pixels N`` sets the limit (default: the setting's default), ``--threads N`` the
decoder and worker threads (0: automatic, as the server runs), and ``--cpus N`` makes the
automatic thread counts see N cores (a 16-core server's choices on a smaller machine; FFmpeg's
own automatic count is not affected, but for frames this large the reader sets the count).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# label -> (file name, width, height, frames, pattern, x264 options)
FILES: dict[str, tuple[str, int, int, int, str, dict[str, str]]] = {
    "16384x8192 black": ("black_16384x8192.mp4", 16384, 8192, 50, "black", {}),
    "8192x8192 black": ("black_8192x8192.mp4", 8192, 8192, 50, "black", {}),
    "4096x2160 black refs16": ("black_4096x2160_refs16.mp4", 4096, 2160, 50, "black", {"refs": "16"}),
    "3840x2160 moving": ("moving_3840x2160.mp4", 3840, 2160, 50, "moving", {}),
}


# ---------------------------------------------------------------------------------------------
# Generation (PyAV)
# ---------------------------------------------------------------------------------------------


def make_file(path: Path, width: int, height: int, frames: int, pattern: str, extra: dict[str, str]) -> None:
    """Encode ``frames`` frames with libx264 (ultrafast), written straight as YUV planes."""
    import av
    import numpy as np

    options = {"preset": "ultrafast", "crf": "30", **extra}
    if "refs" not in extra:
        options["tune"] = "zerolatency"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        frame = av.VideoFrame(width, height, "yuv420p")
        for i in range(frames):
            luma = np.frombuffer(frame.planes[0], np.uint8).reshape(height, -1)
            luma[:] = 16
            for plane in frame.planes[1:]:
                np.frombuffer(plane, np.uint8)[:] = 128
            if pattern == "moving":
                luma[:, :width] = (np.arange(width, dtype=np.uint16)[None, :] // 16 + 4 * i) % 220 + 16
                y, x = (37 * i) % (height - 256), (61 * i) % (width - 256)
                luma[y:y + 256, x:x + 256] = 235
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def make_tiny(path: Path) -> None:
    make_file(path, 64, 48, 8, "moving", {})


# ---------------------------------------------------------------------------------------------
# One measurement (a fresh process)
# ---------------------------------------------------------------------------------------------


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_mib() -> float:
    """Peak resident memory of this process. Linux's VmHWM first: getrusage's ru_maxrss also
    counts the peak of the process that forked this one (here the driver, which encoded the
    files), so only after warming up past that peak would it measure this process alone."""
    import resource

    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    rss = _status_mib("VmRSS")
    return rss if rss is not None else float("nan")


def worker(path: str, tiny: str, limit: int | None, threads: int, cpus: int) -> dict:
    """Warm up on ``tiny``, then probe and read ``path`` as the server does (on ``cpus`` cores
    as far as the automatic thread counts can tell, when given)."""
    import inspect

    if cpus:
        os.cpu_count = lambda: cpus
        os.sched_getaffinity = lambda pid: set(range(cpus))

    from hieroaction.data.records import VideoRef
    from hieroaction.errors import HieroActionError
    from hieroaction.serve.uploads import probe_video
    from hieroaction.video import FrameConfig, read_clip

    has_limit = "max_frame_pixels" in inspect.signature(FrameConfig).parameters
    config = FrameConfig(max_frame_pixels=limit) if (has_limit and limit) else FrameConfig()
    probe_kwargs = {}
    if "max_frame_pixels" in inspect.signature(probe_video).parameters:
        probe_kwargs["max_frame_pixels"] = config.max_frame_pixels
    probe_video(Path(tiny), "mp4", "tiny.mp4", **probe_kwargs)
    read_clip(VideoRef(path=tiny), config, threads=threads)
    warm_peak, warm_rss = _peak_mib(), _rss_mib()
    out: dict = {"limit": getattr(config, "max_frame_pixels", None), "warm_rss_mib": warm_rss}
    began = time.perf_counter()
    try:
        probe_video(Path(path), "mp4", Path(path).name, **probe_kwargs)
        out["probe"] = "accepted"
    except HieroActionError as exc:
        out["probe"] = f"refused: {exc}"
    out["probe_s"] = time.perf_counter() - began
    out["probe_peak_rise_mib"] = _peak_mib() - warm_peak
    began = time.perf_counter()
    try:
        clip = read_clip(VideoRef(path=path), config, threads=threads)
        out["read"] = f"{clip.num_frames} frames {clip.height}x{clip.width}"
    except HieroActionError as exc:
        out["read"] = f"refused: {exc}"
    out["read_s"] = time.perf_counter() - began
    out["peak_rise_mib"] = _peak_mib() - warm_peak
    out["rss_left_mib"] = _rss_mib() - warm_rss
    return out


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def _run(path: Path, tiny: Path, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([str(args.src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, __file__, "--worker", str(path), str(tiny),
               str(args.max_frame_pixels or 0), str(args.threads), str(args.cpus or 0)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the measurement of {path.name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temp folder)")
    parser.add_argument("--files", nargs="*", default=list(FILES), choices=list(FILES))
    parser.add_argument("--src", type=Path, default=None, help="measure this src folder instead")
    parser.add_argument("--max-frame-pixels", type=int, default=None, help="the limit (default: the setting's)")
    parser.add_argument("--threads", type=int, default=0, help="decoder and worker threads (0: automatic)")
    parser.add_argument("--cpus", type=int, default=None,
                        help="make the automatic thread counts see this many cores (a bigger server)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        path, tiny, limit, threads, cpus = args.worker
        print(json.dumps(worker(path, tiny, int(limit) or None, int(threads), int(cpus))))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hieroaction-mem-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tiny = workdir / "tiny.mp4"
    if not tiny.exists():
        make_tiny(tiny)
    results = {}
    for label in args.files:
        name, width, height, frames, pattern, extra = FILES[label]
        path = workdir / name
        if not path.exists():
            began = time.perf_counter()
            make_file(path, width, height, frames, pattern, extra)
            print(f"generated {label} ({path.stat().st_size / 1024:.0f} KB) in "
                  f"{time.perf_counter() - began:.0f} s", file=sys.stderr)
        results[label] = {"kb": path.stat().st_size / 1024, **_run(path, tiny, args)}
        print(f"{label}: {results[label]}", file=sys.stderr)
    print(_report(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def _short(text: str) -> str:
    return "refused (over the limit)" if text.startswith("refused") and "max_frame_pixels" in text else text


def _report(results: dict, args: argparse.Namespace) -> str:
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"python {platform.python_version()}; code: {args.src or 'this checkout'}; "
        f"threads {args.threads or 'automatic'}"
        + (f" as if on {args.cpus} cores" if args.cpus else ""),
        "",
        "| file | KB | limit (pixels) | upload check | read_clip | s | peak rise MiB | RSS left MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        limit = f"{r['limit']:,}" if r["limit"] else "none"
        lines.append(
            f"| {label} | {r['kb']:.0f} | {limit} | {_short(r['probe'])} | {_short(r['read'])} | "
            f"{r['probe_s'] + r['read_s']:.1f} | {r['peak_rise_mib']:.0f} | {r['rss_left_mib']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
