"""The case figure summary: every additive §6 case figure, pre-counted per village, registration
month and closing month, so a month's or a year's report (and a trend over years) sums a few
thousand summary rows instead of reading every case of the period.

What it holds.  One row per (village, registration month ``reg_ym``, closing month ``close_ym``;
0 when not closed) with the count of the row's cases matching each figure of ``FIGURES``,
each figure being the SAME predicate as the live report's (``case_predicates`` over all time,
the period applied here through the two months):

- registration-side figures (``REG_FIGURES``: registered, accepted, high-risk accepted and
  signed off within 24 h) count for a whole-month period P when ``reg_ym`` is in P;
- the cohort ``accepted_resolved`` (accepted in P and resolved by the end of P) when ``reg_ym``
  is in P and ``0 < close_ym <= ``the last month of P;
- closing-side figures (``CLOSE_FIGURES``: closed, resolved, mediated, timely, level counts,
  handed up, follow-ups, satisfaction, performance) when ``close_ym`` is in P;
- and, not of any period, the row's cases by their status now (``STATUS_COLUMNS``): the
  工作台's counts by status sum every row of a unit (``summary_status_counts``).

What it does not hold (``app.reports.queries.report_counts`` counts them live): the backlog and
its ageing (day-precise at the end of P, read through the never-closed / closed-after ranges of
the closed index), the 民转刑 flags (partial indexes), the by-type and by-source breakdowns and
any period that does not start on the 1st (a partial last month is added live, see there).

How it stays correct:

- A row depends only on the cases of its village registered in its ``reg_ym``, so the dirty
  unit is a (village, registration month) key.  Any write to ``dispute_case`` records the keys
  it touches (old and new village × old and new registration month) in ``summary_dirty`` in
  the SAME transaction: ORM inserts/updates/deletes through ``before_flush``/``after_flush``
  hooks, Core bulk inserts through the session (the ledger importer, the benchmark generator)
  through a ``do_orm_execute`` hook reading the rows, and Core UPDATE (of a watched column) or
  DELETE through the session with a "rebuild everything" marker.  Code writing cases on a bare
  ``Connection`` must call ``mark_summary_dirty(conn, keys)`` (or ``rebuild_summary()``).
- Before the transaction commits (``before_commit``) the keys it marked are recomputed from
  the live cases and their markers dropped, so the summary committed with a case change is
  already right (a "rebuild everything" marker rebuilds at that commit).  A session may set
  ``session.info["summary_defer"] = True`` (bulk loaders that rebuild once at the end).
- A reader still finds markers when a write bypassed the session or deferred: it refreshes
  them first when it may write; a SQLite GET request (a DEFERRED, read-only transaction that
  must not write) instead leaves out the dirty keys' summary rows and adds their figures
  computed live, so it is exactly as correct.
- On PostgreSQL every refresh takes one transaction-scoped advisory lock, held until its
  commit, so two refreshes never interleave (the second waits, then reads the first one's
  committed cases).  Markers of the keys being refreshed are deleted BEFORE the recount, so a
  marker committed meanwhile by a bare-connection writer survives for the next reader.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Iterable, Optional

from sqlalchemy import (Index, Integer, and_, case, delete, event, func, insert, literal_column, select, text,
                        tuple_, union_all)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.base import NO_VALUE

from app.cases.models import Case
from app.cases.vocab import STATUSES
from app.db import Base, is_sqlite, session, write_intent
from app.orgs.models import OrgUnit

REG_FIGURES = ("registered", "accepted", "high_risk_accepted", "high_risk_signed_off_24h")
COHORT_FIGURES = ("accepted_resolved",)
CLOSE_FIGURES = ("closed", "resolved", "mediated", "mediation_success", "timely_closed", "resolved_village",
                 "resolved_township_or_below", "handed_up", "followed_up", "rated", "satisfied",
                 "performance_recorded", "performed")
# The summary's figures, each one predicate of ``case_predicates`` (same names), and
# ``accepted_high``: accepted and graded 高 now (the backlog's 期末未办结高风险数 of the rows
# still open at the end of a month).
FIGURES = REG_FIGURES + COHORT_FIGURES + CLOSE_FIGURES + ("accepted_high",)
# The cases of a row by their status now, one column each (``status_pending_triage`` …): the
# 工作台's counts by status (``summary_status_counts``), which otherwise count a county's ten
# years of cases on every request after a write (158 ms at 1,000,000 cases on PostgreSQL).
# Not §6 figures: no period applies to them (all of a row's cases, whatever its months).
STATUS_COLUMNS = {code: f"status_{code}" for code in STATUSES}
# Everything a summary row holds beside its key.
ROW_COUNTS = FIGURES + tuple(STATUS_COLUMNS.values())
# The figures of a trend month (``monthly_counts``).
TREND_FIGURES = ("registered", "accepted", "accepted_resolved", "closed", "resolved")
# Case columns whose change can move a case between summary rows or change a figure.
WATCHED = ("village_id", "township_id", "county_id", "registered_on", "closed_on", "status", "outcome",
           "deadline_on", "handling_level", "followed_up_on", "satisfaction", "performance", "high_risk_at",
           "signed_off_at", "risk_level")
FULL = (0, 0)  # marker meaning "rebuild everything" (a Core UPDATE/DELETE on dispute_case)
REBUILD_ABOVE = 20000  # more dirty keys than this: one full rebuild is cheaper than per-month refreshes
_LOCK_KEY = 0x51594E_53554D  # pg_advisory_xact_lock key of the summary refresh ("QYN" "SUM")
_ALL_TIME = (date(1900, 1, 1), date(9999, 12, 31))


class CaseFigureSummary(Base):
    """The additive §6 figures of the cases of one village registered in ``reg_ym`` and closed
    in ``close_ym`` (0: not closed).  Township and county ids are the cases' own (part of the key,
    so a summary filtered like the cases gives the same figures); the four indexes are the
    ranges a county or township report reads (registered in P; closed in P).  The closing-month
    ones also carry what the backlog sums (``summary_backlog``: the rows not closed by the end
    of P, by registration month), so that read never touches the table."""

    __tablename__ = "case_figure_summary"
    __table_args__ = (Index("ix_case_figure_summary_county_reg", "county_id", "reg_ym"),
                      Index("ix_case_figure_summary_county_close", "county_id", "close_ym", "reg_ym", "accepted",
                            "accepted_high"),
                      Index("ix_case_figure_summary_township_reg", "township_id", "reg_ym"),
                      Index("ix_case_figure_summary_township_close", "township_id", "close_ym", "reg_ym", "accepted",
                            "accepted_high"))

    village_id: Mapped[int] = mapped_column(primary_key=True)
    reg_ym: Mapped[int] = mapped_column(Integer, primary_key=True)  # year * 100 + month
    close_ym: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: not closed
    township_id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(primary_key=True)
    registered: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    high_risk_accepted: Mapped[int] = mapped_column(default=0)
    high_risk_signed_off_24h: Mapped[int] = mapped_column(default=0)
    accepted_resolved: Mapped[int] = mapped_column(default=0)  # accepted and resolved, at close_ym
    closed: Mapped[int] = mapped_column(default=0)
    resolved: Mapped[int] = mapped_column(default=0)
    mediated: Mapped[int] = mapped_column(default=0)
    mediation_success: Mapped[int] = mapped_column(default=0)
    timely_closed: Mapped[int] = mapped_column(default=0)
    resolved_village: Mapped[int] = mapped_column(default=0)
    resolved_township_or_below: Mapped[int] = mapped_column(default=0)
    handed_up: Mapped[int] = mapped_column(default=0)
    followed_up: Mapped[int] = mapped_column(default=0)
    rated: Mapped[int] = mapped_column(default=0)
    satisfied: Mapped[int] = mapped_column(default=0)
    performance_recorded: Mapped[int] = mapped_column(default=0)
    performed: Mapped[int] = mapped_column(default=0)
    accepted_high: Mapped[int] = mapped_column(default=0)  # accepted, risk_level 高 now
    # by status now (``STATUS_COLUMNS``)
    status_pending_triage: Mapped[int] = mapped_column(default=0)
    status_in_mediation: Mapped[int] = mapped_column(default=0)
    status_escalated: Mapped[int] = mapped_column(default=0)
    status_transferred: Mapped[int] = mapped_column(default=0)
    status_closed: Mapped[int] = mapped_column(default=0)
    status_archived: Mapped[int] = mapped_column(default=0)
    status_declined: Mapped[int] = mapped_column(default=0)


class SummaryDirty(Base):
    """A (village, registration month) whose summary rows must be recomputed before the next read."""

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
    """Record (village_id, registration ym) keys as dirty on ``conn`` (a Connection or the
    Session), in the caller's transaction.  For case writes that bypass the session hooks."""
    rows = [{"village_id": int(v), "ym": int(m)} for v, m in sorted(set(keys))]
    if rows:
        conn.execute(insert(SummaryDirty.__table__), rows)


