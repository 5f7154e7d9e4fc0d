"""The vLLM rollout backend on a CPU machine: everything but the engine itself.

vLLM is not installed here (and needs a CUDA GPU), so these tests check the parts that do not
need it: the start-up error, the request (prompt text, frames, metadata) against the training
processor's own inputs, the sampling parameters, the conversion of vLLM's outputs to padded
tensors, the merged LoRA weights sent to the engine, and the importance-weighted loss.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import math
from importlib.machinery import ModuleSpec
from types import SimpleNamespace

import pytest
import torch

from hieroaction.config import config_from_dict, load_config
from hieroaction.errors import ConfigError
from hieroaction.models.families import VIDEO_TOKEN, VISION_END_TOKEN, VISION_START_TOKEN
from hieroaction.models.processor import VideoChatProcessor
from hieroaction.models.video_inputs import process_video
from hieroaction.train.data import DataConfig, load_examples
from hieroaction.train.hpl import HPLConfig, HPLTrainer, Rollout, _completion_mask, _sampler_metrics, check_inputs
from hieroaction.train.objective import truncated_importance_weights
from hieroaction.train.vllm_rollout import (
    VIDEO_ITEM,
    VideoRequest,
    VLLMRollout,
    allowed_token_ids,
    build_request,
    completions_to_tensors,
    distributed_env,
    llm_kwargs,
    merged_weights,
    prompt_mismatch,
    prompt_variants,
    sampling_kwargs,
    video_metadata,
)

from tests.train.conftest import FRAME_OVERRIDES, QWEN3_FRAME_OVERRIDES

_real_find_spec = importlib.util.find_spec


def _vllm_installed(installed: bool):
    def find_spec(name, *args, **kwargs):
        if name == "vllm":
            return ModuleSpec("vllm", None) if installed else None
        return _real_find_spec(name, *args, **kwargs)

    return find_spec


# ----- start-up -------------------------------------------------------------------------------


def test_check_inputs_says_how_to_install_vllm_before_reading_any_data(tmp_path, monkeypatch):
    # no data.records at all: the vLLM problem is reported first
    config = load_config(HPLConfig, None, [f"model={tmp_path}", "rollout_backend=vllm"])
    monkeypatch.setattr(importlib.util, "find_spec", _vllm_installed(False))
    not_installed = r'vllm package, which is not installed; install it with pip install -e "\.\[vllm\]"'
    with pytest.raises(ConfigError, match=not_installed):
        check_inputs(config)
    monkeypatch.setattr(importlib.util, "find_spec", _vllm_installed(True))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU and none is visible"):
        check_inputs(config)
    # the default backend does not ask for vLLM (it stops at the missing records instead; the
    # folder must look like a checkpoint of a known family, or the model is what it stops at)
    (tmp_path / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    with pytest.raises(ConfigError, match="data.records"):
        check_inputs(load_config(HPLConfig, None, [f"model={tmp_path}"]))


def test_the_engine_refuses_to_start_without_vllm(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", _vllm_installed(False))
    with pytest.raises(ConfigError, match="pip install"):
        VLLMRollout(str(tmp_path), HPLConfig().vllm, None, None, seed=0)


def test_vllm_settings_load_from_yaml_and_overrides(tmp_path):
    recipe = tmp_path / "hpl.yaml"
    recipe.write_text("rollout_backend: vllm\nvllm:\n  gpu_memory_utilization: 0.4\n  enforce_eager: true\n")
    config = load_config(HPLConfig, recipe, ["--vllm.importance_sampling_cap", "3", "vllm.max_model_len=8192"])
    assert config.rollout_backend == "vllm"
    assert (config.vllm.gpu_memory_utilization, config.vllm.enforce_eager) == (0.4, True)
    assert (config.vllm.importance_sampling_cap, config.vllm.max_model_len) == (3.0, 8192)
    assert HPLConfig().rollout_backend == "hf"
    with pytest.raises(ConfigError, match="rollout_backend"):
        load_config(HPLConfig, None, ["rollout_backend=sglang"])
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        load_config(HPLConfig, None, ["vllm.gpu_memory_utilization=1.5"])
    with pytest.raises(ConfigError, match="importance_sampling_cap"):
        load_config(HPLConfig, None, ["vllm.importance_sampling_cap=0.5"])
    with pytest.raises(ConfigError, match="unknown config key 'vllm.tensor_parallel'"):
        load_config(HPLConfig, None, ["vllm.tensor_parallel=2"])


def test_engine_and_environment_arguments():
    settings = config_from_dict(HPLConfig, {"vllm": {"max_model_len": 4096}}).vllm
    kwargs = llm_kwargs("/models/m", settings, seed=3, mm_kwargs={"size": {"shortest_edge": 1, "longest_edge": 2}})
    assert kwargs["model"] == "/models/m" and kwargs["tensor_parallel_size"] == 1
    assert kwargs["distributed_executor_backend"] == "external_launcher"
    assert kwargs["limit_mm_per_prompt"] == {"image": 0, "video": 1}
    assert kwargs["logprobs_mode"] == "processed_logprobs"
    assert kwargs["generation_config"] == "vllm"
    assert (kwargs["seed"], kwargs["max_model_len"], kwargs["gpu_memory_utilization"]) == (3, 4096, 0.3)
    assert "max_num_batched_tokens" not in kwargs
    env = distributed_env(2, 0, 4)
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"]) == ("2", "0", "4")


# ----- the request ----------------------------------------------------------------------------


def _video_expansion(request: VideoRequest, processor: VideoChatProcessor) -> tuple[str, str]:
    """``(target, replacement)`` of vLLM's Qwen VL processors for the request's video (the
    replacement rules of vLLM's ``qwen2_5_vl.py`` / ``qwen3_vl.py`` as read in its main-branch
    source): Qwen2.5-VL replaces the ``<|video_pad|>`` by one pad per merged patch; Qwen3-VL
    replaces the whole ``<|vision_start|><|video_pad|><|vision_end|>`` by ``<t seconds>
    <|vision_start|>pads<|vision_end|>`` per temporal patch, with ``t`` from ``frames_indices /
    fps`` (padded to the patch size with the last index, averaged over the patch)."""
    video = processor.video
    t, h, w = request.frames.shape[:3]
    grid_t = math.ceil(t / video.temporal_patch_size)
    per_frame = (h // video.patch_size) * (w // video.patch_size) // video.merge_size**2
    if processor.family.time_encoding == "second_per_grid_ts":
        return VIDEO_TOKEN, VIDEO_TOKEN * grid_t * per_frame
    indices = list(request.metadata["frames_indices"])
    indices += [indices[-1]] * (-len(indices) % video.temporal_patch_size)
    times = [i / request.metadata["fps"] for i in indices]
    step = video.temporal_patch_size
    stamps = [(times[i] + times[i + step - 1]) / 2 for i in range(0, len(times), step)]
    blocks = "".join(
        f"<{s:.1f} seconds>" + VISION_START_TOKEN + VIDEO_TOKEN * per_frame + VISION_END_TOKEN for s in stamps
    )
    return VIDEO_ITEM, blocks


def _expand_like_vllm(prompt: str, request: VideoRequest, processor: VideoChatProcessor) -> str:
    """The prompt text after vLLM's own replacement of the video item (a text prompt with the
    processor cache, vLLM's default)."""
    target, replacement = _video_expansion(request, processor)
    return prompt.replace(target, replacement, 1)


