"""Tally's own TURN server: aiortc and Chromium, allowed to use relays only, get their echo
back through it over UDP, TCP and TLS (the TLS one on the HTTPS port); it relays to
Tally's own media port and nowhere else, and refuses expired credentials. An operator's
coturn works in its place with the same credentials."""
import asyncio
import base64
import hashlib
import hmac
import os
import re
import socket
import struct
import subprocess
import time

import pytest
import requests
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from conftest import CHROMIUM_ARGS
from tallytest import free_port
from test_echo_aiortc import PatternTrack, ToneTrack
from testca import TestCA
from turnclient import COOKIE, TURNClient, attribute, xor_address

SECRET = "turn-test-secret-0123456789"


@pytest.fixture
def tls_tally(start_tally, tmp_path):
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue("studio.tally.test", "127.0.0.1")
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_HTTPS_PORT": "0", "TALLY_TLS_CERT": str(cert), "TALLY_TLS_KEY": str(key),
                         "TALLY_TURN_SECRET": SECRET})
    tally.ca = ca
    return tally


def ice_servers(tally, token):
    reply = requests.get(tally.url + "/api/ice-servers", headers={"Authorization": f"Bearer {token}"}, verify=str(tally.ca.cert), timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.json()["ice_servers"]


def pick(servers, kind):
    """The server entry narrowed to one of its URLs: udp, tcp or tls."""
    server = servers[0]
    url = next(u for u in server["urls"] if (u.startswith("turns:") if kind == "tls" else (u.startswith("turn:") and u.endswith(kind))))
    return {"urls": [url], "username": server["username"], "credential": server["credential"]}


async def aiortc_relay_echo(url, token, server, verify):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(**server)], iceTransportPolicy=RTCIceTransportPolicy.RELAY))
    pc.addTrack(ToneTrack())
    pc.addTrack(PatternTrack())
    frames = []

    @pc.on("track")
    def on_track(track):
        async def read():
            while True:
                frames.append(await track.recv())
        asyncio.ensure_future(read())

    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    assert "typ relay" in offer and "typ host" not in offer
    reply = await asyncio.to_thread(requests.post, url + "/api/echo", data=offer, verify=verify, timeout=10,
                                    headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
    assert reply.status_code == 201, reply.text
    assert 'rel="ice-server"' in reply.headers["Link"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply.text, type="answer"))
    for _ in range(150):
        if len(frames) >= 30:
            break
        await asyncio.sleep(0.1)
    await pc.close()
    return len(frames)


def relayed_packets(tally):
    metrics = requests.get(tally.url + "/metrics", verify=False, timeout=5).text
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("tally_turn_relayed_packets_total"))


@pytest.mark.parametrize("kind", ["udp", "tcp", "tls"])
def test_aiortc_gets_its_echo_through_tally_turn(tls_tally, kind, monkeypatch):
    # aiortc checks the TURN server's certificate against the default store: the test CA's.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_tally.ca.cert))
    token = requests.post(tls_tally.url + "/api/auth/register", json={"email": f"turn-{time.time_ns()}@example.com", "password": "correct horse",
                                                                      "name": "Relay"}, verify=str(tls_tally.ca.cert), timeout=10).json()["access_token"]
    server = pick(ice_servers(tls_tally, token), kind)
    assert re.match(r"^\d+:", server["username"])
    before = relayed_packets(tls_tally)
    frames = asyncio.run(aiortc_relay_echo(tls_tally.url, token, server, str(tls_tally.ca.cert)))
    assert frames >= 30, f"{frames} frames came back through TURN over {kind}"
    assert relayed_packets(tls_tally) - before > 50


CHROMIUM_RELAY_ECHO = """
async ({token, server}) => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 480}});
  const pc = new RTCPeerConnection({iceServers: [server], iceTransportPolicy: 'relay'});
  stream.getTracks().forEach(track => pc.addTransceiver(track, {direction: 'sendrecv', streams: [stream]}));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(done => { if (pc.iceGatheringState === 'complete') done(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && done(); });
  const response = await fetch('/api/echo', {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp', Authorization: 'Bearer ' + token}});
  if (response.status !== 201) return {status: response.status};
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
  window.pc = pc;
  return {status: 201, offer: pc.localDescription.sdp};
}
"""

RELAY_STATS = """
async () => {
  const report = await window.pc.getStats();
  const byId = new Map(); report.forEach(s => byId.set(s.id, s));
  const out = {frames: 0, candidateType: null, relayProtocol: null};
  report.forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.frames = s.framesDecoded || 0;
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const local = byId.get(byId.get(s.selectedCandidatePairId)?.localCandidateId);
      if (local) { out.candidateType = local.candidateType; out.relayProtocol = local.relayProtocol; }
    }
  });
  return out;
}
"""