def _remember(sess, keys: set) -> None:
    """Keys this session's transaction marked: refreshed before it commits."""
    sess.info.setdefault("summary_tx_keys", set()).update(keys)


def keys_of_rows(rows: Iterable[dict[str, Any]]) -> set[tuple[int, int]]:
    """The (village, registration month) keys of plain case rows (dicts with village_id, registered_on)."""
    keys = set()
    for row in rows:
        village, registered = row.get("village_id"), row.get("registered_on")
        if village is None or registered is None:
            return {FULL}
        keys.add((village, ym_of(registered)))
    return keys


def _case_keys(obj: Case, old: bool) -> set[tuple[int, int]]:
    """Keys of a case's current values, plus (``old``) its values when loaded from the database."""
    state = sa_inspect(obj)
    values: dict[str, set] = {}
    for name in ("village_id", "registered_on"):
        vals = {getattr(obj, name)}  # loads an expired, unchanged column
        if old and name in state.committed_state and state.committed_state[name] is not NO_VALUE:
            vals.add(state.committed_state[name])
        values[name] = vals
    return {(village, ym_of(d)) for village in values["village_id"] if village is not None
            for d in values["registered_on"] if d is not None}


def _changed(obj: Case) -> bool:
    state = sa_inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in WATCHED)


def _old_values_unknown(obj: Case) -> bool:
    """A key column changed but its previous value was never loaded (expired before the change)."""
    state = sa_inspect(obj)
    return any(state.committed_state.get(name) is NO_VALUE for name in ("village_id", "registered_on"))


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
                    select(Case.village_id, Case.registered_on).where(Case.id == obj.id)).first()
                if row:
                    keys |= keys_of_rows([row._asdict()])


