"""Browser end-to-end fixtures: the tally fixtures of the live-server tests, plus Chromium."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from tallytest import redis_server, start_tally  # noqa: E402,F401  (pytest finds fixtures by name here)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 # Tally announces only 127.0.0.1 in tests; Chromium gathers loopback candidates only when asked.
                 "--allow-loopback-in-peer-connection"]


@pytest.fixture
def chromium():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def webrtc_tally(start_tally):
    """tally listening on loopback only, as the workplace's network rules ask."""
    return start_tally({"TALLY_HOST": "127.0.0.1"})


def wait_for(predicate, timeout=30, interval=0.5):
    """Polls `predicate` until it is truthy or `timeout` seconds pass; returns its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def wait_in_page(page, expression, timeout=30_000):
    """Polls a JavaScript expression with page.evaluate until it holds. Playwright's
    wait_for_function compiles its string with eval, which the studio's
    Content-Security-Policy (script-src 'self') rightly forbids."""
    deadline = time.time() + timeout / 1000
    while time.time() < deadline:
        try:
            if page.evaluate(expression):
                return
        except Exception as error:  # a navigation under way replaces the page's context: ask again
            if "context was destroyed" not in str(error) and "navigat" not in str(error):
                raise
        time.sleep(0.1)
    raise AssertionError(f"{expression} did not hold within {timeout} ms")
