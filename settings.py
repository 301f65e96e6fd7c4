"""All configuration: one pydantic-settings class read from the environment and ``.env``.

Vendor base URLs and credentials live here, never in code. The defaults point at the local
sandbox emulators, so a fresh clone runs with no configuration at all. Temporal's own connection
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, TLS, TOML profiles) is read by
the SDK's environment configuration, not here.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from canonical import LegalEntity
from canonical.authority import ApprovalAuthority, Approver, parse_signing_keys
from canonical.books import BooksMapping, EntityBooks, RevenueRule, TaxRule, TaxStatus
from canonical.catalogue import Catalogue, CatalogueRefused, load_catalogue

ROOT = Path(__file__).resolve().parent

DEFAULT_ENTITIES = [
    LegalEntity(code="US01", name="RevOps Inc.", region="NA", currency="USD", tax_registration="US-EIN-00-0000001",
                erp_tenant_id="4f7a0c1e-0001-4000-8000-000000000001", countries=["US", "CA", "MX"]),
    LegalEntity(code="EU01", name="RevOps GmbH", region="EMEA", currency="EUR", tax_registration="DE000000001",
                erp_tenant_id="4f7a0c1e-0002-4000-8000-000000000002",
                countries=["DE", "FR", "NL", "ES", "IT", "AT", "BE", "IE"], currencies=["EUR", "USD"]),
    LegalEntity(code="UK01", name="RevOps Ltd", region="EMEA", currency="GBP", tax_registration="GB000000001",
                erp_tenant_id="4f7a0c1e-0003-4000-8000-000000000003", countries=["GB"]),
]

#: the sandbox organisations' books (a deployment sets BOOKS_MAPPING as JSON: README "Tax and GL mapping"); the
#: codes are the ERP's own (here the sandbox ERP's chart of accounts and tax types)
_SANDBOX_ACCOUNTS = ["090", "091", "200", "260", "485"]
_SANDBOX_TAX_CODES = ["NONE", "EXEMPTOUTPUT", "ZERORATEDOUTPUT", "ECZROUTPUTSERVICES", "OUTPUT", "OUTPUT2", "TAX001"]
DEFAULT_BOOKS = BooksMapping(entities=[
    EntityBooks(entity="US01", revenue=[RevenueRule(product="*", account="200")],
                tax=[TaxRule(status=TaxStatus.TAXABLE, tax_code="TAX001"),
                     TaxRule(status=TaxStatus.EXEMPT, tax_code="EXEMPTOUTPUT"),
                     TaxRule(status=TaxStatus.REVERSE_CHARGE, tax_code="NONE")],
                bank={"USD": "090"}, bad_debt_account="485", accounts=_SANDBOX_ACCOUNTS,
                tax_codes=_SANDBOX_TAX_CODES),
    EntityBooks(entity="EU01", revenue=[RevenueRule(product="*", account="200")],
                tax=[TaxRule(status=TaxStatus.TAXABLE, tax_code="OUTPUT"),
                     TaxRule(status=TaxStatus.EXEMPT, tax_code="EXEMPTOUTPUT"),
                     TaxRule(status=TaxStatus.REVERSE_CHARGE, tax_code="ECZROUTPUTSERVICES")],
                bank={"EUR": "090", "USD": "091"}, bad_debt_account="485", accounts=_SANDBOX_ACCOUNTS,
                tax_codes=_SANDBOX_TAX_CODES),
    EntityBooks(entity="UK01", revenue=[RevenueRule(product="*", account="200")],
                tax=[TaxRule(status=TaxStatus.TAXABLE, region="GB", tax_code="OUTPUT2"),
                     TaxRule(status=TaxStatus.TAXABLE, tax_code="ZERORATEDOUTPUT"),
                     TaxRule(status=TaxStatus.EXEMPT, tax_code="EXEMPTOUTPUT"),
                     TaxRule(status=TaxStatus.REVERSE_CHARGE, tax_code="ECZROUTPUTSERVICES")],
                bank={"GBP": "090"}, bad_debt_account="485", accounts=_SANDBOX_ACCOUNTS,
                tax_codes=_SANDBOX_TAX_CODES),
])

#: the local sandbox's approvers (a deployment sets APPROVERS as JSON): sales ops up to 10 % and 25,000,
#: the finance manager up to 25 % and 100,000, the CFO and the treasurer without limit (two people, so a
#: deal above the dual-approval threshold can be approved at all)
DEFAULT_APPROVERS = [
    Approver(id="sam@revops.example", name="Sam (Sales Ops)", role="sales_ops", email="sam@revops.example",
             max_amount={"USD": Decimal(25000), "EUR": Decimal(25000), "GBP": Decimal(20000)},
             max_discount_percent=Decimal(10), crm_owner_ids=["90001"]),
    Approver(id="dana@revops.example", name="Dana (Finance)", role="finance_manager", email="dana@revops.example",
             max_amount={"USD": Decimal(100000), "EUR": Decimal(100000), "GBP": Decimal(80000)},
             max_discount_percent=Decimal(25), crm_owner_ids=["90002"]),
    Approver(id="chris@revops.example", name="Chris (CFO)", role="cfo", email="chris@revops.example",
             crm_owner_ids=["90003"]),
    Approver(id="robin@revops.example", name="Robin (Treasurer)", role="treasurer", email="robin@revops.example"),
]
#: a development key only: a deployment sets APPROVAL_SIGNING_KEYS (and the JWT key) to its own secrets
DEV_APPROVAL_SIGNING_KEY = "dev:cmV2b3BzLWRldmVsb3BtZW50LWFwcHJvdmFsLXNpZ25pbmcta2V5IQ=="
DEV_APPROVALS_JWT_SECRET = "revops-development-jwt-secret-change-me-0123456789"


#: named stacks (``STACK=…``: make demo, make up, make chaos, starter.py): which adapter plays each role, as data
#: beside the registry (connectors/stacks.json); a preset fills only the choices the environment leaves unset
STACKS_FILE = Path(__file__).resolve().parent / "connectors" / "stacks.json"


def stack_presets() -> dict[str, dict[str, Any]]:
    presets: dict[str, dict[str, Any]] = json.loads(STACKS_FILE.read_text(encoding="utf-8"))
    return presets


def stack_preset(name: str) -> dict[str, Any]:
    """The named stack's choices; an unknown name is refused with the presets listed."""
    presets = stack_presets()
    if name not in presets:
        listed = "; ".join(f"{n} ({p['about']})" for n, p in presets.items())
        raise ValueError(f"unknown STACK {name!r}: the presets are {listed}")
    return presets[name]


