"""A theme and a countdown take only what the server knows: a colour written #rrggbb, fonts
and styles from its lists, a countdown within the hour whatever number is sent; the font
route serves its three faces and no other file; only the host sets a show's theme, and only
an account has a theme of its own."""
import requests

from hostile import auth, broadcast, error_code, invite


def test_a_theme_and_a_countdown_take_only_known_values(tally, figures):
    host = tally.register()
    show = broadcast(tally, host)
    guest = invite(tally, host, show)
    stage = f"{tally.url}/api/broadcasts/{show}/stage"
    refused = 0
    for theme in ({"accent": "red"}, {"accent": "#12345"}, {"accent": "#+12345"}, {"accent": "#1234567"}, {"accent": "url(x)"},
                  {"font": "../../../etc/passwd"}, {"font": "DejaVuSans-Bold"}, {"nametags": "neon"}, {"banner": "<script>"}):
        reply = requests.put(stage, json={"layout": "grid", "participants": [], "theme": theme}, headers=auth(host), timeout=10)
        assert reply.status_code == 400 and error_code(reply) == "invalid_theme", (theme, reply.text)
        reply = requests.put(f"{tally.url}/api/theme", json=theme, headers=auth(host), timeout=10)
        assert reply.status_code == 400 and error_code(reply) == "invalid_theme", (theme, reply.text)
        refused += 2
    for countdown in ({"seconds": 3700}, {"seconds": 9223372036854775807}, {"seconds": -9223372036854775808}, {"seconds": 1e30},
                      {"label": "", "seconds": 60}, {"label": "x" * 81, "seconds": 60}, {"until": 99999999999999999}, {"until": -5}):
        reply = requests.put(stage, json={"layout": "grid", "participants": [], "countdown": countdown}, headers=auth(host), timeout=10)
        assert reply.status_code == 400, (countdown, reply.text)
        refused += 1
    # Nothing was kept: the stage and the host's theme are still the standard ones.
    assert requests.get(stage, headers=auth(host), timeout=10).json()["theme"]["accent"] == "#2563eb"
    assert requests.get(f"{tally.url}/api/theme", headers=auth(host), timeout=10).json()["accent"] == "#2563eb"

    # Only the host themes a show; a guest has no theme of their own.
    reply = requests.put(stage, json={"layout": "grid", "participants": [], "theme": {"accent": "#000000"}}, headers=auth(guest), timeout=10)
    assert reply.status_code == 403, reply.text
    for reply in (requests.get(f"{tally.url}/api/theme", headers=auth(guest), timeout=10),
                  requests.put(f"{tally.url}/api/theme", json={"accent": "#000000"}, headers=auth(guest), timeout=10),
                  requests.get(f"{tally.url}/api/theme", timeout=10)):
        assert reply.status_code in (401, 403), reply.text
        refused += 1
    refused += 1

    # The three faces, and nothing else from the disk.
    for name in ("sans", "serif", "mono"):
        font = requests.get(f"{tally.url}/fonts/{name}.ttf", timeout=10)
        assert font.status_code == 200 and font.headers["Content-Type"] == "font/ttf" and font.content[:4] == b"\x00\x01\x00\x00"
    for path in ("/fonts/..%2F..%2F..%2Fetc%2Fpasswd", "/fonts/DejaVuSans-Bold.ttf", "/fonts/sans", "/fonts/sans.ttf.bak",
                 "/fonts/%2Fusr%2Fshare%2Ffonts%2Ftruetype%2Fdejavu%2FDejaVuSans.ttf", "/fonts/serif.ttf%00.png"):
        reply = requests.get(tally.url + path, timeout=10)
        assert reply.status_code in (400, 404) and b"root:" not in reply.content, (path, reply.status_code)
        refused += 1
    figures.record("theme and countdown: unknown values, overflowing numbers, foreign credentials, font paths", sent=refused, refused=refused)
