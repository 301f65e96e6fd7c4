"""Every request the DocuSign adapter makes, checked against DocuSign's own eSignature v2.1 swagger
(``../shared/vendor-specs/docusign``, read in place).

How: the adapter runs a full scenario against the emulator over real HTTP through a recording transport (an
injected ``httpx`` transport, no patching); each recorded API request is then matched to the swagger operation
of its method and path and checked: the path parameters are there, every query parameter is one the operation
declares, and the JSON body validates against the operation's body schema (JSON Schema draft 4, the spec's
``definitions``), strictly: an object property the definition does not declare is refused, so a misspelt field
fails here. The responses the emulator gave are validated against the operation's response schema too.

Why not Prism: the swagger does not load until its dangling ``$ref``s are stubbed, and even a pruned copy takes
~140 s to start on this machine (SOURCES.md), too slow for ``make test``. The same stub is applied here, at test
time, to an in-memory copy: every ``#/definitions/<name>`` the file names but does not define becomes an empty
object schema (``offlineAttributes``, ``newAccountRequest``).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import jsonschema
import pytest

from connectors.acts import acts_for
from connectors.docusign import from_settings
from connectors.registry import default_registry
from settings import Settings
from tests.connectors.test_docusign_adapter import contract_request
from tests.helpers.prism import spec_path
from tests.helpers.servers import SandboxHandle

SPEC = "docusign/esignature.rest.swagger-v2.1.json"
BASE_PATH = "/restapi"


@cache
def spec() -> dict[str, Any]:
    text = spec_path(SPEC).read_text(encoding="utf-8")
    loaded = json.loads(text)
    for name in set(re.findall(r"#/definitions/(\w+)", text)) - set(loaded["definitions"]):
        loaded["definitions"][name] = {"type": "object"}  # the dangling $ref, stubbed at test time
    return loaded  # type: ignore[no-any-return]


def strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object that lists its properties."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@cache
def strict_definitions() -> dict[str, Any]:
    return strict(copy.deepcopy(spec()["definitions"]))  # type: ignore[no-any-return]


def validate(schema: dict[str, Any], instance: Any, *, strict_objects: bool) -> None:
    definitions = strict_definitions() if strict_objects else spec()["definitions"]
    jsonschema.Draft4Validator({**schema, "definitions": definitions}).validate(instance)


@dataclass
class Call:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any
    status: int
    answer: Any


class Recording(httpx.AsyncBaseTransport):
    """Forwards to the real network transport and keeps each request and its answer."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.calls: list[Call] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        body = request.content
        kind = request.headers.get("content-type", "")
        self.calls.append(Call(
            method=request.method, path=request.url.path, query=parse_qsl(urlsplit(str(request.url)).query),
            body=json.loads(body) if body and "json" in kind else body.decode() if body else None,
            status=response.status_code, answer=json.loads(content) if content.startswith(b"{") else None))
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    async def aclose(self) -> None:
        await self.inner.aclose()


