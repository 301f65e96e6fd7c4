"""The reconciliation mirror: what reconciliation last read of each vendor, so a run reads only what changed.

Documents are kept per source (``stripe``, ``xero:US01``) and kind (``invoice``, ``credit_note``,
``customer``, ``payment``) as the canonical model's JSON. A full pass replaces a source's documents; a
delta pass upserts (or removes) the changed ones. A checkpoint per source says up to when it was read and
when it was last read in full. Stored beside the findings (same database), built by the composition root.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from stores.database import open_engine


class MirrorDocument(SQLModel, table=True):
    """One vendor object as reconciliation last read it."""

    __tablename__ = "reconciliation_mirror"

    source: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    doc_id: str = Field(primary_key=True)
    body: str


class MirrorCheckpoint(SQLModel, table=True):
    """Up to when a source was read (``read_at``: the moment the read started) and when last in full."""

    __tablename__ = "reconciliation_checkpoint"

    source: str = Field(primary_key=True)
    read_at: datetime
    full_at: datetime


TABLES = [MirrorDocument.__table__, MirrorCheckpoint.__table__]  # type: ignore[attr-defined]


def mirror_engine(url: str) -> Engine:
    return open_engine(url, TABLES)


def checkpoint(session: Session, source: str) -> MirrorCheckpoint | None:
    return session.get(MirrorCheckpoint, source)


def replace_source(session: Session, source: str, kinds: Iterable[str],
                   docs: Iterable[tuple[str, str, str]], *, read_at: datetime) -> int:
    """A full pass: the source's documents of ``kinds`` become ``docs`` (kind, id, body)."""
    kinds = list(kinds)
    for kind in kinds:
        session.exec(delete(MirrorDocument).where(col(MirrorDocument.source) == source,  # type: ignore[call-overload]
                                                  col(MirrorDocument.kind) == kind))
    count = 0
    for kind, doc_id, body in docs:
        session.merge(MirrorDocument(source=source, kind=kind, doc_id=doc_id, body=body))
        count += 1
    session.merge(MirrorCheckpoint(source=source, read_at=read_at, full_at=read_at))
    session.commit()
    return count


def apply_changes(session: Session, source: str, changes: Iterable[tuple[str, str, str | None]], *,
                  read_at: datetime) -> int:
    """A delta pass: upsert each (kind, id, body), remove those whose body is ``None``."""
    count = 0
    for kind, doc_id, body in changes:
        held = session.get(MirrorDocument, (source, kind, doc_id))
        if body is None:
            if held is not None:
                session.delete(held)
        elif held is None:
            session.add(MirrorDocument(source=source, kind=kind, doc_id=doc_id, body=body))
        else:
            held.body = body
            session.add(held)
        count += 1
    mark = session.get(MirrorCheckpoint, source)
    if mark is None:
        raise LookupError(f"{source} has never been read in full")
    mark.read_at = read_at
    session.add(mark)
    session.commit()
    return count


def documents(session: Session, source: str, kind: str) -> list[MirrorDocument]:
    return list(session.exec(select(MirrorDocument).where(MirrorDocument.source == source,
                                                          MirrorDocument.kind == kind)).all())


def document(session: Session, source: str, kind: str, doc_id: str) -> MirrorDocument | None:
    return session.get(MirrorDocument, (source, kind, doc_id))


__all__ = ["MirrorCheckpoint", "MirrorDocument", "apply_changes", "checkpoint", "document", "documents",
           "mirror_engine", "replace_source"]