def test_chromium_relay_only_gets_its_echo_through_tally_turn(tls_tally):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", env={**os.environ, "HOME": str(tls_tally.ca.browser_home())},
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.goto(tls_tally.url + "/api/health")
            token = page.evaluate("""async () => (await (await fetch('/api/auth/register', {method: 'POST', headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({email: 'relay-' + Date.now() + '@example.com', password: 'correct horse', name: 'Relay'})})).json()).access_token""")
            servers = page.evaluate("async token => (await (await fetch('/api/ice-servers', {headers: {Authorization: 'Bearer ' + token}})).json()).ice_servers", token)
            for kind, protocol in [("udp", "udp"), ("tcp", "tcp"), ("tls", "tls")]:
                result = page.evaluate(CHROMIUM_RELAY_ECHO, {"token": token, "server": pick(servers, kind)})
                assert result["status"] == 201, result
                assert "typ relay" in result["offer"] and "typ host" not in result["offer"]
                deadline = time.time() + 20
                stats = page.evaluate(RELAY_STATS)
                while time.time() < deadline and stats["frames"] < 30:
                    time.sleep(0.5)
                    stats = page.evaluate(RELAY_STATS)
                assert stats["frames"] >= 30 and stats["candidateType"] == "relay" and stats["relayProtocol"] == protocol, (kind, stats)
                page.evaluate("window.pc.close()")
        finally:
            browser.close()


def test_the_relay_reaches_only_tallys_media_port_and_credentials_expire(tls_tally):
    port = int(re.search(r'"turn":\s*(\d+)', (tls_tally.data_dir / "ports.json").read_text()).group(1))
    media = int(re.search(r'"udp":\s*(\d+)', (tls_tally.data_dir / "ports.json").read_text()).group(1))

    def credentials(expires):
        username = f"{int(expires)}:tester"
        return username, base64.b64encode(hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()

    client = TURNClient("127.0.0.1", port, *credentials(time.time() + 600))
    try:
        klass, code, _ = client.allocate()
        assert code is None and klass == 2
        # Another host, a private address, a metadata address: refused outright.
        for outside in ["192.0.2.10", "10.1.2.3", "169.254.169.254"]:
            assert client.permit(outside)[1] == 403, outside
        assert client.bind_channel("192.0.2.10", 5000)[1] == 403
        # Tally's own address is allowed; but only its media port is ever sent to.
        assert client.permit("127.0.0.1")[1] is None
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(1.5)
        data = attribute(0x0012, xor_address("127.0.0.1", listener.getsockname()[1], None)) + attribute(0x0013, b"not for you")
        indication = struct.pack("!HHI", 0x0016, len(data), COOKIE) + os.urandom(12) + data
        client.socket.sendto(indication, client.server)
        with pytest.raises(socket.timeout):
            listener.recv(100)
        listener.close()
        assert client.bind_channel("127.0.0.1", media)[1] is None
    finally:
        client.close()

    expired = TURNClient("127.0.0.1", port, *credentials(time.time() - 5))
    try:
        assert expired.allocate()[1] == 401
    finally:
        expired.close()
    forged = TURNClient("127.0.0.1", port, f"{int(time.time()) + 600}:tester", "not the password")
    try:
        assert forged.allocate()[1] == 401
    finally:
        forged.close()


def test_an_operators_coturn_serves_the_same_credentials(start_tally, tmp_path):
    """TALLY_TURN_URLS and TALLY_TURN_SECRET: clients are sent to coturn (use-auth-secret),
    with credentials coturn accepts, and the echo comes back through it."""
    port = free_port()
    coturn = subprocess.Popen(["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
                               "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=tally.test", "--allow-loopback-peers",
                               "--no-tls", "--no-dtls", "--no-cli", f"--log-file={tmp_path / 'coturn.log'}", "--simple-log",
                               f"--min-port=50000", "--max-port=50100"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_TURN_URLS": f"turn:127.0.0.1:{port}?transport=udp", "TALLY_TURN_SECRET": SECRET})
        assert "turn" not in (tally.data_dir / "ports.json").read_text()
        token = tally.register()
        servers = requests.get(tally.url + "/api/ice-servers", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()["ice_servers"]
        assert servers[0]["urls"] == [f"turn:127.0.0.1:{port}?transport=udp"]
        frames = asyncio.run(aiortc_relay_echo(tally.url, token, servers[0], True))
        assert frames >= 30, (tmp_path / "coturn.log").read_text()[-2000:]
    finally:
        coturn.terminate()
        coturn.wait(10)
