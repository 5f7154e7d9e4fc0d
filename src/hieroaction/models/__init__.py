"""Model families, offline tiny models and model-ready video inputs.

- :mod:`~hieroaction.models.families`: what each VLM family expects (``get_family``).
- :mod:`~hieroaction.models.video_inputs`: frames -> ``pixel_values_videos`` / ``video_grid_thw``
  and frame times, without torchvision.
- :mod:`~hieroaction.models.processor`: chat messages + clips -> model inputs
  (``VideoChatProcessor``).
- :mod:`~hieroaction.models.loading`: the one home of checkpoints: resolve a folder, an adapter
  folder or a Hub id, load model and processor, LoRA and trainable parts, precision.
- :mod:`~hieroaction.models.tiny`: randomly initialised models of the real classes, built offline.
"""

from hieroaction.models.families import ModelFamily, family_names, get_family
from hieroaction.models.processor import VideoChatProcessor, collate
from hieroaction.models.loading import (
    LoraSettings,
    Precision,
    TrainableParts,
    load_model_and_processor,
    make_trainable,
    resolve_checkpoint,
    resolve_precision,
    torch_dtype,
)
from hieroaction.models.tiny import build_tiny, count_parameters
from hieroaction.models.video_inputs import VideoFeatures, VideoSettings, process_video

__all__ = [
    "LoraSettings",
    "ModelFamily",
    "Precision",
    "TrainableParts",
    "VideoChatProcessor",
    "VideoFeatures",
    "VideoSettings",
    "build_tiny",
    "collate",
    "count_parameters",
    "family_names",
    "get_family",
    "load_model_and_processor",
    "make_trainable",
    "process_video",
    "resolve_checkpoint",
    "resolve_precision",
    "torch_dtype",
]
