import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hieroaction.config import load_config
from hieroaction.errors import ConfigError, HieroActionError
from hieroaction.models.tiny import build_tiny
from hieroaction.synth import generate
from hieroaction.rewards import completion_text, register
from hieroaction.train.hpl import HPLConfig, HPLTrainer, check_inputs

TOY = Path(__file__).with_name("hpl_toy_run.py")
FRAMES = ["data.frames.num_frames=4", "data.frames.min_pixels=3136", "data.frames.max_pixels=3136"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_models, synth_set):
    """(folder for frame caches, the session's tiny Qwen2.5-VL, 12 clips of seed 0): the model
    is shared (tests/conftest.py), so a test that changes it works on a copy."""
    return tmp_path_factory.mktemp("hpl"), tiny_models["qwen2_5_vl"], synth_set(12, 0) / "records.jsonl"


def _config(setup, out, *extra):
    root, model, data = setup
    args = [f"model={model}", f"data.records={data}", f"output_dir={out}", f"data.cache_dir={root / 'cache'}",
            "group_size=3", "prompts_per_step=1", "max_completion_length=12", "seed=0", *FRAMES, *extra]
    return load_config(HPLConfig, None, list(args))


# what released checkpoints carry (Qwen2.5-VL: repetition_penalty 1.05), strong enough to show
SAMPLING_DEFAULTS = {"do_sample": True, "repetition_penalty": 1.3, "top_k": 5, "top_p": 0.5, "temperature": 0.3}


def _with_sampling_defaults(folder):
    """Write SAMPLING_DEFAULTS into a model folder's generation_config.json."""
    path = Path(folder) / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **SAMPLING_DEFAULTS}))
    return folder


def _sampled_equals_trained(trainer):
    """Sample a group for the first example; its sampling-time log-probabilities (of the
    distribution generate really sampled from) must equal those of the training forward pass,
    although the checkpoint's generation_config asks for a repetition penalty, top-k and top-p.
    Returns (example, rollout, completion mask)."""
    own = trainer.policy.generation_config
    assert (own.repetition_penalty, own.top_k, own.top_p) == (1.3, 5, 0.5), "use _with_sampling_defaults"
    example = trainer.example(trainer.train_set, 0)
    torch.manual_seed(0)
    rollout = trainer.rollout(example)
    # the checkpoint's own settings are left as they were (they are saved with the model)
    assert trainer.policy.generation_config.to_dict() == own.to_dict()
    trained = trainer.sequence_logprobs(trainer.model, example, rollout.completion_ids, rollout.completion_mask)
    mask = rollout.completion_mask.bool()
    assert mask.sum() > 0
    assert torch.allclose(trained[mask], rollout.logprobs[mask], atol=1e-4)
    return example, rollout, mask


def test_sampling_logprobs_equal_the_training_forward_pass(setup, tmp_path):
    model = _with_sampling_defaults(shutil.copytree(setup[1], tmp_path / "model"))
    trainer = HPLTrainer(_config(setup, tmp_path / "run", "temperature=0.7", f"model={model}"))
    example, rollout, mask = _sampled_equals_trained(trainer)
    # the video and its position fields really matter: without them the numbers differ
    inputs = {k: v for k, v in example.inputs.items() if k in ("input_ids", "attention_mask")}
    blind = type(example)(example.record, inputs, example.columns)
    without_video = trainer.sequence_logprobs(trainer.model, blind, rollout.completion_ids, rollout.completion_mask)
    assert (without_video[mask] - rollout.logprobs[mask]).abs().max() > 1e-3
    # no vision token is ever sampled
    assert not torch.isin(rollout.completion_ids, torch.tensor(trainer.blocked_ids)).any()


def test_qwen3_vl_deepstack_path_keeps_generation_and_training_equal(tmp_path):
    # Qwen3-VL's vision output carries deepstack features; the once-per-group encoding copies
    # them to every row of the group as well
    model = _with_sampling_defaults(build_tiny("qwen3_vl", tmp_path / "model"))
    generate(tmp_path / "synth", n=6, seed=0, progress=False)
    args = [f"model={model}", f"data.records={tmp_path / 'synth' / 'records.jsonl'}",
            f"output_dir={tmp_path / 'run'}", f"data.cache_dir={tmp_path / 'cache'}", "group_size=3",
            "max_completion_length=10", "temperature=0.7", "data.frames.num_frames=4",
            # the grid is left to the model (its family's: 32 pixels, budget per clip)
            "data.frames.min_pixels=32768", "data.frames.max_pixels=131072"]
    _sampled_equals_trained(HPLTrainer(load_config(HPLConfig, None, args)))


