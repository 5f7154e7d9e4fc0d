"""Self-contained HTML: one file with its styles, plots (inline SVG) and frames (data URIs).

Nothing is loaded from elsewhere (no scripts, fonts or stylesheets), so a report opens the same
offline, attached to an e-mail or served by the web app.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# Presentation only; kept small so a report stays readable as source too.
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1000px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .2rem; } h3 { font-size: 1.05rem; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }
th, td { border-bottom: 1px solid #e5e5e5; padding: .25rem .6rem; text-align: left;
         vertical-align: top; }
th { background: #f6f6f7; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.card { border: 1px solid #e2e2e2; border-radius: 8px; padding: .8rem 1rem; margin: 1rem 0; }
.error { color: #b00020; } .ok { color: #1b7f3b; } .muted { color: #777; }
.problems li { font-size: .9rem; } pre { white-space: pre-wrap; background: #f6f6f7;
  padding: .6rem; border-radius: 6px; font-size: .85rem; }
svg { max-width: 100%; height: auto; } .reasoning { white-space: pre-wrap; }
"""


def escape(value: Any) -> str:
    """HTML-escaped text of ``value`` (quotes included, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def image_data_uri(frame: np.ndarray, fmt: str = "jpeg", quality: int = 85, height: int | None = None) -> str:
    """A ``data:`` URI of an ``(H, W, 3)`` uint8 RGB frame, optionally scaled to ``height``."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    if height is not None and height != image.height:
        width = max(1, round(image.width * height / image.height))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    kind = "jpeg" if fmt.lower() in ("jpg", "jpeg") else "png"
    if kind == "jpeg":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="PNG")
    return f"data:image/{kind};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def format_value(value: Any) -> str:
    """A number as a person reads it (4 significant digits, one decimal from 1000 up);
    ``None`` and NaN as an em dash."""
    if value is None or (isinstance(value, float) and value != value):
        return "\u2014"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


class Markup(str):
    """Text that is already HTML (not escaped again by :func:`table`)."""


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    """An HTML table; cells are escaped unless they are :class:`Markup`."""
    numeric = list(numeric) if numeric is not None else [False] * len(headers)

    def cell(tag: str, value: Any, num: bool) -> str:
        text = value if isinstance(value, Markup) else escape(value if isinstance(value, str) else format_value(value))
        cls = ' class="num"' if num else ""
        return f"<{tag}{cls}>{text}</{tag}>"

    head = "".join(cell("th", h, n) for h, n in zip(headers, numeric))
    body = "".join("<tr>" + "".join(cell("td", v, n) for v, n in zip(row, numeric)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, subtitle: str | None = None) -> str:
    """A complete HTML document with the report styles."""
    sub = f'<p class="sub">{escape(subtitle)}</p>' if subtitle else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{sub}\n{body}\n</body>\n</html>\n"
    )
