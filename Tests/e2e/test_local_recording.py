"""Local recordings: each participant's page records its own camera and mic (MediaRecorder)
and uploads it while the show runs; the recording lists every participant's file, which plays
at the camera's resolution for the length of the show, and the server's own copy of what it
received from each. A page killed mid-show leaves its pieces in IndexedDB, and reopening the
invite link uploads them."""
import json
import subprocess
import time
from contextlib import contextmanager

import requests

from conftest import CHROMIUM_ARGS, wait_for, wait_in_page
from nginx_rtmp import NginxRTMP
from test_studio import ROOT, add_destination, create_broadcast, enter_as_guest, shoot, signed_up

UPLOAD_STATE = "() => document.querySelector('#local-recording')?.dataset.state ?? ''"
# The takes this page keeps in IndexedDB: bytes recorded, and pieces not yet uploaded.
LOCAL_TAKES = """async () => { const db = await new Promise((resolve, reject) => { const o = indexedDB.open('tally-local-recordings', 1);
    o.onsuccess = () => resolve(o.result); o.onerror = () => reject(o.error); });
  const all = name => new Promise(resolve => { const r = db.transaction(name).objectStore(name).getAll(); r.onsuccess = () => resolve(r.result); });
  const takes = await all('takes'), pieces = await all('pieces');
  return takes.map(t => ({id: t.id, recorded: t.recorded, pending: pieces.filter(p => p.take === t.id).reduce((n, p) => n + p.blob.size, 0)})); }"""


def host_token(page):
    return page.evaluate("JSON.parse(localStorage.getItem('tally.session')).access_token")


def open_studio(host):
    host.click("#broadcasts button.invite")
    host.wait_for_selector("#broadcasts button.invite[data-link]")
    link = host.get_attribute("#broadcasts button.invite", "data-link")
    host.click("#broadcasts a:has-text('Open studio')")
    wait_in_page(host, "document.querySelector('#camera').options.length > 0")
    host.click("#enter-studio")
    host.wait_for_selector("#studio:not([hidden])", timeout=20_000)
    return link


def go_live(host, live):
    host.once("dialog", lambda dialog: dialog.accept())
    host.click("#go-live")
    assert wait_for(lambda: host.inner_text("#status") == ("live" if live else "ended"), 20), host.inner_text("#status")


def participant_tracks(url, token):
    headers = {"Authorization": f"Bearer {token}"}
    recordings = requests.get(url + "/api/recordings", headers=headers, timeout=10).json()["recordings"]
    assert len(recordings) == 1, recordings
    return requests.get(f"{url}/api/recordings/{recordings[0]['id']}", headers=headers, timeout=10).json()["participants"]


def probe(path):
    shown = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height:format=duration", "-of", "json", str(path)],
                           capture_output=True, text=True, timeout=60, check=True)
    return json.loads(shown.stdout)


def download(url, token, track, path):
    with requests.get(url + track["download_url"], headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=60) as reply:
        assert reply.status_code == 200, reply.text
        with open(path, "wb") as file:
            for chunk in reply.iter_content(1 << 20):
                file.write(chunk)
    probed = probe(path)
    # ffprobe decodes every picture, none refused: at least five a second (a busy machine
    # slows the fake camera, never that far).
    counted = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames",
                              "-of", "json", str(path)], capture_output=True, text=True, timeout=180)
    assert counted.returncode == 0 and "error" not in counted.stderr.lower(), counted.stderr[-2000:]
    frames = int(json.loads(counted.stdout)["streams"][0]["nb_read_frames"])
    assert frames >= 5 * float(probed["format"]["duration"]), (frames, probed)
    return probed


@contextmanager
def studio_with_guest(start_tally, tmp_path, title):
    """A host's studio with one guest who came in by the invite link, a destination set:
    (tally, host page, guest page, invite link)."""
    from playwright.sync_api import sync_playwright
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_WEB_DIR": str(ROOT / "web")})
    receiver = NginxRTMP(tmp_path / "receiver")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            host = signed_up(browser, tally.url, "Hana Host")
            create_broadcast(host, title)
            add_destination(host, receiver.url(), "local-key")
            link = open_studio(host)
            yield tally, host, enter_as_guest(browser, link, "Gina Guest"), link
        finally:
            browser.close()
            receiver.stop()


