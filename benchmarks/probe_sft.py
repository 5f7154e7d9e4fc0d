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
    python benchmarks/probe_sft.py --out runs/probe_s1 --seed 1 --track-every 250

``--track-every N`` prints, every N steps, the teacher-forced accuracy of each part of the
action label on the validation examples (every token of the part predicted right given the
true answer so far): it shows when each part is learned, or whether it is learned and lost.
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
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--synth", nargs="*", default=[], help="SynthConfig key=value settings")
    parser.add_argument("--eval-n", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the model and SFT")
    parser.add_argument("--track-every", type=int, default=0, metavar="N",
                        help="teacher-forced accuracy of each label part every N steps (0: off)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="SFT config settings (e.g. warmup=0.1 weight_decay=0)")
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
        generate(data, load_config(SynthConfig, None, [f"n={args.n}", *args.synth]), seed=args.seed)
    model = out / "model"
    if not (model / "config.json").exists():
        build_tiny("qwen2_5_vl", model, size=args.size, seed=args.seed)
    config = sft_recipe(REPO / "configs" / "demo" / "sft.yaml", model=model, output_dir=out / "sft",
                        records=str(data / "records.jsonl"), seed=args.seed)
    for setting in args.set:  # dotted key=value on the loaded config
        import yaml

        key, value = setting.split("=", 1)
        *parents, leaf = key.split(".")
        target = config
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, yaml.safe_load(value))
    config.max_steps, config.learning_rate = args.steps, args.lr
    config.eval_steps, config.logging_steps = 10**6, 100
    callbacks = []
    if args.track_every:
        config.data.max_eval_samples = args.eval_n
        config.eval_steps = args.track_every
        callbacks.append(part_tracker(args.track_every))
    began = time.perf_counter()
    train_sft(config, progress=False, callbacks=callbacks)
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
    unread = broken = 0
    for record, result in zip(records, assessor.assess_records(records, cache=cache, base_dir=config.data.base_dir)):
        answer = result.assessment
        broken += bool(result.problems)
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
    print(f"{n} validation clips, {unread} without an action, parse failures {broken / n:.3f}")
    print("accuracy: " + ", ".join(f"{k} {correct[k] / n:.3f}" for k in ("take-off", "turns", "entry", "action")))
    print("step quality rho: " + " / ".join(f"{spearmanr(*quality[k])[0]:.3f}" for k in sorted(quality)))
    print(", ".join(f"{k} rho {spearmanr(*v)[0]:.3f}" for k, v in pairs.items()))


def part_tracker(every: int):
    """A TrainerCallback: after each validation (every ``every`` steps), the teacher-forced accuracy of each part of the
    action label on the validation examples."""
    from transformers import TrainerCallback

    class PartTracker(TrainerCallback):
        # runs after each validation (eval_steps = every), when the trainer has its loader
        def on_evaluate(self, args, state, control, model=None, eval_dataloader=None,
                        processing_class=None, **kwargs):
            if eval_dataloader is not None:
                _track(state.global_step, model, eval_dataloader, processing_class.tokenizer)

    return PartTracker()


def _track(step, model, eval_dataloader, tokenizer) -> None:
    """Print the teacher-forced accuracy of each label part on the validation examples."""
    import torch

    correct, total = collections.Counter(), 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in eval_dataloader:
            labels = batch.pop("labels")
            batch.pop("example_index", None)
            predicted = model(**{k: v.to(model.device) for k, v in batch.items()}).logits.argmax(-1).cpu()
            for row in range(labels.shape[0]):
                parts = _label_part_positions(tokenizer, labels[row])
                if parts is None:
                    continue
                total += 1
                whole = True
                for name, positions in parts.items():
                    ok = all(predicted[row, p - 1] == labels[row, p] for p in positions)
                    correct[name] += ok
                    whole &= ok
                correct["action"] += whole
    model.train(was_training)
    print(f"step {step}: teacher-forced accuracy on {total} val examples: "
          + ", ".join(f"{k} {correct[k] / max(total, 1):.2f}" for k in ("take-off", "turns", "entry", "action")),
          flush=True)


def _label_part_positions(tokenizer, labels):
    """Token positions of each part of the action label (take-off, turns, entry) in one
    target row, or None when the row has no ``<action>...</action>``."""
    positions = (labels != -100).nonzero().flatten().tolist()
    pieces = [tokenizer.decode([int(labels[p])]) for p in positions]
    starts, text = [], ""
    for piece in pieces:
        starts.append(len(text))
        text += piece
    begin = text.find("<action>")
    end = text.find("</action>", begin)
    if begin < 0 or end < 0:
        return None
    begin += len("<action>")
    names, spans, cursor = ("take-off", "turns", "entry"), [], begin
    for part in text[begin:end].split("-"):
        spans.append((cursor, cursor + len(part)))
        cursor += len(part) + 1
    if len(spans) != 3:
        return None
    out = {}
    for name, (a, b) in zip(names, spans):
        out[name] = [p for p, s, piece in zip(positions, starts, pieces) if s < b and s + len(piece) > a]
    return out


if __name__ == "__main__":
    main()
