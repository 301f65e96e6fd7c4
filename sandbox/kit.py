"""What every vendor emulator shares: a SQLite document store (sqlmodel), idempotency-key replay,
fault injection answered in the vendor's own style, webhook delivery, and the ``/_sandbox`` control API.

A vendor app is built with :func:`create_sandbox_app` and adds its own routes to the result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Index, UniqueConstraint, bindparam, event, func
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import StaticPool
from sqlmodel import Field as SQLField
from sqlmodel import Session, SQLModel, col, create_engine, delete, select

log = logging.getLogger("sandbox")


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------
class SandboxRecord(SQLModel, table=True):
    """One vendor object, stored as its JSON wire representation."""

    __tablename__ = "sandbox_records"
    __table_args__ = (UniqueConstraint("kind", "tenant", "object_id"),
                      Index("ix_kind_tenant_seq", "kind", "tenant", "seq"))

    seq: int | None = SQLField(default=None, primary_key=True)
    kind: str
    tenant: str = ""
    object_id: str
    data: str


class IdempotencyEntry(SQLModel, table=True):
    """The first response given for an idempotency key, replayed for later requests with the key."""

    __tablename__ = "sandbox_idempotency"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    pk: int | None = SQLField(default=None, primary_key=True)
    scope: str
    key: str
    fingerprint: str
    status: int
    body: str
    content_type: str = "application/json"


class Counter(SQLModel, table=True):
    __tablename__ = "sandbox_counters"

    name: str = SQLField(primary_key=True)
    value: int = 0


_RECORDS = SandboxRecord.__table__  # type: ignore[attr-defined]
_IDEMPOTENCY = IdempotencyEntry.__table__  # type: ignore[attr-defined]
_COUNTERS = Counter.__table__  # type: ignore[attr-defined]
_IDEMPOTENCY_COLUMNS = tuple(c.name for c in _IDEMPOTENCY.columns if c.name != "pk")
# What every vendor call runs, built once (building a statement costs more than SQLite takes to run it).
_ADD_RECORD = sa_insert(_RECORDS).returning(_RECORDS.c.seq)
_REPLACE_RECORD = sa_update(_RECORDS).where(_RECORDS.c.seq == bindparam("at_seq")).values(data=bindparam("new_data"))
_NEXT_NUMBER = (sqlite_insert(_COUNTERS).values(name=bindparam("counter"), value=1)
                .on_conflict_do_update(index_elements=["name"], set_={"value": _COUNTERS.c.value + 1})
                .returning(_COUNTERS.c.value))
_SEEN_KEY = sa_select(_IDEMPOTENCY).where(_IDEMPOTENCY.c.scope == bindparam("at_scope"),
                                          _IDEMPOTENCY.c.key == bindparam("at_key")).limit(1)
_ADD_KEY = sa_insert(_IDEMPOTENCY)


@dataclass(slots=True)
class _Cached:
    seq: int
    text: str
    data: dict[str, Any]


#: stored objects, as a list endpoint pages them
Objects = list[dict[str, Any]]
#: ``(kind, tenant, dotted path)`` -> the path's value (lower case text) -> object IDs holding it
_IndexKey = tuple[str, str, str]


def field_text(doc: dict[str, Any], path: str) -> str:
    """The value at a dotted ``path`` of ``doc`` as lower-case text ("" when absent): how equality look-ups
    compare, as the vendors whose filters ignore case do."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    return "" if value is None else str(value).lower()


