"""``hieroaction serve``: the web app and HTTP API around one loaded model.

``hieroaction serve --model M [--host 127.0.0.1] [--port 7860] [--domain D] [--max-upload-mb N]
[--queue-size N] [--timeout S] [--examples N] [--config FILE] [--set KEY=VALUE ...]``

Settings are a :class:`~hieroaction.serve.ServeConfig`: the ``--config`` YAML file, then
``--set`` values (``--set inference.frames.num_frames=8``), then the explicit flags.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from hieroaction.cli.common import (
    add_config_flag,
    add_device_flags,
    add_max_new_tokens_flag,
    add_model_flag,
    add_set_flag,
    saved_inference_settings,
    settings_from_args,
)
from hieroaction.errors import ConfigError

# Command-line flags that set a config field: flag dest -> dotted ServeConfig key.
_FLAG_FIELDS = {
    "host": "host",
    "port": "port",
    "max_upload_mb": "max_upload_mb",
    "queue_size": "queue_size",
    "timeout": "timeout_s",
    "examples": "examples",
    "domain": "inference.domain",
    "device": "inference.device",
    "dtype": "inference.dtype",
    "max_new_tokens": "inference.max_new_tokens",
}


def register(subparsers: Any) -> None:
    """Add the ``serve`` command."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a web page and HTTP API that assess uploaded videos",
        description=(
            "Load the model once and serve a page where a person uploads a video (or picks a "
            "bundled synthetic example), chooses the domain, follows the progress and reads the "
            "assessment, plus an HTTP API (POST /api/assess, GET /api/health, /openapi.json). "
            "Uploads are limited in size, checked by content, queued in a bounded queue and "
            "deleted after processing. Needs the serve extra: pip install 'hieroaction[serve]'."
        ),
    )
    add_model_flag(parser, required=True)
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, help="TCP port (default 7860)")
    parser.add_argument("--domain", help="default domain of the prompt (default generic)")
    parser.add_argument("--max-upload-mb", type=float, metavar="N", help="largest upload in MiB (default 200)")
    parser.add_argument("--queue-size", type=int, metavar="N",
                        help="jobs held at once, waiting or being assessed (default 16); uploads in "
                             "progress are not counted (see max_uploads); more get 429")
    parser.add_argument("--timeout", type=float, metavar="S", help="longest assessment in seconds (default 300)")
    parser.add_argument("--examples", type=int, metavar="N", help="bundled synthetic examples (default 3; 0: none)")
    add_max_new_tokens_flag(parser)
    add_device_flags(parser)
    add_config_flag(parser, "ServeConfig")
    add_set_flag(parser, "inference.frames.num_frames=8")
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """The server settings: config file, then ``--set`` values, then explicit flags."""
    from hieroaction.serve.config import ServeConfig

    # the model folder's own inference settings come first (what it was trained with)
    saved = saved_inference_settings(args)
    return settings_from_args(ServeConfig, args, _FLAG_FIELDS, overrides=args.set,
                              defaults={"inference": saved} if saved else None)


def _check_installed() -> None:
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"hieroaction serve needs FastAPI, uvicorn and python-multipart ({exc.name} is missing); "
            "install them with: pip install 'hieroaction[serve]'"
        ) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Handler of ``hieroaction serve``: check the settings, load the model, then serve until
    Ctrl-C."""
    from hieroaction.inference import Assessor

    config = config_from_args(args)
    _check_installed()
    from hieroaction.serve.app import serve
    from hieroaction.serve.config import check_settings

    # Checked before the model is loaded: a typo, a folder the server cannot write in or a port
    # in use should not cost a model load (and then fail the start-up with a traceback).
    check_settings(config)

    assessor = Assessor.from_pretrained(args.model, config.inference)
    if not _is_loopback(config.host):
        print(
            f"hieroaction: serving on {config.host}: the server has no authentication or TLS; "
            "put it behind a proxy that adds them before others can reach it",
            file=sys.stderr,
        )
    shown = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    print(f"hieroaction: serving {args.model} at http://{shown}:{config.port}/ (Ctrl-C stops)", file=sys.stderr)
    serve(assessor, config)
    return 0
