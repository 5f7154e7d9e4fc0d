"""DeepSpeed and FSDP under ``accelerate launch``: what the SFT and HPL trainers need beyond DDP.

Written against accelerate 1.15 and DeepSpeed 0.19 (read in their source):

* **Start-up without CUDA** (the CPU tests). ``accelerate launch --use_deepspeed`` (or
  ``--use_fsdp``) starts every process with ``LOCAL_RANK`` set; accelerate's process state then
  recognises only GPU-like backends, finds none, and records "no backend": DeepSpeed still forms
  its 2-process group, but accelerate reports ``num_processes`` 1 to each process (so each
  trains on the whole batch and believes it is alone). FSDP is worse off: accelerate switches
  to FSDP only on a multi-GPU-like state, so a CPU run silently trains without it.
  :func:`start_cpu_process_group` starts the state with the gloo backend before the trainer
  builds its ``Accelerator`` / ``TrainingArguments`` and, for FSDP, marks the state as
  multi-device so accelerate's own FSDP set-up runs. On a CUDA machine it does nothing.
* **No dataloader**: the HPL loop prepares no dataloader, and accelerate cannot fill DeepSpeed's
  ``train_micro_batch_size_per_gpu: auto`` without one (:func:`configure_deepspeed`).
* **One optimizer step per update**: ``accelerator.backward`` under DeepSpeed runs the engine's
  step after every call and ``no_sync`` does nothing at ZeRO-2/3, so an update made of several
  backward passes (one per kept group) stepped once per pass (:func:`backward`).
* **Lockstep**: under DeepSpeed ZeRO-2/3 every backward pass runs collectives (gradient
  reduce-scatter), and under ZeRO-3 and FSDP every forward pass too (parameter all-gather),
  generate's included. Every process must therefore run the same number of forward and
  backward passes, which :class:`Engine` tells the HPL trainer.
* **Whole parameters**: under ZeRO-3 and FSDP no process holds whole weights; gathering them
  (:func:`full_parameters`, :func:`full_state_dict`) is a collective every process calls, and
  a model one process loads for itself (the LoRA merge) must be built outside ZeRO-3's
  partitioned construction (:func:`loading_whole`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hieroaction.errors import ConfigError


def launched_engine() -> str | None:
    """``"deepspeed"`` or ``"fsdp"`` when ``accelerate launch`` started this process for one."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "deepspeed"
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "fsdp"
    return None


def _launched_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def start_cpu_process_group() -> bool:
    """Start accelerate's process state with gloo on a machine without CUDA when this process
    was launched for DeepSpeed or FSDP with several processes (see the module docstring).
    Returns whether it did; call it before any ``Accelerator`` or ``TrainingArguments``."""
    import torch

    engine = launched_engine()
    if torch.cuda.is_available() or engine is None or _launched_world_size() <= 1:
        return False
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    state = PartialState(backend="gloo")
    if state.num_processes != _launched_world_size():
        raise ConfigError(
            f"accelerate started {state.num_processes} process(es) of the {_launched_world_size()} "
            f"launched for {engine}; cannot train on a partial process group"
        )
    if engine == "fsdp" and state.distributed_type == DistributedType.NO:
        # accelerate 1.15 applies its FSDP plugin only to a multi-device state; on the CPU the
        # state says "no distribution" although the gloo group holds every process
        PartialState._shared_state["distributed_type"] = DistributedType.MULTI_GPU
    return True


@dataclass(frozen=True)
class Engine:
    """How the prepared model is distributed, as far as a training loop must know."""

    kind: str  # "none" (one process), "ddp", "deepspeed", "fsdp"
    zero_stage: int = 0

    @property
    def lockstep(self) -> bool:
        """Every process must run the same number of forward and backward passes (their
        collectives pair up across processes): DeepSpeed ZeRO and FSDP."""
        return self.kind in ("deepspeed", "fsdp")

    @property
    def sharded_parameters(self) -> bool:
        """No process holds whole weights (ZeRO-3, FSDP): generate must run in step on every
        process, and whole weights are a collective gather."""
        return self.kind == "fsdp" or (self.kind == "deepspeed" and self.zero_stage == 3)


def engine_of(accelerator: Any) -> Engine:
    """The :class:`Engine` of an ``Accelerator``; refuses a launch accelerate did not honour."""
    from accelerate.utils import DistributedType

    kind = accelerator.distributed_type
    launched = launched_engine()
    if launched and _launched_world_size() > 1 and accelerator.num_processes != _launched_world_size():
        raise ConfigError(
            f"accelerate reports {accelerator.num_processes} process(es) but {_launched_world_size()} were "
            f"launched for {launched}; every process would train alone"
        )
    if kind == DistributedType.DEEPSPEED:
        return Engine("deepspeed", int(accelerator.state.deepspeed_plugin.zero_stage or 0))
    if kind == DistributedType.FSDP:
        return Engine("fsdp")
    if launched and _launched_world_size() > 1:
        raise ConfigError(
            f"the run was launched for {launched}, but accelerate set up {kind}; "
            "the training would not be distributed as configured"
        )
    return Engine("ddp" if accelerator.num_processes > 1 else "none")


def configure_deepspeed(accelerator: Any, max_grad_norm: float) -> None:
    """Fill the DeepSpeed settings a loop without a dataloader must give before ``prepare``:
    one micro-batch per optimizer step (the loop accumulates its own passes and steps once,
    :func:`backward`), and clipping at ``max_grad_norm`` (DeepSpeed clips inside its step).
    accelerate would otherwise refuse ``train_micro_batch_size_per_gpu: auto`` with no
    dataloader, and clip at 1.0."""
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    if config.get("train_micro_batch_size_per_gpu", "auto") == "auto":
        config["train_micro_batch_size_per_gpu"] = 1
    steps = config.get("gradient_accumulation_steps", "auto")
    if steps == "auto":
        config["gradient_accumulation_steps"] = 1
    elif int(steps) != 1:
        raise ConfigError(
            f"the DeepSpeed config sets gradient_accumulation_steps {steps}; the HPL trainer accumulates "
            "its own passes and takes one optimizer step per update, so set it to 1 (or auto)"
        )
    if config.get("gradient_clipping", "auto") == "auto":
        config["gradient_clipping"] = float(max_grad_norm)


