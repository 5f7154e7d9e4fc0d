"""Assess clips with a loaded model: decode, sample, prompt, generate, parse.

:class:`Assessor` holds one model and its processor, loaded once, and turns videos (or records)
into :class:`AssessResult` objects: the parsed :class:`~hieroaction.sar.Assessment`, the
problems the lenient parser found, the raw answer and the time each stage took. Answers are
greedy, so the same clip and settings always give the same assessment.

One Assessor may be shared by the threads of one worker (a web server): decoding runs in the
calling thread, while the processor and the model are used under a lock, one batch at a time
(tokenizers and ``generate`` are not safe to call concurrently).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hieroaction.data.records import Record, VideoRef
from hieroaction.domains import get_domain
from hieroaction.errors import ConfigError, HieroActionError, VideoError
from hieroaction.inference.calibration import (
    Calibration,
    SampleAgreement,
    Sampling,
    ScoreInterval,
    agreement,
    read_calibration,
)
from hieroaction.inference.config import InferenceConfig
from hieroaction.prompts import build_prompt
from hieroaction.sar import Assessment, Problem, ProblemCode, parse_sar
from hieroaction.video import Clip, FrameCache, FrameConfig, open_reader, read_clip

@dataclass
class Timings:
    """Seconds spent on one clip: decoding and sampling frames, building the model inputs
    (prompt, tokens, patches) and generating (the whole ``generate`` call of its batch)."""

    decode_s: float = 0.0
    preprocess_s: float = 0.0
    generate_s: float = 0.0
    batch_size: int = 0

    @property
    def total_s(self) -> float:
        """Decode + preprocess + generate."""
        return self.decode_s + self.preprocess_s + self.generate_s


@dataclass
class AssessResult:
    """The assessment of one clip, or why there is none.

    Attributes:
        source: the video file or frame folder.
        record_id: the record's id when the clip came from a record.
        domain: the domain the model was prompted with.
        assessment: what the lenient parser read (``None`` only when ``error`` is set). Step
            times are seconds from the start of the window the model saw.
        problems: what the parser found wrong with the answer (empty: exact SAR format).
        completion: the model's raw answer.
        error: why the clip could not be assessed (a missing, corrupt or non-video file).
        window: ``(start, end)`` of the assessed window in seconds of the source.
        fps: frame rate used for the frame times.
        frame_times: seconds from the window start of each frame the model saw.
        timings: seconds per stage (``generate_s`` includes the sampled answers, if any).
        clip: the frames the model saw (kept when asked, for reports; never serialised).
        interval: the score's conformal interval, when the model folder holds a calibration
            (:mod:`hieroaction.inference.calibration`) and a score was read; never made up.
        agreement: with a calibration of ``samples > 1``, how the sampled answers agree with
            this one (action, step sequence) and how their scores spread.
    """

    source: str
    record_id: str | None = None
    domain: str = "generic"
    assessment: Assessment | None = None
    problems: list[Problem] = field(default_factory=list)
    completion: str | None = None
    error: str | None = None
    window: tuple[float, float] | None = None
    fps: float | None = None
    frame_times: list[float] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    clip: Clip | None = field(default=None, repr=False)
    interval: ScoreInterval | None = None
    agreement: SampleAgreement | None = None

    @property
    def ok(self) -> bool:
        """True when the clip was assessed (the answer may still have problems)."""
        return self.error is None

    def to_dict(self, completion: bool = True) -> dict[str, Any]:
        """A JSON-ready mapping (without the frames)."""
        out: dict[str, Any] = {
            "source": self.source,
            "record_id": self.record_id,
            "domain": self.domain,
            "assessment": None if self.assessment is None else self.assessment.model_dump(mode="json"),
            "problems": [p.model_dump(mode="json") for p in self.problems],
            "error": self.error,
            "window": None if self.window is None else list(self.window),
            "fps": self.fps,
            "frame_times": list(self.frame_times),
            "timings": {
                "decode_s": self.timings.decode_s,
                "preprocess_s": self.timings.preprocess_s,
                "generate_s": self.timings.generate_s,
                "batch_size": self.timings.batch_size,
            },
            "interval": None if self.interval is None else self.interval.to_dict(),
            "samples": None if self.agreement is None else self.agreement.to_dict(),
        }
        if completion:
            out["completion"] = self.completion
        return out


@dataclass
class _Job:
    """One clip on its way through the pipeline."""

    result: AssessResult
    record: Record | None = None
    ref: VideoRef | None = None
    clip: Clip | None = None
    inputs: Any = None


# ---------------------------------------------------------------------------------------------
# Device, dtype and model folder
# ---------------------------------------------------------------------------------------------


def pick_device(device: str = "auto") -> Any:
    """``torch.device`` for ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda[:N]``."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for, but no CUDA device is available")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from None


