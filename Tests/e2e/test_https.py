"""The studio over HTTPS, as on a real server: Chromium reaches Tally by name with a
certificate from a CA the test trusts, is sent from http:// to https://, signs up, passes the
green room into the studio over WSS, and gets its camera back over DTLS."""
import os
import time

import requests
from conftest import CHROMIUM_ARGS, wait_in_page
from test_echo_chromium import CONNECT, STATS
from testca import TestCA

NAME = "studio.tally.test"


def test_chromium_runs_the_studio_over_https(start_tally, tmp_path):
    from playwright.sync_api import sync_playwright
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue(NAME)
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_HTTPS_PORT": "0", "TALLY_TLS_CERT": str(cert), "TALLY_TLS_KEY": str(key)})
    https_port, http_port = tally.url.rsplit(":", 1)[1], tally.http_url.rsplit(":", 1)[1]

    # Plain HTTP only redirects; HTTPS is served with the test CA's certificate and HSTS.
    redirect = requests.get(f"http://127.0.0.1:{http_port}/dashboard.html?x=1", headers={"Host": f"{NAME}:{http_port}"}, allow_redirects=False, timeout=5)
    assert redirect.status_code == 301 and redirect.headers["Location"] == f"https://{NAME}:{https_port}/dashboard.html?x=1"
    post = requests.post(f"http://127.0.0.1:{http_port}/api/auth/login", headers={"Host": NAME}, json={}, allow_redirects=False, timeout=5)
    assert post.status_code == 308
    # The certificate names the studio, not 127.0.0.1: Chromium checks it below, by name.
    health = requests.get(tally.url + "/api/health", verify=False, timeout=5)
    assert health.status_code == 200 and health.headers["Strict-Transport-Security"] == "max-age=31536000"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", env={**os.environ, "HOME": str(ca.browser_home())},
                                             args=CHROMIUM_ARGS + [f"--host-resolver-rules=MAP {NAME} 127.0.0.1"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            page = context.new_page()
            page.goto(f"http://{NAME}:{http_port}/")
            assert page.url == f"https://{NAME}:{https_port}/"
            assert page.evaluate("window.isSecureContext") is True
            page.click("#tab-register")
            page.fill("#register-name", "Tess Ellis")
            page.fill("#register-email", f"tess-{time.time_ns()}@example.com")
            page.fill("#register-password", "correct horse battery")
            page.click("#register button[type=submit]")
            page.wait_for_url("**/dashboard.html")
            refresh = [c for c in context.cookies() if c["name"] == "tally_refresh"]
            assert refresh and refresh[0]["secure"] and refresh[0]["httpOnly"], refresh

            page.fill("#title", "Secure show")
            page.keyboard.press("Enter")
            page.wait_for_selector("#broadcasts li")
            page.click("#broadcasts a:has-text('Open studio')")
            wait_in_page(page, "document.querySelector('#camera').options.length > 0")
            page.click("#enter-studio")
            page.wait_for_selector("#studio:not([hidden])", timeout=20_000)
            page.wait_for_selector("#backstage [data-participant]")
            assert page.evaluate("[...performance.getEntriesByType('resource')].every(e => e.name.startsWith('https://'))")

            token = page.evaluate("JSON.parse(localStorage.getItem('tally.session')).access_token")
            result = page.evaluate(CONNECT, {"token": token, "tcpOnly": False})
            assert result["status"] == 201, result
            deadline = time.time() + 20
            stats = page.evaluate(STATS)
            while time.time() < deadline and stats["videoFrames"] < 30:
                time.sleep(0.5)
                stats = page.evaluate(STATS)
            assert stats["videoFrames"] >= 30 and stats["audioPackets"] > 50, stats
        finally:
            browser.close()