class Store:
    """A small document store on SQLite (a file, or memory with ``sqlite://``).

    Methods are synchronous and serialised by a lock: emulators are about fidelity, not speed,
    and SQLite wants one writer at a time. SQLite is the durable copy; each (kind, tenant) is also
    held in memory once first read (the emulator process is the file's only writer), so look-ups
    and filtered lists do not re-read and re-parse every stored object. Callers get their own
    copies, parsed from the stored text, and only of the objects they asked for.
    """

    def __init__(self, url: str = "sqlite://") -> None:
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        SQLModel.metadata.create_all(
            self.engine,
            tables=[SQLModel.metadata.tables[name]
                    for name in ("sandbox_records", "sandbox_idempotency", "sandbox_counters")],
        )
        self.lock = threading.RLock()
        # (kind, tenant) -> object_id -> cached row, in creation (seq) order.
        self._memory: dict[tuple[str, str], dict[str, _Cached]] = {}
        self._indexes: dict[_IndexKey, dict[str, set[str]]] = {}

    def _objects(self, kind: str, tenant: str) -> dict[str, _Cached]:
        """The in-memory copy of one (kind, tenant), loaded from SQLite on first use. Hold the lock."""
        objects = self._memory.get((kind, tenant))
        if objects is None:
            with Session(self.engine) as session:
                rows = session.exec(
                    select(SandboxRecord).where(SandboxRecord.kind == kind, SandboxRecord.tenant == tenant)
                    .order_by(SandboxRecord.seq)  # type: ignore[arg-type]
                ).all()
            objects = {r.object_id: _Cached(seq=r.seq or 0, text=r.data, data=json.loads(r.data)) for r in rows}
            self._memory[(kind, tenant)] = objects
        return objects

    # -- records ---------------------------------------------------------------------------------
    def put(self, kind: str, object_id: str, data: dict[str, Any], *, tenant: str = "") -> dict[str, Any]:
        """Insert or replace one object; returns ``data``."""
        text = json.dumps(data, default=str)
        with self.lock:
            objects = self._objects(kind, tenant)
            known = objects.get(object_id)  # the memory copy says whether the row exists: no look-up query
            with self.engine.begin() as connection:
                if known is None:
                    seq = connection.execute(_ADD_RECORD, {"kind": kind, "tenant": tenant, "object_id": object_id,
                                                           "data": text}).scalar_one()
                else:
                    connection.execute(_REPLACE_RECORD, {"at_seq": known.seq, "new_data": text})
                    seq = known.seq
            objects[object_id] = _Cached(seq=seq, text=text, data=json.loads(text))
            self._reindex(kind, tenant, object_id, known.data if known else None, objects[object_id].data)
        return data

    def _reindex(self, kind: str, tenant: str, object_id: str, old: dict[str, Any] | None,
                 new: dict[str, Any] | None) -> None:
        """Keep the equality indexes of ``(kind, tenant)`` right after a write. Hold the lock."""
        for (k, t, path), index in self._indexes.items():
            if (k, t) != (kind, tenant):
                continue
            if old is not None:
                index.get(field_text(old, path), set()).discard(object_id)
            if new is not None:
                index.setdefault(field_text(new, path), set()).add(object_id)

    def list_equal(self, kind: str, path: str, values: set[str], *, tenant: str = "",
                   where: Callable[[dict[str, Any]], bool] | None = None) -> Objects:
        """Like :meth:`list`, of the objects whose ``path`` equals one of ``values`` (lower case), through an
        index kept from the first such look-up on: a vendor's look-up by reference does not scan every object."""
        with self.lock:
            objects = self._objects(kind, tenant)
            index = self._indexes.get((kind, tenant, path))
            if index is None:
                index = {}
                for object_id, cached in objects.items():
                    index.setdefault(field_text(cached.data, path), set()).add(object_id)
                self._indexes[(kind, tenant, path)] = index
            found = [objects[i] for value in values for i in index.get(value, ()) if i in objects]
            texts = [c.text for c in sorted(found, key=lambda c: c.seq) if where is None or where(c.data)]
        return [json.loads(t) for t in texts]

    def get(self, kind: str, object_id: str, *, tenant: str = "") -> dict[str, Any] | None:
        with self.lock:
            cached = self._objects(kind, tenant).get(object_id)
            return json.loads(cached.text) if cached else None

    def list(self, kind: str, *, tenant: str = "", where: Callable[[dict[str, Any]], bool] | None = None,
             after_seq: int | None = None, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Objects of a kind in creation order, optionally filtered in Python, ``offset``/``limit`` applied last.

        ``where`` sees the stored object read-only; the caller gets fresh copies of the matches on the page only.
        """
        with self.lock:
            texts = [c.text for c in self._objects(kind, tenant).values()
                     if (after_seq is None or c.seq > after_seq) and (where is None or where(c.data))]
        texts = texts[offset:] if limit is None else texts[offset:offset + limit]
        return [json.loads(t) for t in texts]

    def page(self, kind: str, select: Callable[[Objects], Objects], *, tenant: str = "",
             where: Callable[[dict[str, Any]], bool] | None = None) -> Objects:
        """Copies of what ``select`` picks (a page, say) from the matching objects in creation order, which it
        sees read-only: a list endpoint decodes the page it answers, not every object of the kind."""
        with self.lock:
            matching = [c for c in self._objects(kind, tenant).values() if where is None or where(c.data)]
            texts = {id(c.data): c.text for c in matching}
            chosen = [texts[id(obj)] for obj in select([c.data for c in matching])]
        return [json.loads(t) for t in chosen]

    def newest_page(self, kind: str, limit: int, *, tenant: str = "", after: str | None = None,
                    where: Callable[[dict[str, Any]], bool] | None = None) -> tuple[Objects, bool] | None:
        """Copies of up to ``limit`` matching objects, newest first, older than ``after`` (an object ID) when
        given, and whether more match; None when ``after`` is not stored. Reads only as far back as the page
        reaches: a poll paging through a long event log does not read the whole log for each page."""
        with self.lock:
            objects = self._objects(kind, tenant)
            if after is not None and after not in objects:
                return None
            texts: list[str] = []
            passed = after is None
            for object_id, cached in reversed(objects.items()):
                if not passed:
                    passed = object_id == after
                    continue
                if where is None or where(cached.data):
                    texts.append(cached.text)
                    if len(texts) > limit:
                        break
        return [json.loads(t) for t in texts[:limit]], len(texts) > limit

    def delete(self, kind: str, object_id: str, *, tenant: str = "") -> bool:
        with self.lock, Session(self.engine) as session:
            result = session.exec(  # type: ignore[call-overload]
                delete(SandboxRecord).where(col(SandboxRecord.kind) == kind, col(SandboxRecord.tenant) == tenant,
                                            col(SandboxRecord.object_id) == object_id)
            )
            session.commit()
            gone = self._objects(kind, tenant).pop(object_id, None)
            if gone is not None:
                self._reindex(kind, tenant, object_id, gone.data, None)
            return bool(result.rowcount)

    def count(self, kind: str | None = None) -> dict[str, int]:
        """Objects per kind (all tenants), for the chaos harness to count duplicates."""
        with self.lock, Session(self.engine) as session:
            query = select(SandboxRecord.kind, func.count()).group_by(SandboxRecord.kind)
            if kind:
                query = query.where(SandboxRecord.kind == kind)
            return {k: n for k, n in session.exec(query).all()}

    def next_number(self, name: str) -> int:
        """A per-name counter (1, 2, 3...) for vendor-style IDs and invoice numbers."""
        with self.lock, self.engine.begin() as connection:
            return int(connection.execute(_NEXT_NUMBER, {"counter": name}).scalar_one())

    def reset(self) -> None:
        with self.lock, Session(self.engine) as session:
            for table in (SandboxRecord, IdempotencyEntry, Counter):
                session.exec(delete(table))  # type: ignore[call-overload]
            session.commit()
            self._memory.clear()
            self._indexes.clear()

    # -- idempotency -------------------------------------------------------------------------
    def idempotency_get(self, scope: str, key: str) -> IdempotencyEntry | None:
        with self.lock, self.engine.connect() as connection:
            row = connection.execute(_SEEN_KEY, {"at_scope": scope, "at_key": key}).first()
        return IdempotencyEntry(**row._mapping) if row is not None else None

    def idempotency_save(self, entry: IdempotencyEntry) -> None:
        with self.lock, self.engine.begin() as connection:
            connection.execute(_ADD_KEY, {name: getattr(entry, name) for name in _IDEMPOTENCY_COLUMNS})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def new_id(prefix: str, store: Store, *, width: int = 14) -> str:
    """A vendor-looking ID that is unique in this sandbox: ``cus_00000000000042``-style."""
    return f"{prefix}{store.next_number('id:' + prefix):0{width}d}"


# ---------------------------------------------------------------------------------------------
# Idempotency
# ---------------------------------------------------------------------------------------------
class IdempotencyGuard:
    """Replays the first response for a key; refuses a key reused with other parameters.

    ``mismatch`` builds the vendor's own refusal. Concurrent requests with one key are serialised,
    so the second sees the first's stored response.
    """

    def __init__(self, store: Store, mismatch: Callable[[str], Response]) -> None:
        self.store = store
        self.mismatch = mismatch
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def run(self, *, scope: str, key: str | None, fingerprint_parts: list[Any],
                  handler: Callable[[], Awaitable[Response]]) -> Response:
        if not key:
            return await handler()
        fingerprint = hashlib.sha256(json.dumps(fingerprint_parts, sort_keys=True, default=str).encode()).hexdigest()
        lock = self._locks.setdefault((scope, key), asyncio.Lock())
        async with lock:
            seen = self.store.idempotency_get(scope, key)
            if seen is not None:
                if seen.fingerprint != fingerprint:
                    return self.mismatch(key)
                replay = Response(content=seen.body, status_code=seen.status, media_type=seen.content_type)
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            response = await handler()
            # Server errors are not remembered, so a retry can succeed (as Stripe does).
            if response.status_code < 500:
                body = bytes(response.body) if hasattr(response, "body") else b""
                self.store.idempotency_save(IdempotencyEntry(
                    scope=scope, key=key, fingerprint=fingerprint, status=response.status_code,
                    body=body.decode(), content_type=response.media_type or "application/json"))
            return response


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------
class FaultSettings(BaseModel):
    """What ``POST /_sandbox/faults`` takes. All faults apply to vendor paths only, never ``/_sandbox``."""

    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests answered with `status`")
    status: int = Field(default=503, ge=400, le=599)
    latency_ms: int = Field(default=0, ge=0, description="added to every request")
    timeout_rate: float = Field(default=0.0, ge=0, le=1,
                                description="share of requests held `hang_seconds` before being processed")
    hang_seconds: float = Field(default=35.0, ge=0)
    lost_answers: int = Field(default=0, ge=0, description="the next N matching requests are carried out (committed) "
                              "and their answer is lost: a 502 comes back instead")
    lost_answer_path_prefix: str | None = Field(default=None, description="where answers are lost (default: "
                                                "path_prefix); `methods` applies too")
    rate_limit_per_second: float | None = Field(default=None, gt=0, description="token bucket refill rate")
    rate_limit_burst: int | None = Field(default=None, ge=1)
    rate_limit_per_tenant: bool = Field(default=False, description="a bucket per tenant (the vendor's tenant "
                                        "header), as a vendor whose limits are per connected organisation has")
    path_prefix: str | None = Field(default=None, description="apply only to paths starting with this")
    methods: list[str] | None = Field(default=None, description="apply only to these methods")
    seed: int | None = None


@dataclass
class Stats:
    requests: int = 0
    faults: int = 0
    rate_limited: int = 0
    timeouts: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    by_tenant: dict[str, dict[str, int]] = field(default_factory=dict)  # tenant -> requests, rate_limited

    def tenant(self, tenant: str) -> dict[str, int]:
        return self.by_tenant.setdefault(tenant, {"requests": 0, "rate_limited": 0})


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.updated = float(burst), time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is free."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class VendorStyle:
    """How a vendor answers errors: the emulator's faults and refusals use these.

    ``error`` builds an error response for a status and message; ``rate_limited`` builds the 429
    for a wait in seconds (with the vendor's headers).
    """

    vendor: str
    error: Callable[[int, str], Response]
    rate_limited: Callable[[float], Response]
    tenant_header: str | None = None  # the request header naming the tenant, where the vendor has tenants


class SandboxControl:
    """Runtime state of one emulator: faults, stats, webhook targets."""

    def __init__(self, style: VendorStyle, store: Store) -> None:
        self.style = style
        self.store = store
        self.faults = FaultSettings()
        self.answers_to_lose = 0
        self.random = random.Random()
        self.bucket: TokenBucket | None = None
        self.tenant_buckets: dict[str, TokenBucket] = {}
        self.stats = Stats()
        self.webhooks = WebhookSender(style.vendor)

    def set_faults(self, faults: FaultSettings) -> None:
        self.faults = faults
        self.answers_to_lose = faults.lost_answers
        self.random = random.Random(faults.seed)
        self.bucket = None
        self.tenant_buckets = {}
        if faults.rate_limit_per_second:
            self.bucket = self._new_bucket()

    def _new_bucket(self) -> TokenBucket:
        rate = self.faults.rate_limit_per_second or 1.0
        return TokenBucket(rate, self.faults.rate_limit_burst or max(1, int(rate)))

    def _tenant_of(self, request: Request) -> str | None:
        return request.headers.get(self.style.tenant_header) if self.style.tenant_header else None

    def _bucket_for(self, tenant: str | None) -> TokenBucket | None:
        """The bucket a request draws from: its tenant's own when limits are per tenant, else the one."""
        if self.bucket is None or not (self.faults.rate_limit_per_tenant and tenant):
            return self.bucket
        bucket = self.tenant_buckets.get(tenant)
        if bucket is None:
            bucket = self.tenant_buckets[tenant] = self._new_bucket()
        return bucket

    def _applies(self, request: Request) -> bool:
        f = self.faults
        if f.path_prefix and not request.url.path.startswith(f.path_prefix):
            return False
        return not (f.methods and request.method.upper() not in [m.upper() for m in f.methods])

    def _loses_answer(self, request: Request) -> bool:
        f = self.faults
        prefix = f.lost_answer_path_prefix or f.path_prefix
        if prefix and not request.url.path.startswith(prefix):
            return False
        return not (f.methods and request.method.upper() not in [m.upper() for m in f.methods])

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        self.stats.requests += 1
        tenant = self._tenant_of(request)
        if tenant:
            self.stats.tenant(tenant)["requests"] += 1
        f = self.faults
        if self.answers_to_lose > 0 and self._loses_answer(request):
            self.answers_to_lose -= 1
            done = await call_next(request)  # the vendor commits the write ...
            self.stats.faults += 1
            if hasattr(done, "body_iterator"):
                async for _chunk in done.body_iterator:  # ... and its answer never reaches the caller
                    pass
            return self._count(self.style.error(502, "injected fault: the answer was lost"))
        if self._applies(request):
            bucket = self._bucket_for(tenant)
            if bucket is not None:
                wait = bucket.take()
                if wait > 0:
                    self.stats.rate_limited += 1
                    if tenant:
                        self.stats.tenant(tenant)["rate_limited"] += 1
                    return self._count(self.style.rate_limited(wait))
            if f.latency_ms:
                await asyncio.sleep(f.latency_ms / 1000)
            if f.error_rate and self.random.random() < f.error_rate:
                self.stats.faults += 1
                if f.status == 429:
                    self.stats.rate_limited += 1
                    return self._count(self.style.rate_limited(1.0))
                return self._count(self.style.error(f.status, "injected fault: service unavailable"))
            if f.timeout_rate and self.random.random() < f.timeout_rate:
                self.stats.timeouts += 1
                await asyncio.sleep(f.hang_seconds)
        return self._count(await call_next(request))

    def _count(self, response: Response) -> Response:
        self.stats.by_status[response.status_code] = self.stats.by_status.get(response.status_code, 0) + 1
        return response


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------
class WebhookTarget(BaseModel):
    url: str
    alternates: list[str] = Field(default_factory=list, description=(
        "replicas of the same receiver (e.g. two ingress processes): each delivery goes to the next URL in "
        "turn, and a failed attempt is retried at the next one"))
    drop: bool = Field(default=False, description="record but do not deliver (to test lost webhooks)")

    @property
    def urls(self) -> list[str]:
        """The receiver's URLs: :attr:`url` first, then its replicas."""
        return [self.url, *self.alternates]


class WebhookRetries(BaseModel):
    max_attempts: int = Field(default=5, ge=1, le=100)


class WebhookSender:
    """Delivers signed webhooks to the registered targets, retrying failures in the background."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.targets: list[WebhookTarget] = []
        self.deliveries: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.max_attempts = 5
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._turns: dict[str, int] = {}  # per target: the replica the next delivery starts at

    def client(self) -> httpx.AsyncClient:
        """One pooled client per event loop: building a client (and its TLS context) per delivery
        cost the emulators half their CPU under load."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client, self._client_loop = httpx.AsyncClient(timeout=10), loop
        return self._client

    def emit(self, body: bytes, sign: Callable[[str, bytes], dict[str, str]],
             content_type: str = "application/json") -> None:
        """Queue ``body`` for every target; ``sign(url, body)`` returns the signature headers."""
        for target in self.targets:
            urls = target.urls
            turn = self._turns.get(target.url, 0)
            self._turns[target.url] = (turn + 1) % len(urls)
            urls = urls[turn:] + urls[:turn]  # alternate between replicas; a failure moves on to the next
            record: dict[str, Any] = {"url": urls[0], "body": body.decode(), "status": None, "attempts": 0,
                                      "dropped": target.drop}
            self.deliveries.append(record)
            if target.drop:
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(urls, body, sign, content_type, record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, urls: list[str], body: bytes, sign: Callable[[str, bytes], dict[str, str]],
                       content_type: str, record: dict[str, Any]) -> None:
        client = self.client()
        for attempt in range(1, self.max_attempts + 1):
            record["attempts"] = attempt
            url = record["url"] = urls[(attempt - 1) % len(urls)]
            try:
                headers = {"Content-Type": content_type, **sign(url, body)}
                response = await client.post(url, content=body, headers=headers)
                record["status"] = response.status_code
                if response.status_code < 300:
                    return
            except httpx.HTTPError as exc:
                record["status"] = f"error: {exc.__class__.__name__}"
            if attempt < self.max_attempts:  # no pause after the last attempt: it only delays drain()
                await asyncio.sleep(min(0.2 * 2**attempt, 5))

    async def drain(self, timeout: float = 10) -> None:
        """Wait for deliveries in flight (tests)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------
def create_sandbox_app(*, style: VendorStyle, store: Store, title: str) -> FastAPI:
    """A FastAPI app with the fault middleware and the ``/_sandbox`` control routes.

    ``app.state.control`` is the :class:`SandboxControl`, ``app.state.store`` the :class:`Store`.
    """
    app = FastAPI(title=title, docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json", redoc_url=None)
    control = SandboxControl(style, store)
    app.state.control = control
    app.state.store = store
    app.middleware("http")(control.middleware)

    @app.post("/_sandbox/faults")
    async def set_faults(faults: FaultSettings) -> dict[str, Any]:
        control.set_faults(faults)
        return control.faults.model_dump()

    @app.get("/_sandbox/faults")
    async def get_faults() -> dict[str, Any]:
        return control.faults.model_dump()

    @app.delete("/_sandbox/faults")
    async def clear_faults() -> dict[str, Any]:
        control.set_faults(FaultSettings())
        return control.faults.model_dump()

    @app.get("/_sandbox/stats")
    async def stats() -> dict[str, Any]:
        s = control.stats
        return {"requests": s.requests, "faults": s.faults, "rate_limited": s.rate_limited,
                "timeouts": s.timeouts, "by_status": s.by_status, "by_tenant": s.by_tenant}

    @app.get("/_sandbox/counts")
    async def counts() -> dict[str, int]:
        """Objects per kind: the chaos harness counts duplicates with this."""
        return store.count()

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        store.reset()
        control.set_faults(FaultSettings())
        control.stats = Stats()
        control.webhooks.deliveries.clear()
        return {"status": "reset"}

    @app.post("/_sandbox/webhooks")
    async def add_target(target: WebhookTarget) -> list[dict[str, Any]]:
        control.webhooks.targets = [t for t in control.webhooks.targets if t.url != target.url] + [target]
        return [t.model_dump() for t in control.webhooks.targets]

    @app.get("/_sandbox/webhooks")
    async def list_targets() -> dict[str, Any]:
        return {"targets": [t.model_dump() for t in control.webhooks.targets],
                "deliveries": control.webhooks.deliveries[-200:]}

    @app.post("/_sandbox/webhook-retries")
    async def webhook_retries(body: WebhookRetries) -> dict[str, Any]:
        """How many times a failed delivery is attempted (vendors retry for hours; chaos runs need more than 5)."""
        control.webhooks.max_attempts = body.max_attempts
        return body.model_dump()

    @app.delete("/_sandbox/webhooks")
    async def clear_targets() -> dict[str, Any]:
        control.webhooks.targets = []
        return {"targets": []}

    @app.get("/_sandbox/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "vendor": style.vendor}

    return app


def json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON response (for vendor styles)."""
    return JSONResponse(status_code=status, content=body, headers=headers)
