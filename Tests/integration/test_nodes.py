"""Nodes on one PostgreSQL and one Redis see each other through their heartbeats."""
import signal
import time

import requests

from tallytest import DATABASE_URL, eventually, operator_token, requires_postgres

SECRET = "a shared secret for every node"


@requires_postgres
def test_nodes_list_each_other_for_the_operator_and_leave_the_list_when_they_stop(start_tally, redis_server, tmp_path):
    env = {"TALLY_DATABASE_URL": DATABASE_URL, "TALLY_REDIS_URL": redis_server.url, "TALLY_SECRET_KEY": SECRET}
    first, second, third = [start_tally(env, wait=False) for _ in range(3)]
    for node in (first, second, third):
        node.wait_ready()
    operator = {"Authorization": f"Bearer {operator_token(SECRET, tmp_path / 'cli')}"}

    def listed(node):
        reply = requests.get(node.url + "/api/nodes", headers=operator, timeout=5)
        assert reply.status_code == 200, reply.text
        return {entry["url"]: entry for entry in reply.json()["nodes"]}

    everyone = {first.url, second.url, third.url}
    assert eventually(lambda: set(listed(first)) == everyone, 10), listed(first)
    assert set(listed(second)) == everyone
    entry = listed(third)[first.url]
    assert entry["draining"] is False
    assert entry["load"]["live_programs"] == 0 and entry["load"]["program_capacity"] >= 1
    assert 0 <= entry["load"]["cpu"] <= 1

    # Only the operator: an account's token is refused, no token is a 401, and health names no node.
    account = {"Authorization": f"Bearer {first.register()}"}
    refused = requests.get(first.url + "/api/nodes", headers=account, timeout=5)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "operator_only"
    assert requests.get(first.url + "/api/nodes", timeout=5).status_code == 401
    node_ids = [entry["id"] for entry in listed(first).values()]
    health = requests.get(first.url + "/api/health", timeout=5).text
    assert not any(node_id in health for node_id in node_ids)

    # SIGTERM: the node withdraws itself before it stops, well inside the heartbeat's TTL.
    assert second.stop() == 0
    assert set(listed(first)) == {first.url, third.url}

    # kill -9: no goodbye; the record lapses with its TTL (6 s).
    third.process.kill()
    third.process.wait()
    assert third.url in listed(first)
    assert eventually(lambda: set(listed(first)) == {first.url}, 12), listed(first)


def test_a_node_refuses_a_program_past_its_cpu_budget_by_the_cost_it_measured(start_tally, tmp_path):
    tally = start_tally({"TALLY_SECRET_KEY": SECRET, "TALLY_CPU_BUDGET": "0.05", "TALLY_MAX_LIVE_PROGRAMS": "4", "TALLY_MAX_LIVE_PROGRAMS_PER_USER": "4"})
    headers = {"Authorization": f"Bearer {tally.register()}"}
    first, second = [requests.post(tally.url + "/api/broadcasts", json={"title": title}, headers=headers, timeout=10).json()["id"] for title in ("One", "Two")]
    # A node always takes one program, whatever its budget.
    assert requests.post(f"{tally.url}/api/broadcasts/{first}/start", headers=headers, timeout=30).status_code == 200
    operator = {"Authorization": f"Bearer {operator_token(SECRET, tmp_path / 'cli')}"}
    load = lambda: next(iter(requests.get(tally.url + "/api/nodes", headers=operator, timeout=5).json()["nodes"]), {}).get("load", {})
    assert eventually(lambda: load().get("live_programs") == 1 and load().get("cpu", 0) > 0, 10), load()
    time.sleep(4)
    measured = load()
    assert measured["program_cost"] > 0 and abs(measured["cpu_budget"] - 0.05 * measured["cpus"]) < 1e-6, measured

    refused = requests.post(f"{tally.url}/api/broadcasts/{second}/start", headers=headers, timeout=30)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "server_at_capacity" and "CPU budget" in refused.json()["error"]["message"], refused.text
    assert requests.get(f"{tally.url}/api/broadcasts/{second}", headers=headers, timeout=10).json()["status"] == "scheduled"

    assert requests.post(f"{tally.url}/api/broadcasts/{first}/end", headers=headers, timeout=30).status_code == 200
    assert requests.post(f"{tally.url}/api/broadcasts/{second}/start", headers=headers, timeout=30).status_code == 200


@requires_postgres
def test_a_draining_node_with_no_other_to_place_on_refuses_a_new_show(start_tally, redis_server, tmp_path):
    # Two nodes: the other is at its program limit, so the draining one has nowhere to place a
    # show; it keeps serving (its live program waits for the deadline while another node is up).
    env = {"TALLY_DATABASE_URL": DATABASE_URL, "TALLY_REDIS_URL": redis_server.url, "TALLY_SECRET_KEY": SECRET,
           "TALLY_CPU_BUDGET": "0", "TALLY_MAX_LIVE_PROGRAMS_PER_USER": "3"}
    full = start_tally({**env, "TALLY_MAX_LIVE_PROGRAMS": "1"})
    draining = start_tally({**env, "TALLY_DRAIN_SECONDS": "6"})
    headers = {"Authorization": f"Bearer {full.register()}"}
    on_full, on_draining, late = [requests.post(full.url + "/api/broadcasts", json={"title": title}, headers=headers, timeout=10).json()["id"]
                                  for title in ("Full", "On", "Late")]
    assert requests.post(f"{full.url}/api/broadcasts/{on_full}/start", headers=headers, timeout=30).status_code == 200
    operator = {"Authorization": f"Bearer {operator_token(SECRET, tmp_path / 'cli')}"}

    def loads():
        nodes = requests.get(draining.url + "/api/nodes", headers=operator, timeout=5).json()["nodes"]
        return {entry["url"]: entry for entry in nodes}

    assert eventually(lambda: loads().get(full.url, {}).get("load", {}).get("live_programs") == 1, 10), loads()
    assert requests.post(f"{draining.url}/api/broadcasts/{on_draining}/start", headers=headers, timeout=30).status_code == 200
    draining.process.send_signal(signal.SIGTERM)
    assert eventually(lambda: "node draining: it takes no new program" in draining.logs(), 5), draining.logs()[-2000:]
    refused = requests.post(f"{draining.url}/api/broadcasts/{late}/start", headers=headers, timeout=30)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "node_draining", refused.text
    assert requests.get(f"{draining.url}/api/broadcasts/{late}", headers=headers, timeout=10).json()["status"] == "scheduled"
    assert draining.process.wait(20) == 0
