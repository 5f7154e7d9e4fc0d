"""HTTP helpers of the web app tests (standard library only, so each request says exactly what
goes on the wire)."""

from __future__ import annotations

import http.client
import json
import secrets
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

SERVE_EXTRA = ("fastapi", "uvicorn", "python_multipart")


def require_serve_extra() -> None:
    """Skip the calling test module (or test) when the serve extra is not installed."""
    for name in SERVE_EXTRA:
        pytest.importorskip(name, reason="the web app needs the serve extra: pip install 'hieroaction[serve]'")


class Answer:
    """Status, headers and body of one response."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:200]!r})"


def multipart(
    fields: dict[str, str] | None = None, files: dict[str, tuple[str, bytes]] | None = None
) -> tuple[bytes, str]:
    """``(body, content type)`` of a multipart/form-data form."""
    boundary = secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, (filename, data) in (files or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(server: Any, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 60.0) -> Answer:
    """One HTTP request on a fresh connection."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def post_form(server: Any, path: str, fields: dict[str, str] | None = None,
              files: dict[str, tuple[str, bytes]] | None = None, timeout: float = 60.0) -> Answer:
    """POST a multipart form."""
    body, content_type = multipart(fields, files)
    return request(server, "POST", path, body, {"Content-Type": content_type}, timeout=timeout)


def upload_files(server: Any) -> list[Path]:
    """What the server's private upload folder holds now."""
    return server.app.state.service.uploads.files()


def read_answer(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """The status line and headers (and whatever came with them) of the answer on ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def answered(sock: socket.socket) -> bool:
    """Whether the server has answered (or closed) ``sock`` yet, without waiting."""
    return bool(select.select([sock], [], [], 0)[0])


def start_upload(server: Any, path: str = "/api/jobs", video_head: bytes = b"\x00\x00\x00\x18ftypmp42",
                 content_length: int = 100_000) -> socket.socket:
    """A raw connection that has sent a request's headers and the start of a form's video (by
    default the first bytes of an MP4), and then nothing more: a slow client, for the caller
    to trickle more bytes into or leave silent."""
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {content_length}\r\n\r\n".encode()
        + b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="slow.mp4"\r\n\r\n'
        + video_head
    )
    return sock


def wait_until(condition: Any, timeout: float = 30.0, what: str = "the condition") -> None:
    """Poll ``condition()`` until it is true (a deadline against hanging, not a timing check)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout:g} s")
        time.sleep(0.02)


class GatedAssessor:
    """The tiny assessor, whose ``assess`` records the file it was given and then waits until
    :attr:`gate` is open; everything else is the wrapped assessor's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.order: list[Path] = []
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def assess(self, path: Any, **kwargs: Any) -> Any:
        self.order.append(Path(path))
        self.entered.release()
        assert self.gate.wait(120), "the test never opened the gate"
        return self._inner.assess(path, **kwargs)
