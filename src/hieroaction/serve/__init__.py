"""The web app and HTTP API: ``hieroaction serve``.

- :mod:`~hieroaction.serve.config`: :class:`ServeConfig`, every limit of the server.
- :mod:`~hieroaction.serve.uploads`: the private upload folder, streaming multipart reading
  with a size limit, and the content check (magic bytes, then FFmpeg on one demuxer).
- :mod:`~hieroaction.serve.jobs`: the bounded queue in front of one worker thread.
- :mod:`~hieroaction.serve.examples`: bundled synthetic example clips.
- :mod:`~hieroaction.serve.app`: the FastAPI application, :func:`serve` and
  :class:`BackgroundServer`; the page itself is in ``page/`` (HTML, JS, CSS).

See ``docs/serve.md``. FastAPI and uvicorn come with the ``serve`` extra.
"""

from __future__ import annotations

from hieroaction.serve.config import ServeConfig

__all__ = ["BackgroundServer", "ServeConfig", "create_app", "serve"]


def __getattr__(name: str):  # noqa: ANN202 - lazy: the app needs the optional FastAPI
    if name in ("BackgroundServer", "create_app", "serve"):
        from hieroaction.serve import app

        return getattr(app, name)
    raise AttributeError(name)
