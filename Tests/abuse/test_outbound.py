"""Item 3 of the review: destinations, relays and the on_publish webhook as a way into the
server's own network (SSRF), and the destination test as a port scanner."""
import socket
import threading
import time

import requests

from hostile import Watch, auth, broadcast, error_code, offer, sdp_post
from tallytest import Tally

INSIDE = ["rtmp://169.254.169.254/live", "rtmp://10.0.0.1/live", "rtmp://[::1]:6379/live", "rtmp://localhost:22/live",
          "rtmp://0.0.0.0/live", "rtmp://2130706433/live", "rtmp://metadata.google.internal/live", "rtmp://127.0.0.1:1935/live",
          "rtmps://[::ffff:127.0.0.1]:443/app", "rtmp://100.100.100.200/live", "rtmp://[fd00:ec2::254]/live", "rtmp://0x7f000001/live"]


class Listener:
    """A loopback TCP listener that counts who connects: the target an attacker aims at."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                connection, _ = self.sock.accept()
                self.accepted += 1
                connection.close()
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def test_destinations_and_relays_cannot_point_inside(tally, figures):
    token = tally.register()
    broadcast_id = broadcast(tally, token)
    requests.post(tally.url + "/api/streams", json={"stream_id": "feed", "action": "start"}, headers=auth(token), timeout=10)
    replies = []
    with Watch(tally) as watch:
        for url in INSIDE:
            body = {"platform": "custom", "rtmp_url": url, "stream_key": "k"}
            replies.append(requests.post(f"{tally.url}/api/broadcasts/{broadcast_id}/destinations", json=body, headers=auth(token), timeout=10))
            replies.append(requests.post(f"{tally.url}/api/streams/feed/destinations", json=body, headers=auth(token), timeout=10))
    watch.check()
    assert all(r.status_code == 400 and error_code(r) == "destination_not_allowed" for r in replies), [(r.status_code, r.text) for r in replies]
    figures.record("destinations and relays aimed at loopback, private and metadata addresses", sent=len(replies),
                   refused=len(replies), watch=watch)


def test_a_saved_destination_is_checked_again_when_it_connects(start_tally, figures, tmp_path):
    """The address a name points at can change after it is saved (DNS rebinding): the check
    runs again on the resolved address when Tally connects. Saved while loopback was
    admitted, the same destination is refused once the server runs without the exception."""
    listener = Listener()
    stopping = []
    try:
        lenient = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "127.0.0.0/8"})
        token = lenient.register(email="host@example.com")
        broadcast_id = broadcast(lenient, token)
        added = requests.post(f"{lenient.url}/api/broadcasts/{broadcast_id}/destinations", headers=auth(token), timeout=10,
                              json={"platform": "custom", "rtmp_url": f"rtmp://localhost:{listener.port}/live", "stream_key": "k"})
        assert added.status_code == 201, added.text
        lenient.stop()
        (lenient.data_dir / "ports.json").unlink()
        # The same data (store and secret key), served again without the exception.
        strict = Tally(lenient.data_dir, {"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": ""}, []).wait_ready()
        stopping.append(strict)
        token = requests.post(strict.url + "/api/auth/login", json={"email": "host@example.com", "password": "correct horse"}, timeout=10).json()["access_token"]
        before = listener.accepted
        checks = [requests.post(f"{strict.url}/api/broadcasts/{broadcast_id}/destinations/{added.json()['id']}/test", headers=auth(token), timeout=20)
                  for _ in range(12)]
        assert [c.status_code for c in checks[:10]] == [200] * 10
        assert all(c.json()["result"] == "unreachable" and str(listener.port) not in c.json()["message"] for c in checks[:10])
        # Tests are limited per user: a port scan through them is slow as well as blind.
        assert all(c.status_code == 429 and error_code(c) == "rate_limited" for c in checks[10:])
        live = requests.post(f"{strict.url}/api/broadcasts/{broadcast_id}/start", headers=auth(token), timeout=20)
        assert live.status_code == 200, live.text
        time.sleep(3)
        state = requests.get(f"{strict.url}/api/broadcasts/{broadcast_id}", headers=auth(token), timeout=10).json()["destinations"][0]
        assert state["status"] == "failed", state
        requests.post(f"{strict.url}/api/broadcasts/{broadcast_id}/end", headers=auth(token), timeout=20)
        assert listener.accepted == before, "Tally connected to a loopback listener"
        figures.record("saved loopback destination: 12 tests and a go-live without the allow-list", sent=13, refused=13)
    finally:
        for server in stopping:
            server.stop()
        listener.close()


def test_the_webhook_cannot_reach_inside_and_its_url_stays_secret(start_tally, figures):
    listener = Listener()
    try:
        hook = f"http://127.0.0.1:{listener.port}/on_publish?secret=hunter2"
        tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_ON_PUBLISH_URL": hook})
        token = tally.register()
        key = requests.post(tally.url + "/api/streams", json={"stream_id": "feed", "action": "start"}, headers=auth(token), timeout=10).json()["stream_key"]
        reply = sdp_post(tally, "/ingest/whip", key, offer("chrome-simulcast-sendonly.sdp"))
        assert reply.status_code == 403 and error_code(reply) == "publish_refused", reply.text
        assert "hunter2" not in reply.text and str(listener.port) not in reply.text and "127.0.0.1" not in reply.text
        assert listener.accepted == 0
        figures.record("on_publish webhook aimed at loopback, secret in its query", sent=1, refused=1)
    finally:
        listener.close()
