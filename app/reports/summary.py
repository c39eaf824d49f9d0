"""The monthly case summary behind cross-year trends (accepted, accepted_resolved, resolved and
化解率 by month), kept in step with the cases so a trend over years reads a few hundred
summary rows instead of millions of cases.

How it stays correct:

- ``case_month_summary`` holds, per (village, month), the §6 counts the trend
  needs, each computed with the SAME predicates as the reports (``case_predicates`` of that
  month), so a summary figure always equals the monthly report's figure.
- Any write to ``dispute_case`` records the (village, month) keys it touches in
  ``summary_dirty`` in the SAME transaction: ORM inserts/updates/deletes through a
  ``before_flush``/``after_flush`` hook (old and new village, registration month and closing
  month), Core bulk inserts executed through the session (``session.execute(insert(Case
  .__table__), rows)``: the ledger importer, the benchmark generator) through a
  ``do_orm_execute`` hook reading the rows, and Core UPDATE (of a column the summary depends
  on) or DELETE through the session with a "rebuild everything" marker.  Code writing cases on a bare ``Connection`` must call
  ``mark_summary_dirty(conn, keys)`` (or ``rebuild_summary()``) itself.
- Reading a trend first refreshes the dirty keys: recompute those rows from the live cases
  with one aggregate query per month, replace them, delete exactly the markers it read (a
  marker committed meanwhile stays for the next reader).  On PostgreSQL refreshes take a
  transaction-scoped advisory lock so two refreshes never interleave (the second one waits,
  then sees the first one's rows and no markers).  A SQLite GET request (a DEFERRED, read-only
  transaction that must not write) does not refresh: it computes the dirty keys live and
  merges them with the clean summary rows, so it is exactly as correct.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Iterable, Optional

from sqlalchemy import Index, Integer, and_, case, delete, event, func, insert, or_, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.base import NO_VALUE

from app.cases.models import Case
from app.cases.vocab import RESOLVED_OUTCOMES
from app.db import Base, is_sqlite, session, write_intent
from app.orgs.models import OrgUnit

# The summary's figures, each one predicate of ``case_predicates`` (same names).
FIGURES = ("registered", "accepted", "accepted_resolved", "closed", "resolved")
# Case columns whose change can move a case between summary rows or change a figure.
WATCHED = ("village_id", "township_id", "county_id", "registered_on", "closed_on",
           "status", "outcome")
FULL = (0, 0)  # marker meaning "rebuild everything" (a Core UPDATE/DELETE on dispute_case)
REBUILD_ABOVE = 5000  # more dirty keys than this: one full rebuild is cheaper than per-month refreshes
_LOCK_KEY = 0x51594E_53554D  # pg_advisory_xact_lock key of the summary refresh ("QYN" "SUM")


class CaseMonthSummary(Base):
    """§6 counts of one month for one village (registration-month figures registered, accepted,
    accepted_resolved; closing-month figures closed, resolved).  One row per village and month
    (not per type too): a county's ten-year trend reads villages × 120 rows through the
    (county_id, ym) index; township and county ids are the cases' own, so a summary filtered
    like the cases gives the same figures."""

    __tablename__ = "case_month_summary"
    __table_args__ = (Index("ix_case_month_summary_county_ym", "county_id", "ym"),
                      Index("ix_case_month_summary_township_ym", "township_id", "ym"))

    village_id: Mapped[int] = mapped_column(primary_key=True)
    ym: Mapped[int] = mapped_column(Integer, primary_key=True)  # year * 100 + month
    township_id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(primary_key=True)
    registered: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    accepted_resolved: Mapped[int] = mapped_column(default=0)
    closed: Mapped[int] = mapped_column(default=0)
    resolved: Mapped[int] = mapped_column(default=0)


class SummaryDirty(Base):
    """A (village, month) whose summary rows must be recomputed before the next read."""

    __tablename__ = "summary_dirty"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(Integer)
    ym: Mapped[int] = mapped_column(Integer)


def ym_of(d: Optional[date]) -> Optional[int]:
    return d.year * 100 + d.month if d else None


def _period(ym: int):
    from app.reports.queries import month_period
    return month_period(ym // 100, ym % 100)


# ---------------------------------------------------------------- marking

def mark_summary_dirty(conn, keys: Iterable[tuple[int, int]]) -> None:
    """Record (village_id, ym) keys as dirty on ``conn`` (a Connection or the Session), in the
    caller's transaction.  For case writes that bypass the session hooks."""
    rows = [{"village_id": int(v), "ym": int(m)} for v, m in sorted(set(keys))]
    if rows:
        conn.execute(insert(SummaryDirty.__table__), rows)


