"""DocuSign eSignature emulator state: tokens of the JWT grant, the seeded template, envelopes with their tabs
and custom fields, and Connect deliveries signed with the HMAC keys (:class:`DocuSignSandbox`), with
DocuSign's error body ``{"errorCode", "message"}`` and its ``X-RateLimit-*`` headers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.kit import Store, VendorStyle, json_error

API_VERSION = "v2.1"
TOKEN_TTL_SECONDS = 3600
#: DocuSign's default API limit: calls per account per hour
HOURLY_LIMIT = 3000
CONNECT_CONFIGURATION_ID = 10501
TEMPLATE_NAME = "Revops Order Form"
#: the text tabs the seeded template carries for the signer role (the contract terms and the counterparty)
TEMPLATE_TABS = ("counterpartyName", "effectiveDate", "expirationDate", "contractValue", "billingModel",
                 "paymentTermsDays", "fixedFee", "budgetHours", "milestones", "rateCard", "recurringCharges",
                 "billingTriggers")


def docusign_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """DocuSign's error body: ``{"errorCode": "...", "message": "..."}``."""
    return json_error(status, {"errorCode": code, "message": message}, headers)


_CODES = {400: "INVALID_REQUEST_PARAMETER", 401: "AUTHORIZATION_INVALID_TOKEN", 403: "USER_LACKS_PERMISSIONS",
          404: "RESOURCE_NOT_FOUND", 409: "ENVELOPE_LOCKED"}


def _style_error(status: int, message: str) -> Response:
    return docusign_error(status, _CODES.get(status, "UNSPECIFIED_ERROR"), message)


def rate_limit_headers(limit: int, remaining: int, reset_epoch: float) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(int(math.ceil(reset_epoch)))}


def _rate_limited(wait: float) -> Response:
    reset = time.time() + max(1.0, wait)
    return docusign_error(429, "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
                          "The maximum number of hourly API invocations has been exceeded.",
                          headers={**rate_limit_headers(HOURLY_LIMIT, 0, reset),
                                   "Retry-After": str(max(1, math.ceil(wait)))})


STYLE = VendorStyle(vendor="docusign", error=_style_error, rate_limited=_rate_limited)


def now_text(when: datetime | None = None) -> str:
    """DocuSign's timestamp: UTC with seven fractional digits."""
    when = when or datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_time(value: str) -> datetime | None:
    """A DocuSign ``from_date``/``to_date``: ISO 8601 (a date alone is midnight UTC)."""
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class SandboxError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        return docusign_error(self.status, self.code, self.message)


class SignRequest(BaseModel):
    completed_date: str | None = Field(default=None, description="the completion date (YYYY-MM-DD); now if unset")


class DeclineRequest(BaseModel):
    reason: str = Field(default="declined by the signer", min_length=1, max_length=500)


class AutosignRequest(BaseModel):
    delay_seconds: float | None = Field(default=None, ge=0, description="null turns auto-signing off")


class AmendmentRequest(BaseModel):
    sequence: int = Field(ge=1)
    tabs: dict[str, str] = Field(default_factory=dict, description="tab values that change (by label)")


class ConnectKeys(BaseModel):
    keys: list[str] = Field(min_length=1, max_length=100, description="the HMAC keys Connect signs with, in order")


