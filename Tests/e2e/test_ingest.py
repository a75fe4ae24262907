"""Ingest from encoders: ffmpeg publishes over RTMP as OBS would, viewers watch HLS through
signed URLs, the slate holds the stream while the encoder is away, and passthrough costs
next to no CPU."""
import re
import subprocess
import time

import requests
from conftest import wait_for
from nginx_rtmp import NginxRTMP
from test_program import close_to, grab_frame

OBS_LIKE = ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
            "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-f", "flv"]


def publish_live(url, log_path, size="640x360", container="flv"):
    """ffmpeg as an encoder in real time: a test picture and a tone, x264 + AAC, 2 s keyframes."""
    return subprocess.Popen(
        ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", *OBS_LIKE[:-1], container, url],
        stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))


def ffprobe(target, *entries):
    result = subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "5000000", *entries, "-of", "csv=p=0", target],
                            capture_output=True, text=True, timeout=30)
    return result.stdout.strip(), result.returncode


def wait_until(what, condition, timeout=20):
    value = wait_for(condition, timeout=timeout, interval=0.2)
    assert value, f"timed out waiting for {what}"
    return value


def hls_within_six_seconds(stream_url, started, what="HLS that ffprobe decodes"):
    """Waits for HLS with H.264 and AAC that ffprobe decodes; the `codec,width,height` lines.
    The issue's bar: no later than 6 s after the publish began at `started`."""
    def decodes():
        out, code = ffprobe(stream_url, "-show_entries", "stream=codec_name,width,height")
        return out if code == 0 and "h264" in out and "aac" in out else None
    streams = wait_until(what, decodes, timeout=15)
    elapsed = time.time() - started
    assert elapsed <= 6, f"HLS took {elapsed:.1f} s from the publish"
    return streams