def pick_dtype(device: Any, dtype: str = "auto") -> Any:
    """``torch`` dtype for ``auto`` (bfloat16 on CUDA where supported, float16 on older CUDA
    devices, float32 on CPU) or a precision (``bf16``/``bfloat16``, ``fp16``/``float16``,
    ``fp32``/``float32``); see :func:`hieroaction.models.resolve_precision`."""
    from hieroaction.models.loading import normalise_precision, resolve_precision, torch_dtype

    normalise_precision(dtype, setting="dtype")
    return torch_dtype(resolve_precision(dtype, device, fp16_fallback=True))


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide transformers' weight-loading progress bar (it would sit in the middle of the
    command's own output), restoring the previous setting afterwards."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------------------------------------
# The assessor
# ---------------------------------------------------------------------------------------------


class Assessor:
    """A loaded model that assesses clips (see the module docstring).

    Args:
        model: a Qwen VL ``*ForConditionalGeneration`` model, on its device, in eval mode.
        processor: its :class:`~hieroaction.models.VideoChatProcessor` (changed in place to the
            frame settings' pixel budgets, so frames are not resized twice).
        config: inference settings.
        calibration: the model's calibration: every result gets its score's interval, and,
            with ``samples > 1``, that many sampled answers per clip besides the greedy one.

    ``sampling`` (default: the calibration's) may be set to sample answers without a
    calibration (``calibrate`` does).
    """

    def __init__(
        self, model: Any, processor: Any, config: InferenceConfig | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.config = config or InferenceConfig()
        self.calibration = calibration
        self.sampling: Sampling | None = calibration.sampling if calibration is not None else None
        self.frame_config: FrameConfig = self.config.frame_config(processor.video)
        self.processor.video = processor.video.for_frames(self.frame_config)
        get_domain(self.config.domain)
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | Path,
        config: InferenceConfig | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        calibrated: bool = True,
    ) -> Assessor:
        """Load a checkpoint folder (or Hub model id) with its processor.

        Args:
            model_id_or_path: a folder written by ``save_pretrained`` (model and processor),
                e.g. a ``hieroaction train sft`` output or ``hieroaction model tiny``, or a Hub id.
            config: inference settings (default: the folder's own, written by hieroaction
                training, see :mod:`hieroaction.inference.saved`; else :class:`InferenceConfig`).
            device: overrides ``config.device`` (``auto``: CUDA when available, else CPU).
            dtype: overrides ``config.dtype`` (``auto``: bfloat16 on CUDA, float32 on CPU).
            calibrated: use the folder's calibration (``hieroaction_calibration.json``) when it
                has one; a calibration made for other weights raises :class:`ConfigError`.
        """
        from hieroaction.models.loading import check_loadable, load_model_and_processor, resolve_checkpoint

        folder = resolve_checkpoint(model_id_or_path)
        check_loadable(folder)
        if config is None:
            from hieroaction.config import config_from_dict
            from hieroaction.inference.saved import read_settings

            config = config_from_dict(InferenceConfig, read_settings(folder))
        # Read before the weights load: a stale calibration costs no model load.
        calibration = read_calibration(folder) if calibrated else None
        torch_device = pick_device(device or config.device)
        torch_dtype = pick_dtype(torch_device, dtype or config.dtype)
        with _quiet_loading():
            model, processor = load_model_and_processor(folder, dtype=torch_dtype)
        return cls(model.to(torch_device), processor, config, calibration)

    @property
    def device(self) -> Any:
        """The model's device."""
        return next(self.model.parameters()).device

    # -- public API ---------------------------------------------------------------------------

    def assess(
        self,
        video: str | Path,
        *,
        domain: str | None = None,
        start: float | None = None,
        end: float | None = None,
        keep_clip: bool = False,
    ) -> AssessResult:
        """Assess one video file or frame folder.

        Args:
            video: the video file or a folder of frame images.
            domain: the domain to prompt for (default: ``config.domain``).
            start: first second of the window to assess (default: the start of the video).
            end: last second of the window (default: the end of the video).
            keep_clip: keep the frames in ``result.clip`` (for an HTML report).

        Raises:
            HieroActionError: the file cannot be read as a video, or the window or domain is
                invalid. (An answer the parser cannot fully read is not an error: its problems
                are in ``result.problems``.)
        """
        result = self.assess_many([video], domain=domain, start=start, end=end, keep_clips=keep_clip)[0]
        if result.error is not None:
            raise VideoError(result.error)
        return result

    def assess_many(
        self,
        videos: Sequence[str | Path],
        *,
        domain: str | None = None,
        start: float | None = None,
        end: float | None = None,
        keep_clips: bool = False,
    ) -> list[AssessResult]:
        """Assess several videos, ``config.batch_size`` per ``generate`` call.

        Never raises for one bad file: a missing, corrupt or non-video file gets a result with
        ``error`` set, and the others are assessed. A bad domain or window raises
        :class:`ConfigError` before anything is decoded.
        """
        domain = domain or self.config.domain
        get_domain(domain)
        check_window_seconds(start, end)
        jobs = [
            _Job(AssessResult(source=str(v), domain=domain), ref=_video_ref(Path(v))) for v in videos
        ]
        return list(self._run(jobs, start=start, end=end, keep_clips=keep_clips))

    def assess_records(
        self,
        records: Iterable[Record],
        *,
        cache: FrameCache | None = None,
        base_dir: str | Path | None = None,
        keep_clips: bool = False,
    ) -> Iterator[AssessResult]:
        """Assess records' clips in order, batch by batch (the records' domains pick the prompts).

        Frames come from ``cache`` when given (decoded and stored on a miss). A record whose
        clip cannot be read gets a result with ``error`` set.
        """
        jobs = (
            _Job(
                AssessResult(source=_source_of(r.video), record_id=r.id, domain=r.domain),
                record=r,
            )
            for r in records
        )
        yield from self._run(jobs, cache=cache, base_dir=base_dir, keep_clips=keep_clips)

    def load_clip(
        self, record: Record, cache: FrameCache | None = None, base_dir: str | Path | None = None
    ) -> Clip:
        """The frames the model sees for ``record`` (from ``cache`` when given)."""
        if cache is not None:
            return cache.load(record, self.frame_config)
        return read_clip(record, self.frame_config, base_dir=base_dir)

    # -- pipeline -----------------------------------------------------------------------------

    def _run(
        self,
        jobs: Iterable[_Job],
        *,
        start: float | None = None,
        end: float | None = None,
        cache: FrameCache | None = None,
        base_dir: str | Path | None = None,
        keep_clips: bool = False,
    ) -> Iterator[AssessResult]:
        batch: list[_Job] = []
        done: list[_Job] = []
        for job in jobs:
            self._decode(job, start, end, cache, base_dir)
            done.append(job)
            if job.clip is not None:
                batch.append(job)
            if len(batch) == self.config.batch_size:
                self._infer(batch)
                yield from self._finish(done, keep_clips)
                batch, done = [], []
        if batch:
            self._infer(batch)
        yield from self._finish(done, keep_clips)

    def _finish(self, jobs: list[_Job], keep_clips: bool) -> Iterator[AssessResult]:
        for job in jobs:
            if keep_clips:
                job.result.clip = job.clip
            job.clip = job.inputs = None
            yield job.result

    def _decode(
        self,
        job: _Job,
        start: float | None,
        end: float | None,
        cache: FrameCache | None,
        base_dir: str | Path | None,
    ) -> None:
        began = time.perf_counter()
        try:
            if job.record is not None:
                clip = self.load_clip(job.record, cache, base_dir)
            else:
                assert job.ref is not None
                ref = _window_ref(job.ref, start, end, self.frame_config)
                clip = read_clip(ref, self.frame_config)
        except HieroActionError as exc:
            job.result.error = str(exc)
            return
        finally:
            job.result.timings.decode_s = time.perf_counter() - began
        job.clip = clip
        job.result.fps = clip.fps
        job.result.frame_times = [float(t) for t in clip.timestamps]
        job.result.window = (clip.start_frame / clip.fps, (clip.end_frame + 1) / clip.fps)

    def _infer(self, batch: list[_Job]) -> None:
        import torch

        from hieroaction.models import collate

        with self._lock:
            ready = []
            for job in batch:
                began = time.perf_counter()
                try:
                    messages = build_prompt(job.result.domain, job.clip, self.config.prompt)
                    job.inputs = self.processor(messages, job.clip)
                except HieroActionError as exc:
                    # A clip the processor cannot take (e.g. frames off the grid) fails alone.
                    job.result.error = str(exc)
                    continue
                finally:
                    job.result.timings.preprocess_s = time.perf_counter() - began
                ready.append(job)
            if not ready:
                return
            tokenizer = self.processor.tokenizer
            inputs = collate([j.inputs for j in ready], tokenizer.pad_token_id, padding_side="left")
            dtype = next(self.model.parameters()).dtype
            device = self.device
            inputs = {
                k: (v.to(device, dtype) if k == "pixel_values_videos" else v.to(device))
                for k, v in inputs.items()
            }
            began = time.perf_counter()
            with torch.inference_mode():
                output = self.model.generate(**inputs, **greedy_settings(self.config.max_new_tokens,
                                                                          tokenizer.pad_token_id))
            texts = self.processor.batch_decode(output[:, inputs["input_ids"].shape[1]:].cpu())
            sampled = self._sample(inputs) if self.sampling is not None and self.sampling.n > 1 else None
            elapsed = time.perf_counter() - began
        for i, (job, text) in enumerate(zip(ready, texts)):
            job.result.completion = text
            job.result.assessment, job.result.problems = read_answer(text, job.result.domain)
            job.result.timings.generate_s = elapsed
            job.result.timings.batch_size = len(ready)
            if sampled is not None:
                assert self.sampling is not None
                n = self.sampling.n
                answers = [self._read(t, job.result.domain) for t in sampled[i * n:(i + 1) * n]]
                job.result.agreement = agreement(job.result.assessment, answers, self.sampling)
            if self.calibration is not None and job.result.assessment is not None:
                job.result.interval = self.calibration.interval(
                    job.result.assessment.score,
                    job.result.agreement.spread if job.result.agreement is not None else None,
                    job.result.domain,
                    job.result.agreement.n if job.result.agreement is not None else None,
                )

    def _sample(self, inputs: dict[str, Any]) -> list[str]:
        """``sampling.n`` sampled answers per clip of the batch (clip-major order): the full
        distribution at the sampling temperature, seeded without touching the global generator."""
        import torch

        assert self.sampling is not None
        tokenizer = self.processor.tokenizer
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(self.sampling.seed)
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.config.max_new_tokens,
                do_sample=True,
                temperature=self.sampling.temperature,
                top_k=0,
                top_p=1.0,
                typical_p=1.0,
                repetition_penalty=1.0,
                num_return_sequences=self.sampling.n,
                pad_token_id=tokenizer.pad_token_id,
            )
        return self.processor.batch_decode(output[:, inputs["input_ids"].shape[1]:].cpu())

    @staticmethod
    def _read(text: str, domain: str) -> Assessment | None:
        """A sampled answer as the greedy one is read (lenient, out-of-range score dropped)."""
        return read_answer(text, domain)[0]


