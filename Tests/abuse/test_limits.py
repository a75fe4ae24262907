"""Items 6, 8, 10 and 11 of the review: live programs, image bombs, lockout by others, and
connections that never end."""
import socket
import struct
import time
import zlib

import requests

from hostile import Watch, auth, broadcast, error_code, rss, session_from


def test_one_account_cannot_take_every_core_with_live_programs(start_tally, figures):
    """Four empty 1080p60 broadcasts from one free account took 185 % of 2 cores."""
    # The counted limits alone: 1080p60 programs on two cores would meet the CPU budget first.
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_MAX_LIVE_PROGRAMS": "3", "TALLY_CPU_BUDGET": "0"})
    attacker = tally.register()
    ids = []
    for index in range(4):
        reply = requests.post(tally.url + "/api/broadcasts", headers=auth(attacker), timeout=10,
                              json={"title": f"Show {index}", "settings": {"resolution": "1080p60"}})
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["id"])
    with Watch(tally) as watch:
        starts = [requests.post(f"{tally.url}/api/broadcasts/{id}/start", headers=auth(attacker), timeout=30) for id in ids]
        time.sleep(3)
    watch.check()
    assert [s.status_code for s in starts] == [200, 200, 429, 429], [s.text for s in starts]
    assert {error_code(s) for s in starts[2:]} == {"too_many_live_programs"}
    # Another host still goes live; past the node's limit the refusal says so.
    host = tally.register()
    assert requests.post(f"{tally.url}/api/broadcasts/{broadcast(tally, host)}/start", headers=auth(host), timeout=30).status_code == 200
    other = tally.register()
    full = requests.post(f"{tally.url}/api/broadcasts/{broadcast(tally, other)}/start", headers=auth(other), timeout=30)
    assert full.status_code == 409 and error_code(full) == "server_at_capacity", full.text
    figures.record("four 1080p go-lives from one account, then one from another past the node's limit", sent=6, refused=3, watch=watch)


def png(width, height):
    """A real PNG header declaring width × height, with one tiny compressed row: what a
    bomb looks like from outside."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def test_an_image_bomb_is_refused_at_upload(tally, figures):
    token = tally.register()
    before = rss(tally)
    with Watch(tally) as watch:
        replies = [requests.post(tally.url + "/api/upload", data=png(12000, 12000), headers={**auth(token), "Content-Type": "image/png"}, timeout=10)
                   for _ in range(10)]
    watch.check()
    assert all(r.status_code == 413 and error_code(r) == "image_too_large" for r in replies), replies[0].text
    assert rss(tally) - before < 50 << 20
    fine = requests.post(tally.url + "/api/upload", data=png(1920, 1080), headers={**auth(token), "Content-Type": "image/png"}, timeout=10)
    assert fine.status_code == 201, fine.text
    figures.record("12000×12000 PNG uploads", sent=len(replies), refused=len(replies), watch=watch)


def test_failed_logins_from_elsewhere_do_not_lock_the_owner_out(start_tally, figures):
    """20 bad logins from two addresses made the right password from a third answer 429."""
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": ""})
    tally.register(email="owner@example.com")
    attempts = []
    for address in ("127.0.0.2", "127.0.0.3"):
        attacker = session_from(address)
        for _ in range(15):
            attempts.append(attacker.post(tally.url + "/api/auth/login", json={"email": "owner@example.com", "password": "guess"}, timeout=10))
    codes = [a.status_code for a in attempts]
    # Each attacking address gets ten guesses, then waits.
    assert codes.count(401) == 20 and codes.count(429) == 10, codes
    owner = session_from("127.0.0.4").post(tally.url + "/api/auth/login", json={"email": "owner@example.com", "password": "correct horse"}, timeout=10)
    assert owner.status_code == 200, owner.text
    figures.record("30 wrong passwords for one account from two addresses, then the owner from a third", sent=31, refused=10)


def test_idle_and_slow_connections_are_closed(start_tally, figures):
    """500 idle connections stayed open 75 s; a header that never ends was never answered."""
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_HTTP_IDLE_SECONDS": "3"})
    port = int(tally.url.rsplit(":", 1)[1])
    sockets = []
    with Watch(tally) as watch:
        for _ in range(500):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        big = socket.create_connection(("127.0.0.1", port), timeout=5)
        big.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 16 << 20:
                sent += big.send(b"a" * 65536)
        except OSError:
            pass
        started = time.monotonic()
        dribbled = 0
        try:
            while time.monotonic() - started < 20:
                slow.sendall(b"a")
                dribbled += 1
                time.sleep(1)
        except OSError:
            pass
        time.sleep(max(0, 8 - (time.monotonic() - started)))
        still_open = 0
        for sock in sockets + [big]:
            sock.setblocking(False)
            try:
                still_open += sock.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
    watch.check()
    assert still_open == 0, f"{still_open} of 501 connections still open after the idle timeout"
    assert dribbled <= 13, f"a header dribbled a byte a second was read for {dribbled} s"
    assert sent < 16 << 20, "a 16 MB header was read to the end"
    figures.record("500 idle connections, a header dribbled a byte a second, a 16 MB header", sent=502, refused=502, watch=watch)


def test_a_sign_in_flood_does_not_stall_file_serving(start_tally, figures):
    """bcrypt ran on the thread pool that also reads files (the studio's pages, uploads,
    recordings): a burst of sign-ins at the production cost queued everything behind it."""
    import threading

    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_BCRYPT_COST": "12"})
    stop = threading.Event()
    attempts = []

    def flood(address):
        attacker = session_from(address)
        while not stop.is_set():
            attempts.append(attacker.post(tally.url + "/api/auth/login", json={"email": f"{address}@example.com", "password": "guess"}, timeout=30).status_code)

    threads = [threading.Thread(target=flood, args=(f"127.0.9.{index + 1}",), daemon=True) for index in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    latencies = []
    for _ in range(20):
        started = time.monotonic()
        assert requests.get(tally.url + "/js/api.js", timeout=30).status_code == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join()
    worst = max(latencies)
    assert worst < 0.5, f"a static file took {worst * 1000:.0f} ms during the sign-in flood"
    figures.record("sign-in flood at bcrypt cost 12 from 16 addresses, static files fetched meanwhile", sent=len(attempts),
                   refused=len(attempts), file_latency_max_ms=round(worst * 1000, 1))


def test_ladders_past_the_nodes_limit_serve_the_source_only(start_tally, figures):
    """Every ladder transcodes while its encoder publishes: past TALLY_MAX_LADDERS a stream
    is served as it comes, and its owner is told why."""
    import subprocess

    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_MAX_LADDERS": "0"})
    token = tally.register()
    created = requests.post(tally.url + "/api/streams", json={"stream_id": "laddered", "action": "start", "ladder": ["360p30"]},
                            headers=auth(token), timeout=10).json()
    encoder = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "10",
                                "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-f", "flv", created["ingest"]["rtmp_publish_url"]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 15
        stream = {}
        while time.time() < deadline:
            stream = requests.get(tally.url + "/api/streams/laddered", headers=auth(token), timeout=10).json()
            if stream.get("is_live"):
                break
            time.sleep(0.5)
        assert stream.get("is_live"), stream
        assert "limit of 0 ladders" in (stream.get("last_error") or ""), stream
        assert not (tally.data_dir / "hls" / "streams" / "laddered" / "360p30").exists()
    finally:
        encoder.kill()
        encoder.wait()
    figures.record("a ladder asked for past the node's ladder limit", sent=1, refused=1)