def test_every_participant_records_locally_and_uploads_during_the_show(start_tally, tmp_path):
    with studio_with_guest(start_tally, tmp_path, "Local recordings") as (tally, host, guest, _):
        go_live(host, True)
        started = time.time()
        for page in (host, guest):
            assert wait_for(lambda: page.evaluate(UPLOAD_STATE) == "recording", 20), page.inner_text("#local-recording")
        # Uploaded as it goes: halfway through, the server has most of each take.
        time.sleep(30)
        token = host_token(host)
        halfway = [t for t in participant_tracks(tally.url, token) if t["source"] == "local"]
        assert sorted(t["name"] for t in halfway) == ["Gina Guest", "Hana Host"], halfway
        assert all(t["status"] == "uploading" and t["size_bytes"] > 1_000_000 for t in halfway), halfway
        time.sleep(max(0, 60 - (time.time() - started)))
        go_live(host, False)
        for page in (host, guest):
            assert wait_for(lambda: page.evaluate(UPLOAD_STATE) == "done", 60), page.inner_text("#local-recording")
            assert "uploaded" in page.inner_text("#local-recording")
        tracks = participant_tracks(tally.url, token)
        local = [t for t in tracks if t["source"] == "local"]
        assert sorted(t["name"] for t in local) == ["Gina Guest", "Hana Host"], tracks
        for track in local:
            assert track["status"] == "ready" and track["take"] == 1, track
            assert (track["width"], track["height"]) == (1280, 720), track
            assert 55 <= track["duration_seconds"] <= 65, track
            probed = download(tally.url, token, track, tmp_path / f"{track['id']}.webm")
            video = next(s for s in probed["streams"] if s["codec_type"] == "video")
            assert (video["width"], video["height"]) == (1280, 720), probed
            assert any(s["codec_type"] == "audio" for s in probed["streams"]), probed
            assert 55 <= float(probed["format"]["duration"]) <= 65, probed
        # The server's own copy of each, as it received them: the fallback, completed within
        # a second or two of the end.
        copies = lambda: [t for t in participant_tracks(tally.url, token) if t["source"] == "server"]
        assert wait_for(lambda: len(copies()) == 2 and all(t["status"] != "recording" for t in copies()), 15), copies()
        copies = copies()
        assert sorted(t["name"] for t in copies) == ["Gina Guest", "Hana Host"], tracks
        for track in copies:
            assert track["status"] == "ready" and track["width"] > 0 and 50 <= track["duration_seconds"] <= 65, track
            probed = download(tally.url, token, track, tmp_path / f"{track['id']}.mkv")
            assert any(s["codec_type"] == "audio" for s in probed["streams"]), probed
            assert 50 <= float(probed["format"]["duration"]) <= 66, probed


def test_a_page_killed_mid_show_uploads_what_it_kept_when_reopened(start_tally, tmp_path):
    with studio_with_guest(start_tally, tmp_path, "Killed page") as (tally, host, guest, link):
        # The guest's uplink for HTTP is slow, so pieces wait in IndexedDB.
        devtools = guest.context.new_cdp_session(guest)
        devtools.send("Network.enable")
        devtools.send("Network.emulateNetworkConditions", {"offline": False, "latency": 50, "downloadThroughput": -1, "uploadThroughput": 40_000})
        go_live(host, True)
        live_at = time.time()
        assert wait_for(lambda: guest.evaluate(UPLOAD_STATE) == "recording", 20), (guest.inner_text("#local-recording"), tally.logs()[-3000:])
        time.sleep(12)
        # The guest sees how much of their recording is up (saved as a screenshot).
        assert "% uploaded" in guest.inner_text("#local-recording")
        shoot(guest, "upload-progress")
        time.sleep(max(0, 20 - (time.time() - live_at)))
        token = host_token(host)
        at_kill = next(t for t in participant_tracks(tally.url, token) if t["name"] == "Gina Guest" and t["source"] == "local")
        kept = guest.evaluate(LOCAL_TAKES)
        recorded_seconds = time.time() - live_at
        guest.close(run_before_unload=False)
        assert len(kept) == 1 and kept[0]["id"].lower() == at_kill["id"].lower(), (kept, at_kill)
        # What the server lacked when the page died.
        assert kept[0]["recorded"] - at_kill["size_bytes"] > 300_000, (kept, at_kill)

        # The invite link again, in the same browser profile: the old take goes up, a new one starts.
        again = guest.context.new_page()
        again.goto(link)
        again.fill("#guest-name", "Gina Guest")
        again.click("#enter-studio")
        again.wait_for_selector("#studio:not([hidden])", timeout=20_000)
        first = lambda: next(t for t in participant_tracks(tally.url, token) if t["id"] == at_kill["id"])
        assert wait_for(lambda: first()["status"] == "ready", 60), first()
        assert first()["size_bytes"] >= 0.9 * kept[0]["recorded"], (first(), kept)
        assert first()["duration_seconds"] >= recorded_seconds - 6, (first(), recorded_seconds)
        assert wait_for(lambda: again.evaluate(UPLOAD_STATE) == "recording", 20)
        time.sleep(5)
        go_live(host, False)
        assert wait_for(lambda: again.evaluate(UPLOAD_STATE) == "done", 60), again.inner_text("#local-recording")
        # The reopened page joined as a new participant of the same name, with a take of its own.
        takes = [t for t in participant_tracks(tally.url, token) if t["name"] == "Gina Guest" and t["source"] == "local"]
        assert len(takes) == 2 and all(t["status"] == "ready" for t in takes), takes
        assert len({t["participant_id"] for t in takes}) == 2, takes
        for track in takes:
            probed = download(tally.url, token, track, tmp_path / f"{track['id']}.webm")
            assert any(s["codec_type"] == "video" and s["width"] == 1280 for s in probed["streams"]), probed
