"""A live broadcast outlives its home node: the node is killed or drained, another one takes
the broadcast over, its destination receives the program again and its recording goes on;
and any node is a front door to a program that runs on another."""
import signal
import time

import pytest
import requests

from nginx_rtmp import NginxRTMP
from test_program import close_to, grab_frame
from tallytest import DATABASE_URL, eventually, operator_token, requires_postgres

KEY = "failover-key-4Q"
# The studio's accent colour, which the compositor draws the banner's band in.
ACCENT = (37, 99, 235)


@pytest.fixture
def receiver(tmp_path):
    """The nginx-rtmp standing in for a platform, the broadcasts' one destination."""
    nginx = NginxRTMP(tmp_path / "receiver")
    yield nginx
    nginx.stop()


def two_nodes(start_tally, redis_server, secret, home_env=None):
    """Two nodes on the test's PostgreSQL and Redis; the first with `home_env` besides."""
    shared = {"TALLY_DATABASE_URL": DATABASE_URL, "TALLY_REDIS_URL": redis_server.url, "TALLY_SECRET_KEY": secret}
    nodes = [start_tally({**shared, **(home_env or {})}, wait=False), start_tally(shared, wait=False)]
    for node in nodes:
        node.wait_ready()
    return nodes


def live_on(node, receiver, title):
    """A recorded broadcast with the receiver as its destination, live on `node`, the
    receiver getting it: (its owner's headers, its id)."""
    headers = {"Authorization": f"Bearer {node.register()}"}
    broadcast = requests.post(node.url + "/api/broadcasts", json={"title": title, "settings": {"record": True}}, headers=headers, timeout=10).json()["id"]
    reply = requests.post(f"{node.url}/api/broadcasts/{broadcast}/destinations", headers=headers, timeout=10,
                          json={"platform": "custom", "name": "Receiver", "rtmp_url": receiver.url(), "stream_key": KEY})
    assert reply.status_code == 201, reply.text
    assert requests.post(f"{node.url}/api/broadcasts/{broadcast}/start", headers=headers, timeout=30).status_code == 200
    assert eventually(lambda: receiver.publishes(KEY) == 1, 15), "the home node never reached the destination"
    return headers, broadcast


@requires_postgres
def test_killing_the_home_node_rehomes_a_live_broadcast(start_tally, redis_server, receiver):
    home, other = two_nodes(start_tally, redis_server, "a shared secret for the failover test")
    headers, broadcast = live_on(home, receiver, "Failover")
    time.sleep(3)

    # The home node dies without a word: its lease lapses (10 s) and the other node adopts the show.
    home.process.kill()
    home.process.wait()
    killed = time.time()
    assert eventually(lambda: receiver.publishes(KEY) == 2, 20), f"the destination did not get the program back:\n{other.logs()[-3000:]}"
    assert time.time() - killed <= 20
    assert "re-homed on this node" in other.logs()

    show = requests.get(f"{other.url}/api/broadcasts/{broadcast}", headers=headers, timeout=10).json()
    assert show["status"] == "live"
    parts = lambda: sorted((r for r in requests.get(other.url + "/api/recordings", headers=headers, timeout=10).json()["recordings"]
                            if r["broadcast_id"] == broadcast), key=lambda r: r["part"])
    first, second = parts()
    assert first["part"] == 1 and first["status"] == "ready" and first["size_bytes"] > 0, first
    assert second["part"] == 2 and second["status"] == "recording", second
    assert eventually(lambda: parts()[1]["size_bytes"] > 0, 10)

    # The new home ends the show as if it had always run it.
    assert requests.post(f"{other.url}/api/broadcasts/{broadcast}/end", headers=headers, timeout=30).status_code == 200
    assert [r["status"] for r in parts()] == ["ready", "ready"]


@requires_postgres
def test_any_node_changes_the_stage_of_and_ends_a_program_homed_on_another(start_tally, redis_server, receiver):
    home, door = two_nodes(start_tally, redis_server, "a shared secret for the front-door test")
    headers, broadcast = live_on(home, receiver, "Front door")

    # The stage is changed through the other node: the home's program shows it (the banner's
    # accent band, bottom left of the 720p picture).
    band = lambda: grab_frame(f"{receiver.url()}/{KEY}")[648, 80]
    assert not close_to(band(), ACCENT)
    reply = requests.put(f"{door.url}/api/broadcasts/{broadcast}/stage", headers=headers, timeout=10,
                         json={"layout": "solo", "participants": [], "banner": {"text": "Changed elsewhere"}})
    assert reply.status_code == 200, reply.text
    assert eventually(lambda: "program update asked by another node" in home.logs(), 10), home.logs()[-2000:]
    assert close_to(band(), ACCENT), "the banner set through the other node is not in the program"

    # Ended through the other node: the home stops its program, closes the recording and lets the broadcast go.
    assert requests.post(f"{door.url}/api/broadcasts/{broadcast}/end", headers=headers, timeout=30).status_code == 200
    assert eventually(lambda: "program stop asked by another node" in home.logs() and "program stopped" in home.logs(), 10), home.logs()[-2000:]
    recording = lambda: next(r for r in requests.get(door.url + "/api/recordings", headers=headers, timeout=10).json()["recordings"]
                             if r["broadcast_id"] == broadcast)
    assert eventually(lambda: recording()["status"] == "ready", 10), recording()
    assert recording()["size_bytes"] > 0
    time.sleep(8)
    assert receiver.publishes(KEY) == 1, "the ended broadcast was taken over by another node"
    assert "re-homed" not in door.logs()


