"""The baseline of the throughput benchmark: a workflow running activities that do nothing, as regular or as
local activities (or a mix, as quote-to-cash runs them), with payloads of about the size quote-to-cash's steps
carry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity, workflow


class NoopInput(BaseModel):
    activities: int = 14
    local: bool = False
    local_activities: int = Field(default=0, description="extra local activities besides ``activities`` (a mix)")
    payload_bytes: int = 0


class NoopStep(BaseModel):
    index: int
    payload: str = ""


class NoopResult(BaseModel):
    activities: int


class NoopActivities:
    @activity.defn(name="bench_noop")
    async def noop(self, step: NoopStep) -> NoopStep:
        return step

    def all(self) -> list[Callable[..., Any]]:
        return [self.noop]


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    @workflow.run
    async def run(self, request: NoopInput) -> NoopResult:
        payload = "x" * request.payload_bytes
        for index in range(request.local_activities):  # the mix: quote-to-cash's short reads and writes first
            await workflow.execute_local_activity_method(NoopActivities.noop, NoopStep(index=index, payload=payload),
                                                         start_to_close_timeout=timedelta(seconds=30))
        for index in range(request.activities):
            step = NoopStep(index=index, payload=payload)
            if request.local:
                await workflow.execute_local_activity_method(NoopActivities.noop, step,
                                                             start_to_close_timeout=timedelta(seconds=30))
            else:
                await workflow.execute_activity_method(NoopActivities.noop, step,
                                                       start_to_close_timeout=timedelta(seconds=30))
        return NoopResult(activities=request.activities + request.local_activities)
