"""The `asr serve` page in headless Chromium, against a real server with the bundled model:
upload the sample and see its transcript and timed words; record from Chromium's fake
microphone and see a 16 kHz mono WAV reach the server. Screenshots go to the test's tmp folder.

Needs Debian's chromium and chromium-driver (bash .ci/install.d/browser.sh, as root)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from browser import chromium, needs_browser, serve_in_thread
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import asr
from asr.audio import AudioInfo, audio_info
from asr.serve import ServeConfig, create_app

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "sample.wav"
pytestmark = needs_browser


class SpyRecognizer:
    """The bundled Recognizer, noting what each uploaded file held before transcribing it."""

    def __init__(self, recognizer) -> None:
        self.recognizer = recognizer
        self.seen: list[AudioInfo] = []

    def __getattr__(self, name: str):
        # Everything but transcribe is the real Recognizer's (source, options, stream, ...),
        # so the spy follows the Recognizer's interface as it grows.
        return getattr(self.recognizer, name)

    def transcribe(self, inputs, *args, **kwargs):
        self.seen.append(audio_info(inputs[0]))
        return self.recognizer.transcribe(inputs, *args, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, spy recognizer, upload folder) of a uvicorn server on a free local port."""
    upload_dir = tmp_path_factory.mktemp("uploads")
    spy = SpyRecognizer(asr.load_model(device="cpu"))
    app = create_app(spy, ServeConfig(upload_dir=str(upload_dir)))  # type: ignore[arg-type]
    for url in serve_in_thread(app):
        yield url, spy, upload_dir


@pytest.fixture(scope="module")
def browser():
    yield from chromium()  # a synthetic microphone (beeps)


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
    assert browser.find_element(By.ID, "transcript").text == expected.text  # written
    assert expected.text[:1].isupper() and expected.text.endswith(".")
    rows = browser.find_elements(By.CSS_SELECTOR, "#words tbody tr")  # the timed spoken words
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == expected.raw_text.split()
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
    # The bundled model cannot stream: the page says why there was no live text.
    note = browser.find_element(By.ID, "live-note").text
    assert note.startswith("No live text while recording") and "cannot stream" in note


def _shoot(browser, tmp_path, name: str) -> None:
    """A screenshot in the test's folder, and in $ASR_SCREENSHOTS when set (docs/page/)."""
    browser.save_screenshot(str(tmp_path / name))
    folder = os.environ.get("ASR_SCREENSHOTS")
    if folder:
        browser.save_screenshot(str(Path(folder) / name))


def test_the_page_is_one_a_person_would_use(server, browser, tmp_path):
    """Before anything: a heading, what to do, no empty box; after an upload: one labelled
    transcript, copy, and .txt/.srt/.vtt downloads of it; a rejected file: the reason, no
    player and no old transcript; a favicon."""
    url, spy, _ = server
    browser.get(url + "/")
    _shoot(browser, tmp_path, "page_start.png")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Transcribe"
    assert "choose an audio file, or record" in browser.find_element(By.CLASS_NAME, "lead").text
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert browser.find_element(By.ID, "status").text == "Nothing transcribed yet."
    icon = browser.find_element(By.CSS_SELECTOR, "link[rel=icon]").get_attribute("href")
    assert icon.startswith("data:image/svg+xml")
    browser.find_element(By.ID, "file").send_keys(str(SAMPLE))
    assert _wait_until_settled(browser) == "done"
    _shoot(browser, tmp_path, "page_transcript.png")
    (expected,) = spy.recognizer.transcribe([SAMPLE], word_timestamps=True)
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2") if h.is_displayed()]
    assert headings == ["TRANSCRIPT", "WORDS"]  # (upper-cased by the page's style)
    saved = {}
    for kind in ("txt", "srt", "vtt"):
        link = browser.find_element(By.ID, f"save-{kind}")
        assert link.get_attribute("download") == f"sample.{kind}"
        script = "return await (await fetch(arguments[0])).text();"
        saved[kind] = browser.execute_script(script, link.get_attribute("href"))
    assert saved["txt"] == expected.text + "\n"
    assert saved["srt"].startswith("1\n00:00:00,") and "-->" in saved["srt"]
    assert saved["vtt"].startswith("WEBVTT\n\n00:00:00.")
    cue_words = " ".join(
        line
        for line in saved["srt"].splitlines()
        if line and "-->" not in line and not line.isdigit()
    )
    assert cue_words == expected.text
    rejected = tmp_path / "notes.wav"
    rejected.write_bytes(b"these are not audio samples")
    browser.find_element(By.ID, "file").send_keys(str(rejected))
    assert _wait_until_settled(browser) == "error"
    _shoot(browser, tmp_path, "page_rejected.png")
    status = browser.find_element(By.ID, "status").text
    assert status.startswith("Could not transcribe notes.wav: not a readable audio file")
    assert not browser.find_element(By.ID, "player").is_displayed()
    assert not browser.find_element(By.ID, "result").is_displayed()
