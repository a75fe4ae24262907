"""ICE-TCP to a peer that never reads: on a server whose kernel send buffers are small (as a
busy server's effectively are), answers pile up in Tally's own buffer until its high-water
mark, and past it are dropped and counted, never buffered without end."""
import json
import re
import socket
import struct
import sys
import time
from pathlib import Path

import requests
from netlab import ip

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "abuse"))
from test_ice_tcp import binding_request  # noqa: E402

SERVER = "10.77.6.2"
CHROME_OFFER = Path(__file__).resolve().parent.parent / "SDPTests" / "Fixtures" / "chrome-sendrecv.sdp"


def resident(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_answers_to_a_peer_that_never_reads_stop_at_the_high_water_mark(lab, tmp_path):
    server = lab.host("srv")
    lab.wire(None, "10.77.6.1/24", server, f"{SERVER}/24")
    ip("link", "set", lab.own_links[0], "up")
    # Kernel send buffers of 4-16 KB in the server's namespace: what Tally holds is its own.
    result = lab.check(server, ["sysctl", "-w", "net.ipv4.tcp_wmem=4096 8192 16384"])
    assert result.returncode == 0, result.stderr
    process, ports = lab.tally(server, tmp_path / "data", {"TALLY_HOST": "0.0.0.0", "TALLY_PUBLIC_IP": SERVER})
    url = f"http://{SERVER}:{ports['http']}"
    token = requests.post(url + "/api/auth/register", json={"email": f"tcp-{time.time_ns()}@example.com", "password": "correct horse", "name": "T"},
                          timeout=10).json()["access_token"]
    body = CHROME_OFFER.read_text()
    answer = requests.post(url + "/api/echo", data=body, headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}, timeout=10).text
    fragment = re.compile(r"a=ice-ufrag:(\S+)")
    username = fragment.search(answer).group(1) + ":" + fragment.search(body).group(1)
    request = binding_request(username, re.search(r"a=ice-pwd:(\S+)", answer).group(1))
    framed = struct.pack("!H", len(request)) + request

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((SERVER, ports["tcp"]))
    sock.sendall(framed)
    sock.settimeout(5)
    assert len(sock.recv(4096)) > 20, "the check was not answered"
    before = resident(process.pid)
    sock.settimeout(2)
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < 6:
        try:
            sock.sendall(framed * 1000)
            sent += 1000
        except socket.timeout:
            break
    growth = resident(process.pid) - before
    sock.close()
    assert sent >= 10_000, f"only {sent} checks went out"
    assert growth < 20 << 20, f"RSS grew {growth >> 20} MB answering checks nobody read"
    log = tmp_path / "data.log"
    deadline = time.monotonic() + 15
    dropped = 0
    while time.monotonic() < deadline and not dropped:
        dropped = max([int(n) for n in re.findall(r"send_failures=(\d+)", log.read_text())] or [0])
        time.sleep(0.5)
    assert dropped > 0, "the server never reached its high-water mark, or did not count what it dropped"
