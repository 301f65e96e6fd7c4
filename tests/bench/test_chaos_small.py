"""The chaos run, small: deals through the whole stack (its own dev server, emulators, ingress and worker as
child processes) with 20 % vendor faults, worker SIGKILLs, a Temporal restart and replayed webhooks, then the
books phase under the same faults (amendments executed in the CLM, periods billed and paid in parts, the worker
killed once more). Nothing may be lost or duplicated, the CRM's figures equal billing's and a full reconciliation
opens no finding: on the default stack (50 deals, two replicas of the ingress and the worker, the stores on
PostgreSQL) and on each other named stack (20 deals, ``--stack``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import chaos

BOOK_CHECKS = {"amendments applied once, in order", "invoices in the ERP by billing ID",
               "payments in the ERP (paid invoices paid there)", "credit notes in the ERP by billing ID",
               "voided invoices voided in the ERP",
               "write-offs in the ERP (remainder credited)", "CRM billed/paid = billing per company",
               "reconciliation findings (full pass)"}


def assert_nothing_lost(table: Any, ok: bool, deals: int, kills: int) -> None:
    data = table.data
    report = table.render()

    # the disturbances really happened (the books phase kills the worker once more)
    assert sum("SIGKILL the worker" in e for e in table.notes) == kills + 1, report
    assert sum("Temporal dev server restarted" in e for e in table.notes) == 1, report
    injected = sum(s["faults"] + s["timeouts"] for s in data["vendor_stats"].values())
    requests = sum(s["requests"] for s in data["vendor_stats"].values())
    assert 0.1 < injected / requests < 0.3, report
    assert data["ledger"]["deliveries_by_outcome"].get("duplicate", 0) > 0, report
    # the CRM's deliveries posted again were valid deliveries (on every CRM's own URL and signature)
    assert data["replays"]["accepted"] > 0 and data["replays"]["rejected"] == 0, data["replays"]

    # and nothing was lost or duplicated
    assert data["lost"] == [], report
    assert sum(data["outcomes"].values()) == deals
    assert data["outcomes"].get("provisioned", 0) + sum(
        n for k, n in data["outcomes"].items() if k in ("failed", "rejected", "cancelled", "expired")) == deals, report
    for check in data["checks"]:
        assert check["duplicates"] == 0 and check["missing"] == 0, f"{check['name']}: {check}\n{report}"
    books = {check["name"]: check for check in data["checks"] if check["name"] in BOOK_CHECKS}
    assert set(books) == BOOK_CHECKS, report  # the books phase ran and was checked
    assert all(books[name]["expected"] > 0 for name in BOOK_CHECKS - {"reconciliation findings (full pass)"}), report
    assert books["reconciliation findings (full pass)"]["found"] == 0, report
    assert set(data["ledger"]["events_by_state"]) == {"done"}, report
    assert ok, report


async def test_chaos_small_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Two ingress and two worker processes with the stores on PostgreSQL (``make chaos REPLICAS=2 PG=1``): the
    books phase also SIGKILLs one ingress replica and restarts PostgreSQL."""
    args = chaos.parser().parse_args(["--deals", "50", "--timeout", "420", "--book-deals", "4",
                                      "--amendments-per-deal", "2", "--periods", "2", "--replicas", "2", "--postgres"])
    table, ok = await chaos.run(args, tmp_path / "chaos")
    assert sum("SIGKILL ingress-2" in e for e in table.notes) == 1, table.render()
    assert sum("PostgreSQL restarted" in e for e in table.notes) == 1, table.render()
    assert_nothing_lost(table, ok, deals=50, kills=2)


@pytest.mark.parametrize(("stack", "vendors"), [("salesforce-docusign", {"CRM (Salesforce)", "CLM (DocuSign)"}),
                                                 ("netsuite-xero", {"ERP (NetSuite, Xero)"})])
async def test_chaos_small_on_another_stack_loses_and_duplicates_nothing(
        tmp_path: Path, stack: str, vendors: set[str]) -> None:
    args = chaos.parser().parse_args(["--deals", "20", "--kills", "1", "--timeout", "420", "--stack", stack,
                                      "--book-deals", "3", "--amendments-per-deal", "1", "--periods", "2"])
    table, ok = await chaos.run(args, tmp_path / "chaos")
    checked = {check["name"] for check in table.data["checks"]}
    assert all(any(name.startswith(v) for name in checked) for v in vendors), checked  # the stack's own systems
    assert_nothing_lost(table, ok, deals=20, kills=1)