@event.listens_for(session, "after_flush")
def _write_dirty_keys(sess, _flush_context) -> None:
    keys = sess.info.pop("summary_keys", None)
    if keys:
        mark_summary_dirty(sess.connection(), keys)
        _remember(sess, keys)
        sess.info.pop("summary_state", None)


@event.listens_for(session, "after_rollback")
def _forget_keys(sess) -> None:
    sess.info.pop("summary_keys", None)
    sess.info.pop("summary_tx_keys", None)
    sess.info.pop("summary_state", None)


@event.listens_for(session, "after_commit")
def _forget_state(sess) -> None:
    sess.info.pop("summary_state", None)


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
        keys = keys_of_rows(rows)
    else:
        if state.is_update:
            # an UPDATE setting only columns the summary ignores (version, last_activity_at, ...)
            # leaves it as it is; one setting a watched column rebuilds it
            values = getattr(state.statement, "_values", None) or {}
            names = {getattr(k, "key", None) or getattr(k, "name", None) or str(k) for k in values}
            names |= {k for row in rows for k in row}
            if names and not names & set(WATCHED):
                return
        keys = {FULL}
    mark_summary_dirty(state.session.connection(), keys)
    _remember(state.session, keys)
    state.session.info.pop("summary_state", None)


@event.listens_for(session, "before_commit")
def _refresh_before_commit(sess) -> None:
    """Recompute the keys this transaction marked, so it commits a summary already in step."""
    sess.flush()  # before_commit runs before the final flush: collect its keys first
    keys = sess.info.pop("summary_tx_keys", None)
    if not keys or sess.info.get("summary_defer"):
        return
    if FULL in keys or len(keys) > REBUILD_ABOVE or _never_built():
        rebuild_summary()
    else:
        _refresh_keys(keys)


