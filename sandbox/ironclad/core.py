"""Ironclad emulator state: the token store, workflows, records and amendments, and RSA-signed
webhooks (:class:`IroncladSandbox`), with Ironclad's error shape and the request helpers the routes share."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import secrets
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.ironclad.templates import (
    AMENDMENT_TEMPLATE_ID,
    Template,
    check_attribute,
    default_templates,
    to_properties,
)
from sandbox.kit import Store, VendorStyle, json_error

API = "/public/api/v1"
COMPANY_ID = "5f0375c4cdc1927a3c5e0c01"
WEBHOOK_ID = "5f0375c4cdc1927a3c5e0w01"
TOKEN_TTL_SECONDS = 3600
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

    def __init__(self, app: FastAPI, config: Any, store: Store) -> None:
        self.app = app
        self.store = store
        self.config = config  # the adapter's settings: credentials, template, user
        self.templates: dict[str, Template] = default_templates(config.template_id)
        self.signer = Signer()
        self.token_ttl = TOKEN_TTL_SECONDS
        self.autosign_delay: float | None = None
        self.user: dict[str, Any] = {"id": "5f0375c4cdc1927a3c5e0u01", "email": config.user_email,
                     "displayName": "RevOps Integration", "title": "Integration User",
                     "username": config.user_email, "metadata": {}}
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


def pagination(request: Request) -> tuple[int, int] | Response:
    """``page`` and ``pageSize`` as Ironclad checks them, or its 400."""
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


def filter_terms(request: Request) -> list[tuple[str, str]] | Response:
    """The ``Equals([key], 'value')`` terms of a ``filter`` formula, or a 400 for any other formula."""
    formula = request.query_params.get("filter")
    if not formula:
        return []
    terms = [(key, re.sub(r"\\(.)", r"\1", value)) for key, value in _EQUALS.findall(formula)]
    if not terms:
        return ironclad_error(400, f"unsupported filter formula {formula}", param="filter")
    return terms


def page_of(items: list[dict[str, Any]], page: int, size: int) -> dict[str, Any]:
    """One page of a list answer."""
    return {"page": page, "pageSize": size, "count": len(items), "list": items[page * size:(page + 1) * size]}


async def json_body(request: Request) -> dict[str, Any] | Response:
    """The JSON object body (empty means ``{}``), or Ironclad's 400."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return ironclad_error(400, "request body is not valid JSON", code="INVALID_PARAM", param="body")
    if not isinstance(body, dict):
        return ironclad_error(400, "request body must be a JSON object", code="INVALID_PARAM", param="body")
    return body


def base_url(request: Request) -> str:
    """The emulator's own base URL (for the links in workflow answers)."""
    return str(request.base_url).rstrip("/")