def keys_of_rows(rows: Iterable[dict[str, Any]]) -> set[tuple[int, int]]:
    """The (village, month) keys of plain case rows (dicts with village_id, registered_on, closed_on)."""
    keys = set()
    for row in rows:
        village = row.get("village_id")
        if village is None:
            return {FULL}
        for col in ("registered_on", "closed_on"):
            m = ym_of(row.get(col))
            if m:
                keys.add((village, m))
    return keys


def _case_keys(obj: Case, old: bool) -> set[tuple[int, int]]:
    """Keys of a case's current values, plus (``old``) its values when loaded from the database."""
    state = sa_inspect(obj)
    values: dict[str, set] = {}
    for name in ("village_id", "registered_on", "closed_on"):
        vals = {getattr(obj, name)}  # loads an expired, unchanged column
        if old and name in state.committed_state and state.committed_state[name] is not NO_VALUE:
            vals.add(state.committed_state[name])
        values[name] = vals
    keys = set()
    for village in values["village_id"]:
        if village is None:
            continue
        for d in values["registered_on"] | values["closed_on"]:
            if d is not None:
                keys.add((village, ym_of(d)))
    return keys


def _changed(obj: Case) -> bool:
    state = sa_inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in WATCHED)


def _old_values_unknown(obj: Case) -> bool:
    """A key column changed but its previous value was never loaded (expired before the change)."""
    state = sa_inspect(obj)
    return any(state.committed_state.get(name) is NO_VALUE for name in ("village_id", "registered_on", "closed_on"))


@event.listens_for(session, "before_flush")
def _collect_dirty_keys(sess, _flush_context, _instances) -> None:
    keys: set = sess.info.setdefault("summary_keys", set())
    for obj in sess.new:
        if isinstance(obj, Case):
            keys |= _case_keys(obj, old=False)
    for obj in sess.deleted:
        if isinstance(obj, Case):
            keys |= _case_keys(obj, old=True)
    for obj in sess.dirty:
        if isinstance(obj, Case) and _changed(obj):
            keys |= _case_keys(obj, old=True)
            if _old_values_unknown(obj):
                row = sess.connection().execute(
                    select(Case.village_id, Case.registered_on, Case.closed_on).where(Case.id == obj.id)).first()
                if row:
                    keys |= keys_of_rows([row._asdict()])


@event.listens_for(session, "after_flush")
def _write_dirty_keys(sess, _flush_context) -> None:
    keys = sess.info.pop("summary_keys", None)
    if keys:
        mark_summary_dirty(sess.connection(), keys)


@event.listens_for(session, "after_rollback")
def _forget_keys(sess) -> None:
    sess.info.pop("summary_keys", None)


