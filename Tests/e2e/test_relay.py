"""Media across nodes: a participant who publishes on one node is played on another, through
the node-to-node relay (UDP, sealed with keys both nodes derive from the shared secret)."""
import subprocess

import requests

from conftest import CHROMIUM_ARGS, wait_for, wait_in_page
from nginx_rtmp import NginxRTMP
from test_program import BLUE, RED, close_to, grab_frame, publish
from test_studio import add_destination, create_broadcast, enter_as_guest, signed_up
from tallytest import DATABASE_URL, operator_token, requires_postgres
from test_whip_whep import WHEP_PLAY, BackgroundLoop, broadcast, chromium_publish

SECRET = "a shared secret for the relay test"

INBOUND = """async () => { const out = {}; (await window.pc.getStats()).forEach(s => {
    if (s.type === 'inbound-rtp') out[s.kind] = {frames: s.framesDecoded || 0, width: s.frameWidth || 0, packets: s.packetsReceived || 0}; });
    return out; }"""


def nodes(start_tally, redis_server, count=2):
    """Nodes started with only the settings a deployment names: database, registry, secret."""
    shared = {"TALLY_DATABASE_URL": DATABASE_URL, "TALLY_REDIS_URL": redis_server.url, "TALLY_SECRET_KEY": SECRET, "TALLY_HOST": "127.0.0.1"}
    started = [start_tally(shared, wait=False) for _ in range(count)]
    for node in started:
        node.wait_ready()
    return started


def assert_red_left_blue_right(stream_url, context=""):
    """Waits until the program at `stream_url` shows red in the left grid tile and blue in the right."""
    grabbed = []

    def shows_both():
        grabbed.append(grab_frame(stream_url))
        return close_to(grabbed[-1][360, 320], RED) and close_to(grabbed[-1][360, 960], BLUE)

    assert wait_for(shows_both, 40, 1), (grabbed[-1][360, 320], grabbed[-1][360, 960], context)


def stage_both_and_go_live(host, names):
    """From the host's studio: puts each of `names` on stage and goes live to the one destination."""
    for name in names:
        host.click(f"button[aria-label='Add {name} to stage']")
        host.wait_for_selector(f"button[aria-label='Remove {name} from stage']")
    host.once("dialog", lambda dialog: dialog.accept())
    host.click("#go-live")
    assert wait_for(lambda: host.locator("#destinations li[data-status='live']").count() == 1, 20), host.inner_text("#destinations")


@requires_postgres
def test_a_participant_publishing_on_one_node_plays_over_whep_on_another(start_tally, redis_server):
    from playwright.sync_api import sync_playwright
    first, second = nodes(start_tally, redis_server)
    token, broadcast_id = broadcast(first)
    with sync_playwright() as playwright:
        browsers = [playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS) for _ in range(2)]
        try:
            publisher, player = (browser.new_page() for browser in browsers)
            participant = chromium_publish(publisher, first, token, broadcast_id)
            player.goto(second.url + "/api/health")
            # The publisher's node knows the participant once its media flows.
            def play():
                result = player.evaluate(WHEP_PLAY, {"token": token, "path": f"/whep/{broadcast_id}/{participant}"})
                return result if result["status"] == 201 else None
            played = wait_for(play, 20, interval=1)
            assert played, (second.logs()[-2000:], first.logs()[-2000:])
            stats = lambda: player.evaluate(INBOUND) or {}
            assert wait_for(lambda: stats().get("video", {}).get("frames", 0) > 60 and stats().get("audio", {}).get("packets", 0) > 100, 30), \
                (stats(), second.logs()[-3000:])
            assert stats()["video"]["width"] > 0
            assert "relay in opened" in second.logs() and "relay out opened" in first.logs()
        finally:
            for browser in browsers:
                browser.close()


