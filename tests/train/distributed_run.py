"""Train SFT or HPL for a few steps in this process, as one of ``accelerate launch``'s processes
or alone, then write the whole trainable parameters this process ends with to
``output_dir/params-rank<R>.pt`` (gathered first where ZeRO-3 or FSDP shard them), so that
tests/train/test_distributed.py can compare the ranks with each other and with a one-process run.

    python distributed_run.py sft|hpl RECIPE.yaml [FLAT_IDS]

HPL here samples every group from a seed of its step and record id (not of the process), so two
processes and one process sample the same completions for the same prompts; the reward is the
toy reward of hpl_toy_run.py, and the records named in FLAT_IDS (comma-separated) get one reward
for every completion: a zero-spread group, skipped with ``zero_spread: skip``, so the processes
keep different numbers of groups.
"""

import dataclasses
import sys
import zlib
from pathlib import Path

import torch

from hieroaction import rewards
from hieroaction.config import load_config


def whole(param):
    """A detached CPU copy of the whole parameter (a collective under ZeRO-3 and FSDP)."""
    if hasattr(param, "ds_id"):  # DeepSpeed ZeRO-3
        import deepspeed

        with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
            return param.detach().cpu().clone()
    if hasattr(param, "full_tensor"):  # FSDP2
        return param.full_tensor().detach().cpu().clone()
    return param.detach().cpu().clone()


def rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def run_sft(recipe: Path) -> None:
    from transformers import TrainerCallback

    from hieroaction.train.sft import SFTConfig, train_sft

    config = load_config(SFTConfig, recipe)
    out = Path(config.output_dir)

    class Dump(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            from accelerate.state import AcceleratorState

            params = {n: whole(p) for n, p in model.named_parameters() if p.requires_grad}
            out.mkdir(parents=True, exist_ok=True)
            torch.save(params, out / f"params-rank{rank()}.pt")
            state = AcceleratorState()
            kind = {"DEEPSPEED": "deepspeed", "FSDP": "fsdp"}.get(str(state.distributed_type).split(".")[-1], "other")
            stage = state.deepspeed_plugin.zero_stage if kind == "deepspeed" else 0
            (out / f"engine-rank{rank()}.txt").write_text(f"{kind} {stage} {state.num_processes}\n")

    train_sft(config, callbacks=[Dump()], progress=False)


def distinct_characters(completions, **_):
    return [len(set(rewards.completion_text(x))) / 40 for x in completions]


def run_hpl(recipe: Path, flat: set[str]) -> None:
    from hieroaction.train.hpl import HPLConfig, HPLTrainer

    rewards.register("toy", distinct_characters, "structure", ())

    class Trainer(HPLTrainer):
        def rollout(self, example, n=None, greedy=False):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(zlib.crc32(f"{self.step}/{example.record.id}/{greedy}".encode()))
                return super().rollout(example, n, greedy)

        def rewards_for(self, rollouts):
            results = super().rewards_for(rollouts)
            G = self.config.group_size
            for g, r in enumerate(rollouts):
                if r.example.record.id in flat:
                    results[g * G : (g + 1) * G] = [dataclasses.replace(x, total=0.5) for x in results[g * G : (g + 1) * G]]
            return results

    config = load_config(HPLConfig, recipe)
    trainer = Trainer(config)
    trainer.train()
    params = trainer._trainable_state()  # every process: a gather under ZeRO-3/FSDP
    torch.save(params, Path(config.output_dir) / f"params-rank{trainer.accelerator.process_index}.pt")
    (Path(config.output_dir) / f"engine-rank{trainer.accelerator.process_index}.txt").write_text(
        f"{trainer.engine.kind} {trainer.engine.zero_stage} {trainer.accelerator.num_processes}\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, recipe = sys.argv[1], Path(sys.argv[2])
    if mode == "sft":
        run_sft(recipe)
    else:
        run_hpl(recipe, set(filter(None, (sys.argv[3] if len(sys.argv) > 3 else "").split(","))))
