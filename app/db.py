"""Database plumbing: the declarative ``Base``, the engine and a scoped session.

Plain SQLAlchemy (no Flask-SQLAlchemy) so Alembic's ``env.py`` and scripts can import the
metadata with no app.  Services only ``flush()``; the request (or CLI command) commits once.

SQLite gets WAL, a 10 s busy timeout, ``synchronous=NORMAL`` and ``BEGIN IMMEDIATE`` for
every transaction: a deferred transaction that reads and then writes gets "database is
locked" at once when another process writes, whatever the timeout says.

PostgreSQL opens a transaction only before the first statement that needs one
(``_begin_transactions_when_needed``): a request that only reads sends no BEGIN and no COMMIT.
"""
from __future__ import annotations

import os
import re
import select
import time
from collections import namedtuple
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import MetaData, create_engine, event, exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, scoped_session, sessionmaker
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.sqltypes import NullType

from app.lru import LRU

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations can drop constraints by name."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


write_intent: ContextVar[bool] = ContextVar("write_intent", default=True)
"""False for GET/HEAD requests: their SQLite transactions begin DEFERRED so readers run in
parallel under WAL; everything else (POSTs, CLI commands, tests) begins IMMEDIATE."""

session = scoped_session(sessionmaker(expire_on_commit=False))
"""The one session of a request, a CLI command or a test; removed at app-context teardown."""


def utcnow() -> datetime:
    """Timezone-aware now in UTC; stored as UTC, shown in Asia/Shanghai."""
    return datetime.now(timezone.utc)


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create the engine for ``url`` with the SQLite settings described in the module docstring."""
    if url.startswith("sqlite"):
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": 10}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, echo=echo, **kwargs)
        _configure_sqlite(engine)
        return engine
    settings = pool_settings()
    ping_after = settings.pop("ping_after")
    engine = create_engine(url, echo=echo, **settings)
    _configure_postgresql(engine)
    _check_connections_at_checkout(engine, ping_after)
    return engine


NEVER_BY_COUNT = 2**31 - 1
"""psycopg's ``prepare_threshold``: the executions after which it prepares a statement by itself
(never, in practice); a statement executed with ``prepare=True`` is prepared at once."""

SERVER_PREPARE = "qy_server_prepare"
"""Execution option of the statements that PostgreSQL should parse and plan once per connection."""


def pool_settings(environ=None) -> dict:
    """PostgreSQL pool per process from the environment (deploy/README.md): ``DB_POOL_SIZE``
    (default 5) and ``DB_MAX_OVERFLOW`` (default 10) connections per gunicorn worker, so
    workers × (size + overflow) stays under ``max_connections``; ``DB_POOL_RECYCLE`` seconds
    (default 1800); ``DB_PING_AFTER`` seconds (default 30) unused after which a pooled
    connection is pinged before use (``_check_connections_at_checkout``); ``DB_PGBOUNCER=1``
    behind PgBouncer in transaction mode turns off psycopg's server-side prepared statements
    (``prepare_threshold=None``), which such a pooler cannot keep."""
    env = os.environ if environ is None else environ
    kwargs: dict = {"ping_after": float(env.get("DB_PING_AFTER", "30")),
                    "pool_size": int(env.get("DB_POOL_SIZE", "5")),
                    "max_overflow": int(env.get("DB_MAX_OVERFLOW", "10")),
                    "pool_recycle": int(env.get("DB_POOL_RECYCLE", "1800")),
                    "pool_timeout": int(env.get("DB_POOL_TIMEOUT", "30"))}
    # psycopg prepares nothing by itself (it would prepare any statement run 5 times on a
    # connection, and PostgreSQL's generic plans for some made the short name search 20× slower);
    # only the statements marked ``server_prepare`` in ``prepared`` are (see ``_configure_postgresql``).
    # Behind PgBouncer none is: ``None`` also turns off the explicit preparation.
    kwargs["connect_args"] = {"prepare_threshold": None if env.get("DB_PGBOUNCER", "0") == "1" else NEVER_BY_COUNT}
    # column descriptions made only when read (app.pg_cursor): SQLAlchemy needs them only for a
    # statement it has not seen
    from app.pg_cursor import LazyDescriptionCursor
    kwargs["connect_args"]["cursor_factory"] = LazyDescriptionCursor
    return kwargs


def _socket_readable(dbapi_conn) -> bool:
    """Whether the server has sent something on an idle psycopg connection (or it is closed).

    Between transactions PostgreSQL sends nothing unasked, except when it is about to close
    the connection (a restart, ``pg_terminate_backend``, an idle timeout: an error message and
    end of file) or after a configuration reload (a parameter status); a poll with no timeout
    sees either without a round trip."""
    if dbapi_conn.closed or dbapi_conn.broken:
        return True
    try:
        fd = dbapi_conn.pgconn.socket
    except Exception:  # noqa: BLE001 - any failure to get the socket: let the ping decide
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _check_connections_at_checkout(engine: Engine, ping_after: float) -> None:
    """Hand out only live connections, pinging only the ones that may not be.

    SQLAlchemy's ``pool_pre_ping`` pings every connection at every checkout: a round trip to
    the server on every request (with the transaction's BEGIN and COMMIT, a quarter of the
    round trips of a typical page).  Here a connection returned to the pool less than
    ``ping_after`` seconds ago whose socket is quiet (``_socket_readable``) is handed out as it
    is; any other (idle longer, or the server has spoken: a restart or a terminated backend)
    is pinged first, and one that fails the ping is replaced, all connections opened before it
    with it (``InvalidatePoolError``, as ``pool_pre_ping`` does).  A connection just opened
    needs no ping.  What neither catches is a connection cut silently within those seconds (no
    packet reaches this host); the request that meets it fails, and the pool replaces it."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_conn, record):
        if dbapi_conn is not None:
            record.info["qy_returned"] = (dbapi_conn, time.monotonic())

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn, record, _proxy):
        returned = record.info.get("qy_returned")
        if returned is None or returned[0] is not dbapi_conn:
            return  # opened for this checkout
        if time.monotonic() - returned[1] < ping_after and not _socket_readable(dbapi_conn):
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_conn, None):
                raise exc.InvalidatePoolError(str(err)) from err
            raise


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write_intent.get() else "BEGIN")


