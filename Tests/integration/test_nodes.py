"""Nodes on one PostgreSQL and one Redis see each other through their heartbeats."""
import os
import subprocess

import requests

from tallytest import BINARY, DATABASE_URL, eventually, requires_postgres

SECRET = "a shared secret for every node"


def operator_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env.update({"TALLY_SECRET_KEY": SECRET, "TALLY_DATA_DIR": str(tmp_path / "cli")})
    printed = subprocess.run([BINARY, "--operator-token"], env=env, capture_output=True, text=True, timeout=30, check=True)
    return printed.stdout.strip()


@requires_postgres
def test_nodes_list_each_other_for_the_operator_and_leave_the_list_when_they_stop(start_tally, redis_server, tmp_path):
    env = {"TALLY_DATABASE_URL": DATABASE_URL, "TALLY_REDIS_URL": redis_server.url, "TALLY_SECRET_KEY": SECRET}
    first, second, third = [start_tally(env, wait=False) for _ in range(3)]
    for node in (first, second, third):
        node.wait_ready()
    operator = {"Authorization": f"Bearer {operator_token(tmp_path)}"}

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
