"""A stream key appears in plaintext nowhere: not in responses, logs, or the database."""
import os
import secrets
import subprocess
from pathlib import Path

import pytest
import requests

from tallytest import DATABASE_URL, PG_BIN

BACKENDS = ["sqlite"] + (["postgres"] if DATABASE_URL else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_key_is_never_in_plaintext(start_tally, backend):
    env = {"TALLY_LOG_LEVEL": "trace"}
    if backend == "postgres":
        env["TALLY_DATABASE_URL"] = DATABASE_URL
    tally = start_tally(env)
    key = "sk-" + secrets.token_hex(16)
    token = tally.register()
    auth = {"Authorization": f"Bearer {token}"}
    seen = []

    def call(method, path, **kwargs):
        reply = requests.request(method, tally.url + path, headers=auth, timeout=10, **kwargs)
        seen.append(reply.text + "".join(f"{k}: {v}\n" for k, v in reply.headers.items()))
        return reply

    broadcast = call("POST", "/api/broadcasts", json={"title": "Secret show"}).json()["id"]
    added = call("POST", f"/api/broadcasts/{broadcast}/destinations", json={"platform": "youtube", "stream_key": key})
    assert added.status_code == 201
    assert added.json()["stream_key_hint"] == "••••" + key[-4:]
    call("POST", f"/api/broadcasts/{broadcast}/destinations",
         json={"platform": "custom", "rtmp_url": "rtmp://127.0.0.1/live", "stream_key": key, "name": "Mirror"})
    refused = call("POST", f"/api/broadcasts/{broadcast}/destinations", json={"platform": "nowhere", "stream_key": key})
    assert refused.status_code == 400
    call("GET", f"/api/broadcasts/{broadcast}/destinations")
    call("GET", f"/api/broadcasts/{broadcast}")
    call("GET", "/api/broadcasts")
    call("GET", "/metrics")
    assert tally.stop() == 0

    for body in seen:
        assert key not in body
    logs = tally.logs()
    assert "destination added" in logs, "trace logging should have recorded the write"
    assert key not in logs
    assert key[-4:] in logs, "the redacted hint is what the log shows"

    for path in Path(tally.data_dir).rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), f"plaintext key in {path}"
    if backend == "postgres":
        dump = subprocess.run(
            [os.path.join(PG_BIN, "pg_dump"), "--data-only", DATABASE_URL.split("?")[0]],
            capture_output=True, check=True, timeout=60).stdout
        assert b"stream_key_sealed" in dump or b"destinations" in dump
        assert key.encode() not in dump
