"""The routes and the UDP port nodes use between themselves: only the node token (derived
from the deployment's root secret) opens the routes, and the relay port drops whatever does
not authenticate under a relay's key, without slowing the node or growing its memory."""
import json
import os
import socket
import time

import requests

from hostile import Watch, auth, error_code
from tallytest import operator_token

SECRET = "the deployment's own root secret"


def refused_datagrams(tally):
    metrics = requests.get(tally.url + "/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("tally_relay_datagrams_refused_total"))


def test_node_routes_open_to_the_node_token_alone(start_tally, tmp_path, figures):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_SECRET_KEY": SECRET})
    account = tally.register()
    show = requests.post(tally.url + "/api/broadcasts", json={"title": "Mine"}, headers=auth(account), timeout=10).json()["id"]
    forged = [None, account, operator_token(SECRET, tmp_path / "cli"), "tally_node_", "tally_node_" + "A" * 43, "tally_node_x" * 20]
    relay = {"broadcast_id": show, "participant_id": show, "relay_id": 5, "nonce": "AAAAAAAAAAAAAAAAAAAAAA=="}
    with Watch(tally) as watch:
        replies = []
        for token in forged * 5:
            headers = auth(token) if token else {}
            replies.append(requests.post(tally.url + "/api/node/relays", json=relay, headers=headers, timeout=10))
            replies.append(requests.post(f"{tally.url}/api/node/programs/{show}/start", headers=headers, timeout=10))
    watch.check()
    assert {(reply.status_code, error_code(reply)) for reply in replies} == {(401, "node_token_required")}
    # Nothing was started for anyone.
    assert requests.get(f"{tally.url}/api/broadcasts/{show}", headers=auth(account), timeout=10).json()["status"] == "scheduled"
    figures.record("node routes: no token, an account's, the operator's, forged node tokens", sent=len(replies), refused=len(replies), watch=watch)


def test_the_relay_port_drops_what_does_not_authenticate(start_tally, figures):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_SECRET_KEY": SECRET})
    port = json.loads((tally.data_dir / "ports.json").read_text())["relay"]
    before = refused_datagrams(tally)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    with Watch(tally) as watch:
        deadline = time.time() + 3
        while time.time() < deadline and sent < 30_000:
            relay_id = os.urandom(4)
            # Junk; headers that parse with random relay ids and kinds; keepalives for relays that do not exist.
            for datagram in (os.urandom(40), bytes([0xA7, 0x13, 0, 0]) + relay_id + os.urandom(8) + os.urandom(16),
                             bytes([0xA7, 0x11, 1, 2]) + relay_id + os.urandom(8) + os.urandom(200)):
                sender.sendto(datagram, ("127.0.0.1", port))
                sent += 1
            if sent % 300 == 0:
                time.sleep(0.01)
    watch.check()
    assert requests.get(tally.url + "/api/health", timeout=10).status_code == 200
    # The kernel may drop some under the flood; what arrived was counted and dropped.
    assert refused_datagrams(tally) - before > sent * 0.5, (refused_datagrams(tally) - before, sent)
    metrics = requests.get(tally.url + "/metrics", timeout=10).text
    assert any(line.startswith("tally_relay_outlets") and float(line.split()[-1]) == 0 for line in metrics.splitlines())
    figures.record("relay port: junk, unknown relays, forged keepalives and media", sent=sent, refused=sent, watch=watch)
