"""The program decodes each guest from the smallest simulcast layer that fills their tile: four
Chromium guests publishing three layers each, on a 2×2 grid, are decoded at 640×360 or less,
and a guest alone on the stage goes back to their top layer."""
import time

import requests

from conftest import wait_for
from nginx_rtmp import NginxRTMP
from test_whip_whep import broadcast, chromium_publish

TOP_LAYER_HEIGHT = """async () => { let height = 0; (await window.publisher.getStats()).forEach(s => {
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid === 'h') height = s.frameHeight || 0; }); return height; }"""


def decoded_by_height(url):
    """Pictures the program decoded, by the height class /metrics counts them in."""
    counts = {}
    for line in requests.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("tally_program_decoded_frames_by_height_total{"):
            up_to = line.split('up_to="', 1)[1].split('"', 1)[0]
            counts[up_to] = float(line.split()[-1])
    return counts


def test_four_simulcast_guests_in_a_grid_are_decoded_at_their_tile_size(webrtc_tally, chromium, tmp_path):
    token, broadcast_id = broadcast(webrtc_tally)
    headers = {"Authorization": f"Bearer {token}"}
    receiver = NginxRTMP(tmp_path / "receiver")
    try:
        reply = requests.post(f"{webrtc_tally.url}/api/broadcasts/{broadcast_id}/destinations", headers=headers, timeout=10,
                              json={"platform": "custom", "name": "Receiver", "rtmp_url": receiver.url(), "stream_key": "layers-key"})
        assert reply.status_code == 201, reply.text
        pages = [chromium.new_page() for _ in range(4)]
        guests = [chromium_publish(page, webrtc_tally, token, broadcast_id) for page in pages]
        debug = lambda: requests.get(f"{webrtc_tally.url}/api/broadcasts/{broadcast_id}/debug", headers=headers, timeout=10).json()
        # Chromium starts its top layer once our feedback's estimate allows it.
        assert wait_for(lambda: all(page.evaluate(TOP_LAYER_HEIGHT) > 360 for page in pages), 40), \
            [page.evaluate(TOP_LAYER_HEIGHT) for page in pages]

        def stage(participants):
            reply = requests.put(f"{webrtc_tally.url}/api/broadcasts/{broadcast_id}/stage", headers=headers, timeout=10,
                                 json={"layout": "grid", "participants": participants, "banner": None})
            assert reply.status_code == 200, reply.text

        stage(guests)
        assert requests.post(f"{webrtc_tally.url}/api/broadcasts/{broadcast_id}/start", headers=headers, timeout=30).status_code == 200
        grid = lambda: {tile["participant_id"]: tile["height"] for tile in debug()["decoded_tiles"]}
        assert wait_for(lambda: len(grid()) == 4 and all(0 < height <= 360 for height in grid().values()), 30), grid()

        # Over five seconds every picture decoded is 360 high or less, and there are plenty.
        before = decoded_by_height(webrtc_tally.url)
        assert wait_for(lambda: receiver_is_live(webrtc_tally.url, broadcast_id, headers), 20)
        time.sleep(5)
        after = decoded_by_height(webrtc_tally.url)
        grown = {up_to: after.get(up_to, 0) - before.get(up_to, 0) for up_to in after}
        assert grown.get("180", 0) + grown.get("360", 0) > 4 * 5 * 10, grown
        assert all(grown.get(up_to, 0) == 0 for up_to in ("540", "720", "1080", "larger")), grown

        # Alone on the stage, a guest fills the picture: the program takes their top layer again.
        # The others leave, so that Chromium, short of CPU with four encoders, sends 720p again.
        for page in pages[1:]:
            page.close()
        stage(guests[:1])
        assert wait_for(lambda: grid().get(guests[0], 0) > 360, 45), (grid(), pages[0].evaluate(TOP_LAYER_HEIGHT))
        assert requests.post(f"{webrtc_tally.url}/api/broadcasts/{broadcast_id}/end", headers=headers, timeout=30).status_code == 200
    finally:
        receiver.stop()


def receiver_is_live(url, broadcast_id, headers):
    reply = requests.get(f"{url}/api/broadcasts/{broadcast_id}/destinations", headers=headers, timeout=10)
    return reply.status_code == 200 and all(entry["status"] == "live" for entry in reply.json()["destinations"])
