"""The program end to end: two WebRTC participants on stage → native compositor → one
encode → RTMP to two nginx-rtmp receivers (YouTube and Twitch stand-ins), a recording, HLS."""
import asyncio
import fractions
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy
import requests
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from av import VideoFrame

from conftest import wait_for
from nginx_rtmp import NginxRTMP
from test_echo_aiortc import ToneTrack
from tallytest import Tally, free_port
from test_whip_whep import BackgroundLoop

RED = (230, 30, 30)
BLUE = (30, 60, 230)


class SolidTrack(MediaStreamTrack):
    """A 640×360 picture of one colour: easy to find in the program."""
    kind = "video"

    def __init__(self, rgb):
        super().__init__()
        self.count = 0
        self.image = numpy.zeros((360, 640, 3), numpy.uint8)
        self.image[:, :] = rgb[::-1]

    async def recv(self):
        if self.count:
            await asyncio.sleep(1 / 30)
        frame = VideoFrame.from_ndarray(self.image, format="bgr24")
        frame.pts = self.count * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.count += 1
        return frame


async def publish(url, token, broadcast_id, rgb=None, tracks=None):
    """aiortc publishes over WHIP: a tone and a picture of `rgb`, or the given `tracks`."""
    pc = RTCPeerConnection(RTCConfiguration(bundlePolicy="max-bundle"))
    for track in tracks or (ToneTrack(), SolidTrack(rgb)):
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    reply = await asyncio.to_thread(requests.post, f"{url}/whip/{broadcast_id}", data=pc.localDescription.sdp,
                                    headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 201, reply.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply.text, type="answer"))
    return pc, reply.headers["Location"].rsplit("/", 1)[1]


class Studio:
    """A host with a broadcast, its destinations and two aiortc participants on stage."""

    def __init__(self, tally, receivers):
        self.tally = tally
        self.email = f"host-{time.time_ns()}@example.com"
        self.token = tally.register(self.email)
        self.headers = {"Authorization": f"Bearer {self.token}"}
        reply = requests.post(tally.url + "/api/broadcasts", json={"title": "Program test"}, headers=self.headers, timeout=10)
        assert reply.status_code == 201, reply.text
        self.id = reply.json()["id"]
        self.destinations = {}
        for name, (receiver, key) in receivers.items():
            reply = requests.post(f"{tally.url}/api/broadcasts/{self.id}/destinations", headers=self.headers, timeout=10,
                                  json={"platform": "custom", "name": name, "rtmp_url": receiver.url(), "stream_key": key})
            assert reply.status_code == 201, reply.text
            self.destinations[name] = reply.json()["id"]
        self.loop = BackgroundLoop()
        self.peers = []
        participants = []
        for rgb in (RED, BLUE):
            pc, participant = self.loop.run(publish(tally.url, self.token, self.id, rgb))
            self.peers.append(pc)
            participants.append(participant)
        reply = requests.put(f"{tally.url}/api/broadcasts/{self.id}/stage", headers=self.headers, timeout=10,
                             json={"layout": "grid", "participants": participants, "banner": None})
        assert reply.status_code == 200, reply.text

    def go_live(self):
        reply = requests.post(f"{self.tally.url}/api/broadcasts/{self.id}/start", headers=self.headers, timeout=30)
        assert reply.status_code == 200, reply.text

    def end(self):
        return requests.post(f"{self.tally.url}/api/broadcasts/{self.id}/end", headers=self.headers, timeout=30)

    def destination_status(self, name):
        reply = requests.get(f"{self.tally.url}/api/broadcasts/{self.id}/destinations", headers=self.headers, timeout=10)
        return next(d for d in reply.json()["destinations"] if d["id"] == self.destinations[name])["status"]

    def close(self):
        for pc in self.peers:
            self.loop.run(pc.close())
        self.loop.close()


def probe(url, timeout=20):
    result = subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "10000000", "-show_entries",
                             "stream=codec_name,width,height,r_frame_rate,avg_frame_rate,sample_rate", "-of", "json", url],
                            capture_output=True, text=True, timeout=timeout)
    return json.loads(result.stdout or "{}").get("streams", [])