def _configure_postgresql(engine: Engine) -> None:
    """Server-side preparation of the marked statements, and a note of whether a transaction wrote.

    A statement carrying the execution option ``SERVER_PREPARE`` (``prepared(..., server_prepare=True)``)
    is executed with psycopg's ``prepare=True``: PostgreSQL parses it once per connection and,
    after five executions, keeps a generic plan when it costs no more than the custom ones.
    Only statements whose plan does not depend on the values are marked (primary- and
    unique-key reads, a case's rows by ``case_id``): the case page's main statement spent
    1.2 ms planning and 0.3 ms running.  The prepared statements survive the request only
    because ``end_read_only_transaction`` ends a write-free transaction with COMMIT (psycopg
    forgets them all at every ROLLBACK)."""

    @event.listens_for(engine, "do_execute")
    def _execute_prepared(cursor, statement, parameters, context):
        if context.execution_options.get(SERVER_PREPARE):
            cursor.execute(statement, parameters, prepare=True)
            return True
        return None

    @event.listens_for(engine, "begin")
    def _begun(conn):
        conn.info["qy_wrote"] = False

    _begin_transactions_when_needed(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _note_writes(conn, _cursor, statement, _parameters, _context, _executemany):
        # anything but a plain SELECT (INSERT, UPDATE, DELETE, a WITH that may write, DDL,
        # SAVEPOINT) counts as a write: such a transaction is left to the rollback
        if not conn.info.get("qy_wrote") and statement.lstrip()[:6].upper() != "SELECT":
            conn.info["qy_wrote"] = True

    @event.listens_for(engine, "handle_error")
    def _note_failure(context):
        # a failed statement (even a SELECT, say a search cancelled by its timeout) leaves the
        # transaction to the rollback
        if context.connection is not None:
            context.connection.info["qy_wrote"] = True


_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open on the connection

# Statements that must run in the transaction although they read like plain SELECTs: row locks
# (held until the end of the transaction), transaction-scoped advisory locks and settings,
# sequence and notification functions (kept with the writes they belong to).
_TRANSACTIONAL_SELECT = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b|pg_advisory|set_config|nextval|setval|"
    r"pg_notify|txid_current|pg_current_xact_id", re.IGNORECASE)


def _no_transaction_open(driver) -> bool:
    """Whether the psycopg connection ``driver`` runs under the lazy BEGIN (autocommit mode) and
    has no transaction open: nothing sent needs ending, a statement that needs one begins it."""
    return driver.autocommit and driver.pgconn.transaction_status == _IDLE


def needs_transaction(statement: str) -> bool:
    """Whether ``statement`` must run inside a transaction on PostgreSQL: everything but a
    plain SELECT (``_TRANSACTIONAL_SELECT`` names the SELECTs that are not plain)."""
    head = statement.lstrip()[:6].upper()
    return head != "SELECT" or _TRANSACTIONAL_SELECT.search(statement) is not None


