"""WHIP ingest as OBS 30+ publishes: H.264 and Opus over WebRTC, the stream key as bearer
token. aiortc stands in for OBS; ffprobe reads the HLS that comes out."""
import asyncio
import time

import requests
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from test_echo_aiortc import PatternTrack, ToneTrack
from test_ingest import hls_within_six_seconds, segment_start_times, segment_urls, signed_url, start_stream, wait_until
from test_whip_whep import BackgroundLoop


async def whip_publish(url, key, video_codec="video/H264"):
    """An OBS-like WHIP publish: Opus and one video codec, no trickle. Returns (pc, reply)."""
    pc = RTCPeerConnection(RTCConfiguration(bundlePolicy="max-bundle"))
    pc.addTransceiver(ToneTrack(), direction="sendonly")
    video = pc.addTransceiver(PatternTrack(), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in (video_codec, "video/rtx")])
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    reply = await asyncio.to_thread(requests.post, url, data=pc.localDescription.sdp, headers=headers, timeout=10)
    if reply.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply.text, type="answer"))
    return pc, reply


def test_whip_publish_checks_the_key_serves_hls_and_a_republish_takes_over(start_tally):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_INGEST_SLATE_SECONDS": "30"})
    token = tally.register()
    auth = {"Authorization": f"Bearer {token}"}
    created = start_stream(tally, token, "whipshow")
    whip_url = created["ingest"]["whip"]
    assert whip_url == f"{tally.url}/ingest/whip"
    key = created["stream_key"]
    loop = BackgroundLoop()
    publishers = []
    try:
        # Refusals come before any media: no key, a wrong key, a codec passthrough cannot carry.
        for bearer, status, code in [(None, 401, "stream_key_required"), ("live_not_the_key", 403, "publish_refused")]:
            pc, reply = loop.run(whip_publish(whip_url, bearer))
            loop.run(pc.close())
            assert reply.status_code == status and reply.json()["error"]["code"] == code, reply.text
        pc, reply = loop.run(whip_publish(whip_url, key, video_codec="video/VP8"))
        loop.run(pc.close())
        assert reply.status_code == 415 and reply.json()["error"]["code"] == "unsupported_codec", reply.text
        assert requests.get(tally.url + "/api/debug/whipshow", headers=auth, timeout=10).json()["publishers_since_start"] == 0

        started = time.time()
        pc, reply = loop.run(whip_publish(whip_url, key))
        publishers.append(pc)
        assert reply.status_code == 201, reply.text
        first_location = reply.headers["Location"]
        assert first_location.startswith("/ingest/whip/")
        stream_url = signed_url(tally, token, "whipshow")["data"]["stream_url"]

        streams = hls_within_six_seconds(stream_url, started)
        assert "h264,320,240" in streams, streams
        status = requests.get(tally.url + "/api/streams/whipshow", headers=auth, timeout=10).json()
        assert status["status"] == "running" and status["is_live"] is True
        debug = requests.get(tally.url + "/api/debug/whipshow", headers=auth, timeout=10).json()
        assert debug["publisher"]["transport"] == "whip" and debug["audio"]["sample_rate"] == 48000, debug

        # The encoder reconnects with the same key: the new session takes over at once and the
        # old one is closed; timestamps keep moving forward.
        before = len(segment_urls(stream_url)[1])
        pc, reply = loop.run(whip_publish(whip_url, key))
        publishers.append(pc)
        assert reply.status_code == 201, reply.text
        second_location = reply.headers["Location"]
        assert second_location != first_location
        key_auth = {"Authorization": f"Bearer {key}"}
        wait_until("the first session to close", lambda: requests.delete(tally.url + first_location, headers=key_auth, timeout=10).status_code == 404, timeout=10)
        wait_until("segments from the new session", lambda: len(segment_urls(stream_url)[1]) >= before + 2, timeout=30)
        starts = segment_start_times(stream_url)
        assert all(b > a for a, b in zip(starts, starts[1:])), f"segment start times go backwards: {starts}"
        assert requests.get(tally.url + "/api/debug/whipshow", headers=auth, timeout=10).json()["publishers_since_start"] == 2

        # DELETE on the resource needs the stream key that made it (RFC 9725 §4.2)...
        anonymous = requests.delete(tally.url + second_location, timeout=10)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "stream_key_required", anonymous.text
        assert requests.delete(tally.url + second_location, headers={"Authorization": "Bearer live_not_the_key"}, timeout=10).status_code == 404
        assert requests.delete(tally.url + second_location, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 404
        # ...and with it ends the session: the slate holds the stream.
        assert requests.delete(tally.url + second_location, headers=key_auth, timeout=10).status_code == 200
        assert requests.delete(tally.url + second_location, headers=key_auth, timeout=10).status_code == 404
        wait_until("the slate", lambda: signed_url(tally, token, "whipshow")["data"]["is_live"] is False, timeout=10)
        text, _ = segment_urls(stream_url)
        assert "#EXT-X-ENDLIST" not in text
        assert "whip ingest: publishing" in tally.logs()
    finally:
        for pc in publishers:
            loop.run(pc.close())
        loop.close()