def start_stream(tally, token, stream_id="show", **settings):
    reply = requests.post(tally.url + "/api/streams", json={"stream_id": stream_id, "action": "start", **settings},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()


def signed_url(tally, token, stream_id="show"):
    reply = requests.get(f"{tally.url}/api/hls/{stream_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def segment_urls(playlist_url):
    """Absolute segment URLs of the live playlist, signature included."""
    text = requests.get(playlist_url, timeout=10).text
    base = playlist_url.split("/index.m3u8")[0]
    return text, [f"{base}/{line}" for line in text.splitlines() if line and not line.startswith("#")]


def test_rtmp_publish_serves_signed_hls_and_the_slate_bridges_a_dropped_encoder(start_tally, tmp_path):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_INGEST_SLATE_SECONDS": "30"})
    token = tally.register()
    auth = {"Authorization": f"Bearer {token}"}
    created = start_stream(tally, token)
    assert created["status"] == "starting"
    key = created["stream_key"]
    publish_url = created["ingest"]["rtmp_publish_url"]
    assert publish_url == created["ingest"]["rtmp"] + "/" + key and publish_url.startswith("rtmp://127.0.0.1:")
    # The key is shown once; listings only hint at it.
    listed = requests.get(tally.url + "/api/streams", headers=auth, timeout=10).json()["streams"]
    assert [s["stream_id"] for s in listed] == ["show"] and "stream_key" not in listed[0] and listed[0]["stream_key_hint"].endswith(key[-4:])

    # A wrong key is refused at publish: ffmpeg gives up, nothing reaches the stream.
    wrong = subprocess.run(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "5", *OBS_LIKE,
                            created["ingest"]["rtmp"] + "/live_not_the_key"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode != 0, wrong.stderr
    debug = requests.get(tally.url + "/api/debug/show", headers=auth, timeout=10).json()
    assert debug["publishers_since_start"] == 0 and debug["segments"] == []
    assert "publish refused" in tally.logs()

    started = time.time()
    encoder = publish_live(publish_url, tmp_path / "encoder1.log")
    try:
        meta = signed_url(tally, token)
        stream_url = meta["data"]["stream_url"]
        assert meta["data"]["hls_url"] == f"{tally.url}/hls/show/index.m3u8" and "token=" in stream_url
        # is_live means playable: the moment it says so, the playlist is there.
        became_live = wait_until("is_live", lambda: signed_url(tally, token)["data"]["is_live"] or None, timeout=15)
        assert became_live and requests.get(stream_url, timeout=10).status_code == 200

        def decodes():
            out, code = ffprobe(stream_url, "-show_entries", "stream=codec_name,width,height")
            return out if code == 0 and "h264" in out else None
        streams = wait_until("HLS that ffprobe decodes", decodes, timeout=15)
        elapsed = time.time() - started
        assert elapsed <= 6, f"HLS took {elapsed:.1f} s from the publish"
        assert "h264,640,360" in streams and "aac" in streams, streams

        # Signed URLs only: none is 401, a forged one 403.
        assert requests.get(meta["data"]["hls_url"], timeout=10).status_code == 401
        forged = re.sub(r"token=[0-9a-f]", "token=x", stream_url)
        assert requests.get(forged, timeout=10).status_code == 403
        text, segments = segment_urls(stream_url)
        assert segments and all("token=" in s for s in segments)
        assert requests.get(segments[0], timeout=10).headers["content-type"] == "video/mp2t"
        assert requests.get(segments[0].split("?")[0], timeout=10).status_code == 401

        status = requests.get(tally.url + "/api/streams/show", headers=auth, timeout=10).json()
        assert status["status"] == "running" and status["is_live"] is True
        assert signed_url(tally, token)["data"]["is_live"] is True
        time.sleep(3)
        debug = requests.get(tally.url + "/api/debug/show", headers=auth, timeout=10).json()
        assert debug["video"]["width"] == 640 and debug["audio"]["sample_rate"] == 48000
        assert 800_000 < debug["bitrate"] < 3_000_000, debug
        assert 25 <= debug["frames_per_second"] <= 35, debug
        assert debug["hls_viewers"] >= 1
        # /metrics adds the streams up and names none of them.
        metrics = requests.get(tally.url + "/metrics", timeout=10).text
        bitrate = [float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("tally_ingest_bitrate_bps ")]
        assert bitrate and bitrate[0] > 500_000, metrics[-2000:]
        assert "show" not in metrics
    finally:
        encoder.kill()
        encoder.wait()

    # The encoder died: viewers keep a live playlist showing the slate.
    killed = time.time()
    wait_until("the slate", lambda: "#EXT-X-DISCONTINUITY" in segment_urls(stream_url)[0], timeout=15)
    wait_until("a whole slate segment", lambda: len(segment_urls(stream_url)[0].split("#EXT-X-DISCONTINUITY")[-1].split(".ts")) > 2, timeout=15)
    text, segments = segment_urls(stream_url)
    out, code = ffprobe(segments[-1], "-show_entries", "stream=codec_name,width,height")
    assert code == 0 and "h264,640,360" in out, out
    assert "#EXT-X-ENDLIST" not in text
    snapshot = signed_url(tally, token)
    assert snapshot["status"] == "running" and snapshot["data"]["is_live"] is False
    assert time.time() - killed < 25

    # Back with the same key: the stream resumes, its timestamps still moving forward.
    encoder = publish_live(publish_url, tmp_path / "encoder2.log")
    try:
        wait_until("the encoder's return", lambda: segment_urls(stream_url)[0].count("#EXT-X-DISCONTINUITY") >= 2, timeout=20)
        wait_until("a segment after the return", lambda: segment_urls(stream_url)[0].split("#EXT-X-DISCONTINUITY")[-1].count(".ts") >= 2, timeout=15)
        starts = segment_start_times(stream_url)
        assert all(b > a for a, b in zip(starts, starts[1:])), f"segment start times go backwards: {starts}"
        assert requests.get(tally.url + "/api/debug/show", headers=auth, timeout=10).json()["publishers_since_start"] == 2

        # Stopped through the API: the encoder is cut off and the playlist ends.
        stopped = requests.post(tally.url + "/api/streams", json={"stream_id": "show", "action": "stop"}, headers=auth, timeout=10)
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
        encoder.wait(timeout=15)
        assert "#EXT-X-ENDLIST" in segment_urls(stream_url)[0]
    finally:
        encoder.kill()
        encoder.wait()
    again = subprocess.run(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "3", *OBS_LIKE, publish_url],
                           capture_output=True, text=True, timeout=30)
    assert again.returncode != 0, "a stopped stream took a publish"


def test_passthrough_repackages_1080p_at_6_mbps_for_under_a_tenth_of_a_core(start_tally, tmp_path):
    source = tmp_path / "source.flv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-t", "24", "-c:v", "libx264", "-preset", "ultrafast",
                    "-b:v", "6M", "-maxrate", "6M", "-bufsize", "12M", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-f", "flv", str(source)], check=True, timeout=120)
    tally = start_tally({"TALLY_HOST": "127.0.0.1"})
    token = tally.register()
    created = start_stream(tally, token, "bigshow")
    encoder = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-i", str(source), "-c", "copy", "-f", "flv", created["ingest"]["rtmp_publish_url"]],
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "encoder.log", "wb"))
    try:
        stream_url = signed_url(tally, token, "bigshow")["data"]["stream_url"]
        wait_until("HLS", lambda: ffprobe(stream_url, "-show_entries", "stream=codec_name")[1] == 0, timeout=15)
        time.sleep(2)

        def cpu_seconds():
            fields = open(f"/proc/{tally.process.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s

        before, wall = cpu_seconds(), time.time()
        time.sleep(10)
        share = (cpu_seconds() - before) / (time.time() - wall)
        debug = requests.get(tally.url + "/api/debug/bigshow", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert debug["video"]["width"] == 1920 and debug["video"]["height"] == 1080
        assert debug["bitrate"] > 5_000_000, debug
        print(f"passthrough of {debug['bitrate'] / 1e6:.1f} Mbps 1080p: {share * 100:.1f} % of a core")
        assert share < 0.10, f"tally used {share * 100:.1f} % of a core to repackage"
    finally:
        encoder.kill()
        encoder.wait()


def segment_start_times(stream_url):
    starts = []
    for url in segment_urls(stream_url)[1]:
        out, code = ffprobe(url, "-show_entries", "format=start_time")
        assert code == 0, url
        starts.append(float(out))
    return starts


def test_srt_publish_checks_key_and_passphrase_and_survives_a_dropped_encoder(start_tally, tmp_path):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_INGEST_SLATE_SECONDS": "30"})
    token = tally.register()
    passphrase = "correct-horse-battery"
    created = start_stream(tally, token, "srtshow", srt_passphrase=passphrase)
    assert created["srt_encrypted"] is True
    publish_url = created["ingest"]["srt_publish_url"]
    assert publish_url.startswith("srt://127.0.0.1:") and publish_url.endswith(f"r=live/{created['stream_key']},m=publish")

    def attempt(url):
        return subprocess.run(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "4",
                               *OBS_LIKE[:-1], "mpegts", url], capture_output=True, text=True, timeout=60)

    wrong_key = attempt(created["ingest"]["srt"] + f"?streamid=#!::r=live/live_wrong,m=publish&passphrase={passphrase}")
    assert wrong_key.returncode != 0, wrong_key.stderr
    no_passphrase = attempt(publish_url)
    assert no_passphrase.returncode != 0, no_passphrase.stderr
    debug = requests.get(tally.url + "/api/debug/srtshow", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert debug["publishers_since_start"] == 0 and debug["segments"] == []

    started = time.time()
    encoder = publish_live(f"{publish_url}&passphrase={passphrase}", tmp_path / "srt1.log", container="mpegts")
    try:
        stream_url = signed_url(tally, token, "srtshow")["data"]["stream_url"]

        streams = hls_within_six_seconds(stream_url, started, "HLS from SRT")
        assert "h264,640,360" in streams, streams
        debug = requests.get(tally.url + "/api/debug/srtshow", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert debug["publisher"]["transport"] == "srt" and debug["audio"]["sample_rate"] == 48000
        assert (debug["video"]["width"], debug["video"]["height"]) == (640, 360), "the size comes from the SPS"
        assert "#EXT-X-DISCONTINUITY" not in debug["playlist"], "both tracks from the first segment on"
    finally:
        encoder.kill()
        encoder.wait()
    wait_until("the slate", lambda: "#EXT-X-DISCONTINUITY" in segment_urls(stream_url)[0], timeout=45)
    encoder = publish_live(f"{publish_url}&passphrase={passphrase}", tmp_path / "srt2.log", container="mpegts")
    try:
        wait_until("the encoder's return", lambda: segment_urls(stream_url)[0].count("#EXT-X-DISCONTINUITY") >= 2, timeout=45)
        wait_until("a segment after the return", lambda: segment_urls(stream_url)[0].split("#EXT-X-DISCONTINUITY")[-1].count(".ts") >= 2, timeout=15)
        starts = segment_start_times(stream_url)
        assert all(b > a for a, b in zip(starts, starts[1:])), f"segment start times go backwards: {starts}"
    finally:
        encoder.kill()
        encoder.wait()


def test_srt_carries_hevc_through_and_a_ladder_makes_h264_of_it(start_tally, tmp_path):
    tally = start_tally({"TALLY_HOST": "127.0.0.1"})
    token = tally.register()
    created = start_stream(tally, token, "hevcshow", ladder=["360p30"])
    encoder = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
         "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=60:min-keyint=60:bframes=0:log-level=error", "-b:v", "800k",
         "-c:a", "aac", "-ar", "48000", "-f", "mpegts", created["ingest"]["srt_publish_url"]],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "encoder.log", "wb"))
    try:
        stream_url = signed_url(tally, token, "hevcshow")["data"]["stream_url"]
        master = wait_until("a master playlist with both variants", lambda: (lambda text: text if "hvc1." in text and "360p30/" in text else None)(
            requests.get(stream_url, timeout=10).text), timeout=20)
        # Each variant is announced with its own codec: the HEVC source untouched, the rendition H.264.
        source_line, rendition_line = (line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:"))
        assert 'CODECS="hvc1.1.6.' in source_line and 'CODECS="avc1.' in rendition_line, master
        base, query = stream_url.split("/index.m3u8")[0], stream_url.split("?", 1)[1]

        def decodes(url, expected):
            out, code = ffprobe(url, "-show_entries", "stream=codec_name,width,height")
            return code == 0 and expected in out and "aac" in out
        wait_until("the HEVC source", lambda: decodes(f"{base}/source/index.m3u8?{query}", "hevc,854,480"), timeout=15)
        wait_until("the H.264 rendition", lambda: decodes(f"{base}/360p30/index.m3u8?{query}", "h264,640,360"), timeout=20)
        debug = requests.get(tally.url + "/api/debug/hevcshow", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert debug["status"] == "running" and (debug["video"]["width"], debug["video"]["height"]) == (854, 480), debug
    finally:
        encoder.kill()
        encoder.wait()


GREEN = (30, 200, 60)


def test_an_rtmp_publisher_put_on_stage_appears_in_the_program(start_tally, tmp_path):
    receiver = NginxRTMP(tmp_path / "youtube")
    tally = start_tally({"TALLY_HOST": "127.0.0.1"})
    token = tally.register()
    headers = {"Authorization": f"Bearer {token}"}
    created = start_stream(tally, token, "cam")
    encoder = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "color=c=0x1EC83C:size=640x360:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", *OBS_LIKE, created["ingest"]["rtmp_publish_url"]],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "encoder.log", "wb"))
    try:
        broadcast = requests.post(tally.url + "/api/broadcasts", json={"title": "Ingest on stage"}, headers=headers, timeout=10).json()["id"]
        reply = requests.post(f"{tally.url}/api/broadcasts/{broadcast}/destinations", headers=headers, timeout=10,
                              json={"platform": "custom", "name": "YouTube", "rtmp_url": receiver.url(), "stream_key": "yt-key"})
        assert reply.status_code == 201, reply.text
        stage_url = f"{tally.url}/api/broadcasts/{broadcast}/stage"
        unknown = requests.put(stage_url, json={"layout": "grid", "participants": [], "streams": ["nope"], "banner": None}, headers=headers, timeout=10)
        assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_stream"
        placed = requests.put(stage_url, json={"layout": "grid", "participants": [], "streams": ["cam"], "banner": None}, headers=headers, timeout=10)
        assert placed.status_code == 200 and placed.json()["streams"] == ["cam"], placed.text
        assert requests.get(stage_url, headers=headers, timeout=10).json()["streams"] == ["cam"]
        assert requests.post(f"{tally.url}/api/broadcasts/{broadcast}/start", headers=headers, timeout=30).status_code == 200

        def destination_live():
            destinations = requests.get(f"{tally.url}/api/broadcasts/{broadcast}/destinations", headers=headers, timeout=10).json()["destinations"]
            return destinations[0]["status"] == "live"
        assert wait_for(destination_live, 20), tally.logs()[-3000:]
        grabbed = []

        def shows_the_feed():
            grabbed.append(grab_frame(f"{receiver.url()}/yt-key"))
            return close_to(grabbed[-1][360, 640], GREEN)
        assert wait_for(shows_the_feed, 30, 1), f"the program's centre is {grabbed[-1][360, 640]}, not the encoder's green"
        picture = grabbed[-1]
        for y, x in ((250, 500), (450, 780)):
            assert close_to(picture[y, x], GREEN), (y, x, picture[y, x])
        # The feed sits in its layout rectangle: the stage backdrop shows at the top edge.
        assert not close_to(picture[3, 640], GREEN), picture[3, 640]
        assert requests.post(f"{tally.url}/api/broadcasts/{broadcast}/end", headers=headers, timeout=30).status_code == 200
    finally:
        encoder.kill()
        encoder.wait()
        receiver.stop()


