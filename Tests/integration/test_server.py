"""The process as a user meets it: start, health, configuration, graceful stop."""
import json
import os
import subprocess
import time

import requests

from tallytest import BINARY, DATABASE_URL, PG_BIN, requires_postgres


def test_embedded_default_serves_health_and_stops_gracefully(start_tally):
    tally = start_tally()
    health = requests.get(tally.url + "/api/health", timeout=5)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["store"]["backend"] == "sqlite" and body["registry"]["backend"] == "in-process"
    assert (tally.data_dir / "tally.sqlite").exists()
    assert (tally.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    ports = json.loads((tally.data_dir / "ports.json").read_text())
    assert ports["http"] == int(tally.url.rsplit(":", 1)[1])
    assert ports["udp"] > 0 and ports["tcp"] > 0
    assert f"health:  {tally.url}/api/health" in tally.logs()
    assert tally.stop() == 0
    assert "stopped" in tally.logs()


@requires_postgres
def test_postgres_and_redis_configuration(start_tally, redis_server):
    tally = start_tally({"TALLY_DATABASE_URL": DATABASE_URL, "TALLY_REDIS_URL": redis_server.url})
    body = requests.get(tally.url + "/api/health", timeout=5).json()
    assert body["store"] == {"status": "ok", "backend": "postgres"}
    assert body["registry"] == {"status": "ok", "backend": "redis"}
    token = tally.register()
    assert requests.get(tally.url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200


def test_runs_from_any_directory_with_the_built_in_studio_and_layouts(start_tally, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tally = start_tally(cwd=elsewhere)
    assert f"studio:  {tally.url}/" in tally.logs()
    names = [layout["name"] for layout in requests.get(tally.url + "/api/layouts", timeout=5).json()["layouts"]]
    assert sorted(names) == ["grid", "pip", "sidebar", "solo", "spotlight"]
    for path, kind in [("/", "text/html"), ("/studio.html", "text/html"), ("/js/studio.js", "javascript"), ("/css/tally.css", "text/css"),
                       ("/favicon.svg", "image/svg+xml"), ("/join/any-broadcast", "text/html")]:
        page = requests.get(tally.url + path, timeout=5)
        assert page.status_code == 200 and kind in page.headers["Content-Type"], path
    assert requests.get(tally.url + "/openapi.yaml", timeout=5).text.startswith("openapi: 3.1")
    icon = requests.get(tally.url + "/favicon.ico", timeout=5)
    assert icon.status_code == 200 and icon.url.endswith("/favicon.svg")
    assert requests.get(tally.url + "/js/../secret.key", timeout=5).status_code in (400, 404)
    assert not any(elsewhere.iterdir()), "nothing is written to the working directory"


def test_studio_url_is_printed_when_a_web_folder_is_served(start_tally, tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>Studio</title>")
    tally = start_tally({"TALLY_WEB_DIR": str(web)})
    assert f"studio:  {tally.url}/" in tally.logs()
    page = requests.get(tally.url + "/", timeout=5)
    assert page.status_code == 200 and "<title>Studio</title>" in page.text


def test_a_flag_wins_over_its_environment_variable(start_tally):
    tally = start_tally({"TALLY_HTTP_PORT": "99999"}, args=["--http-port", "0"])
    assert requests.get(tally.url + "/api/health", timeout=5).status_code == 200


def test_bad_settings_are_refused_with_the_setting_named(tmp_path):
    cases = [
        ({"TALLY_DATABASE_URL": "mysql://db/tally"}, "TALLY_DATABASE_URL"),
        ({"TALLY_REDIS_URL": "http://cache"}, "TALLY_REDIS_URL"),
        ({"TALLY_HTTP_PORT": "eighty"}, "TALLY_HTTP_PORT"),
        ({"TALLY_PUBLIC_IP": "not-an-ip"}, "TALLY_PUBLIC_IP"),
        ({"TALLY_SECRET_KEY": "short"}, "TALLY_SECRET_KEY"),
    ]
    for env, name in cases:
        result = subprocess.run(
            [BINARY], env={"TALLY_DATA_DIR": str(tmp_path / "d"), **env}, capture_output=True, timeout=30)
        assert result.returncode != 0, env
        assert name in result.stderr.decode(), result.stderr.decode()


def test_unknown_routes_and_errors_are_json(start_tally):
    tally = start_tally()
    reply = requests.get(tally.url + "/api/does-not-exist", timeout=5)
    assert reply.status_code == 404
    assert reply.json() == {"error": {"code": "not_found", "message": "no such endpoint"}}
    reply = requests.post(tally.url + "/api/auth/login", data="{not json", headers={"Content-Type": "application/json"}, timeout=5)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_json"


@requires_postgres
def test_two_nodes_share_one_fresh_database_and_redis(start_tally, redis_server):
    """Nodes started together migrate one empty database without tripping over each other,
    and, sharing the secret and Redis, honour each other's sessions and logouts."""
    base = DATABASE_URL.split("?")[0].rsplit("/", 1)[0]
    name = f"fresh_{int(time.time() * 1000)}"
    subprocess.run([os.path.join(PG_BIN, "createdb"), "--maintenance-db=" + DATABASE_URL.split("?")[0], name], check=True, timeout=30)
    env = {"TALLY_DATABASE_URL": f"{base}/{name}?sslmode=disable", "TALLY_REDIS_URL": redis_server.url,
           "TALLY_SECRET_KEY": "a shared secret for both nodes"}
    first, second = [start_tally(env, wait=False) for _ in range(2)]
    for node in (first, second):
        node.wait_ready()
        assert requests.get(node.url + "/api/health", timeout=5).status_code == 200
    token = first.register()
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(second.url + "/api/auth/me", headers=auth, timeout=5).status_code == 200
    assert requests.post(first.url + "/api/auth/logout", headers=auth, timeout=5).status_code == 204
    revoked = requests.get(second.url + "/api/auth/me", headers=auth, timeout=5)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "token_revoked"
