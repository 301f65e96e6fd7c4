"""Ironclad emulator: OAuth 2.0 client credentials, workflows launched from templates, records with
amendments, cancel, the webhook verification key, and RSA-signed webhooks, on Ironclad's own paths
(``/oauth/token``, ``/public/api/v1/...``) and error shapes (``{"code", "message", "param"}``).

``/_sandbox`` adds the human acts no public API offers: approve, sign (all parties), auto-sign, execute an
amendment, expire tokens, rotate the webhook signing key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import re
import secrets
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from sandbox.ironclad.templates import (
    AMENDMENT_TEMPLATE_ID,
    Template,
    check_attribute,
    default_templates,
    normalise_date,
    to_properties,
    validate_launch,
)
from sandbox.kit import Store, VendorStyle, create_sandbox_app, json_error
from settings import Settings

API = "/public/api/v1"
COMPANY_ID = "5f0375c4cdc1927a3c5e0c01"
WEBHOOK_ID = "5f0375c4cdc1927a3c5e0w01"
TOKEN_TTL_SECONDS = 3600
_STATUSES = {"active", "paused", "completed", "cancelled"}
_EQUALS = re.compile(r"Equals\(\s*\[(\w+)\]\s*,\s*'((?:[^'\\]|\\.)*)'\s*\)")

_CODES = {400: "INVALID_PARAM", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
          422: "INVALID_PARAM"}


def ironclad_error(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """Ironclad's error body: ``{"code": "...", "message": "...", "param": "..."}``."""
    body: dict[str, Any] = {"code": code or _CODES.get(status, "SERVER_ERROR" if status >= 500 else "ERROR"),
                            "message": message}
    if param is not None:
        body["param"] = param
    return json_error(status, body, headers)


def _rate_limited(wait: float) -> Response:
    return ironclad_error(429, "Too Many Requests", code="TOO_MANY_REQUESTS",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})


