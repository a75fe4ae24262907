"""Chromium publishes camera and mic to /api/echo and gets both back through the whole
stack: ICE-lite, DTLS, SRTP, RTP/RTCP. Once over UDP, once with only ICE-TCP offered."""
import time

import pytest

CONNECT = """
async ({token, tcpOnly}) => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 480}});
  const pc = new RTCPeerConnection();
  stream.getTracks().forEach(track => pc.addTransceiver(track, {direction: 'sendrecv', streams: [stream]}));
  const remote = new MediaStream();
  pc.ontrack = event => remote.addTrack(event.track);
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch('/api/echo', {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}});
  let answer = await response.text();
  if (response.status !== 201) return {status: response.status, answer};
  if (tcpOnly) answer = answer.split('\\r\\n').filter(line => !(line.startsWith('a=candidate') && line.includes(' udp '))).join('\\r\\n');
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
  const video = document.createElement('video');
  video.autoplay = true; video.muted = true; video.playsInline = true; video.srcObject = remote;
  document.body.appendChild(video);
  window.pc = pc; window.echoVideo = video;
  return {status: response.status, location: response.headers.get('Location'), answer};
}
"""

STATS = """
async () => {
  const report = await window.pc.getStats();
  const out = {videoFrames: 0, audioPackets: 0, videoWidth: window.echoVideo.videoWidth, protocol: null, nacks: 0};
  const byId = new Map();
  report.forEach(s => byId.set(s.id, s));
  report.forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.videoFrames = s.framesDecoded || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioPackets = s.packetsReceived || 0;
    if (s.type === 'outbound-rtp' && s.kind === 'video') out.nacks = s.nackCount || 0;
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const pair = byId.get(s.selectedCandidatePairId);
      const local = pair && byId.get(pair.localCandidateId);
      out.protocol = local ? local.protocol : null;
    }
  });
  return out;
}
"""


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_chromium_gets_its_audio_and_video_back(chromium, webrtc_tally, transport):
    token = webrtc_tally.register()
    page = chromium.new_page()
    page.goto(webrtc_tally.url + "/api/health")  # a secure (loopback) origin for getUserMedia
    result = page.evaluate(CONNECT, {"token": token, "tcpOnly": transport == "tcp"})
    assert result["status"] == 201, result
    assert result["location"].startswith("/api/echo/")
    if transport == "tcp":
        assert "tcptype passive" in result["answer"]

    page.wait_for_function("window.echoVideo && window.echoVideo.videoWidth > 0", timeout=30000)
    first = page.evaluate(STATS)
    assert first["protocol"] == transport, first
    time.sleep(5)
    second = page.evaluate(STATS)
    assert second["videoWidth"] > 0
    assert second["videoFrames"] > first["videoFrames"] + 50, (first, second)
    assert second["audioPackets"] > first["audioPackets"] + 150, (first, second)

    status = page.evaluate("""async ({token, location}) => (await fetch(location, {method: 'DELETE',
        headers: {'Authorization': 'Bearer ' + token}})).status""", {"token": token, "location": result["location"]})
    assert status == 200
    page.close()
    logs = webrtc_tally.logs()
    assert "WebRTC session connected" in logs and "closed by the client" in logs
