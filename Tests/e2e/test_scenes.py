"""Scenes and transitions: a host saves stage arrangements as named scenes and switches between
them in one request; with the cross-fade chosen, the program at an nginx-rtmp receiver goes
from one to the next through pictures that show both."""
import subprocess
import threading
import time

import numpy
import requests

from conftest import wait_for
from nginx_rtmp import NginxRTMP
from test_program import BLUE, RED, Studio, close_to, grab_frame


def frames(url, seconds, width=160, height=90):
    """Every program picture for `seconds`, small, as RGB arrays."""
    result = subprocess.run(["ffmpeg", "-v", "error", "-rw_timeout", "10000000", "-i", url, "-t", str(seconds), "-vf", f"scale={width}:{height}",
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=seconds + 30)
    count = len(result.stdout) // (width * height * 3)
    return numpy.frombuffer(result.stdout[:count * width * height * 3], numpy.uint8).reshape(count, height, width, 3)


def test_scenes_switch_the_program_with_a_cross_fade(webrtc_tally, tmp_path):
    receiver = NginxRTMP(tmp_path / "receiver")
    studio = Studio(webrtc_tally, {"youtube": (receiver, "key")})
    url = webrtc_tally.url
    scenes = f"{url}/api/broadcasts/{studio.id}/scenes"
    try:
        red, blue = requests.get(f"{url}/api/broadcasts/{studio.id}/stage", headers=studio.headers, timeout=10).json()["participants"]
        made = {}
        for name, who in (("Red alone", red), ("Blue alone", blue)):
            reply = requests.post(scenes, headers=studio.headers, timeout=10,
                                  json={"name": name, "stage": {"layout": "solo", "participants": [who], "banner": {"text": name}}})
            assert reply.status_code == 201, reply.text
            made[name] = reply.json()["id"]
        # The stage as it is now, saved under a name: the grid of both.
        reply = requests.post(scenes, headers=studio.headers, timeout=10, json={"name": "Both"})
        assert reply.status_code == 201 and reply.json()["stage"]["participants"] == [red, blue], reply.text
        listed = requests.get(scenes, headers=studio.headers, timeout=10).json()["scenes"]
        assert [s["name"] for s in listed] == ["Red alone", "Blue alone", "Both"]
        # Only the broadcast's owner keeps or shows its scenes.
        stranger = {"Authorization": f"Bearer {webrtc_tally.register()}"}
        assert requests.get(scenes, headers=stranger, timeout=10).status_code == 403
        assert requests.post(f"{scenes}/{made['Red alone']}/show", headers=stranger, timeout=10).status_code == 403
        assert requests.post(f"{scenes}/{made['Red alone']}/show", timeout=10).status_code == 401

        reply = requests.put(f"{url}/api/broadcasts/{studio.id}/stage", headers=studio.headers, timeout=10,
                             json={"layout": "grid", "participants": [red, blue], "transition": "fade"})
        assert reply.status_code == 200 and reply.json()["transition"] == "fade", reply.text
        shown = requests.post(f"{scenes}/{made['Red alone']}/show", headers=studio.headers, timeout=10)
        assert shown.status_code == 200 and shown.json()["layout"] == "solo" and shown.json()["transition"] == "fade", shown.text
        studio.go_live()
        assert wait_for(lambda: studio.destination_status("youtube") == "live", 20), webrtc_tally.logs()[-3000:]
        program = f"{receiver.url()}/key"
        assert wait_for(lambda: close_to(grab_frame(program)[300, 640], RED), 30, 1), webrtc_tally.logs()[-3000:]

        # Watch the program while the host switches to the other scene.
        watched = {}
        watcher = threading.Thread(target=lambda: watched.update(pictures=frames(program, 8)))
        watcher.start()
        time.sleep(4)
        assert requests.post(f"{scenes}/{made['Blue alone']}/show", headers=studio.headers, timeout=10).status_code == 200
        watcher.join()
        centres = [picture[38, 80].astype(int) for picture in watched["pictures"]]
        assert len(centres) > 100, len(centres)
        reds = [i for i, c in enumerate(centres) if close_to(c, RED)]
        blues = [i for i, c in enumerate(centres) if close_to(c, BLUE)]
        assert reds and blues and max(reds) < min(blues), "red, then blue"
        # Between the last red picture and the first blue one, pictures that are both: red's
        # share falling as blue's grows.
        between = centres[max(reds) + 1:min(blues)]
        mixed = [c for c in between if c[0] > 60 and c[2] > 60]
        assert len(mixed) >= 5, [tuple(c) for c in between]
        assert all(a[0] + 25 >= b[0] for a, b in zip(mixed, mixed[1:])), [tuple(c) for c in mixed]

        # Back to cuts; a deleted scene leaves the others.
        requests.put(f"{url}/api/broadcasts/{studio.id}/stage", headers=studio.headers, timeout=10,
                     json={"layout": "solo", "participants": [blue], "transition": "cut"}).raise_for_status()
        assert requests.delete(f"{scenes}/{made['Red alone']}", headers=studio.headers, timeout=10).status_code == 204
        assert [s["name"] for s in requests.get(scenes, headers=studio.headers, timeout=10).json()["scenes"]] == ["Blue alone", "Both"]
        assert studio.end().status_code == 200
    finally:
        studio.close()
        receiver.stop()
