"""Item 5 of the review: RTMP bytes that cost CPU before any stream key is checked, and
connections from many loopback addresses."""
import json
import os
import socket
import struct
import time

from conftest import Watch


def rtmp_port(tally):
    return json.loads((tally.data_dir / "ports.json").read_text())["rtmp"]


def handshake(port, source="127.0.0.1"):
    """A plain RTMP handshake (C0 C1, S0 S1 S2, C2); the connected socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(b"\x03" + bytes(8) + os.urandom(1528))
    received = b""
    while len(received) < 3073:
        chunk = sock.recv(8192)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        received += chunk
    sock.sendall(received[1:1537])
    return sock


def chunk(message_type, payload, chunk_size, stream=3):
    """One RTMP message cut into chunks: a type-0 header, then type-3 continuations."""
    header = bytes([stream]) + b"\x00\x00\x00" + struct.pack(">I", len(payload))[1:] + bytes([message_type]) + b"\x00\x00\x00\x00"
    out = bytearray()
    for offset in range(0, len(payload), chunk_size):
        out += (header if offset == 0 else bytes([0xC0 | stream])) + payload[offset:offset + chunk_size]
    return bytes(out)


def closed_within(sock, seconds):
    """Whether the server closes the socket within `seconds` (reading whatever it sends)."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def is_open(sock):
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def send_until_closed(sock, data, piece=65536):
    """Sends `data`; how many bytes went before the server closed the connection."""
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(data[sent:sent + piece])
    except OSError:
        pass
    return sent


def test_tiny_chunks_and_big_messages_before_publish_are_cut_off(tally, figures):
    """Set Chunk Size 1 and 2 MB of payload cost 10 s of CPU; four such took both cores."""
    port = rtmp_port(tally)
    with Watch(tally) as watch:
        sockets = []
        for _ in range(4):
            sock = handshake(port)
            sock.sendall(chunk(1, struct.pack(">I", 1), 128, stream=2))
            sent = send_until_closed(sock, chunk(8, os.urandom(256 << 10), 1))
            sockets.append((sock, sent))
        big = []
        for _ in range(4):
            sock = handshake(port)
            sock.sendall(chunk(1, struct.pack(">I", 65536), 128, stream=2))
            sent = send_until_closed(sock, chunk(8, os.urandom(2 << 20), 65536))
            big.append((sock, sent))
        assert all(closed_within(sock, 5) for sock, _ in sockets + big)
    watch.check()
    cpu = sum(int(field) for field in open(f"/proc/{tally.process.pid}/stat").read().rsplit(")", 1)[1].split()[11:13]) / os.sysconf("SC_CLK_TCK")
    assert cpu < 20, f"the server used {cpu:.1f} s of CPU"
    figures.record("RTMP before publish: 4 connections at chunk size 1 (256 KB), 4 with 2 MB messages", sent=8, refused=8, watch=watch,
                   bytes_accepted_before_close=max(sent for _, sent in sockets + big))


def test_connections_from_many_addresses_are_capped(tally, figures):
    """440 connections from other 127.x addresses were all kept."""
    port = rtmp_port(tally)
    kept = []
    with Watch(tally) as watch:
        for index in range(300):
            source = f"127.{1 + index // 250}.{index % 250}.{1 + index % 7}"
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
                kept.append(sock)
            except OSError:
                pass
        time.sleep(1)
        alive = [sock for sock in kept if is_open(sock)]
    watch.check()
    assert len(alive) <= 256, len(alive)
    for sock in kept:
        sock.close()
    figures.record("RTMP: 300 idle connections from 300 loopback addresses", sent=300, refused=300 - len(alive), watch=watch)