@requires_postgres
def test_a_program_composes_a_participant_who_publishes_on_another_node(start_tally, redis_server, tmp_path):
    """Red publishes to the first node, blue to the second; the program runs on the first and
    shows both, checked by pixels at an nginx-rtmp receiver."""
    first, second = nodes(start_tally, redis_server)
    receiver = NginxRTMP(tmp_path / "receiver")
    loop = BackgroundLoop()
    peers = []
    try:
        token = first.register()
        headers = {"Authorization": f"Bearer {token}"}
        broadcast_id = requests.post(first.url + "/api/broadcasts", json={"title": "Across nodes"}, headers=headers, timeout=10).json()["id"]
        reply = requests.post(f"{first.url}/api/broadcasts/{broadcast_id}/destinations", headers=headers, timeout=10,
                              json={"platform": "custom", "name": "Receiver", "rtmp_url": receiver.url(), "stream_key": "relay-key"})
        assert reply.status_code == 201, reply.text
        participants = []
        for node, rgb in ((first, RED), (second, BLUE)):
            pc, participant = loop.run(publish(node.url, token, broadcast_id, rgb))
            peers.append(pc)
            participants.append(participant)
        reply = requests.put(f"{second.url}/api/broadcasts/{broadcast_id}/stage", headers=headers, timeout=10,
                             json={"layout": "grid", "participants": participants, "banner": None})
        assert reply.status_code == 200, reply.text
        assert requests.post(f"{first.url}/api/broadcasts/{broadcast_id}/start", headers=headers, timeout=30).status_code == 200
        assert_red_left_blue_right(f"{receiver.url()}/relay-key", first.logs()[-3000:])
        assert "relay in opened" in first.logs() and "relay out opened" in second.logs()
        # The relay's packets are counted on both ends.
        counted = lambda node, name: sum(float(line.split()[-1]) for line in requests.get(node.url + "/metrics", timeout=10).text.splitlines()
                                         if line.startswith(name))
        assert counted(first, "tally_relay_packets_received_total") > 100
        assert counted(second, "tally_relay_packets_sent_total") > 100
        assert requests.post(f"{first.url}/api/broadcasts/{broadcast_id}/end", headers=headers, timeout=30).status_code == 200
    finally:
        for pc in peers:
            loop.run(pc.close())
        loop.close()
        receiver.stop()


HEARD_AND_SEEN = """async (name) => { const entry = [...window.studio.state.participants.values()].find(e => e.info.name === name);
    const out = {frames: 0, energy: 0}; (await entry?.subscription?.pc.getStats())?.forEach(s => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.frames = s.framesDecoded || 0;
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.energy = s.totalAudioEnergy || 0; });
    return out; }"""


def camera(tmp_path, name, rgb):
    """A y4m file a browser shows as its camera: one flat colour."""
    path = tmp_path / f"{name}.y4m"
    colour = "0x%02X%02X%02X" % rgb
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=c={colour}:s=640x360:r=30", "-t", "3", "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    return path


@requires_postgres
def test_a_studio_with_the_host_on_one_node_and_a_guest_on_another_goes_live_with_both(start_tally, redis_server, tmp_path):
    from playwright.sync_api import sync_playwright
    first, second = nodes(start_tally, redis_server)
    receiver = NginxRTMP(tmp_path / "receiver")
    with sync_playwright() as playwright:
        launch = lambda path: playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                         args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={path}"])
        browsers = [launch(camera(tmp_path, "host", RED)), launch(camera(tmp_path, "guest", BLUE))]
        try:
            host = signed_up(browsers[0], first.url, "Hana Host")
            create_broadcast(host, "Two nodes")
            add_destination(host, receiver.url(), "two-nodes-key")
            host.click("#broadcasts button.invite")
            host.wait_for_selector("#broadcasts button.invite[data-link]")
            link = host.get_attribute("#broadcasts button.invite", "data-link").replace(first.url, second.url)
            assert link.startswith(second.url), link
            host.click("#broadcasts a:has-text('Open studio')")
            wait_in_page(host, "document.querySelector('#camera').options.length > 0")
            host.click("#enter-studio")
            host.wait_for_selector("#studio:not([hidden])", timeout=20_000)
            guest = enter_as_guest(browsers[1], link, "Gina Guest")
            assert guest.url.startswith(second.url)

            # Each sees and hears the other, though each reached another node.
            for page, other in ((host, "Gina Guest"), (guest, "Hana Host")):
                assert wait_for(lambda: (lambda m: m["frames"] > 30 and m["energy"] > 0)(page.evaluate(HEARD_AND_SEEN, other)), 40), \
                    (other, page.evaluate(HEARD_AND_SEEN, other), first.logs()[-2000:], second.logs()[-2000:])

            stage_both_and_go_live(host, ("Hana Host", "Gina Guest"))
            assert wait_for(lambda: guest.inner_text("#status") == "live")
            assert_red_left_blue_right(f"{receiver.url()}/two-nodes-key")
        finally:
            for browser in browsers:
                browser.close()
            receiver.stop()


