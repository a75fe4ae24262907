"""Helpers and fixtures of the hostile suite. Each test replays an attack from the security review against the built
server on loopback, bounded in count and time, and checks the outcome a user would care
about: the attacker refused with the right status and code, the victim unaffected,
/api/health answering quickly while it runs, memory back afterwards.

Each test records its figures with `figures.record(...)`; they are written to
test-artifacts/abuse-figures.json for docs/security.md."""
import base64
import json
import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from tallytest import start_tally  # noqa: E402,F401  (pytest finds fixtures by name here)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "SDPTests" / "Fixtures"
FIGURES = ROOT / "test-artifacts" / "abuse-figures.json"

# Health must stay quick while an attack runs; memory must not run away.
HEALTH_P99_LIMIT = 0.250
RSS_GROWTH_LIMIT = 300 << 20


@pytest.fixture
def tally(start_tally):
    """A server with no outbound exceptions: the default an operator gets."""
    return start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": ""})


def rss(tally):
    """The server's resident memory in bytes."""
    for line in Path(f"/proc/{tally.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Watch:
    """Polls /api/health and the server's memory while an attack runs."""

    def __init__(self, tally, interval=0.05):
        self.tally = tally
        self.interval = interval
        self.latencies = []
        self.failures = 0
        self.baseline = rss(tally)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        session = requests.Session()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                reply = session.get(self.tally.url + "/api/health", timeout=5)
                if reply.status_code != 200:
                    self.failures += 1
            except requests.RequestException:
                self.failures += 1
            self.latencies.append(time.monotonic() - started)
            self.peak = max(self.peak, rss(self.tally))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def p99(self):
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0

    def check(self):
        assert self.latencies, "health was never polled"
        assert self.failures == 0, f"health failed {self.failures} times during the attack"
        assert self.p99 < HEALTH_P99_LIMIT, f"health p99 {self.p99 * 1000:.0f} ms during the attack"
        assert self.peak - self.baseline < RSS_GROWTH_LIMIT, f"RSS grew {(self.peak - self.baseline) >> 20} MB"


@pytest.fixture(scope="session")
def figures():
    class Figures:
        def __init__(self):
            self.rows = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}

        def record(self, attack, sent, refused, watch=None, **extra):
            row = {"sent": sent, "refused": refused, **extra}
            if watch is not None:
                row.update(health_p99_ms=round(watch.p99 * 1000, 1), rss_peak_growth_mb=round((watch.peak - watch.baseline) / 2**20, 1))
            self.rows[attack] = row

    recorder = Figures()
    yield recorder
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps(recorder.rows, indent=2, sort_keys=True) + "\n")


def offer(name="chrome-sendrecv.sdp"):
    return (FIXTURES / name).read_text()


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def broadcast(tally, token, title="Show"):
    reply = requests.post(tally.url + "/api/broadcasts", json={"title": title}, headers=auth(token), timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def invite(tally, token, broadcast_id):
    reply = requests.post(f"{tally.url}/api/broadcasts/{broadcast_id}/invites", json={"name": "Guest"}, headers=auth(token), timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


def sdp_post(tally, path, token, body, **kwargs):
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(tally.url + path, data=body, headers=headers, timeout=10, **kwargs)


def error_code(reply):
    try:
        return reply.json()["error"]["code"]
    except ValueError:
        return None


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Sends from a chosen loopback address, as if from another machine."""

    def __init__(self, address):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address):
    session = requests.Session()
    session.mount("http://", SourceAddressAdapter(address))
    return session


class WebSocket:
    """The least of a WebSocket client (RFC 6455): text frames in and out, for /ws."""

    def __init__(self, url, token, timeout=10, origin=None):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"Origin: {origin}\r\n" if origin else ""
        self.sock.sendall((f"GET /ws?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(status.decode())
        self.buffer = head.split(b"\r\n\r\n", 1)[1]

    def send(self, event, data=None, id=None):
        message = {"event": event, "data": data or {}}
        if id is not None:
            message["id"] = id
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive(self):
        """The next text message as JSON; None when the server closed the socket."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                return None
            if opcode == 0x1:
                return json.loads(payload)

    def reply_to(self, event, data=None, id="1"):
        """Sends `event` and returns the answer carrying the same id."""
        self.send(event, data, id=id)
        while True:
            message = self.receive()
            if message is None or message.get("id") == id or (message.get("event") == "error" and message["data"].get("id") == id):
                return message

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
