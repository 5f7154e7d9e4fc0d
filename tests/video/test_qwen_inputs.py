"""Model-ready video inputs (hieroaction.models.video_inputs / processor) against transformers.

Three levels of comparison with transformers' own Qwen processors (5.22-5.25):

1. Where torchvision imports: ``AutoProcessor.from_pretrained`` on a tiny checkpoint vs ours,
   same token ids and grid, pixel values within 1e-2 (skipped here: no torchvision).
2. Everywhere: transformers' real ``Qwen2VLVideoProcessor`` / ``Qwen3VLVideoProcessor`` and
   ``Qwen2_5_VLProcessor`` / ``Qwen3VLProcessor`` code (frame handling, smart_resize, patchify,
   placeholder expansion, timestamps, mm_token_type_ids, second_per_grid_ts), with the three
   torchvision kernels it calls (resize, normalize, grayscale_to_rgb) replaced by the torch
   calls torchvision makes on CPU. Those kernels are checked on their own against PIL below.
3. Properties that need no reference: patch inverse, odd-frame padding, frame times, budgets.

The Qwen3-VL layout is one ``<|vision_start|>...<|vision_end|>`` pair per temporal patch and
none around the whole video, as Qwen3-VL's released processor, vLLM and transformers >= 5.25
write it. transformers 5.0-5.24 keep the chat template's pair around the blocks as well (one more
``<|vision_start|>`` and ``<|vision_end|>``): there the comparison is made on the prompt with that
pair removed beforehand (the bare ``<|video_pad|>`` those versions replace the same way), and a
second check states the documented difference exactly (:func:`_keeps_outer_pair`).
"""

from __future__ import annotations

import enum
import importlib
import json
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from packaging.version import Version
from PIL import Image

from hieroaction.errors import ConfigError, VideoError
from hieroaction.models.families import (
    VIDEO_TOKEN,
    VISION_END_TOKEN,
    VISION_START_TOKEN,
    get_family,
)
from hieroaction.models.processor import VideoChatProcessor
from hieroaction.models.tokenizer import build_tokenizer
from hieroaction.models.video_inputs import (
    VideoSettings,
    patch_timestamps,
    patchify,
    process_video,
    resize_video,
    unpatchify,
)