def _expand_tokens_like_vllm(ids: list[int], request: VideoRequest, processor: VideoChatProcessor) -> list[int]:
    """A token prompt after vLLM's own replacement: the target's token ids are found in the
    prompt's and replaced by the replacement's (time stamps tokenized on their own, as vLLM's
    ``tokenizer.encode(f"<{t:.1f} seconds>", add_special_tokens=False)``)."""
    target, replacement = _video_expansion(request, processor)
    encode = processor.tokenizer.encode
    target_ids = encode(target, add_special_tokens=False)
    pieces = replacement.replace(VISION_START_TOKEN, "\0" + VISION_START_TOKEN).split("\0")
    replacement_ids = [i for piece in pieces if piece for i in encode(piece, add_special_tokens=False)]
    at = next(i for i in range(len(ids)) if ids[i : i + len(target_ids)] == target_ids)
    return ids[:at] + replacement_ids + ids[at + len(target_ids) :]


@pytest.fixture(scope="module")
def examples(tiny_models, synth_data, frame_cache, short_template):
    """Training inputs and the vLLM request of one clip, per family and frame count."""
    out = {}
    for family, frames in (("qwen2_5_vl", FRAME_OVERRIDES), ("qwen3_vl", QWEN3_FRAME_OVERRIDES)):
        for num_frames in (4, 5):
            data = config_from_dict(DataConfig, {
                "records": str(synth_data), "cache_dir": str(frame_cache), "max_train_samples": 1,
                "frames": {**frames, "num_frames": num_frames}, "prompt": {"template": str(short_template)},
            })
            item = load_examples(data, targets=False, progress=False)[data.train_split][0]
            processor = VideoChatProcessor.from_pretrained(tiny_models[family])
            processor.video = processor.video.for_frames(data.frames)
            inputs = processor(item.messages, item.clip)
            prompt = processor.apply_chat_template(item.messages, add_generation_prompt=True)
            request = build_request(prompt, item.clip, processor.video, processor.family,
                                    inputs["input_ids"][0].tolist())
            out[family, num_frames] = (item, processor, inputs, request)
    return out


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("num_frames", [4, 5])
def test_the_request_reproduces_the_training_prompt_tokens(examples, family, num_frames):
    item, processor, inputs, request = examples[family, num_frames]
    expected = inputs["input_ids"][0].tolist()
    assert request.prompt_token_ids == expected
    decode = processor.tokenizer.decode
    variants = prompt_variants(processor.family)
    assert variants == (("text", "token_ids") if family == "qwen3_vl" else ("text",))
    # the text prompt, expanded by vLLM's own rule (its default, with the processor cache)
    first = request.to_vllm(variants[0])
    assert first["prompt"] == request.prompt and first["prompt"].count(VIDEO_ITEM) == 1
    expanded = _expand_like_vllm(first["prompt"], request, processor)
    assert prompt_mismatch(processor.tokenizer(expanded)["input_ids"], expected, decode) is None
    # the token prompt, which vLLM always expands by its own rule
    tokens = request.to_vllm("token_ids", processor.tokenizer)
    assert "prompt" not in tokens
    assert decode(tokens["prompt_token_ids"]) == request.prompt
    got = _expand_tokens_like_vllm(tokens["prompt_token_ids"], request, processor)
    assert prompt_mismatch(got, expected, decode) is None
    if family == "qwen3_vl":
        # The training layout has one vision pair per temporal patch and none around them. A
        # text prompt expanded by transformers 5.22-5.24 inside vLLM (no processor cache) gets
        # the extra outer pair: the check catches it and the token prompt is tried next.
        _, blocks = _video_expansion(request, processor)
        assert decode(expected).count(VISION_START_TOKEN) == blocks.count(VISION_START_TOKEN)
        old_hf = request.prompt.replace(VIDEO_ITEM, VISION_START_TOKEN + blocks + VISION_END_TOKEN, 1)
        problem = prompt_mismatch(processor.tokenizer(old_hf)["input_ids"], expected, decode)
        assert problem is not None and f"has {len(expected) + 2} tokens" in problem
    for prompt in (first, tokens):
        frames, metadata = prompt["multi_modal_data"]["video"]
        assert frames is request.frames and metadata == request.metadata and metadata is not request.metadata
    with pytest.raises(ValueError, match="tokenizer"):
        request.to_vllm("token_ids")


