"""Latency of ``assess``: decode, preprocessing and generation, cold and warm.

- cold: a new Python process per run that imports HieroAction, loads the model and assesses one
  clip (what ``hieroaction assess`` pays for one video);
- warm: one process, the model loaded once, the same clip assessed again and again (what the web
  app pays per request).

Stages: ``decode`` (open the file, decode and sample the frames, resize them), ``preprocess``
(prompt, tokens, patches), ``generate`` (greedy ``generate``, forced to ``--new-tokens`` tokens
so runs compare). Reports the median of ``--runs`` runs as a Markdown table.

    python benchmarks/bench_assess.py [--model DIR] [--video FILE] [--runs 5] [--new-tokens 64]

Without ``--model`` a tiny Qwen2.5-VL is built; without ``--video`` a synthetic clip is rendered.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("decode_s", "preprocess_s", "generate_s")


def _assessor(model: str, new_tokens: int, frames: int):
    from hieroaction.inference import Assessor, InferenceConfig

    config = InferenceConfig(max_new_tokens=new_tokens, batch_size=1, frames={"num_frames": frames}, domain="synth")
    assessor = Assessor.from_pretrained(model, config)
    # Forced length: a random model may stop early, which would make runs incomparable.
    assessor.model.generation_config.min_new_tokens = new_tokens
    return assessor


def child(args: argparse.Namespace) -> None:
    """One cold run: import, load, assess once; prints the timings as JSON."""
    began = time.perf_counter()
    import hieroaction.inference  # noqa: F401 - the import is what is timed
    import transformers  # noqa: F401

    imported = time.perf_counter()
    assessor = _assessor(args.model, args.new_tokens, args.frames)
    loaded = time.perf_counter()
    result = assessor.assess(args.video)
    done = time.perf_counter()
    print(json.dumps({
        "import_s": imported - began,
        "load_s": loaded - imported,
        "decode_s": result.timings.decode_s,
        "preprocess_s": result.timings.preprocess_s,
        "generate_s": result.timings.generate_s,
        "process_total_s": done - began,
    }))


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint folder (default: build a tiny qwen2_5_vl)")
    parser.add_argument("--video", help="video file (default: render one synthetic clip)")
    parser.add_argument("--runs", type=int, default=5, help="runs per setting (median reported)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per answer")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    work = Path(tempfile.mkdtemp(prefix="bench_assess_"))
    if args.model is None:
        from hieroaction.models.tiny import build_tiny

        args.model = str(build_tiny("qwen2_5_vl", work / "tiny"))
    if args.video is None:
        from hieroaction.config import config_from_dict
        from hieroaction.data.records import read_jsonl
        from hieroaction.synth.generator import SynthConfig, generate

        summary = generate(work / "synth", config_from_dict(SynthConfig, {"n": 1, "workers": 1}), progress=False)
        args.video = read_jsonl(summary.records_path)[0].video.path

    cold: list[dict[str, float]] = []
    for _ in range(args.runs):
        began = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--model", args.model, "--video", args.video,
             "--new-tokens", str(args.new_tokens), "--frames", str(args.frames)],
            check=True, capture_output=True, text=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["wall_s"] = time.perf_counter() - began
        cold.append(row)

    assessor = _assessor(args.model, args.new_tokens, args.frames)
    assessor.assess(args.video)  # first call pays one-off costs (allocator, kernels): not warm
    warm = []
    for _ in range(args.runs):
        r = assessor.assess(args.video)
        warm.append({k: getattr(r.timings, k) for k in STAGES})

    print(f"model {args.model}, video {args.video}, {args.frames} frames, {args.new_tokens} new tokens, "
          f"device {assessor.device}, median of {args.runs} runs\n")
    print("| run | import | load model | decode | preprocess | generate | assess total | process wall |")
    print("|---|---|---|---|---|---|---|---|")
    c = {k: _median(cold, k) for k in ("import_s", "load_s", *STAGES, "wall_s")}
    w = {k: _median(warm, k) for k in STAGES}
    print(f"| cold (new process) | {c['import_s']:.2f} s | {c['load_s']:.2f} s | {c['decode_s'] * 1000:.0f} ms | "
          f"{c['preprocess_s'] * 1000:.0f} ms | {c['generate_s'] * 1000:.0f} ms | "
          f"{sum(c[k] for k in STAGES) * 1000:.0f} ms | {c['wall_s']:.2f} s |")
    print(f"| warm (model loaded) | - | - | {w['decode_s'] * 1000:.0f} ms | {w['preprocess_s'] * 1000:.0f} ms | "
          f"{w['generate_s'] * 1000:.0f} ms | {sum(w.values()) * 1000:.0f} ms | - |")


if __name__ == "__main__":
    main()
