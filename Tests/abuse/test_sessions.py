"""Items 1, 2 and 4 of the review: media sessions and participants, as a stranger, a guest
with one invite, and a flood of offers would attack them."""
import re
import time

import requests

from hostile import Watch, WebSocket, auth, broadcast, error_code, invite, offer, rss, sdp_post


def section_bomb(body, count):
    """The offer's session part and `count` small audio sections: 64 KiB cost 5 GB before."""
    head = body.split("m=", 1)[0]
    section = ("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{}\r\na=sendrecv\r\n"
               "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n")
    return head + "".join(section.format(index) for index in range(count))


def test_metrics_name_nothing_and_an_ingest_session_needs_its_key(tally, figures):
    """Anyone read a WHIP ingest session id off /metrics and ended the encoder's stream."""
    token = tally.register()
    created = requests.post(tally.url + "/api/streams", json={"stream_id": "victim", "action": "start"}, headers=auth(token), timeout=10).json()
    key = created["stream_key"]
    reply = sdp_post(tally, "/ingest/whip", key, offer("chrome-simulcast-sendonly.sdp"))
    assert reply.status_code == 201, reply.text
    location = reply.headers["Location"]
    session = location.rsplit("/", 1)[1]
    host = tally.register()
    broadcast_id = broadcast(tally, host)
    assert sdp_post(tally, f"/whip/{broadcast_id}", host, offer("chrome-simulcast-sendonly.sdp")).status_code == 201

    metrics = requests.get(tally.url + "/metrics", timeout=10).text
    for secret in (session, broadcast_id, "victim"):
        assert secret not in metrics, f"/metrics names {secret}"
    assert not re.search(r'(session|broadcast|stream)="', metrics)

    attempts = [requests.delete(tally.url + location, timeout=10),
                requests.delete(tally.url + location, headers=auth("not-the-key"), timeout=10),
                requests.delete(tally.url + location, headers=auth(token), timeout=10)]
    assert [a.status_code for a in attempts] == [401, 404, 404], [a.text for a in attempts]
    # The victim's session is still there: its own key ends it.
    assert requests.delete(tally.url + location, headers=auth(key), timeout=10).status_code == 200
    figures.record("anonymous DELETE of a WHIP ingest session", sent=len(attempts), refused=len(attempts))


def test_one_guest_invite_cannot_exhaust_webrtc(tally, figures):
    """2000 echo offers with one guest token took every session; 218 m-sections took 5 GB."""
    host = tally.register()
    broadcast_id = broadcast(tally, host)
    guest = invite(tally, host, broadcast_id)
    body = offer()
    statuses = []
    with Watch(tally) as watch:
        for _ in range(200):
            statuses.append(sdp_post(tally, "/api/echo", guest, body).status_code)
        bomb = section_bomb(body, 218)
        assert len(bomb) < 64 << 10
        bombs = [sdp_post(tally, "/api/echo", guest, bomb) for _ in range(20)]
        # The host, and WHIP into the broadcast, still get media sessions.
        assert sdp_post(tally, f"/whip/{broadcast_id}", host, offer("chrome-simulcast-sendonly.sdp")).status_code == 201
        assert sdp_post(tally, "/api/echo", host, body).status_code == 201
    watch.check()
    assert statuses.count(201) == 24 and statuses.count(429) == 176, statuses
    assert all(b.status_code == 400 and error_code(b) == "too_many_media_sections" for b in bombs)
    # Sessions that never connect are gone within ten seconds, their memory with them, and
    # the guest may test again.
    time.sleep(11)
    assert rss(tally) - watch.baseline < 50 << 20, f"{(rss(tally) - watch.baseline) >> 20} MB still held after the sessions closed"
    assert sdp_post(tally, "/api/echo", guest, body).status_code == 201
    figures.record("echo flood from one guest invite (+ 20 offers of 218 m-sections)", sent=len(statuses) + len(bombs),
                   refused=statuses.count(429) + len(bombs), watch=watch)


def test_guests_act_only_on_themselves(tally, figures):
    """A guest ended the host's publishing; every join made a new participant."""
    host = tally.register()
    broadcast_id = broadcast(tally, host)
    guest = invite(tally, host, broadcast_id)
    host_location = sdp_post(tally, f"/whip/{broadcast_id}", host, offer("chrome-simulcast-sendonly.sdp")).headers["Location"]
    cut = requests.delete(tally.url + host_location, headers=auth(guest), timeout=10)
    assert cut.status_code == 404, cut.text
    # Publishing again and again with one invite is one participant.
    locations = {sdp_post(tally, f"/whip/{broadcast_id}", guest, offer("chrome-simulcast-sendonly.sdp")).headers["Location"] for _ in range(30)}
    assert len(locations) == 1, locations

    joins = []
    for _ in range(40):
        socket = WebSocket(tally.url, guest)
        joins.append(socket.reply_to("join-broadcast", {"broadcast_id": broadcast_id}, id="join"))
        socket.reply_to("leave-broadcast", id="leave")
        socket.close()
    accepted = [j for j in joins if j and j["event"] == "joined"]
    refused = [j for j in joins if j and j["event"] == "error"]
    # The WHIP participant counts against the invite too: 30 people per invite link in all.
    assert len(accepted) == 29 and {r["data"]["code"] for r in refused} == {"invite_exhausted"}, joins[-1]
    # The host's publishing survived all of it.
    assert requests.delete(tally.url + host_location, headers=auth(host), timeout=10).status_code == 200
    figures.record("guest ends the host's WHIP; 30 WHIP publishes and 40 joins with one invite", sent=1 + 30 + len(joins),
                   refused=1 + len(refused))


def test_one_invite_cannot_hold_every_studio_socket(tally, figures):
    """Every studio socket holds a task, a subscription and presence upkeep: one invite (or
    one address) opening hundreds would take them from everyone else."""
    host = tally.register()
    broadcast_id = broadcast(tally, host)
    guest = invite(tally, host, broadcast_id)
    sockets, refused = [], 0
    try:
        for _ in range(40):
            try:
                sockets.append(WebSocket(tally.url, guest, timeout=5))
            except ConnectionError:
                refused += 1
        assert len(sockets) == 32 and refused == 8, (len(sockets), refused)
        why = requests.get(f"{tally.url}/ws?token={guest}", timeout=10)
        assert why.status_code == 429 and error_code(why) == "too_many_sockets", why.text
        # Another invite, and the host, still get in.
        WebSocket(tally.url, invite(tally, host, broadcast_id)).close()
        WebSocket(tally.url, host).close()
    finally:
        for socket in sockets:
            socket.close()
    time.sleep(1)
    WebSocket(tally.url, guest).close()
    figures.record("40 studio sockets from one invite", sent=40, refused=refused)