def grab_frame(url, width=1280, height=720):
    """One decoded program picture as an RGB array, a few seconds into the stream."""
    result = subprocess.run(["ffmpeg", "-v", "error", "-rw_timeout", "10000000", "-i", url, "-ss", "2", "-frames:v", "1",
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=30)
    assert len(result.stdout) == width * height * 3, result.stderr.decode(errors="replace")
    return numpy.frombuffer(result.stdout, numpy.uint8).reshape(height, width, 3)


def close_to(pixel, rgb, tolerance=60):
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, rgb))


def test_two_participants_go_out_to_two_receivers_in_grid(webrtc_tally, tmp_path):
    youtube = NginxRTMP(tmp_path / "youtube")
    twitch = NginxRTMP(tmp_path / "twitch")
    studio = Studio(webrtc_tally, {"youtube": (youtube, "yt-key"), "twitch": (twitch, "tw-key")})
    try:
        studio.go_live()
        assert wait_for(lambda: studio.destination_status("youtube") == "live" and studio.destination_status("twitch") == "live", 20), \
            webrtc_tally.logs()[-3000:]
        for receiver, key in ((youtube, "yt-key"), (twitch, "tw-key")):
            streams = probe(f"{receiver.url()}/{key}")
            video = next(s for s in streams if s["codec_name"] == "h264")
            audio = next(s for s in streams if s["codec_name"] == "aac")
            assert (video["width"], video["height"]) == (1280, 720)
            assert abs(eval(video["r_frame_rate"]) - 30) < 1, video
            assert audio["sample_rate"] == "48000"
        # Grid with two people: one tile on each half of the picture, in stage order.
        grabbed = []

        def shows_both():
            grabbed.append(grab_frame(f"{youtube.url()}/yt-key"))
            return close_to(grabbed[-1][360, 320], RED) and close_to(grabbed[-1][360, 960], BLUE)

        assert wait_for(shows_both, 30, 1), f"the program does not show red left and blue right: {grabbed[-1][360, 320]} {grabbed[-1][360, 960]}"
        picture = grabbed[-1]
        for y in (250, 360, 450):
            assert close_to(picture[y, 320], RED), picture[y, 320]
            assert close_to(picture[y, 960], BLUE), picture[y, 960]
        # The stage's backdrop shows between and around the tiles.
        assert not close_to(picture[5, 640], RED) and not close_to(picture[5, 640], BLUE)
        metrics = requests.get(webrtc_tally.url + "/metrics", timeout=10).text
        for name in ("tally_program_frames_total", "tally_program_decoded_frames_total", "tally_program_hls_segments_total"):
            assert any(line.startswith(name) and float(line.split()[-1]) > 0 for line in metrics.splitlines()), name
        assert studio.end().status_code == 200
        assert wait_for(lambda: studio.destination_status("youtube") == "stopped", 10)
    finally:
        studio.close()
        youtube.stop()
        twitch.stop()


def test_a_receiver_that_returns_gets_the_push_back_and_the_other_sees_no_gap(webrtc_tally, tmp_path):
    youtube = NginxRTMP(tmp_path / "youtube")
    twitch = NginxRTMP(tmp_path / "twitch")
    studio = Studio(webrtc_tally, {"youtube": (youtube, "yt-key"), "twitch": (twitch, "tw-key")})
    try:
        studio.go_live()
        assert wait_for(lambda: studio.destination_status("youtube") == "live" and studio.destination_status("twitch") == "live", 20)
        time.sleep(2)
        youtube.stop()
        assert wait_for(lambda: studio.destination_status("youtube") == "reconnecting", 10)
        time.sleep(10)
        youtube.start()
        returned = time.time()
        assert wait_for(lambda: youtube.publishes("yt-key") >= 2 and studio.destination_status("youtube") == "live", 10, 0.2)
        assert time.time() - returned <= 5, "the push came back more than 5 s after the receiver did"
        time.sleep(3)
        assert studio.end().status_code == 200
        time.sleep(1)
        # Twitch's recording spans the whole outage without a hole in its timestamps.
        recording = twitch.recordings()[-1]
        result = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=dts_time", "-of", "csv=p=0",
                                 str(recording)], capture_output=True, text=True, timeout=30)
        times = [float(line) for line in result.stdout.split() if line.strip()]
        assert times[-1] - times[0] > 14, times[-1] - times[0]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) < 0.5, f"largest gap {max(gaps):.3f} s"
    finally:
        studio.close()
        youtube.stop()
        twitch.stop()