@event.listens_for(session, "do_orm_execute")
def _mark_core_writes(state) -> None:
    """Core (or ORM bulk) INSERT/UPDATE/DELETE of cases executed through the session."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is None or getattr(table, "name", None) != Case.__tablename__:
        return
    params = state.parameters
    rows = params if isinstance(params, list) else ([params] if params else [])
    if state.is_insert and rows:
        mark_summary_dirty(state.session.connection(), keys_of_rows(rows))
        return
    if state.is_update:
        # an UPDATE setting only columns the summary ignores (version, last_activity_at, ...)
        # leaves it as it is; one setting a watched column rebuilds it
        values = getattr(state.statement, "_values", None) or {}
        names = {getattr(k, "key", None) or getattr(k, "name", None) or str(k) for k in values}
        names |= {k for row in rows for k in row}
        if names and not names & set(WATCHED):
            return
    mark_summary_dirty(state.session.connection(), [FULL])


# ---------------------------------------------------------------- computing

def _sum(pred):
    return func.coalesce(func.sum(case((pred, 1), else_=0)), 0)


def _compute_month(ym: int, villages: Optional[set[int]] = None, org: Optional[OrgUnit] = None) -> list[dict]:
    """Summary rows of month ``ym`` from the live cases, with ``case_predicates`` of that month
    (restricted to ``villages`` and/or ``org`` when given)."""
    from app.reports.queries import case_predicates, org_clause
    preds = case_predicates(_period(ym))
    group = (Case.county_id, Case.township_id, Case.village_id)
    stmt = (select(*group, *[_sum(preds[name]).label(name) for name in FIGURES])
            .where(or_(preds["registered"], preds["closed"])).group_by(*group))
    if org is not None:
        stmt = stmt.where(org_clause(org))
    out = []
    chunks = [None] if villages is None else _chunks(sorted(villages), 500)
    for chunk in chunks:
        q = stmt if chunk is None else stmt.where(Case.village_id.in_(chunk))
        for row in session.execute(q):
            d = row._asdict()
            d["ym"] = ym
            out.append(d)
    return out


def _chunks(seq: list, n: int):
    return [seq[i:i + n] for i in range(0, len(seq), n)]


def _ym_expr(column):
    if is_sqlite():
        return func.cast(func.strftime("%Y%m", column), Integer)
    return func.cast(func.to_char(column, "YYYYMM"), Integer)


def _compute_all(org: Optional[OrgUnit] = None, villages: Optional[set[int]] = None,
                 first_ym: Optional[int] = None, last_ym: Optional[int] = None) -> list[dict]:
    """Every summary row from the live cases (or those of ``org``, ``villages`` and months
    ``first_ym``..``last_ym``) in two grouped queries (by registration month and by closing
    month), whatever the number of months.  The predicates are ``case_predicates`` with the
    month made a column: "closed on or before the end of the registration month" is ``closed
    month <= registration month``; tests prove the result equals the per-month computation."""
    from app.reports.queries import org_clause
    filters = []
    if org is not None:
        filters.append(org_clause(org))
    if villages is not None:
        filters.append(Case.village_id.in_(sorted(villages)))
    start = _period(first_ym).start if first_ym else None
    end = _period(last_ym).end if last_ym else None
    reg_ym, close_ym = _ym_expr(Case.registered_on), _ym_expr(Case.closed_on)
    accepted = Case.status != "declined"
    accepted_resolved = and_(accepted, Case.outcome.in_(RESOLVED_OUTCOMES), close_ym <= reg_ym)
    closed = and_(Case.closed_on.is_not(None), Case.outcome != "declined")
    resolved = and_(closed, Case.outcome.in_(RESOLVED_OUTCOMES))
    group = (Case.county_id, Case.township_id, Case.village_id)
    rows: dict[tuple, dict] = {}

    def add(ym, county, township, village, **counts):
        key = (ym, county, township, village)
        row = rows.setdefault(key, dict(ym=ym, county_id=county, township_id=township, village_id=village,
                                        **{f: 0 for f in FIGURES}))
        for name, n in counts.items():
            row[name] += int(n)

    for r in session.execute(select(reg_ym, *group, func.count(), _sum(accepted), _sum(accepted_resolved))
                             .where(Case.registered_on.is_not(None), *filters,
                                    *([Case.registered_on >= start] if start else []),
                                    *([Case.registered_on <= end] if end else []))
                             .group_by(reg_ym, *group)):
        add(*r[:4], registered=r[4], accepted=r[5], accepted_resolved=r[6])
    for r in session.execute(select(close_ym, *group, _sum(closed), _sum(resolved))
                             .where(closed, *filters, *([Case.closed_on >= start] if start else []),
                                    *([Case.closed_on <= end] if end else []))
                             .group_by(close_ym, *group)):
        add(*r[:4], closed=r[4], resolved=r[5])
    return list(rows.values())


# ---------------------------------------------------------------- refreshing

def _can_write() -> bool:
    """False inside a SQLite GET request (its DEFERRED transaction must stay read-only)."""
    return not (is_sqlite() and not write_intent.get())


def _lock() -> None:
    if not is_sqlite():
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def _dirty_markers() -> list[tuple[int, int, int]]:
    return [tuple(r) for r in session.execute(select(SummaryDirty.id, SummaryDirty.village_id, SummaryDirty.ym))]


def _delete_markers(ids: list[int]) -> None:
    for chunk in _chunks(sorted(ids), 1000):
        session.execute(delete(SummaryDirty).where(SummaryDirty.id.in_(chunk)))


def _insert_rows(rows: list[dict]) -> None:
    rows = [r for r in rows if any(r[f] for f in FIGURES)]
    for chunk in _chunks(rows, 5000):
        session.execute(insert(CaseMonthSummary.__table__), chunk)


def rebuild_summary() -> int:
    """Recompute the whole summary from the cases (``flask report rebuild-summary``, after a
    bulk load); returns the number of summary rows.  The caller commits."""
    _lock()
    markers = _dirty_markers()
    rows = _compute_all()
    session.execute(delete(CaseMonthSummary))
    _insert_rows(rows)
    _delete_markers([m[0] for m in markers])
    return session.scalar(select(func.count()).select_from(CaseMonthSummary)) or 0


def refresh_summary() -> int:
    """Recompute the summary rows of every dirty (village, month) and drop those markers, in the
    current transaction; returns the number of keys refreshed (0: nothing was dirty)."""
    if not session.scalar(select(SummaryDirty.id).limit(1)):
        if session.scalar(select(CaseMonthSummary.ym).limit(1)) is None and \
                session.scalar(select(Case.id).limit(1)) is not None:
            # cases but no summary at all: the migration that created the table ran on a
            # database with cases, so build it once
            rebuild_summary()
            return 1
        return 0
    _lock()
    markers = _dirty_markers()
    keys = {(v, m) for _id, v, m in markers}
    if not keys:
        return 0
    if FULL in keys or len(keys) > REBUILD_ABOVE:
        rebuild_summary()
        return len(keys)
    by_month: dict[int, set[int]] = defaultdict(set)
    for v, m in keys:
        by_month[m].add(v)
    for ym, villages in sorted(by_month.items()):
        rows = _compute_month(ym, villages)
        for chunk in _chunks(sorted(villages), 500):
            session.execute(delete(CaseMonthSummary).where(CaseMonthSummary.ym == ym,
                                                           CaseMonthSummary.village_id.in_(chunk)))
        _insert_rows(rows)
    _delete_markers([m[0] for m in markers])
    return len(keys)


# ---------------------------------------------------------------- reading

def monthly_counts(org: OrgUnit, first_ym: int, last_ym: int) -> dict[int, dict[str, int]]:
    """The summary figures of ``org`` (with everything under it) by month, ``first_ym`` to
    ``last_ym`` inclusive; always equal to the live figures (see the module docstring)."""
    from app.reports.queries import org_clause
    S = CaseMonthSummary
    months = _month_range(first_ym, last_ym)
    out: dict[int, dict[str, int]] = {ym: {f: 0 for f in FIGURES} for ym in months}
    pending: set[tuple[int, int]] = set()
    if _can_write():
        refresh_summary()
    else:
        pending = {(v, m) for _id, v, m in _dirty_markers() if (v, m) == FULL or first_ym <= m <= last_ym}
        if session.scalar(select(CaseMonthSummary.ym).limit(1)) is None:
            pending = {FULL}  # never built (or nothing to build): the live figures are the answer
    if FULL in pending:
        for row in _compute_all(org=org, first_ym=first_ym, last_ym=last_ym):
            _add(out[row["ym"]], row)
        return out
    stmt = (select(S.ym, *[func.sum(getattr(S, f)) for f in FIGURES])
            .where(org_clause(org, S), S.ym.between(first_ym, last_ym)).group_by(S.ym))
    if pending:
        stmt = stmt.where(~select(SummaryDirty.id).where(SummaryDirty.village_id == S.village_id,
                                                         SummaryDirty.ym == S.ym).exists())
    for ym, *counts in session.execute(stmt):
        _add(out[ym], dict(zip(FIGURES, counts)))
    if pending:
        # the dirty keys straight from the cases, in two grouped queries whatever their number
        for row in _compute_all(org=org, villages={v for v, _ in pending}, first_ym=min(m for _, m in pending),
                                last_ym=max(m for _, m in pending)):
            if (row["village_id"], row["ym"]) in pending:
                _add(out[row["ym"]], row)
    return out


def _add(target: dict[str, int], row: dict) -> None:
    for f in FIGURES:
        target[f] += int(row[f] or 0)


def _month_range(first_ym: int, last_ym: int) -> list[int]:
    out, y, m = [], first_ym // 100, first_ym % 100
    while y * 100 + m <= last_ym:
        out.append(y * 100 + m)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def live_monthly_counts(org: OrgUnit, first_ym: int, last_ym: int) -> dict[int, dict[str, int]]:
    """The same figures straight from the monthly report's query (``case_counts``), one query
    per month: the reference the summary is tested against."""
    from app.reports.queries import case_counts
    return {ym: {f: c[f] for f in FIGURES}
            for ym in _month_range(first_ym, last_ym)
            for c in [case_counts(org, _period(ym))]}
