"""The worker of benchmarks and chaos: the production composition (``worker.WORKFLOWS`` and
``worker.activities_for``, same options) plus the bench's no-op baseline and the company backfill, on the
run's own task queue. ``python -m bench.worker`` (the bench stack starts it as its worker process)."""

from __future__ import annotations

import asyncio
import logging

from temporalio.worker import Worker

from bench.noop import NoopActivities, NoopWorkflow
from connectors.errors import ConnectorError
from orchestration.connect import connect
from settings import Settings
from worker import WORKFLOWS, activities_for, open_connectors

log = logging.getLogger("revops.bench.worker")


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings()
    client = await connect()
    async with open_connectors(settings) as connectors:
        try:
            await connectors.crm.ensure_properties()
        except ConnectorError as exc:
            log.warning("could not prepare HubSpot properties now (%s)", exc)
        # The product's workflows and activities (ledger and backfill included) plus the no-op baseline.
        workflows = [*WORKFLOWS, NoopWorkflow]
        activities = [*activities_for(settings, connectors), *NoopActivities().all()]
        worker = Worker(client, task_queue=settings.task_queue, workflows=workflows, activities=activities,
                        max_concurrent_activities=200)
        await worker.run()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
