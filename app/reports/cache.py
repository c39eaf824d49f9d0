"""Report figures cached per process, keyed by the state of the data they were computed from.

Why.  A report's figures are a pure function of (org unit, period) and the rows of a few
tables; the same monthly report is opened again and again between two writes (leaders,
township staff, the county's screens, the API).  Computing it costs tens of milliseconds at a
million cases; serving it again costs one index lookup.

How it stays correct.  ``data_generation`` holds a counter per county (``scope`` = the county's
org id) and a global one (``scope`` 0).  Every transaction that writes a row of a table the
figures read (``REPORT_TABLES``) bumps, in the SAME transaction just before it commits, the
counter of each county it touched (a row's current and previous ``county_id``) or, for a row
with no county (a county's own org unit, a dispute type, a source, a setting) or a Core
UPDATE/DELETE, the global counter.  A cached result is keyed by (what, org, period, the
global and the org's county counters with their nonces): any committed write that could change
it changes the key, so a stale entry is never found again (it ages out of the LRU).

- The counters are read BEFORE computing, so a result stored under counter N was computed
  from data at least as new as N (under PostgreSQL's READ COMMITTED a write committed in
  between makes the result newer, never older; a SQLite GET reads one snapshot).
- A transaction with its own uncommitted writes to those tables bypasses the cache (its
  counters are bumped only at commit).
- Each counter row carries a random ``nonce`` chosen when it is created, so two databases (a
  test database recreated, a restored backup) never share keys.  Without a global row yet
  (a database no app write has touched) nothing is cached.
- The tests run with the cache on, so every report test also checks the invalidation; a
  test (``tests/test_report_cache.py``) records the SQL of every report and fails if it reads
  a table outside ``REPORT_TABLES``.
- Writes that bypass the session (psql, a bare ``Connection``) are not seen, exactly as for
  the figure summary (``app.reports.summary``): after such a write run ``flask report
  rebuild-summary``, which also bumps the global counter.

``REPORT_CACHE_SIZE`` (config; 0 turns the cache off) bounds the entries per process.
"""
from __future__ import annotations

import copy
import secrets
from typing import Callable, Iterable, Optional, TypeVar

from flask import current_app, has_app_context
from sqlalchemy import BigInteger, Integer, event, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.base import NO_VALUE

from app.db import Base, is_sqlite, session
from app.lru import LRU
from app.reports import summary as _summary  # noqa: F401  (its before_commit registers first)

T = TypeVar("T")

# The tables whose writes bump the counters: those a report figure reads (tests/test_report_cache.py
# checks every report's SQL against it) and the reference lists cached under the global counter
# (``risk_factor``: the case page's 定级 checklist, ``app.workflow.panel.factor_choices``).  The
# figure summary's own tables are left out: they change only with dispute_case (whose writes bump)
# or in ``rebuild_summary`` (which bumps the global counter itself).
REPORT_TABLES = frozenset({"dispute_case", "reception_entry", "sweep", "org_unit", "dispute_type", "case_source",
                           "setting", "risk_factor"})
GLOBAL = 0
DEFAULT_SIZE = 512
GLOBAL_NOTED = "generation_global"  # session.info: the global counter read with the user (note_counters)


class DataGeneration(Base):
    """A write counter: one row per county (``scope`` = its org id) and the global one (0)."""

    __tablename__ = "data_generation"

    scope: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    nonce: Mapped[int] = mapped_column(BigInteger)


@event.listens_for(DataGeneration.__table__, "after_create")
def _create_global_row(table, connection, **_kw) -> None:
    """``create_all`` (tests, a new database) starts with the global row, as the migration does."""
    connection.execute(table.insert().values(scope=GLOBAL, value=1, nonce=secrets.randbits(62)))


# ---------------------------------------------------------------- tracking writes


def _scopes(sess) -> set[int]:
    return sess.info.setdefault("generation_scopes", set())


