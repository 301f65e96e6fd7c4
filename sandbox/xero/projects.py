"""Projects API routes under ``/projects.xro/2.0``: projects, tasks and time entries, in the
Projects API's own camelCase shapes, ``{pagination, items}`` pages and ``{message, modelState}`` errors.

Totals (minutes logged, amounts to be invoiced) are derived from the tasks and time entries on
every read, so they can never drift from what was booked.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request, Response

from sandbox.xero import wire
from sandbox.xero.core import Call, XeroState, page_of

PREFIX = "/projects.xro/2.0"
CHARGE_TYPES = ("TIME", "FIXED", "NON_CHARGEABLE")
CENT = Decimal("0.01")


def _amount(currency: str, value: Decimal | str | int) -> dict[str, Any]:
    return {"currency": currency, "value": str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))}


def _page(request: Request, items: list[dict[str, Any]]) -> Response:
    # The Projects API always pages: 50 items by default, at most 500.
    chunk, pagination = page_of(request, items, default_size=50, max_size=500, always=True)
    return wire.json_response({"pagination": pagination, "items": wire.render(chunk)})


class Projects:
    """Route handlers; state lives in :class:`XeroState`."""

    def __init__(self, state: XeroState) -> None:
        self.state = state
        self.store = state.store

    # -- derived views ---------------------------------------------------------------------------
    def _task_view(self, tenant: str, task: dict[str, Any]) -> dict[str, Any]:
        entries = self.store.list("time_entry", tenant=tenant, where=lambda e: e["taskId"] == task["taskId"])
        minutes = sum(int(e["duration"]) for e in entries)
        rate = Decimal(task["rate"]["value"])
        currency = task["rate"]["currency"]
        kind = task["chargeType"]
        if kind == "TIME":
            total = rate * minutes / 60
        elif kind == "FIXED":
            total = rate
        else:
            total = Decimal(0)
        return {
            **task,
            "totalMinutes": minutes,
            "totalAmount": _amount(currency, total),
            "minutesToBeInvoiced": minutes if kind != "NON_CHARGEABLE" else 0,
            "minutesInvoiced": 0,
            "nonChargeableMinutes": minutes if kind == "NON_CHARGEABLE" else 0,
            "fixedMinutes": minutes if kind == "FIXED" else 0,
            "amountToBeInvoiced": _amount(currency, total),
            "amountInvoiced": _amount(currency, 0),
        }

    def _project_view(self, tenant: str, project: dict[str, Any]) -> dict[str, Any]:
        tasks = [self._task_view(tenant, t) for t in
                 self.store.list("task", tenant=tenant, where=lambda t: t["projectId"] == project["projectId"])]
        currency = project["currencyCode"]
        task_total = sum((Decimal(t["totalAmount"]["value"]) for t in tasks), Decimal(0))
        zero = _amount(currency, 0)
        return {
            **project,
            "minutesLogged": sum(t["totalMinutes"] for t in tasks),
            "totalTaskAmount": _amount(currency, task_total),
            "totalExpenseAmount": zero,
            "minutesToBeInvoiced": sum(t["minutesToBeInvoiced"] for t in tasks),
            "taskAmountToBeInvoiced": _amount(currency, task_total),
            "taskAmountInvoiced": zero,
            "expenseAmountToBeInvoiced": zero,
            "expenseAmountInvoiced": zero,
            "projectAmountInvoiced": zero,
            "deposit": zero,
            "depositApplied": zero,
            "creditNoteAmount": zero,
            "totalInvoiced": zero,
            "totalToBeInvoiced": _amount(currency, task_total),
        }

    def _project(self, call: Call, project_id: str) -> dict[str, Any] | None:
        return self.store.get("project", project_id.lower(), tenant=call.tenant)

    # -- projects --------------------------------------------------------------------------------
    async def list_projects(self, call: Call) -> Response:
        query = call.request.query_params
        contact = (query.get("contactID") or "").lower()
        states = {s.strip().upper() for s in (query.get("states") or "").split(",") if s.strip()}
        ids = {i.strip().lower() for i in (query.get("projectIds") or "").split(",") if i.strip()}
        items = self.store.list(
            "project", tenant=call.tenant,
            where=lambda p: (not contact or p["contactId"] == contact) and (not states or p["status"] in states)
            and (not ids or p["projectId"] in ids))
        return _page(call.request, [self._project_view(call.tenant, p) for p in items])

    async def get_project(self, call: Call, project_id: str) -> Response:
        project = self._project(call, project_id)
        if project is None:
            return wire.projects_error("Project not found.", status=404)
        return wire.json_response(wire.render(self._project_view(call.tenant, project)))

    def _project_fields(self, call: Call, body: Any, *, creating: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
        errors: dict[str, list[str]] = {}
        fields: dict[str, Any] = {}
        if not isinstance(body, dict):
            return fields, {"request": ["A project object is required."]}
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["The name field is required."]
        elif len(name) > 100:
            errors["name"] = ["The name must be 100 characters or fewer."]
        else:
            fields["name"] = name
        if creating:
            contact_id = str(body.get("contactId") or "").lower()
            contact = self.store.get("contact", contact_id, tenant=call.tenant) if contact_id else None
            if not contact_id:
                errors["contactId"] = ["The contactId field is required."]
            elif contact is None or contact.get("ContactStatus") != "ACTIVE":
                errors["contactId"] = [f"Contact {contact_id} was not found or is not active."]
            else:
                fields["contactId"] = contact_id
                fields["_currency"] = contact.get("DefaultCurrency") or call.entity.currency
        if body.get("deadlineUtc") is not None:
            try:
                fields["deadlineUtc"] = wire.iso_utc(wire.parse_moment(str(body["deadlineUtc"])))
            except ValueError:
                errors["deadlineUtc"] = ["The deadlineUtc must be an ISO-8601 UTC date time."]
        if body.get("estimateAmount") is not None:
            try:
                estimate = Decimal(str(body["estimateAmount"]))
                if estimate < 0:
                    raise InvalidOperation
                fields["estimate"] = estimate
            except InvalidOperation:
                errors["estimateAmount"] = ["The estimateAmount must be a positive number."]
        return fields, errors

    async def create_project(self, call: Call) -> Response:
        fields, errors = self._project_fields(call, call.body, creating=True)
        if errors:
            return wire.projects_error("The request is invalid.", errors)
        currency = fields.pop("_currency")
        project: dict[str, Any] = {"projectId": str(uuid.uuid4()), "contactId": fields["contactId"],
                                   "name": fields["name"], "currencyCode": currency, "status": "INPROGRESS"}
        if "deadlineUtc" in fields:
            project["deadlineUtc"] = fields["deadlineUtc"]
        if "estimate" in fields:
            project["estimate"] = _amount(currency, fields["estimate"])
        self.store.put("project", project["projectId"], project, tenant=call.tenant)
        return wire.json_response(wire.render(self._project_view(call.tenant, project)), 201)

    async def update_project(self, call: Call, project_id: str) -> Response:
        project = self._project(call, project_id)
        if project is None:
            return wire.projects_error("Project not found.", status=404)
        fields, errors = self._project_fields(call, call.body, creating=False)
        if errors:
            return wire.projects_error("The request is invalid.", errors)
        project["name"] = fields["name"]
        if "deadlineUtc" in fields:
            project["deadlineUtc"] = fields["deadlineUtc"]
        if "estimate" in fields:
            project["estimate"] = _amount(project["currencyCode"], fields["estimate"])
        self.store.put("project", project["projectId"], project, tenant=call.tenant)
        return Response(status_code=204)

    async def patch_project(self, call: Call, project_id: str) -> Response:
        project = self._project(call, project_id)
        if project is None:
            return wire.projects_error("Project not found.", status=404)
        status = call.body.get("status") if isinstance(call.body, dict) else None
        if status not in ("INPROGRESS", "CLOSED"):
            return wire.projects_error("The request is invalid.",
                                       {"status": ["The status must be INPROGRESS or CLOSED."]})
        project["status"] = status
        self.store.put("project", project["projectId"], project, tenant=call.tenant)
        return Response(status_code=204)

    # -- tasks -----------------------------------------------------------------------------------
    async def list_tasks(self, call: Call, project_id: str) -> Response:
        if self._project(call, project_id) is None:
            return wire.projects_error("Project not found.", status=404)
        query = call.request.query_params
        ids = {i.strip().lower() for i in (query.get("taskIds") or "").split(",") if i.strip()}
        charge = query.get("chargeType")
        tasks = self.store.list("task", tenant=call.tenant, where=lambda t: t["projectId"] == project_id.lower()
                                and (not ids or t["taskId"] in ids) and (not charge or t["chargeType"] == charge))
        return _page(call.request, [self._task_view(call.tenant, t) for t in tasks])

    async def create_task(self, call: Call, project_id: str) -> Response:
        project = self._project(call, project_id)
        if project is None:
            return wire.projects_error("Project not found.", status=404)
        body = call.body if isinstance(call.body, dict) else {}
        name, value, estimate, errors = _task_fields(body)
        if errors:
            return wire.projects_error("The request is invalid.", errors)
        task: dict[str, Any] = {"taskId": str(uuid.uuid4()), "projectId": project["projectId"], "name": name,
                                "rate": _amount(project["currencyCode"], value), "chargeType": body["chargeType"],
                                "status": "ACTIVE"}
        if estimate is not None:
            task["estimateMinutes"] = estimate
        self.store.put("task", task["taskId"], task, tenant=call.tenant)
        return wire.json_response(wire.render(self._task_view(call.tenant, task)), 201)

    def _task(self, call: Call, project_id: str, task_id: str) -> dict[str, Any] | None:
        task = self.store.get("task", task_id.lower(), tenant=call.tenant)
        return task if task is not None and task["projectId"] == project_id.lower() else None

    async def get_task(self, call: Call, project_id: str, task_id: str) -> Response:
        if self._project(call, project_id) is None:
            return wire.projects_error("Project not found.", status=404)
        task = self._task(call, project_id, task_id)
        if task is None:
            return wire.projects_error("Task not found.", status=404)
        return wire.json_response(wire.render(self._task_view(call.tenant, task)))

    async def update_task(self, call: Call, project_id: str, task_id: str) -> Response:
        """``PUT .../Tasks/{taskId}`` (TaskCreateOrUpdate: name, rate and chargeType required); 204."""
        project = self._project(call, project_id)
        if project is None:
            return wire.projects_error("Project not found.", status=404)
        task = self._task(call, project_id, task_id)
        if task is None:
            return wire.projects_error("Task not found.", status=404)
        body = call.body if isinstance(call.body, dict) else {}
        name, value, estimate, errors = _task_fields(body)
        booked = self.store.list("time_entry", tenant=call.tenant, where=lambda e: e["taskId"] == task["taskId"])
        if booked and body.get("chargeType") != task["chargeType"]:
            errors["chargeType"] = ["The charge type of a task with time entries cannot change."]
        if errors:
            return wire.projects_error("The request is invalid.", errors)
        task.update(name=name, rate=_amount(project["currencyCode"], value), chargeType=body["chargeType"])
        if estimate is not None:
            task["estimateMinutes"] = estimate
        self.store.put("task", task["taskId"], task, tenant=call.tenant)
        return Response(status_code=204)

    # -- time entries ----------------------------------------------------------------------------
    async def list_time(self, call: Call, project_id: str) -> Response:
        if self._project(call, project_id) is None:
            return wire.projects_error("Project not found.", status=404)
        query = call.request.query_params
        task = (query.get("taskId") or "").lower()
        user = (query.get("userId") or "").lower()
        states = {s.strip().upper() for s in (query.get("states") or "").split(",") if s.strip()}
        chargeable = query.get("isChargeable")
        charging = {t["taskId"] for t in self.store.list(
            "task", tenant=call.tenant, where=lambda t: t["projectId"] == project_id.lower()
            and t["chargeType"] in ("TIME", "FIXED"))}
        entries = self.store.list(
            "time_entry", tenant=call.tenant,
            where=lambda e: e["projectId"] == project_id.lower() and (not task or e["taskId"] == task)
            and (not user or e["userId"] == user) and (not states or e["status"] in states)
            and (chargeable is None or (e["taskId"] in charging) == (chargeable.lower() == "true")))
        return _page(call.request, entries)

    async def create_time(self, call: Call, project_id: str) -> Response:
        project = self._project(call, project_id)
        if project is None:
            return wire.projects_error("Project not found.", status=404)
        body = call.body if isinstance(call.body, dict) else {}
        errors: dict[str, list[str]] = {}
        users = {u["userId"] for u in self.state.users(call.tenant)}
        user_id = str(body.get("userId") or "").lower()
        if user_id not in users:
            errors["userId"] = [f"The user {user_id or '(none)'} is not a user of this organisation."]
        task_id = str(body.get("taskId") or "").lower()
        task = self.store.get("task", task_id, tenant=call.tenant) if task_id else None
        if task is None or task["projectId"] != project["projectId"]:
            errors["taskId"] = ["The task was not found on this project."]
        duration = body.get("duration")
        if not isinstance(duration, int) or isinstance(duration, bool) or not 1 <= duration <= 59940:
            errors["duration"] = ["The duration must be between 1 and 59940 minutes."]
        try:
            logged = wire.parse_moment(str(body.get("dateUtc") or ""))
        except ValueError:
            errors["dateUtc"] = ["The dateUtc field is required and must be an ISO-8601 UTC date time."]
            logged = datetime.now(UTC)
        if project["status"] != "INPROGRESS":
            errors["projectId"] = ["Time cannot be logged against a closed project."]
        if errors:
            return wire.projects_error("The request is invalid.", errors)
        entry: dict[str, Any] = {
            "timeEntryId": str(uuid.uuid4()), "userId": user_id, "projectId": project["projectId"],
            "taskId": task_id, "dateUtc": wire.iso_utc(logged), "dateEnteredUtc": wire.iso_utc(datetime.now(UTC)),
            "duration": duration, "status": "ACTIVE",
        }
        if body.get("description") is not None:
            entry["description"] = str(body["description"])
        self.store.put("time_entry", entry["timeEntryId"], entry, tenant=call.tenant)
        # The spec answers a created time entry with 200 (projects and tasks get 201).
        return wire.json_response(wire.render(entry), 200)

    async def list_users(self, call: Call) -> Response:
        return _page(call.request, self.state.users(call.tenant))


def register(app: FastAPI, state: XeroState) -> Projects:
    """Add the projects routes to ``app``."""
    api = Projects(state)

    def run(request: Request, handler: Any) -> Any:
        return state.run(request, handler, projects=True)

    @app.get(f"{PREFIX}/Projects")
    async def get_projects(request: Request) -> Response:
        return await run(request, api.list_projects)

    @app.post(f"{PREFIX}/Projects")
    async def post_project(request: Request) -> Response:
        return await run(request, api.create_project)

    @app.get(f"{PREFIX}/Projects/{{project_id}}")
    async def get_project(request: Request, project_id: str) -> Response:
        return await run(request, lambda call: api.get_project(call, project_id))

    @app.put(f"{PREFIX}/Projects/{{project_id}}")
    async def put_project(request: Request, project_id: str) -> Response:
        return await run(request, lambda call: api.update_project(call, project_id))

    @app.patch(f"{PREFIX}/Projects/{{project_id}}")
    async def patch_project(request: Request, project_id: str) -> Response:
        return await run(request, lambda call: api.patch_project(call, project_id))

    @app.get(f"{PREFIX}/Projects/{{project_id}}/Tasks")
    async def get_tasks(request: Request, project_id: str) -> Response:
        return await run(request, lambda call: api.list_tasks(call, project_id))

    @app.post(f"{PREFIX}/Projects/{{project_id}}/Tasks")
    async def post_task(request: Request, project_id: str) -> Response:
        return await run(request, lambda call: api.create_task(call, project_id))

    @app.get(f"{PREFIX}/Projects/{{project_id}}/Tasks/{{task_id}}")
    async def get_task(request: Request, project_id: str, task_id: str) -> Response:
        return await run(request, lambda call: api.get_task(call, project_id, task_id))

    @app.put(f"{PREFIX}/Projects/{{project_id}}/Tasks/{{task_id}}")
    async def put_task(request: Request, project_id: str, task_id: str) -> Response:
        return await run(request, lambda call: api.update_task(call, project_id, task_id))

    @app.get(f"{PREFIX}/Projects/{{project_id}}/Time")
    async def get_time(request: Request, project_id: str) -> Response:
        return await run(request, lambda call: api.list_time(call, project_id))

    @app.post(f"{PREFIX}/Projects/{{project_id}}/Time")
    async def post_time(request: Request, project_id: str) -> Response:
        return await run(request, lambda call: api.create_time(call, project_id))

    @app.get(f"{PREFIX}/ProjectsUsers")
    async def get_users(request: Request) -> Response:
        return await run(request, api.list_users)

    return api


__all__ = ["Projects", "register"]


def _task_fields(body: dict[str, Any]) -> tuple[Any, Decimal, Any, dict[str, list[str]]]:
    """Validate a TaskCreateOrUpdate body (create and update share it): name, rate value, estimate, errors.

    A task is priced in its project's currency whatever currency the request names.
    """
    errors: dict[str, list[str]] = {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["The name field is required."]
    elif len(name) > 100:
        errors["name"] = ["The name must be 100 characters or fewer."]
    if body.get("chargeType") not in CHARGE_TYPES:
        errors["chargeType"] = ["The chargeType must be TIME, FIXED or NON_CHARGEABLE."]
    rate = body.get("rate")
    value = Decimal(0)
    if not isinstance(rate, dict) or rate.get("value") is None:
        errors["rate"] = ["The rate field is required."]
    else:
        try:
            value = Decimal(str(rate["value"]))
        except InvalidOperation:
            errors["rate"] = ["The rate value must be a number."]
    estimate = body.get("estimateMinutes")
    if estimate is not None and (not isinstance(estimate, int) or isinstance(estimate, bool) or estimate < 0):
        errors["estimateMinutes"] = ["The estimateMinutes must be a whole number of minutes."]
    return name, value, estimate, errors
