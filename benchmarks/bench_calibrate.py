"""The cost of calibrating with N sampled answers per clip against one greedy answer.

``hieroaction calibrate --samples N`` answers every clip greedily and, for N > 1, samples N more
answers per clip (``num_return_sequences=N`` in one ``generate`` call per batch). A calibrated
model pays the same at every later assessment. This times ``calibrate`` on a fixed set of
rendered synthetic clips for each N, with every answer forced to ``--new-tokens`` tokens so the
settings compare (a random model stops at random places), the model loaded once and warmed up
by one unmeasured greedy pass, and reports seconds as a Markdown table.

    python benchmarks/bench_calibrate.py [--model DIR] [--clips 20] [--samples 1,4,8]
                                         [--new-tokens 32] [--frames 8] [--batch-size 4]

Without ``--model`` a tiny Qwen2.5-VL is built (CPU, float32). Nothing is written into the model
folder.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path


def _records(work: Path, clips: int) -> Path:
    from hieroaction.config import config_from_dict
    from hieroaction.data.records import read_jsonl, write_jsonl
    from hieroaction.synth import SynthConfig, generate

    out = work / "data"
    generate(out, config_from_dict(SynthConfig, {"n": clips, "seed": 0, "workers": 1}), progress=False)
    records = [r.model_copy(update={"split": "val"}) for r in read_jsonl(out / "records.jsonl")]
    path = out / "val.jsonl"
    write_jsonl(records, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint folder (default: build a tiny qwen2_5_vl)")
    parser.add_argument("--clips", type=int, default=20, help="calibration clips (at least 20)")
    parser.add_argument("--samples", default="1,4,8", help="comma-separated N to time (1: greedy only)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per answer (forced)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per generate call")
    args = parser.parse_args()
    counts = [int(n) for n in args.samples.split(",")]

    import torch

    from hieroaction.inference import Assessor, InferenceConfig
    from hieroaction.inference.calibration import calibrate

    work = Path(tempfile.mkdtemp(prefix="bench_calibrate_"))
    model = args.model
    if model is None:
        from hieroaction.models.tiny import build_tiny

        model = str(build_tiny("qwen2_5_vl", work / "tiny", size="tiny", seed=0))
    data = _records(work, args.clips)
    config = InferenceConfig(max_new_tokens=args.new_tokens, batch_size=args.batch_size,
                             frames={"num_frames": args.frames}, domain="synth", device="cpu")
    assessor = Assessor.from_pretrained(model, config, calibrated=False)
    # Forced length, greedy and sampled alike, so every setting generates the same number of tokens.
    assessor.model.generation_config.min_new_tokens = args.new_tokens
    calibrate(model, data, None, 1, assessor=assessor, write=False)  # warm-up, not measured

    rows = []
    for n in counts:
        began = time.perf_counter()
        calibration = calibrate(model, data, None, n, assessor=assessor, write=False)
        seconds = time.perf_counter() - began
        rows.append((n, calibration.method, seconds))
    greedy = next((s for n, _, s in rows if n == 1), rows[0][2])

    print(f"{args.clips} clips, {args.frames} frames, {args.new_tokens} tokens per answer, batch "
          f"{args.batch_size}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")
    print()
    print("| samples N | method | calibrate (s) | per clip (s) | answers per clip | x greedy |")
    print("|---|---|---|---|---|---|")
    for n, method, seconds in rows:
        answers = 1 if n == 1 else 1 + n
        print(f"| {n} | {method} | {seconds:.1f} | {seconds / args.clips:.2f} | {answers} | {seconds / greedy:.2f} |")


if __name__ == "__main__":
    main()
