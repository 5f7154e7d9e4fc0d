"""The null control of HPL: rewards permuted among a batch's completions."""

from __future__ import annotations

from hieroaction.config import load_config
from hieroaction.rewards import completion_text, register
from hieroaction.train.hpl import HPLConfig, HPLTrainer

FRAMES = ["data.frames.num_frames=4", "data.frames.min_pixels=3136", "data.frames.max_pixels=3136"]


def _length(completions, **_):
    return [len(completion_text(c)) / 100 for c in completions]


def test_shuffled_rewards_are_the_same_numbers_on_other_completions(tiny_models, synth_data, frame_cache, tmp_path):
    config = load_config(HPLConfig, None, [
        f"model={tiny_models['qwen2_5_vl']}", f"data.records={synth_data}", f"data.cache_dir={frame_cache}",
        f"output_dir={tmp_path}", "group_size=4", "max_completion_length=8", "data.eval_split=none", "rewards.weights={shuffle_length: 1.0}",
        "rewards.composition.mode=sum", *FRAMES,
    ])
    register("shuffle_length", _length, "structure", ())
    trainer = HPLTrainer(config)
    rollouts = [trainer.rollout(trainer.example(trainer.train_set, i)) for i in range(2)]
    # distinct texts so every completion earns its own reward
    for i, r in enumerate(rollouts):
        r.texts[:] = ["x" * (10 * i + j + 1) for j in range(len(r.texts))]
    straight = [r.total for r in trainer.rewards_for(rollouts)]
    trainer.config.shuffle_rewards = True
    shuffled = [r.total for r in trainer.rewards_for(rollouts)]
    assert sorted(shuffled) == sorted(straight) and shuffled != straight
    assert [r.total for r in trainer.rewards_for(rollouts)] == shuffled  # seeded by (seed, step)
    trainer.step += 1
    assert [r.total for r in trainer.rewards_for(rollouts)] != shuffled
