"""Shared SAR fixtures: one complete assessment and its completion text."""

from __future__ import annotations

import pytest

from hieroaction.sar import Assessment, render_sar
from tests.sar.fixtures import example_assessment


@pytest.fixture
def assessment() -> Assessment:
    return example_assessment()


@pytest.fixture
def completion() -> str:
    return render_sar(example_assessment())
