"""Loss recovery toward subscribers: Chromium publishes, two Chromium pages play, and tally
drops 5 % of the RTP it sends one of them (a test hook in the transport, since this machine
has no netem). NACKs from that page are answered with RTX, and its video freezes no more
than twice as often as the loss-free page's."""
import time

import pytest
import requests

from test_whip_whep import WHEP_PLAY, broadcast, chromium_publish

PLAYED = """async () => { let out = null; (await window.pc.getStats()).forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out = {frames: s.framesDecoded || 0, freezes: s.freezeCount || 0,
        lost: s.packetsLost || 0, nacks: s.nackCount || 0, retransmitted: s.retransmittedPacketsReceived || 0,
        width: s.frameWidth || 0}; }); return out; }"""


@pytest.fixture
def lossy_tally(start_tally):
    return start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_TEST_HOOKS": "1"})


def counter(url, name):
    metrics = requests.get(url + "/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name))


def test_lossy_subscriber_is_repaired_with_rtx(chromium, lossy_tally):
    token, broadcast_id = broadcast(lossy_tally)
    participant = chromium_publish(chromium.new_page(), lossy_tally, token, broadcast_id)

    pages = {}
    for name, query in (("clean", ""), ("lossy", "?test_egress_loss=0.05")):
        page = chromium.new_context().new_page()
        page.goto(lossy_tally.url + "/api/health")
        played = page.evaluate(WHEP_PLAY, {"token": token, "path": f"/whep/{broadcast_id}/{participant}{query}"})
        assert played["status"] == 201, played
        pages[name] = page
    deadline = time.time() + 30
    while time.time() < deadline and not all((page.evaluate(PLAYED) or {}).get("frames", 0) > 30 for page in pages.values()):
        time.sleep(0.5)

    retransmitted_before = counter(lossy_tally.url, "tally_sfu_retransmitted_packets_total")
    start = {name: page.evaluate(PLAYED) for name, page in pages.items()}
    time.sleep(20)
    end = {name: page.evaluate(PLAYED) for name, page in pages.items()}
    delta = {name: {key: end[name][key] - start[name][key] for key in start[name]} for name in pages}

    assert delta["lossy"]["nacks"] > 20, delta
    assert delta["lossy"]["retransmitted"] > 20, delta
    assert counter(lossy_tally.url, "tally_sfu_retransmitted_packets_total") - retransmitted_before > 20
    assert delta["clean"]["frames"] > 300, delta
    # Video keeps flowing: a loss that RTX does not repair in time costs a frame, not the stream.
    assert delta["lossy"]["frames"] > 0.6 * delta["clean"]["frames"], delta
    # Twice the clean page's freezes, with a floor: a clean page usually has none, and on a
    # loaded 2-core machine a lost packet whose retransmission is lost too can stall a frame.
    assert delta["lossy"]["freezes"] <= max(2 * delta["clean"]["freezes"], 2), delta


def test_loss_injection_is_refused_without_test_hooks(chromium, webrtc_tally):
    token, broadcast_id = broadcast(webrtc_tally)
    participant = chromium_publish(chromium.new_page(), webrtc_tally, token, broadcast_id)
    reply = requests.post(f"{webrtc_tally.url}/whep/{broadcast_id}/{participant}?test_egress_loss=0.05",
                          data="v=0\r\n", headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "test_hooks_disabled"