def test_the_vision_tower_receives_gradient(setup, tmp_path):
    trainer = HPLTrainer(_config(setup, tmp_path / "run"))
    example = trainer.example(trainer.train_set, 0)
    rollout = trainer.rollout(example)
    loss, _ = trainer.loss_for_group(rollout, torch.tensor([1.0, -0.5, -0.5]))
    loss.backward()
    visual = [p.grad for n, p in trainer.policy.named_parameters() if ".visual." in f".{n}" or n.startswith("visual")]
    assert visual, "the model has no vision tower parameters"
    assert any(g is not None and g.abs().sum() > 0 for g in visual)


def test_start_up_errors_come_before_the_model(setup, tmp_path):
    root, model, data = setup
    with pytest.raises(ConfigError, match="unknown reward 'scroe'"):
        check_inputs(_config(setup, tmp_path, "rewards.weights={scroe: 1.0}"))
    with pytest.raises(ConfigError, match="no such model folder"):
        check_inputs(_config(setup, tmp_path, f"model={tmp_path / 'nope'}"))
    with pytest.raises(HieroActionError, match="no records in split 'training'"):
        check_inputs(_config(setup, tmp_path, "data.train_split=training"))
    with pytest.raises(ConfigError, match="group_size must be at least 2"):
        _config(setup, tmp_path, "group_size=1")
    no_steps = tmp_path / "no_steps.jsonl"
    no_steps.write_text("".join(
        json.dumps({**json.loads(line), "steps": []}) + "\n" for line in data.read_text().splitlines()))
    with pytest.raises(ConfigError, match="reward 'sequence' needs the column 'steps'"):
        check_inputs(_config(setup, tmp_path, f"data.records={no_steps}"))
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    unscored = tmp_path / "unscored_val.jsonl"
    unscored.write_text("".join(
        json.dumps({**r, "score": {**r["score"], "final": None}} if r["split"] == "val" else r) + "\n"
        for r in rows))
    with pytest.raises(ConfigError, match="selection.metric 'spearman'.*needs the true score"):
        check_inputs(_config(setup, tmp_path, f"data.records={unscored}", "data.eval_split=val"))


def _run(setup, out, *extra, wait=True):
    root, model, data = setup
    args = [sys.executable, str(TOY), f"model={model}", f"data.records={data}", f"output_dir={out}",
            f"data.cache_dir={root / 'cache'}", "group_size=3", "prompts_per_step=1", "max_completion_length=8",
            "learning_rate=0.01", "rewards.weights={toy: 1.0}", "save_steps=1", "keep_checkpoints=10",
            "data.eval_split=none", *FRAMES, *extra]
    # one thread: runs that are compared bit for bit compute alike, and two fit a 2-core machine
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "OMP_NUM_THREADS": "1"}
    if wait:
        subprocess.run(args, check=True, env=env, capture_output=True, timeout=300)
        return None
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _trainable(folder):
    return torch.load(folder / "model" / "trainable.pt", weights_only=True)


def test_resume_after_kill_9_loses_and_repeats_no_step(setup, tmp_path):
    # the uninterrupted run goes alongside the one that is killed (one CPU thread each)
    straight = _run(setup, tmp_path / "straight", "max_steps=4", wait=False)
    killed = tmp_path / "killed"
    proc = _run(setup, killed, "max_steps=4", wait=False)
    deadline = time.time() + 240
    while not (killed / "checkpoint-000002" / "trainer_state.json").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert straight.wait(timeout=300) == 0, "the uninterrupted run failed"
    assert not (killed / "final").exists()
    _run(setup, killed, "max_steps=4")
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    a, b = _trainable(tmp_path / "straight" / "checkpoint-000004"), _trainable(killed / "checkpoint-000004")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = _trainable(tmp_path / "straight" / "checkpoint-000001")
    assert any(not torch.equal(a[k], start[k]) for k in a), "training did not change the parameters"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_cpu_end_with_identical_parameters(setup, tmp_path):
    root, model, data = setup
    out = tmp_path / "ddp"
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
            str(TOY), f"model={model}", f"data.records={data}", f"output_dir={out}", f"data.cache_dir={root / 'cache'}",
            "group_size=3", "prompts_per_step=1", "max_completion_length=8", "learning_rate=0.01",
            "rewards.weights={toy: 1.0}", "save_steps=1", "keep_checkpoints=10", "data.eval_split=val",
            "eval_samples=2", "max_steps=3", *FRAMES]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rank0 = torch.load(out / "params-rank0.pt", weights_only=True)
    rank1 = torch.load(out / "params-rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    first = _trainable(out / "checkpoint-000001")
    assert any(not torch.equal(rank0[k], first[k]) for k in rank0), "training did not change the parameters"
    # metrics are logged once per step (0: the starting model's validation), by the main process only
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]


