"""The page in a real browser: headless Chromium (Debian's package) driven by Playwright.

Skipped, with the reason, where Chromium or the ``playwright`` package is missing; CI installs
both (``apt-get install chromium``, ``pip install playwright``; never ``playwright install``:
the browser is the system's). ``HIEROACTION_CHROMIUM`` names another Chromium binary.
``HIEROACTION_SCREENSHOT=PATH`` also saves the screenshot there (docs/images/serve.png is made
this way, see docs/serve.md); ``HIEROACTION_SERVE_MODEL=DIR`` serves that model instead of the
tiny random one (with its own frame and answer-length settings).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.serve.client import (
    GatedAssessor,
    post_form,
    request,
    require_serve_extra,
    upload_files,
)

require_serve_extra()

CHROMIUM = os.environ.get("HIEROACTION_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# No network, no background services, no sandbox (CI runs as root in a container), no GPU.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OTHER_MODEL = os.environ.get("HIEROACTION_SERVE_MODEL")
# A real model writes a full answer (up to 1024 tokens) on a CPU: give it minutes.
WAIT_MS = 600_000 if OTHER_MODEL else 90_000

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (install Debian's: apt-get install -y chromium chromium-driver)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs: pip install playwright")


@pytest.fixture(scope="module")
def server(start_server):
    model, inference = None, {}
    if OTHER_MODEL:
        from hieroaction.inference import Assessor, InferenceConfig
        from hieroaction.inference.saved import read_settings

        # the model's own inference settings (how it was trained to be prompted), else synth's
        saved = read_settings(OTHER_MODEL)
        model = Assessor.from_pretrained(OTHER_MODEL, None if saved else InferenceConfig(domain="synth"))
        inference = {"inference": saved or {"domain": "synth"}}
    with start_server(model, examples=1, **inference) as running:
        yield running


@pytest.fixture()
def page(tmp_path):
    """A fresh browser profile and page; fails the test on any console error (CSP included)."""
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1100, "height": 900},
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.console_errors = errors
        try:
            yield page
        finally:
            context.close()


def _open(page, server) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("#assess:not([disabled])", timeout=WAIT_MS)


def _result_json(page, server) -> dict:
    href = page.get_attribute("#download-json", "href")
    answer = request(server, "GET", href)
    assert answer.status == 200
    return answer.json()


def test_an_uploaded_clip_is_assessed_and_rendered(page, server, clips):
    _open(page, server)
    assert "synth" in page.eval_on_selector_all("#domain option", "os => os.map(o => o.value)")
    page.set_input_files("#file", str(clips[0]))
    page.select_option("#domain", "synth")
    page.click("#assess")
    page.wait_for_selector("#result:not([hidden])", timeout=WAIT_MS)

    result = _result_json(page, server)
    assessment = result["assessment"]
    assert page.inner_text("#result-name") == clips[0].name == result["source"]
    assert page.inner_text("#status").startswith("Done in")
    assert page.eval_on_selector("#progress", "p => p.value") == 100
    assert page.inner_text("#action") == (assessment["action"] or "(not read)")
    assert page.locator("#steps tr").count() == len(assessment["steps"])
    assert page.locator("#problems li").count() == len(result["problems"])
    assert page.text_content("#raw") == result["completion"]
    window = page.inner_text("#result-window")
    assert f"{len(result['frame_times'])} frames" in window and "domain synth" in window
    # the timeline (an SVG of key frames over the steps) loaded as an image
    assert page.eval_on_selector("#timeline", "img => img.complete && img.naturalWidth") > 0
    report_href = page.get_attribute("#download-report", "href")
    assert request(server, "GET", report_href).status == 200
    assert page.console_errors == []
    assert upload_files(server) == []


def test_an_example_shows_the_truth_next_to_the_answer_and_the_screenshot_is_taken(page, server, tmp_path):
    _open(page, server)
    example = request(server, "GET", "/api/info").json()["examples"][0]
    page.click(f".example[data-id='{example['id']}']")
    assert page.input_value("#domain") == example["domain"]
    page.click("#assess")
    page.wait_for_selector("#result:not([hidden])", timeout=WAIT_MS)
    assert page.inner_text("#true-action") == example["action"]
    assert float(page.inner_text("#true-score")) == pytest.approx(example["score"], rel=1e-3)
    assert page.is_visible("#true-action")
    assert page.console_errors == []

    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    target = os.environ.get("HIEROACTION_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


def test_a_job_waiting_in_line_shows_its_place_then_its_result(page, start_server, assessor):
    """The page submits a job and follows its URL: while another job holds the model it shows
    its place in line, then the result once its turn has come."""
    gated = GatedAssessor(assessor)
    with start_server(gated, examples=1) as server:
        example = request(server, "GET", "/api/info").json()["examples"][0]
        ahead = post_form(server, "/api/jobs", {"example": example["id"]})
        assert ahead.status == 202 and gated.entered.acquire(timeout=60)  # it holds the model
        _open(page, server)
        page.click(f".example[data-id='{example['id']}']")
        page.click("#assess")
        page.wait_for_function(
            "() => document.getElementById('status').textContent.startsWith('Place 2 in line')", timeout=WAIT_MS
        )
        assert "1 video ahead" in page.inner_text("#status") and page.is_hidden("#result")
        gated.gate.set()
        page.wait_for_selector("#result:not([hidden])", timeout=WAIT_MS)
        assert page.inner_text("#status").startswith("Done in")
        assert page.inner_text("#true-action") == example["action"]
        assert len(gated.order) == 2  # the one ahead, then the page's
        assert page.console_errors == []


def test_a_refused_upload_shows_the_servers_reason(page, server, text_mp4):
    _open(page, server)
    page.set_input_files("#file", str(text_mp4))
    page.click("#assess")
    page.wait_for_selector("#error:not([hidden])", timeout=WAIT_MS)
    assert "notes.mp4: not a video file" in page.inner_text("#error")
    assert page.is_hidden("#result")
    assert upload_files(server) == []


def test_a_complete_answer_is_rendered_in_full(page, server):
    """The random model writes nothing the parser can read, so the steps table, components and
    reasoning are checked with a complete answer: the example's own SAR target (written from its
    annotations by hieroaction.sar), parsed back, in place of the model's answer of a real job."""
    from hieroaction.sar import parse_sar
    from hieroaction.sar.targets import build_target

    _open(page, server)
    example = request(server, "GET", "/api/info").json()["examples"][0]
    page.click(f".example[data-id='{example['id']}']")
    page.click("#assess")
    page.wait_for_selector("#result:not([hidden])", timeout=WAIT_MS)
    job = request(server, "GET", page.get_attribute("#download-json", "href").rsplit("/", 1)[0]).json()

    text = build_target(server.app.state.service.examples.get(example["id"]).record)
    parsed = parse_sar(text, strict=True)
    assert parsed.problems == []
    answer = parsed.assessment
    job["result"].update(assessment=answer.model_dump(mode="json"), problems=[], completion=text)
    page.evaluate("job => render(job)", job)

    rows = page.eval_on_selector_all("#steps tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert len(rows) == len(answer.steps) >= 3
    for row, step in zip(rows, answer.steps, strict=True):
        assert row[1] == step.label and row[5] == step.analysis
        assert float(row[2]) == pytest.approx(step.start, abs=0.005)
        assert float(row[3]) == pytest.approx(step.end, abs=0.005)
        assert float(row[4]) == pytest.approx(step.quality)
    assert page.inner_text("#action") == answer.action == example["action"]
    assert float(page.inner_text("#score")) == pytest.approx(answer.score, rel=1e-3)
    for name in answer.components:
        assert name in page.inner_text("#components")
    assert page.inner_text("#recognition") == answer.recognition_reasoning.strip()
    assert page.inner_text("#scoring") == answer.scoring_reasoning.strip()
    assert page.inner_text("#problems-summary") == "The answer follows the stepwise format."
    assert page.locator("#problems li").count() == 0 and page.is_hidden("#no-steps")
    assert page.console_errors == []
