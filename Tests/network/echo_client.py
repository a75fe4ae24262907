"""Signs up and runs aiortc's echo round trip, from inside a namespace: prints how many video
and audio frames came back, as JSON. Usage: echo_client.py URL"""
import asyncio
import json
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from test_echo_aiortc import echo_round_trip  # noqa: E402

url = sys.argv[1]
signed_up = requests.post(url + "/api/auth/register", json={"email": f"netns-{time.time_ns()}@example.com", "password": "correct horse", "name": "Guest"}, timeout=10)
signed_up.raise_for_status()
received, _ = asyncio.run(echo_round_trip(url, signed_up.json()["access_token"]))
print(json.dumps({"video": len(received["video"]), "audio": len(received["audio"])}))
