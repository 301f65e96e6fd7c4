"""Benchmark 4, backfill under a rate limit: HubSpot companies -> Xero contacts (CompanyBackfillWorkflow)
with the sandboxes' rate limits on. Reports the achieved Xero request rate as a share of its limit and
the share of requests answered 429."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from bench.common import Table, Timer, bench_settings, running_stack
from bootstrap import open_connectors
from canonical import Account
from workflows.backfill import BackfillInput, BackfillResult, CompanyBackfillWorkflow


async def seed_companies(settings, n: int) -> None:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:6]
    async with open_connectors(settings) as c:
        for start in range(0, n, 100):
            await c.crm.upsert_companies([
                Account(name=f"Backfill {run} {i:06d} Ltd", domain=f"bf{run}-{i}.example.com", country="US")
                for i in range(start, min(n, start + 100))])


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    settings = bench_settings(data_dir, activity_retry_max_seconds=5.0)
    entity = settings.entity("US01")
    n, rate = args.companies, args.rate
    table = Table("backfill", f"4. Backfill under a rate limit: {n} HubSpot companies -> Xero contacts "
                              f"(Xero sandbox limit {rate:g}/s, HubSpot {args.hubspot_rate:g}/s, "
                              f"{args.batch} contacts per request)",
                  ["vendor", "limit req/s", "requests", "429s", "429 share", "achieved req/s", "of limit"])
    async with running_stack(settings) as bench:
        await seed_companies(settings, n)
        before = await bench.stats()
        await bench.faults("xero", rate_limit_per_second=rate)
        await bench.faults("hubspot", rate_limit_per_second=args.hubspot_rate)
        timer = Timer()
        result: BackfillResult = await bench.client.execute_workflow(
            CompanyBackfillWorkflow.run,
            BackfillInput(entity_code=entity.code, tenant_id=entity.erp_tenant_id, page_size=100,
                          batch_size=args.batch, xero_requests_per_second=rate,
                          hubspot_requests_per_second=args.hubspot_rate, pages_per_run=20),
            id=f"backfill-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue)
        elapsed = timer.elapsed
        after = await bench.stats()
        await bench.clear_faults()
        counts = await bench.control("xero", "counts", method="GET")
    figures = {}
    for vendor, limit in (("xero", rate), ("hubspot", args.hubspot_rate)):
        requests = after[vendor]["requests"] - before[vendor]["requests"]
        limited = after[vendor]["rate_limited"] - before[vendor]["rate_limited"]
        achieved = (requests - limited) / elapsed
        figures[vendor] = {"requests": requests, "rate_limited": limited, "achieved": achieved, "limit": limit}
        table.add(vendor, limit, requests, limited, limited / max(requests, 1), achieved, achieved / limit)
    totals = result.totals
    xero = figures["xero"]
    table.notes += [
        f"{totals.companies} companies in {elapsed:.1f}s ({totals.companies / elapsed:.0f}/s): {totals.created} "
        f"created, {totals.existing} existing; {totals.pages} pages over {totals.runs} run(s) (continue-as-new)",
        f"target Xero achieved >= 0.95 of limit: {'met' if xero['achieved'] / rate >= 0.95 else 'MISSED'} "
        f"({xero['achieved'] / rate:.3f}); 429 share < 1 %: "
        f"{'met' if xero['rate_limited'] / max(xero['requests'], 1) < 0.01 else 'MISSED'}",
        f"Xero objects now: {counts}",
    ]
    table.data = {"companies": n, "elapsed_seconds": elapsed, "totals": totals.model_dump(), "vendors": figures}
    return table
