"""DocuSign's routes: the account server's JWT grant and userinfo, and the eSignature REST v2.1 paths the
integration uses (templates, envelopes, listStatusChanges, void, form data, custom fields)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.docusign.core import (
    API_VERSION,
    DocuSignSandbox,
    SandboxError,
    base_url,
    docusign_error,
    parse_time,
)
from sandbox.kit import json_error

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API = f"/restapi/{API_VERSION}/accounts/{{account_id}}"
MAX_COUNT = 1000  # listStatusChanges answers at most this many per page


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return json_error(status, {"error": error, "error_description": description})


class OAuth:
    """``POST /oauth/token`` (JWT grant) and ``GET /oauth/userinfo``."""

    def __init__(self, sandbox: DocuSignSandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.post("/oauth/token")(self.token)
        app.get("/oauth/userinfo")(self.userinfo)

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        if form.get("grant_type") != JWT_GRANT:
            return _oauth_error(400, "unsupported_grant_type", "The grant type is not supported.")
        assertion = form.get("assertion")
        if not assertion:
            return _oauth_error(400, "invalid_request", "The assertion is missing.")
        # DocuSign's aud is its account server's host name; ours is the host the request was sent to
        audience = request.headers.get("host", "")
        claims: dict[str, Any] | None = None
        for key in self.sandbox.public_keys:
            try:
                claims = jwt.decode(assertion, key, algorithms=["RS256"], audience=audience,
                                    options={"require": ["iss", "sub", "aud", "exp", "iat"]})
                break
            except jwt.ExpiredSignatureError:
                return _oauth_error(400, "invalid_grant", "expired")
            except jwt.InvalidAudienceError:
                return _oauth_error(400, "invalid_grant", "invalid audience")
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                return _oauth_error(400, "invalid_grant", f"invalid assertion: {exc.__class__.__name__}")
        if claims is None:
            return _oauth_error(400, "invalid_grant", "no_valid_keys_or_signatures")
        config = self.sandbox.config
        if claims.get("iss") != config.integration_key:
            return _oauth_error(400, "invalid_grant", "issuer_not_found")
        if claims.get("sub") != config.user_id:
            return _oauth_error(400, "invalid_grant", "user_not_found")
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return _oauth_error(400, "invalid_grant", "the assertion lives longer than an hour")
        return JSONResponse(self.sandbox.issue_token(str(claims["sub"])))

    async def userinfo(self, request: Request) -> Response:
        subject = self.sandbox.token_subject(request)
        if subject is None:
            return _oauth_error(401, "invalid_token", "The access token is invalid or expired.")
        config = self.sandbox.config
        return JSONResponse({
            "sub": subject, "name": "Revops Integration", "given_name": "Revops", "family_name": "Integration",
            "email": "revops-bot@example.com", "created": "2026-01-01T00:00:00.000Z",
            "accounts": [{"account_id": config.account_id, "is_default": True, "account_name": "Revops Sandbox",
                          "base_uri": base_url(request)}],
        })


class Envelopes:
    """Templates and envelopes under ``/restapi/v2.1/accounts/{accountId}``."""

    def __init__(self, sandbox: DocuSignSandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.get(f"{API}/templates")(self.templates)
        app.get(f"{API}/envelopes")(self.list_status_changes)
        app.post(f"{API}/envelopes")(self.create)
        app.get(f"{API}/envelopes/{{envelope_id}}")(self.get)
        app.put(f"{API}/envelopes/{{envelope_id}}")(self.update)
        app.get(f"{API}/envelopes/{{envelope_id}}/form_data")(self.form_data)
        app.get(f"{API}/envelopes/{{envelope_id}}/custom_fields")(self.custom_fields)

    async def templates(self, account_id: str, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request, account_id)) is not None:
            return denied
        self.sandbox.seed_template()  # again after a /_sandbox/reset
        found = self.sandbox.store.list("template")
        return JSONResponse({"envelopeTemplates": found, "resultSetSize": str(len(found)), "startPosition": "0",
                             "endPosition": str(max(0, len(found) - 1)), "totalSetSize": str(len(found))})

    async def create(self, account_id: str, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request, account_id)) is not None:
            return denied
        try:
            definition = json.loads(await request.body() or b"{}")
        except ValueError:
            return docusign_error(400, "INVALID_REQUEST_BODY", "The request body is missing or improperly formatted.")
        if not isinstance(definition, dict):
            return docusign_error(400, "INVALID_REQUEST_BODY", "The request body is missing or improperly formatted.")
        try:
            envelope = self.sandbox.create_envelope(definition)
        except SandboxError as exc:
            return exc.response()
        return JSONResponse(status_code=201, content={
            "envelopeId": envelope["envelopeId"], "uri": envelope["envelopeUri"],
            "statusDateTime": envelope["statusChangedDateTime"], "status": envelope["status"]})

    async def get(self, account_id: str, envelope_id: str, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request, account_id)) is not None:
            return denied
        try:
            envelope = self.sandbox.envelope(envelope_id)
        except SandboxError as exc:
            return exc.response()
        include = request.query_params.get("include", "")
        return JSONResponse(self.sandbox.summary(envelope, custom_fields="custom_fields" in include.split(",")))

    async def update(self, account_id: str, envelope_id: str, request: Request) -> Response:
        """``PUT /envelopes/{id}``: only voiding is offered (``{"status": "voided", "voidedReason": ...}``)."""
        if (denied := self.sandbox.authorize(request, account_id)) is not None:
            return denied
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "voided":
            return docusign_error(400, "INVALID_REQUEST_BODY", "Only voiding an envelope is supported here.")
        try:
            envelope = self.sandbox.void(envelope_id, body.get("voidedReason"))
        except SandboxError as exc:
            return exc.response()
        return JSONResponse({"envelopeId": envelope["envelopeId"]})

    async def form_data(self, account_id: str, envelope_id: str, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request, account_id)) is not None:
            return denied
        try:
            return JSONResponse(self.sandbox.form_data(self.sandbox.envelope(envelope_id)))
        except SandboxError as exc:
            return exc.response()

    async def custom_fields(self, account_id: str, envelope_id: str, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request, account_id)) is not None:
            return denied
        try:
            return JSONResponse(self.sandbox.envelope(envelope_id)["customFields"])
        except SandboxError as exc:
            return exc.response()

    async def list_status_changes(self, account_id: str, request: Request) -> Response:
        """``GET /envelopes`` (listStatusChanges): ``from_date`` (or ``envelope_ids``) required; ``to_date``,
        ``status``, ``from_to_status``, ``custom_field=name=value``, ``order``; paged by ``count`` and
        ``start_position`` with ``nextUri``."""
        if (denied := self.sandbox.authorize(request, account_id)) is not None:
            return denied
        q = request.query_params
        ids = [i for i in (q.get("envelope_ids") or "").split(",") if i]
        if not q.get("from_date") and not ids and not q.get("transaction_ids"):
            return docusign_error(400, "INVALID_REQUEST_PARAMETER", "The request contained at least one invalid "
                                  "parameter. from_date or envelope_ids or transaction_ids must be specified.")
        since = parse_time(q["from_date"]) if q.get("from_date") else None
        until = parse_time(q["to_date"]) if q.get("to_date") else None
        if (q.get("from_date") and since is None) or (q.get("to_date") and until is None):
            return docusign_error(400, "INVALID_REQUEST_PARAMETER", "Invalid value specified for from_date/to_date.")
        try:
            count = int(q.get("count") or MAX_COUNT)
            start = int(q.get("start_position") or 0)
        except ValueError:
            return docusign_error(400, "INVALID_REQUEST_PARAMETER", "count and start_position must be integers.")
        if count < 1 or start < 0:
            return docusign_error(400, "INVALID_REQUEST_PARAMETER", "count must be 1 or more, start_position 0 or "
                                  "more.")
        count = min(count, MAX_COUNT)
        statuses = {s.strip().lower() for s in (q.get("status") or "").split(",") if s.strip() and s != "any"}
        which = (q.get("from_to_status") or "changed").lower()
        field_name, _, field_value = (q.get("custom_field") or "").partition("=")

        def stamp(envelope: dict[str, Any]) -> str:
            if which in ("changed", "any"):
                return str(envelope.get("statusChangedDateTime") or "")
            return str(envelope.get(f"{which}DateTime") or "")

        def wanted(envelope: dict[str, Any]) -> bool:
            if ids and envelope["envelopeId"] not in ids:
                return False
            if statuses and envelope["status"] not in statuses:
                return False
            when = parse_time(stamp(envelope)) if stamp(envelope) else None
            if since is not None and (when is None or when < since):
                return False
            if until is not None and (when is None or when > until):
                return False
            if field_name:
                texts = envelope["customFields"]["textCustomFields"]
                if not any(f["name"] == field_name and f["value"] == field_value for f in texts):
                    return False
            return True

        matches = sorted(self.sandbox.store.list("envelope", where=wanted), key=stamp,
                         reverse=(q.get("order") or "asc").lower() == "desc")
        page = matches[start:start + count]
        include = "custom_fields" in (q.get("include") or "").split(",")
        body: dict[str, Any] = {
            "resultSetSize": str(len(page)), "totalSetSize": str(len(matches)), "startPosition": str(start),
            "endPosition": str(start + len(page) - 1) if page else str(start),
            "envelopes": [self.sandbox.summary(e, custom_fields=include) for e in page],
        }
        path = f"/restapi/{API_VERSION}/accounts/{account_id}/envelopes"
        if start + len(page) < len(matches):
            body["nextUri"] = f"{path}?{urlencode({**dict(q), 'start_position': start + len(page)})}"
        if start > 0:
            body["previousUri"] = f"{path}?{urlencode({**dict(q), 'start_position': max(0, start - count)})}"
        return JSONResponse(body)


def rate_limit_headers_middleware(sandbox: DocuSignSandbox) -> Any:
    """Every API answer carries DocuSign's ``X-RateLimit-Limit``/``-Remaining``/``-Reset``."""

    async def middleware(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if request.url.path.startswith("/restapi/") and "X-RateLimit-Limit" not in response.headers:
            for name, value in sandbox.count_call().items():
                response.headers[name] = value
        return response

    return middleware


__all__ = ["Envelopes", "OAuth", "rate_limit_headers_middleware"]
