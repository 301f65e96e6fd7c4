"""``make up REPLICAS=2`` as an operator runs it: two ingress processes and two workers on one task queue.

The real entry (``python -m devstack.stack --replicas 2``) runs on free loopback ports. The test looks at what
the processes do, not at what the stack says: both ingress replicas answer ``/readyz``; the CRM emulator's
stage-change webhooks go to each replica in turn and every one is accepted; each deal starts exactly one
quote-to-cash run, whichever replica took its webhook; Temporal sees two distinct worker identities polling the
task queue; and after a replica is killed, the next webhooks still arrive (at the one left).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.common import bench_settings, child_env
from canonical.keys import quote_to_cash_workflow_id
from canonical.ownership import SystemRole
from connectors.acts import DealDraft, role_acts
from connectors.registry import default_registry
from devstack.runfile import RUN_FILE
from sandbox.serve import free_port
from settings import Settings
from tests.devstack.free_ports import assert_no_default_port
from tests.devstack.test_stopping import children_of_everything, start_up, wait_all_gone

pytestmark = pytest.mark.timeout(420)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Settings, dict[str, str], Path, subprocess.Popen[bytes]]]:
    settings = bench_settings(tmp_path / "data")
    env = {**os.environ, **child_env(settings), "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    assert_no_default_port(env)
    log = tmp_path / "up.log"
    process = start_up(env, log, args=["--replicas", "2"])
    try:
        yield settings, env, log, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        for pid in children_of_everything(tmp_path):
            os.kill(pid, signal.SIGKILL)


def children(settings: Settings) -> dict[str, dict[str, object]]:
    data = json.loads((settings.data_dir / RUN_FILE).read_text())
    return {c["name"]: c for c in data["children"]}


async def test_two_ingress_replicas_share_the_webhooks_and_two_workers_the_task_queue(
        stack: tuple[Settings, dict[str, str], Path, subprocess.Popen[bytes]]) -> None:
    settings, env, log, process = stack
    running = children(settings)
    assert {"ingress", "ingress-2", "worker", "worker-2"} <= set(running), sorted(running)
    ingress_ports = [running[name]["ports"][0] for name in ("ingress", "ingress-2")]  # type: ignore[index]
    assert ingress_ports[0] == settings.ingress_port and ingress_ports[1] != settings.ingress_port
    bases = [f"http://{settings.ingress_host}:{port}" for port in ingress_ports]

    async with httpx.AsyncClient(timeout=30) as http:
        for base in bases:
            deadline = time.monotonic() + 60
            while (await http.get(f"{base}/readyz")).status_code != 200:
                assert time.monotonic() < deadline, f"{base}/readyz never ready"
                await asyncio.sleep(0.5)
        crm = role_acts(settings, SystemRole.CRM, http)
        deals = []
        for n in range(4):
            seeded = await crm.seed_deal(DealDraft(name=f"Replica deal {n}", company=f"Replica Co {n}"))
            await crm.move_deal(seeded.deal_id)
            deals.append(seeded.deal_id)
        deadline = time.monotonic() + 60
        while True:
            delivered = [d for d in await crm.controls.deliveries() if not d.get("intent")]
            if len(delivered) >= len(deals) and all(d["status"] == 204 or d["status"] == 200 for d in delivered):
                break
            assert time.monotonic() < deadline, delivered
            await asyncio.sleep(0.5)
        by_replica = {base: sum(1 for d in delivered if str(d["url"]).startswith(base)) for base in bases}
        assert all(count >= 1 for count in by_replica.values()), by_replica  # each replica took its turn

    client = await Client.connect(env["TEMPORAL_ADDRESS"], namespace="default")
    crm_name = default_registry(settings).systems(settings).crm.name
    for deal_id in deals:
        workflow_id = quote_to_cash_workflow_id(crm_name, deal_id)
        deadline = time.monotonic() + 60
        while True:
            runs = [w async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
            if runs:
                break
            assert time.monotonic() < deadline, f"no run for {workflow_id}"
            await asyncio.sleep(0.5)
        assert len(runs) == 1, f"{workflow_id}: {len(runs)} runs"

    deadline = time.monotonic() + 120  # each worker connects, registers and polls in its own time
    while True:
        pollers = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        identities = {p.identity for p in pollers.pollers}
        if len(identities) >= 2:
            break
        assert time.monotonic() < deadline, f"pollers on {settings.task_queue}: {identities}"
        await asyncio.sleep(1)

    # a replica killed (kill -9): the emulators' next webhooks arrive at the one left
    os.killpg(int(running["ingress-2"]["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    async with httpx.AsyncClient(timeout=30) as http:
        crm = role_acts(settings, SystemRole.CRM, http)
        before = len([d for d in await crm.controls.deliveries() if not d.get("intent")])
        later = []
        for n in range(2):
            seeded = await crm.seed_deal(DealDraft(name=f"After the kill {n}", company=f"Survivor Co {n}"))
            await crm.move_deal(seeded.deal_id)
            later.append(seeded.deal_id)
        deadline = time.monotonic() + 60
        while True:
            fresh = [d for d in await crm.controls.deliveries() if not d.get("intent")][before:]
            if len(fresh) >= 2 and all(d["status"] in (200, 204) for d in fresh):
                break
            assert time.monotonic() < deadline, fresh
            await asyncio.sleep(0.5)
        assert all(str(d["url"]).startswith(bases[0]) for d in fresh), fresh
    for deal_id in later:
        handle = client.get_workflow_handle(quote_to_cash_workflow_id(crm_name, deal_id))
        deadline = time.monotonic() + 60
        while True:
            try:
                await handle.describe()
                break
            except Exception:  # not started yet
                assert time.monotonic() < deadline, deal_id
                await asyncio.sleep(0.5)

    left = children(settings)
    pids = {int(c["pid"]) for c in left.values()}  # type: ignore[call-overload]
    ports = [int(p) for c in left.values() for p in c["ports"]]  # type: ignore[attr-defined]
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)
    wait_all_gone(pids, ports)  # every replica stops with the stack
