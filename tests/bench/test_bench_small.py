"""The benchmarks at a tiny size, so a harness that no longer runs is found by ``make test``, not by the next
``make bench`` (the month-end burst stopped at its last check for weeks when business references began refusing
a blank ID). Figures are not judged here (``make bench`` reports them); what each run checks is: the burst posts
every invoice and payment once with the CRM's figures right, and the backfill reaches every tenant at once."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import parser, run_one


async def test_bench_burst_small_posts_every_event_once(tmp_path: Path) -> None:
    args = parser().parse_args(["--events", "40", "--customers", "2", "--burst-timeout", "240"])
    table = await run_one("burst", args, tmp_path / "burst")
    report = table.render()
    assert table.data["done_seconds"], report  # every invoice paid in the ERP and the CRM's figures right
    assert not table.incomplete, report  # so `python -m bench` does not keep its data folder as unfinished
    assert table.data["invoices"] == 20 and table.data["events"] == 40, report
    assert table.data["duplicates"] == 0 and table.data["amount_mismatches"] == 0, report
    assert table.data["crm_mismatches"] == 0, report


async def test_bench_backfill_small_runs_every_tenant_at_once(tmp_path: Path) -> None:
    args = parser().parse_args(["--companies", "60", "--rate", "20", "--crm-rate", "20", "--batch", "10"])
    table = await run_one("backfill", args, tmp_path / "backfill")
    report = table.render()
    tenants = table.data["tenants"]
    assert set(tenants) == {"US01", "EU01", "UK01"}, report
    for code, figures in tenants.items():
        assert figures["totals"]["companies"] == 60 and figures["totals"]["created"] == 60, (code, report)
        assert figures["requests"] > 0 and figures["rate_limited"] == 0, (code, report)
