"""Stripe contract checks without Prism (which cannot load Stripe's 4 MB spec3.yaml).

``stripe_spec()`` loads ``shared/vendor-specs/stripe/spec3.yaml`` once per session. For a request it
finds the operation by (method, path template), un-flattens the bracket-encoded form body or query
(``a[b][0]=c``) into JSON, coerces the strings per the schema (Stripe's spec types fields as integer,
boolean, array...: a value is coerced only when it is a well-formed literal of that type, so
``unit_amount=12.5`` stays a string and fails ``integer``), then validates with ``jsonschema`` against
the operation's ``application/x-www-form-urlencoded`` schema (``additionalProperties: false`` makes an
unknown parameter a failure) and its query parameters. A response is validated against the
operation's ``200`` schema, or ``default`` (the error schema) for other statuses. OpenAPI 3.0
``nullable: true`` is rewritten to JSON-Schema ``anyOf [..., null]``.

``SpecCheckingTransport`` sits between an adapter and the emulator (``transport=`` of
``from_settings``): it refuses a request that breaks the spec with a 422 (as Prism would) and records
every violation, request or response, in ``violations``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import yaml  # type: ignore[import-untyped]
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.helpers.prism import spec_path

SPEC = "stripe/spec3.yaml"
BASE = "urn:stripe-spec"
FORM = "application/x-www-form-urlencoded"


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable`` becomes a null branch; refs point into ``BASE``."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k != "nullable" and not k.startswith("x-")}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
        out["$ref"] = BASE + out["$ref"]
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]


def _unflatten(pairs: list[tuple[str, str]]) -> tuple[dict[str, Any], list[str]]:
    """``a[b][0]=c`` pairs into nested dicts (list indexes stay dict keys until the schema says array)."""
    root: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if not match:
            problems.append(f"malformed parameter name {key!r}")
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts):
            if part == "":
                part = str(len(node))
            if i == len(parts) - 1:
                if part in node:
                    problems.append(f"parameter {key!r} given twice")
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    problems.append(f"parameter {key!r} is both a value and a hash")
                    break
                node = child
    return root, problems


class StripeSpec:
    """Stripe's OpenAPI spec as request/response validators."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.components = _convert(raw["components"])
        self.registry: Registry = Registry().with_resource(
            BASE, Resource.from_contents({"components": self.components}, default_specification=DRAFT202012))
        self.operations: list[Operation] = []
        # literal paths before templated ones, so /v1/customers/search wins over /v1/customers/{customer}
        for template in sorted(raw["paths"], key=lambda p: (p.count("{"), -len(p))):
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")
            for method, op in raw["paths"][template].items():
                if method in ("get", "post", "delete", "put", "patch"):
                    self.operations.append(Operation(method.upper(), template, pattern, op))

    # -- lookup ------------------------------------------------------------------------------------
    def operation(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method.upper() and op.pattern.match(path):
                return op
        return None

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        for _ in range(20):  # refs to refs are short chains
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                return schema
            node: Any = {"components": self.components}
            for part in ref.removeprefix(BASE + "#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        return Draft202012Validator(schema, registry=self.registry)

    def errors(self, instance: Any, schema: dict[str, Any]) -> list[str]:
        found = sorted(self.validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in found]

    # -- coercion ----------------------------------------------------------------------------------
    def coerce(self, value: Any, schema: dict[str, Any]) -> Any:
        """Form strings into the JSON types the schema names, where they are literals of that type."""
        schema = self.resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            for option in options:
                candidate = self.coerce(value, option)
                if not self.validator(option).is_valid(candidate):
                    continue
                return candidate
            return value
        kind = schema.get("type")
        if isinstance(value, str):
            if kind == "integer" and re.fullmatch(r"-?\d+", value):
                return int(value)
            if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", value):
                return float(value)
            if kind == "boolean" and value in ("true", "false"):
                return value == "true"
            return value
        if isinstance(value, dict):
            if kind == "array" and value and all(k.isdigit() for k in value):
                ordered = [value[k] for k in sorted(value, key=int)]
                return [self.coerce(item, schema.get("items") or {}) for item in ordered]
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            return {k: self.coerce(v, props.get(k) or (extra if isinstance(extra, dict) else {}))
                    for k, v in value.items()}
        return value

    # -- checks ------------------------------------------------------------------------------------
    def check_request(self, method: str, path: str, query: str, content_type: str | None,
                      body: bytes) -> list[str]:
        op = self.operation(method, path)
        if op is None:
            return [f"no operation {method} {path} in the spec"]
        problems: list[str] = []
        params = {p["name"]: p for p in op.spec.get("parameters") or [] if p.get("in") == "query"}
        decoded, bad = _unflatten(parse_qsl(query, keep_blank_values=True))
        problems += bad
        for name, value in decoded.items():
            if name not in params:
                problems.append(f"query: unknown parameter {name!r}")
                continue
            schema = params[name].get("schema") or {}
            problems += [f"query {name}: {e}" for e in self.errors(self.coerce(value, _convert(schema)),
                                                                  _convert(schema))]
        for name, param in params.items():
            if param.get("required") and name not in decoded:
                problems.append(f"query: missing required parameter {name!r}")
        content = (op.spec.get("requestBody") or {}).get("content") or {}
        if body:
            if FORM not in content:
                return problems + [f"body sent but {op.method} {op.template} takes none"]
            if (content_type or "").split(";")[0].strip() != FORM:
                problems.append(f"content type {content_type!r}, expected {FORM}")
            form, bad = _unflatten(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False))
            problems += bad
            schema = _convert(content[FORM]["schema"])
            problems += [f"body {e}" for e in self.errors(self.coerce(form, schema), schema)]
        elif FORM in content:
            required = content[FORM]["schema"].get("required") or []
            if required:
                problems.append(f"body: missing required parameters {required}")
        return problems

    def check_response(self, method: str, path: str, status: int, body: bytes) -> list[str]:
        op = self.operation(method, path)
        if op is None:
            return [f"no operation {method} {path} in the spec"]
        responses = op.spec.get("responses") or {}
        entry = responses.get(str(status)) or (responses.get("default") if status >= 400 else None)
        if entry is None:
            return [f"status {status} is not a documented response of {op.method} {op.template}"]
        schema = ((entry.get("content") or {}).get("application/json") or {}).get("schema")
        if schema is None:
            return []
        try:
            instance = json.loads(body)
        except ValueError:
            return [f"response {status} is not JSON"]
        return [f"response {status} {e}" for e in self.errors(instance, _convert(schema))]

    def check_object(self, obj: dict[str, Any], schema_name: str) -> list[str]:
        """Validate one object (e.g. a webhook's ``data.object``) against ``components/schemas/<name>``."""
        return self.errors(obj, {"$ref": f"{BASE}#/components/schemas/{schema_name}"})


@functools.cache
def stripe_spec() -> StripeSpec:
    """The spec, loaded once per test session (CSafeLoader: about 1.5 s)."""
    with spec_path(SPEC).open("rb") as handle:
        raw = yaml.load(handle, Loader=yaml.CSafeLoader)
    return StripeSpec(raw)


@dataclass
class Checked:
    method: str
    path: str
    status: int
    problems: list[str] = field(default_factory=list)


class SpecCheckingTransport(httpx.AsyncBaseTransport):
    """Validates each request and response against the spec around a real HTTP transport."""

    def __init__(self, spec: StripeSpec, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.spec = spec
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.violations: list[str] = []
        self.checked: list[Checked] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        method, path = request.method, request.url.path
        problems = self.spec.check_request(method, path, request.url.query.decode(),
                                           request.headers.get("Content-Type"), body)
        if problems:
            self.violations += [f"request {method} {path}: {p}" for p in problems]
            self.checked.append(Checked(method, path, 422, problems))
            return httpx.Response(422, request=request, json={"error": {
                "type": "invalid_request_error", "message": "spec violation: " + "; ".join(problems)[:2000]}})
        response = await self.inner.handle_async_request(request)
        try:
            raw = await response.aread()
        finally:
            await response.aclose()
        problems = self.spec.check_response(method, path, response.status_code, raw)
        self.violations += [f"response {method} {path}: {p}" for p in problems]
        self.checked.append(Checked(method, path, response.status_code, problems))
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(response.status_code, headers=headers, content=raw, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()