def test_an_on_publish_webhook_gets_the_nginx_form_and_its_answer_decides(start_tally, tmp_path):
    import http.server
    import threading
    from urllib.parse import parse_qs

    calls = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            calls.append({k: v[0] for k, v in form.items()})
            self.send_response(403 if form.get("token") != ["letmein"] else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_ON_PUBLISH_URL": f"http://127.0.0.1:{server.server_port}/hook"})
        token = tally.register()
        created = start_stream(tally, token, "hooked")
        publish_url = created["ingest"]["rtmp_publish_url"]

        refused = subprocess.run(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "3", *OBS_LIKE,
                                  publish_url + "?token=wrong"], capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0, "the webhook's 403 did not refuse the publish"
        assert calls and calls[-1]["call"] == "publish" and calls[-1]["app"] == "live" and calls[-1]["name"] == created["stream_key"]
        assert calls[-1]["addr"] == "127.0.0.1" and calls[-1]["stream_id"] == "hooked" and calls[-1]["token"] == "wrong"
        assert "on_publish answered 403" in tally.logs()

        encoder = publish_live(publish_url + "?token=letmein", tmp_path / "hooked.log")
        try:
            stream_url = signed_url(tally, token, "hooked")["data"]["stream_url"]
            wait_until("HLS after the webhook allowed it", lambda: ffprobe(stream_url, "-show_entries", "stream=codec_name")[1] == 0, timeout=15)
            assert calls[-1]["token"] == "letmein"
        finally:
            encoder.kill()
            encoder.wait()
        # A key the store does not know never reaches the webhook.
        before = len(calls)
        subprocess.run(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "2", *OBS_LIKE,
                        created["ingest"]["rtmp"] + "/live_unknown?token=letmein"], capture_output=True, timeout=30)
        assert len(calls) == before
    finally:
        server.shutdown()