def _object_scopes(obj, new: bool = False) -> Optional[set[int]]:
    """Counters a flushed ORM object's write bumps (None: not a report table).  ``new``: an
    inserted object (its committed state holds "no previous value" markers, not a county)."""
    table = getattr(obj, "__tablename__", None)
    if table not in REPORT_TABLES:
        return None
    if not hasattr(obj, "county_id"):
        return {GLOBAL}
    state = sa_inspect(obj)
    values = {state.dict.get("county_id")}
    if not new and "county_id" in state.committed_state:
        values.add(state.committed_state["county_id"])  # moved between counties: both change
    if NO_VALUE in values:
        return {GLOBAL}  # the previous county was never loaded: assume anything
    if table == "org_unit" and getattr(obj, "level", None) == "county":
        values.add(obj.id)
    return {v for v in values if v is not None} or {GLOBAL}


def _pending_report_writes(sess) -> bool:
    """This transaction changed a report table and has not committed it (bypass the cache)."""
    if sess.info.get("generation_scopes"):
        return True
    return any(getattr(obj, "__tablename__", None) in REPORT_TABLES
               for objs in (sess.new, sess.dirty, sess.deleted) for obj in objs)


@event.listens_for(session, "after_flush")
def _collect(sess, _flush_context) -> None:
    scopes = _scopes(sess)
    for new, objs in ((True, sess.new), (False, sess.dirty), (False, sess.deleted)):
        for obj in objs:
            found = _object_scopes(obj, new)
            if found:
                scopes |= found


@event.listens_for(session, "do_orm_execute")
def _collect_core(state) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in REPORT_TABLES:
        return
    scopes = _scopes(state.session)
    params = state.parameters
    rows = params if isinstance(params, list) else ([params] if params else [])
    if state.is_insert and rows and "county_id" in table.c and all(r.get("county_id") for r in rows):
        scopes |= {int(r["county_id"]) for r in rows}
    else:
        scopes.add(GLOBAL)


@event.listens_for(session, "before_commit")
def _bump_before_commit(sess) -> None:
    """Bump the counters this transaction's writes touched.  Runs AFTER the figure summary's
    refresh (``app.reports.summary`` registers its ``before_commit`` first: this module imports
    it), so on PostgreSQL every writer takes the summary's advisory lock before any counter row
    lock, and two writers never wait on each other crosswise (tests check the order)."""
    sess.flush()  # before_commit runs before the final flush: collect its writes first
    scopes = sess.info.pop("generation_scopes", None)
    if scopes:
        bump(sorted(scopes), sess)


@event.listens_for(session, "after_rollback")
def _forget(sess) -> None:
    sess.info.pop("generation_scopes", None)
    sess.info.pop("generation_read", None)
    sess.info.pop(GLOBAL_NOTED, None)


@event.listens_for(session, "after_commit")
def _forget_read(sess) -> None:
    sess.info.pop("generation_read", None)
    sess.info.pop(GLOBAL_NOTED, None)


def bump(scopes: Iterable[int], sess=None) -> None:
    """Add 1 to the counters of ``scopes`` (creating missing rows with a fresh nonce), in the
    caller's transaction, in scope order (two writers never wait on each other crosswise)."""
    sess = sess or session
    insert = sqlite.insert if is_sqlite(sess.get_bind()) else postgresql.insert
    table = DataGeneration.__table__
    for scope in sorted(set(scopes)):
        stmt = insert(table).values(scope=scope, value=1, nonce=secrets.randbits(62))
        sess.execute(stmt.on_conflict_do_update(index_elements=[table.c.scope],
                                                set_={"value": table.c.value + 1}))
    sess.info.pop("generation_read", None)
    sess.info.pop(GLOBAL_NOTED, None)


def bump_all(sess=None) -> None:
    """Invalidate every cached report (the global counter): after a rebuild or an outside write."""
    bump([GLOBAL], sess)