# ---------------------------------------------------------------- computing

def _sum(pred):
    return func.coalesce(func.sum(case((pred, 1), else_=0)), 0)


def _ym_expr(column):
    """year * 100 + month of a date column (the format a literal, so GROUP BY matches it on PostgreSQL)."""
    if is_sqlite():
        return func.cast(func.strftime(literal_column("'%Y%m'"), column), Integer)
    return func.cast(func.to_char(column, literal_column("'YYYYMM'")), Integer)


def _compute_rows(filters: list) -> list[dict]:
    """Summary rows of the cases matching ``filters``, straight from ``dispute_case``: one
    grouped query, each figure ``case_predicates`` over all time."""
    from app.reports.queries import Period, case_predicates
    preds = dict(case_predicates(Period(*_ALL_TIME)))
    preds["accepted_high"] = and_(preds["accepted"], Case.risk_level == "high")
    preds.update({column: Case.status == code for code, column in STATUS_COLUMNS.items()})
    reg_ym = _ym_expr(Case.registered_on)
    close_ym = case((Case.closed_on.is_(None), literal_column("0")), else_=_ym_expr(Case.closed_on))
    group = (Case.county_id, Case.township_id, Case.village_id, reg_ym, close_ym)
    stmt = (select(Case.county_id, Case.township_id, Case.village_id, reg_ym.label("reg_ym"),
                   close_ym.label("close_ym"), *[_sum(preds[name]).label(name) for name in ROW_COUNTS])
            .where(*filters).group_by(*group))
    return [row._asdict() for row in session.execute(stmt)]


def _compute_keys(keys: set[tuple[int, int]], org: Optional[OrgUnit] = None) -> list[dict]:
    """Summary rows of (village, registration month) ``keys`` from the live cases: one query per
    registration month (villages in chunks), through the (village_id, registered_on) index."""
    from app.reports.queries import org_clause
    by_month: dict[int, set[int]] = defaultdict(set)
    for v, m in keys:
        by_month[m].add(v)
    out = []
    for ym, villages in sorted(by_month.items()):
        p = _period(ym)
        for chunk in _chunks(sorted(villages), 500):
            filters = [Case.village_id.in_(chunk), Case.registered_on.between(p.start, p.end)]
            if org is not None:
                filters.append(org_clause(org))
            out += _compute_rows(filters)
    return out


def _chunks(seq: list, n: int):
    return [seq[i:i + n] for i in range(0, len(seq), n)]


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
    rows = [r for r in rows if any(r[f] for f in ROW_COUNTS)]
    for chunk in _chunks(rows, 5000):
        session.execute(insert(CaseFigureSummary.__table__), chunk)


def rebuild_summary() -> int:
    """Recompute the whole summary from the cases (``flask report rebuild-summary``, after a
    bulk load); returns the number of summary rows.  The caller commits."""
    _lock()
    markers = _dirty_markers()
    session.execute(delete(CaseFigureSummary))
    _insert_rows(_compute_rows([]))
    _delete_markers([m[0] for m in markers])
    session.info.pop("summary_tx_keys", None)
    session.info.pop("summary_state", None)
    from app.reports.cache import bump_all
    bump_all()  # after a rebuild (e.g. a bulk load beside the session) no cached report stands
    return session.scalar(select(func.count()).select_from(CaseFigureSummary)) or 0