def operator_nodes(node, token):
    reply = requests.get(node.url + "/api/nodes", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert reply.status_code == 200, reply.text
    return {entry["url"]: entry for entry in reply.json()["nodes"]}


@requires_postgres
def test_programs_go_to_the_least_loaded_node_and_a_full_cluster_says_so(start_tally, redis_server, tmp_path):
    """Three nodes, one program each at most. Every show is started through the first node:
    the first runs there, the next go where there is room, the program plays over WHEP
    through the node that placed it, and a fourth is refused with a clear error."""
    from playwright.sync_api import sync_playwright
    shared = {"TALLY_DATABASE_URL": DATABASE_URL, "TALLY_REDIS_URL": redis_server.url, "TALLY_SECRET_KEY": SECRET, "TALLY_HOST": "127.0.0.1",
              "TALLY_MAX_LIVE_PROGRAMS": "1"}
    started = [start_tally(shared, wait=False) for _ in range(3)]
    for node in started:
        node.wait_ready()
    first = started[0]
    operator = operator_token(SECRET, tmp_path / "cli")
    assert wait_for(lambda: len(operator_nodes(first, operator)) == 3, 10)
    token = first.register()
    headers = {"Authorization": f"Bearer {token}"}
    shows = [requests.post(first.url + "/api/broadcasts", json={"title": f"Show {n}"}, headers=headers, timeout=10).json()["id"] for n in range(4)]

    def live_programs():
        return {url: entry["load"]["live_programs"] for url, entry in operator_nodes(first, operator).items()}

    for count, show in enumerate(shows[:3], start=1):
        reply = requests.post(f"{first.url}/api/broadcasts/{show}/start", headers=headers, timeout=60)
        assert reply.status_code == 200, reply.text
        assert wait_for(lambda: sum(live_programs().values()) == count, 10), live_programs()
    # One program on each node: the first node kept the first and placed the others.
    assert sorted(live_programs().values()) == [1, 1, 1], live_programs()
    assert "program placed on another node" in first.logs()

    refused = requests.post(f"{first.url}/api/broadcasts/{shows[3]}/start", headers=headers, timeout=60)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "server_at_capacity", refused.text
    assert requests.get(f"{first.url}/api/broadcasts/{shows[3]}", headers=headers, timeout=10).json()["status"] == "scheduled"

    # A program placed elsewhere plays over WHEP through the node the host uses, by relay.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(first.url + "/api/health")
            played = wait_for(lambda: (lambda result: result if result["status"] == 201 else None)(
                page.evaluate(WHEP_PLAY, {"token": token, "path": f"/whep/{shows[2]}"})), 20, 1)
            assert played, first.logs()[-2000:]
            assert wait_for(lambda: page.evaluate("window.played.videoWidth") == 1280, 30), first.logs()[-2000:]
            stats = lambda: page.evaluate(INBOUND) or {}
            assert wait_for(lambda: stats().get("video", {}).get("frames", 0) > 30 and stats().get("audio", {}).get("packets", 0) > 50, 30), stats()
        finally:
            browser.close()
    for show in shows[:3]:
        assert requests.post(f"{first.url}/api/broadcasts/{show}/end", headers=headers, timeout=30).status_code == 200
    assert wait_for(lambda: sum(live_programs().values()) == 0, 15), live_programs()
