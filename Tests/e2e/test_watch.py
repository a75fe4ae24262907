"""The public watch page: a viewer with only the share link sees the program live over
WHEP in Chromium and is told when it has ended; the link opens nothing else, and the host
can withdraw it."""
import time

import requests
from conftest import wait_for, wait_in_page
from test_accessibility import audit
from test_program import Studio


def test_a_viewer_with_the_share_link_watches_live_and_sees_the_end(webrtc_tally, chromium):
    studio = Studio(webrtc_tally, {})
    try:
        share = requests.post(f"{webrtc_tally.url}/api/broadcasts/{studio.id}/shares", headers=studio.headers, json={}, timeout=10)
        assert share.status_code == 201, share.text
        link = share.json()["url"]
        assert link.startswith(f"{webrtc_tally.url}/watch/{studio.id}?share=")
        token = share.json()["token"]
        # The link opens the watch page and nothing else.
        assert requests.get(f"{webrtc_tally.url}/api/broadcasts/{studio.id}", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401
        assert requests.get(f"{webrtc_tally.url}/api/watch/{studio.id}", timeout=10).status_code == 401
        assert requests.get(f"{webrtc_tally.url}/api/watch/{studio.id}?share=forged", timeout=10).status_code == 401

        page = chromium.new_context(viewport={"width": 390, "height": 844}).new_page()
        page.goto(link)
        wait_in_page(page, "document.querySelector('#watch-state').textContent === 'Starting soon'", timeout=10_000)
        reports = audit(page, "watch page")
        assert not reports, "\n\n".join(reports)

        studio.go_live()
        wait_in_page(page, "window.watch?.mode === 'whep'", timeout=20_000)
        frames = """async () => { let n = 0; (await window.watch.pc.getStats()).forEach(s => {
            if (s.type === 'inbound-rtp' && s.kind === 'video') n = s.framesDecoded || 0; }); return n; }"""
        assert wait_for(lambda: page.evaluate(frames) > 30, 30), page.evaluate(frames)
        assert page.evaluate("document.querySelector('#program').videoWidth") == 1280
        wait_in_page(page, "document.querySelector('#watch-state').textContent === 'Live'")
        wait_in_page(page, "document.querySelector('#watch-viewers').textContent === '1 watching'", timeout=10_000)

        assert studio.end().status_code == 200
        wait_in_page(page, "document.querySelector('#watch-state').textContent === 'Ended'", timeout=10_000)
        assert "has ended" in page.inner_text("#watch-message")

        # Withdrawn, the link stops working.
        share_id = share.json()["id"]
        assert requests.delete(f"{webrtc_tally.url}/api/broadcasts/{studio.id}/shares/{share_id}", headers=studio.headers, timeout=10).status_code == 204
        reply = requests.get(f"{webrtc_tally.url}/api/watch/{studio.id}?share={token}", timeout=10)
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "share_revoked"
    finally:
        studio.end()
        studio.close()