class _FakeLLM:
    """vLLM's ``LLM`` as ``VLLMRollout.sample`` uses it, expanding a text prompt as transformers
    5.22-5.24 do inside vLLM without the processor cache (Qwen3-VL: the extra outer pair) and a
    token prompt by vLLM's own rule."""

    def __init__(self, request, processor):
        self.request, self.processor, self.prompts = request, processor, []

    def get_tokenizer(self):
        return self.processor.tokenizer

    def generate(self, prompts, sampling_params=None, use_tqdm=False):
        (prompt,) = prompts
        self.prompts.append(prompt)
        if "prompt" in prompt:
            target, blocks = _video_expansion(self.request, self.processor)
            if target == VIDEO_ITEM:
                blocks = VISION_START_TOKEN + blocks + VISION_END_TOKEN
            ids = self.processor.tokenizer(prompt["prompt"].replace(target, blocks, 1))["input_ids"]
        else:
            ids = _expand_tokens_like_vllm(prompt["prompt_token_ids"], self.request, self.processor)
        completion = SimpleNamespace(token_ids=[1, 2], logprobs=None)
        return [SimpleNamespace(prompt_token_ids=ids, outputs=[completion])]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_sample_keeps_the_first_prompt_form_that_reproduces_the_training_prompt(examples, family):
    item, processor, inputs, request = examples[family, 4]
    rollout = object.__new__(VLLMRollout)  # no engine: only the prompt check runs
    rollout.family, rollout.decode, rollout._variant = processor.family, processor.tokenizer.decode, None
    rollout.llm = _FakeLLM(request, processor)
    rollout._sampling_params = lambda kwargs: None
    assert len(rollout.sample(request, {})) == 1
    assert len(rollout.sample(request, {})) == 1
    if family == "qwen3_vl":
        # the text prompt came back with the extra pair, so the token prompt was tried and kept
        assert rollout._variant == "token_ids"
        assert ["prompt" in p for p in rollout.llm.prompts] == [True, False, False]
    else:
        assert rollout._variant == "text" and all("prompt" in p for p in rollout.llm.prompts)
    # a prompt no form reproduces stops the run with the first difference
    rollout._variant = None
    wrong = dataclasses.replace(request, prompt_token_ids=request.prompt_token_ids[:-1])
    with pytest.raises(ConfigError, match="vLLM built another prompt than the training processor"):
        rollout.sample(wrong, {})


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("num_frames", [4, 5])
def test_the_request_frames_are_the_pixels_the_training_processor_patches(examples, family, num_frames):
    item, processor, inputs, request = examples[family, num_frames]
    video = processor.video
    frames = request.frames
    t, h, w = item.clip.frames.shape[:3]
    assert frames.dtype.name == "uint8" and frames.shape == (t, *video.target_size(t, h, w), 3)
    if frames.shape == item.clip.frames.shape:
        assert (frames == item.clip.frames).all()  # cached frames are at the budget already
    kwargs = request.mm_processor_kwargs
    assert (kwargs["size"]["shortest_edge"], kwargs["size"]["longest_edge"]) == (video.min_pixels, video.max_pixels)
    assert kwargs["do_resize"] is False and kwargs["do_sample_frames"] is False
    # patched as they are (vLLM's processor resizes nothing), they give the training tensors
    clip = SimpleNamespace(frames=frames, timestamps=item.clip.timestamps, fps=item.clip.fps)
    as_is = process_video(clip.frames, clip.timestamps, clip.fps, dataclasses.replace(video, do_resize=False))
    assert torch.equal(as_is.pixel_values_videos, inputs["pixel_values_videos"])
    assert list(as_is.video_grid_thw) == inputs["video_grid_thw"][0].tolist()


