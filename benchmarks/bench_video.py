"""Benchmark: 16 model-ready frames from a video, cold and cached, against the reference readers.

Generates two H.264 clips in a temporary folder (never in the repository): 10 s at 1280x720 and
60 s at 1920x1080, 30 fps, a panned random texture with a moving block (so the encoder uses
B-frames and motion like real footage). For each clip it times producing 16 frames resized to
Qwen2.5-VL's default video budget (per frame 128*28*28 to 768*28*28 pixels, bicubic):

- ``hieroaction cold``: ``read_clip`` (index, sparse decode, resize), nothing cached;
- ``hieroaction cached``: ``FrameCache.load`` of the same clip, already cached;
- ``hieroaction decord``: ``read_clip`` with ``decoder="decord"`` (when decord is installed);
- ``transformers load_video``: ``transformers.video_utils.load_video(num_frames=16,
  backend="pyav")`` followed by the same resize;
- ``qwen-vl-utils fetch_video``: run where it imports (it needs torchvision).

Every run is a fresh process (so nothing is warm in memory but the OS file cache, the same for
all), configurations take turns, and the table gives the median time and the peak resident
memory (VmHWM) of each configuration. Run::

    python benchmarks/bench_video.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Qwen2.5-VL's default video budget (transformers' Qwen2VLVideoProcessor.size).
MIN_PIXELS = 128 * 28 * 28
MAX_PIXELS = 768 * 28 * 28
NUM_FRAMES = 16

CLIPS = {
    "10 s 1280x720": {"name": "clip_720p_10s.mp4", "width": 1280, "height": 720, "seconds": 10},
    "60 s 1920x1080": {"name": "clip_1080p_60s.mp4", "width": 1920, "height": 1080, "seconds": 60},
}

CONFIGS = (
    "hieroaction cold",
    "hieroaction cached",
    "hieroaction decord",
    "transformers load_video",
    "qwen-vl-utils fetch_video",
)


# ---------------------------------------------------------------------------------------------
# Clip generation
# ---------------------------------------------------------------------------------------------


def encoder() -> str:
    """The H.264 encoder this PyAV build has (libx264 normally)."""
    import av

    for name in ("libx264", "libopenh264", "h264"):
        if name in av.codecs_available:
            return name
    raise SystemExit("this PyAV build has no H.264 encoder")


def make_clip(path: Path, width: int, height: int, seconds: float, preset: str, gop: int | None) -> None:
    """Encode a synthetic H.264 clip: a camera panning over texture, with a moving block."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 8 + 64, width // 8 + 64, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8, 1), np.uint8))
    fps = 30
    codec = encoder()
    options = {"preset": preset} if codec == "libx264" else {}
    if gop:
        options["g"] = str(gop)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            dx = int(200 + 180 * np.sin(i / 40)) % (texture.shape[1] - width)
            dy = int(200 + 150 * np.cos(i / 55)) % (texture.shape[0] - height)
            img = texture[dy:dy + height, dx:dx + width].copy()
            x0 = (i * 9) % (width - 200)
            y0 = int(height / 2 + height / 4 * np.sin(i / 20)) - 100
            img[y0:y0 + 200, x0:x0 + 200] = (255, 64, 32)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# One timed run (in its own process)
# ---------------------------------------------------------------------------------------------


