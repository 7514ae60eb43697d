"""The page's live transcript in headless Chromium: its microphone is the sample file
(Chromium's fake capture device plays it), the server runs the bundled streaming model
(data/models/en-stream), and the partial text must appear while recording, before Stop.

Needs Debian's chromium and chromium-driver (bash .ci/install.d/browser.sh, as root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import chromium, needs_browser, serve_in_thread
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import asr
from asr.serve import ServeConfig, create_app

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "sample.wav"
EN_STREAM = ROOT / "data" / "models" / "en-stream"
pytestmark = needs_browser


@pytest.fixture(scope="module")
def server():
    """(base URL, recognizer) of a uvicorn server with the streaming model, on a free port."""
    recognizer = asr.load_model(EN_STREAM, device="cpu")
    app = create_app(recognizer, ServeConfig())
    for url in serve_in_thread(app):
        yield url, recognizer


@pytest.fixture(scope="module")
def browser():
    yield from chromium(f"--use-file-for-fake-audio-capture={SAMPLE}")  # it says the sample


def test_the_page_shows_partial_text_live_while_recording(server, browser, tmp_path):
    url, recognizer = server
    expected = set(recognizer.transcribe([SAMPLE])[0].raw_text.split())  # partials: spoken
    browser.get(url + "/")
    record = browser.find_element(By.ID, "record")
    record.click()
    live = browser.find_element(By.ID, "live")
    status = browser.find_element(By.ID, "status")
    # Words while the microphone is still on: the status still says recording.
    WebDriverWait(browser, 40).until(lambda _: len(set(live.text.split()) & expected) >= 3)
    assert status.get_attribute("data-state") == "recording", status.text
    browser.save_screenshot(str(tmp_path / "serve_page_live.png"))
    if os.environ.get("ASR_SCREENSHOTS"):  # docs/page/
        browser.save_screenshot(str(Path(os.environ["ASR_SCREENSHOTS"]) / "page_live.png"))
    record.click()
    WebDriverWait(browser, 60).until(
        lambda _: status.get_attribute("data-state") in ("done", "error")
    )
    assert status.get_attribute("data-state") == "done", status.text
    assert browser.find_element(By.ID, "live-note").text == ""
