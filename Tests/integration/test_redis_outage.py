"""Redis going away: requests that need it get 503 at once; its return heals tally."""
import time

import requests

from tallytest import DATABASE_URL


def test_redis_outage_gives_503s_and_recovers_without_restart(start_tally, redis_server):
    env = {"TALLY_REDIS_URL": redis_server.url}
    if DATABASE_URL:
        env["TALLY_DATABASE_URL"] = DATABASE_URL
    tally = start_tally(env)
    token = tally.register()
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(tally.url + "/api/auth/me", headers=auth, timeout=5).status_code == 200

    redis_server.kill()
    for path, method in [("/api/auth/me", "GET"), ("/api/broadcasts", "GET"), ("/api/auth/login", "POST")]:
        started = time.monotonic()
        reply = requests.request(method, tally.url + path, headers=auth, json={"email": "a@example.com", "password": "whatever1"}, timeout=10)
        elapsed = time.monotonic() - started
        assert reply.status_code == 503, (path, reply.status_code, reply.text)
        assert reply.json()["error"]["code"] == "registry_unavailable"
        assert reply.headers.get("Retry-After")
        assert elapsed < 3, f"{path} took {elapsed:.1f} s: it must fail fast, not hang"
    health = requests.get(tally.url + "/api/health", timeout=10)
    assert health.status_code == 503 and health.json()["registry"]["status"] == "unavailable"
    assert tally.process.poll() is None, "tally must survive the outage"

    redis_server.start()
    deadline = time.monotonic() + 10
    while True:
        reply = requests.get(tally.url + "/api/auth/me", headers=auth, timeout=5)
        if reply.status_code == 200:
            break
        assert time.monotonic() < deadline, f"not recovered 10 s after redis returned: {reply.status_code} {reply.text}"
        time.sleep(0.2)
    assert requests.get(tally.url + "/api/health", timeout=5).status_code == 200
    assert tally.register()
    assert tally.stop() == 0
