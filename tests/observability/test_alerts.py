"""The alerting rules in ``prometheus/alerts.yml``, unit-tested by Prometheus's own ``promtool`` (Debian package
``prometheus``; ``make test`` installs it when missing): series that fire and series that must not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parents[2] / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make test` installs the Debian package prometheus"
    return found


def test_alert_rules_are_valid() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_alert_rules_fire_and_stay_quiet_as_the_unit_tests_say() -> None:
    done = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], cwd=RULES, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_firing_case_and_a_quiet_case() -> None:
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    cases = yaml.safe_load((RULES / "alerts.test.yml").read_text())["tests"]
    fired = {c["alertname"] for t in cases for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert fired == names
    # quiet: an eval with no alert, or an input series whose labels never show up among the expected alerts
    for test in cases:
        for case in test["alert_rule_test"]:
            series = [s["series"] for s in test["input_series"]]
            assert case["exp_alerts"] == [] or len(series) > len(case["exp_alerts"]), case["alertname"]


def test_a_broken_expectation_is_caught(tmp_path: Path) -> None:
    """promtool fails when a rule does not fire as expected, so the test above can fail."""
    cases = yaml.safe_load((RULES / "alerts.test.yml").read_text())
    cases["rule_files"] = [str(RULES / "alerts.yml")]
    first = cases["tests"][0]["alert_rule_test"][0]
    first["exp_alerts"] = [{"exp_labels": {"severity": "page", "job": "revops-worker", "instance": "b"}}]
    (tmp_path / "broken.test.yml").write_text(yaml.safe_dump(cases))
    done = subprocess.run([promtool(), "test", "rules", "broken.test.yml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr
