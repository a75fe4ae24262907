"""An independent WebRTC stack, aiortc, publishes a tone and a test pattern to /api/echo and
decodes what comes back: Opus that is still the tone, VP8 frames of the pattern's size."""
import asyncio
import fractions
import math

import numpy
import requests
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame, VideoFrame

SAMPLE_RATE = 48000
TONE_HZ = 440


class ToneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self):
        super().__init__()
        self.samples = 0

    async def recv(self):
        count = SAMPLE_RATE // 50
        if self.samples:
            await asyncio.sleep(0.02)
        t = (numpy.arange(count) + self.samples) / SAMPLE_RATE
        wave = (0.5 * 32767 * numpy.sin(2 * math.pi * TONE_HZ * t)).astype(numpy.int16)
        frame = AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.samples += count
        return frame


class PatternTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self):
        super().__init__()
        self.count = 0

    async def recv(self):
        if self.count:
            await asyncio.sleep(1 / 30)
        image = numpy.zeros((240, 320, 3), numpy.uint8)
        image[:, :, 1] = 200
        image[:, (self.count * 4) % 320:, 2] = 255
        frame = VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = self.count * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.count += 1
        return frame


async def echo_round_trip(url, token):
    pc = RTCPeerConnection(RTCConfiguration(bundlePolicy="max-bundle"))
    pc.addTrack(ToneTrack())
    pc.addTrack(PatternTrack())
    received = {"audio": [], "video": []}

    async def consume(track):
        while True:
            frame = await track.recv()
            received[track.kind].append(frame)

    pc.on("track", lambda track: asyncio.ensure_future(consume(track)))
    await pc.setLocalDescription(await pc.createOffer())
    response = await asyncio.to_thread(
        requests.post, url + "/api/echo", data=pc.localDescription.sdp,
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 201, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    for _ in range(200):
        if len(received["video"]) >= 60 and len(received["audio"]) >= 200:
            break
        await asyncio.sleep(0.1)
    await pc.close()
    return received, response.headers["Location"]


def test_aiortc_decodes_its_tone_and_pattern_back(webrtc_tally):
    token = webrtc_tally.register()
    received, location = asyncio.run(echo_round_trip(webrtc_tally.url, token))
    assert location.startswith("/api/echo/")
    videos, audios = received["video"], received["audio"]
    assert len(videos) >= 60, f"{len(videos)} video frames came back"
    assert (videos[-1].width, videos[-1].height) == (320, 240)
    green = videos[-1].to_ndarray(format="bgr24")[:, :, 1].mean()
    assert green > 150, f"the pattern's green plane averages {green:.0f}"

    assert len(audios) >= 200, f"{len(audios)} audio frames came back"
    samples = numpy.concatenate([frame.to_ndarray().reshape(-1) for frame in audios[-50:]]).astype(numpy.float64)
    rms = math.sqrt(numpy.mean(samples ** 2))
    assert rms > 3000, f"the echoed audio is near silent (RMS {rms:.0f})"
    # The decoder hands back interleaved channels; the first is enough to find the tone.
    first_channel = numpy.concatenate([f.to_ndarray().reshape(-1)[:: len(f.layout.channels)] for f in audios[-25:]]).astype(numpy.float64)
    spectrum = numpy.abs(numpy.fft.rfft(first_channel))
    peak = numpy.argmax(spectrum) * audios[-1].sample_rate / len(first_channel)
    assert abs(peak - TONE_HZ) < 10, f"the echoed tone peaks at {peak:.0f} Hz"