@pytest.mark.parametrize("num_frames", [4, 5])
def test_qwen2_5_metadata_gives_the_training_seconds_per_grid(examples, num_frames):
    from transformers.video_utils import VideoMetadata

    item, processor, inputs, request = examples["qwen2_5_vl", num_frames]
    fields = {k: v for k, v in request.metadata.items() if k != "do_sample_frames"}
    # transformers 5's Qwen2.5-VL processor: second_per_grid_ts = temporal_patch_size / sampled_fps
    from_metadata = processor.video.temporal_patch_size / VideoMetadata(**fields).sampled_fps
    expected = inputs["second_per_grid_ts"]
    assert torch.tensor([from_metadata], dtype=torch.float32).equal(expected)
    # processors that read the rate from the call's fps instead agree too
    from_fps = processor.video.temporal_patch_size / request.mm_processor_kwargs["fps"]
    assert torch.tensor([from_fps], dtype=torch.float32).equal(expected)


def test_metadata_indices_give_back_the_clip_times():
    from hieroaction.models.families import get_family

    times = [0.0, 0.4, 1.28, 2.0]
    meta = video_metadata(times, 25.0, get_family("qwen3_vl"))
    assert meta["frames_indices"] == [0, 10, 32, 50]
    assert [i / meta["fps"] for i in meta["frames_indices"]] == times
    assert meta["total_num_frames"] == 51 and meta["do_sample_frames"] is False
    single = video_metadata([0.0], 30.0, get_family("qwen2_5_vl"))
    assert single["total_num_frames"] == 1


