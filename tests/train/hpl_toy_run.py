"""Run a short HPL training in its own process (the kill -9 and two-process tests use it).

A random tiny model cannot write SAR, so every hierarchical reward is 0 and nothing would be
learned; the toy reward (how many distinct characters the answer holds) gives the groups a
spread, so the parameters really move and resumed runs can be compared with uninterrupted ones.
"""

import sys
from pathlib import Path

import torch

from hieroaction import rewards
from hieroaction.config import load_config
from hieroaction.train.hpl import HPLConfig, HPLTrainer


def distinct_characters(completions, **_):
    return [len(set(rewards.completion_text(x))) / 40 for x in completions]


if __name__ == "__main__":
    rewards.register("toy", distinct_characters, "structure", ())
    config = load_config(HPLConfig, None, sys.argv[1:])
    trainer = HPLTrainer(config)
    trainer.train()
    # every process writes the parameters it ends with, so a test can compare the ranks
    rank = trainer.accelerator.process_index
    torch.save(trainer._trainable_state(), Path(config.output_dir) / f"params-rank{rank}.pt")