def _begin_transactions_when_needed(engine: Engine) -> None:
    """Open PostgreSQL transactions only when a statement needs one (lazy BEGIN).

    psycopg opens a transaction with a round trip of its own (``BEGIN``) before a connection's
    first statement and SQLAlchemy ends it with another (``COMMIT`` or ``ROLLBACK``): two of the
    case page's eight round trips, for a request that only reads.  Here the driver connection
    runs in autocommit mode (set at every checkout) and this engine sends ``BEGIN`` itself just
    before the first statement that needs a transaction (``needs_transaction``: a write, a
    SAVEPOINT, a SET, a locking read, a server-side cursor); from there on the request's
    statements run in that transaction, and SQLAlchemy's commit or rollback ends it as before
    (psycopg's ``commit()``/``rollback()`` send COMMIT/ROLLBACK when a transaction is open and
    nothing when none is).  A request that only reads sends neither BEGIN nor COMMIT.

    Why the reads before the first write lose nothing: at READ COMMITTED, PostgreSQL's default
    and the only level this app uses, every statement of a transaction takes its own snapshot,
    so a plain SELECT sees the same rows in or out of one; what a transaction adds to a read
    (row locks, transaction-scoped advisory locks and settings) is what ``needs_transaction``
    sends into one.  A connection given ``isolation_level="AUTOCOMMIT"`` explicitly (VACUUM,
    ``CREATE INDEX CONCURRENTLY``) gets no BEGIN; SQLAlchemy's reset of such a connection turns
    autocommit off, and the next checkout turns it on again."""
    needs = LRU()  # statement → whether it needs a transaction (the statements are few: compiled once each)

    @event.listens_for(engine, "checkout")
    def _autocommit(dbapi_conn, _record, _proxy):
        if not dbapi_conn.autocommit and dbapi_conn.pgconn.transaction_status == _IDLE:
            dbapi_conn.autocommit = True

    @event.listens_for(engine, "before_cursor_execute")
    def _begin_if_needed(conn, cursor, statement, _parameters, context, _executemany):
        driver = cursor.connection
        if not _no_transaction_open(driver):
            return
        options = context.execution_options if context is not None else conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        need = needs.get(statement)
        if need is None:
            need = needs_transaction(statement)
            needs.put(statement, need, 4096)
        if need or options.get("stream_results"):
            driver.execute("BEGIN")


def begin_driver_transaction(conn) -> None:
    """Make sure ``conn`` (a SQLAlchemy connection) has a transaction open on PostgreSQL before
    something the engine's events do not see writes on the driver connection (a COPY,
    ``app.bulk``); see ``_begin_transactions_when_needed``."""
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql" and _no_transaction_open(driver):
        driver.execute("BEGIN")


def mark_written(conn) -> None:
    """Note that ``conn``'s transaction wrote by a way the engine's events do not see (a COPY
    on the raw driver connection, ``app.bulk``), so ``end_read_only_transaction`` leaves it
    alone, and open the driver's transaction if none is (``begin_driver_transaction``)."""
    conn.info["qy_wrote"] = True
    begin_driver_transaction(conn)


def end_read_only_transaction(sess=None) -> bool:
    """Commit the PostgreSQL transaction of ``sess`` (default: the request's session) if it ran
    nothing but SELECTs and no ORM change is pending; returns whether it committed (or, for a
    session whose plain reads opened no transaction on the server, whether there was nothing
    to end).

    Why: closing the session ends a request's transaction with ROLLBACK, and psycopg empties
    its prepared-statement cache at every ROLLBACK, so the statements ``_configure_postgresql``
    prepares would be parsed and planned again on every request.  For a transaction that wrote
    nothing, COMMIT and ROLLBACK are the same.  One that ran any other statement (a request
    that failed before its commit, a flush nobody committed) is left to the rollback, and
    pending changes never flushed are neither flushed nor committed.  SQLite: nothing to do
    (its statements stay cached per connection either way)."""
    if sess is None:
        if not session.registry.has():
            return False
        sess = session()
    if not sess.in_transaction() or sess.new or sess.dirty or sess.deleted:
        return False
    conn = sess.connection()
    if conn.dialect.name != "postgresql" or conn.info.get("qy_wrote", True):
        return False
    driver = conn.connection.driver_connection
    if _no_transaction_open(driver):
        # only plain reads, which opened no transaction (``_begin_transactions_when_needed``):
        # nothing to end, and the session's close sends nothing either (SQLAlchemy's commit
        # machinery was ~3 % of a case page's Python for no statement)
        return True
    sess.commit()
    return True


def is_sqlite(bind=None) -> bool:
    """True when the session's database is SQLite (for the few dialect-specific queries)."""
    bind = bind or session.get_bind()
    return bind.dialect.name == "sqlite"


def autogenerate_include_name(name, type_, parent_names) -> bool:
    """Alembic filter: leave out the search objects of ``app.cases.search`` (the FTS5 table and
    its shadow tables, the pg_trgm and bigram indexes): the migration creates them by hand, not the models."""
    if type_ == "table" and name and name.startswith("case_search"):
        return False
    if type_ == "index" and name and name.endswith(("_trgm", "_bigram")):
        return False
    return True


def init_app(app) -> None:
    """Bind the scoped session to an engine made from ``DATABASE_URL``; touches no data."""
    engine = make_engine(app.config["DATABASE_URL"], echo=app.config.get("SQL_ECHO", False))
    app.extensions["sqlalchemy_engine"] = engine
    session.configure(bind=engine)

    @app.teardown_appcontext
    def _remove_session(exc=None):
        from flask import g
        # The test client keeps one session (bound to a rolled-back connection) across requests.
        if not g.get("keep_db_session"):
            if exc is None:
                try:
                    end_read_only_transaction()
                except Exception:  # noqa: BLE001 # the rollback below ends the transaction as before
                    app.logger.warning("could not end a read-only transaction with COMMIT", exc_info=True)
            session.remove()