def test_a_prompt_without_one_video_item_is_refused(examples):
    item, processor, inputs, request = examples["qwen2_5_vl", 4]
    with pytest.raises(Exception, match="exactly one video item"):
        build_request(request.prompt.replace(VIDEO_ITEM, ""), item.clip, processor.video, processor.family)


def test_prompt_mismatch_names_the_first_difference():
    decode = lambda ids: " ".join(map(str, ids))  # noqa: E731
    assert prompt_mismatch([1, 2, 3], [1, 2, 3], decode) is None
    problem = prompt_mismatch([1, 2, 9, 4], [1, 2, 3, 4], decode)
    assert "first differ at token 2" in problem and "'1 2 9 4'" in problem
    assert "5 tokens" in prompt_mismatch([1, 2, 3, 4, 5], [1, 2, 3, 4], decode)
    assert prompt_mismatch(None, [1], decode) is not None


# ----- sampling parameters and outputs --------------------------------------------------------


def test_sampling_parameters_use_the_full_distribution_without_vision_tokens():
    allowed = allowed_token_ids(10, [3, 7])
    assert allowed == [0, 1, 2, 4, 5, 6, 8, 9]
    kwargs = sampling_kwargs(4, 0.7, 64, allowed, [9, 8])
    assert (kwargs["n"], kwargs["temperature"], kwargs["max_tokens"]) == (4, 0.7, 64)
    assert (kwargs["top_k"], kwargs["top_p"], kwargs["min_p"], kwargs["repetition_penalty"]) == (0, 1.0, 0.0, 1.0)
    assert kwargs["logprobs"] == 0  # the sampled token's own log-probability
    assert kwargs["stop_token_ids"] == [9, 8] and kwargs["allowed_token_ids"] == allowed


def _completion(tokens, logprobs):
    """A stand-in for vLLM's ``CompletionOutput``: ``token_ids`` and, per position, a mapping of
    token id to an object with ``logprob`` (or ``None`` when vLLM returned no log-probabilities)."""
    if logprobs is not None:
        logprobs = [{t: SimpleNamespace(logprob=v, rank=1)} for t, v in zip(tokens, logprobs)]
    return SimpleNamespace(token_ids=tokens, logprobs=logprobs)


def test_vllm_outputs_become_padded_tensors_with_the_hf_mask():
    eos, pad = [50, 51], 0
    completions = [
        _completion([5, 7, 50], [-0.1, -0.2, -0.3]),  # ends with an end-of-turn token
        _completion([9, 51], [-1.0, -2.0]),  # shorter, the other end token
        _completion([4, 4, 4, 4], [-0.5, -0.5, -0.5, -0.5]),  # cut at max_tokens, no end token
        _completion([6, 50], None),  # no log-probabilities
        _completion([], None),  # empty
    ]
    completions[1].logprobs[0] = {}  # a position without the sampled token
    ids, mask, logp = completions_to_tensors(completions, eos, pad)
    assert ids.tolist() == [[5, 7, 50, 0], [9, 51, 0, 0], [4, 4, 4, 4], [6, 50, 0, 0], [0, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]]
    assert logp[0].tolist() == pytest.approx([-0.1, -0.2, -0.3, 0.0])
    assert math.isnan(logp[1, 0]) and logp[1, 1].item() == -2.0 and logp[1, 2:].tolist() == [0.0, 0.0]
    assert torch.isnan(logp[3, :2]).all() and logp[3, 2:].tolist() == [0.0, 0.0]
    assert logp[4].tolist() == [0.0] * 4
    # padded with an end-of-turn token, as generate pads, the trainer's own mask agrees
    hf_style = ids.clone()
    hf_style[~mask.bool() & (torch.arange(4) >= torch.tensor([3, 2, 4, 2, 4])[:, None])] = 50
    assert _completion_mask(hf_style[:4], eos).tolist() == mask[:4].tolist()


# ----- weights --------------------------------------------------------------------------------


