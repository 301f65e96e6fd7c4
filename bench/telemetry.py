"""Benchmark 6, the cost of observability: the overhead benchmark's quote-to-cash deals, one at a time, with
metrics and tracing off (worker and ingress metrics ports 0, ``otel_traces_exporter=none``) and on (both metrics
endpoints, the SDK's runtime metrics, spans made for every request, workflow, activity and vendor call and
dropped by the ``discard`` exporter, so no collector's speed is measured).

Both stacks run at once and the deals alternate between them (off, on, on, off, ...), so that a slower minute
of the machine, or a stack's files growing, weighs on both modes alike: on a shared 2-core VM one stack's
latency drifts by 20 % between runs, more than the effect measured."""

from __future__ import annotations

import argparse
import contextlib
import functools
from pathlib import Path
from typing import Any

from bench.common import BenchStack, Table, bench_settings, running_stack, summary
from bench.overhead import take_turns, workflow_quote_to_cash

MODES: dict[str, dict[str, Any]] = {
    "off": {"worker_metrics_port": 0, "ingress_metrics_port": 0, "otel_traces_exporter": "none"},
    "on": {"otel_traces_exporter": "discard"},
}


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    webhooks = getattr(args, "webhooks", False)
    async with contextlib.AsyncExitStack() as running:
        stacks: dict[str, BenchStack] = {}
        for name, overrides in MODES.items():
            settings = bench_settings(data_dir / name, contract_poll_interval_seconds=args.poll,
                                      activity_retry_max_seconds=2.0, **overrides)
            stacks[name] = await running.enter_async_context(running_stack(settings, with_ingress=webhooks))
            await stacks[name].acts.clm.auto_sign(0)
        times = await take_turns({name: (stack, functools.partial(workflow_quote_to_cash, stack))
                                  for name, stack in stacks.items()}, args.n, args.warmup)
    off, on = summary(times["off"]), summary(times["on"])
    table = Table("telemetry", f"6. Observability overhead: one subscription deal at a time through quote-to-cash, "
                               f"n={args.n} per mode, metrics + tracing off vs on, the two stacks taking turns",
                  ["mode", "n", "p50 s", "p95 s", "mean s", "min s", "max s"])
    for name, s in (("metrics + tracing off", off), ("metrics + tracing on", on)):
        table.add(name, s["n"], s["p50"], s["p95"], s["mean"], s["min"], s["max"])
    table.add("ratio on/off", "", on["p50"] / off["p50"], on["p95"] / off["p95"], on["mean"] / off["mean"], "", "")
    table.notes.append("on: worker and ingress metrics endpoints, SDK runtime metrics, spans for every request, "
                       "workflow, activity and vendor call (exported to a discarding exporter); the business "
                       "gauges refresh every metrics_refresh_seconds in the worker as in production")
    table.notes.append("both stacks run at once and the deals alternate between them (the order flipping every "
                       "round), so the machine's drift weighs on both modes alike")
    table.data = {"off": off, "on": on, "ratio_p50": on["p50"] / off["p50"], "ratio_mean": on["mean"] / off["mean"]}
    return table
