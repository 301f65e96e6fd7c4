"""Benchmark 6, the cost of observability: the overhead benchmark's quote-to-cash deals, one at a time, with
metrics and tracing off (worker and ingress metrics ports 0, ``otel_traces_exporter=none``) and on (both metrics
endpoints, the SDK's runtime metrics, spans made for every request, workflow, activity and vendor call and
dropped by the ``discard`` exporter, so no collector's speed is measured). Each mode gets its own stack."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common import Table, bench_settings, running_stack, summary
from bench.overhead import measure


async def _one(args: argparse.Namespace, data_dir: Path, *, on: bool) -> dict[str, float]:
    overrides: dict[str, Any] = {"contract_poll_interval_seconds": args.poll, "activity_retry_max_seconds": 2.0}
    if not on:
        overrides.update(worker_metrics_port=0, ingress_metrics_port=0, otel_traces_exporter="none")
    else:
        overrides.update(otel_traces_exporter="discard")
    settings = bench_settings(data_dir / ("on" if on else "off"), **overrides)
    webhooks = getattr(args, "webhooks", False)
    async with running_stack(settings, with_ingress=webhooks) as bench:
        await bench.acts.clm.auto_sign(0)
        durable, _plain = await measure(bench, args.n, args.warmup)
    return summary(durable)


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    off = await _one(args, data_dir, on=False)
    on = await _one(args, data_dir, on=True)
    table = Table("telemetry", f"6. Observability overhead: one subscription deal at a time through quote-to-cash, "
                               f"n={args.n} per mode, metrics + tracing off vs on",
                  ["mode", "n", "p50 s", "p95 s", "mean s", "min s", "max s"])
    for name, s in (("metrics + tracing off", off), ("metrics + tracing on", on)):
        table.add(name, s["n"], s["p50"], s["p95"], s["mean"], s["min"], s["max"])
    table.add("ratio on/off", "", on["p50"] / off["p50"], on["p95"] / off["p95"], on["mean"] / off["mean"], "", "")
    table.notes.append("on: worker and ingress metrics endpoints, SDK runtime metrics, spans for every request, "
                       "workflow, activity and vendor call (exported to a discarding exporter); the business "
                       "gauges refresh every metrics_refresh_seconds in the worker as in production")
    table.data = {"off": off, "on": on, "ratio_p50": on["p50"] / off["p50"], "ratio_mean": on["mean"] / off["mean"]}
    return table
