"""A host's clip library is theirs alone: no other credential reads, feeds, completes or deletes
a clip or puts it on a stage; every clip, piece and library has a cap; and only an MP4/MOV or
Matroska/WebM file that decodes is kept (a playlist that would make libavformat open other
files or URLs is refused by its first bytes, never probed)."""
import requests

from hostile import auth, broadcast, error_code, invite


def announce(tally, token, size=1000, name="Clip"):
    return requests.post(f"{tally.url}/api/clips", json={"name": name, "size_bytes": size}, headers=auth(token) if token else {}, timeout=10)


def test_clips_belong_to_their_host_and_only_playable_files_are_kept(tally, figures):
    host = tally.register()
    stranger = tally.register()
    show = broadcast(tally, host)
    guest = invite(tally, host, show)
    refused = 0

    for token in (None, guest):
        reply = announce(tally, token)
        assert reply.status_code in (401, 403), (reply.status_code, reply.text)
        refused += 1
    assert error_code(announce(tally, host, size=(500 << 20) + 1)) == "clip_too_large"
    assert error_code(announce(tally, host, size=0)) == "invalid_field"
    assert requests.post(f"{tally.url}/api/clips", json={"name": "", "size_bytes": 10}, headers=auth(host), timeout=10).status_code == 400
    refused += 3

    clip = announce(tally, host, size=2000).json()
    url = tally.url + clip["upload_url"]
    piece = lambda token, offset, body=b"x" * 1000: requests.patch(url, data=body, headers={**(auth(token) if token else {}), "Upload-Offset": str(offset)},
                                                                  timeout=30)
    assert piece(host, 0).json()["received_bytes"] == 1000
    clip_url = f"{tally.url}/api/clips/{clip['id']}"
    for token, status in ((None, 401), (stranger, 404), (guest, 403)):
        for reply in (piece(token, 1000), requests.get(clip_url, headers=auth(token) if token else {}, timeout=10),
                      requests.patch(clip_url, json={"loop": True}, headers=auth(token) if token else {}, timeout=10),
                      requests.post(clip_url + "/complete", headers=auth(token) if token else {}, timeout=10),
                      requests.delete(clip_url, headers=auth(token) if token else {}, timeout=10)):
            assert reply.status_code in (status, 401 if token is None else status), (token, reply.status_code, reply.text)
            refused += 1
    # A gap names the offset to send from; a piece past the announced size, no offset, or over the upload limit is refused.
    gap = piece(host, 1500)
    assert gap.status_code == 409 and gap.headers["Upload-Offset"] == "1000", (gap.status_code, gap.headers)
    assert error_code(piece(host, 1000, b"x" * 1001)) == "clip_too_large"
    assert requests.patch(url, data=b"x", headers=auth(host), timeout=10).status_code == 400
    assert piece(host, 1000, b"x" * ((10 << 20) + 1)).status_code == 413
    assert error_code(requests.post(clip_url + "/complete", headers=auth(host), timeout=10)) == "upload_incomplete"
    refused += 5
    # 2000 bytes that say MP4 but hold nothing: refused at completion, and gone.
    assert piece(host, 1000, b"x" * 1000).status_code == 200
    bogus = requests.post(clip_url + "/complete", headers=auth(host), timeout=30)
    assert bogus.status_code == 422 and error_code(bogus) == "invalid_clip", bogus.text
    assert requests.get(clip_url, headers=auth(host), timeout=10).status_code == 404
    refused += 1

    # Files libavformat would follow elsewhere are refused by their first bytes.
    for body in (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", b"ffconcat version 1.0\nfile /etc/passwd\n",
                 b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100):
        made = announce(tally, host, size=len(body)).json()
        assert requests.patch(tally.url + made["upload_url"], data=body, headers={**auth(host), "Upload-Offset": "0"}, timeout=10).status_code == 200
        assert error_code(requests.post(f"{tally.url}/api/clips/{made['id']}/complete", headers=auth(host), timeout=30)) == "invalid_clip"
        refused += 1

    # Another account's clip cannot go on a stage.
    theirs = announce(tally, stranger).json()
    reply = requests.put(f"{tally.url}/api/broadcasts/{show}/stage", json={"layout": "grid", "participants": [], "clips": [theirs["id"]]},
                         headers=auth(host), timeout=10)
    assert reply.status_code == 400 and error_code(reply) == "unknown_clip", reply.text
    reply = requests.put(f"{tally.url}/api/broadcasts/{show}/stage", json={"layout": "grid", "participants": [], "clip_fullscreen": True},
                         headers=auth(host), timeout=10)
    assert error_code(reply) == "no_clip_to_fill", reply.text
    refused += 2
    # Files are served by their unguessable names only.
    for name in ("..%2F..%2Fetc%2Fpasswd", "nothing.mp4", f"{theirs['id']}.upload"):
        assert requests.get(f"{tally.url}/clips/{name}", timeout=10).status_code in (400, 404)
        refused += 1

    # At most 50 clips in a library, uploaded or not.
    owned = len(requests.get(f"{tally.url}/api/clips", headers=auth(host), timeout=10).json()["clips"])
    for _ in range(50 - owned):
        assert announce(tally, host).status_code == 201
    assert error_code(announce(tally, host)) == "too_many_clips"
    refused += 1
    figures.record("clip library: foreign credentials, gaps, oversize, unplayable and redirecting files, stages, names, the cap",
                   sent=refused, refused=refused)


def test_a_clip_completed_twice_at_once_stays_ready(tally, tmp_path):
    """A second `complete` while the first checks the file is refused, not taken as a broken
    upload (which would delete the clip the first is making ready)."""
    import subprocess
    import threading
    path = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30", "-t", "4", "-pix_fmt", "yuv420p",
                    "-c:v", "libx264", str(path)], check=True, timeout=60)
    data = path.read_bytes()
    host = tally.register()
    clip = announce(tally, host, size=len(data)).json()
    assert requests.patch(tally.url + clip["upload_url"], data=data, headers={**auth(host), "Upload-Offset": "0"}, timeout=30).status_code == 200
    replies = []
    complete = lambda: replies.append(requests.post(f"{tally.url}/api/clips/{clip['id']}/complete", headers=auth(host), timeout=60))
    threads = [threading.Thread(target=complete) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(reply.status_code in (200, 409) for reply in replies), [(r.status_code, r.text) for r in replies]
    assert any(reply.status_code == 200 for reply in replies)
    ready = requests.get(f"{tally.url}/api/clips/{clip['id']}", headers=auth(host), timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    assert requests.get(tally.url + ready.json()["url"], timeout=10).status_code == 200