def get_engine(app) -> Engine:
    return app.extensions["sqlalchemy_engine"]


# ---------------------------------------------------------------------------------------------
# Planner hints for SQLite.  SQLite plans a prepared statement once, from ``sqlite_stat1``'s
# average rows per index prefix, without seeing the bound values; PostgreSQL's planner sees the
# values and their frequencies and needs no help, so both constructs compile to the plain
# expression there.


def _likelihood_hint(name: str, sqlite_function: str, doc: str):
    """A construct ``name(condition)``: ``sqlite_function(condition)`` on SQLite, the condition
    itself elsewhere.  Its type is not Boolean: SQLAlchemy would render ``unlikely(...) = 1`` on
    SQLite, a term the planner can no longer split into the indexable ``status = ?``."""
    cls = type(name, (FunctionElement,), {"__doc__": doc, "type": NullType(), "name": name, "inherit_cache": True})
    compiles(cls)(lambda element, compiler, **kw: "(%s)" % compiler.process(element.clauses, **kw))
    compiles(cls, "sqlite")(lambda element, compiler, **kw: "%s(%s)" % (
        sqlite_function, compiler.process(element.clauses, **kw)))
    return cls


rare = _likelihood_hint("rare", "unlikely", """``rare(condition)``: a condition true for few rows (a case
    waiting for triage or escalated: days of a ten-year history).  Without it SQLite takes
    ``status = ?`` for an average status (most rows are 已办结) and walks a whole county in date
    order instead of reading the few rows from the status index (0.1 s at 1,000,000 cases for a
    工作台 showing one case).""")

common = _likelihood_hint("common", "likely", """``common(condition)``: a condition true for most rows (a
    case is 已办结, its outcome 调解成功), so SQLite reads a narrower range (the closes of the last
    weeks) instead of a status index that holds most of the county.""")


class unindexed(FunctionElement):
    """``unindexed(column)``: the column's value, with SQLite told not to look it up in an index
    (``+column``).  For a county user's scope in a query that a partial index answers in order:
    every case of a one-county database matches ``county_id = ?``, yet SQLite prefers the county
    indexes and sorts the county's open cases (60 ms at 1,000,000) over reading the first few
    from the partial index."""

    name = "unindexed"
    inherit_cache = True

    @property
    def type(self):
        return self.clauses.clauses[0].type


@compiles(unindexed)
def _unindexed(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw):
    return "+%s" % compiler.process(element.clauses, **kw)


# ---------------------------------------------------------------------------------------------
# What a transaction remembers of what it read, until it writes.

_MEMOS: dict[str, bool] = {}  # memo key → also forgotten at every ORM flush


def transaction_memo(key: str, forget_at_flush: bool = True) -> dict:
    """A dict kept in the session for the rest of its transaction, for values read once and
    used by several parts of a page (which record tables hold a case's rows, the settings).
    It is forgotten at the end of the transaction and at any Core INSERT/UPDATE/DELETE run
    through the session; with ``forget_at_flush`` also at every ORM flush, so a value a
    write could change is never served after the write."""
    _MEMOS[key] = forget_at_flush
    return session.info.setdefault(key, {})


@event.listens_for(session, "after_flush")
def _forget_memos_at_flush(sess, _flush_context) -> None:
    for key, at_flush in _MEMOS.items():
        if at_flush:
            sess.info.pop(key, None)


@event.listens_for(session, "do_orm_execute")
def _forget_memos_at_core_write(state) -> None:
    if not state.is_select:
        for key in _MEMOS:
            state.session.info.pop(key, None)


@event.listens_for(session, "after_transaction_end")
def _forget_memos_at_end(sess, _transaction) -> None:
    """Also at a savepoint's end: a rolled-back savepoint may have undone what was read."""
    for key in _MEMOS:
        sess.info.pop(key, None)


# ---------------------------------------------------------------------------------------------
# Statements built once per process.

_PREPARED: dict = {}


def prepared(key, build, server_prepare: bool = False):
    """The statement ``build()`` returns, built the first time ``key`` is asked for and kept for
    the life of the process; its variable parts are ``bindparam``s given at execution.
    ``server_prepare``: PostgreSQL also parses and plans it once per connection
    (``_configure_postgresql``); only for statements whose best plan is the same for every
    value (a key lookup), never for a search or a filtered list.

    Why: SQLAlchemy builds a statement from Python objects and then derives its cache key
    before it finds the compiled SQL in its cache; for the short statements of the pages opened
    most (the case page runs about ten) that costs more than running them.  A statement object
    kept here keeps its memoised cache key, so executing it again does neither.  Only for
    statements whose shape depends on nothing but ``key``."""
    stmt = _PREPARED.get(key)
    if stmt is None:
        stmt = build()
        if server_prepare:
            stmt = stmt.execution_options(**{SERVER_PREPARE: True})
        _PREPARED[key] = stmt
        _KEPT.add(id(stmt))  # kept for the life of the process: its id is never reused
    return stmt