class Settings(BaseSettings):
    """Everything configurable. Environment variables are the field names upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # -- Temporal (address and namespace come from the SDK's environment configuration) -------
    task_queue: str = "revops"
    temporal_ui_url: str = "http://localhost:8233"

    # -- local stack -----------------------------------------------------------------------------
    data_dir: Path = ROOT / ".data"
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8000
    database_url: str | None = Field(default=None, description="event ledger; SQLite under data_dir if unset")
    sandbox_host: str = "127.0.0.1"

    # -- data protection (payload codec, codec server, ledger retention) ---------------------------
    codec_keys: str | None = Field(default=None, description="comma-separated 'key-id:base64-key' (32-byte "
                                   "AES-256 keys); the first encrypts, all decrypt. Unset: a local key file "
                                   "under data_dir, made on first use")
    codec_server_host: str = "127.0.0.1"
    codec_server_port: int = 8081
    codec_server_token: str | None = Field(default=None, description="bearer token (or cookie) the codec server "
                                           "wants; unset: a random one under data_dir, made on first use")
    codec_server_cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:8233",
                                                                          "http://127.0.0.1:8233"])
    ledger_retention_days: int = Field(default=30, ge=1, description="ledger rows older than this are pruned")
    ledger_upkeep_interval_seconds: float = Field(default=300, description="how often the event-ledger-upkeep "
                                                  "schedule sweeps (and prunes) the ledger")
    ledger_stranded_after_seconds: float = Field(default=120, description="an event in flight this long was "
                                                 "stranded by a crash: the sweep routes it again")
    ledger_retry_base_seconds: float = Field(default=30, description="backoff of a failed event: base, doubled "
                                             "per attempt")
    ledger_retry_max_seconds: float = 3600
    ledger_retry_max_attempts: int = Field(default=12, description="then the event is given up (visible)")

    # -- which vendor plays which role (connectors/registry.py; README "Pointing it at real vendors") -------
    stack: str | None = Field(default=None, description="a named stack (connectors/stacks.json): fills the adapter "
                              "choices below that the environment leaves unset")
    # unset: the first adapter the registry lists for the role
    crm_adapter: str | None = Field(default=None, description="the CRM adapter (registry name)")
    clm_adapter: str | None = Field(default=None, description="the CLM adapter (registry name)")
    billing_adapter: str | None = Field(default=None, description="the billing adapter (registry name)")
    erp_adapter: str | None = Field(default=None, description="the ERP adapter of every legal entity that names "
                                    "none (an entity's erp_adapter in LEGAL_ENTITIES overrides it)")
    extra_adapters: list[str] = Field(default_factory=list, description="descriptor modules of adapters beyond "
                                      "this build's (``package.module`` with ``SPEC``), by registry name usable above")
    adapter_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="adapter name -> fields of its own settings class, over what its "
        "environment prefix gives (each adapter reads <PREFIX>_BASE_URL ... itself: connectors/<name>/spec.py)")

    # -- every vendor client ------------------------------------------------------------------
    http_timeout_seconds: float | None = Field(default=None, description="per-request timeout of the vendor "
                                               "clients; the client factory's default (30 s) if unset")

    # -- legal entities ------------------------------------------------------------------------
    legal_entities: list[LegalEntity] = Field(default_factory=lambda: list(DEFAULT_ENTITIES))
    books_mapping: BooksMapping = Field(default_factory=lambda: DEFAULT_BOOKS.model_copy(deep=True),
                                        description="JSON {entities: [...]}: per legal entity the revenue account "
                                        "per product or family, the tax code per customer tax status and region, "
                                        "the bank account per currency, the bad-debt account and the declared "
                                        "accounts and tax codes (canonical/books.py); checked at start")

    # -- product catalogue (canonical.catalogue): SKU -> billing prices, ERP item code, rate card ----------
    catalogue: dict[str, Any] | None = Field(default=None, description="the product catalogue as JSON keyed by "
                                             "SKU; CATALOGUE_FILE instead names a JSON file")
    catalogue_file: Path | None = Field(default=None, description="a JSON file holding the product catalogue")

    # -- approval policy -----------------------------------------------------------------------
    approval_max_discount_percent: Decimal = Decimal(15)
    approval_max_amount: Decimal = Decimal(100000)
    approval_standard_payment_terms_days: int = 30
    approval_reminder_hours: float = 24
    approval_expiry_days: float = 7
    amendment_approval_reminder_hours: float = 48
    amendment_approval_expiry_days: float = Field(default=14, description="an amendment decrease not decided "
                                                  "by then is not propagated (outcome: expired)")

    # -- approval authority (who may approve what) and the signed approvals ---------------------------
    approvers: list[Approver] = Field(default_factory=lambda: list(DEFAULT_APPROVERS),
                                      description="JSON list: id (token sub), name, role, max_amount per currency, "
                                                  "max_discount_percent, entities, crm_owner_ids, email")
    approval_dual_above: dict[str, Decimal] = Field(
        default_factory=lambda: {"USD": Decimal(250000), "EUR": Decimal(250000), "GBP": Decimal(200000)},
        description="currency -> deal total above which two distinct approvers must approve")
    approval_signing_keys: list[str] = Field(default_factory=lambda: [DEV_APPROVAL_SIGNING_KEY],
                                             description="key-id:base64-key (>= 32 bytes); the first signs, all "
                                                         "verify; shared by the approvals API and the worker")
    approval_proof_ttl_seconds: float = 300

    # -- approvals API and finance inbox (served with the ingress, own port) -------------------------
    approvals_host: str = "127.0.0.1"
    approvals_port: int = 8010
    approvals_public_url: str | None = Field(default=None, description="base URL people open (links in "
                                                                       "notifications); http://host:port if unset")
    approvals_jwt_algorithm: str = Field(default="HS256", description="HS256 (shared secret) or RS256 (public key "
                                                                      "or JWKS file)")
    approvals_jwt_secret: str | None = DEV_APPROVALS_JWT_SECRET
    approvals_jwt_public_key_file: Path | None = None
    approvals_jwks_file: Path | None = None
    approvals_jwt_issuer: str = "revops-dev-idp"
    approvals_jwt_audience: str = "revops-approvals"
    approvals_cookie_secure: bool = Field(default=False, description="set true behind HTTPS")

    # -- notifications (Slack-compatible incoming webhook and SMTP; the sandbox's by default) ----------
    sandbox_slack_port: int = 8105
    sandbox_smtp_port: int = 8025
    notify_slack_webhook_url: str | None = "http://127.0.0.1:8105/services/T0REVOPS/B0FINANCE/sandbox"
    notify_smtp_host: str | None = "127.0.0.1"
    notify_smtp_port: int = 8025
    notify_smtp_username: str | None = None
    notify_smtp_password: str | None = None
    notify_smtp_starttls: bool = False
    notify_from: str = "revops@revops.example"
    notify_operations: list[str] = Field(default_factory=lambda: ["revops-ops@revops.example"],
                                         description="who hears of business exceptions (approvers hear of "
                                                     "the approvals they may decide)")
    notifications_url: Path | str | None = Field(default=None, description="the send log: a SQLAlchemy URL "
                                                 "(PostgreSQL) or a SQLite file's path; under data_dir if unset")

    # -- retries of activities (vendor outages retry without an attempt limit) -----------------
    activity_retry_max_seconds: float = 300
    activity_timeout_seconds: float = Field(default=120, description="start-to-close of one quote-to-cash step: "
                                            "how soon a step lost with a crashed worker or server is retried")
    worker_workflow_task_slots: int | None = Field(
        default=None, ge=2, description="workflow tasks one worker process runs at once (unset: the SDK's 100). "
        "A cap of 8 sped the month-end burst but slowed the chaos run's deals under vendor faults to a tenth "
        "(README, Benchmarks)")

    # -- waiting on others ---------------------------------------------------------------------
    contract_poll_interval_seconds: float = 3600
    contract_max_wait_days: float = 90
    milestone_poll_interval_seconds: float = Field(default=3600, gt=0, description="how often a project's one-off "
                                                   "invoicing asks the project system which milestones a person "
                                                   "accepted")

    # -- amendment propagation (ContractAmendmentsWorkflow) ------------------------------------
    amendment_gap_timeout_seconds: float = Field(default=86400, description="a missing predecessor this long "
                                                 "becomes an amendment_gap exception")
    amendments_continue_as_new_after: int = Field(default=50, description="amendments applied per run before "
                                                  "continuing as new (sooner if Temporal suggests it)")

    # -- ingress (webhooks) and the CRM deal poll ---------------------------------------------
    ingress_max_body_bytes: int = 1024 * 1024
    ingress_read_timeout_seconds: float = Field(default=10, description="the whole body must arrive in this "
                                                "time (slow senders get 408)")
    ingress_keep_alive_seconds: int = Field(default=5, description="idle keep-alive connections close after")
    ingress_max_concurrency: int = Field(default=200, description="connections and requests at once; uvicorn "
                                         "answers 503 past it")
    ingress_temporal_timeout_seconds: float = Field(default=5.0, description="longer than this: answer 503")
    ingress_public_url: str | None = Field(default=None, description="the base URL vendors call, when behind a "
                                                                     "proxy (a vendor may sign the URL it called)")
    poll_interval_seconds: float = 300
    poll_initial_lookback_hours: float = Field(default=24, description="a poll's first run (no checkpoint yet) "
                                               "looks back this far: the CRM, billing and amendment polls")
    billing_poll_interval_seconds: float = Field(default=300, gt=0, description="the billing event poll (the "
                                                 "net for lost billing webhooks) runs this often")
    amendment_poll_interval_seconds: float = Field(default=900, gt=0, description="the amendment poll (the net "
                                                   "for lost CLM amendment webhooks) runs this often")

    # -- invoice feedback (AccountLedgerWorkflow) and reconciliation ------------------------------
    ledger_continue_after_events: int = Field(default=500, description="billing events per run before the "
                                                                       "ledger continues as new")
    ledger_dedupe_window: int = Field(default=2000, description="source event IDs remembered for dedupe")
    ledger_dso_window_days: int = 90
    findings_url: str | None = Field(default=None, description="reconciliation findings; SQLite under data_dir "
                                                               "if unset")
    reconciliation_cron: str = Field(default="0 2 * * *", description="nightly, UTC")
    reconciliation_rounding_tolerance: Decimal = Decimal("0.01")
    reconciliation_full_pass_hours: float = Field(default=168, description="a run reads everything (not only "
                                                  "what changed since its checkpoint) when the last full pass is "
                                                  "older than this")
    # -- observability: metrics, alerts, traces (README "Observability") --------------------------
    metrics_host: str = Field(default="127.0.0.1", description="where the metrics endpoints listen")
    worker_metrics_port: int = Field(default=9464, description="worker's Prometheus text; 0: off")
    ingress_metrics_port: int = Field(default=9465, description="ingress's Prometheus text; 0: off")
    metrics_refresh_seconds: float = Field(default=15, description="business gauges rebuilt this often")
    kpi_refresh_seconds: float = Field(default=300, description="KPI gauges recomputed this often")
    kpi_window_days: float = Field(default=30, description="the KPI gauges cover runs started this recently "
                                   "(each is queried, closed ones replayed by a worker)")
    exception_sla_hours: float = Field(default=24, description="an open business exception older alerts")
    exception_sla_hours_by_kind: dict[str, float] = Field(default_factory=lambda: {
        "erp_rejected": 4.0, "provisioning_failed": 4.0, "propagation_failed": 4.0, "write_back_failed": 8.0,
        "vendor_auth_failed": 1.0})
    prometheus_port: int = Field(default=9090, description="`make up` runs Prometheus here when installed")
    otel_traces_exporter: str = Field(default="none", description="traces: none, otlp (OTLP over HTTP), console, or "
                               "discard (spans made and dropped: the benchmark's measure of the cost)")
    otel_exporter_otlp_traces_endpoint: str = Field(default="http://127.0.0.1:4318/v1/traces",
                                                    description="the OTLP/HTTP traces URL when the exporter is otlp")

    @model_validator(mode="before")
    @classmethod
    def _stack_fills_unset_choices(cls, data: Any) -> Any:
        """``STACK=salesforce-docusign``: the preset's choices, under any the environment sets itself."""
        if isinstance(data, dict) and data.get("stack"):
            preset = stack_preset(str(data["stack"]))
            fields: dict[str, Any] = {k: preset[k] for k in ("crm_adapter", "clm_adapter") if k in preset}
            erps = preset.get("entity_erps") or {}
            if erps:
                fields["legal_entities"] = [e.model_copy(update={"erp_adapter": erps[e.code]}) if e.code in erps
                                            else e for e in DEFAULT_ENTITIES]
            data = {**fields, **data}
        return data

    def approval_authority(self) -> ApprovalAuthority:
        return ApprovalAuthority(approvers=self.approvers, dual_approval_above=self.approval_dual_above)

    def product_catalogue(self) -> Catalogue:
        """The catalogue from ``CATALOGUE`` or ``CATALOGUE_FILE`` (empty when neither is set);
        :class:`canonical.catalogue.CatalogueRefused` naming each bad SKU."""
        if self.catalogue is not None and self.catalogue_file is not None:
            raise CatalogueRefused(["set CATALOGUE or CATALOGUE_FILE, not both"])
        if self.catalogue_file is None:
            return load_catalogue(self.catalogue)
        try:
            raw = json.loads(self.catalogue_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CatalogueRefused([f"CATALOGUE_FILE {self.catalogue_file}: {exc}"]) from exc
        return load_catalogue(raw)

    def approval_keys(self) -> dict[str, bytes]:
        return parse_signing_keys(self.approval_signing_keys)

    @property
    def notifications_database_url(self) -> str:
        """The send log's database: ``NOTIFICATIONS_URL`` as a URL, or a SQLite file (its path, or data_dir's)."""
        location = str(self.notifications_url or self.data_dir / "notifications.sqlite")
        return location if "://" in location else f"sqlite:///{location}"

    @property
    def approvals_base_url(self) -> str:
        return (self.approvals_public_url or f"http://{self.approvals_host}:{self.approvals_port}").rstrip("/")

    def entity(self, code: str) -> LegalEntity:
        for entity in self.legal_entities:
            if entity.code == code:
                return entity
        raise KeyError(f"unknown legal entity {code!r}")

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ingress.sqlite'}"

    @property
    def findings_database_url(self) -> str:
        return self.findings_url or f"sqlite:///{self.data_dir / 'findings.sqlite'}"
