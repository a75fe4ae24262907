"""What docs/deploy.md ships in deploy/: the systemd unit passes systemd-analyze, the
Prometheus configuration and alert rules pass promtool, and every Grafana query and alert
names a metric Tally exports."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tallytest import BINARY

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
METRIC = re.compile(r"\b((?:tally|http_server)_[a-z0-9_]+)")


def exported_metrics(tally):
    """Every metric name Tally's code declares, and what a running Tally serves."""
    declared = set()
    for source in (ROOT / "Sources").rglob("*.swift"):
        declared.update(re.findall(r'label: "([a-z0-9_]+)"', source.read_text()))
    requests.get(tally.url + "/api/health", timeout=5)
    served = requests.get(tally.url + "/metrics", timeout=5).text
    declared.update(re.sub(r"_(bucket|count|sum)$", "", name) for name in re.findall(r"^([a-z_][a-z0-9_]*)", served, re.MULTILINE))
    return declared


def named(expression):
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in METRIC.findall(expression)}


def test_the_systemd_unit_verifies(tmp_path):
    unit = tmp_path / "tally.service"
    # systemd-analyze checks that ExecStart's program exists: point it at the one just built.
    unit.write_text((DEPLOY / "tally.service").read_text().replace("/usr/local/bin/tally", BINARY))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and "tally.service" not in result.stderr, result.stderr


def test_prometheus_config_and_rules_pass_promtool(tmp_path):
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: scripts/setup --test installs it (Debian's prometheus)")
    for file in (DEPLOY / "prometheus").iterdir():
        shutil.copy(file, tmp_path / file.name)
    assert subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True).returncode == 0
    result = subprocess.run(["promtool", "check", "rules", str(tmp_path / "tally-alerts.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_and_alerts_name_only_metrics_tally_exports(start_tally):
    exported = exported_metrics(start_tally())
    dashboard = json.loads((DEPLOY / "grafana" / "tally-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(queries) >= 10
    rules = re.findall(r"expr: (.+)", (DEPLOY / "prometheus" / "tally-alerts.yml").read_text())
    for expression in queries + rules:
        names = named(expression)
        assert names, f"no Tally metric in {expression}"
        assert names <= exported, f"{expression} names {sorted(names - exported)}, which Tally does not export"