def test_a_time_budget_stops_after_a_whole_step_and_saves(setup, tmp_path):
    out = tmp_path / "timed"
    result = HPLTrainer(_config(setup, out, "max_steps=50", "max_seconds=1.5", "data.eval_split=none")).train()
    assert 1 <= result.global_step < 50
    assert (out / "final" / "config.json").is_file()
    assert ckpt_steps(out) == [result.global_step]
    # the saved model says how it is prompted, answer length included (hieroaction assess/serve)
    from hieroaction.inference.saved import read_settings

    saved = read_settings(out / "final")
    assert saved["max_new_tokens"] == trainer_config_length(out)
    assert saved["frames"]["num_frames"] and saved["domain"] == "synth"


def trainer_config_length(out):
    import yaml

    return yaml.safe_load((out / "hpl_config.yaml").read_text())["max_completion_length"]


def ckpt_steps(out):
    return [int(p.name.split("-")[1]) for p in sorted(out.glob("checkpoint-*"))]


def test_the_starting_model_is_validated_and_can_stay_best(setup, tmp_path):
    out = tmp_path / "start"
    trainer = HPLTrainer(_config(setup, out, "max_steps=1", "eval_steps=1", "eval_samples=2",
                                 "data.eval_split=train", "learning_rate=0.5",
                                 "selection.metric=reward", "selection.tie_break=null",
                                 "selection.guard_margin=null"))
    result = trainer.train()
    start, step = trainer.history[0], trainer.history[1]
    assert start["step"] == 0 and "val/reward" in start
    assert step["step"] == 1 and "val/reward" in step
    # every validation metric is logged, scored as `hieroaction evaluate` scores them
    for key in ("val/spearman", "val/rl2_x100", "val/action_accuracy", "val/parse_failure_rate",
                "val/reward_sampled"):
        assert key in start and key in step
    assert start["val/clips"] == 2
    # best/ holds whichever validated higher on the selection metric, the start included
    assert result.best_metrics["step"] == (0 if start["val/reward"] >= step["val/reward"] else 1)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in lines] == [0, 1]


def _answer(score: str) -> str:
    return ("<recognition>\n<action>inward-3-head</action>\n</recognition>\n<subactions>\n"
            '<step label="inward take-off" start="0" end="1" quality="7"></step>\n</subactions>\n'
            '<scoring>\n<component name="difficulty">4</component>\n'
            f'<component name="execution">17.5</component>\n<score>{score}</score>\n</scoring>')


def test_validation_reads_answers_as_evaluation_does(setup, tmp_path):
    # a score outside the domain's range (synth: 0-120) is a problem and no score in evaluation;
    # validation must count and fill it the same, or its rho, R-l2 and parse failures differ
    from hieroaction.evaluation.predictions import truth_from_record
    from hieroaction.evaluation.scoring import BootstrapConfig, ScoringConfig, score_predictions
    from hieroaction.inference.assessor import check_score_range
    from hieroaction.evaluation.predictions import prediction_from_assessment
    from hieroaction.sar.parse import parse_sar

    trainer = HPLTrainer(_config(setup, tmp_path / "val", "data.eval_split=train", "eval_samples=4"))
    texts = [_answer("84.6"), _answer("500"), _answer("61"), _answer("3.5")]
    trainer.answers = lambda examples, greedy: [texts[i % 4] for i in range(len(examples))]
    metrics = trainer.evaluate()
    records = trainer.val_set.records[:4]
    rows = []
    for text, record in zip(texts, records):
        parsed = parse_sar(text, strict=False)
        assessment, problems = check_score_range(parsed.assessment, list(parsed.problems), record.domain)
        rows.append(prediction_from_assessment(record.id, assessment, text, [p.model_dump(mode="json") for p in problems]))
    expected = score_predictions(rows, [truth_from_record(r) for r in records],
                                 ScoringConfig(bootstrap=BootstrapConfig(n_resamples=0))).metrics
    assert metrics["val/parse_failure_rate"] == expected["parse_failure_rate"] == 0.25
    assert metrics["val/rl2_x100"] == pytest.approx(expected["rl2_x100"])
    assert metrics["val/spearman"] == pytest.approx(expected["spearman"])