def column_keys(model) -> tuple[str, ...]:
    """Every column attribute of ``model``, in mapper order: the ``keys`` of
    ``persistent_from_row`` for a row read with ``entity_columns``."""
    keys = _COLUMN_KEYS.get(model)
    if keys is None:
        keys = _COLUMN_KEYS[model] = tuple(attr.key for attr in sa_inspect(model).column_attrs)
    return keys


def entity_columns(entity) -> list:
    """The columns to SELECT for ``persistent_from_row``: every column attribute of ``entity`` (a
    model or an ``aliased`` one, for the same model joined more than once), in ``column_keys``
    order."""
    return [getattr(entity, key) for key in column_keys(sa_inspect(entity).mapper.class_)]


_COLUMN_KEYS: dict = {}


def persistent_from_row(model, keys: tuple[str, ...], values) -> Optional[Any]:
    """The ``model`` instance whose column attributes ``keys`` hold ``values`` (a row read by
    ``select_rows``), as the session's own: the one in its identity map if it holds that row
    already (a query would return that one too, its expired attributes filled in), else a new
    instance made persistent in the session as the ORM's loader makes a row it has not seen:
    the values as its loaded state, its identity key set, entered in the identity map.  From
    then on it is as if a query had loaded it (changes are flushed, relationships not set load
    when first read).  None when the primary key is NULL (the columns of an outer join that
    found no row).

    Why: for the logged-in user, loaded first on every page, and the case page's case, places
    and parties, the ORM's query machinery (compile state, query context, row processors)
    cost more than reading the rows; and making the instances detached and then adding them
    (``make_transient_to_detached`` + ``Session.add``) walked every relationship of the
    mapper for the save-update cascade, ~3 % of a case page.  ``keys`` must be every column
    attribute of ``model`` (none deferred), primary key included; the values are written as
    the ORM's own loader writes them, without attribute events (an encrypted column's value is
    already the decrypted one).  The loader's steps are SQLAlchemy's internals (2.0 and 2.1
    alike); ``tests/test_user_loader.py`` and ``tests/test_case_detail_rows.py`` hold them to
    a queried instance's behaviour."""
    shape = _ROW_SHAPES.get((model, keys))
    if shape is None:
        mapper = sa_inspect(model)
        positions = tuple(keys.index(mapper.get_property_by_column(col).key) for col in mapper.primary_key)
        shape = _ROW_SHAPES[(model, keys)] = (mapper, positions)
    mapper, positions = shape
    primary_key = [values[i] for i in positions]
    if primary_key[0] is None:
        return None  # an outer join that found no row
    identity = mapper.identity_key_from_primary_key(primary_key)
    sess = session()
    identity_map = sess.identity_map
    existing = identity_map.get(identity)
    if existing is not None:
        # what a query does with an instance it finds in the identity map: the attributes
        # not loaded (expired by a commit or ``expire``) take the row's values, the rest stay
        unloaded = sa_inspect(existing).unloaded
        if unloaded:
            for key, value in zip(keys, values):
                if key in unloaded:
                    set_committed_value(existing, key, value)
        return existing
    obj = mapper.class_manager.new_instance()
    state = instance_state(obj)
    state.dict.update(zip(keys, values))
    state.key = identity
    state.identity_token = identity[2]
    state.session_id = sess.hash_key
    identity_map._add_unpresent(state, identity)
    return obj


_ROW_SHAPES: dict = {}  # (model, keys) → (mapper, positions of the primary key in keys)


def select_rows(stmt, params: dict | None = None) -> list:
    """The rows of ``stmt``, a SELECT of columns (no ORM entities), on the session's connection,
    after the flush the ORM's autoflush would have done.  A statement kept by ``prepared`` runs
    straight on the driver (``_DriverRead`` on PostgreSQL, ``_SQLiteRead`` on SQLite), any other
    through SQLAlchemy Core;
    either way each row is a named tuple (``row.name``, ``row[0]``, unpacking).

    Why: ``session.execute`` takes even a column SELECT through the ORM's compile state, query
    context and result adaptation; the same statement on the connection returns the same rows
    for about a third less (PostgreSQL, the case page's 同村同类 statement: ~205 → ~140 µs of
    Python per execution), and on the driver for less again (callgrind: 437 k → 182 k
    instructions per execution).  For the short column reads of the pages opened most;
    entities still go through the session (identity map, relationships)."""
    sess = session()
    if sess.autoflush:
        sess.flush()  # returns at once when nothing is pending
    conn = sess.connection()
    if id(stmt) in _KEPT:
        dialect = conn.dialect
        read = _DRIVER_READS.get((id(stmt), dialect.name))
        if read is None:
            kind = _DriverRead if dialect.name == "postgresql" else _SQLiteRead  # the two databases this app runs on
            read = _DRIVER_READS[(id(stmt), dialect.name)] = kind.compile(stmt, dialect)
        if read.usable:
            return read.run(conn, params or {})
    return conn.execute(stmt, params or {}).all()