FAMILIES = ("qwen2_5_vl", "qwen3_vl")
MESSAGES = [
    {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Assess the dive."}]}
]
# (frames, height, width): odd and even frame counts, landscape and portrait, up- and downscaling.
SHAPES = [(8, 96, 128), (7, 120, 90), (16, 64, 64), (5, 250, 333)]


def _torchvision_importable() -> bool:
    try:
        import torchvision  # noqa: F401
    # A CUDA-only wheel fails with OSError or RuntimeError, not only ImportError.
    except Exception:  # noqa: BLE001
        return False
    return True


HAS_TORCHVISION = _torchvision_importable()

VIDEO_ITEM = VISION_START_TOKEN + VIDEO_TOKEN + VISION_END_TOKEN


def _keeps_outer_pair(family_name: str) -> bool:
    """Whether this transformers' processor keeps the template's vision_start/vision_end pair
    around a video's per-patch blocks: Qwen3-VL before transformers 5.25 (5.25 removes it,
    ``Qwen3VLProcessor.get_text_with_replacements``). Qwen2.5-VL's pads belong inside the pair."""
    return family_name == "qwen3_vl" and Version(transformers.__version__) < Version("5.25")


def _clip(
    num_frames: int, height: int, width: int, seed: int = 0, fps: float = 25.0, step: int = 4
):
    """Random frames sampled every ``step`` source frames, with their true times."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    indices = list(range(0, num_frames * step, step))
    return SimpleNamespace(
        frames=frames,
        timestamps=[i / fps for i in indices],
        fps=fps,
        indices=indices,
        total=num_frames * step,
    )


@pytest.fixture(scope="module")
def processors() -> dict[str, VideoChatProcessor]:
    """Our processors with small budgets (tiny-model settings) and a locally trained tokenizer."""
    out = {}
    budgets = {"qwen2_5_vl": (3136, 12544), "qwen3_vl": (32768, 131072)}
    for name in FAMILIES:
        family = get_family(name)
        video = VideoSettings.for_family(family).with_budget(*budgets[name])
        out[name] = VideoChatProcessor(
            family, build_tokenizer(family, vocab_size=1024), video=video
        )
    return out


# ---------------------------------------------------------------------------------------------
# 1. transformers with real torchvision
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(
    not HAS_TORCHVISION, reason="torchvision does not import here (CUDA-only wheel or absent)"
)
@pytest.mark.parametrize("name", FAMILIES)
def test_matches_autoprocessor_with_torchvision(name, tmp_path):
    from transformers import AutoProcessor

    from hieroaction.models import build_tiny, load_model_and_processor

    build_tiny(name, tmp_path / "m")
    _, ours = load_model_and_processor(tmp_path / "m")
    theirs = AutoProcessor.from_pretrained(tmp_path / "m")
    for seed, shape in enumerate(SHAPES):
        _assert_same_inputs(ours, theirs, _clip(*shape, seed=seed), pixel_tolerance=1e-2)


def _theirs(ours, theirs, clip, text: str):
    """A transformers processor's inputs for ``text`` and the clip's frames and true times."""
    from transformers.video_utils import VideoMetadata

    _, height, width, _ = clip.frames.shape
    meta = VideoMetadata(
        total_num_frames=clip.total,
        fps=clip.fps,
        frames_indices=clip.indices,
        height=height,
        width=width,
    )
    return theirs(text=[text], videos=[clip.frames], video_metadata=[meta], return_tensors="pt")


def _assert_same_inputs(ours, theirs, clip, pixel_tolerance: float) -> None:
    """Our inputs vs a transformers processor's for the same frames and true frame times.

    Where that transformers keeps Qwen3-VL's outer pair (5.22-5.24), it is given the prompt
    with the pair removed (so it lays the video out as 5.25 and Qwen3-VL do), and its output on
    the template's own prompt must be ours plus exactly that pair, nothing else.
    """
    a = ours(MESSAGES, clip)
    text = ours.apply_chat_template(MESSAGES)
    assert text.count(VIDEO_ITEM) == 1
    keeps_pair = _keeps_outer_pair(ours.family.name)
    b = _theirs(ours, theirs, clip, text.replace(VIDEO_ITEM, VIDEO_TOKEN) if keeps_pair else text)
    if keeps_pair:
        with_pair = _theirs(ours, theirs, clip, text)["input_ids"][0].tolist()
        mine = a["input_ids"][0].tolist()
        video = [i for i, t in enumerate(mine) if t == ours.video_token_id]
        # ours: ... <t seconds><|vision_start|>pads<|vision_end|> ... ; the block region starts
        # at the first time stamp, right after the text the template put before the item
        prefix = len(ours.tokenizer(text.split(VIDEO_ITEM)[0])["input_ids"])
        end = video[-1] + 2  # past the last block's <|vision_end|>
        assert mine[end - 1] == ours.vision_end_token_id
        assert with_pair == (
            mine[:prefix]
            + [ours.vision_start_token_id]
            + mine[prefix:end]
            + [ours.vision_end_token_id]
            + mine[end:]
        ), "transformers < 5.25 should differ from ours by the outer pair only"
    expected = {
        "input_ids",
        "attention_mask",
        "mm_token_type_ids",
        "pixel_values_videos",
        "video_grid_thw",
    }
    if ours.family.time_encoding == "second_per_grid_ts":
        expected.add("second_per_grid_ts")
    assert set(a) == expected == set(b)
    for key in expected - {"pixel_values_videos", "second_per_grid_ts"}:
        assert torch.equal(a[key], torch.as_tensor(b[key]).to(a[key].dtype)), (
            key,
            clip.frames.shape,
        )
    assert a["pixel_values_videos"].shape == b["pixel_values_videos"].shape
    assert (a["pixel_values_videos"] - b["pixel_values_videos"]).abs().max() <= pixel_tolerance
    if "second_per_grid_ts" in expected:
        assert torch.allclose(
            a["second_per_grid_ts"], torch.as_tensor(b["second_per_grid_ts"]).float()
        )


# ---------------------------------------------------------------------------------------------
# 2. transformers' processor code with torchvision's CPU kernels
# ---------------------------------------------------------------------------------------------


class _InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    LANCZOS = "lanczos"


def _tv_resize(image, size, interpolation=_InterpolationMode.BILINEAR, antialias=True, **_):
    # torchvision.transforms.v2.functional.resize_image on CPU: bicubic uint8 goes straight to
    # torch's uint8 interpolate (no float round trip); an unchanged size returns the input.
    assert interpolation is _InterpolationMode.BICUBIC, interpolation
    height, width = size
    if (height, width) == tuple(image.shape[-2:]):
        return image
    flat = image.reshape(-1, *image.shape[-3:])
    out = F.interpolate(
        flat, size=[height, width], mode="bicubic", align_corners=False, antialias=antialias
    )
    return out.reshape(*image.shape[:-2], height, width)


def _tv_normalize(tensor, mean, std, inplace=False):
    mean = torch.as_tensor(mean, dtype=tensor.dtype).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=tensor.dtype).view(-1, 1, 1)
    tensor = tensor if inplace else tensor.clone()
    return tensor.sub_(mean).div_(std)


def _tv_grayscale_to_rgb(tensor):
    return (
        tensor
        if tensor.shape[-3] != 1
        else tensor.expand(*tensor.shape[:-3], 3, *tensor.shape[-2:])
    )


def _forget_module(name: str) -> None:
    sys.modules.pop(name, None)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules and child in vars(sys.modules[parent]):
        delattr(sys.modules[parent], child)


@pytest.fixture
def transformers_processors(monkeypatch, processors):
    """transformers' own Qwen processors (video + text), built around our tokenizer."""
    if HAS_TORCHVISION:
        pytest.skip(
            "torchvision imports here: test_matches_autoprocessor_with_torchvision compares "
            "for real"
        )
    import transformers.image_processing_backends as backends
    import transformers.video_processing_utils as video_utils
    from transformers.image_utils import PILImageResampling
    from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import (
        Qwen3VLVideoProcessor,
    )
    from transformers.processing_utils import ProcessorMixin

    tvf = types.ModuleType("torchvision.transforms.v2.functional")
    tvf.resize, tvf.normalize, tvf.grayscale_to_rgb = (
        _tv_resize,
        _tv_normalize,
        _tv_grayscale_to_rgb,
    )
    tvf.InterpolationMode = _InterpolationMode
    monkeypatch.setattr(backends, "tvF", tvf, raising=False)
    monkeypatch.setattr(video_utils, "tvF", tvf, raising=False)
    monkeypatch.setattr(
        backends,
        "pil_torch_interpolation_mapping",
        {PILImageResampling.BICUBIC: _InterpolationMode.BICUBIC},
        raising=False,
    )
    # Qwen2VLVideoProcessor's module imports torchvision at the top: give it the kernels for the
    # import, then drop the module again so nothing else sees it.
    stub = {
        "torchvision": types.ModuleType("torchvision"),
        "torchvision.transforms": types.ModuleType("torchvision.transforms"),
        "torchvision.transforms.v2": types.ModuleType("torchvision.transforms.v2"),
        "torchvision.transforms.v2.functional": tvf,
    }
    name = "transformers.models.qwen2_vl.video_processing_qwen2_vl"
    with monkeypatch.context() as m:
        for key, module in stub.items():
            m.setitem(sys.modules, key, module)
        qwen2_video = importlib.import_module(name)
    _forget_module(name)
    # The processor's type check looks classes up in transformers' torchvision-only registry.
    monkeypatch.setattr(ProcessorMixin, "check_argument_for_proper_class", lambda self, n, a: None)

    built = {}
    for family, proc_cls, video_cls in (
        ("qwen2_5_vl", Qwen2_5_VLProcessor, qwen2_video.Qwen2VLVideoProcessor),
        ("qwen3_vl", Qwen3VLProcessor, Qwen3VLVideoProcessor),
    ):
        ours = processors[family]
        config = ours.video.to_processor_dict(ours.family)
        config.pop("video_processor_type")
        built[family] = proc_cls(
            image_processor=Qwen2VLImageProcessorPil(patch_size=ours.video.patch_size),
            tokenizer=ours.tokenizer,
            video_processor=video_cls(**config),
            chat_template=ours.chat_template,
        )
    return built


@pytest.mark.parametrize("name", FAMILIES)
def test_matches_transformers_processor_code(name, processors, transformers_processors):
    for seed, shape in enumerate(SHAPES):
        # Same kernels, same arithmetic: bit-identical pixels.
        _assert_same_inputs(
            processors[name],
            transformers_processors[name],
            _clip(*shape, seed=seed),
            pixel_tolerance=0.0,
        )


@pytest.mark.parametrize("name", FAMILIES)
def test_two_videos_in_one_prompt_match_transformers(name, processors, transformers_processors):
    """Each video item is laid out on its own (Qwen3-VL: each wrapped item replaced whole)."""
    from transformers.video_utils import VideoMetadata

    ours, theirs = processors[name], transformers_processors[name]
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "video"},
                {"type": "video"},
                {"type": "text", "text": "Compare."},
            ],
        }
    ]
    clips = [_clip(4, 64, 96, seed=1), _clip(6, 96, 64, seed=2, step=3)]
    a = ours(messages, clips)
    text = ours.apply_chat_template(messages)
    assert text.count(VIDEO_ITEM) == 2
    if _keeps_outer_pair(name):
        text = text.replace(VIDEO_ITEM, VIDEO_TOKEN)
    metas = [
        VideoMetadata(
            total_num_frames=c.total,
            fps=c.fps,
            frames_indices=c.indices,
            height=c.frames.shape[1],
            width=c.frames.shape[2],
        )
        for c in clips
    ]
    b = theirs(
        text=[text], videos=[c.frames for c in clips], video_metadata=metas, return_tensors="pt"
    )
    for key in ("input_ids", "mm_token_type_ids", "video_grid_thw"):
        assert torch.equal(a[key], torch.as_tensor(b[key]).to(a[key].dtype)), key
    if name == "qwen3_vl":
        decoded = ours.tokenizer.decode(a["input_ids"][0])
        blocks = int(a["video_grid_thw"][:, 0].sum())
        assert decoded.count(VISION_START_TOKEN) == decoded.count(VISION_END_TOKEN) == blocks