def _rss_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def worker(config: str, clip: str, cache_dir: str) -> dict:
    """Time one configuration once; imports happen before the clock starts."""
    import numpy as np

    from hieroaction.data.records import Record, VideoRef
    from hieroaction.video import FrameCache, FrameConfig, read_clip
    from hieroaction.video.resize import resize_frame, smart_resize

    settings = FrameConfig(num_frames=NUM_FRAMES, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    if config == "hieroaction cold":
        import av  # noqa: F401 - imported before timing, like the others

        def run() -> np.ndarray:
            return read_clip(VideoRef(path=clip), settings).frames
    elif config == "hieroaction decord":
        import decord  # noqa: F401

        decord_settings = FrameConfig(**{**settings.to_dict(), "decoder": "decord"})

        def run() -> np.ndarray:
            return read_clip(VideoRef(path=clip), decord_settings).frames
    elif config == "hieroaction cached":
        cache = FrameCache(cache_dir)
        record = Record(id="bench", video=VideoRef(path=clip))

        def run() -> np.ndarray:
            return cache.load(record, settings).frames
    elif config == "transformers load_video":
        from transformers.video_utils import load_video

        def run() -> np.ndarray:
            video, _ = load_video(clip, num_frames=NUM_FRAMES, backend="pyav")
            h, w = smart_resize(video.shape[1], video.shape[2], 28, MIN_PIXELS, MAX_PIXELS)
            return np.stack([resize_frame(frame, h, w) for frame in video])
    elif config == "qwen-vl-utils fetch_video":
        from qwen_vl_utils import fetch_video

        def run() -> np.ndarray:
            video = fetch_video({"video": clip, "nframes": NUM_FRAMES,
                                 "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS})
            return video.permute(0, 2, 3, 1).numpy()
    else:
        raise SystemExit(f"unknown configuration {config!r}")
    baseline = _rss_mb("VmRSS")
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    frames = run()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu_before,
        "shape": list(frames.shape),
        "baseline_mb": baseline,
        "peak_mb": _rss_mb("VmHWM"),
    }


def unavailable(config: str) -> str | None:
    """Why a configuration cannot run here, or None."""
    probes = {
        "hieroaction decord": "import decord",
        "transformers load_video": "from transformers.video_utils import load_video",
        "qwen-vl-utils fetch_video": "from qwen_vl_utils import fetch_video",
    }
    if config not in probes:
        return None
    result = subprocess.run([sys.executable, "-c", probes[config]], capture_output=True, text=True)
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per configuration")
    parser.add_argument("--preset", default="veryfast", help="libx264 preset for the clips")
    parser.add_argument("--gop", type=int, default=None, help="keyframe interval (default: x264's 250)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep clips here (default: a temp folder)")
    parser.add_argument("--clips", nargs="*", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--worker", nargs=3, metavar=("CONFIG", "CLIP", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hieroaction-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    skipped = {c: why for c in CONFIGS if (why := unavailable(c))}
    configs = [c for c in CONFIGS if c not in skipped]
    results: dict[str, dict[str, list[dict]]] = {}
    try:
        for label in args.clips:
            spec = CLIPS[label]
            path = workdir / ((f"gop{args.gop}_" if args.gop else "") + spec["name"])
            if not path.exists():
                started = time.perf_counter()
                make_clip(path, spec["width"], spec["height"], spec["seconds"], args.preset, args.gop)
                print(f"generated {label} ({path.stat().st_size / 1e6:.1f} MB) in "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
            cache_dir = workdir / "cache"
            # Fill the cache once (untimed) for the cached configuration.
            _run_worker("hieroaction cold", path, cache_dir, fill_cache=True)
            results[label] = {c: [] for c in configs}
            for r in range(args.runs):
                for config in configs:
                    results[label][config].append(_run_worker(config, path, cache_dir))
                print(f"{label}: round {r + 1}/{args.runs} done", file=sys.stderr)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report = _report(results, skipped, args)
    print(report)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "skipped": skipped}, indent=1))


def _run_worker(config: str, clip: Path, cache_dir: Path, fill_cache: bool = False) -> dict:
    if fill_cache:
        code = (
            "from hieroaction.data.records import Record, VideoRef\n"
            "from hieroaction.video import FrameCache, FrameConfig\n"
            f"FrameCache({str(cache_dir)!r}).load(Record(id='bench', video=VideoRef(path={str(clip)!r})), "
            f"FrameConfig(num_frames={NUM_FRAMES}, min_pixels={MIN_PIXELS}, max_pixels={MAX_PIXELS}))\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
        return {}
    result = subprocess.run(
        [sys.executable, __file__, "--worker", config, str(clip), str(cache_dir)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"{config} failed on {clip}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _report(results: dict, skipped: dict[str, str], args: argparse.Namespace) -> str:
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; python {platform.python_version()}; "
        f"{args.runs} runs per configuration, x264 preset {args.preset}, "
        f"GOP {args.gop or 'x264 default (250)'}",
        "",
        "| clip | configuration | median s | min s | median CPU s | frames | peak RSS MB "
        "| RSS before run MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, per_config in results.items():
        for config, runs in per_config.items():
            times = [r["seconds"] for r in runs]
            lines.append(
                f"| {label} | {config} | {statistics.median(times):.3f} | {min(times):.3f} | "
                f"{statistics.median(r['cpu_seconds'] for r in runs):.3f} | "
                f"{runs[0]['shape'][0]}x{runs[0]['shape'][1]}x{runs[0]['shape'][2]} | "
                f"{max(r['peak_mb'] for r in runs):.0f} | "
                f"{statistics.median(r['baseline_mb'] for r in runs):.0f} |"
            )
    lines.append("")
    for label, per_config in results.items():
        med = {c: statistics.median(r["seconds"] for r in runs) for c, runs in per_config.items()}
        refs = [med[c] for c in ("transformers load_video", "qwen-vl-utils fetch_video") if c in med]
        cold, cached = med.get("hieroaction cold"), med.get("hieroaction cached")
        parts = [f"{label}:"]
        if refs and cold:
            parts.append(f"cold / fastest reference = {cold / min(refs):.2f} (target <= 0.8)")
        if cold and cached:
            parts.append(f"cold / cached = {cold / cached:.0f}x (target >= 20x)")
        if cold:
            peak = max(r["peak_mb"] for r in per_config["hieroaction cold"])
            parts.append(f"cold peak RSS {peak:.0f} MB (target < 500 MB)")
        lines.append(" ".join(parts[:1]) + " " + "; ".join(parts[1:]))
    for config, why in skipped.items():
        lines.append(f"not run: {config} ({why})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
