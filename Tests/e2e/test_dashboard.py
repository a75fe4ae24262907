"""The dashboard's destinations: a test publish with the stored key and its result, a
destination switched off for the show (its key kept), and each one's status while live."""
from pathlib import Path

import requests

from conftest import CHROMIUM_ARGS, wait_for
from nginx_rtmp import NginxRTMP
from test_studio import add_destination, create_broadcast, shoot, signed_up

ROOT = Path(__file__).resolve().parents[2]


def test_the_dashboard_tests_switches_and_follows_destinations(start_tally, tmp_path):
    from playwright.sync_api import sync_playwright
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_WEB_DIR": str(ROOT / "web")})
    good, bad = NginxRTMP(tmp_path / "good"), NginxRTMP(tmp_path / "bad", accept=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            host = signed_up(browser, tally.url, "Dana Host")
            create_broadcast(host, "Dashboard show")
            add_destination(host, good.url(), "good-key-1234")
            add_destination(host, bad.url(), "bad-key-5678")
            item = lambda hint: host.locator(f"#broadcasts details li:has-text('{hint}')")

            # A test publishes for real with the stored key and says how it went.
            item("1234").locator("button:has-text('Test')").click()
            assert wait_for(lambda: "Works" in item("1234").locator(".test-result").inner_text(), 20), item("1234").inner_text()
            item("5678").locator("button:has-text('Test')").click()
            assert wait_for(lambda: "rejected" in item("5678").locator(".test-result").inner_text(), 20), item("5678").inner_text()
            assert good.publishes("good-key-1234") == 1

            # Switched off: kept with its key, left out when the show goes live.
            item("5678").locator("input[type=checkbox]").uncheck()
            session = host.evaluate("JSON.parse(localStorage.getItem('tally.session'))")
            headers = {"Authorization": f"Bearer {session['access_token']}"}
            broadcast = requests.get(tally.url + "/api/broadcasts", headers=headers, timeout=10).json()["broadcasts"][0]["id"]
            destinations = lambda: requests.get(f"{tally.url}/api/broadcasts/{broadcast}/destinations", headers=headers, timeout=10).json()["destinations"]
            assert wait_for(lambda: [d["enabled"] for d in destinations()] == [True, False], 10)
            shoot(host, "dashboard-destinations")

            # Live: the enabled one's status follows in the dashboard; the other was never pushed.
            assert requests.post(f"{tally.url}/api/broadcasts/{broadcast}/start", headers=headers, timeout=30).status_code == 200
            assert wait_for(lambda: item("1234").get_attribute("data-status") == "live", 20), item("1234").inner_text()
            assert item("5678").get_attribute("data-status") == "idle"
            assert good.publishes("good-key-1234") == 2
            requests.post(f"{tally.url}/api/broadcasts/{broadcast}/end", headers=headers, timeout=30)
        finally:
            browser.close()
            good.stop()
            bad.stop()