def test_a_ladder_adds_renditions_under_a_master_playlist(start_tally, tmp_path):
    tally = start_tally({"TALLY_HOST": "127.0.0.1"})
    token = tally.register()
    created = start_stream(tally, token, "laddered", ladder=["360p30"])
    assert created["ladder"] == ["360p30"]
    bad = requests.post(tally.url + "/api/streams", json={"stream_id": "laddered", "action": "start", "ladder": ["4k"]},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bad.status_code == 400 and "360p30" in bad.json()["error"]["message"]
    encoder = publish_live(created["ingest"]["rtmp_publish_url"], tmp_path / "ladder.log", size="854x480")
    try:
        stream_url = signed_url(tally, token, "laddered")["data"]["stream_url"]
        master = wait_until("a master playlist with the rendition", lambda: (lambda text: text if "360p30/index.m3u8" in text else None)(
            requests.get(stream_url, timeout=10).text), timeout=20)
        assert "#EXT-X-STREAM-INF:" in master and "source/index.m3u8?expires=" in master and "RESOLUTION=640x360" in master, master
        base = stream_url.split("/index.m3u8")[0]
        query = stream_url.split("?", 1)[1]
        rendition = f"{base}/360p30/index.m3u8?{query}"
        source = f"{base}/source/index.m3u8?{query}"

        def decodes(url, size):
            out, code = ffprobe(url, "-show_entries", "stream=codec_name,width,height")
            return code == 0 and f"h264,{size}" in out and "aac" in out
        wait_until("the 360p30 rendition", lambda: decodes(rendition, "640,360"), timeout=20)
        assert decodes(source, "854,480")
        assert requests.get(f"{base}/720p30/index.m3u8?{query}", timeout=10).status_code == 404
        assert requests.get(f"{base}/360p30/index.m3u8", timeout=10).status_code == 401
    finally:
        encoder.kill()
        encoder.wait()


def packet_hashes(path):
    """MD5 of every video packet of an FLV file, as stored (ffmpeg copies, nothing decoded)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy", "-f", "framemd5", "-"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split(",")[-1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def test_a_stream_is_restreamed_to_rtmp_destinations_as_it_comes(start_tally, tmp_path):
    youtube = NginxRTMP(tmp_path / "youtube")
    try:
        check_restreaming(start_tally, tmp_path, youtube)
    finally:
        youtube.stop()


def check_restreaming(start_tally, tmp_path, youtube):
    source = tmp_path / "source.flv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-t", "12", *OBS_LIKE, str(source)], check=True, timeout=120)
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_INGEST_SLATE_SECONDS": "30"})
    token = tally.register()
    auth = {"Authorization": f"Bearer {token}"}
    created = start_stream(tally, token, "relayed")
    assert created["destinations"] == []
    destinations = f"{tally.url}/api/streams/relayed/destinations"
    added = requests.post(destinations, json={"platform": "custom", "rtmp_url": youtube.url(), "stream_key": "relay-one-KEY1"},
                          headers=auth, timeout=10)
    assert added.status_code == 201, added.text
    relay = added.json()
    assert relay["status"] == "idle" and relay["stream_key_hint"].endswith("KEY1") and "relay-one" not in added.text
    bad = requests.post(destinations, json={"platform": "custom", "rtmp_url": "http://example.com/live", "stream_key": "k"}, headers=auth, timeout=10)
    assert bad.status_code == 400

    def relay_status(dest_id):
        listed = requests.get(destinations, headers=auth, timeout=10).json()["destinations"]
        return next((d for d in listed if d["id"] == dest_id), None)

    encoder = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-i", str(source), "-c", "copy", "-f", "flv", created["ingest"]["rtmp_publish_url"]],
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "encoder.log", "wb"))
    try:
        wait_until("the relay to go live", lambda: relay_status(relay["id"])["status"] == "live", timeout=10)
        assert youtube.publishes("relay-one-KEY1") == 1
        # A destination added while the encoder publishes starts at once; removed, it is unpublished.
        second = requests.post(destinations, json={"platform": "custom", "rtmp_url": youtube.url(), "stream_key": "relay-two"},
                               headers=auth, timeout=10).json()
        wait_until("the second relay to go live", lambda: relay_status(second["id"])["status"] == "live", timeout=10)
        assert requests.delete(f"{destinations}/{second['id']}", headers=auth, timeout=10).status_code == 204
        assert relay_status(second["id"]) is None
        encoder.wait(timeout=30)
    finally:
        encoder.kill()
    # The encoder is gone: the slate keeps the destination's stream going, on the same publish.
    time.sleep(4)
    assert relay_status(relay["id"])["status"] == "live"
    assert youtube.publishes("relay-one-KEY1") == 1
    stopped = requests.post(tally.url + "/api/streams", json={"stream_id": "relayed", "action": "stop"}, headers=auth, timeout=10)
    assert stopped.status_code == 200
    wait_until("the relay to unpublish", lambda: relay_status(relay["id"])["status"] == "idle", timeout=10)
    time.sleep(1)
    recordings = [path for path in youtube.recordings() if path.name.startswith("relay-one-KEY1")]
    assert len(recordings) == 1, youtube.recordings()
    wait_until("nginx to close the recording", lambda: subprocess.run(["ffprobe", "-v", "error", str(recordings[0])]).returncode == 0)
    streams, _ = ffprobe(str(recordings[0]), "-show_entries", "stream=codec_name,width,height")
    assert "h264,640,360" in streams and "aac" in streams, streams
    # Nothing was transcoded: the source's pictures arrive bit for bit (keyframes gain their
    # SPS/PPS in band, so only the others are compared), from the first keyframe after the
    # relay connected to the end of the encoder's run.
    source_hashes = packet_hashes(source)
    relayed = packet_hashes(recordings[0])
    assert len(source_hashes) >= 350 and len(relayed) > len(source_hashes) / 2
    matched = len(set(relayed) & set(source_hashes))
    print(f"{matched} of {len(source_hashes)} source pictures arrived unchanged")
    assert matched >= len(source_hashes) - 2 * 60 - 12, f"only {matched} of {len(source_hashes)} source pictures arrived unchanged"
    # After the source's run, the slate followed.
    duration, _ = ffprobe(str(recordings[0]), "-show_entries", "format=duration")
    assert float(duration) >= 14, duration
