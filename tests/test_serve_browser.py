"""The `asr serve` page in headless Chromium, against a real server with the bundled model:
upload the sample and see its transcript and timed words; record from Chromium's fake
microphone and see a 16 kHz mono WAV reach the server. Screenshots go to the test's tmp folder.

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
from asr.audio import AudioInfo, audio_info
from asr.serve import ServeConfig, create_app

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "sample.wav"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="Chromium or chromedriver not installed (bash .ci/install.d/browser.sh, as root)",
    ),
]


class SpyRecognizer:
    """The bundled Recognizer, noting what each uploaded file held before transcribing it."""

    def __init__(self, recognizer) -> None:
        self.recognizer = recognizer
        self.source = recognizer.source
        self.default_options = recognizer.default_options
        self.stream = recognizer.stream  # the page's live text (this model refuses)
        self.seen: list[AudioInfo] = []

    def transcribe(self, inputs, *args, **kwargs):
        self.seen.append(audio_info(inputs[0]))
        return self.recognizer.transcribe(inputs, *args, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, spy recognizer, upload folder) of a uvicorn server on a free local port."""
    upload_dir = tmp_path_factory.mktemp("uploads")
    spy = SpyRecognizer(asr.load_model(device="cpu"))
    app = create_app(spy, ServeConfig(upload_dir=str(upload_dir)))  # type: ignore[arg-type]
    config = uvicorn.Config(app, host="127.0.0.1", port=0, access_log=False, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", spy, upload_dir
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
        "--use-fake-device-for-media-stream",  # a synthetic microphone (beeps)
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def _wait_until_settled(driver, seconds: float = 120.0) -> str:
    """Wait for the page's status to leave 'busy'/'recording'; return its final state."""
    status = driver.find_element(By.ID, "status")
    WebDriverWait(driver, seconds).until(
        lambda _: status.get_attribute("data-state") in ("done", "error")
    )
    return status.get_attribute("data-state")


def test_page_uploads_the_sample_and_shows_the_timed_transcript(server, browser, tmp_path):
    url, spy, upload_dir = server
    (expected,) = spy.recognizer.transcribe([SAMPLE], word_timestamps=True)
    browser.get(url + "/")
    browser.find_element(By.ID, "file").send_keys(str(SAMPLE))
    state = _wait_until_settled(browser)
    browser.save_screenshot(str(tmp_path / "serve_page_upload.png"))
    status = browser.find_element(By.ID, "status").text
    assert state == "done", status
    assert browser.find_element(By.ID, "transcript").text == expected.text
    rows = browser.find_elements(By.CSS_SELECTOR, "#words tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == expected.text.split()
    first = [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]
    assert first[1:3] == [f"{expected.words[0].start:.2f}", f"{expected.words[0].end:.2f}"]
    assert status.startswith(f"sample.wav: {expected.duration:.1f} s of audio transcribed in")
    assert (tmp_path / "serve_page_upload.png").stat().st_size > 10_000
    assert list(upload_dir.iterdir()) == []


def test_page_records_the_microphone_as_16khz_wav(server, browser, tmp_path):
    url, spy, upload_dir = server
    browser.get(url + "/")
    record = browser.find_element(By.ID, "record")
    record.click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda _: status.get_attribute("data-state") != "idle")
    assert status.get_attribute("data-state") == "recording", status.text
    time.sleep(2.0)
    record.click()
    state = _wait_until_settled(browser)
    browser.save_screenshot(str(tmp_path / "serve_page_recording.png"))
    assert state == "done", status.text
    assert status.text.startswith("recording.wav: ")
    info = spy.seen[-1]
    assert (info.sample_rate, info.channels) == (16_000, 1)
    assert 1.5 < info.duration < 6.0  # about the 2 s between the clicks
    assert list(upload_dir.iterdir()) == []
    # The bundled en-default cannot stream: the page says why there was no live text.
    note = browser.find_element(By.ID, "live-note").text
    assert note.startswith("Live text off:") and "cannot stream" in note
