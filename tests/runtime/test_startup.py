"""Start-up refusals: an unsound approver registry and the published development secrets beyond the sandbox
refuse the worker, the ingress and the CLI with a reason (pure checks, then real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.startup import (
    StartRefused,
    development_secrets_in_use,
    is_sandbox_url,
    refuse_development_secrets,
    refuse_unsound_settings,
    vendor_base_urls,
)
from settings import ROOT, Settings

OWN_KEY = "prod:" + "cHJvZHVjdGlvbi1zaWduaW5nLWtleS1vZi1hdC1sZWFzdC0zMg=="
SANDBOX = ["http://127.0.0.1:8101", "http://localhost:8102", "http://[::1]:8103"]


def test_development_secrets_are_fine_on_the_sandbox_and_refused_beyond_it(settings: Settings) -> None:
    assert development_secrets_in_use(settings) == ["APPROVAL_SIGNING_KEYS", "APPROVALS_JWT_SECRET"]
    refuse_development_secrets(settings, SANDBOX)
    assert all(is_sandbox_url(u) for u in vendor_base_urls(settings))
    for beyond in ("https://api.hubapi.com", "http://127.0.0.1.attacker.example", "http://10.0.0.5:8104"):
        with pytest.raises(StartRefused) as refused:
            refuse_development_secrets(settings, [*SANDBOX, beyond])
        assert "APPROVAL_SIGNING_KEYS, APPROVALS_JWT_SECRET" in str(refused.value)
        assert settings.approvals_jwt_secret not in str(refused.value), "never the secret itself"
    own = settings.model_copy(update={"approval_signing_keys": [OWN_KEY], "approvals_jwt_secret": "x" * 48})
    refuse_development_secrets(own, ["https://api.hubapi.com"])
    half = settings.model_copy(update={"approval_signing_keys": [OWN_KEY]})
    with pytest.raises(StartRefused, match="^APPROVALS_JWT_SECRET still hold"):
        refuse_development_secrets(half, ["https://api.stripe.com"])


def test_unsound_registry_is_refused_naming_the_problem(settings: Settings) -> None:
    refuse_unsound_settings(settings)
    alone = settings.model_copy(update={"approvers": [a for a in settings.approvers if a.max_amount is not None
                                                      or a.id == "chris@revops.example"]})
    with pytest.raises(StartRefused, match="only 1 may approve such an amount"):
        refuse_unsound_settings(alone)


def _run(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DATA_DIR": str(tmp_path), "TEMPORAL_ADDRESS": "127.0.0.1:1", **env}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)


def test_worker_cli_and_ingress_refuse_to_start_with_development_secrets_beyond_the_sandbox(tmp_path: Path) -> None:
    for args in (["worker.py"], ["starter.py", "pending"], ["starter.py", "serve"]):
        ran = _run(tmp_path, args, STRIPE_BASE_URL="https://api.stripe.com")
        assert ran.returncode == 1, (args, ran.stdout[-500:], ran.stderr[-500:])
        assert "refused to start" in ran.stderr and "APPROVAL_SIGNING_KEYS" in ran.stderr, args
        assert "Traceback" not in ran.stderr, args


def test_worker_and_cli_refuse_one_person_listed_twice(tmp_path: Path) -> None:
    approvers = [{"id": "chris@revops.example", "name": "Chris", "role": "cfo"},
                 {"id": "CFO@revops.example", "name": "Chris again", "role": "cfo", "email": "Chris@RevOps.example"},
                 {"id": "robin@revops.example", "name": "Robin", "role": "treasurer"}]
    for args in (["worker.py"], ["starter.py", "pending"]):
        ran = _run(tmp_path, args, APPROVERS=json.dumps(approvers))
        assert ran.returncode == 1, (args, ran.stderr[-500:])
        assert "'chris@revops.example' names two approvers" in ran.stderr, (args, ran.stderr[-500:])


def _books_json(settings: Settings, **uk01: object) -> str:
    mapping = settings.books_mapping.model_dump(mode="json")
    for books in mapping["entities"]:
        if books["entity"] == "UK01":
            books.update(uk01)
    return json.dumps(mapping)


def test_books_mapping_with_an_unknown_code_is_refused_naming_the_entity_and_product(settings: Settings) -> None:
    refuse_unsound_settings(settings)
    from canonical.books import BooksMapping
    typo = BooksMapping.model_validate_json(_books_json(settings, revenue=[
        {"product": "SKU-SUPPORT-*", "account": "2O0"}, {"product": "*", "account": "200"}]))
    with pytest.raises(StartRefused, match="UK01: product SKU-SUPPORT-\\* maps to unknown account 2O0"):
        refuse_unsound_settings(settings.model_copy(update={"books_mapping": typo}))
    bad_tax = BooksMapping.model_validate_json(_books_json(settings, tax=[
        {"status": "taxable", "region": "GB", "tax_code": "OUTPUT20"}]))
    with pytest.raises(StartRefused, match="UK01: taxable customers in GB map to unknown tax code OUTPUT20"):
        refuse_unsound_settings(settings.model_copy(update={"books_mapping": bad_tax}))
    without_uk = BooksMapping(entities=[b for b in settings.books_mapping.entities if b.entity != "UK01"])
    with pytest.raises(StartRefused, match="UK01: no books mapping"):
        refuse_unsound_settings(settings.model_copy(update={"books_mapping": without_uk}))


def test_worker_refuses_to_start_with_an_unknown_account_in_books_mapping(tmp_path: Path, settings: Settings) -> None:
    books = _books_json(settings, revenue=[{"product": "SKU-TRAINING", "account": "999"}])
    ran = _run(tmp_path, ["worker.py"], BOOKS_MAPPING=books)
    assert ran.returncode == 1, (ran.stdout[-500:], ran.stderr[-500:])
    assert "UK01: product SKU-TRAINING maps to unknown account 999" in ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
def test_bad_catalogue_is_refused_naming_each_sku(settings: Settings, tmp_path: Path) -> None:
    bad = {"SEATS": {"name": "Seats", "prices": [{"currency": "EUR", "interval": "month", "unit_amount": "20.001"}]},
           "SUPPORT": {"name": "Support", "prices": [{"currency": "XXX", "unit_amount": "5"}]},
           "EMPTY": {"name": "Nothing to sell"}}
    with pytest.raises(StartRefused) as refused:
        refuse_unsound_settings(settings.model_copy(update={"catalogue": bad}))
    message = str(refused.value)
    assert message.startswith("the product catalogue (CATALOGUE, CATALOGUE_FILE) is refused")
    assert "SKU 'SEATS': 20.001 EUR has more than 2 decimal places" in message
    assert "SKU 'SUPPORT': prices.0.currency" in message and "'XXX'" in message
    assert "SKU 'EMPTY': has neither prices nor hourly rates" in message
    missing = settings.model_copy(update={"catalogue_file": tmp_path / "absent.json"})
    with pytest.raises(StartRefused, match="absent.json"):
        refuse_unsound_settings(missing)
    good = {"SEATS": {"name": "Seats", "prices": [{"currency": "EUR", "interval": "month", "unit_amount": "20"}]}}
    refuse_unsound_settings(settings.model_copy(update={"catalogue": good}))


def test_worker_and_cli_refuse_a_catalogue_with_a_bad_sku(tmp_path: Path) -> None:
    catalogue = {"PLAT PRO": {"name": "Platform", "prices": [{"currency": "USD", "unit_amount": "45"}]}}
    for args in (["worker.py"], ["starter.py", "pending"]):
        ran = _run(tmp_path, args, CATALOGUE=json.dumps(catalogue))
        assert ran.returncode == 1, (args, ran.stderr[-500:])
        assert "SKU 'PLAT PRO': not a SKU" in ran.stderr and "Traceback" not in ran.stderr, (args, ran.stderr[-500:])
