"""Helpers and fixtures for tests that drive the built `tally` binary the way a user starts it."""
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

BINARY = os.environ.get("TALLY_BINARY", str(Path(__file__).resolve().parents[2] / ".build/debug/tally"))
DATABASE_URL = os.environ.get("TALLY_TEST_DATABASE_URL")
PG_BIN = os.environ.get("PG_BIN")


def eventually(check, timeout):
    """Whether `check()` comes true within `timeout` seconds, polled every 0.2 s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def operator_token(secret, data_dir):
    """The operator's bearer token for nodes sharing `secret`, as `tally --operator-token` prints it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env.update({"TALLY_SECRET_KEY": secret, "TALLY_DATA_DIR": str(data_dir)})
    printed = subprocess.run([BINARY, "--operator-token"], env=env, capture_output=True, text=True, timeout=30, check=True)
    return printed.stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tally:
    """One tally process with its own data directory; stdout and stderr go to files."""

    def __init__(self, data_dir: Path, env: dict, args: list, cwd=None):
        self.data_dir = data_dir
        self.stdout_path = data_dir.parent / f"{data_dir.name}.stdout"
        self.stderr_path = data_dir.parent / f"{data_dir.name}.stderr"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        # Every port picked free, so tests run side by side; media only on loopback.
        full_env.update({"TALLY_DATA_DIR": str(data_dir), "TALLY_HTTP_PORT": "0", "TALLY_UDP_PORT": "0", "TALLY_TCP_PORT": "0", "TALLY_RTMP_PORT": "0", "TALLY_SRT_PORT": "0", "TALLY_TURN_PORT": "0",
                         "TALLY_PUBLIC_IP": "127.0.0.1", "TALLY_BCRYPT_COST": "4",
                         # The local nginx-rtmp and webhook stand-ins live on loopback, which Tally refuses by default.
                         "TALLY_OUTBOUND_ALLOW": "127.0.0.0/8"})
        full_env.update(env)
        self.process = subprocess.Popen(
            [BINARY, *args], env=full_env, cwd=cwd,
            stdout=open(self.stdout_path, "wb"), stderr=open(self.stderr_path, "wb"))
        self.url = None

    def wait_ready(self, timeout=60):
        ports = self.data_dir / "ports.json"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"tally exited with {self.process.returncode}:\n{self.logs()}")
            if ports.exists():
                try:
                    listening = json.loads(ports.read_text())
                    self.http_url = f"http://127.0.0.1:{listening['http']}"
                    # With a certificate, the studio is on HTTPS; its name is the test's to check.
                    self.url = f"https://127.0.0.1:{listening['https']}" if "https" in listening else self.http_url
                    requests.get(self.url + "/api/health", timeout=2, verify=False)
                    return self
                except (ValueError, KeyError, requests.ConnectionError, requests.Timeout):
                    pass
            time.sleep(0.1)
        raise AssertionError(f"tally did not start within {timeout} s:\n{self.logs()}")

    def stop(self, timeout=15):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("tally did not stop within 15 s of SIGTERM")
        return self.process.returncode

    def logs(self):
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def register(self, email=None, password="correct horse"):
        email = email or f"user-{time.time_ns()}@example.com"
        reply = requests.post(self.url + "/api/auth/register", json={"email": email, "password": password, "name": "Host"}, timeout=10)
        assert reply.status_code == 201, reply.text
        return reply.json()["access_token"]


@pytest.fixture
def start_tally(tmp_path):
    started = []

    def start(env=None, args=None, wait=True, cwd=None):
        tally = Tally(tmp_path / f"data{len(started)}", env or {}, args or [], cwd=cwd)
        started.append(tally)
        return tally.wait_ready() if wait else tally

    yield start
    for tally in started:
        tally.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A Redis of the test's own, which the test may kill and bring back on the same port."""

    class Redis:
        def __init__(self):
            self.port = free_port()
            self.dir = tmp_path / "redis"
            self.dir.mkdir()
            self.process = None

        @property
        def url(self):
            return f"redis://127.0.0.1:{self.port}"

        def start(self):
            self.process = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):
                if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                    return
                time.sleep(0.05)
            raise AssertionError("redis did not start")

        def kill(self):
            self.process.kill()
            self.process.wait()

    redis = Redis()
    redis.start()
    yield redis
    if redis.process and redis.process.poll() is None:
        redis.kill()


requires_postgres = pytest.mark.skipif(DATABASE_URL is None, reason="scripts/test provides PostgreSQL")