def select_entities(stmt, params: dict | None = None) -> list:
    """The instances ``session.scalars(stmt, params)`` returns for ``stmt``, a SELECT of one
    model kept by ``prepared`` (``select(Model).where(...).order_by(...)``), read as rows of its
    columns (``select_rows``: the driver path) and made the session's by
    ``persistent_from_row``: the same objects, in the same order, one the session holds kept
    (its expired attributes filled in).

    Why: the ORM's execution path (compile state, query context, loading) costs a short read
    more Python than the rest of it; the case page reads a few record tables of the case this
    way (follow-ups, risk gradings, sign-offs …) for about one case in two.  A statement with
    loader options (``selectinload``/``joinedload``, which rows cannot carry), of anything but
    one model, or not kept by ``prepared`` goes through ``session.scalars``."""
    key = id(stmt)
    shape = _ENTITY_READS.get(key, _UNKNOWN)
    if shape is _UNKNOWN:
        shape = None
        if key in _KEPT and not stmt._with_options and len(stmt.column_descriptions) == 1:
            model = stmt.column_descriptions[0]["entity"]
            columns = stmt.with_only_columns(*entity_columns(model))
            _KEPT.add(id(columns))  # kept in ``_ENTITY_READS`` for the life of the process
            shape = (model, column_keys(model), columns)
        if key in _KEPT:
            _ENTITY_READS[key] = shape
    if shape is None:
        return list(session.scalars(stmt, params or {}))
    model, keys, columns = shape
    return [persistent_from_row(model, keys, row) for row in select_rows(columns, params)]


def entities_with_parent(rows, model, attribute: str, parent_model) -> list:
    """The ``model`` instances of ``rows`` — each row ``model``'s columns (``entity_columns``
    order) followed by those of its many-to-one ``attribute``'s target, a ``parent_model`` —
    made the session's (``persistent_from_row``), each with ``attribute`` set to its parent
    unless the session's instance has it loaded already; a row whose parent columns are NULL
    (an outer join that found none) sets None.

    Why: a joined load through the ORM (``joinedload``) or a lazy load per row costs more Python
    than reading the joined columns, for short lists on pages opened often (a case's department
    tasks with their departments, a township's roster with each member's unit)."""
    keys, parent_keys = column_keys(model), column_keys(parent_model)
    width = len(keys)
    found = []
    for row in rows:
        obj = persistent_from_row(model, keys, row[:width])
        if attribute in sa_inspect(obj).unloaded:
            set_committed_value(obj, attribute, persistent_from_row(parent_model, parent_keys, row[width:]))
        found.append(obj)
    return found


_ENTITY_READS: dict[int, Optional[tuple]] = {}  # id of a kept statement → (model, keys, columns) or None


_KEPT: set[int] = set()  # ids of the statements ``prepared`` keeps
_UNKNOWN = object()
_DRIVER_READS: dict[tuple[int, str], Any] = {}  # (id of a kept statement, dialect) → its compiled form