def greedy_settings(max_new_tokens: int, pad_token_id: int) -> dict[str, Any]:
    """``generate``'s settings for a greedy answer as ``assess`` and ``evaluate`` decode it (SFT
    validation decodes with them too). A checkpoint's sampling defaults mean nothing here."""
    return dict(max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                pad_token_id=pad_token_id)


def read_answer(text: str, domain: str) -> tuple[Assessment | None, list[Problem]]:
    """A model's answer as evaluation reads it: parsed leniently, a score outside ``domain``'s
    range a problem and no score (:func:`check_score_range`). HPL's validation reads its
    answers with this too, so its metrics are the ones ``hieroaction evaluate`` gives."""
    parsed = parse_sar(text, strict=False)
    return check_score_range(parsed.assessment, list(parsed.problems), domain)


def check_score_range(
    assessment: Assessment | None, problems: list[Problem], domain: str
) -> tuple[Assessment | None, list[Problem]]:
    """An answer's score outside the domain's score range is not a score: it becomes a problem
    (``out_of_range``) and the assessment's score is dropped, so evaluation counts the answer as
    a failure and fills its score as a missing one instead of letting, say, 5920 for 59.2 decide
    the R-l2 of a whole test split."""
    score_range = get_domain(domain).score_range
    if assessment is None or assessment.score is None or score_range is None:
        return assessment, problems
    low, high = score_range
    if low <= assessment.score <= high:
        return assessment, problems
    problem = Problem(
        code=ProblemCode.OUT_OF_RANGE, block="scoring",
        message=f"the score {assessment.score:g} is outside the {domain} score range [{low:g}, {high:g}]; "
        "it is not used",
    )
    return assessment.model_copy(update={"score": None}), [*problems, problem]


