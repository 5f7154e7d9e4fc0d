"""The one home of checkpoints: where a model comes from, how it loads, what learns, in what precision.

Every job that loads a model (SFT, HPL, the Assessor, ``evaluate``, ``serve``) goes through here:

- :func:`resolve_checkpoint`: a local model folder, a LoRA adapter folder or a Hugging Face Hub id
  (looked up in the local cache first, then fetched) -> a local folder; one sentence when it is
  none of these.
- :func:`load_model_and_processor`: model (an adapter folder: its base with the adapter merged) and
  :class:`~hieroaction.models.processor.VideoChatProcessor`, without torchvision.
- :class:`Precision` / :func:`resolve_precision` / :func:`torch_dtype`: one setting,
  ``precision: auto|bf16|fp16|fp32``, for every recipe.
- :class:`LoraSettings`, :class:`TrainableParts`, :func:`make_trainable`: one definition of what
  learns. The LoRA target modules are matched by the last part of a module's name; the vision
  tower is adapted (LoRA) or trained (full fine-tuning) only with ``trainable.vision: true``; the
  projector (``trainable.merger``) is trained in full in both modes. SFT and HPL given the same
  ``lora:`` and ``trainable:`` sections train the same parameters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hieroaction.errors import ConfigError
from hieroaction.io import read_json_object
from hieroaction.models.families import ModelFamily, family_of_config
from hieroaction.models.processor import VideoChatProcessor, read_model_config

logger = logging.getLogger("hieroaction.models")

Precision = Literal["auto", "bf16", "fp16", "fp32"]
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp16", "fp32")
# Older spellings (the inference settings' ``dtype``) read as the same precisions.
_PRECISION_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}

# Files that say a folder holds a tokenizer (and so a saved processor).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
ADAPTER_CONFIG = "adapter_config.json"

# A Hugging Face Hub id: "owner/name".
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_HUB_EXAMPLE = "Qwen/Qwen2.5-VL-7B-Instruct"
# What a checkpoint download needs (weights, configs, tokenizer, chat template).
_HUB_PATTERNS = ["*.json", "*.jinja", "*.safetensors", "*.txt", "*.model"]


# ---------------------------------------------------------------------------------------------
# Where a checkpoint is
# ---------------------------------------------------------------------------------------------


def looks_like_hub_id(text: str) -> bool:
    """True for an ``owner/name`` string that is not a local path: ``runs/sft`` where ``runs/``
    exists is a mistyped local folder, not an organisation's model."""
    if not _HUB_ID.fullmatch(text):
        return False
    path = Path(text).expanduser()
    return not path.exists() and not Path(text.split("/")[0]).is_dir()