class _DriverRead:
    """A kept SELECT compiled once for the PostgreSQL driver, and run there.

    What SQLAlchemy Core does around each execution of a cached statement — the execution
    context, parameter processing, the cursor result and its row adaptation, event dispatch
    through the pool's proxies — is most of a short read's Python time.  For a statement that
    never changes, the SQL text, the constants the compiler took out of it and the row shape
    are the same every time, so they are worked out here once.  What Core would do that still
    matters is kept: the ``before_cursor_execute`` and ``after_cursor_execute`` listeners run
    (the write tracking of ``_configure_postgresql``, the statement counts of the tests), a
    driver error goes through the connection's own handling (wrapped as SQLAlchemy's
    exception, ``handle_error`` listeners, a lost connection invalidated), the server-side
    preparation of ``SERVER_PREPARE`` statements applies, and the columns' result processors
    (a type decorator's) run.  A statement with list parameters (``expanding``), bind
    processors or column names that cannot name a tuple field is not ``usable`` and goes
    through Core.  ``tests/test_driver_reads.py`` compares both ways on PostgreSQL.

    Two more things are done once instead of at every execution (tenth pass): psycopg turns a
    ``%(name)s`` query into PostgreSQL's ``$1`` form on every execute, and caches the result
    only for queries under 4 KB, which the wide reads (the case page's case row, the logged-in
    user's row) are not, so their text was scanned with a regular expression each time; here the
    ``$n`` text (``raw_sql``) and the parameters' order are made at compile time and run on a
    ``psycopg.RawCursor``.  And each statement keeps one cursor per database connection
    (``_statement_cursor``): psycopg keeps a cursor's adaptation state (the loaders chosen
    for the result's column types, the dumpers for the parameters) while the same query object
    runs again on it, and builds it anew for every new cursor.  The listeners still see the
    ``%(name)s`` text and the parameters by name, as Core gives them."""

    __slots__ = ("usable", "sql", "raw_sql", "param_names", "constants", "row", "types", "processors",
                 "prepare", "dialect")

    @classmethod
    def compile(cls, stmt, dialect) -> "_DriverRead":
        read = cls()
        compiled = stmt.compile(dialect=dialect)
        read.types = tuple(entry.type for entry in compiled._result_columns)
        read.processors = _UNKNOWN  # the driver's column types are known at the first run
        read.row, read.constants = _compiled_shape(compiled)
        read.usable = (read.row is not None and not compiled._bind_processors and compiled.positiontup is None)
        read.sql = compiled.string
        read.raw_sql, read.param_names = _numbered_placeholders(read.sql)
        read.prepare = bool(stmt.get_execution_options().get(SERVER_PREPARE))
        read.dialect = dialect
        return read

    def run(self, conn, params: dict) -> list:
        values = {**self.constants, **params} if self.constants else params
        make = self.row._make
        cursor = self._statement_cursor(conn.connection)
        for listener in conn.dispatch.before_cursor_execute:
            listener(conn, cursor, self.sql, values, None, False)
        try:
            cursor.execute(self.raw_sql, [values[name] for name in self.param_names], prepare=self.prepare)
            rows = cursor.fetchall()
        except KeyError as missing:  # as psycopg says it for a ``%(name)s`` query
            from psycopg import ProgrammingError
            conn._handle_dbapi_exception(ProgrammingError(f"query parameter missing: {missing.args[0]}"),
                                         self.sql, values, cursor, None)
        except Exception as err:  # noqa: BLE001 - handed to SQLAlchemy, which re-raises
            conn._handle_dbapi_exception(err, self.sql, values, cursor, None)
        for listener in conn.dispatch.after_cursor_execute:
            listener(conn, cursor, self.sql, values, None, False)
        if self.processors is _UNKNOWN:
            # what Core's result would apply, by the types the driver reports (psycopg:
            # None for nearly all; a type decorator's own step, such as decryption)
            found = [t._cached_result_processor(self.dialect, d.type_code)
                     for t, d in zip(self.types, cursor.description)]
            # (position, processor) of the few columns that have one
            self.processors = tuple((i, p) for i, p in enumerate(found) if p) or None
        if self.processors is not None:
            rows = _processed(rows, self.processors, make)
        return rows

    def _statement_cursor(self, pooled):
        """This statement's cursor on the database connection behind ``pooled`` (the pool's
        proxy), made at its first use there.  Kept in the pool's ``info`` of that connection,
        which lives as long as the connection and is emptied when it is invalidated (a lost
        connection's cursors go with it).  Between executions a cursor holds its last result,
        the rows of one execution of a short read."""
        cursors = pooled.info.get(_CURSORS)
        if cursors is None:
            cursors = pooled.info[_CURSORS] = {}
        cursor = cursors.get(self)
        if cursor is None or cursor.closed:
            from psycopg import RawCursor
            make = self.row._make
            cursor = cursors[self] = RawCursor(pooled.dbapi_connection, row_factory=lambda _cursor: make)
        return cursor


class _SQLiteRead:
    """A kept SELECT compiled once for the sqlite3 driver, and run there: ``_DriverRead``'s
    counterpart for SQLite, where the database works in-process and SQLAlchemy Core's execution
    (the compiled-cache lookup by the statement's cache key, the execution context, parameter
    processing, the cursor result) was a sixth of a case page.  Kept from Core: the statement
    listeners, the connection's error handling, the bind processors (dates become SQLite's ISO
    text) and the columns' result processors (ISO text back to dates, numbers to ``Decimal``, JSON,
    booleans, decryption) — each applied only where the type has one.  Parameters are SQLite's
    positional ``?`` in the compiled order.  A statement with list parameters (``expanding``) or
    names that cannot name a tuple field goes through Core.  ``tests/test_driver_reads.py``
    compares both ways on both databases."""

    __slots__ = ("usable", "sql", "positions", "constants", "binds", "row", "processors")

    @classmethod
    def compile(cls, stmt, dialect) -> "_SQLiteRead":
        read = cls()
        compiled = stmt.compile(dialect=dialect)
        read.row, read.constants = _compiled_shape(compiled)
        read.usable = read.row is not None and compiled.positiontup is not None
        read.sql = compiled.string
        read.positions = tuple(compiled.positiontup or ())
        binds = compiled._bind_processors
        read.binds = tuple((i, binds[name]) for i, name in enumerate(read.positions) if name in binds) or None
        found = [entry.type._cached_result_processor(dialect, None) for entry in compiled._result_columns]
        read.processors = tuple((i, p) for i, p in enumerate(found) if p) or None
        return read

    def run(self, conn, params: dict) -> list:
        values = {**self.constants, **params} if self.constants else params
        try:
            args = [values[name] for name in self.positions]
        except KeyError as missing:
            raise exc.ArgumentError(f"A value is required for bind parameter {missing.args[0]!r}") from None
        if self.binds is not None:
            for i, process in self.binds:
                args[i] = process(args[i])
        cursor = conn.connection.dbapi_connection.cursor()
        for listener in conn.dispatch.before_cursor_execute:
            listener(conn, cursor, self.sql, args, None, False)
        try:
            cursor.execute(self.sql, args)
            rows = cursor.fetchall()
        except Exception as err:  # noqa: BLE001 - handed to SQLAlchemy, which re-raises
            conn._handle_dbapi_exception(err, self.sql, args, cursor, None)
        finally:
            cursor.close()
        for listener in conn.dispatch.after_cursor_execute:
            listener(conn, cursor, self.sql, args, None, False)
        make = self.row._make
        if self.processors is None:
            return [make(row) for row in rows]
        return _processed(rows, self.processors, make)