# ---------------------------------------------------------------------------------------------
# Videos given by path
# ---------------------------------------------------------------------------------------------


def _source_of(ref: VideoRef) -> str:
    return ref.path or ref.frames_dir or ""


def _video_ref(path: Path) -> VideoRef:
    # A folder is read as frame images in natural order; anything else as a video file.
    return VideoRef(frames_dir=str(path)) if path.is_dir() else VideoRef(path=str(path))


def check_window_seconds(start: float | None, end: float | None) -> None:
    """Raise :class:`ConfigError` unless ``start`` and ``end`` (seconds, optional) make a window."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"--{name} must be a number of seconds >= 0, got {value}")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--end ({end} s) must be after --start ({start} s)")


def _window_ref(ref: VideoRef, start: float | None, end: float | None, config: FrameConfig) -> VideoRef:
    """``ref`` restricted to ``[start, end]`` seconds: the frames whose time lies inside."""
    if start is None and end is None:
        return ref
    with open_reader(ref, decoder=config.decoder, default_fps=config.default_fps,
                     max_source_side=config.max_source_side) as reader:
        info = reader.info
    last = info.num_frames - 1
    first = info.first_frame + (0 if start is None else math.ceil(start * info.fps - 1e-9))
    final = last if end is None else min(last, info.first_frame + math.floor(end * info.fps + 1e-9))
    duration = info.num_frames / info.fps
    if first > last:
        raise VideoError(f"{info.source}: --start {start} s is past the end of the video ({duration:.2f} s)")
    if final < first:
        raise VideoError(f"{info.source}: the window {start}..{end} s holds no frame")
    return ref.model_copy(update={"start_frame": first, "end_frame": final})

