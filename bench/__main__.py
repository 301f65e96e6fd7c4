"""``python -m bench [--only overhead,throughput,burst,backfill,cost] [--n N] ...``: run benchmarks, print
their tables, write ``bench/results/<name>.json``. Benchmarks report figures and never fail on a target."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

from bench.common import Table
from devstack.stack import stop_on_sigterm

ALL = ["overhead", "throughput", "burst", "backfill", "cost", "reconciliation", "telemetry"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument("--n", type=int, default=10, help="overhead: deals per path (sequential)")
    p.add_argument("--warmup", type=int, default=2, help="overhead: unmeasured deals per path first")
    p.add_argument("--poll", type=float, default=0.2, help="contract poll interval in seconds (both paths)")
    p.add_argument("--poll-only", dest="webhooks", action="store_false", default=True,
                   help="overhead: no ingress, so the workflow learns of the signature by polling the CLM "
                        "(default: the product's path, the CLM's webhook -> ingress -> signal)")
    p.add_argument("--k", type=int, default=40, help="throughput: deals (and no-op workflows) in flight")
    p.add_argument("--events", type=int, default=10000, help="burst: billing events")
    p.add_argument("--customers", type=int, default=20, help="burst: billing customers the invoices spread over")
    p.add_argument("--concurrency", type=int, default=32, help="burst: webhook deliveries in flight at most")
    p.add_argument("--burst-timeout", type=float, default=1800, help="burst: give up waiting after (s)")
    p.add_argument("--companies", type=int, default=20000, help="backfill: CRM companies")
    p.add_argument("--rate", type=float, default=5.0, help="backfill: ERP sandbox limit, requests/s")
    p.add_argument("--crm-rate", type=float, default=10.0, help="backfill: CRM sandbox limit, requests/s")
    p.add_argument("--batch", type=int, default=25, help="backfill: customers per ERP request")
    p.add_argument("--invoices", type=int, default=10000, help="reconciliation: invoices across 3 entities")
    p.add_argument("--billing-rate", type=float, default=25.0,
                   help="reconciliation: billing sandbox limit, req/s (test mode of the default billing: 25/s)")
    p.add_argument("--erp-rate", type=float, default=3.0,
                   help="reconciliation: ERP sandbox limit, req/s for the 3 tenants (the default ERP: 60 a minute "
                        "each)")
    p.add_argument("--quick", action="store_true",
                   help="a tenth of the sizes (burst 1,000 events, backfill 2,000 companies, reconciliation 1,000 "
                        "invoices) for a look in minutes")
    p.add_argument("--keep", action="store_true", help="keep the stack's data folder (logs, SQLite files)")
    return p


async def run_one(name: str, args: argparse.Namespace, data_dir: Path) -> Table:
    module = __import__(f"bench.{name}", fromlist=["run"])
    return await module.run(args, data_dir)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.events, args.companies, args.invoices = args.events // 10, args.companies // 10, args.invoices // 10
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {unknown}; choose from {ALL}", file=sys.stderr)
        return 2
    stop_on_sigterm()
    root = Path(tempfile.mkdtemp(prefix="revops-bench-"))
    errors = 0
    unfinished: list[str] = []
    try:
        for name in names:
            data_dir = root / name
            try:
                table = asyncio.run(run_one(name, args, data_dir))
            except Exception as exc:  # a broken benchmark is reported; the others still run
                traceback.print_exc()
                table = Table(name, f"{name}: did not complete", ["error"], [[f"{type(exc).__name__}: {exc}"]],
                              notes=[f"logs: {data_dir / 'logs'}"])
                errors += 1
            table.emit()
            if table.incomplete:
                unfinished.append(name)
    finally:
        if args.keep or errors or unfinished:
            why = f" ({', '.join(unfinished)} did not finish: see its logs/)" if unfinished else ""
            print(f"\nstate and logs kept in {root}{why}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