def test_a_rejected_key_fails_with_the_reason_and_stops_retrying(webrtc_tally, tmp_path):
    refusing = NginxRTMP(tmp_path / "refusing", accept=False)
    studio = Studio(webrtc_tally, {"bad": (refusing, "wrong-key")})
    try:
        started = time.time()
        studio.go_live()
        assert wait_for(lambda: studio.destination_status("bad") == "failed", 10, 0.2), studio.destination_status("bad")
        assert time.time() - started <= 10
        attempts = refusing.publishes("wrong-key")
        assert 1 <= attempts <= 3
        time.sleep(4)
        assert refusing.publishes("wrong-key") == attempts, "a failed destination kept retrying"
        assert "reject" in webrtc_tally.logs().lower() or "closed the connection when asked to publish" in webrtc_tally.logs()
    finally:
        studio.end()
        studio.close()
        refusing.stop()


def test_sigkill_leaves_a_playable_recording(webrtc_tally, tmp_path):
    studio = Studio(webrtc_tally, {})
    try:
        studio.go_live()
        live_at = time.time()
        time.sleep(8)
        webrtc_tally.process.send_signal(signal.SIGKILL)
        webrtc_tally.process.wait()
        killed_after = time.time() - live_at
    finally:
        studio.close()
    files = list((webrtc_tally.data_dir / "recordings").glob("*.mp4"))
    assert len(files) == 1, files
    result = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json", str(files[0])],
                            capture_output=True, text=True, timeout=30)
    info = json.loads(result.stdout)
    assert {s["codec_name"] for s in info["streams"]} == {"h264", "aac"}
    duration = float(info["format"]["duration"])
    assert killed_after - 2 <= duration <= killed_after + 0.5, (duration, killed_after)
    # It decodes to the end.
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(files[0]), "-f", "null", "-"], capture_output=True, text=True, timeout=60)
    assert decoded.returncode == 0, decoded.stderr
    # Restarted at once, the server hands the recording back as ready.
    restarted = Tally(webrtc_tally.data_dir, {"TALLY_HOST": "127.0.0.1"}, []).wait_ready()
    try:
        login = requests.post(restarted.url + "/api/auth/login", json={"email": studio.email, "password": "correct horse"}, timeout=10)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        recording = requests.get(restarted.url + "/api/recordings", headers=headers, timeout=10).json()["recordings"][0]
        assert recording["status"] == "ready" and recording["size_bytes"] == files[0].stat().st_size
        download = requests.get(f"{restarted.url}/api/recordings/{recording['id']}/download", headers=headers, timeout=30)
        assert download.status_code == 200 and len(download.content) == recording["size_bytes"]
    finally:
        restarted.stop()


