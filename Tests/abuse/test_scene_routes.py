"""A broadcast's scenes are its owner's alone: no other account, guest or anonymous caller
lists, saves, edits, shows or deletes them; a scene of one broadcast is not reachable
through another's path; a scene holds only what the stage may (the owner's own clips);
and a broadcast keeps at most 20."""
import requests

from hostile import auth, broadcast, error_code, invite


def test_scenes_belong_to_their_broadcasts_owner(tally, figures):
    host = tally.register()
    stranger = tally.register()
    show = broadcast(tally, host)
    other_show = broadcast(tally, host)
    guest = invite(tally, host, show)
    scenes = f"{tally.url}/api/broadcasts/{show}/scenes"
    made = requests.post(scenes, json={"name": "Opening"}, headers=auth(host), timeout=10)
    assert made.status_code == 201, made.text
    scene = f"{scenes}/{made.json()['id']}"
    refused = 0
    for token, status in ((None, 401), (stranger, 403), (guest, 403)):
        headers = auth(token) if token else {}
        for reply in (requests.get(scenes, headers=headers, timeout=10),
                      requests.post(scenes, json={"name": "Mine"}, headers=headers, timeout=10),
                      requests.patch(scene, json={"name": "Renamed"}, headers=headers, timeout=10),
                      requests.post(scene + "/show", headers=headers, timeout=10),
                      requests.delete(scene, headers=headers, timeout=10)):
            assert reply.status_code == status, (token, reply.status_code, reply.text)
            refused += 1
    # The scene through another of the owner's broadcasts: not found.
    elsewhere = f"{tally.url}/api/broadcasts/{other_show}/scenes/{made.json()['id']}"
    for reply in (requests.post(elsewhere + "/show", headers=auth(host), timeout=10), requests.delete(elsewhere, headers=auth(host), timeout=10)):
        assert reply.status_code == 404 and error_code(reply) == "scene_not_found", reply.text
        refused += 1
    # Another account's clip cannot be saved into a scene; nor a nameless scene.
    theirs = requests.post(f"{tally.url}/api/clips", json={"name": "Theirs", "size_bytes": 10}, headers=auth(stranger), timeout=10).json()
    reply = requests.post(scenes, json={"name": "Borrowed", "stage": {"layout": "grid", "participants": [], "clips": [theirs["id"]]}},
                          headers=auth(host), timeout=10)
    assert error_code(reply) == "unknown_clip", reply.text
    assert requests.post(scenes, json={"name": "  "}, headers=auth(host), timeout=10).status_code == 400
    refused += 2
    # Twenty scenes, then no more.
    for index in range(19):
        assert requests.post(scenes, json={"name": f"Scene {index}"}, headers=auth(host), timeout=10).status_code == 201
    assert error_code(requests.post(scenes, json={"name": "One too many"}, headers=auth(host), timeout=10)) == "too_many_scenes"
    refused += 1
    figures.record("scenes: foreign credentials, another broadcast's path, foreign clips, the cap", sent=refused, refused=refused)
