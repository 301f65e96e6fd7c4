"""The reconciliation mirror on SQLite and PostgreSQL (``store_url``): a full pass replaces a source's
documents, a delta pass upserts and removes, and a delta before any full pass is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from stores.mirror import apply_changes, checkpoint, document, documents, mirror_engine, replace_source

T0 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)


def test_mirror_store_full_then_delta_pass(store_url: str) -> None:
    engine = mirror_engine(store_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            with pytest.raises(LookupError):
                apply_changes(session, "xero:US01", [("invoice", "i1", "{}")], read_at=T0)
            session.rollback()
            full = replace_source(session, "xero:US01", ["invoice"],
                                  [("invoice", "i1", '{"total": "10.00"}'), ("invoice", "i2", '{"total": "5.00"}')],
                                  read_at=T0)
            replace_source(session, "billing", ["invoice"], [("invoice", "i1", '{"total": "99.00"}')], read_at=T0)
            delta = apply_changes(session, "xero:US01",
                                  [("invoice", "i1", '{"total": "12.50"}'), ("invoice", "i2", None),
                                   ("invoice", "i3", '{"total": "1.00"}')], read_at=T0 + timedelta(hours=1))
            held = {d.doc_id: d.body for d in documents(session, "xero:US01", "invoice")}
            other = document(session, "billing", "invoice", "i1")
            mark = checkpoint(session, "xero:US01")
    finally:
        engine.dispose()

    assert (full, delta) == (2, 3)
    assert held == {"i1": '{"total": "12.50"}', "i3": '{"total": "1.00"}'}
    assert other is not None and other.body == '{"total": "99.00"}'  # another source is untouched
    assert mark is not None and (mark.read_at, mark.full_at) == (T0 + timedelta(hours=1), T0)
