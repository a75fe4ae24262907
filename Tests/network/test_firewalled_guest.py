"""A guest behind a firewall that lets out only HTTPS to the server: no UDP at all, no
other TCP port. Over TURN on the HTTPS port the guest joins the studio, the host sees and
hears them, and their picture goes out in the program."""
import json
import os
import subprocess
import time
from pathlib import Path

import requests
from netlab import ip

from conftest import CHROMIUM_ARGS, wait_in_page, wait_for
from test_program import close_to, grab_frame
from test_studio import signed_up
from testca import TestCA

HERE = Path(__file__).resolve().parent
SERVER_FOR_HOST, SERVER_FOR_GUEST = "10.77.4.2", "10.77.5.1"
RED = (230, 30, 30)


def relayed(url):
    metrics = requests.get(url + "/metrics", verify=False, timeout=5).text
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("tally_turn_relayed_packets_total"))


def test_a_guest_who_may_only_reach_https_joins_is_seen_and_heard_and_goes_out(lab, tmp_path):
    from playwright.sync_api import sync_playwright
    server, guest = lab.host("srv"), lab.host("guest")
    lab.wire(None, "10.77.4.1/24", server, f"{SERVER_FOR_HOST}/24")
    ip("link", "set", lab.own_links[0], "up")
    lab.wire(server, f"{SERVER_FOR_GUEST}/24", guest, "10.77.5.2/24")
    lab.firewall(guest, [f"ip daddr {SERVER_FOR_GUEST} tcp dport 443 accept"])

    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue("studio.tally.test", SERVER_FOR_HOST, SERVER_FOR_GUEST)
    _, ports = lab.tally(server, tmp_path / "data", {"TALLY_HOST": "0.0.0.0", "TALLY_HTTP_PORT": "80", "TALLY_HTTPS_PORT": "443",
                                                    "TALLY_TLS_CERT": str(cert), "TALLY_TLS_KEY": str(key)})
    assert ports["https"] == 443
    url = f"https://{SERVER_FOR_HOST}"
    # The firewall holds: from the guest, UDP and every other TCP port are closed.
    blocked = lab.check(guest, ["python3", "-c", f"import socket; s = socket.create_connection(('{SERVER_FOR_GUEST}', {ports['turn']}), timeout=2)"])
    assert blocked.returncode != 0
    open_port = lab.check(guest, ["python3", "-c", f"import socket; socket.create_connection(('{SERVER_FOR_GUEST}', 443), timeout=5)"])
    assert open_port.returncode == 0, open_port.stderr

    camera = tmp_path / "red.y4m"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0xE61E1E:s=640x360:r=30", "-t", "3", "-pix_fmt", "yuv420p", str(camera)],
                   check=True)
    home = ca.browser_home()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", env={**os.environ, "HOME": str(home)}, args=CHROMIUM_ARGS)
        visitor = None
        try:
            host = signed_up(browser, url, "Hana Host")
            host.fill("#title", "Firewall show")
            host.click("#create button[type=submit]")
            host.wait_for_selector("#broadcasts li")
            host.click("#broadcasts button.invite")
            host.wait_for_selector("#broadcasts button.invite[data-link]")
            link = host.get_attribute("#broadcasts button.invite", "data-link").replace(SERVER_FOR_HOST, SERVER_FOR_GUEST)
            broadcast_id = link.split("/join/")[1].split("?")[0]
            host.click("#broadcasts a:has-text('Open studio')")
            wait_in_page(host, "document.querySelector('#camera').options.length > 0")
            host.click("#enter-studio")
            host.wait_for_selector("#studio:not([hidden])", timeout=20_000)
            before = relayed(url)

            visitor = lab.run(guest, ["python3", str(HERE / "guest_client.py"), link, "90", str(home), str(camera)],
                              stdout=subprocess.PIPE, stderr=open(tmp_path / "guest.log", "wb"), text=True)
            entered = visitor.stdout.readline()
            assert json.loads(entered or "{}").get("entered"), (tmp_path / "guest.log").read_text()[-3000:]

            # The host sees the guest's picture and hears their sound.
            guest_on_page = """() => [...window.studio.state.participants.values()].find(e => e.info.name === 'Fiona Firewall')"""
            assert wait_for(lambda: host.evaluate(f"({guest_on_page})() !== undefined"), 20), "the guest never showed up"
            media = f"""async () => {{ const entry = ({guest_on_page})(); const out = {{frames: 0, audioEnergy: 0}};
                (await entry?.subscription?.pc.getStats())?.forEach(s => {{
                  if (s.type === 'inbound-rtp' && s.kind === 'video') out.frames = s.framesDecoded || 0;
                  if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioEnergy = s.totalAudioEnergy || 0; }});
                return out; }}"""
            assert wait_for(lambda: (lambda m: m["frames"] > 30 and m["audioEnergy"] > 0)(host.evaluate(media)), 30), host.evaluate(media)
            assert relayed(url) - before > 100, "the guest's media did not come through the relay"

            # On stage alone, then live: the program shows the guest's red camera.
            token = host.evaluate("JSON.parse(localStorage.getItem('tally.session')).access_token")
            headers = {"Authorization": f"Bearer {token}"}
            guest_id = host.evaluate(f"({guest_on_page})().info.id")
            reply = requests.put(f"{url}/api/broadcasts/{broadcast_id}/stage", headers=headers, verify=str(ca.cert), timeout=10,
                                 json={"layout": "solo", "participants": [guest_id], "banner": None})
            assert reply.status_code == 200, reply.text
            reply = requests.post(f"{url}/api/broadcasts/{broadcast_id}/start", headers=headers, verify=str(ca.cert), timeout=30)
            assert reply.status_code == 200, reply.text
            playlist = f"{url}/hls/{broadcast_id}/index.m3u8"
            assert wait_for(lambda: requests.get(playlist, verify=str(ca.cert), timeout=5).status_code == 200, 20)
            frame = grab_frame(playlist)
            assert close_to(frame[360, 640], RED), frame[360, 640]
            requests.post(f"{url}/api/broadcasts/{broadcast_id}/end", headers=headers, verify=str(ca.cert), timeout=30)
        finally:
            if visitor and visitor.poll() is None:
                visitor.terminate()
                visitor.wait(15)
            browser.close()
