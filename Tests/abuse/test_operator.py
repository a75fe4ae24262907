"""The operator's node list names every node and its address: only the operator's token
opens it, a forged or borrowed one gets nothing, nothing unauthenticated names a node, and
the operator's token opens nothing an account owns."""
import requests

from hostile import Watch, auth, error_code
from tallytest import operator_token

SECRET = "the deployment's own root secret"


def test_the_node_list_opens_to_the_operators_token_alone(start_tally, tmp_path, figures):
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_OUTBOUND_ALLOW": "", "TALLY_SECRET_KEY": SECRET})
    real = operator_token(SECRET, tmp_path / "cli")
    other_deployment = operator_token("another deployment's secret", tmp_path / "other")
    forged = ["tally_op_", real[:-1] + ("A" if real[-1] != "A" else "B"), "tally_op_" + "A" * 43, real + "x", other_deployment]
    with Watch(tally) as watch:
        replies = [requests.get(tally.url + "/api/nodes", headers=auth(token), timeout=10) for token in forged * 6]
    watch.check()
    assert {(reply.status_code, error_code(reply)) for reply in replies} == {(401, "invalid_token")}
    assert requests.get(tally.url + "/api/nodes", timeout=10).status_code == 401
    refused = requests.get(tally.url + "/api/nodes", headers=auth(tally.register()), timeout=10)
    assert refused.status_code == 403 and error_code(refused) == "operator_only"

    listed = requests.get(tally.url + "/api/nodes", headers=auth(real), timeout=10)
    assert listed.status_code == 200, listed.text
    node = listed.json()["this"]
    for path in ["/api/health", "/metrics", "/api/nodes", "/api/does-not-exist"]:
        assert node not in requests.get(tally.url + path, timeout=10).text, path
    for path in ["/api/broadcasts", "/api/streams", "/api/recordings", "/api/ice-servers", "/api/auth/me"]:
        assert requests.get(tally.url + path, headers=auth(real), timeout=10).status_code in (401, 403), path
    figures.record("operator node list: forged, truncated and other deployments' tokens", sent=len(replies), refused=len(replies), watch=watch)
