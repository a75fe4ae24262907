"""The watch page's links: anyone holding one reaches only the watch routes, a host cannot
fill the registry with them, and a forged or other broadcast's link opens nothing."""
import pytest
import requests

from hostile import WebSocket, auth, broadcast


def test_watch_links_are_capped_and_open_nothing_else(tally, figures):
    token = tally.register()
    show = broadcast(tally, token)
    statuses = [requests.post(f"{tally.url}/api/broadcasts/{show}/shares", headers=auth(token), json={}, timeout=10).status_code
                for _ in range(25)]
    assert statuses[:20] == [201] * 20 and set(statuses[20:]) == {429}, statuses
    figures.record("watch links: 25 made in a burst", sent=25, refused=statuses.count(429))

    stranger = tally.register()
    share = requests.post(f"{tally.url}/api/broadcasts/{show}/shares", headers=auth(stranger), json={}, timeout=10)
    assert share.status_code == 403


def test_a_watch_link_is_no_credential_anywhere_else(tally):
    token = tally.register()
    show = broadcast(tally, token)
    other = broadcast(tally, token, title="Other")
    link = requests.post(f"{tally.url}/api/broadcasts/{show}/shares", headers=auth(token), json={}, timeout=10).json()["token"]
    for path in [f"/api/broadcasts/{show}", f"/api/broadcasts/{show}/invites", "/api/ice-servers", "/api/auth/me"]:
        assert requests.get(tally.url + path, headers=auth(link), timeout=10).status_code == 401, path
    assert requests.get(f"{tally.url}/api/watch/{other}?share={link}", timeout=10).status_code == 401
    with pytest.raises(ConnectionError):
        WebSocket(tally.url, link)
