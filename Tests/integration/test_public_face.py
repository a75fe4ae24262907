"""The public face of a server behind a name or a reverse proxy: TALLY_PUBLIC_URL is what
links and URLs are built from, and TALLY_TRUSTED_PROXIES says whose X-Forwarded-For to
believe, so rate limits count real clients and nobody else can pick their own address."""
import time

import requests


def login_attempts(tally, count, forwarded_for):
    statuses = []
    for _ in range(count):
        reply = requests.post(tally.url + "/api/auth/login", headers={"X-Forwarded-For": forwarded_for}, timeout=10,
                              json={"email": f"nobody-{time.time_ns()}@example.com", "password": "wrong password"})
        statuses.append(reply.status_code)
    return statuses


def test_links_and_urls_use_the_public_url(start_tally):
    tally = start_tally({"TALLY_PUBLIC_URL": "https://studio.example.com"})
    token = tally.register()
    auth = {"Authorization": f"Bearer {token}"}
    broadcast = requests.post(tally.url + "/api/broadcasts", json={"title": "Public"}, headers=auth, timeout=10).json()["id"]
    invite = requests.post(f"{tally.url}/api/broadcasts/{broadcast}/invites", json={}, headers=auth, timeout=10).json()
    assert invite["url"].startswith(f"https://studio.example.com/join/{broadcast}?invite=")
    stream = requests.post(tally.url + "/api/streams", json={"stream_id": "cam", "action": "start"}, headers=auth, timeout=10).json()
    assert stream["ingest"]["rtmp"].startswith("rtmp://studio.example.com:")
    assert stream["ingest"]["whip"].startswith("https://studio.example.com/")
    assert stream["hls_url"] == "https://studio.example.com/hls/cam/index.m3u8"
    hls = requests.get(tally.url + "/api/hls/cam", headers=auth, timeout=10).json()["data"]
    assert hls["hls_url"].startswith("https://studio.example.com/") and hls["cdn_domain"] == "studio.example.com"
    servers = requests.get(tally.url + "/api/ice-servers", headers=auth, timeout=10).json()["ice_servers"]
    assert all(url.split(":")[1] == "studio.example.com" for url in servers[0]["urls"]), servers


def test_forwarded_addresses_count_only_from_trusted_proxies(start_tally):
    # Not trusted: X-Forwarded-For changes nothing, every attempt counts against the peer.
    direct = start_tally({"TALLY_AUTH_RATE_LIMIT": "5"})
    statuses = login_attempts(direct, 3, "203.0.113.5") + login_attempts(direct, 3, "203.0.113.6")
    assert statuses[-1] == 429, statuses

    # Behind a trusted proxy (loopback here): each forwarded client has its own allowance,
    # and a client that forges a first X-Forwarded-For entry is still known by the proxy's.
    proxied = start_tally({"TALLY_AUTH_RATE_LIMIT": "5", "TALLY_TRUSTED_PROXIES": "127.0.0.0/8"})
    first = login_attempts(proxied, 6, "203.0.113.5")
    assert first[:5] == [401] * 5 and first[5] == 429, first
    assert login_attempts(proxied, 1, "203.0.113.6") == [401]
    assert login_attempts(proxied, 1, "198.51.100.1, 203.0.113.5") == [429]