def _refresh_keys(keys: set[tuple[int, int]]) -> None:
    """Recompute the summary rows of ``keys`` and drop every marker of those keys (deleted
    before the recount: one committed meanwhile by another writer stays)."""
    _lock()
    by_month: dict[int, set[int]] = defaultdict(set)
    for v, m in keys:
        by_month[m].add(v)
    for ym, villages in sorted(by_month.items()):
        for chunk in _chunks(sorted(villages), 500):
            session.execute(delete(SummaryDirty).where(SummaryDirty.ym == ym, SummaryDirty.village_id.in_(chunk)))
            session.execute(delete(CaseFigureSummary).where(CaseFigureSummary.reg_ym == ym,
                                                            CaseFigureSummary.village_id.in_(chunk)))
    _insert_rows(_compute_keys(keys))


def refresh_summary() -> int:
    """Recompute the summary rows of every dirty key and drop those markers, in the current
    transaction; returns the number of keys refreshed (0: nothing was dirty)."""
    if _never_built():
        # cases but no summary at all (the migration that created the table ran on a database
        # with cases): build it once, whatever is marked
        rebuild_summary()
        return 1
    if not session.scalar(select(SummaryDirty.id).limit(1)):
        return 0
    _lock()
    markers = _dirty_markers()
    keys = {(v, m) for _id, v, m in markers}
    if not keys:
        return 0
    if FULL in keys or len(keys) > REBUILD_ABOVE:
        rebuild_summary()
        return len(keys)
    _refresh_keys(keys)
    return len(keys)


def _never_built() -> bool:
    return session.scalar(select(CaseFigureSummary.reg_ym).limit(1)) is None and \
        session.scalar(select(Case.id).limit(1)) is not None


# ---------------------------------------------------------------- reading

def _summary_state() -> tuple[list[tuple[int, int]], bool]:
    """(dirty keys, never built) as this transaction's readers see the summary, checked once
    per transaction: a transaction that may write refreshes first (then nothing is dirty);
    a read-only one lists the markers.  Forgotten at commit, rollback and whenever this
    session marks keys, so a read after this session's own writes looks again."""
    can_write = _can_write()
    cached = session.info.get("summary_state")
    if cached is not None and cached[0] == can_write:
        return cached[1]
    if can_write:
        refresh_summary()
        state: tuple[list[tuple[int, int]], bool] = ([], False)
    else:
        state = ([(v, m) for _id, v, m in _dirty_markers()], _never_built())
    session.info["summary_state"] = (can_write, state)
    return state


class _Reader:
    """The summary as one report reads it: refreshed first when the transaction may write;
    otherwise the pending (dirty) keys' rows are left out and their live rows kept here, so
    every figure is the clean rows' SQL sum plus the same sum over ``live`` in Python.  Only
    months up to ``last_ym`` matter: a case registered later cannot count in a figure of them
    (None: every month, for counts that are not of a period)."""

    def __init__(self, org: OrgUnit, last_ym: Optional[int]):
        from app.reports.queries import org_clause
        self.scope = org_clause(org, CaseFigureSummary)
        self.everything_live = False
        self.live: list[dict] = []
        markers, never_built = _summary_state()
        self.pending = {(v, m) for v, m in markers if (v, m) == FULL or last_ym is None or m <= last_ym}
        if FULL in self.pending or never_built:
            # never built, or rebuilt only at the next write: the live figures are the answer
            self.everything_live = True
            self.live = _compute_rows([org_clause(org)] + (
                [] if last_ym is None else [Case.registered_on <= _period(last_ym).end]))
            self.pending = set()
        elif self.pending:
            self.live = _compute_keys(self.pending, org)

    def clean(self, stmt):
        """``stmt`` over the summary without the rows of pending keys."""
        S = CaseFigureSummary
        if self.everything_live:
            return stmt.where(literal_column("1") == 0)
        if self.pending:
            stmt = stmt.where(tuple_(S.village_id, S.reg_ym).not_in(sorted(self.pending)))
        return stmt.where(self.scope)


def _live_sum(rows: list[dict], names: Iterable[str], keep) -> dict[str, int]:
    out = {n: 0 for n in names}
    for r in rows:
        if keep(r):
            for n in out:
                out[n] += int(r[n] or 0)
    return out


