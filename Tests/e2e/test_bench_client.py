"""The benchmark's load generator against a live server: a publisher and subscribers made of
Tally's own client-side stack (ICE controlling, DTLS client, SRTP, transport-cc feedback) get
every packet through the SFU on the top simulcast layer. A functional check of `scripts/bench
sfu`'s machinery, with no timing in it: the figures themselves belong to the benchmark."""
import json
import os
import subprocess
from pathlib import Path

import requests

BENCH = os.environ.get("TALLY_BENCH_BINARY", str(Path(__file__).resolve().parents[2] / ".build/debug/tally-bench"))


def test_bench_clients_receive_the_simulcast_stream(webrtc_tally, tmp_path):
    results = tmp_path / "sfu.json"
    run = subprocess.run([BENCH, "sfu", "--url", webrtc_tally.url, "--server-pid", str(webrtc_tally.process.pid),
                          "--subscribers", "3,6", "--warmup", "3", "--duration", "3", "--json", str(results)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr + webrtc_tally.logs()
    rows = json.loads(results.read_text())
    assert [row["subscribers"] for row in rows] == [3, 6]
    for row in rows:
        # About 190 video and 50 audio packets a second reach each subscriber.
        assert row["egressPacketsPerSecond"] > 150 * row["subscribers"], row
        assert row["loss"] < 0.01, row
        assert row["videoLayerShare"][2] > 0.9, row
        assert row["serverCores"] > 0, row
        assert 0 < row["latencyP50Micros"] <= row["lastCopyP99Micros"], row


def test_large_fan_out_is_shared_with_helper_threads(start_tally, tmp_path):
    """40 subscribers are past the size at which a packet's copies are split among helper
    threads: every subscriber still gets the whole stream, and the helpers sent a share."""
    # The load generator plays every subscriber with one token from one address: lift the
    # per-identity and per-address session caps, as an operator running it would.
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_FANOUT_THREADS": "2",
                         "TALLY_MAX_SESSIONS_PER_IDENTITY": "2000", "TALLY_MAX_SESSIONS_PER_ADDRESS": "2000"})
    results = tmp_path / "sfu.json"
    run = subprocess.run([BENCH, "sfu", "--url", tally.url, "--server-pid", str(tally.process.pid),
                          "--subscribers", "40", "--warmup", "3", "--duration", "4", "--json", str(results)],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr + tally.logs()
    row = json.loads(results.read_text())[0]
    assert row["egressPacketsPerSecond"] > 150 * 40, row
    assert row["loss"] < 0.01, row
    assert row["videoLayerShare"][2] > 0.9, row
    metrics = requests.get(tally.url + "/metrics", timeout=10).text
    counts = {name: sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))
              for name in ("tally_sfu_forwarded_packets_total", "tally_sfu_helper_forwarded_packets_total")}
    assert 0 < counts["tally_sfu_helper_forwarded_packets_total"] < counts["tally_sfu_forwarded_packets_total"], counts
