"""Video clips: a host's library uploaded in pieces, checked and thumbnailed; a clip on stage
plays in the program at an nginx-rtmp receiver, picture and sound, beside people or alone on
the whole frame; taken off stages when deleted."""
import subprocess
import time

import numpy
import requests

from conftest import wait_for
from nginx_rtmp import NginxRTMP
from test_program import RED, Studio, close_to, grab_frame

GREEN = (20, 200, 40)


def make_clip(path, rgb=GREEN, seconds=3, tone=1000, size="640x360"):
    """A picture of one colour with a sine tone, as an editor would export it (H.264 + AAC in MP4)."""
    colour = "0x%02x%02x%02x" % rgb
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color={colour}:s={size}:r=25", "-f", "lavfi",
                    "-i", f"sine=frequency={tone}:sample_rate=48000", "-t", str(seconds), "-pix_fmt", "yuv420p",
                    "-c:v", "libx264", "-c:a", "aac", "-movflags", "+faststart", str(path)], check=True, timeout=60)
    return path.read_bytes()


def upload_clip(url, headers, data, name="Intro", loop=False, piece=1 << 20):
    """Announces the clip, sends it in pieces at their offsets, then completes it."""
    reply = requests.post(f"{url}/api/clips", headers=headers, json={"name": name, "size_bytes": len(data), "loop": loop}, timeout=10)
    assert reply.status_code == 201, reply.text
    clip = reply.json()
    assert clip["status"] == "uploading" and clip["received_bytes"] == 0
    for offset in range(0, len(data), piece):
        reply = requests.patch(url + clip["upload_url"], headers={**headers, "Upload-Offset": str(offset)},
                               data=data[offset:offset + piece], timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["received_bytes"] == min(len(data), offset + piece)
    reply = requests.post(f"{url}/api/clips/{clip['id']}/complete", headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def program_audio(url, seconds=2):
    """Mono 48 kHz samples of the program, a few seconds in."""
    result = subprocess.run(["ffmpeg", "-v", "error", "-rw_timeout", "10000000", "-i", url, "-ss", "2", "-t", str(seconds),
                             "-vn", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"], capture_output=True, timeout=30)
    return numpy.frombuffer(result.stdout, numpy.float32)


def tone_strength(samples, frequency):
    """How far the tone stands above the rest of the spectrum (1 Hz bins)."""
    spectrum = numpy.abs(numpy.fft.rfft(samples[:48000]))
    peak = spectrum[frequency - 5:frequency + 6].max()
    return peak / (numpy.median(spectrum) + 1e-9)


def test_a_clip_on_stage_plays_in_the_program_with_its_sound_then_fills_the_frame(webrtc_tally, tmp_path):
    receiver = NginxRTMP(tmp_path / "receiver")
    studio = Studio(webrtc_tally, {"youtube": (receiver, "key")})
    url = webrtc_tally.url
    try:
        clip = upload_clip(url, studio.headers, make_clip(tmp_path / "intro.mp4"), loop=True)
        assert clip["status"] == "ready" and (clip["width"], clip["height"]) == (640, 360) and clip["has_audio"], clip
        assert abs(clip["duration_seconds"] - 3) < 0.2, clip
        thumbnail = requests.get(url + clip["thumbnail_url"], timeout=10)
        assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/jpeg" and thumbnail.content[:3] == b"\xff\xd8\xff"
        media = requests.get(url + clip["url"], headers={"Range": "bytes=0-99"}, timeout=10)
        assert media.status_code == 206 and media.headers["Content-Type"] == "video/mp4" and len(media.content) == 100
        listed = requests.get(f"{url}/api/clips", headers=studio.headers, timeout=10).json()["clips"]
        assert [c["id"] for c in listed] == [clip["id"]]

        # The red participant, then the clip, in a grid: both halves show, and the tone is heard.
        stage = requests.get(f"{url}/api/broadcasts/{studio.id}/stage", headers=studio.headers, timeout=10).json()
        red = stage["participants"][0]
        reply = requests.put(f"{url}/api/broadcasts/{studio.id}/stage", headers=studio.headers, timeout=10,
                             json={"layout": "grid", "participants": [red], "clips": [clip["id"]]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["clips"] == [clip["id"]] and reply.json()["clip_fullscreen"] is False
        studio.go_live()
        assert wait_for(lambda: studio.destination_status("youtube") == "live", 20), webrtc_tally.logs()[-3000:]
        program = f"{receiver.url()}/key"

        def red_left_green_right():
            frame = grab_frame(program)
            return close_to(frame[360, 320], RED) and close_to(frame[360, 960], GREEN)
        assert wait_for(red_left_green_right, 30, 1), webrtc_tally.logs()[-3000:]
        # Past the clip's three seconds: it loops, so it is still there, sound and all.
        time.sleep(4)
        assert close_to(grab_frame(program)[360, 960], GREEN)
        assert tone_strength(program_audio(program), 1000) > 50

        # Full screen: the clip alone on the whole program.
        reply = requests.put(f"{url}/api/broadcasts/{studio.id}/stage", headers=studio.headers, timeout=10,
                             json={"layout": "grid", "participants": [red], "clips": [clip["id"]], "clip_fullscreen": True})
        assert reply.status_code == 200, reply.text

        def all_green():
            frame = grab_frame(program)
            return all(close_to(frame[y, x], GREEN) for y, x in ((100, 100), (360, 320), (360, 960), (620, 1180)))
        assert wait_for(all_green, 30, 1), webrtc_tally.logs()[-3000:]

        # Deleting the clip takes it off the stage; the participant fills the program again.
        assert requests.delete(f"{url}/api/clips/{clip['id']}", headers=studio.headers, timeout=10).status_code == 204
        stage = requests.get(f"{url}/api/broadcasts/{studio.id}/stage", headers=studio.headers, timeout=10).json()
        assert stage["clips"] == [] and stage["clip_fullscreen"] is False and stage["participants"] == [red]
        assert wait_for(lambda: close_to(grab_frame(program)[360, 640], RED), 30, 1)
        assert requests.get(url + clip["url"], timeout=10).status_code == 404
        assert studio.end().status_code == 200
    finally:
        studio.close()
        receiver.stop()


def test_a_clip_played_once_holds_its_last_picture_in_silence(webrtc_tally, tmp_path):
    receiver = NginxRTMP(tmp_path / "receiver")
    studio = Studio(webrtc_tally, {"youtube": (receiver, "key")})
    url = webrtc_tally.url
    try:
        clip = upload_clip(url, studio.headers, make_clip(tmp_path / "short.mp4", seconds=2, tone=1500), name="Sting")
        reply = requests.put(f"{url}/api/broadcasts/{studio.id}/stage", headers=studio.headers, timeout=10,
                             json={"layout": "solo", "participants": [], "clips": [clip["id"]]})
        assert reply.status_code == 200, reply.text
        studio.go_live()
        assert wait_for(lambda: studio.destination_status("youtube") == "live", 20), webrtc_tally.logs()[-3000:]
        program = f"{receiver.url()}/key"
        assert wait_for(lambda: close_to(grab_frame(program)[360, 640], GREEN), 30, 1), webrtc_tally.logs()[-3000:]
        time.sleep(3)
        assert close_to(grab_frame(program)[360, 640], GREEN)
        assert tone_strength(program_audio(program), 1500) < 10
        assert studio.end().status_code == 200
    finally:
        studio.close()
        receiver.stop()


def test_the_host_uploads_a_clip_in_the_studio_and_plays_it_on_stage(start_tally, tmp_path):
    from playwright.sync_api import sync_playwright

    from conftest import CHROMIUM_ARGS, wait_in_page
    from test_accessibility import audit
    from test_studio import ARTIFACTS, COMMENT, SIZES, create_broadcast, shoot, signed_up
    tally = start_tally({"TALLY_HOST": "127.0.0.1"})
    path = tmp_path / "Opening titles.mp4"
    make_clip(path, seconds=4)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            host = signed_up(browser, tally.url, "Clara Clips")
            create_broadcast(host, "Clip show")
            host.click("#broadcasts a:has-text('Open studio')")
            wait_in_page(host, "document.querySelector('#camera').options.length > 0")
            host.click("#enter-studio")
            host.wait_for_selector("#studio:not([hidden])", timeout=20_000)
            assert host.is_visible("#no-clips")
            host.set_input_files("#clip-file", str(path))
            host.wait_for_selector("#clips li[data-clip]", timeout=30_000)
            assert "Opening titles · 4 s" in host.inner_text("#clips li")
            wait_in_page(host, "document.querySelector('#clips .clip-thumbnail').naturalWidth > 0")
            # The host and the clip on stage, a comment on screen: the preview plays the clip after the host.
            host.click("button[aria-label='Add Clara Clips to stage']")
            host.click("button[aria-label='Add clip Opening titles to stage']")
            host.wait_for_selector("#stage .clip-tile video")
            wait_in_page(host, "document.querySelector('#stage .clip-tile video').currentTime > 0.5", timeout=20_000)
            assert host.evaluate("[...document.querySelectorAll('#stage .tile')].map(t => t.dataset.clip ? 'clip' : 'person')") == ["person", "clip"]
            host.fill("#chat-text", "Loved the intro!")
            host.press("#chat-text", "Enter")
            host.click("button[aria-label=\"Show Clara Clips's message on stream\"]")
            wait_in_page(host, "document.querySelector('#stage .comment') !== null")
            assert "Loved the intro!" in host.evaluate(COMMENT)
            # The stage saved as a scene: the scene list beside the clip and the comment.
            host.fill("#scene-name", "Intro with chat")
            host.press("#scene-name", "Enter")
            host.wait_for_selector("#scenes li[data-scene]")
            assert "Intro with chat" in host.inner_text("#scenes")
            host.select_option("#transition", "fade")
            wait_in_page(host, "window.studio.state.stage.transition === 'fade'")
            host.evaluate("window.scrollTo(0, 0)")
            shoot(host, "studio-clip")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for size, viewport in SIZES.items():
                host.set_viewport_size(viewport)
                host.wait_for_timeout(800)
                host.screenshot(path=str(ARTIFACTS / f"studio-clip-scenes-{size}.png"), full_page=True)
            host.set_viewport_size(SIZES["desktop"])
            reports = audit(host, "studio with a clip")
            # A countdown scene, shown: the preview's clock on the accent counts down under its name; stopped, it goes.
            host.fill("#scene-name", "Starting soon")
            host.fill("#scene-countdown", "300")
            host.press("#scene-name", "Enter")
            host.wait_for_selector("#scenes li:has-text('Starting soon (countdown 5:00)')")
            host.click("button[aria-label='Show scene Starting soon']")
            host.wait_for_selector("#stage .countdown")
            clock = "document.querySelector('#stage .countdown strong')?.textContent"
            first = host.evaluate(clock)
            assert first in ("5:00", "4:59", "4:58"), first
            wait_in_page(host, f"{clock} !== '{first}'", timeout=5_000)
            assert host.inner_text("#stage .countdown span") == "Starting soon"
            shoot(host, "studio-countdown")
            reports += audit(host, "studio with a countdown")
            host.click("#countdown-clear")
            wait_in_page(host, "document.querySelector('#stage .countdown') === null")
            host.click("button[aria-label='Show scene Intro with chat']")
            # Full screen: the clip alone, in the solo layout; back again.
            host.click("button[aria-label='Show clip Opening titles full screen']")
            wait_in_page(host, "document.querySelector('#stage').dataset.layout === 'solo' && document.querySelectorAll('#stage .tile').length === 1")
            host.click("button[aria-label='Stop showing clip Opening titles full screen']")
            wait_in_page(host, "document.querySelectorAll('#stage .tile').length === 2")
            # Deleted: off the library and the stage.
            host.click("button[aria-label='Delete clip Opening titles']")
            wait_in_page(host, "document.querySelector('#stage .clip-tile') === null && document.querySelector('#clips li') === null")
            assert not reports, "\n\n".join(reports)
        finally:
            browser.close()