def counter_columns(user_org) -> tuple[list, list]:
    """For the statement that loads the logged-in user (``load_user_from_cookie``), which every
    page runs first: (the outer joins, the columns) that read the global counter and the
    counter of the user's county with it, so neither costs a statement of its own (a list page
    ran four, a report page two).  ``user_org``: the alias of ``OrgUnit`` the statement joins
    as the user's unit.  Hand the columns' values to ``note_counters``."""
    from sqlalchemy import func
    from sqlalchemy.orm import aliased

    county_id = user_org.county_unit_id
    glob = aliased(DataGeneration, name="qy_global_counter")
    county = aliased(DataGeneration, name="qy_county_counter")
    joins = [(glob, glob.scope == GLOBAL), (county, county.scope == func.coalesce(county_id, -1))]
    columns = [glob.value.label("qy_global_value"), glob.nonce.label("qy_global_nonce"),
               county_id.label("qy_county_id"), county.value.label("qy_county_value"),
               county.nonce.label("qy_county_nonce")]
    return joins, columns


def note_counters(global_value: Optional[int], global_nonce: Optional[int], county_id: Optional[int],
                  county_value: Optional[int], county_nonce: Optional[int]) -> None:
    """Remember the counters as this transaction read them (with the user, before anything
    else) until it ends or writes: what ``_generation`` would read for the user's county, and
    the global counter ``cached_global`` keys on.  Nothing without a global row (nothing is
    cached then)."""
    if global_value is None or global_nonce is None:
        return
    session.info[GLOBAL_NOTED] = (global_value, global_nonce)
    if county_id is not None:
        session.info.setdefault("generation_read", {})[county_id] = \
            (global_value, global_nonce) + ((county_value, county_nonce) if county_value is not None else (0, 0))


# ---------------------------------------------------------------- the cache


_cache = LRU()


def clear() -> None:
    """Drop every entry of this process (tests whose transactions are rolled back reuse counter values)."""
    _cache.clear()


def stats() -> dict[str, int]:
    return {"entries": len(_cache.items), "hits": _cache.hits, "misses": _cache.misses}


def _size() -> int:
    if not has_app_context():
        return 0
    return int(current_app.config.get("REPORT_CACHE_SIZE", DEFAULT_SIZE))


def _generation(county_id: int) -> Optional[tuple]:
    """(global value, nonce, county value, nonce) as this transaction reads them, once per
    transaction; None when there is no global row yet."""
    read = session.info.setdefault("generation_read", {})
    if county_id in read:
        return read[county_id]
    rows = {scope: (value, nonce) for scope, value, nonce in session.execute(
        select(DataGeneration.scope, DataGeneration.value, DataGeneration.nonce)
        .where(DataGeneration.scope.in_((GLOBAL, county_id))))}
    key = None if GLOBAL not in rows else rows[GLOBAL] + rows.get(county_id, (0, 0))
    read[county_id] = key
    return key


def cached_global(what: str, compute: Callable[[], T]) -> T:
    """``compute()``, or what it returned in this process at the same global counter, for data
    that no county's writes change (the system settings: any committed change to them bumps the
    global counter).  Only with the counter noted for this transaction (``note_counters``: a page
    of a logged-in user) and no uncommitted write to a report table of its own; otherwise it
    computes.  The result is shared, never copied: callers must not change it."""
    size = _size()
    noted = session.info.get(GLOBAL_NOTED)
    if size <= 0 or noted is None or _pending_report_writes(session):
        return compute()
    key = (what, GLOBAL, noted)
    hit = _cache.get(key)
    if hit is None:
        hit = compute()
        _cache.put(key, hit, size)
    return hit


def cached(what: str, org, params: tuple, compute: Callable[[], T], frozen: bool = False) -> T:
    """``compute()``, or a copy of the result a previous call got for the same (``what``,
    ``org``, ``params``) at the same counters.  ``org``: the OrgUnit the result is about.
    ``frozen``: the caller promises the result cannot be changed (tuples and frozen
    dataclasses all the way down), so it is kept and served without copying."""
    size = _size()
    if size <= 0 or _pending_report_writes(session):
        return compute()
    county_id = org.county_unit_id
    if county_id is None:
        return compute()
    generation = _generation(county_id)
    if generation is None:
        return compute()
    key = (what, org.id, params, county_id, generation)
    hit = _cache.get(key)
    if hit is not None:
        return hit if frozen or isinstance(hit, str) else copy.deepcopy(hit)  # str (page HTML) is immutable
    value = compute()
    _cache.put(key, value if frozen or isinstance(value, str) else copy.deepcopy(value), size)
    return value