def test_patch_counts_match_transformers_helpers(processors, transformers_processors):
    """Grid sizes vs the video processors' own get_num_of_video_patches, over many sizes."""
    for name, theirs in transformers_processors.items():
        vp = theirs.video_processor
        settings = processors[name].video
        for t, h, w in [
            (2, 28, 28),
            (4, 480, 640),
            (9, 720, 1280),
            (16, 1080, 1920),
            (32, 360, 480),
            (3, 50, 900),
        ]:
            th, tw = settings.target_size(t, h, w)
            grid = (
                -(-t // settings.temporal_patch_size),
                th // settings.patch_size,
                tw // settings.patch_size,
            )
            assert grid[0] * grid[1] * grid[2] == vp.get_num_of_video_patches(
                t, h, w, {"size": vp.size}
            ), (name, t, h, w)


def test_resize_rules_match_transformers():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        smart_resize as qwen2_rule,
    )
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import (
        smart_resize as qwen3_rule,
    )

    q25 = VideoSettings.for_family(get_family("qwen2_5_vl"))
    q3 = VideoSettings.for_family(get_family("qwen3_vl"))
    rng = np.random.default_rng(0)
    for _ in range(300):
        t, h, w = int(rng.integers(2, 64)), int(rng.integers(20, 2200)), int(rng.integers(20, 2200))
        assert q25.target_size(t, h, w) == qwen2_rule(h, w, 28, q25.min_pixels, q25.max_pixels)
        assert q3.target_size(t, h, w) == qwen3_rule(t, h, w, 2, 32, q3.min_pixels, q3.max_pixels)


