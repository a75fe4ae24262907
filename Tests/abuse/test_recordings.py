"""Item 7 of the review: recordings that said "ready, 30 s" of a file that played one
second, and rows a crash left `recording` and `live` for ever."""
import signal
import time

import requests

from hostile import auth
from tallytest import Tally


def go_live(tally, token, **settings):
    reply = requests.post(tally.url + "/api/broadcasts", json={"title": "Show", "settings": {"record": True, **settings}}, headers=auth(token), timeout=10)
    broadcast_id = reply.json()["id"]
    live = requests.post(f"{tally.url}/api/broadcasts/{broadcast_id}/start", headers=auth(token), timeout=30)
    assert live.status_code == 200, live.text
    return broadcast_id


def recording_of(tally, token, broadcast_id):
    recordings = requests.get(tally.url + "/api/recordings", headers=auth(token), timeout=10).json()["recordings"]
    return next(r for r in recordings if r["broadcast_id"] == broadcast_id)


def test_a_crash_leaves_nothing_stuck(start_tally, figures):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": ""})
    token = tally.register(email="host@example.com")
    broadcast_id = go_live(tally, token)
    time.sleep(4)
    tally.process.send_signal(signal.SIGKILL)
    tally.process.wait()
    (tally.data_dir / "ports.json").unlink()
    # Back within seconds, well inside the old 30 s blind spot.
    again = Tally(tally.data_dir, {"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": ""}, []).wait_ready()
    try:
        token = requests.post(again.url + "/api/auth/login", json={"email": "host@example.com", "password": "correct horse"}, timeout=10).json()["access_token"]
        broadcast = requests.get(f"{again.url}/api/broadcasts/{broadcast_id}", headers=auth(token), timeout=10).json()
        assert broadcast["status"] == "ended", broadcast
        recording = recording_of(again, token, broadcast_id)
        assert recording["status"] == "ready" and recording["size_bytes"] > 0, recording
        assert requests.delete(f"{again.url}/api/recordings/{recording['id']}", headers=auth(token), timeout=10).status_code == 204
    finally:
        again.stop()
    figures.record("kill -9 while live and recording, restart within seconds", sent=1, refused=1)


def test_a_nearly_full_disk_fails_the_recording_not_the_show(start_tally, figures):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_RECORDING_MIN_FREE_MB": str(1 << 40)})
    token = tally.register()
    broadcast_id = go_live(tally, token)
    recording = recording_of(tally, token, broadcast_id)
    assert recording["status"] == "failed" and "nearly full" in recording["error"], recording
    assert requests.get(f"{tally.url}/api/broadcasts/{broadcast_id}", headers=auth(token), timeout=10).json()["status"] == "live"
    requests.post(f"{tally.url}/api/broadcasts/{broadcast_id}/end", headers=auth(token), timeout=30)
    assert recording_of(tally, token, broadcast_id)["status"] == "failed"
    assert "recording not started" in tally.logs()
    figures.record("go-live with the disk under the free-space floor", sent=1, refused=1)


def test_the_size_limit_stops_the_recording_and_says_so(start_tally, figures):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_RECORDING_MAX_MB": "1"})
    token = tally.register()
    broadcast_id = go_live(tally, token)
    deadline = time.time() + 30
    while time.time() < deadline and recording_of(tally, token, broadcast_id)["status"] != "failed":
        time.sleep(1)
    recording = recording_of(tally, token, broadcast_id)
    assert recording["status"] == "failed" and "size limit" in recording["error"], recording
    requests.post(f"{tally.url}/api/broadcasts/{broadcast_id}/end", headers=auth(token), timeout=30)
    final = recording_of(tally, token, broadcast_id)
    assert final["status"] == "failed" and final["size_bytes"] < 2 << 20, final
    metrics = requests.get(tally.url + "/metrics", timeout=10).text
    assert any(line.startswith("tally_recording_failures_total") and float(line.split()[-1]) >= 1 for line in metrics.splitlines())
    figures.record("recording past TALLY_RECORDING_MAX_MB", sent=1, refused=1)
