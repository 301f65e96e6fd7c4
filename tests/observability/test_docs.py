"""``make docs``: the field mapping and the integration catalogue are generated from the code, up to date, linked
from the README, and the declared rows hold to the code they describe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from pydantic import BaseModel

import canonical
import canonical.amendments
import canonical.kpis
import canonical.ledger
import canonical.reconciliation
import canonical.requests
from connectors.fieldmap import NOT_MAPPED, field_mappings
from connectors.hubspot import mapping as hubspot_mapping
from connectors.ironclad import mapping as ironclad_mapping
from observability import docs
from observability.catalogue import FLOWS, RUNBOOKS
from worker import WORKFLOWS

ROOT = Path(__file__).resolve().parents[2]


def test_docs_are_up_to_date() -> None:
    for path, text in docs.generated().items():
        assert path.exists(), f"{path.name} missing: run `make docs`"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is out of date: run `make docs`"
    assert docs.main(["--check"]) == 0


def test_readme_links_both_documents() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/field-mapping.md" in readme and "docs/integration-catalogue.md" in readme


def _model(name: str) -> type[BaseModel]:
    for module in (canonical, canonical.requests, canonical.ledger, canonical.kpis, canonical.amendments,
                   canonical.reconciliation):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    raise AssertionError(f"no canonical model {name}")


def _resolves(path: str) -> bool:
    model_name, *fields = path.split(".")
    model: type[BaseModel] = _model(model_name)
    for i, name in enumerate(fields):
        if name not in model.model_fields:
            return False
        annotation = model.model_fields[name].annotation
        nested = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)
                  and issubclass(a, BaseModel)]
        if i < len(fields) - 1:
            if not nested:
                return False
            model = nested[0]
    return True


def test_every_canonical_field_in_the_mapping_exists() -> None:
    missing = [r.canonical for rows in field_mappings().values() for r in rows
               if r.canonical != NOT_MAPPED and not _resolves(r.canonical)]
    assert missing == []


def test_every_declared_vendor_field_is_named_in_its_connector() -> None:
    for vendor, rows in field_mappings().items():
        source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "connectors" / vendor).glob("*.py"))
        for row in rows:
            if row.from_table or not re.fullmatch(r"[\w.]+", row.vendor_field):
                continue
            leaf = row.vendor_field.split(".")[-1]
            assert re.search(rf"[\"']{re.escape(leaf)}[\"']", source), f"{vendor}: {row.vendor_field} not in the code"


def test_every_field_the_mappers_use_has_a_row() -> None:
    hubspot = {r.vendor_field for r in field_mappings()["hubspot"]}
    used = [*hubspot_mapping.DEAL_PROPERTIES, *hubspot_mapping.COMPANY_PROPERTIES,
            *hubspot_mapping.CONTACT_PROPERTIES, *hubspot_mapping.LINE_ITEM_PROPERTIES,
            *hubspot_mapping.WRITEBACK_PROPERTIES.values()]
    assert sorted(set(used) - hubspot) == []
    ironclad = {r.vendor_field for r in field_mappings()["ironclad"]}
    assert sorted(set(ironclad_mapping.TERM_KEYS.values()) - ironclad) == []


def test_catalogue_covers_every_workflow_and_every_runbook_link_resolves() -> None:
    assert {f.workflow for f in FLOWS} == set(WORKFLOWS)
    catalogue = docs.CATALOGUE.read_text(encoding="utf-8")
    rules = yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    anchors = {r["annotations"]["runbook"].split("#", 1)[1] for g in rules["groups"] for r in g["rules"]}
    anchors |= {f.runbook for f in FLOWS}
    for anchor in anchors:
        assert anchor in RUNBOOKS and f'<a id="{anchor}"></a>' in catalogue, anchor


def test_systems_written_are_read_off_the_activities() -> None:
    by_name = {f.name: f for f in FLOWS}
    assert docs.systems_written(by_name["Invoice feedback"].workflow) == ["CRM (HubSpot)", "ERP (Xero)"]
    assert docs.systems_written(by_name["CRM deal poll"].workflow) == []
    calls = dict((name, c) for name, _doc, c in docs.flow_activities(by_name["Quote-to-cash"].workflow))
    assert calls["create_erp_project"] == ["erp.create_project"]


def test_make_docs_shows_the_books_mapping_tables() -> None:
    """``make docs`` writes each entity's tax and GL tables (the default BOOKS_MAPPING); ``--books`` prints the
    mapping the environment configures."""
    text = docs.generated()[docs.BOOKS]
    assert docs.BOOKS.read_text(encoding="utf-8") == text
    uk = text[text.index("## UK01"):]
    assert "| product or family | revenue account |" in uk and "| `*` | `200` |" in uk
    assert "| taxable | `GB` | `OUTPUT2` |" in uk and "| exempt | `*` | `EXEMPTOUTPUT` |" in uk
    assert "| GBP | `090` |" in uk and "net to `485`" in uk
    custom = json.dumps({"entities": [{
        "entity": "UK01", "revenue": [{"product": "SKU-SUP-*", "account": "260"}],
        "tax": [{"status": "reverse_charge", "region": "DE", "tax_code": "ECZROUTPUTSERVICES"}],
        "bank": {"GBP": "091"}, "bad_debt_account": "485", "accounts": ["091", "260", "485"],
        "tax_codes": ["ECZROUTPUTSERVICES"]}]})
    ran = subprocess.run([sys.executable, "-m", "observability.docs", "--books"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "BOOKS_MAPPING": custom})
    assert ran.returncode == 0, ran.stderr[-500:]
    assert "| `SKU-SUP-*` | `260` |" in ran.stdout and "| reverse_charge | `DE` | `ECZROUTPUTSERVICES` |" in ran.stdout
    assert "## US01" not in ran.stdout