def operation(method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The swagger operation of ``method path`` (path under /restapi), its definition and path parameters."""
    for template, ops in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
        match = re.match(pattern, path)
        if match and method.lower() in ops:
            return template, ops[method.lower()], match.groupdict()
    raise AssertionError(f"{method} {path} is no operation of DocuSign's swagger")


def check(call: Call) -> str:
    """Check one API request (and the emulator's answer) against the swagger; its operationId."""
    assert call.path.startswith(BASE_PATH + "/"), call.path
    _template, op, path_params = operation(call.method, call.path[len(BASE_PATH):])
    params = op.get("parameters") or []
    declared_query = {p["name"] for p in params if p["in"] == "query"}
    for name in (p["name"] for p in params if p["in"] == "path"):
        assert path_params.get(name), f"{op['operationId']}: path parameter {name} missing"
    unknown = {name for name, _ in call.query} - declared_query
    assert not unknown, f"{op['operationId']}: query parameters {unknown} are not declared"
    body_param = next((p for p in params if p["in"] == "body"), None)
    if call.body is not None:
        assert body_param is not None, f"{op['operationId']} takes no body"
        validate(body_param["schema"], call.body, strict_objects=True)
    schema = (op["responses"].get(str(call.status)) or {}).get("schema")
    if call.status < 300 and schema is not None:
        # strictly too: the emulator shows no field DocuSign's objects lack, but for the paging links DocuSign
        # returns and its SDK reads (EnvelopesInformation.next_uri/previous_uri) that this swagger omits
        answer = {k: v for k, v in call.answer.items() if k not in ("nextUri", "previousUri")}
        validate(schema, answer, strict_objects=True)
    if call.status >= 400:
        validate({"$ref": "#/definitions/errorDetails"}, call.answer, strict_objects=True)
    return str(op["operationId"])


async def test_docusign_every_adapter_request_matches_the_swagger(settings: Settings,
                                                                  docusign_sandbox: SandboxHandle) -> None:
    recording = Recording()
    adapter = from_settings(settings, transport=recording)
    spec_ = next(s for s in default_registry(settings).all() if s.name == "docusign")
    since = datetime.now(UTC) - timedelta(seconds=1)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            acts = acts_for(spec_, settings, http)
            request = contract_request()
            key = uuid.uuid4().hex
            launched = await adapter.launch_contract(request, idempotency_key=key)
            await adapter.launch_contract(request, idempotency_key=key)
            envelope_id = launched.clm_workflow_id or ""
            await adapter.get_contract(envelope_id)
            await acts.sign(envelope_id)
            await acts.amend(envelope_id, sequence=1, attributes={"paymentTermsDays": "60"})
            await adapter.get_record(envelope_id)
            await adapter.get_signed_terms(envelope_id)
            await adapter.list_executed_records(deal_ids=[request.deal_crm_id])
            await adapter.records_changed_since(since)
            other = await adapter.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
            await adapter.cancel_contract(other.clm_workflow_id or "", reason="deal lost")
            await adapter.cancel_contract(other.clm_workflow_id or "", reason="deal lost")  # the 400, then a read
            await adapter.templates()
    finally:
        await adapter.aclose()

    api_calls = [c for c in recording.calls if not c.path.startswith("/oauth/")]
    covered = {check(call) for call in api_calls}

    assert covered == {"Envelopes_GetEnvelopes", "Envelopes_PostEnvelopes", "Envelopes_GetEnvelope",
                       "Envelopes_PutEnvelope", "FormData_GetFormData", "Templates_GetTemplates"}
    assert any(c.status == 400 for c in api_calls)  # the second void: DocuSign's error body was checked too
    token = next(c for c in recording.calls if c.path == "/oauth/token")
    assert dict(parse_qsl(token.body))["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_docusign_contract_check_refuses_what_the_swagger_does_not_declare() -> None:
    """The checker can fail: a misspelt body field, an undeclared query parameter, an unknown path."""
    envelopes = "/restapi/v2.1/accounts/a/envelopes"
    with pytest.raises(jsonschema.ValidationError):
        check(Call("POST", envelopes, [], {"templateId": "t", "templateRole": []}, 201, {"envelopeId": "e"}))
    with pytest.raises(jsonschema.ValidationError):
        check(Call("POST", envelopes, [], {"templateRoles": [{"roleName": "r", "tabs": {"textTab": []}}]}, 201,
                   {"envelopeId": "e"}))
    with pytest.raises(jsonschema.ValidationError):  # an answer with a field DocuSign's envelope lacks
        check(Call("GET", f"{envelopes}/e", [], None, 200, {"envelopeId": "e", "templateId": "t"}))
    with pytest.raises(AssertionError):
        check(Call("GET", envelopes, [("since", "2020-01-01")], None, 200, {}))
    with pytest.raises(AssertionError):
        check(Call("GET", "/restapi/v2.1/accounts/a/contracts", [], None, 200, {}))
