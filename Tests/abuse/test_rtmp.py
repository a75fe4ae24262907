"""Item 5 of the review: RTMP bytes that cost CPU before any stream key is checked, and
connections from many loopback addresses."""
import json
import os
import socket
import struct
import time

from hostile import Watch


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
                   client_bytes_written_before_close=max(sent for _, sent in sockets + big))


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


def test_a_slow_webhook_does_not_stall_srt_handshakes(start_tally, figures):
    """libsrt's listen callback waited for the key check and webhook (up to 5 s), on the one
    thread that receives for every SRT connection: one slow check stalled every SRT peer."""
    import http.server
    import subprocess
    import threading

    import requests

    from hostile import auth

    arrivals = []

    class SlowHook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            arrivals.append(time.monotonic())
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(3)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    encoders = []
    try:
        tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "127.0.0.0/8",
                             "TALLY_ON_PUBLISH_URL": f"http://127.0.0.1:{hook.server_port}/hook"})
        token = tally.register()
        urls = []
        for name in ("first", "second"):
            created = requests.post(tally.url + "/api/streams", json={"stream_id": name, "action": "start"}, headers=auth(token), timeout=10).json()
            urls.append(created["ingest"]["srt_publish_url"])
        for url in urls:
            encoders.append(subprocess.Popen(
                ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "8",
                 "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-f", "mpegts", url],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.3)
        deadline = time.monotonic() + 15
        while len(arrivals) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(arrivals) == 2, arrivals
        # The second publisher's handshake did not wait out the first one's webhook.
        assert arrivals[1] - arrivals[0] < 1.5, arrivals[1] - arrivals[0]
        figures.record("two SRT handshakes while the on_publish webhook takes 3 s", sent=2, refused=0,
                       second_handshake_after_s=round(arrivals[1] - arrivals[0], 2))
    finally:
        for encoder in encoders:
            encoder.kill()
            encoder.wait()
        hook.shutdown()