# ---------------------------------------------------------------------------------------------
# 3. Properties
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(56, 84), (112, 168), (168, 112), (60, 60)])
def test_resize_kernel_is_pils_bicubic(size):
    """The resize is PIL's antialiased bicubic (the filter torchvision ports), to one grey level."""
    frames = np.random.default_rng(3).integers(0, 256, (2, 90, 120, 3), dtype=np.uint8)
    ours = resize_video(torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(), *size)
    for i in range(2):
        pil = np.asarray(
            Image.fromarray(frames[i]).resize((size[1], size[0]), Image.Resampling.BICUBIC)
        )
        diff = np.abs(ours[i].permute(1, 2, 0).numpy().astype(int) - pil.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.1


def test_resize_keeps_frames_that_fit():
    video = torch.randint(0, 256, (3, 3, 56, 84), dtype=torch.uint8)
    assert resize_video(video, 56, 84) is video


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("num_frames", [1, 2, 5, 8])
def test_unpatchify_inverts_patchify(name, num_frames):
    s = VideoSettings.for_family(get_family(name))
    video = torch.randn(num_frames, 3, 2 * s.factor, 3 * s.factor)
    patches, grid = patchify(video, s.patch_size, s.merge_size, s.temporal_patch_size)
    assert patches.shape == (
        grid[0] * grid[1] * grid[2],
        3 * s.temporal_patch_size * s.patch_size**2,
    )
    back = unpatchify(patches, grid, s.patch_size, s.merge_size, s.temporal_patch_size)
    assert torch.equal(back[:num_frames], video)
    assert torch.equal(back[num_frames:], video[-1:].expand(back.shape[0] - num_frames, -1, -1, -1))


@pytest.mark.parametrize("name", FAMILIES)
def test_merge_order_groups_neighbouring_patches(name):
    """The first merge_size**2 rows are the top-left 2x2 block of patches of the first frames."""
    s = VideoSettings.for_family(get_family(name))
    p, m = s.patch_size, s.merge_size
    video = torch.arange(2 * 3 * 2 * s.factor * 2 * s.factor, dtype=torch.float32).reshape(
        2, 3, 2 * s.factor, 2 * s.factor
    )
    patches, _ = patchify(video, p, m, s.temporal_patch_size)
    for k, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        block = video[:, :, row * p : (row + 1) * p, col * p : (col + 1) * p]  # (t, c, p, p)
        assert torch.equal(patches[k], block.permute(1, 0, 2, 3).reshape(-1))


@pytest.mark.parametrize("name", FAMILIES)
def test_odd_frame_count_repeats_last_frame(name, processors):
    proc = processors[name]
    clip = _clip(5, 96, 128)
    padded = SimpleNamespace(
        frames=np.concatenate([clip.frames, clip.frames[-1:]]),
        timestamps=list(clip.timestamps) + [clip.timestamps[-1]],
        fps=clip.fps,
    )
    odd, even = proc.process_clip(clip), proc.process_clip(padded)
    assert odd.video_grid_thw == even.video_grid_thw
    assert odd.video_grid_thw[0] == 3
    if name == "qwen2_5_vl":  # per-frame budget: padding changes nothing
        assert torch.equal(odd.pixel_values_videos, even.pixel_values_videos)
    assert odd.patch_times == even.patch_times


def test_qwen3_timestamps_in_prompt(processors):
    proc = processors["qwen3_vl"]
    clip = SimpleNamespace(
        frames=_clip(5, 64, 64).frames, timestamps=[0.0, 0.4, 0.8, 1.2, 1.6], fps=25.0
    )
    inputs = proc(MESSAGES, clip)
    text = proc.tokenizer.decode(inputs["input_ids"][0])
    # Pairs (0.0, 0.4), (0.8, 1.2), (1.6, 1.6 repeated): the mean of first and last.
    assert patch_timestamps(clip.timestamps, 2) == pytest.approx([0.2, 1.0, 1.6])
    stamps = [text.index(f"<{t} seconds><|vision_start|>") for t in ("0.2", "1.0", "1.6")]
    assert stamps == sorted(stamps)
    # One vision_start/vision_end pair per temporal patch and none around the whole video
    # (Qwen3-VL's own layout; transformers 5.0-5.24 kept the template's pair around it too).
    assert "<|im_start|>user\n<0.2 seconds><|vision_start|>" in text
    assert text.count("<|vision_start|>") == text.count("<|vision_end|>") == 3
    assert "<|vision_end|>Assess the dive." in text
    assert "second_per_grid_ts" not in inputs


def test_qwen25_seconds_per_grid_uses_true_fps(processors):
    proc = processors["qwen2_5_vl"]
    frames = _clip(8, 64, 64).frames
    # Frames 4 source frames apart at 25 fps (0.16 s) and at 50 fps (0.08 s); transformers'
    # fallback for raw frames would be 24 fps and frames 1 apart (2/24 s per temporal patch).
    at25 = proc(
        MESSAGES, SimpleNamespace(frames=frames, timestamps=[i * 0.16 for i in range(8)], fps=25.0)
    )
    at50 = proc(
        MESSAGES, SimpleNamespace(frames=frames, timestamps=[i * 0.08 for i in range(8)], fps=50.0)
    )
    assert at25["second_per_grid_ts"].item() == pytest.approx(0.32)
    assert at50["second_per_grid_ts"].item() == pytest.approx(0.16)
    single = proc(MESSAGES, SimpleNamespace(frames=frames[:1], timestamps=[0.0], fps=30.0))
    assert single["second_per_grid_ts"].item() == pytest.approx(2 / 30)


def test_qwen3_budget_covers_the_whole_clip(processors):
    q3, q25 = processors["qwen3_vl"].video, processors["qwen2_5_vl"].video
    short = q3.target_size(4, 480, 640)
    long = q3.target_size(32, 480, 640)
    assert short[0] * short[1] > long[0] * long[1]
    assert 32 * long[0] * long[1] <= q3.max_pixels
    assert q25.target_size(4, 480, 640) == q25.target_size(32, 480, 640)
    assert q25.target_size(4, 480, 640)[0] * q25.target_size(4, 480, 640)[1] <= q25.max_pixels


@pytest.mark.parametrize("name", FAMILIES)
def test_video_token_count(name, processors):
    proc = processors[name]
    inputs = proc(MESSAGES, _clip(6, 96, 128))
    t, h, w = inputs["video_grid_thw"][0].tolist()
    n = int((inputs["input_ids"] == proc.video_token_id).sum())
    assert n == t * h * w // 4 == int((inputs["mm_token_type_ids"] == 2).sum())
    assert inputs["pixel_values_videos"].shape[0] == t * h * w


def test_grey_frames_become_rgb(processors):
    proc = processors["qwen2_5_vl"]
    grey = np.random.default_rng(0).integers(0, 256, (4, 64, 64), dtype=np.uint8)
    a = process_video(grey, [0, 0.1, 0.2, 0.3], 10.0, proc.video)
    b = process_video(np.repeat(grey[..., None], 3, axis=-1), [0, 0.1, 0.2, 0.3], 10.0, proc.video)
    assert torch.equal(a.pixel_values_videos, b.pixel_values_videos)


def test_bad_inputs_raise_one_sentence(processors):
    proc = processors["qwen2_5_vl"]
    frames = _clip(4, 64, 64).frames
    with pytest.raises(VideoError, match="uint8"):
        process_video(frames.astype(np.float32), [0, 1, 2, 3], 1.0, proc.video)
    with pytest.raises(VideoError, match="3 timestamps for 4 frames"):
        process_video(frames, [0, 1, 2], 1.0, proc.video)
    with pytest.raises(VideoError, match="fps"):
        process_video(frames, [0, 1, 2, 3], 0.0, proc.video)
    with pytest.raises(VideoError, match="increasing"):
        process_video(frames, [0, 2, 1, 3], 1.0, proc.video)
    with pytest.raises(VideoError, match="shape"):
        process_video(frames[..., :2], [0, 1, 2, 3], 1.0, proc.video)
    clip = SimpleNamespace(frames=frames, timestamps=[0, 1, 2, 3], fps=1.0)
    with pytest.raises(VideoError, match="1 <\\|video_pad\\|> placeholders but 2 clips"):
        proc(MESSAGES, [clip, clip])
    with pytest.raises(ConfigError, match="min_pixels"):
        proc.video.with_budget(100, 10)


def test_saved_video_config_round_trips(processors, tmp_path):
    for name, proc in processors.items():
        proc.save_pretrained(tmp_path / name)
        data = json.loads((tmp_path / name / "video_preprocessor_config.json").read_text())
        assert data["video_processor_type"] == get_family(name).video_processor_class_name
        assert VideoSettings.from_processor_dict(data, proc.family) == proc.video
        with pytest.raises(ConfigError, match="cap_pixels_per_frame"):
            VideoSettings.from_processor_dict({**data, "cap_pixels_per_frame": True}, proc.family)


def test_frame_config_sets_the_budget(processors):
    from hieroaction.video.sample import FrameConfig

    q3 = processors["qwen3_vl"].video
    fitted = q3.for_frames(FrameConfig.for_family("qwen3_vl", min_pixels=4096, max_pixels=65536))
    assert (fitted.min_pixels, fitted.max_pixels) == (4096, 65536)
    with pytest.raises(ConfigError, match="factor=28"):
        q3.for_frames(FrameConfig.for_family("qwen2_5_vl"))