def _compiled_shape(compiled) -> tuple[Optional[type], dict]:
    """What both driver reads take from a compiled SELECT: the named-tuple type of its rows —
    None when the statement cannot be run on the driver (list parameters, values rendered into
    the SQL at execution, escaped parameter names, result names that cannot name a tuple field)
    — and the constants the compiler took out of it."""
    names = [entry.keyname for entry in compiled._result_columns]
    usable = (names and len(set(names)) == len(names)
              and all(n.isidentifier() and not n.startswith("_") for n in names)
              and not compiled.post_compile_params and not compiled.literal_execute_params
              and not compiled.escaped_bind_names)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return (namedtuple("Row", names) if usable else None), constants


def _processed(rows, processors: tuple, make) -> list:
    """``rows`` with each column's result processor applied (``processors``: (position,
    processor) of the columns that have one), as ``make``'s named tuples."""
    processed = []
    for row in rows:
        values = list(row)
        for i, process in processors:
            values[i] = process(values[i])
        processed.append(make(values))
    return processed


_CURSORS = "qy_statement_cursors"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def _numbered_placeholders(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """``sql`` in the ``pyformat`` style of SQLAlchemy's psycopg dialect (``%(name)s``, a
    literal ``%`` written ``%%``) turned into PostgreSQL's own (``$1``, ``%``), UTF-8 encoded,
    and the parameter names in ``$n`` order (a name used twice is one parameter)."""
    names: list[str] = []

    def number(match) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql).encode(), tuple(names)


# ---------------------------------------------------------------------------------------------
# A parent's child rows read inside the parent's own statement (PostgreSQL).

def child_rows_column(columns: list, where, order_by: list, name: str):
    """``(SELECT json_agg(json_build_array(<columns>) ORDER BY <order_by>) FROM … WHERE <where>)``
    labelled ``name``: the child rows of the enclosing statement's row as one JSON array of
    arrays (NULL when there are none), for ``ChildRows.decode``.  PostgreSQL only.

    Why: the case page read its case, then the case's parties, then its timeline, each a round
    trip of its own (a send, a wait and a receive on both sides, and the driver's per-statement
    Python); a correlated subquery over the children's ``case_id`` index costs PostgreSQL
    next to nothing more inside the case's statement."""
    from sqlalchemy import func, select
    from sqlalchemy.dialects.postgresql import aggregate_order_by
    return (select(func.json_agg(aggregate_order_by(func.json_build_array(*columns), *order_by)))
            .where(where).scalar_subquery().label(name))


class ChildRows:
    """Turns the JSON arrays of ``child_rows_column`` back into the values a SELECT of the same
    ``columns`` returns: JSON has only strings and numbers, so a date or a timestamp comes back
    from its ISO text, and a column whose type has a result step of its own (a type decorator,
    such as ``EncryptedString``'s decryption) gets it, as ``_DriverRead`` applies it.  Column
    types other than integers, booleans, strings, dates and timestamps are refused when the
    decoder is made (a NUMERIC would come back as a float, bytes as hex text): read those as
    rows."""

    def __init__(self, columns: list, dialect) -> None:
        from datetime import date as _date

        from sqlalchemy.sql import sqltypes
        from sqlalchemy.types import TypeDecorator
        self.converters: list[tuple[int, Any]] = []
        for position, column in enumerate(columns):
            kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
            if isinstance(kind, sqltypes.DateTime):
                convert = datetime.fromisoformat
            elif isinstance(kind, sqltypes.Date):
                convert = _date.fromisoformat
            elif isinstance(kind, (sqltypes.Integer, sqltypes.String, sqltypes.Boolean)):
                convert = column.type._cached_result_processor(dialect, None)
            else:
                raise TypeError(f"{column} ({column.type}) cannot be read back from JSON exactly")
            if convert is not None:
                self.converters.append((position, convert))

    def decode(self, arrays: Optional[list]) -> list[list]:
        """The rows (lists of values, in ``columns`` order) of one JSON value; [] for NULL."""
        if not arrays:
            return []
        converters = self.converters
        if converters:
            for values in arrays:
                for position, convert in converters:
                    value = values[position]
                    if value is not None:
                        values[position] = convert(value)
        return arrays
