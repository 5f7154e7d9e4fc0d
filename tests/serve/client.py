"""HTTP helpers of the web app tests (standard library only, so each request says exactly what
goes on the wire)."""

from __future__ import annotations

import http.client
import json
import secrets
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
