"""Item 12 of the review: ICE-TCP wrote to a peer without checking that it reads, so a
client that sends checks and never reads made the server buffer answers without end. The
same flood also showed the WebRTC transport sharing an event loop with HTTP: health took
784 ms at p99 until the transport got a loop of its own."""
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import time
import zlib

from hostile import Watch, offer, rss, sdp_post

MAGIC = 0x2112A442


def attribute(kind, value):
    padding = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + bytes(padding)


def binding_request(username, password):
    """An ICE connectivity check (RFC 8445 §7.1.2) with MESSAGE-INTEGRITY and FINGERPRINT."""
    transaction = os.urandom(12)
    body = attribute(0x0006, username.encode()) + attribute(0x0024, struct.pack("!I", 1853824767)) \
        + attribute(0x802A, os.urandom(8))
    header = struct.pack("!HHI", 0x0001, len(body) + 24, MAGIC) + transaction
    integrity = hmac.new(password.encode(), header + body, hashlib.sha1).digest()
    body += attribute(0x0008, integrity)
    header = struct.pack("!HHI", 0x0001, len(body) + 8, MAGIC) + transaction
    fingerprint = (zlib.crc32(header + body) ^ 0x5354554E) & 0xFFFFFFFF
    body += attribute(0x8028, struct.pack("!I", fingerprint))
    return header + body


def test_a_peer_that_never_reads_cannot_grow_the_servers_memory(tally, figures):
    token = tally.register()
    body = offer()
    answer = sdp_post(tally, "/api/echo", token, body).text
    server_fragment = re.search(r"a=ice-ufrag:(\S+)", answer).group(1)
    server_password = re.search(r"a=ice-pwd:(\S+)", answer).group(1)
    client_fragment = re.search(r"a=ice-ufrag:(\S+)", body).group(1)
    tcp_port = json.loads((tally.data_dir / "ports.json").read_text())["tcp"]
    request = binding_request(f"{server_fragment}:{client_fragment}", server_password)
    framed = struct.pack("!H", len(request)) + request

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", tcp_port))
    # Answers come back: the checks are right.
    sock.sendall(framed)
    sock.settimeout(5)
    assert len(sock.recv(4096)) > 20
    before = rss(tally)
    # The session closes 10 s after it opened unless DTLS completes: flood for 7 s of it.
    with Watch(tally) as watch:
        blob = framed * 1000
        sent = 0
        sock.settimeout(2)
        started = time.monotonic()
        while time.monotonic() - started < 7:
            try:
                sock.sendall(blob)
                sent += 1000
            except socket.timeout:
                break
        growth = rss(tally) - before
    watch.check()
    sock.close()
    assert growth < 30 << 20, f"RSS grew {growth >> 20} MB answering checks nobody read"
    figures.record("ICE-TCP: checks for 7 s from a peer that never reads", sent=sent, refused=0, watch=watch,
                   rss_after_mb=round(growth / 2**20, 1))