@contextmanager
def accumulating(accelerator: Any, model: Any, last: bool) -> Iterator[None]:
    """Around the forward and backward pass of one part of an update made of several: DDP and
    FSDP do not synchronise gradients before the ``last`` part (``no_sync``, which under DDP
    must hold the forward pass too). Under DeepSpeed it does nothing: see :func:`backward`."""
    from accelerate.utils import DistributedType

    if last or accelerator.distributed_type == DistributedType.DEEPSPEED:
        yield
        return
    with accelerator.no_sync(model):
        yield


def backward(accelerator: Any, model: Any, loss: Any, last: bool) -> None:
    """The backward pass of one part of an update; the optimizer steps after the ``last``.

    DeepSpeed: ``accelerator.backward`` always closes an accumulation and runs the engine's
    step, and ``no_sync`` does nothing at ZeRO-2/3. The parts before the last therefore go to
    the engine with the accumulation boundary unset (gradients accumulate, no step), the last
    through accelerate (boundary, clipping, step). The loss is not rescaled: DeepSpeed divides
    it by its ``gradient_accumulation_steps``, which is 1 (:func:`configure_deepspeed`).
    Elsewhere: ``accelerator.backward`` inside :func:`accumulating`.
    """
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED and not last:
        model.set_gradient_accumulation_boundary(False)
        model.backward(loss)
        return
    accelerator.backward(loss)


@contextmanager
def loading_whole() -> Iterator[None]:
    """Around a ``from_pretrained`` that one process makes for itself (the LoRA merge after
    training, in the main process only): under DeepSpeed ZeRO-3, transformers builds every model
    partitioned across the processes (``deepspeed.zero.Init``, a collective), which would wait
    forever for the others. Here the model is built whole; afterwards ZeRO-3 construction is
    switched on again. Elsewhere it does nothing."""
    from transformers.integrations import (
        is_deepspeed_zero3_enabled,
        unset_hf_deepspeed_config,
    )

    if not is_deepspeed_zero3_enabled():
        yield
        return
    from accelerate.state import AcceleratorState

    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        AcceleratorState().deepspeed_plugin.set_deepspeed_weakref()


def fsdp_generate_as_forward(model: Any) -> None:
    """Make FSDP2 treat ``model.generate`` as a forward pass of the root module (torch's
    ``register_fsdp_forward_method``): generate runs the vision tower
    (``get_video_features``) before any forward pass of the root, which would otherwise meet
    the root's own parameters (patch and token embeddings, head) still sharded, and wrapped
    layers that initialise themselves as roots."""
    from torch.distributed.fsdp import register_fsdp_forward_method

    register_fsdp_forward_method(model, "generate")


def max_over_processes(accelerator: Any, value: int) -> int:
    """The largest ``value`` of all processes (a collective)."""
    import torch

    if accelerator.num_processes == 1:
        return int(value)
    tensor = torch.tensor([int(value)], device=accelerator.device)
    return int(accelerator.gather(tensor).max())


def _zero3_gather(params: list[Any]) -> Any:
    import deepspeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=None)


def full_parameters(accelerator: Any, model: Any, trainable_only: bool = True) -> dict[str, Any]:
    """Whole parameters (detached CPU copies), by name, in every process. A collective under
    ZeRO-3 and FSDP: every process must call it. ``model``: the prepared model."""
    engine = engine_of(accelerator)
    module = accelerator.unwrap_model(model)
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad or not trainable_only]
    out = {}
    for name, param in named:
        if engine.kind == "deepspeed" and engine.zero_stage == 3:
            with _zero3_gather([param]):
                out[name] = param.detach().cpu().clone()
        elif hasattr(param, "full_tensor"):  # an FSDP2 DTensor
            out[name] = param.full_tensor().detach().cpu().clone()
        else:
            out[name] = param.detach().cpu().clone()
    return out


def full_state_dict(accelerator: Any, model: Any) -> dict[str, Any]:
    """The whole model's state dict (what ``save_pretrained`` writes) in the main process, an
    empty dict elsewhere. A collective under ZeRO-3 and FSDP: every process must call it.
    ZeRO-3 weights are gathered one parameter at a time (no process holds the whole model
    twice), so ``stage3_gather_16bit_weights_on_model_save`` is not needed."""
    engine = engine_of(accelerator)
    main = accelerator.is_main_process
    module = accelerator.unwrap_model(model)
    if engine.kind == "fsdp":
        state = accelerator.get_state_dict(model)
        return dict(state) if main else {}
    if engine.kind == "deepspeed" and engine.zero_stage == 3:
        state = dict(module.state_dict()) if main else {}
        for name, param in module.named_parameters(remove_duplicate=False):
            with _zero3_gather([param]):
                if main:
                    state[name] = param.detach().cpu().clone()
        return state
    return dict(module.state_dict()) if main else {}


class ShardedOptimizerState:
    """Stands in for the optimizer in an HPL checkpoint under DeepSpeed/FSDP: the optimizer
    state is sharded across processes there, and resuming such a run is refused
    (``HPLTrainer.resume_from``), so the checkpoint keeps the whole weights and says so."""

    def state_dict(self) -> dict[str, Any]:
        return {"sharded": True, "note": "optimizer state not saved: sharded across processes"}
