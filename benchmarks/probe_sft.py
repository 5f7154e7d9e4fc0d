"""Probe: what does the demo's SFT learn to read from the pixels in a fixed number of steps?

Generates the synthetic benchmark (or reuses ``--data``), builds a randomly initialised model
(``hieroaction model tiny --size``), runs the demo's SFT recipe (``configs/demo/sft.yaml``) for
``--steps`` steps, answers ``--eval-n`` validation clips greedily and prints, per part of the
label, the accuracy (take-off, turns, entry, whole action) and the Spearman rho of each step's
quality, the execution and the final score against the truth. docs/demo.md ("What we changed
to make it learn") reports its numbers. Example::

    python benchmarks/probe_sft.py --out runs/probe --steps 3000
    python benchmarks/probe_sft.py --out runs/probe_medium --data runs/probe/synth --size medium
    python benchmarks/probe_sft.py --out runs/probe_v1 --synth render.sink_speed=1.0
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data", type=Path, help="an existing synth folder (default: OUT/synth)")
    parser.add_argument("--n", type=int, default=1950, help="clips to generate")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--size", default="tiny", help="tiny, medium or small")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--synth", nargs="*", default=[], help="SynthConfig key=value settings")
    parser.add_argument("--eval-n", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr

    from hieroaction.config import load_config
    from hieroaction.data.records import read_jsonl
    from hieroaction.demo.runner import sft_recipe
    from hieroaction.inference import Assessor, InferenceConfig
    from hieroaction.models.tiny import build_tiny
    from hieroaction.synth import SynthConfig, generate
    from hieroaction.train.sft import train_sft
    from hieroaction.video import FrameCache

    torch.set_num_threads(args.threads)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    data = args.data or out / "synth"
    if not (data / "records.jsonl").exists():
        generate(data, load_config(SynthConfig, None, [f"n={args.n}", *args.synth]), seed=0)
    model = out / "model"
    if not (model / "config.json").exists():
        build_tiny("qwen2_5_vl", model, size=args.size)
    config = sft_recipe(REPO / "configs" / "demo" / "sft.yaml", model=model, output_dir=out / "sft",
                        records=str(data / "records.jsonl"), seed=0)
    config.max_steps, config.learning_rate = args.steps, args.lr
    config.eval_steps, config.logging_steps = 10**6, 100
    began = time.perf_counter()
    train_sft(config, progress=False)
    seconds = time.perf_counter() - began
    print(f"SFT: {args.steps} steps in {seconds:.0f} s ({args.steps / seconds:.2f} steps/s)")

    records = [r for r in read_jsonl(data / "records.jsonl") if r.split == "val"][: args.eval_n]
    inference = InferenceConfig(frames=config.data.frames.to_dict(), prompt=config.data.prompt,
                                max_new_tokens=224, batch_size=8, device="cpu", dtype="float32",
                                domain=records[0].domain)
    assessor = Assessor.from_pretrained(out / "sft", inference)
    cache = FrameCache(config.data.cache_path, base_dir=config.data.base_dir)
    correct: collections.Counter = collections.Counter()
    quality = collections.defaultdict(lambda: ([], []))
    pairs = {"execution": ([], []), "score": ([], [])}
    unread = 0
    for record, result in zip(records, assessor.assess_records(records, cache=cache, base_dir=config.data.base_dir)):
        answer = result.assessment
        if answer is None or not answer.action:
            unread += 1
            continue
        truth, guess = record.action.label.split("-"), answer.action.split("-")
        correct["action"] += answer.action == record.action.label
        if len(guess) == 3:
            for part, a, b in zip(("take-off", "turns", "entry"), truth, guess):
                correct[part] += a == b
        if len(answer.steps) == len(record.steps):
            for k, (step, true_step) in enumerate(zip(answer.steps, record.steps)):
                if step.quality is not None and true_step.score is not None:
                    quality[k][0].append(true_step.score)
                    quality[k][1].append(step.quality)
        execution = (answer.components or {}).get("execution")
        if execution is not None and answer.score is not None:
            pairs["execution"][0].append(record.score.components["execution"])
            pairs["execution"][1].append(execution)
            pairs["score"][0].append(record.score.final)
            pairs["score"][1].append(answer.score)
    n = len(records)
    print(f"{n} validation clips, {unread} without an action")
    print("accuracy: " + ", ".join(f"{k} {correct[k] / n:.3f}" for k in ("take-off", "turns", "entry", "action")))
    print("step quality rho: " + " / ".join(f"{spearmanr(*quality[k])[0]:.3f}" for k in sorted(quality)))
    print(", ".join(f"{k} rho {spearmanr(*v)[0]:.3f}" for k, v in pairs.items()))


if __name__ == "__main__":
    main()
