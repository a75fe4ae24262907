"""Simulcast under congestion: three Chromium processes in one broadcast, one publishing three
layers and two playing. Throttling one player's downlink through the DevTools protocol sends
it down to a lower layer and, once lifted, back up, while the other player stays on top.

Each peer runs in its own browser process because network emulation applies to a whole
browser's WebRTC sockets."""
import time

import requests

from conftest import CHROMIUM_ARGS, wait_for
from test_whip_whep import WHEP_PLAY, broadcast, chromium_publish

INBOUND = """async () => { let out = null; (await window.pc.getStats()).forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out = {width: s.frameWidth || 0, frames: s.framesDecoded || 0,
        freezes: s.freezeCount || 0, bytes: s.bytesReceived || 0}; }); return out; }"""

TOP_LAYER_BYTES = """async () => { let bytes = 0; (await window.publisher.getStats()).forEach(s => {
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid === 'h') bytes = s.bytesSent; }); return bytes; }"""

# What the publisher's top layer is right now: Chromium scales all its layers down when its
# CPU is short (three browsers on two cores), so "the top layer" is not always 1280 wide.
TOP_LAYER = """async () => { let out = {width: 0}; (await window.publisher.getStats()).forEach(s => {
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid === 'h') out = {width: s.frameWidth || 0,
        limitation: s.qualityLimitationReason}; }); return out; }"""




# A link far faster than anything the test sends: emulation on, nothing throttled.
UNLIMITED = 1_000_000_000


def emulate(devtools, bits_per_second):
    devtools.send("Network.emulateNetworkConditions", {"offline": False, "latency": 10,
                                                       "downloadThroughput": bits_per_second / 8, "uploadThroughput": -1})


def layer_gauges(url, token, broadcast_id):
    """The players' layers and estimates, from the owner's debug API."""
    reply = requests.get(f"{url}/api/broadcasts/{broadcast_id}/debug", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return [t for t in reply.json()["transports"] if t["direction"] == "send"]


def test_throttled_subscriber_drops_a_layer_and_recovers(webrtc_tally):
    from playwright.sync_api import sync_playwright
    token, broadcast_id = broadcast(webrtc_tally)
    with sync_playwright() as playwright:
        browsers = [playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS) for _ in range(3)]
        try:
            publisher, steady, throttled = (browser.new_page() for browser in browsers)
            for page in (steady, throttled):
                page.goto(webrtc_tally.url + "/api/health")
            participant = chromium_publish(publisher, webrtc_tally, token, broadcast_id)
            # Chromium turns its top layer on once the bandwidth estimate from our feedback allows.
            assert wait_for(lambda: publisher.evaluate(TOP_LAYER_BYTES) > 50_000, 30), "the top layer never started"

            # Chromium attaches its emulated link to a WebRTC socket only if emulation is on when
            # the socket opens; later changes of the conditions then apply to it at once.
            devtools = throttled.context.new_cdp_session(throttled)
            devtools.send("Network.enable")
            emulate(devtools, UNLIMITED)
            for page in (steady, throttled):
                played = page.evaluate(WHEP_PLAY, {"token": token, "path": f"/whep/{broadcast_id}/{participant}"})
                assert played["status"] == 201, played
            for page in (steady, throttled):
                assert wait_for(lambda: (page.evaluate(INBOUND) or {}).get("width", 0) >= 1280, 40), \
                    (page.evaluate(INBOUND), layer_gauges(webrtc_tally.url, token, broadcast_id))

            # The top layer's bitrate as the publisher sends it, measured over 4 s.
            first = publisher.evaluate(TOP_LAYER_BYTES)
            time.sleep(4)
            top_bitrate = (publisher.evaluate(TOP_LAYER_BYTES) - first) * 8 / 4
            assert top_bitrate > 300_000, top_bitrate
            limit = 0.6 * top_bitrate

            emulate(devtools, limit)
            assert wait_for(lambda: 0 < (throttled.evaluate(INBOUND) or {}).get("width", 0) < 1280, 40), \
                (throttled.evaluate(INBOUND), layer_gauges(webrtc_tally.url, token, broadcast_id))
            lowered = throttled.evaluate(INBOUND)
            assert steady.evaluate(INBOUND)["width"] >= 1280

            def on_top_layer(page):
                width = (page.evaluate(INBOUND) or {}).get("width", 0)
                return width > 0 and width >= publisher.evaluate(TOP_LAYER)["width"]

            emulate(devtools, UNLIMITED)
            # Probes back off to one per 8 s while the throttle holds; on a loaded machine the
            # first ones after it lifts can still measure the old queue draining.
            assert wait_for(lambda: on_top_layer(throttled), 90), \
                (throttled.evaluate(INBOUND), publisher.evaluate(TOP_LAYER), layer_gauges(webrtc_tally.url, token, broadcast_id))
            after = throttled.evaluate(INBOUND)
            assert after["frames"] > lowered["frames"], (lowered, after)
            # The steady player may dip for a moment on a loaded machine (its own estimate, or the
            # publisher briefly shrinking its layers), but it is on the top layer again without throttling.
            assert wait_for(lambda: on_top_layer(steady), 30), \
                (steady.evaluate(INBOUND), publisher.evaluate(TOP_LAYER), layer_gauges(webrtc_tally.url, token, broadcast_id))
            # The probes that brought it back are on /metrics.
            gauges = layer_gauges(webrtc_tally.url, token, broadcast_id)
            assert any(t["estimate_bps"] for t in gauges), gauges
        finally:
            for browser in browsers:
                browser.close()
