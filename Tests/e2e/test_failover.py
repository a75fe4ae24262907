"""A live broadcast outlives its home node: the node is killed, another one takes the
broadcast over, its destination receives the program again and its recording goes on."""
import time

import requests

from nginx_rtmp import NginxRTMP
from tallytest import DATABASE_URL, eventually, requires_postgres

KEY = "failover-key-4Q"


@requires_postgres
def test_killing_the_home_node_rehomes_a_live_broadcast(start_tally, redis_server, tmp_path):
    env = {"TALLY_DATABASE_URL": DATABASE_URL, "TALLY_REDIS_URL": redis_server.url, "TALLY_SECRET_KEY": "a shared secret for the failover test"}
    home, other = [start_tally(env, wait=False) for _ in range(2)]
    for node in (home, other):
        node.wait_ready()
    receiver = NginxRTMP(tmp_path / "receiver")
    try:
        token = home.register()
        headers = {"Authorization": f"Bearer {token}"}
        reply = requests.post(home.url + "/api/broadcasts", json={"title": "Failover", "settings": {"record": True}}, headers=headers, timeout=10)
        broadcast = reply.json()["id"]
        reply = requests.post(f"{home.url}/api/broadcasts/{broadcast}/destinations", headers=headers, timeout=10,
                              json={"platform": "custom", "name": "Receiver", "rtmp_url": receiver.url(), "stream_key": KEY})
        assert reply.status_code == 201, reply.text
        assert requests.post(f"{home.url}/api/broadcasts/{broadcast}/start", headers=headers, timeout=30).status_code == 200
        assert eventually(lambda: receiver.publishes(KEY) == 1, 15), "the home node never reached the destination"
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
    finally:
        receiver.stop()
