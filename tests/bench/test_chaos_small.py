"""The chaos run, small: deals through the whole stack (its own dev server, emulators, ingress and worker as
child processes) with 20 % vendor faults, worker SIGKILLs, a Temporal restart and replayed webhooks. Nothing may
be lost or duplicated: on the default stack (50 deals) and on each other named stack (20 deals, ``--stack``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import chaos


def assert_nothing_lost(table: Any, ok: bool, deals: int, kills: int) -> None:
    data = table.data
    report = table.render()

    # the disturbances really happened
    assert sum("SIGKILL the worker" in e for e in table.notes) == kills, report
    assert sum("Temporal dev server restarted" in e for e in table.notes) == 1, report
    injected = sum(s["faults"] + s["timeouts"] for s in data["vendor_stats"].values())
    requests = sum(s["requests"] for s in data["vendor_stats"].values())
    assert 0.1 < injected / requests < 0.3, report
    assert data["ledger"]["deliveries_by_outcome"].get("duplicate", 0) > 0, report

    # and nothing was lost or duplicated
    assert data["lost"] == [], report
    assert sum(data["outcomes"].values()) == deals
    assert data["outcomes"].get("provisioned", 0) + sum(
        n for k, n in data["outcomes"].items() if k in ("failed", "rejected", "cancelled", "expired")) == deals, report
    for check in data["checks"]:
        assert check["duplicates"] == 0 and check["missing"] == 0, f"{check['name']}: {check}\n{report}"
    assert set(data["ledger"]["events_by_state"]) == {"done"}, report
    assert ok, report


async def test_chaos_small_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    args = chaos.parser().parse_args(["--deals", "50", "--timeout", "420"])
    table, ok = await chaos.run(args, tmp_path / "chaos")
    assert_nothing_lost(table, ok, deals=50, kills=2)


@pytest.mark.parametrize(("stack", "vendors"), [("salesforce-docusign", {"CRM (Salesforce)", "CLM (DocuSign)"}),
                                                 ("netsuite-xero", {"ERP (NetSuite, Xero)"})])
async def test_chaos_small_on_another_stack_loses_and_duplicates_nothing(
        tmp_path: Path, stack: str, vendors: set[str]) -> None:
    args = chaos.parser().parse_args(["--deals", "20", "--kills", "1", "--timeout", "420", "--stack", stack])
    table, ok = await chaos.run(args, tmp_path / "chaos")
    checked = {check["name"] for check in table.data["checks"]}
    assert all(any(name.startswith(v) for name in checked) for v in vendors), checked  # the stack's own systems
    assert_nothing_lost(table, ok, deals=20, kills=1)
