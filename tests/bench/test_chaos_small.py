"""The chaos run, small: 50 deals through the whole stack (its own dev server, emulators, ingress and
worker as child processes) with 20 % vendor faults, two worker SIGKILLs, a Temporal restart and
replayed webhooks. Nothing may be lost or duplicated."""

from __future__ import annotations

from pathlib import Path

from bench import chaos


async def test_chaos_small_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    args = chaos.parser().parse_args(["--deals", "50", "--timeout", "420"])
    table, ok = await chaos.run(args, tmp_path / "chaos")
    data = table.data
    report = table.render()

    # the disturbances really happened
    assert sum("SIGKILL the worker" in e for e in table.notes) == 2, report
    assert sum("Temporal dev server restarted" in e for e in table.notes) == 1, report
    injected = sum(s["faults"] + s["timeouts"] for s in data["vendor_stats"].values())
    requests = sum(s["requests"] for s in data["vendor_stats"].values())
    assert 0.1 < injected / requests < 0.3, report
    assert data["ledger"]["deliveries_by_outcome"].get("duplicate", 0) > 0, report

    # and nothing was lost or duplicated
    assert data["lost"] == [], report
    assert sum(data["outcomes"].values()) == 50
    assert data["outcomes"].get("provisioned", 0) + sum(
        n for k, n in data["outcomes"].items() if k in ("failed", "rejected", "cancelled", "expired")) == 50, report
    for check in data["checks"]:
        assert check["duplicates"] == 0 and check["missing"] == 0, f"{check['name']}: {check}\n{report}"
    assert set(data["ledger"]["events_by_state"]) == {"done"}, report
    assert ok, report
