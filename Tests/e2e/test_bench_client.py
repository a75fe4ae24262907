"""The benchmark's load generator against a live server: a publisher and subscribers made of
Tally's own client-side stack (ICE controlling, DTLS client, SRTP, transport-cc feedback) get
every packet through the SFU on the top simulcast layer. A functional check of `scripts/bench
sfu`'s machinery, with no timing in it: the figures themselves belong to the benchmark."""
import json
import os
import subprocess
from pathlib import Path

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