class DocuSignSandbox:
    """State and behaviour behind the routes (the Store holds every object)."""

    def __init__(self, config: Any, store: Store, app: Any) -> None:
        self.config = config
        self.store = store
        self.app = app
        key = serialization.load_pem_private_key(config.private_key.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the JWT grant's key pair must be RSA")
        # the integration key's registered RSA public key: what an assertion's signature is checked against
        self.public_keys: list[rsa.RSAPublicKey] = [key.public_key()]
        self.connect_keys: list[str] = list(config.connect_hmac_keys)
        self.autosign_delay: float | None = None
        self._window_start = time.time()
        self._calls = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.seed_template()

    # -- limits ----------------------------------------------------------------------------------------
    def count_call(self) -> dict[str, str]:
        """Count one API call in the hourly window; the ``X-RateLimit-*`` headers to answer with."""
        now = time.time()
        if now - self._window_start >= 3600:
            self._window_start, self._calls = now, 0
        self._calls += 1
        return rate_limit_headers(HOURLY_LIMIT, HOURLY_LIMIT - self._calls, self._window_start + 3600)

    # -- tokens ------------------------------------------------------------------------------------------
    def issue_token(self, subject: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(48)
        self.store.put("oauth_token", token, {"token": token, "sub": subject,
                                              "expires_at": time.time() + TOKEN_TTL_SECONDS})
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS}

    def token_subject(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        held = self.store.get("oauth_token", token.strip())
        if held is None or held["expires_at"] <= time.time():
            return None
        return str(held["sub"])

    def authorize(self, request: Request, account_id: str) -> JSONResponse | None:
        if self.token_subject(request) is None:
            return docusign_error(401, "AUTHORIZATION_INVALID_TOKEN",
                                  "The access token provided is expired, revoked or malformed.")
        if account_id != self.config.account_id:
            return docusign_error(400, "INVALID_ACCOUNT_ID", f"Invalid account ID: {account_id[:40]}")
        return None

    # -- templates ---------------------------------------------------------------------------------------
    def seed_template(self) -> None:
        template_id = self.config.template_id
        if self.store.get("template", template_id) is not None:
            return
        tabs = [{"tabLabel": label, "tabType": "text", "value": "", "documentId": "1", "pageNumber": "1",
                 "recipientId": "1", "tabId": str(uuid.uuid4())} for label in TEMPLATE_TABS]
        self.store.put("template", template_id, {
            "templateId": template_id, "name": TEMPLATE_NAME, "shared": "false", "created": now_text(),
            "lastModified": now_text(), "emailSubject": "Please sign: order form",
            "documents": [{"documentId": "1", "name": "Order Form.pdf", "order": "1", "pages": "1"}],
            "recipients": {"signers": [{"roleName": self.config.signer_role, "recipientId": "1", "routingOrder": "1",
                                        "recipientType": "signer", "tabs": {"textTabs": tabs}}]},
        })

    def template_role(self, template: dict[str, Any]) -> dict[str, Any]:
        return dict(template["recipients"]["signers"][0])

    # -- envelopes ---------------------------------------------------------------------------------------
    def envelope(self, envelope_id: str) -> dict[str, Any]:
        try:
            uuid.UUID(envelope_id)
        except ValueError as exc:
            raise SandboxError(400, "INVALID_REQUEST_PARAMETER",
                               "The request contained at least one invalid parameter. Invalid value specified for "
                               "envelopeId.") from exc
        found = self.store.get("envelope", envelope_id)
        if found is None:
            raise SandboxError(404, "ENVELOPE_DOES_NOT_EXIST", "The envelope specified either does not exist or "
                               "you have no rights to it.")
        return found

    def create_envelope(self, definition: dict[str, Any]) -> dict[str, Any]:
        """An envelope from a server template with template roles, tab values and custom fields."""
        self.seed_template()  # again after a /_sandbox/reset
        template_id = definition.get("templateId")
        if not template_id:
            raise SandboxError(400, "ENVELOPE_IS_INCOMPLETE", "The Envelope is not Complete. A Complete Envelope "
                               "Requires Documents, Recipients, Tabs, and a Subject Line.")
        template = self.store.get("template", str(template_id))
        if template is None:
            raise SandboxError(400, "TEMPLATE_ID_INVALID", f"Invalid template ID {str(template_id)[:40]}.")
        subject = str(definition.get("emailSubject") or template["emailSubject"])
        if len(subject) > 100:
            raise SandboxError(400, "INVALID_EMAIL_SUBJECT", "The email subject is longer than 100 characters.")
        status = str(definition.get("status") or "created")
        if status not in ("created", "sent"):
            raise SandboxError(400, "INVALID_ENVELOPE_STATUS", f"Invalid envelope status {status[:20]}.")
        role = self.template_role(template)
        roles = definition.get("templateRoles") or []
        if not isinstance(roles, list):
            raise SandboxError(400, "INVALID_REQUEST_BODY", "templateRoles must be an array.")
        signer: dict[str, Any] | None = None
        for given in roles:
            if not isinstance(given, dict) or given.get("roleName") != role["roleName"]:
                raise SandboxError(400, "INVALID_ROLE_NAME",
                                   f"Role name {str((given or {}).get('roleName'))[:40]} is not in the template.")
            signer = given
        if status == "sent" and (signer is None or not signer.get("email") or not signer.get("name")):
            raise SandboxError(400, "INVALID_EMAIL_ADDRESS_FOR_RECIPIENT",
                               "The email address for the recipient is invalid. The recipient Id follows.")
        labels = {t["tabLabel"] for t in role["tabs"]["textTabs"]}
        given_tabs = {str(t.get("tabLabel")): str(t.get("value") or "")
                      for t in ((signer or {}).get("tabs") or {}).get("textTabs") or [] if isinstance(t, dict)}
        values = {label: given_tabs.get(label, "") for label in sorted(labels)}  # tabs not in the template: ignored
        texts = ((definition.get("customFields") or {}).get("textCustomFields") or [])
        fields = [{"fieldId": str(10000 + n), "name": str(f.get("name")), "value": str(f.get("value") or ""),
                   "show": str(f.get("show") or "false"), "required": str(f.get("required") or "false")}
                  for n, f in enumerate(texts) if isinstance(f, dict) and f.get("name")]
        return self.store_envelope(template_id=str(template_id), subject=subject, status=status, tabs=values,
                                   fields=fields, signer={"name": str((signer or {}).get("name") or ""),
                                                          "email": str((signer or {}).get("email") or ""),
                                                          "roleName": role["roleName"]})

    def store_envelope(self, *, template_id: str, subject: str, status: str, tabs: dict[str, str],
                       fields: list[dict[str, Any]], signer: dict[str, str]) -> dict[str, Any]:
        envelope_id = str(uuid.uuid4())
        now = now_text()
        envelope: dict[str, Any] = {
            "envelopeId": envelope_id, "status": status, "emailSubject": subject, "templateId": template_id,
            "envelopeUri": f"/envelopes/{envelope_id}", "createdDateTime": now, "lastModifiedDateTime": now,
            "statusChangedDateTime": now, "sentDateTime": now if status == "sent" else None,
            "customFields": {"textCustomFields": fields, "listCustomFields": []},
            "signer": {**signer, "recipientId": "1", "status": status}, "tabs": tabs,
        }
        self.store.put("envelope", envelope_id, envelope)
        if status == "sent" and self.autosign_delay is not None:
            self._later(self.autosign_delay, envelope_id)
        return envelope

    def _later(self, delay: float, envelope_id: str) -> None:
        async def sign_later() -> None:
            await asyncio.sleep(delay)
            try:
                self.complete(envelope_id)
            except SandboxError:
                pass  # voided or declined meanwhile

        task = asyncio.get_running_loop().create_task(sign_later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_status(self, envelope: dict[str, Any], status: str, when: str | None = None) -> dict[str, Any]:
        now = when or now_text()
        envelope.update({"status": status, "statusChangedDateTime": now, "lastModifiedDateTime": now,
                         f"{status}DateTime": now})
        envelope["signer"]["status"] = status
        self.store.put("envelope", envelope["envelopeId"], envelope)
        return envelope

    def complete(self, envelope_id: str, completed_date: str | None = None) -> dict[str, Any]:
        """Every recipient signed: the envelope is completed and Connect tells the listeners."""
        envelope = self.envelope(envelope_id)
        if envelope["status"] == "completed":
            return envelope
        if envelope["status"] not in ("sent", "delivered"):
            raise SandboxError(409, "ENVELOPE_INVALID_STATUS", f"Envelope is {envelope['status']}: nothing to sign.")
        when = None
        if completed_date:
            day = parse_time(completed_date)
            if day is None:
                raise SandboxError(400, "INVALID_REQUEST_PARAMETER", "completed_date is not a date")
            when = now_text(day)
        envelope = self._set_status(envelope, "completed", when)
        self.connect("envelope-completed", envelope)
        return envelope

    def decline(self, envelope_id: str, reason: str) -> dict[str, Any]:
        envelope = self.envelope(envelope_id)
        if envelope["status"] not in ("sent", "delivered"):
            raise SandboxError(409, "ENVELOPE_INVALID_STATUS", f"Envelope is {envelope['status']}: cannot decline.")
        envelope["declinedReason"] = reason
        envelope = self._set_status(envelope, "declined")
        self.connect("envelope-declined", envelope)
        return envelope

    def void(self, envelope_id: str, reason: str | None) -> dict[str, Any]:
        envelope = self.envelope(envelope_id)
        if envelope["status"] not in ("created", "sent", "delivered"):
            raise SandboxError(400, "ENVELOPE_CANNOT_VOID_INVALID_STATE",
                               "Only envelopes in the 'Sent' or 'Delivered' states may be voided.")
        if not reason:
            raise SandboxError(400, "ENVELOPE_VOID_REASON_REQUIRED", "A reason is required to void an envelope.")
        envelope["voidedReason"] = reason[:200]
        envelope = self._set_status(envelope, "voided")
        self.connect("envelope-voided", envelope)
        return envelope

    def amend(self, original_id: str, body: AmendmentRequest) -> dict[str, Any]:
        """An amendment envelope of a completed contract, signed at once: the latest terms with ``tabs``
        changed, linked to the original by custom fields (idempotent per sequence)."""
        original = self.envelope(original_id)
        if original["status"] != "completed":
            raise SandboxError(409, "ENVELOPE_INVALID_STATUS", "Only a completed envelope can be amended.")
        amendments = sorted(self._amendments(original_id), key=lambda e: int(_field(e, "revopsAmendmentNumber")))
        for done in amendments:
            if int(_field(done, "revopsAmendmentNumber")) == body.sequence:
                return {"envelopeId": done["envelopeId"], "status": done["status"], "sequence": body.sequence}
        latest = amendments[-1] if amendments else original
        fields = [dict(f) for f in original["customFields"]["textCustomFields"]]
        for f in fields:
            if f["name"] == "revopsKey":
                f["value"] = f"{f['value']}:amendment:{body.sequence}"
        fields += [{"fieldId": "20001", "name": "revopsParentEnvelopeId", "value": original_id, "show": "false",
                    "required": "false"},
                   {"fieldId": "20002", "name": "revopsAmendmentNumber", "value": str(body.sequence),
                    "show": "false", "required": "false"}]
        tabs = {**latest["tabs"], **{k: v for k, v in body.tabs.items() if k in latest["tabs"]}}
        envelope = self.store_envelope(template_id=original["templateId"],
                                       subject=f"Amendment {body.sequence}: {original['emailSubject']}"[:100],
                                       status="sent", tabs=tabs, fields=fields, signer=dict(original["signer"]))
        envelope = self.complete(envelope["envelopeId"])
        return {"envelopeId": envelope["envelopeId"], "status": envelope["status"], "sequence": body.sequence}

    def _amendments(self, original_id: str) -> list[dict[str, Any]]:
        return self.store.list("envelope", where=lambda e: _field(e, "revopsParentEnvelopeId") == original_id)

    # -- wire shapes -------------------------------------------------------------------------------------
    def summary(self, envelope: dict[str, Any], *, custom_fields: bool) -> dict[str, Any]:
        """The envelope as ``GET /envelopes/{id}`` answers (custom fields with ``include=custom_fields``)."""
        shown = {k: v for k, v in envelope.items() if k not in _INTERNAL and v is not None}
        shown["customFieldsUri"] = f"/envelopes/{envelope['envelopeId']}/custom_fields"
        shown["recipientsUri"] = f"/envelopes/{envelope['envelopeId']}/recipients"
        if custom_fields:
            shown["customFields"] = envelope["customFields"]
        return shown

    def form_data(self, envelope: dict[str, Any]) -> dict[str, Any]:
        items = [{"name": label, "value": value} for label, value in envelope["tabs"].items()]
        signer = envelope["signer"]
        recipient: dict[str, Any] = {"recipientId": "1", "name": signer["name"], "email": signer["email"],
                                     "formData": items}
        if envelope.get("completedDateTime"):
            recipient["SignedTime"] = envelope["completedDateTime"]
        return {"envelopeId": envelope["envelopeId"], "status": envelope["status"],
                "sentDateTime": envelope.get("sentDateTime") or "", "emailSubject": envelope["emailSubject"],
                "formData": items, "recipientFormData": [recipient]}

    # -- Connect -----------------------------------------------------------------------------------------
    def connect_body(self, event: str, envelope: dict[str, Any]) -> bytes:
        """A Connect JSON (SIM) message with the envelope summary and its custom fields."""
        account = self.config.account_id
        message = {
            "event": event, "apiVersion": API_VERSION,
            "uri": f"/restapi/{API_VERSION}/accounts/{account}/envelopes/{envelope['envelopeId']}",
            "retryCount": 0, "configurationId": CONNECT_CONFIGURATION_ID, "generatedDateTime": now_text(),
            "data": {"accountId": account, "userId": self.config.user_id, "envelopeId": envelope["envelopeId"],
                     "envelopeSummary": self.summary(envelope, custom_fields=True)},
        }
        return json.dumps(message, separators=(",", ":")).encode()

    def sign_headers(self, _url: str, body: bytes) -> dict[str, str]:
        """``X-DocuSign-Signature-<n>``: base64 HMAC-SHA256 of the raw body under key ``n``."""
        return {f"X-DocuSign-Signature-{n}": base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256)
                                                              .digest()).decode()
                for n, key in enumerate(self.connect_keys, start=1)}

    def connect(self, event: str, envelope: dict[str, Any]) -> None:
        self.app.state.control.webhooks.emit(self.connect_body(event, envelope), self.sign_headers)


#: what the emulator keeps of an envelope that DocuSign's envelope object does not show
_INTERNAL = frozenset({"signer", "tabs", "customFields", "templateId", "declinedReason"})


def _field(envelope: dict[str, Any], name: str) -> str:
    for f in (envelope.get("customFields") or {}).get("textCustomFields") or []:
        if f.get("name") == name:
            return str(f.get("value") or "")
    return ""


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


__all__ = ["STYLE", "DocuSignSandbox", "SandboxError", "base_url", "docusign_error", "now_text", "parse_time"]