def test_merged_lora_weights_equal_merge_and_unload_without_touching_the_policy(tiny_models):
    from peft import LoraConfig, get_peft_model

    from hieroaction.models import load_model_and_processor

    model, _ = load_model_and_processor(tiny_models["qwen2_5_vl"])
    names = [n for n, _ in model.named_parameters()]
    plain = dict(merged_weights(model))
    assert list(plain) == names
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "gate_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    merged = dict(merged_weights(peft_model))
    reference = dict(copy.deepcopy(peft_model).merge_and_unload().named_parameters())
    assert list(merged) == list(reference) == names
    changed = [n for n in names if not torch.equal(merged[n], plain[n])]
    assert changed and all(any(t in n for t in ("q_proj", "v_proj", "gate_proj")) for n in changed)
    for name in names:
        assert torch.allclose(merged[name], reference[name], atol=1e-6), name
    after = dict(peft_model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)  # the policy is not modified


# ----- the loss with importance weights ---------------------------------------------------------


@pytest.fixture(scope="module")
def trainer(tiny_models, synth_data, frame_cache, short_template, tmp_path_factory):
    args = [f"model={tiny_models['qwen2_5_vl']}", f"data.records={synth_data}", f"data.cache_dir={frame_cache}",
            f"output_dir={tmp_path_factory.mktemp('vllm_hpl')}", "data.max_train_samples=1",
            f"data.prompt.template={short_template}", "group_size=3", "max_completion_length=8",
            "data.frames.num_frames=4", "data.frames.min_pixels=3136", "data.frames.max_pixels=3136"]
    return HPLTrainer(load_config(HPLConfig, None, args))


def test_importance_weights_enter_the_group_loss(trainer):
    example = trainer.example(trainer.train_set, 0)
    torch.manual_seed(0)
    rollout = trainer.rollout(example)
    assert rollout.token_weights is None and rollout.sampler_logprobs is None  # the HF path
    advantages = torch.tensor([1.0, 1.0, 1.0])
    plain, _ = trainer.loss_for_group(rollout, advantages)
    ones = Rollout(rollout.example, rollout.completion_ids, rollout.completion_mask, rollout.logprobs,
                   rollout.texts, sampler_logprobs=rollout.logprobs.clone(),
                   token_weights=rollout.completion_mask.float())
    same, _ = trainer.loss_for_group(ones, advantages)
    assert torch.equal(plain.detach(), same.detach())
    halved = Rollout(rollout.example, rollout.completion_ids, rollout.completion_mask, rollout.logprobs,
                     rollout.texts, token_weights=0.5 * rollout.completion_mask.float())
    half, _ = trainer.loss_for_group(halved, advantages)
    # the ratio is 1 at the first update (up to float noise): the loss is minus the weighted advantage
    assert plain.item() == pytest.approx(-1.0, abs=1e-3)
    assert half.item() == pytest.approx(0.5 * plain.item(), abs=1e-6)
    metrics = _sampler_metrics([ones], cap=2.0)
    assert metrics == {"vllm/is_weight": 1.0, "vllm/is_capped_fraction": 0.0, "vllm/logprob_gap": 0.0,
                       "vllm/missing_logprob_fraction": 0.0}
    # a sampler 0.1 nats below the policy on every token, one token without a log-probability
    sampler = rollout.logprobs - 0.1 * rollout.completion_mask
    first = rollout.completion_mask.nonzero()[0].tolist()
    sampler[first[0], first[1]] = float("nan")
    weights = truncated_importance_weights(rollout.logprobs, sampler, rollout.completion_mask, cap=1.05)
    shifted = Rollout(rollout.example, rollout.completion_ids, rollout.completion_mask, rollout.logprobs,
                      rollout.texts, sampler_logprobs=sampler, token_weights=weights)
    metrics = _sampler_metrics([shifted], cap=1.05)
    tokens = int(rollout.completion_mask.sum())
    assert metrics["vllm/logprob_gap"] == pytest.approx(0.1, abs=1e-5)
    assert metrics["vllm/missing_logprob_fraction"] == pytest.approx(1 / tokens)
    assert metrics["vllm/is_capped_fraction"] == pytest.approx((tokens - 1) / tokens)  # exp(0.1) > 1.05
