"""A server with several addresses: media answers leave from the address the peer reached."""
import json

from netlab import ip


def test_answers_leave_from_the_address_the_peer_reached(lab, tmp_path):
    """Tally listens on every address and announces 10.77.1.1, which sits on the server's
    loopback; the client reaches it through a link whose own address is 10.77.2.1, the
    address the kernel would pick for replies. aiortc drops answers from any address but
    the one it asked, so the echo works only if Tally answers from 10.77.1.1."""
    server, client = lab.host("srv"), lab.host("cli")
    lab.wire(server, "10.77.2.1/24", client, "10.77.2.2/24")
    ip("addr", "add", "10.77.1.1/32", "dev", "lo", namespace=server)
    ip("route", "add", "10.77.1.1/32", "via", "10.77.2.1", namespace=client)
    _, ports = lab.tally(server, tmp_path / "data", {"TALLY_HOST": "0.0.0.0", "TALLY_PUBLIC_IP": "10.77.1.1"})

    result = lab.check(client, ["python3", str(__import__("pathlib").Path(__file__).parent / "echo_client.py"), f"http://10.77.1.1:{ports['http']}"])
    assert result.returncode == 0, result.stderr[-2000:]
    frames = json.loads(result.stdout.strip().splitlines()[-1])
    assert frames["video"] >= 60 and frames["audio"] >= 200, frames