def _angle_brackets(completions, **_):
    return [completion_text(x).count("<") / 10 for x in completions]


def test_grpo_raises_a_learnable_reward(setup, tmp_path):
    # the trainer optimises in the right direction: a reward for writing "<" grows within 18 steps
    # (one group of 8 per step; at this learning rate it stays near 0.02 for about 10 steps on
    # the synth fixture's frames, then climbs to over 1)
    register("angle_brackets", _angle_brackets, "structure", ())
    trainer = HPLTrainer(_config(setup, tmp_path / "learn", "data.eval_split=none", "group_size=8",
                                 "prompts_per_step=1", "max_completion_length=16", "learning_rate=3e-2",
                                 "loss_type=dr_grpo", "rewards.weights={angle_brackets: 1.0}",
                                 "rewards.composition.mode=sum"))
    totals = [trainer.train_step()["metrics"]["reward/total"] for _ in range(18)]
    first, last = sum(totals[:3]) / 3, sum(totals[-3:]) / 3
    assert last > 2 * first and last - first > 0.1, (first, last, totals)


# --- exactness of the objective (issue 16) ------------------------------------------------------

def test_lora_rollouts_ignore_the_checkpoints_sampling_settings_too(setup, tmp_path):
    # PEFT's generate copies the wrapper's generation_config onto the base model
    model = _with_sampling_defaults(shutil.copytree(setup[1], tmp_path / "model"))
    trainer = HPLTrainer(_config(setup, tmp_path / "run", "temperature=0.7", f"model={model}", "lora.enabled=true"))
    _sampled_equals_trained(trainer)
    assert trainer.policy.get_base_model().generation_config.repetition_penalty == 1.3


def _loss_and_grads(trainer, rollout, advantages):
    trainer.optimizer.zero_grad(set_to_none=True)
    loss, _ = trainer.loss_for_group(rollout, advantages)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.policy.named_parameters() if p.grad is not None}
    trainer.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach()), grads


def test_dapo_is_a_token_mean_whatever_the_forward_batch_size(setup, tmp_path):
    trainer = HPLTrainer(_config(setup, tmp_path / "run", "loss_type=dapo"))
    torch.manual_seed(0)
    rollout = trainer.rollout(trainer.example(trainer.train_set, 0))
    # completions of 3, 12 and 7 tokens
    mask = torch.zeros_like(rollout.completion_mask)
    for row, length in enumerate((3, 12, 7)):
        mask[row, :length] = 1
    rollout.completion_mask = mask
    advantages = torch.tensor([1.0, -1.25, 0.25])
    whole, whole_grads = _loss_and_grads(trainer, rollout, advantages)
    # at ratio 1 the loss is minus the token mean of the advantages
    assert whole == pytest.approx(-(3 * 1.0 - 12 * 1.25 + 7 * 0.25) / 22, rel=1e-5)
    trainer.config.forward_batch_size = 1
    one, one_grads = _loss_and_grads(trainer, rollout, advantages)
    assert one == pytest.approx(whole, rel=1e-5)
    assert whole_grads.keys() == one_grads.keys()
    for name, grad in whole_grads.items():
        assert torch.allclose(one_grads[name], grad, rtol=1e-4, atol=1e-7), name
    # grpo averages per completion first: another loss and gradient for unequal lengths
    trainer.config.loss_type = "grpo"
    grpo, grpo_grads = _loss_and_grads(trainer, rollout, advantages)
    assert grpo == pytest.approx(0.0, abs=1e-6) and abs(whole - grpo) > 0.1
    assert any(not torch.allclose(grpo_grads[n], g) for n, g in whole_grads.items())


def _text_length(completions, **_):
    return [min(1.0, len(completion_text(x)) / 200) for x in completions]