def summary_counts(org: OrgUnit, first_ym: int, last_ym: int) -> dict[str, int]:
    """The summary's figures (``FIGURES``) of ``org`` for the whole months ``first_ym`` ..
    ``last_ym``: equal to ``case_counts`` of that period (tests prove it)."""
    S = CaseFigureSummary
    reader = _Reader(org, last_ym)
    cohort = and_(S.close_ym > 0, S.close_ym <= last_ym)
    reg = session.execute(reader.clean(
        select(*[func.coalesce(func.sum(getattr(S, f)), 0) for f in REG_FIGURES],
               func.coalesce(func.sum(case((cohort, S.accepted_resolved), else_=0)), 0))
        .where(S.reg_ym.between(first_ym, last_ym)))).one()
    closed = session.execute(reader.clean(
        select(*[func.coalesce(func.sum(getattr(S, f)), 0) for f in CLOSE_FIGURES])
        .where(S.close_ym.between(first_ym, last_ym)))).one()
    out = dict(zip(REG_FIGURES + COHORT_FIGURES, map(int, reg)))
    out.update(zip(CLOSE_FIGURES, map(int, closed)))
    if reader.live:
        in_reg = lambda r: first_ym <= r["reg_ym"] <= last_ym  # noqa: E731
        for name, n in _live_sum(reader.live, REG_FIGURES, in_reg).items():
            out[name] += n
        out["accepted_resolved"] += _live_sum(reader.live, COHORT_FIGURES,
                                              lambda r: in_reg(r) and 0 < r["close_ym"] <= last_ym)["accepted_resolved"]
        for name, n in _live_sum(reader.live, CLOSE_FIGURES,
                                 lambda r: first_ym <= r["close_ym"] <= last_ym).items():
            out[name] += n
    return out


def summary_by_township(org: OrgUnit, first_ym: int, last_ym: int) -> dict[int, tuple[int, int]]:
    """Accepted and accepted_resolved of each township of county ``org`` for the whole months
    ``first_ym`` .. ``last_ym`` (township id → (accepted, accepted_resolved))."""
    S = CaseFigureSummary
    reader = _Reader(org, last_ym)
    cohort = and_(S.close_ym > 0, S.close_ym <= last_ym)
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for tid, a, r in session.execute(reader.clean(
            select(S.township_id, func.sum(S.accepted), func.sum(case((cohort, S.accepted_resolved), else_=0)))
            .where(S.reg_ym.between(first_ym, last_ym)).group_by(S.township_id))):
        out[tid][0] += int(a or 0)
        out[tid][1] += int(r or 0)
    for row in reader.live:
        if first_ym <= row["reg_ym"] <= last_ym:
            out[row["township_id"]][0] += int(row["accepted"])
            if 0 < row["close_ym"] <= last_ym:
                out[row["township_id"]][1] += int(row["accepted_resolved"])
    return {tid: (a, r) for tid, (a, r) in out.items()}


def summary_backlog(org: OrgUnit, last_ym: int) -> dict[int, tuple[int, int]]:
    """The backlog at the end of month ``last_ym`` by registration month: reg_ym → (accepted
    cases not closed by then, of which graded 高), read from the rows still open then
    (``close_ym`` 0 or after ``last_ym``: the closed-month index, not the history)."""
    S = CaseFigureSummary
    reader = _Reader(org, last_ym)
    # The two ranges of the closing-month index (never closed; closed after the month) read
    # apart and added: as one OR, PostgreSQL ORs two bitmaps and fetches every row from the
    # table (18 ms at 1,000,000 cases, three times per monthly report); apart, each is an
    # index-only range (6 ms), the index carrying the summed columns.
    still_open = union_all(*(reader.clean(select(S.reg_ym, S.accepted, S.accepted_high)
                                          .where(closed, S.reg_ym <= last_ym))
                             for closed in (S.close_ym == 0, S.close_ym > last_ym))).subquery()
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for ym, n, high in session.execute(
            select(still_open.c.reg_ym, func.sum(still_open.c.accepted), func.sum(still_open.c.accepted_high))
            .group_by(still_open.c.reg_ym)):
        out[ym][0] += int(n or 0)
        out[ym][1] += int(high or 0)
    for row in reader.live:
        if row["reg_ym"] <= last_ym and (row["close_ym"] == 0 or row["close_ym"] > last_ym):
            out[row["reg_ym"]][0] += int(row["accepted"])
            out[row["reg_ym"]][1] += int(row["accepted_high"])
    return {ym: (n, h) for ym, (n, h) in out.items()}


