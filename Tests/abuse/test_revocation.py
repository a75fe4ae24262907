"""Item 9 of the review: credentials that outlive a sign-out, a stolen refresh token, an
invite that cannot be withdrawn, and another site's page opening the studio's socket."""
import time

import pytest
import requests

from hostile import WebSocket, auth, broadcast, invite


def wait_for_revocation(socket, seconds=12):
    """The messages until the server says the session is revoked and closes; None if it never does."""
    deadline = time.monotonic() + seconds
    socket.sock.settimeout(seconds)
    while time.monotonic() < deadline:
        message = socket.receive()
        if message is None:
            return None
        if message["event"] == "error" and message["data"]["code"] == "session_revoked":
            return message
    return None


def test_a_studio_socket_ends_with_its_sign_out(tally, figures):
    email = "host@example.com"
    token = tally.register(email=email)
    broadcast_id = broadcast(tally, token)
    socket = WebSocket(tally.url, token)
    try:
        assert socket.reply_to("join-broadcast", {"broadcast_id": broadcast_id})["event"] == "joined"
        assert requests.post(tally.url + "/api/auth/logout", headers=auth(token), timeout=10).status_code == 204
        assert wait_for_revocation(socket) is not None, "the socket kept working after logout"
    finally:
        socket.close()
    figures.record("studio socket kept open after logout", sent=1, refused=1)


def test_a_withdrawn_invite_ends_the_guests_socket(tally, figures):
    host = tally.register()
    broadcast_id = broadcast(tally, host)
    reply = requests.post(f"{tally.url}/api/broadcasts/{broadcast_id}/invites", json={"name": "G"}, headers=auth(host), timeout=10).json()
    socket = WebSocket(tally.url, reply["token"])
    try:
        assert socket.reply_to("join-broadcast", {"broadcast_id": broadcast_id})["event"] == "joined"
        assert requests.delete(f"{tally.url}/api/broadcasts/{broadcast_id}/invites/{reply['id']}", headers=auth(host), timeout=10).status_code == 204
        assert wait_for_revocation(socket) is not None, "the guest's socket kept working"
        again = requests.get(f"{tally.url}/api/broadcasts/{broadcast_id}", headers=auth(reply["token"]), timeout=10)
        assert again.status_code == 401 and again.json()["error"]["code"] == "invite_revoked"
    finally:
        socket.close()
    figures.record("withdrawn invite: its socket and its requests", sent=2, refused=2)


def test_a_stolen_refresh_token_ends_the_whole_sign_in(tally, figures):
    session = requests.post(tally.url + "/api/auth/register", json={"email": "v@example.com", "password": "correct horse", "name": "V"}, timeout=10).json()
    stolen = session["refresh_token"]
    thief = requests.post(tally.url + "/api/auth/refresh", json={"refresh_token": stolen}, timeout=10).json()
    owner = requests.post(tally.url + "/api/auth/refresh", json={"refresh_token": stolen}, timeout=10)
    assert owner.status_code == 401
    after = [requests.post(tally.url + "/api/auth/refresh", json={"refresh_token": thief["refresh_token"]}, timeout=10),
             requests.get(tally.url + "/api/auth/me", headers=auth(thief["access_token"]), timeout=10)]
    assert [r.status_code for r in after] == [401, 401], [r.text for r in after]
    figures.record("refresh token replayed after rotation: the thief's successor tokens", sent=3, refused=3)


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example"])
def test_another_sites_page_cannot_open_the_studio_socket(tally, origin):
    token = tally.register()
    with pytest.raises(ConnectionError):
        WebSocket(tally.url, token, origin=origin)
    WebSocket(tally.url, token, origin=tally.url).close()


def test_the_studio_pages_carry_a_content_security_policy(tally):
    """Item 9: there was no CSP, so an injected script could read the access token."""
    for path in ["/", "/dashboard.html", f"/join/{'0' * 8}-0000-0000-0000-{'0' * 12}"]:
        reply = requests.get(tally.url + path, timeout=10)
        policy = reply.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy, (path, policy)
        assert reply.headers.get("Referrer-Policy") == "no-referrer", path
        assert "<script>" not in reply.text and " style=" not in reply.text, f"{path} has inline script or style the policy would block"
    api = requests.get(tally.url + "/api/health", timeout=10)
    assert api.headers.get("X-Content-Type-Options") == "nosniff" and "Content-Security-Policy" not in api.headers