def test_hls_plays_ten_seconds_of_the_program(webrtc_tally):
    studio = Studio(webrtc_tally, {})
    try:
        studio.go_live()
        playlist = f"{webrtc_tally.url}/hls/{studio.id}/index.m3u8"
        assert wait_for(lambda: requests.get(playlist, timeout=5).status_code == 200, 15)
        reply = requests.get(playlist, timeout=5)
        assert reply.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert reply.headers["Cache-Control"] == "no-cache"
        result = subprocess.run(["ffmpeg", "-v", "error", "-i", playlist, "-t", "10", "-f", "null", "-"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        probe_result = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width", "-of", "csv=p=0", playlist],
                                      capture_output=True, text=True, timeout=30)
        assert "h264,1280" in probe_result.stdout and "aac" in probe_result.stdout
        assert studio.end().status_code == 200
        assert "#EXT-X-ENDLIST" in requests.get(playlist, timeout=5).text
        # The recording is ready, and downloads whole or by range.
        recordings = requests.get(f"{webrtc_tally.url}/api/recordings", headers=studio.headers, timeout=10).json()["recordings"]
        recording = next(r for r in recordings if r["broadcast_id"] == studio.id)
        assert recording["status"] == "ready" and recording["duration_seconds"] > 8 and recording["size_bytes"] > 100_000
        download = f"{webrtc_tally.url}/api/recordings/{recording['id']}/download"
        whole = requests.get(download, headers=studio.headers, timeout=30)
        assert whole.status_code == 200 and whole.headers["Content-Type"] == "video/mp4" and len(whole.content) == recording["size_bytes"]
        part = requests.get(download + f"?token={studio.token}", headers={"Range": "bytes=100-1099"}, timeout=30)
        assert part.status_code == 206 and part.content == whole.content[100:1100]
        assert part.headers["Content-Range"] == f"bytes 100-1099/{len(whole.content)}"
        assert requests.get(download, headers={**studio.headers, "Range": f"bytes={len(whole.content) + 5}-"}, timeout=10).status_code == 416
    finally:
        studio.end()
        studio.close()


def test_the_host_plays_and_downloads_the_recording_from_the_dashboard(start_tally, chromium):
    root = Path(__file__).resolve().parents[2]
    webrtc_tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_WEB_DIR": str(root / "web"), "TALLY_LAYOUTS_DIR": str(root / "layouts")})
    reply = requests.post(webrtc_tally.url + "/api/auth/register", timeout=10,
                          json={"email": f"dash-{time.time_ns()}@example.com", "password": "correct horse", "name": "Host"})
    assert reply.status_code == 201, reply.text
    session = reply.json()
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    broadcast = requests.post(webrtc_tally.url + "/api/broadcasts", json={"title": "Recorded show"}, headers=headers, timeout=10).json()
    assert requests.post(f"{webrtc_tally.url}/api/broadcasts/{broadcast['id']}/start", headers=headers, timeout=30).status_code == 200
    time.sleep(4)
    assert requests.post(f"{webrtc_tally.url}/api/broadcasts/{broadcast['id']}/end", headers=headers, timeout=30).status_code == 200
    page = chromium.new_page()
    page.goto(webrtc_tally.url + "/")
    page.evaluate("session => localStorage.setItem('tally.session', JSON.stringify(session))", session)
    page.goto(webrtc_tally.url + "/dashboard.html")
    page.get_by_role("button", name="Play recording Recorded show").click()
    video = page.locator("video.recording-player")
    assert wait_for(lambda: page.evaluate("v => v.readyState >= 1 && v.duration > 2", video.element_handle()), 15)
    link = page.get_by_role("link", name="Download recording Recorded show")
    href = link.get_attribute("href")
    download = requests.get(webrtc_tally.url + href, timeout=30)
    assert download.status_code == 200 and download.headers["Content-Type"] == "video/mp4"
    page.close()


def test_checking_a_destination_publishes_for_real(webrtc_tally, tmp_path):
    accepting = NginxRTMP(tmp_path / "accepting")
    refusing = NginxRTMP(tmp_path / "refusing", accept=False)
    gone = free_port()
    studio = Studio(webrtc_tally, {"good": (accepting, "good-key"), "bad": (refusing, "bad-key")})
    try:
        reply = requests.post(f"{webrtc_tally.url}/api/broadcasts/{studio.id}/destinations", headers=studio.headers, timeout=10,
                              json={"platform": "custom", "name": "gone", "rtmp_url": f"rtmp://127.0.0.1:{gone}/live", "stream_key": "k-gone"})
        studio.destinations["gone"] = reply.json()["id"]

        def check(name):
            reply = requests.post(f"{webrtc_tally.url}/api/broadcasts/{studio.id}/destinations/{studio.destinations[name]}/test",
                                  headers=studio.headers, timeout=30)
            assert reply.status_code == 200, reply.text
            return reply.json()

        assert check("good")["result"] == "ok" and accepting.publishes("good-key") == 1
        bad = check("bad")
        assert bad["result"] == "rejected" and "bad-key" not in bad["message"]
        assert check("gone")["result"] == "unreachable"
        studio.go_live()
        live = requests.post(f"{webrtc_tally.url}/api/broadcasts/{studio.id}/destinations/{studio.destinations['good']}/test",
                             headers=studio.headers, timeout=30)
        assert live.status_code == 409 and live.json()["error"]["code"] == "broadcast_live"
    finally:
        studio.end()
        studio.close()
        accepting.stop()
        refusing.stop()


def opus_packets(tally):
    """Opus packets made for WHEP players so far, from /metrics."""
    metrics = requests.get(tally.url + "/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("tally_program_player_opus_packets_total"))


def test_chromium_plays_the_program_over_whep(webrtc_tally, chromium):
    from test_whip_whep import WHEP_PLAY
    studio = Studio(webrtc_tally, {})
    try:
        page = chromium.new_page()
        page.goto(webrtc_tally.url + "/api/health")
        path = f"/whep/{studio.id}"
        # Before the broadcast is live there is no program to play.
        early = page.evaluate(WHEP_PLAY, {"token": studio.token, "path": path})
        assert early["status"] == 409 and "not_live" in early["answer"], early
        studio.go_live()
        # Live, but nobody plays: the program's sound is not transcoded to Opus for nobody.
        time.sleep(2)
        assert opus_packets(webrtc_tally) == 0
        played = wait_for(lambda: (lambda result: result if result["status"] == 201 else None)(
            page.evaluate(WHEP_PLAY, {"token": studio.token, "path": path})), 15, 1)
        assert played and played["location"].startswith(f"/whep/{studio.id}/program/"), played
        # The one 1280×720 encode, decoded by the browser; the Opus made from its AAC plays too.
        assert wait_for(lambda: page.evaluate("window.played.videoWidth") == 1280, 20), page.evaluate("window.played.videoWidth")
        stats = """async () => { const out = {frames: 0, audio: 0, codec: ''}; const codecs = {}; (await window.pc.getStats()).forEach(s => {
            if (s.type === 'codec') codecs[s.id] = s.mimeType;
            if (s.type === 'inbound-rtp' && s.kind === 'video') { out.frames = s.framesDecoded || 0; out.codec = s.codecId; }
            if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audio = s.totalSamplesReceived || 0; });
            out.codec = codecs[out.codec] || out.codec; return out; }"""
        first = page.evaluate(stats)
        time.sleep(3)
        second = page.evaluate(stats)
        assert second["codec"] == "video/H264", second
        assert second["frames"] > first["frames"] + 45, (first, second)
        assert second["audio"] > first["audio"] + 96_000, (first, second)
        assert opus_packets(webrtc_tally) > 100
        # The program's picture: the two participants' colours in their grid tiles.
        pixels = page.evaluate("""() => { const v = window.played, c = document.createElement('canvas'); c.width = 1280; c.height = 720;
            const g = c.getContext('2d'); g.drawImage(v, 0, 0, 1280, 720);
            return [g.getImageData(320, 360, 1, 1).data, g.getImageData(960, 360, 1, 1).data].map(d => [d[0], d[1], d[2]]); }""")
        assert close_to(pixels[0], RED) and close_to(pixels[1], BLUE), pixels
        location = played["location"]
        assert requests.delete(webrtc_tally.url + location, headers=studio.headers, timeout=10).status_code == 200
        assert requests.delete(webrtc_tally.url + location, headers=studio.headers, timeout=10).status_code == 404
        # A second player, still watching when the broadcast ends, is closed with the program.
        again = page.evaluate(WHEP_PLAY, {"token": studio.token, "path": path})
        assert again["status"] == 201, again
        assert studio.end().status_code == 200
        assert wait_for(lambda: page.evaluate("window.pc.connectionState") in ("disconnected", "failed", "closed"), 40), \
            page.evaluate("window.pc.connectionState")
    finally:
        studio.end()
        studio.close()