def summary_status_counts(org: OrgUnit) -> dict[str, int]:
    """``org``'s cases by status now (every status of ``STATUSES``), summed over its summary
    rows: a county's ~70,000 rows instead of its 1,000,000 cases.  Equal to counting the cases
    (tests prove it), dirty keys included (``_Reader``)."""
    S = CaseFigureSummary
    reader = _Reader(org, None)
    columns = list(STATUS_COLUMNS.values())
    row = session.execute(reader.clean(select(*[func.coalesce(func.sum(getattr(S, c)), 0) for c in columns]))).one()
    counts = dict(zip(columns, map(int, row)))
    for name, n in _live_sum(reader.live, columns, lambda r: True).items():
        counts[name] += n
    return {code: counts[column] for code, column in STATUS_COLUMNS.items()}


def monthly_counts(org: OrgUnit, first_ym: int, last_ym: int) -> dict[int, dict[str, int]]:
    """The trend figures (``TREND_FIGURES``) of ``org`` by month, ``first_ym`` to ``last_ym``
    inclusive, each month's figures equal to its monthly report's: registered, accepted and
    accepted_resolved (resolved by the end of the registration month) by registration month;
    closed and resolved by closing month."""
    S = CaseFigureSummary
    months = _month_range(first_ym, last_ym)
    out: dict[int, dict[str, int]] = {ym: {f: 0 for f in TREND_FIGURES} for ym in months}
    reader = _Reader(org, last_ym)
    cohort = and_(S.close_ym > 0, S.close_ym <= S.reg_ym)
    for ym, reg, acc, res in session.execute(reader.clean(
            select(S.reg_ym, func.sum(S.registered), func.sum(S.accepted),
                   func.sum(case((cohort, S.accepted_resolved), else_=0)))
            .where(S.reg_ym.between(first_ym, last_ym)).group_by(S.reg_ym))):
        out[ym].update(registered=int(reg or 0), accepted=int(acc or 0), accepted_resolved=int(res or 0))
    for ym, closed, resolved in session.execute(reader.clean(
            select(S.close_ym, func.sum(S.closed), func.sum(S.resolved))
            .where(S.close_ym.between(first_ym, last_ym)).group_by(S.close_ym))):
        out[ym].update(closed=int(closed or 0), resolved=int(resolved or 0))
    for row in reader.live:
        if first_ym <= row["reg_ym"] <= last_ym:
            target = out[row["reg_ym"]]
            target["registered"] += int(row["registered"])
            target["accepted"] += int(row["accepted"])
            if 0 < row["close_ym"] <= row["reg_ym"]:
                target["accepted_resolved"] += int(row["accepted_resolved"])
        if first_ym <= row["close_ym"] <= last_ym:
            out[row["close_ym"]]["closed"] += int(row["closed"])
            out[row["close_ym"]]["resolved"] += int(row["resolved"])
    return out


def _month_range(first_ym: int, last_ym: int) -> list[int]:
    out, y, m = [], first_ym // 100, first_ym % 100
    while y * 100 + m <= last_ym:
        out.append(y * 100 + m)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def live_monthly_counts(org: OrgUnit, first_ym: int, last_ym: int) -> dict[int, dict[str, int]]:
    """The same figures straight from the monthly report's live query (``case_counts``), one
    query per month: the reference the summary is tested against."""
    from app.reports.queries import case_counts
    return {ym: {f: c[f] for f in TREND_FIGURES}
            for ym in _month_range(first_ym, last_ym)
            for c in [case_counts(org, _period(ym))]}
