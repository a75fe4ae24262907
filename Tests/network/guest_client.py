"""A guest's Chromium, run inside a network namespace: opens an invite link, enters the
studio and stays for a while. Usage: guest_client.py LINK SECONDS HOME VIDEO.y4m
(HOME: a home whose NSS database trusts the server's CA; VIDEO: what its camera shows)."""
import json
import os
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from conftest import CHROMIUM_ARGS  # noqa: E402

link, seconds, home, video = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", env={**os.environ, "HOME": home},
                                         args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={video}"])
    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    page.goto(link)
    page.fill("#guest-name", "Fiona Firewall")
    page.click("#enter-studio")
    page.wait_for_selector("#studio:not([hidden])", timeout=30_000)
    print(json.dumps({"entered": True}), flush=True)
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(1)
    browser.close()
