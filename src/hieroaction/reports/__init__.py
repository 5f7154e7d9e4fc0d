"""Reports a person can read: terminal text, Markdown and self-contained HTML.

- :mod:`~hieroaction.reports.assessment`: one assessment (``hieroaction assess``, the web app):
  aligned text, Markdown, and HTML with a timeline of the steps over key frames.
- :mod:`~hieroaction.reports.evaluation`: the evaluation report (metrics with intervals,
  scatter plot, per-class and confusion tables, example assessments).
- :mod:`~hieroaction.reports.svg` and :mod:`~hieroaction.reports.html`: the building blocks
  (inline SVG plots, frames as data URIs, tables, the page).
"""

from __future__ import annotations

from hieroaction.reports.assessment import (
    ReportConfig,
    assessment_html,
    assessment_markdown,
    assessment_text,
    assessment_timeline,
    assessments_page,
)
from hieroaction.reports.evaluation import (
    Example,
    choose_examples,
    evaluation_text,
    write_evaluation_report,
)
from hieroaction.reports.html import image_data_uri, page, table
from hieroaction.reports.svg import scatter_svg, timeline_svg

__all__ = [
    "Example",
    "ReportConfig",
    "assessment_html",
    "assessment_markdown",
    "assessment_text",
    "assessment_timeline",
    "assessments_page",
    "choose_examples",
    "evaluation_text",
    "image_data_uri",
    "page",
    "scatter_svg",
    "table",
    "timeline_svg",
    "write_evaluation_report",
]
