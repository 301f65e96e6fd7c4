"""The outcome of a quote-to-cash run, whether it ended Completed or Failed (failed business outcomes end the
run Failed, with the result as the error's details)."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from workflows.models import QuoteToCashResult


async def deal_outcome(handle: WorkflowHandle[Any, Any]) -> QuoteToCashResult:
    try:
        return QuoteToCashResult.model_validate(await handle.result())
    except WorkflowFailureError as failed:
        cause = failed.cause
        if isinstance(cause, ApplicationError) and cause.details:
            return QuoteToCashResult.model_validate(cause.details[0])
        raise
