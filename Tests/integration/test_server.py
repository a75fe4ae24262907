"""The process as a user meets it: start, health, configuration, graceful stop."""
import json
import subprocess

import requests

from conftest import BINARY, DATABASE_URL, requires_postgres


def test_embedded_default_serves_health_and_stops_gracefully(start_tally):
    tally = start_tally()
    health = requests.get(tally.url + "/api/health", timeout=5)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["store"]["backend"] == "sqlite" and body["registry"]["backend"] == "in-process"
    assert (tally.data_dir / "tally.sqlite").exists()
    assert (tally.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    assert json.loads((tally.data_dir / "ports.json").read_text())["http"] == int(tally.url.rsplit(":", 1)[1])
    assert f"studio:  {tally.url}/" in tally.logs()
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
