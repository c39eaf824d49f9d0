"""Case numbers (一案一码): ``<prefix>-<year>-<6-digit sequence>``, e.g. ``QH-2026-000123``.

The counter row is incremented with an UPDATE inside the registering transaction: on
PostgreSQL the row lock serialises concurrent registrations; on SQLite every write
transaction is ``BEGIN IMMEDIATE``.  A number is never reused: a rolled-back registration
rolls its increment back with it, so no number was ever shown for it.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import update

from app.cases.models import CaseNumberCounter
from app.db import session
from app.settings.services import get_setting


def case_number_prefix() -> str:
    return get_setting("county.prefix") or current_app.config.get("CASE_NUMBER_PREFIX", "QH")


def next_case_number(year: int, prefix: str | None = None) -> str:
    """Allocate the next number of ``year``; call inside the transaction that saves the case."""
    prefix = prefix or case_number_prefix()
    stmt = (update(CaseNumberCounter)
            .where(CaseNumberCounter.prefix == prefix, CaseNumberCounter.year == year)
            .values(last=CaseNumberCounter.last + 1)
            .returning(CaseNumberCounter.last))
    last = session.execute(stmt).scalar()
    if last is None:
        # First number of the year.  Another transaction may insert the same row at the
        # same time; the unique constraint makes one of them fail and retry via a savepoint.
        try:
            with session.begin_nested():
                session.add(CaseNumberCounter(prefix=prefix, year=year, last=1))
            last = 1
        except Exception:
            last = session.execute(stmt).scalar()
    return f"{prefix}-{year}-{last:06d}"


def allocate_many(year: int, count: int, prefix: str | None = None) -> list[str]:
    """Allocate ``count`` consecutive numbers of ``year`` at once (ledger import, generators)."""
    if count <= 0:
        return []
    prefix = prefix or case_number_prefix()
    first = int(next_case_number(year, prefix).rsplit("-", 1)[1])
    if count > 1:
        session.execute(update(CaseNumberCounter)
                        .where(CaseNumberCounter.prefix == prefix, CaseNumberCounter.year == year)
                        .values(last=CaseNumberCounter.last + (count - 1)))
    return [f"{prefix}-{year}-{n:06d}" for n in range(first, first + count)]
