"""``make demo`` (``python -m devstack.demo``) on free ports, without a terminal: five deals end as the demo
expects, the process exits 0 without a crash or traceback, the tables carry full IDs by kind, and it says the
stack is stopped instead of printing UI links to it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from settings import ROOT, stack_presets
from tests.devstack.free_ports import stack_env

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_demo_runs_to_success_and_exits_cleanly(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "data")  # every port free: never the codec server's 8081 nor the inbox's 8010

    done = subprocess.run([sys.executable, "-m", "devstack.demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output and "Fatal Python error" not in output
    assert "demo succeeded" in done.stdout
    assert len(re.findall(r"^\s*\d+\s.*\bprovisioned\b", done.stdout, re.M)) == 5, done.stdout
    # full IDs, one kind per row: a Xero contact UUID whole, subscriptions apart from invoices and products
    assert re.search(rf"Xero contact\s+{UUID}\s*$", done.stdout, re.M), done.stdout
    assert re.search(r"Stripe subscription\s+sub_\w+\s*$", done.stdout, re.M)
    assert re.search(r"Stripe invoice\s+in_\w+\s*$", done.stdout, re.M)  # the milestone deal's drafts
    # the catalogue is put into billing once, and after five deals billing holds no price outside it
    assert re.search(r"created PLAT-PRO:usd:month: price_\w+", done.stdout), done.stdout
    assert done.stdout.count("5 SKUs, 9 catalogue prices: in step") == 2, done.stdout
    # a period billed, one invoice paid in part and the rest in full, posted and reconciled clean per entity
    assert re.search(r"^\s+US01 in_\w+: (\d+\.\d\d) USD paid, \1 left due$", done.stdout, re.M), done.stdout
    assert re.search(r"^\s+US01 on Xero: 3 invoice\(s\) and their payments$", done.stdout, re.M)
    assert re.findall(r"^\s+(\w+): 0 finding\(s\)", done.stdout, re.M) == ["EU01", "US01"], done.stdout
    assert "has been stopped" in done.stdout and "/namespaces/default/workflows/" not in done.stdout


#: the other stacks a team runs on: what the IDs table must name (the vendors that made the records)
OTHER_STACKS = {
    "salesforce-docusign": [r"DocuSign record\s+\S+", r"Xero contact\s+" + UUID, r"Stripe subscription\s+sub_\w+"],
    "netsuite-xero": [r"US01\s+NetSuite (contact|customer)\s+\S+", r"EU01\s+Xero contact\s+" + UUID,
                      r"UK01\s+Xero contact\s+" + UUID,
                      # issue 26: billed and paid invoices posted to each entity's own ERP, reconciled clean there
                      r"^\s+US01 on NetSuite: 3 invoice\(s\) and their payments$",
                      r"^\s+EU01 on Xero: 1 invoice\(s\) and their payments$",
                      r"^\s+US01: 0 finding\(s\) \(read netsuite:US01, stripe\)$",
                      r"^\s+EU01: 0 finding\(s\) \(read stripe, xero:EU01\)$"],
}


@pytest.mark.parametrize("stack", sorted(OTHER_STACKS))
def test_demo_runs_on_another_stack_chosen_by_settings_alone(tmp_path: Path, stack: str) -> None:
    assert stack in stack_presets()
    env = {**stack_env(tmp_path / "data"), "STACK": stack}

    done = subprocess.run([sys.executable, "-m", "devstack.demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output and "demo succeeded" in done.stdout
    assert len(re.findall(r"^\s*\S+\s.*\bprovisioned\b", done.stdout, re.M)) == 5, done.stdout
    for pattern in OTHER_STACKS[stack]:
        assert re.search(pattern, done.stdout, re.M), f"{pattern!r} not in\n{done.stdout}"
