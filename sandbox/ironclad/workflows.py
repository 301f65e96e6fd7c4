"""``/public/api/v1/workflows``: launch a workflow from a template, list, read and cancel workflows."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.ironclad.core import (
    API,
    IroncladSandbox,
    base_url,
    filter_terms,
    ironclad_error,
    json_body,
    page_of,
    pagination,
)
from sandbox.ironclad.templates import AMENDMENT_TEMPLATE_ID, normalise_date, validate_launch

_STATUSES = {"active", "paused", "completed", "cancelled"}


class Workflows:
    """The workflow routes over the shared :class:`IroncladSandbox`."""

    def __init__(self, sandbox: IroncladSandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.post(f"{API}/workflows")(self.launch)
        app.get(f"{API}/workflows")(self.list_workflows)
        app.get(f"{API}/workflows/{{workflow_id}}")(self.get_workflow)
        app.post(f"{API}/workflows/{{workflow_id}}/cancel")(self.cancel)

    async def launch(self, request: Request) -> Response:
        sandbox = self.sandbox
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        unknown = set(body) - {"template", "attributes", "creator"}
        if unknown:
            return ironclad_error(400, f"unknown field {sorted(unknown)[0]}", code="INVALID_PARAM",
                                  param=sorted(unknown)[0])
        template = sandbox.templates.get(str(body.get("template") or ""))
        if not body.get("template"):
            return ironclad_error(400, "missing template", code="MISSING_PARAM", param="template")
        if template is None or template.id == AMENDMENT_TEMPLATE_ID:
            return ironclad_error(400, f"template {body.get('template')} does not exist or cannot be launched "
                                  "through the API", code="INVALID_PARAM", param="template")
        attributes = body.get("attributes")
        if not isinstance(attributes, dict):
            return ironclad_error(400, "missing attributes", code="MISSING_PARAM", param="attributes")
        problem = validate_launch(template, attributes)
        if problem:
            code, message, param = problem
            return ironclad_error(400, message, code=code, param=param)
        for key, kind in template.attributes.items():
            if kind == "date" and isinstance(attributes.get(key), str):
                attributes[key] = normalise_date(attributes[key])
        workflow = sandbox.new_workflow(template, attributes, base_url(request))
        sandbox.emit({"event": "workflow_launched", "templateID": template.id, "workflowID": workflow["id"]})
        sandbox.schedule_autosign(workflow["id"])
        return JSONResponse({**workflow, "schema": template.flat_schema()})

    async def list_workflows(self, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request)) is not None:
            return denied
        paging, terms = pagination(request), filter_terms(request)
        if isinstance(paging, Response):
            return paging
        if isinstance(terms, Response):
            return terms
        statuses = {s.strip() for raw in request.query_params.getlist("status") for s in raw.split(",")
                    if s.strip()} or {"active"}
        if statuses - _STATUSES:
            return ironclad_error(400, f"invalid status {sorted(statuses - _STATUSES)[0]}", param="status")
        template = request.query_params.get("template")

        def matches(w: dict[str, Any]) -> bool:
            return (w["status"] in statuses and (not template or w["template"] == template)
                    and all(str(w["attributes"].get(k)) == v for k, v in terms))

        return JSONResponse(page_of(self.sandbox.store.list("workflow", where=matches), *paging))

    async def get_workflow(self, workflow_id: str, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request)) is not None:
            return denied
        workflow = self.sandbox.find_workflow(workflow_id)
        if workflow is None:
            return ironclad_error(404, "workflow does not exist", param="workflowId")
        return JSONResponse(workflow)

    async def cancel(self, workflow_id: str, request: Request) -> Response:
        sandbox = self.sandbox
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        comment = body.get("comment")
        if not isinstance(comment, dict) or not isinstance(comment.get("message"), str):
            return ironclad_error(400, "missing comment message", code="MISSING_PARAM", param="comment")
        workflow = sandbox.find_workflow(workflow_id)
        if workflow is None:
            return ironclad_error(404, "workflow does not exist", param="workflowId")
        if workflow["status"] in ("cancelled", "completed"):
            return ironclad_error(400, f"workflow is already {workflow['status']}", code="INVALID_STATE",
                                  param="workflowId")
        sandbox.cancel(workflow, comment["message"])
        return Response(status_code=204)
