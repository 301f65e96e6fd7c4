"""The worker of benchmarks and chaos: the production worker (``worker.main``: same composition, options and
start-up) plus the no-op baseline, on the run's own task queue. ``python -m bench.worker`` (the bench stack
starts it as its worker process)."""

from __future__ import annotations

import asyncio
import logging

import worker
from bench.noop import NoopActivities, NoopWorkflow

if __name__ == "__main__":
    try:
        asyncio.run(worker.main(extra_workflows=[NoopWorkflow], extra_activities=NoopActivities().all(),
                                log_level=logging.WARNING))
    except KeyboardInterrupt:
        pass
