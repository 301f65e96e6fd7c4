"""The cut-over store on SQLite and PostgreSQL (``store_url``), as an ERP activity asks it before each call: where
a tenant's books went, whether records were copied into a tenant, and the copy's ID of an old record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from activities.cutover import ErpBooks, ErpMoves
from connectors.ports import ErpPort
from stores.cutover import ErpMovedRecord, cutover_engine, record_moved, record_switch, tenant_moves


class _Erp:
    """Stands for an ERP adapter: the test only checks which one a call is sent to."""

    def __init__(self, name: str) -> None:
        self.name = name


def _moved(old_id: str, new_id: str, *, to_tenant: str = "tenant-new", kind: str = "invoice") -> ErpMovedRecord:
    return ErpMovedRecord(cutover_id="cutover-ACME-GB-erp-b", entity="ACME-GB", kind=kind, old_id=old_id,
                          new_id=new_id, to_tenant=to_tenant, moved_at=datetime.now(UTC))


async def test_a_tenant_is_forwarded_after_its_switch_and_receives_once_a_record_is_copied(store_url: str) -> None:
    engine = cutover_engine(store_url)
    try:
        untouched = tenant_moves(engine, "tenant-old")
        record_switch(engine, entity="ACME-GB", cutover_id="cutover-ACME-GB-erp-b", from_adapter="erp-a",
                      from_tenant="tenant-old", to_adapter="erp-b", to_tenant="tenant-new")
        old_after_switch, new_before_copy = tenant_moves(engine, "tenant-old"), tenant_moves(engine, "tenant-new")
        record_moved(engine, _moved("INV-OLD-1", "INV-NEW-1"))
        new_after_copy = tenant_moves(engine, "tenant-new")
        bystander = tenant_moves(engine, "tenant-other")
    finally:
        engine.dispose()

    assert (untouched.forwarded_to, untouched.receives) == (None, False)
    assert old_after_switch.forwarded_to == ("erp-b", "tenant-new")
    assert not old_after_switch.receives  # nothing was copied into the old tenant
    assert (new_before_copy.forwarded_to, new_before_copy.receives) == (None, False)
    assert (new_after_copy.forwarded_to, new_after_copy.receives) == (None, True)
    assert (bystander.forwarded_to, bystander.receives) == (None, False)


async def test_erp_moves_send_a_call_for_a_moved_tenant_to_the_copy_and_leave_others_as_addressed(
        store_url: str) -> None:
    engine = cutover_engine(store_url)
    adapters = {"erp-a": _Erp("erp-a"), "erp-b": _Erp("erp-b")}
    moves = ErpMoves(engine, lambda name: cast(ErpPort, adapters[name]))
    addressed = cast(ErpPort, adapters["erp-a"])
    try:
        record_switch(engine, entity="ACME-GB", cutover_id="cutover-ACME-GB-erp-b", from_adapter="erp-a",
                      from_tenant="tenant-old", to_adapter="erp-b", to_tenant="tenant-new")
        record_moved(engine, _moved("INV-OLD-1", "INV-NEW-1"))
        record_moved(engine, _moved("CON-OLD-1", "CON-NEW-1", kind="contact"))
        # a record of another tenant under the same old ID: never the answer for tenant-new
        record_moved(engine, _moved("INV-OLD-2", "INV-ELSEWHERE", to_tenant="tenant-elsewhere"))

        moved = await moves.books("tenant-old", addressed)
        other = await moves.books("tenant-other", addressed)
        ids: dict[str, Any] = {
            "invoice": await moves.new_id(moved, "invoice", "INV-OLD-1"),
            "contact": await moves.new_id(moved, "contact", "CON-OLD-1"),
            "kind mismatch": await moves.new_id(moved, "contact", "INV-OLD-1"),
            "not copied": await moves.new_id(moved, "invoice", "INV-LATER"),
            "other tenant's copy": await moves.new_id(moved, "invoice", "INV-OLD-2"),
            "empty": await moves.new_id(moved, "invoice", ""),
            "untouched tenant": await moves.new_id(other, "invoice", "INV-OLD-1"),
        }
    finally:
        engine.dispose()

    assert (moved.tenant, cast(Any, moved.erp).name, moved.receives) == ("tenant-new", "erp-b", True)
    assert other == ErpBooks("tenant-other", addressed, receives=False)
    assert ids == {"invoice": "INV-NEW-1", "contact": "CON-NEW-1", "kind mismatch": "INV-OLD-1",
                   "not copied": "INV-LATER", "other tenant's copy": "INV-OLD-2", "empty": "",
                   "untouched tenant": "INV-OLD-1"}
