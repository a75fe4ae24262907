"""The encoder streams page: a host creates a stream and sees its key once, an encoder
publishes with it and the page shows it live with its bitrate, a regenerated key cuts the
encoder off and refuses the old key, and the stream stops. Screenshots at 1280×720 and
390×844 go with the others."""
import subprocess
import time
from pathlib import Path

from conftest import CHROMIUM_ARGS, wait_for
from test_ingest import OBS_LIKE, publish_live
from test_studio import shoot, signed_up

ROOT = Path(__file__).resolve().parents[2]


def test_a_host_runs_an_encoder_stream_from_its_page(start_tally, tmp_path):
    from playwright.sync_api import sync_playwright
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_WEB_DIR": str(ROOT / "web")})
    encoder = None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            host = signed_up(browser, tally.url, "Sam Host")
            host.click("nav a:has-text('Encoder streams')")
            host.wait_for_url("**/streams.html")
            host.fill("#stream-id", "studio-cam")
            host.click("#create button[type=submit]")
            host.wait_for_selector("#streams li[data-stream='studio-cam']")
            key = host.input_value("#new-key")
            assert key and not host.locator("#key-panel").is_hidden()
            item = host.locator("#streams li[data-stream='studio-cam']")
            assert key not in item.inner_text() and key[-4:] in item.inner_text()
            rtmp = host.input_value("#studio-cam-rtmp")
            assert rtmp.startswith("rtmp://") and rtmp.endswith("/live")
            assert host.input_value("#studio-cam-whip").endswith("/ingest/whip")

            # An encoder publishes with the key: the page shows the stream live with its bitrate.
            encoder = publish_live(f"{rtmp}/{key}", tmp_path / "encoder.log")
            assert wait_for(lambda: item.get_attribute("data-live") == "true", 20), item.inner_text()
            assert wait_for(lambda: "b/s" in item.inner_text(), 10), item.inner_text()
            shoot(host, "streams")

            # A new key: shown once, the encoder on the old one cut off, the old key refused.
            host.once("dialog", lambda dialog: dialog.accept())
            host.click("button[aria-label='Regenerate the key of studio-cam']")
            assert wait_for(lambda: host.input_value("#new-key") not in ("", key), 10)
            assert encoder.wait(15) is not None
            old = subprocess.run(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "4", *OBS_LIKE,
                                  f"{rtmp}/{key}"], capture_output=True, text=True, timeout=30)
            assert old.returncode != 0, old.stderr
            assert wait_for(lambda: item.get_attribute("data-live") == "false", 10)

            # Stopped from the page: the status says so.
            host.click("button[aria-label='Stop studio-cam']")
            assert wait_for(lambda: item.get_attribute("data-status") == "stopped", 10), item.inner_text()
            time.sleep(0.5)
        finally:
            if encoder and encoder.poll() is None:
                encoder.kill()
            browser.close()
