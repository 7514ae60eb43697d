"""The page's live transcript in headless Chromium: its microphone is the sample file
(Chromium's fake capture device plays it), the server runs the bundled streaming model
(data/models/en-stream), and the partial text must appear while recording, before Stop.

Needs Debian's chromium and chromium-driver (bash .ci/install.d/browser.sh, as root)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import asr
from asr.serve import ServeConfig, create_app

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "sample.wav"
EN_STREAM = ROOT / "data" / "models" / "en-stream"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="Chromium or chromedriver not installed (bash .ci/install.d/browser.sh, as root)",
    ),
]


@pytest.fixture(scope="module")
def server():
    """(base URL, recognizer) of a uvicorn server with the streaming model, on a free port."""
    recognizer = asr.load_model(EN_STREAM, device="cpu")
    app = create_app(recognizer, ServeConfig())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, access_log=False, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", recognizer
    uv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--window-size=1000,1000",
        "--use-fake-ui-for-media-stream",  # grant the microphone without asking
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={SAMPLE}",  # the microphone says the sample
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def test_the_page_shows_partial_text_live_while_recording(server, browser, tmp_path):
    url, recognizer = server
    expected = set(recognizer.transcribe([SAMPLE])[0].text.split())
    browser.get(url + "/")
    record = browser.find_element(By.ID, "record")
    record.click()
    live = browser.find_element(By.ID, "live")
    status = browser.find_element(By.ID, "status")
    # Words while the microphone is still on: the status still says recording.
    WebDriverWait(browser, 40).until(lambda _: len(set(live.text.split()) & expected) >= 3)
    assert status.get_attribute("data-state") == "recording", status.text
    browser.save_screenshot(str(tmp_path / "serve_page_live.png"))
    record.click()
    WebDriverWait(browser, 60).until(
        lambda _: status.get_attribute("data-state") in ("done", "error")
    )
    assert status.get_attribute("data-state") == "done", status.text
    assert browser.find_element(By.ID, "live-note").text == ""