def is_adapter_folder(folder: str | Path) -> bool:
    """A PEFT LoRA adapter folder: ``adapter_config.json`` and no ``config.json``."""
    folder = Path(folder)
    return (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").is_file()


def adapter_base_model(folder: str | Path) -> str | None:
    """The base model an adapter folder names (``base_model_name_or_path``), or None for a full
    model folder."""
    folder = Path(folder)
    if not is_adapter_folder(folder):
        return None
    base = read_json_object(folder / ADAPTER_CONFIG).get("base_model_name_or_path")
    if not base:
        raise ConfigError(
            f"{folder}: the LoRA adapter does not name its base model (base_model_name_or_path in "
            f"{ADAPTER_CONFIG}); merge it into its base model, or set that field"
        )
    return str(base)


def resolve_checkpoint(name_or_path: str | Path, *, what: str = "model") -> Path:
    """A local checkpoint folder for a model folder, a LoRA adapter folder or a Hub id.

    A Hub id is looked up in the local Hub cache first and only then fetched. Raises
    :class:`ConfigError` with one sentence for an empty name, a file, a folder that holds neither
    ``config.json`` nor an adapter, a path that does not exist and is not a Hub id, or a Hub id
    that cannot be fetched. ``what`` names the setting in the messages (``model``).
    """
    text = str(name_or_path).strip()
    if not text:
        raise ConfigError(
            f"no {what} given: a checkpoint folder or a Hub id such as {_HUB_EXAMPLE} is required"
        )
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{what} {text}: is a file; expected a checkpoint folder or a Hub id")
        if not (path / "config.json").is_file() and not is_adapter_folder(path):
            raise ConfigError(
                f"{what} {text}: the folder holds no config.json (nor a LoRA adapter), so it is not a "
                "model checkpoint"
            )
        return path
    if not looks_like_hub_id(text):
        raise ConfigError(
            f"{what} {text}: no such model folder (expected a checkpoint folder or a Hub id such as "
            f"{_HUB_EXAMPLE})"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers depends on it
        raise ConfigError(f"{what} {text}: no such model folder") from None
    try:
        return Path(snapshot_download(repo_id=text, local_files_only=True, allow_patterns=_HUB_PATTERNS))
    except Exception:  # noqa: BLE001 - not in the cache yet: try the network below
        pass
    try:
        return Path(snapshot_download(repo_id=text, allow_patterns=_HUB_PATTERNS))
    # Network, authentication and missing-repository errors all mean the same to the user.
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(
            f"{what} {text}: no such model folder, and it could not be fetched from the Hugging Face "
            f"Hub ({exc.__class__.__name__})"
        ) from None


def _base_folder(folder: Path) -> Path:
    """The folder holding the weights and config: ``folder`` itself, or an adapter's base."""
    base = adapter_base_model(folder)
    if base is None:
        return folder
    try:
        return resolve_checkpoint(base)
    except ConfigError as exc:
        raise ConfigError(f"{folder}: the LoRA adapter's base model cannot be loaded ({exc})") from None


def checkpoint_family(folder: str | Path) -> ModelFamily:
    """The model family of a checkpoint folder (an adapter: its base's), from the config alone."""
    return family_of_config(read_model_config(_base_folder(Path(folder))))


def has_processor(folder: str | Path) -> bool:
    """True when ``folder`` holds tokenizer files (a saved processor)."""
    return any((Path(folder) / name).is_file() for name in TOKENIZER_FILES)


def check_loadable(folder: Path) -> None:
    """Raise one sentence when a resolved folder cannot give both a model and a processor."""
    if is_adapter_folder(folder):
        _base_folder(folder)  # an adapter without a processor uses its base's
        return
    if not has_processor(folder):
        raise ConfigError(
            f"{folder}: the model folder has no processor (no tokenizer files); save the "
            "processor next to the model (processor.save_pretrained) or copy the tokenizer and "
            "preprocessor files of its base model into it"
        )


# ---------------------------------------------------------------------------------------------
# Precision
# ---------------------------------------------------------------------------------------------


def normalise_precision(value: str, *, setting: str = "precision") -> str:
    """``value`` as one of :data:`PRECISIONS` (``bfloat16`` -> ``bf16``, ...); one sentence else."""
    text = _PRECISION_ALIASES.get(str(value), str(value))
    if text not in PRECISIONS:
        raise ConfigError(f"{setting} must be auto, bf16, fp16 or fp32, got {value!r}")
    return text


def resolve_precision(
    precision: str, device: Any = None, *, fp16_fallback: bool = False
) -> Literal["bf16", "fp16", "fp32"]:
    """The precision to run in. ``auto``: bf16 on a CUDA device that has it, else fp32 (or fp16 on
    an older CUDA device with ``fp16_fallback``, as inference wants). ``device``: a torch device
    or None (CUDA when available). fp16 needs CUDA."""
    import torch

    precision = normalise_precision(precision)
    on_cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    if precision == "fp16" and not on_cuda:
        raise ConfigError("precision fp16 needs a CUDA GPU; use bf16, fp32 or auto")
    if precision != "auto":
        return precision  # type: ignore[return-value]
    if on_cuda:
        if torch.cuda.is_bf16_supported():
            return "bf16"
        if fp16_fallback:
            return "fp16"
    return "fp32"


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a resolved precision."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[normalise_precision(precision)]


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def weights_dtype(precision: str) -> Any:
    """The dtype training loads the weights in for a resolved precision: bf16 for bf16, else fp32
    (fp16 mixed precision keeps fp32 master weights: the grad scaler refuses fp16 parameters).
    Never the checkpoint's own: released Qwen checkpoints are stored in bf16."""
    return torch_dtype("bf16" if normalise_precision(precision) == "bf16" else "fp32")


def load_model_and_processor(path: str | Path, dtype: Any = None) -> tuple[Any, VideoChatProcessor]:
    """Load a checkpoint (a model folder, tiny or released, an adapter folder or a Hub id) as
    ``(model, processor)`` in eval mode, without torchvision.

    The model class comes from the config's ``model_type``; an adapter folder loads its base
    with the adapter merged in, and its own processor if it saved one (else its base's).
    ``dtype``: a torch dtype for the weights (None: the checkpoint's default).
    """
    folder = resolve_checkpoint(path)
    check_loadable(folder)
    weights = _base_folder(folder)
    family = family_of_config(read_model_config(weights))
    kwargs = {} if dtype is None else {"dtype": dtype}
    try:
        model = family.model_class.from_pretrained(weights, **kwargs)
    except OSError as exc:
        raise ConfigError(f"{weights}: cannot load the model weights ({exc.__class__.__name__})") from None
    if weights != folder:
        model = merge_adapter(model, folder)
    processor = VideoChatProcessor.from_pretrained(folder if has_processor(folder) else weights, family=family)
    return model.eval(), processor


def merge_adapter(model: Any, adapter: str | Path) -> Any:
    """``model`` with the LoRA adapter saved in ``adapter`` merged into its weights."""
    try:
        from peft import PeftModel
    except ImportError:
        raise ConfigError(f"{adapter}: holds a LoRA adapter, and loading one needs peft (pip install peft)") from None
    try:
        return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"{adapter}: the LoRA adapter does not fit its base model ({exc.__class__.__name__}: {str(exc)[:200]})"
        ) from None


# ---------------------------------------------------------------------------------------------
# What learns
# ---------------------------------------------------------------------------------------------


@dataclass
class LoraSettings:
    """LoRA (PEFT) instead of full fine-tuning (the ``lora:`` section of SFT and HPL recipes).

    ``target_modules`` are module names (the last part of a module's path: ``q_proj`` adapts every
    ``...q_proj``). Modules of frozen parts (see :class:`TrainableParts`: the vision tower unless
    ``trainable.vision``) are never adapted. With ``merge`` the final model in ``output_dir`` has
    the adapter merged in and the adapter is kept in ``output_dir/adapter``; without it
    ``output_dir`` holds the adapter only.
    """

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    merge: bool = True

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0:
            raise ConfigError(f"lora.r and lora.alpha must be positive, got {self.r} and {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if self.enabled and not self.target_modules:
            raise ConfigError("lora.target_modules must name at least one module")


@dataclass
class TrainableParts:
    """Which parts of the VLM learn (full fine-tuning: requires_grad; LoRA: adapted or not).

    The language model always learns. Parameter names are matched with ``re.search``; the
    defaults fit the Qwen VL families (``model.visual.*``; the projector is
    ``visual.merger`` plus Qwen3-VL's ``visual.deepstack_merger_list``).
    """

    vision: bool = False  # the vision tower (ViT blocks, patch embedding)
    merger: bool = True  # the vision-to-language projector
    vision_pattern: str = r"(^|\.)visual\."
    merger_pattern: str = r"(^|\.)visual\.(merger|deepstack_merger_list)(\.|$)"

    def __post_init__(self) -> None:
        for name in ("vision_pattern", "merger_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise ConfigError(f"trainable.{name} is not a valid regular expression ({exc})") from None


def _matching(names: Sequence[str], pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return [n for n in names if regex.search(n)]


def _root_modules(model: Any, pattern: str) -> list[str]:
    """Names of the outermost modules whose name matches ``pattern``."""
    regex = re.compile(pattern)
    names = [n for n, _ in model.named_modules() if n and regex.search(n + ".")]
    return [n for n in names if not any(n.startswith(p + ".") for p in names if p != n)]


def _wrappable(model: Any, roots: Sequence[str]) -> list[str]:
    """``roots`` with each module container (Qwen3-VL's ``deepstack_merger_list``, a
    ``ModuleList``) replaced by its children: PEFT's ``modules_to_save`` copies one module each
    and refuses a container."""
    import torch

    modules = dict(model.named_modules())
    out: list[str] = []
    for root in roots:
        module = modules[root]
        if isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict)):
            out.extend(f"{root}.{child}" for child, _ in module.named_children())
        else:
            out.append(root)
    return out


def parameter_counts(model: Any) -> dict[str, int]:
    """``{"trainable": ..., "total": ...}`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total}


def set_trainable(model: Any, parts: TrainableParts) -> dict[str, int]:
    """Full fine-tuning: freeze the parts ``parts`` keeps frozen. Returns parameter counts;
    raises :class:`ConfigError` when the vision pattern matches no parameter (it does not fit
    this model)."""
    names = [n for n, _ in model.named_parameters()]
    vision = set(_matching(names, parts.vision_pattern))
    merger = set(_matching(names, parts.merger_pattern))
    if not vision:
        raise ConfigError(f"trainable.vision_pattern {parts.vision_pattern!r} matches no parameter of the model")
    for name, param in model.named_parameters():
        if name in merger:
            param.requires_grad_(parts.merger)
        elif name in vision:
            param.requires_grad_(parts.vision)
        else:
            param.requires_grad_(True)
    return parameter_counts(model)


def apply_lora(model: Any, lora: LoraSettings, parts: TrainableParts, seed: int) -> Any:
    """Wrap ``model`` with LoRA adapters on ``lora.target_modules``, leaving frozen parts out
    (the projector, when trainable, is trained in full via ``modules_to_save``). Every other
    parameter is frozen."""
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    for param in model.parameters():
        param.requires_grad_(False)
    module_names = [n for n, _ in model.named_modules() if n]
    merger_roots = _root_modules(model, parts.merger_pattern)
    excluded = {n for n in module_names if any(n == r or n.startswith(r + ".") for r in merger_roots)}
    if not parts.vision:
        excluded.update(_matching(module_names, parts.vision_pattern))
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        exclude_modules=sorted(excluded) or None,
        modules_to_save=_wrappable(model, merger_roots) if parts.merger and merger_roots else None,
        task_type="CAUSAL_LM",
    )
    set_seed(seed)  # the adapters' initialisation
    try:
        return get_peft_model(model, peft_config)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(f"lora.target_modules {list(lora.target_modules)} do not fit the model ({first})") from None


def make_trainable(
    model: Any,
    lora: LoraSettings,
    parts: TrainableParts,
    *,
    seed: int = 0,
    gradient_checkpointing: bool = False,
) -> Any:
    """The one way a loaded model is made ready to learn: LoRA adapters (``lora.enabled``) or
    full fine-tuning of the parts ``parts`` names, with gradient checkpointing when asked.
    Returns the model to train (a PEFT wrapper with LoRA)."""
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if lora.enabled:
        model = apply_lora(model, lora, parts, seed)
    else:
        set_trainable(model, parts)
    counts = parameter_counts(model)
    logger.info(
        "%d of %d parameters trainable (%s)", counts["trainable"], counts["total"],
        "LoRA" if lora.enabled else "full fine-tuning",
    )
    return model


def trainable_parameter_names(model: Any) -> list[str]:
    """Names of the parameters that learn, sorted (comparable across trainers)."""
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)
