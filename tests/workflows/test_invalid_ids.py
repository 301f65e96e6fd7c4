"""An invalid ID inside a running workflow is a visible, non-retryable failure, never an endless retry.

Before: a deal ID of ``../../properties/deals`` made ``load_deal`` read ``/crm/v3/properties/deals`` and
retry forever on its odd answer, with no exception visible."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.outcomes import deal_outcome
from tests.helpers.servers import SandboxHandle
from workflows.models import Stage


async def test_invalid_deal_id_fails_the_run_visibly_without_retrying(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    # a path is refused before anything starts: it is not a business ID (canonical/keys.py)
    with pytest.raises(ValueError, match="deal ID is one token"):
        await start_quote_to_cash(client, flow_settings, "../../properties/deals")
    # an ID of the right grammar that the CRM's own ID check refuses fails the run visibly
    handle = await start_quote_to_cash(client, flow_settings, "not-a-deal-number")

    result = await deal_outcome(handle)

    assert result.outcome is Stage.FAILED
    assert "invalid HubSpot object ID" in (result.reason or ""), result.reason
    # refused at the boundary, not retried: the two local reads (config, deal) and no retry timer
    events = [e async for e in handle.fetch_history_events()]
    assert sum(e.HasField("marker_recorded_event_attributes") for e in events) == 2
    assert not any(e.HasField("timer_started_event_attributes") for e in events)
    description = await handle.describe()
    assert dict((k.name, v) for k, v in description.typed_search_attributes)["ExceptionKind"] == "deal_not_found"
