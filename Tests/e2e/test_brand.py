"""A host's brand and a countdown scene at an nginx-rtmp receiver: the theme's accent colours
the program's banner and name tags, a change reaches the program while live, the host's next
show starts with it, and a countdown scene puts a clock on the accent in the middle of the
program that counts down until another scene takes it off."""
import time

import numpy
import requests

from conftest import wait_for
from nginx_rtmp import NginxRTMP
from test_program import Studio, close_to, grab_frame

MAGENTA = (200, 0, 200)
GREEN = (0, 160, 60)


def count_close(area, rgb, tolerance=50):
    return int(numpy.all(numpy.abs(area.astype(int) - numpy.array(rgb)) <= tolerance, axis=2).sum())


def test_a_theme_colours_the_program_and_a_countdown_scene_counts_down(webrtc_tally, tmp_path):
    receiver = NginxRTMP(tmp_path / "receiver")
    studio = Studio(webrtc_tally, {"youtube": (receiver, "key")})
    url = webrtc_tally.url
    stage_url = f"{url}/api/broadcasts/{studio.id}/stage"
    try:
        red, blue = requests.get(stage_url, headers=studio.headers, timeout=10).json()["participants"]
        arranged = {"layout": "grid", "participants": [red, blue], "banner": {"text": "Brand test"}}
        refused = requests.put(stage_url, headers=studio.headers, timeout=10, json={**arranged, "theme": {"accent": "magenta"}})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_theme", refused.text
        reply = requests.put(stage_url, headers=studio.headers, timeout=10,
                             json={**arranged, "theme": {"accent": "#C800C8", "nametags": "accent", "banner": "accent"}})
        assert reply.status_code == 200, reply.text
        assert reply.json()["theme"] == {"accent": "#c800c8", "font": "sans", "nametags": "accent", "banner": "accent"}
        # A stage sent without a theme keeps the show's.
        reply = requests.put(stage_url, headers=studio.headers, timeout=10, json=arranged)
        assert reply.json()["theme"]["accent"] == "#c800c8", reply.text

        studio.go_live()
        assert wait_for(lambda: studio.destination_status("youtube") == "live", 20), webrtc_tally.logs()[-3000:]
        program = f"{receiver.url()}/key"
        # 720p: the banner's band runs from y 612 to 684, from x 64; the name tags sit on the tiles above it.
        assert wait_for(lambda: close_to(grab_frame(program)[648, 80], MAGENTA), 30, 1), webrtc_tally.logs()[-3000:]
        picture = grab_frame(program)
        assert count_close(picture[:600], MAGENTA) > 600, "no name tags on the accent"

        # Live, the accent turns green and the name tags dark: the banner follows, no tag keeps a colour.
        reply = requests.put(stage_url, headers=studio.headers, timeout=10,
                             json={**arranged, "theme": {"accent": "#00a03c", "nametags": "shade", "banner": "accent"}})
        assert reply.status_code == 200, reply.text
        assert wait_for(lambda: close_to(grab_frame(program)[648, 80], GREEN), 30, 1)
        picture = grab_frame(program)
        assert count_close(picture[:600], MAGENTA) < 50 and count_close(picture[:600], GREEN) < 100

        # The theme is the host's: the next show they create starts with it.
        assert requests.get(f"{url}/api/theme", headers=studio.headers, timeout=10).json()["accent"] == "#00a03c"
        later = requests.post(f"{url}/api/broadcasts", json={"title": "Next week"}, headers=studio.headers, timeout=10).json()["id"]
        assert requests.get(f"{url}/api/broadcasts/{later}/stage", headers=studio.headers, timeout=10).json()["theme"]["accent"] == "#00a03c"
        assert requests.get(f"{url}/api/theme", timeout=10).status_code == 401

        # A countdown scene: shown, a clock on the accent in the middle, under the scene's name.
        scenes = f"{url}/api/broadcasts/{studio.id}/scenes"
        too_long = requests.post(scenes, headers=studio.headers, timeout=10, json={"name": "Too long", "countdown_seconds": 4000})
        assert too_long.status_code == 400, too_long.text
        made = requests.post(scenes, headers=studio.headers, timeout=10, json={"name": "Starting soon", "countdown_seconds": 120})
        assert made.status_code == 201 and made.json()["countdown_seconds"] == 120, made.text
        both = requests.post(scenes, headers=studio.headers, timeout=10, json={"name": "Both"}).json()["id"]
        shown = requests.post(f"{scenes}/{made.json()['id']}/show", headers=studio.headers, timeout=10)
        assert shown.status_code == 200, shown.text
        countdown = shown.json()["countdown"]
        assert countdown["label"] == "Starting soon" and abs(countdown["until"] / 1000 - time.time() - 120) < 10, countdown
        assert shown.json()["theme"]["accent"] == "#00a03c", "a scene keeps the show's theme"
        # The card's top margin, above its label: the accent alone.
        assert wait_for(lambda: close_to(grab_frame(program)[240, 640], GREEN), 30, 1), "no countdown in the middle"
        card = lambda picture: picture[300:440, 520:760].astype(int)
        first = card(grab_frame(program))
        time.sleep(3)
        second = card(grab_frame(program))
        assert (numpy.abs(first - second).max(axis=2) > 100).sum() > 200, "the clock did not count down"

        # Another scene takes it off.
        assert requests.post(f"{scenes}/{both}/show", headers=studio.headers, timeout=10).json()["countdown"] is None
        assert wait_for(lambda: not close_to(grab_frame(program)[240, 640], GREEN), 30, 1), "the countdown stayed"
        assert studio.end().status_code == 200
    finally:
        studio.close()
        receiver.stop()
