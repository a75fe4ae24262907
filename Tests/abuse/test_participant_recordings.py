"""Each participant's own recording is a capability of the credential that started it: only a
participant of the broadcast, as themselves, while the show is recorded, may start a take; only
the same credential may read or add to it; only the recording's owner may download it; and
every take, piece and participant has a cap."""
import requests

from hostile import WebSocket, auth, broadcast, error_code, invite


def joined_participant(tally, token, broadcast_id):
    socket = WebSocket(tally.url, token)
    reply = socket.reply_to("join-broadcast", {"broadcast_id": broadcast_id, "name": "Someone"})
    assert reply["event"] == "joined", reply
    return socket, reply["data"]["participant"]["id"]


def start_take(tally, token, broadcast_id, participant_id):
    return requests.post(f"{tally.url}/api/broadcasts/{broadcast_id}/participant-recordings", json={"participant_id": participant_id},
                         headers=auth(token) if token else {}, timeout=10)


def test_takes_belong_to_their_participant_and_credential(tally, figures):
    host = tally.register()
    show = broadcast(tally, host)
    assert requests.patch(f"{tally.url}/api/broadcasts/{show}", json={"settings": {"record": True}}, headers=auth(host), timeout=10).status_code == 200
    guest = invite(tally, host, show)
    stranger = tally.register()
    elsewhere = broadcast(tally, stranger)
    stranger_guest = invite(tally, stranger, elsewhere)
    sockets = []
    try:
        host_socket, host_id = joined_participant(tally, host, show)
        guest_socket, guest_id = joined_participant(tally, guest, show)
        sockets += [host_socket, guest_socket]
        # Not recorded yet: nobody starts a take.
        assert error_code(start_take(tally, guest, show, guest_id)) == "not_recording"
        assert requests.post(f"{tally.url}/api/broadcasts/{show}/start", headers=auth(host), timeout=30).status_code == 200

        refused = [
            (start_take(tally, None, show, guest_id), 401),
            (start_take(tally, stranger, show, host_id), 403),          # another account
            (start_take(tally, stranger_guest, show, guest_id), 403),   # an invite to another broadcast
            (start_take(tally, guest, show, host_id), 403),             # the guest as the host
            (start_take(tally, host, show, guest_id), 403),             # the host as the guest
            (start_take(tally, guest, show, "not-a-uuid"), 404),
        ]
        for reply, status in refused:
            assert reply.status_code == status, (reply.status_code, reply.text)

        take = start_take(tally, guest, show, guest_id)
        assert take.status_code == 201, take.text
        url = tally.url + take.json()["upload_url"]
        piece = lambda token, offset, body=b"x" * 1000: requests.patch(url, data=body, headers={**(auth(token) if token else {}), "Upload-Offset": str(offset)},
                                                                      timeout=30)
        assert piece(guest, 0).json()["received_bytes"] == 1000
        for token, status in ((None, 401), (host, 403), (stranger, 403), (stranger_guest, 403)):
            assert piece(token, 1000).status_code == status
            assert requests.get(url, headers=auth(token) if token else {}, timeout=10).status_code == status
            assert requests.post(url + "/complete", headers=auth(token) if token else {}, timeout=10).status_code == status
        # A gap names the offset to send from; no offset, or a piece over the 10 MB upload limit, is refused before anything is kept.
        gap = piece(guest, 5000)
        assert gap.status_code == 409 and gap.headers["Upload-Offset"] == "1000", (gap.status_code, gap.headers)
        assert requests.patch(url, data=b"x", headers=auth(guest), timeout=10).status_code == 400
        assert piece(guest, 1000, b"x" * ((10 << 20) + 1)).status_code == 413
        assert requests.get(url, headers=auth(guest), timeout=10).json()["received_bytes"] == 1000

        # Only the recording's owner downloads, once the take is complete.
        done = requests.post(url + "/complete", headers=auth(guest), timeout=30).json()
        assert done["status"] == "failed", done  # 1000 bytes of "x" are no recording
        recording = next(r for r in requests.get(tally.url + "/api/recordings", headers=auth(host), timeout=10).json()["recordings"]
                         if r["broadcast_id"] == show)
        listed = requests.get(f"{tally.url}/api/recordings/{recording['id']}", headers=auth(host), timeout=10).json()["participants"]
        assert [t["status"] for t in listed] == ["failed"], listed
        download = tally.url + listed[0]["download_url"]
        assert requests.get(download, headers=auth(host), timeout=10).content == b"x" * 1000
        for token, status in ((None, 401), (guest, 403), (stranger, 403)):
            assert requests.get(download, headers=auth(token) if token else {}, timeout=10).status_code == status
        assert requests.get(f"{tally.url}/api/recordings/{recording['id']}", headers=auth(stranger), timeout=10).status_code == 403

        # At most 20 takes per participant in one show.
        for _ in range(19):
            assert start_take(tally, guest, show, guest_id).status_code == 201
        assert error_code(start_take(tally, guest, show, guest_id)) == "too_many_takes"
        requests.post(f"{tally.url}/api/broadcasts/{show}/end", headers=auth(host), timeout=30)
    finally:
        for socket in sockets:
            socket.close()
    figures.record("participant recordings: foreign credentials, gaps, oversize pieces, takes past the cap", sent=33, refused=33)