STYLE = VendorStyle(vendor="ironclad", error=lambda status, message: ironclad_error(status, message),
                    rate_limited=_rate_limited)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now_seconds() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SandboxError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Signer:
    """The emulator's webhook signing key pair (RSA 2048), rotatable."""

    def __init__(self) -> None:
        self.rotate()

    def rotate(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_pem(self) -> str:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def headers(self, event_id: str, body_text: str) -> dict[str, str]:
        """Ironclad's headers: the event ID, and the signature of event ID + body + nonce."""
        nonce = secrets.token_hex(8)
        signature = self.private_key.sign((event_id + body_text + nonce).encode(), padding.PKCS1v15(),
                                          hashes.SHA256())
        verification = {"nonce": nonce, "signAlgorithm": "RSA-SHA256",
                        "signature": base64.b64encode(signature).decode(), "encoding": "base64"}
        return {"X-Ironclad-Webhook-Event-Id": event_id,
                "X-Ironclad-Webhook-Verification": json.dumps(verification, separators=(",", ":"))}


class SignRequest(BaseModel):
    executed_date: date | None = Field(default=None, description="the record's agreementDate; today if unset")


class DeclineRequest(BaseModel):
    reason: str = Field(default="declined by the counterparty", min_length=1, max_length=500)


class AutosignRequest(BaseModel):
    delay_seconds: float | None = Field(default=None, ge=0, description="null turns auto-signing off")


class AmendmentRequest(BaseModel):
    sequence: int = Field(ge=1)
    properties: dict[str, Any] = Field(default_factory=dict,
                                       description="changed terms, encoded as the launch attributes")
    executed_date: date | None = None


class IroncladSandbox:
    """State and behaviour behind the routes (the Store holds every object)."""

    def __init__(self, app: FastAPI, settings: Settings, store: Store) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self.templates: dict[str, Template] = default_templates(settings.ironclad_template_id)
        self.signer = Signer()
        self.token_ttl = TOKEN_TTL_SECONDS
        self.autosign_delay: float | None = None
        self.user: dict[str, Any] = {"id": "5f0375c4cdc1927a3c5e0u01", "email": settings.ironclad_user_email,
                     "displayName": "RevOps Integration", "title": "Integration User",
                     "username": settings.ironclad_user_email, "metadata": {}}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- auth -----------------------------------------------------------------------------------
    def issue_token(self, scope: str | None) -> dict[str, Any]:
        token = secrets.token_hex(20)
        self.store.put("oauth_token", token, {"token": token, "expires_at": time.time() + self.token_ttl,
                                              "scope": scope})
        body: dict[str, Any] = {"token_type": "Bearer", "access_token": token, "expires_in": self.token_ttl}
        if scope:
            body["scope"] = scope
        return body

    def authorize(self, request: Request) -> Response | None:
        """Ironclad's refusals: 401 for a missing, unknown or expired token; the acting user is required."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return ironclad_error(401, "invalid authentication token")
        stored = self.store.get("oauth_token", token.strip())
        if stored is None:
            return ironclad_error(401, "invalid authentication token")
        if stored["expires_at"] <= time.time():
            return ironclad_error(401, "token has expired")
        email, user_id = request.headers.get("x-as-user-email"), request.headers.get("x-as-user-id")
        if not email and not user_id:
            return ironclad_error(400, "x-as-user-email or x-as-user-id header is required for client "
                                  "credentials tokens", code="MISSING_PARAM", param="x-as-user-email")
        if (email and email.lower() != self.user["email"].lower()) or (user_id and user_id != self.user["id"]):
            return ironclad_error(403, f"user {email or user_id} does not exist in this company or is inactive")
        return None

    # -- workflows ----------------------------------------------------------------------------
    def _find(self, kind: str, object_id: str) -> dict[str, Any] | None:
        """By our ID, or by Ironclad's human ``IC-n`` ID as the vendor also accepts."""
        found = self.store.get(kind, object_id)
        if found is None and object_id.upper().startswith("IC-"):
            matches = self.store.list(kind, where=lambda o: o.get("ironcladId") == object_id.upper())
            found = matches[0] if matches else None
        return found

    def find_workflow(self, workflow_id: str) -> dict[str, Any] | None:
        return self._find("workflow", workflow_id)

    def find_record(self, record_id: str) -> dict[str, Any] | None:
        return self._find("record", record_id)

    def _object_id(self) -> str:
        # Ironclad workflow IDs are 24-hex Mongo object IDs
        return f"{int(time.time()):08x}{self.store.next_number('workflow-oid'):016x}"

    def _readable_id(self) -> str:
        return f"IC-{self.store.next_number('ironclad-id')}"

    def new_workflow(self, template: Template, attributes: dict[str, Any], base_url: str) -> dict[str, Any]:
        workflow_id, now = self._object_id(), _now()
        title = str(attributes.get("contractTitle") or f"{template.name} with {attributes.get('counterpartyName')}")
        workflow = {
            "id": workflow_id, "ironcladId": self._readable_id(), "title": title, "template": template.id,
            "step": "Review", "schema": template.schema(), "attributes": attributes,
            "isCancelled": False, "isComplete": False, "status": "active", "creator": dict(self.user),
            "created": now, "lastUpdated": now,
            "roles": [{"id": "legal", "displayName": "Legal",
                       "assignees": [{"userName": self.user["displayName"], "userId": self.user["id"],
                                      "email": self.user["email"]}]}],
            "approvals": {"state": "in_progress", "url": f"{base_url}{API}/workflows/{workflow_id}/approvals"},
            "signatures": {"state": "not_started"},
            "recordIds": [], "isRevertibleToReview": False,
        }
        return self.store.put("workflow", workflow_id, workflow)

    def approve(self, workflow_id: str, base_url: str) -> dict[str, Any]:
        """Every approver approved: the workflow moves to the Sign step."""
        workflow = self._active(workflow_id)
        workflow.update(step="Sign", lastUpdated=_now(), approvals={"state": "completed"},
                        signatures={"state": "in_progress",
                                    "url": f"{base_url}{API}/workflows/{workflow_id}/signatures"})
        self.store.put("workflow", workflow["id"], workflow)
        self.emit({"event": "workflow_updated", "templateID": workflow["template"], "workflowID": workflow["id"]})
        return workflow

    def _active(self, workflow_id: str) -> dict[str, Any]:
        workflow = self.find_workflow(workflow_id)
        if workflow is None:
            raise SandboxError(404, f"workflow {workflow_id} does not exist")
        if workflow["status"] == "cancelled":
            raise SandboxError(409, f"workflow {workflow_id} is cancelled")
        return workflow

    def sign(self, workflow_id: str, executed: date | None = None) -> tuple[dict[str, Any], str]:
        """All parties signed: complete the workflow, create its record, emit ``workflow_completed``."""
        workflow = self._active(workflow_id)
        if workflow["status"] == "completed":
            return workflow, workflow["recordIds"][0]
        template = self.templates[workflow["template"]]
        record = self.new_record(template, workflow, executed or datetime.now(UTC).date())
        workflow.update(status="completed", step="Complete", isComplete=True, lastUpdated=_now(),
                        approvals={"state": "completed"}, signatures={"state": "completed"},
                        recordIds=[record["id"]])
        self.store.put("workflow", workflow["id"], workflow)
        self.emit({"event": "workflow_completed", "templateID": workflow["template"],
                   "workflowID": workflow["id"]})
        return workflow, record["id"]

    def new_record(self, template: Template, workflow: dict[str, Any], executed: date,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
        record_id = str(uuid.uuid4())
        properties = to_properties(template, workflow["attributes"])
        properties["agreementDate"] = {"type": "date", "value": f"{executed.isoformat()}T00:00:00Z"}
        record = {
            "id": record_id, "ironcladId": self._readable_id(), "type": template.record_type,
            "name": workflow["title"], "lastUpdated": _now_seconds(), "properties": properties,
            "attachments": {}, "links": [], "childIds": [], "amendments": [],
            "source": {"type": "workflow", "workflowId": f"workflow:{workflow['id']}"},
            "contractStatus": {"status": "active", "enhancedStatus": "executed"},
            **(extra or {}),
        }
        return self.store.put("record", record_id, record)

    def cancel(self, workflow: dict[str, Any], message: str) -> None:
        workflow.update(status="cancelled", isCancelled=True, lastUpdated=_now(),
                        approvals={"state": "not_applicable", "message": "This workflow has been cancelled"},
                        signatures={"state": "not_applicable", "message": "This workflow has been cancelled"})
        self.store.put("workflow", workflow["id"], workflow)
        self.store.put("workflow_comment", f"{workflow['id']}:cancel", {"workflowId": workflow["id"],
                                                                         "message": message})
        self.emit({"event": "workflow_cancelled", "templateID": workflow["template"],
                   "workflowID": workflow["id"]})

    # -- amendments -------------------------------------------------------------------------
    def execute_amendment(self, parent_id: str, body: AmendmentRequest) -> dict[str, Any]:
        """An amendment workflow signed by all parties: its record amends the parent record."""
        parent = self.find_record(parent_id)
        if parent is None:
            raise SandboxError(404, f"couldn't find a record matching the id {parent_id}")
        existing = self.store.list("record", where=lambda r: r.get("parentId") == parent["id"] and (
            r["properties"].get("amendmentNumber", {}).get("value") == body.sequence))
        if existing:
            workflow_id = existing[0]["source"]["workflowId"].split(":", 1)[-1]
            return {"recordId": existing[0]["id"], "sequence": body.sequence, "workflowId": workflow_id,
                    "replayed": True}
        template = self.templates[AMENDMENT_TEMPLATE_ID]
        for key, value in body.properties.items():
            kind = template.attributes.get(key)
            if kind is None or key in ("counterpartyName", "contractTitle", "parentContract", "amendmentNumber"):
                raise SandboxError(400, f"{key} is not an amendable term")
            problem = check_attribute(kind, value)
            if problem:
                raise SandboxError(400, f"{key} {problem}")
        executed = body.executed_date or datetime.now(UTC).date()
        counterparty = parent["properties"].get("counterpartyName", {}).get("value", "")
        attributes = {"counterpartyName": counterparty, "contractTitle": f"Amendment {body.sequence} to "
                      f"{parent['name']}", "parentContract": parent["ironcladId"],
                      "amendmentNumber": body.sequence, **body.properties}
        workflow = self.new_workflow(template, attributes, "")
        workflow.update(status="completed", step="Complete", isComplete=True, approvals={"state": "completed"},
                        signatures={"state": "completed"})
        record = self.new_record(template, workflow, executed,
                                 {"parentId": parent["id"], "parentLinkType": "amendment"})
        record["properties"].pop("parentContract", None)
        self.store.put("record", record["id"], record)
        workflow["recordIds"] = [record["id"]]
        self.store.put("workflow", workflow["id"], workflow)
        # roll the amended properties up onto the parent, keeping what was first signed
        for key, prop in to_properties(template, body.properties).items():
            before = parent["properties"].get(key)
            if before is not None:
                prop["originalValue"] = before.get("originalValue", before["value"])
            parent["properties"][key] = prop
        parent["amendments"] = [*parent.get("amendments", []), record["ironcladId"]]
        parent["childIds"] = [*parent.get("childIds", []), record["id"]]
        parent["lastUpdated"] = _now_seconds()
        self.store.put("record", parent["id"], parent)
        # Ironclad's workflow_completed carries only event/templateID/workflowID; the sandbox adds the
        # amendment's identity so a receiver can route it without calling back
        self.emit({"event": "workflow_completed", "templateID": template.id, "workflowID": workflow["id"],
                   "recordID": record["id"], "parentRecordID": parent["id"], "amendmentNumber": body.sequence})
        return {"recordId": record["id"], "sequence": body.sequence, "workflowId": workflow["id"]}

    # -- webhooks -----------------------------------------------------------------------------
    def emit(self, payload: dict[str, Any]) -> None:
        body = {"companyID": COMPANY_ID, "payload": payload, "timestamp": _now(), "webhookID": WEBHOOK_ID}
        # compact, non-ASCII kept: exactly what JSON.stringify(body) gives, which is what Ironclad signs
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        event_id = f"webhookEvent{secrets.token_hex(12)}"
        self.app.state.control.webhooks.emit(text.encode(), lambda _url, _body: self.signer.headers(event_id, text))

    # -- auto-sign ----------------------------------------------------------------------------
    def schedule_autosign(self, workflow_id: str) -> None:
        if self.autosign_delay is None:
            return
        task = asyncio.get_running_loop().create_task(self._autosign(workflow_id, self.autosign_delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _autosign(self, workflow_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            self.sign(workflow_id)
        except SandboxError:
            pass  # cancelled meanwhile: nothing to sign


def _pagination(request: Request) -> tuple[int, int] | Response:
    try:
        page = int(request.query_params.get("page", 0))
        size = int(request.query_params.get("pageSize", 20))
    except ValueError:
        return ironclad_error(400, "page and pageSize must be integers", param="page")
    if page < 0:
        return ironclad_error(400, "page must be greater than or equal to 0", param="page")
    if not 1 <= size <= 100:
        return ironclad_error(400, "pageSize must be between 1 and 100", param="pageSize")
    return page, size


def _filter(request: Request) -> list[tuple[str, str]] | Response:
    formula = request.query_params.get("filter")
    if not formula:
        return []
    terms = [(key, re.sub(r"\\(.)", r"\1", value)) for key, value in _EQUALS.findall(formula)]
    if not terms:
        return ironclad_error(400, f"unsupported filter formula {formula}", param="filter")
    return terms


def _page(items: list[dict[str, Any]], page: int, size: int) -> dict[str, Any]:
    return {"page": page, "pageSize": size, "count": len(items), "list": items[page * size:(page + 1) * size]}


async def _json_body(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return ironclad_error(400, "request body is not valid JSON", code="INVALID_PARAM", param="body")
    if not isinstance(body, dict):
        return ironclad_error(400, "request body must be a JSON object", code="INVALID_PARAM", param="body")
    return body


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def create_app(settings: Settings, *, database_url: str = "sqlite://") -> Any:
    """The Ironclad emulator."""
    store = Store(database_url)
    app = create_sandbox_app(style=STYLE, store=store, title="Ironclad sandbox")
    sandbox = IroncladSandbox(app, settings, store)
    app.state.ironclad = sandbox

    # -- OAuth ------------------------------------------------------------------------------------
    @app.post("/oauth/token")
    async def token(request: Request) -> Response:
        raw = await request.body()
        if "application/json" in request.headers.get("content-type", ""):
            try:
                form = json.loads(raw or b"{}")
            except ValueError:
                form = None
            if not isinstance(form, dict):
                return json_error(400, {"error": "invalid_request", "error_description": "malformed JSON body"})
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, binascii.Error):
                return json_error(401, {"error": "invalid_client", "error_description": "invalid client"})
        grant = form.get("grant_type")
        if not grant:
            return json_error(400, {"error": "invalid_request", "error_description": "missing grant_type"})
        if client_id != settings.ironclad_client_id or client_secret != settings.ironclad_client_secret:
            return json_error(401, {"error": "invalid_client", "error_description": "invalid client"})
        if grant != "client_credentials":
            return json_error(403, {"error": "unauthorized_client",
                                    "error_description": "client not authorized to use this oauth grant type"})
        return JSONResponse(sandbox.issue_token(form.get("scope")))

    # -- workflows ------------------------------------------------------------------------------
    @app.post(f"{API}/workflows")
    async def launch(request: Request) -> Response:
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        body = await _json_body(request)
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
        workflow = sandbox.new_workflow(template, attributes, _base_url(request))
        sandbox.emit({"event": "workflow_launched", "templateID": template.id, "workflowID": workflow["id"]})
        sandbox.schedule_autosign(workflow["id"])
        return JSONResponse({**workflow, "schema": template.flat_schema()})

    @app.get(f"{API}/workflows")
    async def list_workflows(request: Request) -> Response:
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        paging, terms = _pagination(request), _filter(request)
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

        return JSONResponse(_page(sandbox.store.list("workflow", where=matches), *paging))

    @app.get(f"{API}/workflows/{{workflow_id}}")
    async def get_workflow(workflow_id: str, request: Request) -> Response:
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        workflow = sandbox.find_workflow(workflow_id)
        if workflow is None:
            return ironclad_error(404, "workflow does not exist", param="workflowId")
        return JSONResponse(workflow)

    @app.post(f"{API}/workflows/{{workflow_id}}/cancel")
    async def cancel(workflow_id: str, request: Request) -> Response:
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        body = await _json_body(request)
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

    # -- records ----------------------------------------------------------------------------------
    @app.get(f"{API}/records")
    async def list_records(request: Request) -> Response:
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        paging, terms = _pagination(request), _filter(request)
        if isinstance(paging, Response):
            return paging
        if isinstance(terms, Response):
            return terms
        types = {t for t in (request.query_params.get("types") or "").split(",") if t}

        def matches(r: dict[str, Any]) -> bool:
            return ((not types or r["type"] in types)
                    and all(str(r["properties"].get(k, {}).get("value")) == v for k, v in terms))

        return JSONResponse(_page(sandbox.store.list("record", where=matches), *paging))

    @app.get(f"{API}/records/{{record_id}}")
    async def get_record(record_id: str, request: Request) -> Response:
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        record = sandbox.find_record(record_id)
        if record is None:
            return ironclad_error(404, f"couldn't find a record matching the id {record_id}", param="id")
        return JSONResponse(record)

    # -- webhooks ---------------------------------------------------------------------------------
    @app.get(f"{API}/webhooks/verification-key")
    async def verification_key(request: Request) -> Response:
        if (denied := sandbox.authorize(request)) is not None:
            return denied
        return PlainTextResponse(sandbox.signer.public_pem())

    # -- /_sandbox: the human acts ------------------------------------------------------------
    def sandbox_error(exc: SandboxError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"error": exc.message})

    @app.post("/_sandbox/workflows/{workflow_id}/approve")
    async def approve(workflow_id: str, request: Request) -> Response:
        try:
            workflow = sandbox.approve(workflow_id, _base_url(request))
        except SandboxError as exc:
            return sandbox_error(exc)
        return JSONResponse({"workflowId": workflow["id"], "step": workflow["step"], "status": workflow["status"]})

    @app.post("/_sandbox/workflows/{workflow_id}/sign")
    async def sign(workflow_id: str, body: SignRequest | None = None) -> Response:
        try:
            workflow, record_id = sandbox.sign(workflow_id, body.executed_date if body else None)
        except SandboxError as exc:
            return sandbox_error(exc)
        return JSONResponse({"workflowId": workflow["id"], "recordId": record_id, "status": workflow["status"]})

    @app.post("/_sandbox/workflows/{workflow_id}/decline")
    async def decline(workflow_id: str, body: DeclineRequest | None = None) -> Response:
        """The counterparty declines to sign: the workflow is cancelled (``workflow_cancelled`` is emitted)."""
        try:
            workflow = sandbox._active(workflow_id)
        except SandboxError as exc:
            return sandbox_error(exc)
        if workflow["status"] == "completed":
            return sandbox_error(SandboxError(409, f"workflow {workflow_id} is already signed"))
        sandbox.cancel(workflow, body.reason if body else "declined by the counterparty")
        return JSONResponse({"workflowId": workflow["id"], "status": workflow["status"]})

    @app.post("/_sandbox/autosign")
    async def autosign(body: AutosignRequest) -> dict[str, Any]:
        sandbox.autosign_delay = body.delay_seconds
        return {"delay_seconds": sandbox.autosign_delay}

    @app.post("/_sandbox/records/{record_id}/amendments")
    async def amendment(record_id: str, body: AmendmentRequest) -> Response:
        try:
            return JSONResponse(sandbox.execute_amendment(record_id, body))
        except SandboxError as exc:
            return sandbox_error(exc)

    @app.post("/_sandbox/tokens/expire")
    async def expire_tokens() -> dict[str, int]:
        """Every issued token expires now (clients must fetch a new one)."""
        tokens = sandbox.store.list("oauth_token")
        for token in tokens:
            sandbox.store.put("oauth_token", token["token"], {**token, "expires_at": 0})
        return {"expired": len(tokens)}

    @app.post("/_sandbox/verification-key/rotate")
    async def rotate_key() -> dict[str, str]:
        sandbox.signer.rotate()
        return {"status": "rotated"}

    return app