@requires_postgres
def test_sigterm_drains_until_the_deadline_then_hands_the_show_over(start_tally, redis_server, receiver, tmp_path):
    secret = "a shared secret for the drain test"
    home, other = two_nodes(start_tally, redis_server, secret, home_env={"TALLY_DRAIN_SECONDS": "5"})
    operator = {"Authorization": f"Bearer {operator_token(secret, tmp_path / 'cli')}"}
    listed = lambda node: {n["url"]: n for n in requests.get(node.url + "/api/nodes", headers=operator, timeout=5).json()["nodes"]}
    assert eventually(lambda: set(listed(home)) == {home.url, other.url}, 10)
    headers, broadcast = live_on(home, receiver, "Drained")
    later = requests.post(home.url + "/api/broadcasts", json={"title": "Too late"}, headers=headers, timeout=10).json()["id"]

    home.process.send_signal(signal.SIGTERM)
    signalled = time.time()
    # While it drains it still answers and the show goes on, but it takes no new show: one
    # started through it goes to the other node.
    assert eventually(lambda: "draining" in home.logs(), 5), home.logs()[-2000:]
    assert listed(other)[home.url]["draining"] is True
    placed = requests.post(f"{home.url}/api/broadcasts/{later}/start", headers=headers, timeout=30)
    assert placed.status_code == 200, placed.text
    assert "program placed on another node" in home.logs()
    assert eventually(lambda: listed(other)[other.url]["load"]["live_programs"] == 1, 5), listed(other)
    time.sleep(1)
    assert receiver.publishes(KEY) == 1

    # At the deadline it hands the show over and exits; the other node takes it on.
    assert home.process.wait(20) == 0
    assert time.time() - signalled >= 4.5
    assert "handing live programs over" in home.logs()
    assert eventually(lambda: receiver.publishes(KEY) == 2, 15), other.logs()[-2000:]
    show = requests.get(f"{other.url}/api/broadcasts/{broadcast}", headers=headers, timeout=10).json()
    assert show["status"] == "live"
    assert requests.post(f"{other.url}/api/broadcasts/{broadcast}/end", headers=headers, timeout=30).status_code == 200
    assert requests.post(f"{other.url}/api/broadcasts/{later}/end", headers=headers, timeout=30).status_code == 200


@requires_postgres
def test_every_node_serves_the_hls_of_a_program_homed_on_another(start_tally, redis_server, receiver):
    home, door = two_nodes(start_tally, redis_server, "a shared secret for the HLS test")
    headers, broadcast = live_on(home, receiver, "HLS anywhere")
    playlist = f"/hls/{broadcast}/index.m3u8"
    assert eventually(lambda: requests.get(home.url + playlist, timeout=5).status_code == 200, 15)
    through_door = requests.get(door.url + playlist, timeout=10)
    assert through_door.status_code == 200, through_door.text
    assert through_door.headers["Content-Type"] == requests.get(home.url + playlist, timeout=5).headers["Content-Type"]
    segment = next(line for line in through_door.text.splitlines() if line and not line.startswith("#"))
    from_home = requests.get(f"{home.url}/hls/{broadcast}/{segment}", timeout=10)
    from_door = requests.get(f"{door.url}/hls/{broadcast}/{segment}", timeout=10)
    assert from_door.status_code == 200 and from_door.content == from_home.content and len(from_door.content) > 1000

    # A forwarded request is answered from the node's own files only: nodes never loop.
    forwarded = requests.get(door.url + playlist, headers={"X-Tally-Forwarded-From": "another node"}, timeout=10)
    assert forwarded.status_code == 404 and forwarded.json()["error"]["code"] == "not_live"
    assert requests.post(f"{door.url}/api/broadcasts/{broadcast}/end", headers=headers, timeout=30).status_code == 200
    assert eventually(lambda: requests.get(door.url + playlist, timeout=5).status_code == 404, 10)
