"""What the headless-Chromium tests share: a uvicorn server in a thread on a free local port,
a Chromium driver with a fake microphone, and the mark that skips them without a browser.

Needs Debian's chromium and chromium-driver (bash .ci/install.d/browser.sh, as root)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

needs_browser = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="Chromium or chromedriver not installed (bash .ci/install.d/browser.sh, as root)",
    ),
]


def serve_in_thread(app, **options) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 and a free port (more uvicorn `options`, such as
    `asr serve`'s limits); yield its base URL, then stop."""
    options = {"access_log": False, "log_level": "warning", **options}
    config = uvicorn.Config(app, host="127.0.0.1", port=0, **options)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)


def chromium(*extra_args: str) -> Iterator[webdriver.Chrome]:
    """A headless Chromium whose microphone is granted without asking and is fake: beeps, or
    the file of `--use-file-for-fake-audio-capture=PATH` among `extra_args`."""
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--window-size=1000,1000",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        *extra_args,
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()