def test_one_update_takes_the_training_pass_as_old_policy_and_more_keep_it_fixed(setup, tmp_path):
    base = ("zero_spread=keep", "data.eval_split=none", "rewards.weights={text_length: 1.0}",
            "rewards.composition.mode=sum", "group_size=4", "max_completion_length=8", "clip_high=0.01",
            "clip_low=0.01")
    register("text_length", _text_length, "structure", ())
    one = HPLTrainer(_config(setup, tmp_path / "one", *base, "learning_rate=0.05"))
    torch.manual_seed(0)
    metrics = one.train_step()["metrics"]
    assert metrics["policy/ratio_mean"] == 1.0 and metrics["policy/clipped_fraction"] == 0.0
    # the rewards' shares of the within-group variance are logged next to the zero-spread fraction
    assert metrics["reward_variance_share/text_length"] == pytest.approx(1.0)
    # with lr 0, a no-grad old-policy pass equals the training pass: ratio 1 in every update
    still = HPLTrainer(_config(setup, tmp_path / "still", *base, "learning_rate=0", "num_iterations=2"))
    torch.manual_seed(0)
    metrics = still.train_step()["metrics"]
    assert metrics["policy/ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    # with a large step the second update sees the policy move away from the old one, clipped
    moving = HPLTrainer(_config(setup, tmp_path / "moving", *base, "learning_rate=0.05", "num_iterations=2",
                                "max_grad_norm=100"))
    torch.manual_seed(0)
    updates = []
    original = moving._update
    moving._update = lambda *a: updates.append(original(*a)) or updates[-1]
    moving.train_step()
    assert len(updates) == 2 and moving.step == 1
    assert updates[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-6) and updates[0]["clipped_fraction"] == 0.0
    assert abs(updates[1]["ratio_mean"] - 1.0) > 1e-4 and updates[1]["clipped_fraction"] > 0
    with pytest.raises(ConfigError, match="num_iterations"):
        _config(setup, tmp_path, "num_iterations=0")


def test_the_reference_model_runs_in_the_policys_precision(setup, tmp_path):
    # bf16 autocast on the CPU: a reference outside it computed in fp32 and the KL at step 1,
    # before any update, was not 0 (accelerate's state is per process: reset around the test)
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        trainer = HPLTrainer(_config(setup, tmp_path / "run", "precision=bf16", "learning_rate=0", "beta=0.1",
                                     "zero_spread=keep", "data.eval_split=none"))
        assert trainer.accelerator.mixed_precision == "bf16" and trainer.ref_model is not None
        torch.manual_seed(0)
        rollout = trainer.rollout(trainer.example(trainer.train_set, 0))
        args = (rollout.example, rollout.completion_ids, rollout.completion_mask)
        with torch.no_grad():
            gap = trainer.sequence_logprobs(trainer.ref_model, *args) - trainer.sequence_logprobs(trainer.model, *args)
        assert gap.abs().max() < 1e-6  # about 1e-3 with the reference in fp32
        assert trainer.train_step()["metrics"]["kl"] < 1e-6
        assert trainer.train_step()["metrics"]["kl"] < 1e-6
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def test_batched_validation_answers_as_one_clip_at_a_time(setup, tmp_path):
    # validation answers eval_batch_size prompts per generate call, left-padded: the greedy
    # answers, and so every validation metric but the sampled reward, are those of one clip at a
    # time (prompts of different lengths, so the padding is exercised)
    trainer = HPLTrainer(_config(setup, tmp_path / "batched", "data.eval_split=train", "eval_samples=5",
                                 "eval_batch_size=4", "max_completion_length=24"))
    examples = [trainer.example(trainer.val_set, i) for i in range(5)]
    lengths = {int(e.inputs["input_ids"].shape[1]) for e in examples}
    assert len(lengths) > 1
    alone = [trainer.rollout(e, n=1, greedy=True).texts[0] for e in examples]
    assert trainer.answers(examples[:4], greedy=True) + trainer.answers(examples[4:], greedy=True) == alone
    batched = trainer.evaluate()
    trainer.config.eval_batch_size = 1
    single = trainer.evaluate()
    for key, value in single.items():
        if key != "val/reward_sampled":
            assert batched[key] == pytest.approx(value, nan_ok=True), key


def test_a_checkpoint_stored_in_bf16_trains_in_the_precision_asked_for(setup, tmp_path):
    # released Qwen checkpoints are stored in bf16: precision fp32 must not train bf16 weights
    root, model, data = setup
    stored = tmp_path / "bf16"
    shutil.copytree(model, stored)
    from hieroaction.models.loading import load_model_and_processor

    weights, _ = load_model_and_processor(stored)
    weights.to(torch.bfloat16).save_pretrained(stored)
    trainer = HPLTrainer(_config((root, stored, data), tmp_path / "out", "precision=fp32", "data.eval_split=none"))
    assert {p.dtype for p in trainer.policy.parameters()} == {torch.float32}
