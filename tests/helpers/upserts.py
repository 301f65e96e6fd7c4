"""One reading of a run's search-attribute upserts for the tests that hold every workflow to the same rule:
at most one upsert per workflow task, and none that changes nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowHandle

LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass
class UpsertAudit:
    """What the history shows: the attributes as they ended, the Stage values in order, and the counts."""

    state: dict[str, Any] = field(default_factory=dict)
    stages: list[Any] = field(default_factory=list)
    upserts: int = 0
    tasks: int = 0
    events: int = 0
    local_steps: int = 0
    markers: int = 0  # markers that are not local activities (patch gates, side effects)
    log: list[object] = field(default_factory=list)


async def audit_upserts(handle: WorkflowHandle[Any, Any], *, from_start: bool = False) -> UpsertAudit:
    """Read the history; fail at the first upsert that is the task's second, or that changes nothing.

    ``from_start``: the attributes the run was started with count as the first state (and Stage value)."""
    audit = UpsertAudit()
    upserts_in_task = 0
    async for event in handle.fetch_history_events():
        audit.events += 1
        audit.log.append(event.event_type)
        if from_start and event.HasField("workflow_execution_started_event_attributes"):
            fields = event.workflow_execution_started_event_attributes.search_attributes.indexed_fields
            audit.state.update({name: json.loads(payload.data) for name, payload in fields.items()})
            audit.stages.append(audit.state.get("Stage"))
        if event.HasField("marker_recorded_event_attributes"):
            if event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER:
                audit.local_steps += 1
            else:
                audit.markers += 1
        if event.HasField("workflow_task_completed_event_attributes"):
            audit.tasks += 1
            upserts_in_task = 0
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            changed = {name: json.loads(payload.data) for name, payload in fields.items()}
            assert "TemporalChangeVersion" not in changed, "the unreleased version carries no patch gates"
            audit.upserts += 1
            upserts_in_task += 1
            assert upserts_in_task == 1, f"more than one upsert in one workflow task: {changed} after {audit.state}"
            assert any(audit.state.get(k) != v for k, v in changed.items()), \
                f"an upsert that changes nothing: {changed}"
            audit.state.update(changed)
            if "Stage" in changed:
                audit.stages.append(changed["Stage"])
            audit.log.append(changed)
    return audit
