"""Crash safety and several writers (issue 9).

* A process really killed (SIGKILL) in the middle of a ledger import, or in the middle of a
  run of case actions, leaves no partial data: after every kill the database passes
  ``PRAGMA integrity_check`` (SQLite), an import is all or nothing (its cases, their timeline
  entries and its audit record, or none of them), every case action is wholly there (state,
  timeline entry, audit record, version) or not at all, and no acknowledged write is lost:
  the child writes a marker to a pipe only AFTER ``commit()`` returns, and every marked write
  must be in the database after the kill.
* Four processes writing the same case rows at once: 0 errors, 0 lost updates (SQLite: WAL,
  busy timeout and ``BEGIN IMMEDIATE``; PostgreSQL: the case row locked ``FOR UPDATE``).

Each module gets its own database (SQLite file, or a fresh PostgreSQL database when
``TEST_DATABASE_URL`` is set), not the shared rolled-back ``db`` fixture.  Children are
forked after the imports (multiprocessing "fork"); each drops the engine it inherited and
makes its own.  100 kills per scenario on SQLite, 20 on PostgreSQL (``QY_CRASH_KILLS``
overrides).
"""
from __future__ import annotations

import io
import multiprocessing
import os
import random
import sys
import time
import traceback

import pytest
from sqlalchemy import func, select, text

from app import create_app
from app import db as app_db
from app.accounts.models import User
from app.audit.models import AuditLog
from app.cases.models import Case, Party, TimelineEntry
from app.cases.queries import get_visible_case
from app.cases.services import apply_action
from app.ledger.importer import import_ledger
from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database
from tests.ledger_helpers import good_row, workbook
from tests.workflow_factories import make_case

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL")

FORK = multiprocessing.get_context("fork")
KILLS = int(os.environ.get("QY_CRASH_KILLS") or (20 if PG_URL else 100))
IMPORT_ROWS = 60
ACTION_CASES = 3


@pytest.fixture(scope="module")
def crash_app(tmp_path_factory):
    url = _create_pg_database(PG_URL) if PG_URL else f"sqlite:///{tmp_path_factory.mktemp('crash') / 'crash.db'}"
    application = create_app({"TESTING": True, "DATABASE_URL": url})
    with application.app_context():
        app_db.Base.metadata.create_all(app_db.get_engine(application))
        from app.demo.seed import seed_demo
        seed_demo(with_cases=False, echo=lambda *_: None)
        app_db.session.commit()
        app_db.session.remove()
    yield application, url
    app_db.session.remove()
    app_db.get_engine(application).dispose()
    if PG_URL:
        _drop_pg_database(url, PG_URL)


# ---------------------------------------------------------------------------------------------
# Child plumbing


def _own_engine(application) -> None:
    """In a forked child: give the inherited engine a new, empty pool (``dispose(close=False)``
    never touches connections of the parent's, and the parent holds none at the fork), so every
    connection the child uses is its own; the engine's compiled-statement cache, warmed by the
    parent, is kept (a fresh engine would spend ~0.1 s compiling before its first write)."""
    engine = app_db.get_engine(application)
    engine.dispose(close=False)
    app_db.session.registry.clear()
    app_db.session.configure(bind=engine)


def _child(target, w: int, application, url, *args) -> None:
    """A child's body: own engine, then ``target``; a failure is reported on the pipe."""
    try:
        _own_engine(application)
        with application.app_context():
            target(w, *args)
    except Exception:  # pragma: no cover - shown by the parent's assertion
        os.write(w, ("ERROR " + traceback.format_exc().replace("\n", " | ") + "\n").encode())
        raise


def _start(target, application, url, *args):
    """Fork a child running ``target``; returns (process, read end of its marker pipe)."""
    app_db.session.remove()  # nothing of the parent's session or pool crosses the fork
    app_db.get_engine(application).dispose()
    r, w = os.pipe()
    proc = FORK.Process(target=_child, args=(target, w, application, url, *args), daemon=True)
    proc.start()
    os.close(w)
    return proc, r


def _markers(r: int) -> list[str]:
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    return [line for line in b"".join(chunks).decode().splitlines() if line]


def _kill_after(proc, delay: float) -> None:
    time.sleep(delay)
    if proc.is_alive():
        proc.kill()  # SIGKILL: no cleanup, no rollback, no atexit
    proc.join()


def _integrity_ok(application) -> None:
    """SQLite's own check of the file after the crash (PostgreSQL recovers by itself)."""
    if PG_URL:
        return
    engine = app_db.make_engine(application.config["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        engine.dispose()  # closed before the next fork


# ---------------------------------------------------------------------------------------------
# Ledger import


def _ledger(n: int) -> bytes:
    rows = [good_row(**{"编号": f"K{n:03d}-{j:03d}", "简要情况": f"第{n}批第{j}件：因排水沟发生争执"})
            for j in range(IMPORT_ROWS)]
    return workbook(rows).getvalue()


def _import_child(w: int, data: bytes, name: str, started: float = 0.0) -> None:
    report = import_ledger(io.BytesIO(data), name)
    assert not report.problems, report.problems
    app_db.session.commit()
    # Acknowledged only once the commit has returned; with the time it took since the fork.
    os.write(w, f"committed {time.monotonic() - started:.4f}\n".encode())


def _import_state(n: int, name: str) -> tuple[int, int, int, int]:
    s = app_db.session
    _one_snapshot(s)
    ids = select(Case.id).where(Case.external_number.like(f"K{n:03d}-%"))
    cases = s.scalar(select(func.count()).select_from(Case).where(Case.external_number.like(f"K{n:03d}-%")))
    timeline = s.scalar(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.case_id.in_(ids)))
    parties = s.scalar(select(func.count()).select_from(Party).where(Party.case_id.in_(ids)))
    audits = s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "ledger.import",
                                                                       AuditLog.object_id == name))
    return cases, timeline, parties, audits


def test_killed_ledger_import_is_all_or_nothing(crash_app):
    application, url = crash_app
    # Warm the engine's statement cache the children inherit with one import in this process.
    data = _ledger(999)
    with application.app_context():
        sink = os.open(os.devnull, os.O_WRONLY)
        _import_child(sink, data, "calibrate.xlsx")
        os.close(sink)
        full = _import_state(999, "calibrate.xlsx")
        app_db.session.remove()
    assert full[0] == IMPORT_ROWS and full[3] == 1

    # The kill lands at a random point of the child's run, scaled by how long the children
    # take to commit here and now (measured as they go: the machine may be busy).
    rng = random.Random(9)
    took = 0.3
    outcomes = {"none": 0, "all": 0}
    for n in range(KILLS):
        name = f"crash-{n}.xlsx"
        data = _ledger(n)
        proc, r = _start(_import_child, application, url, data, name, time.monotonic())
        _kill_after(proc, rng.uniform(0.2 * took, 1.2 * took))
        acked = _markers(r)
        assert not [m for m in acked if m.startswith("ERROR")], acked
        _integrity_ok(application)
        with application.app_context():
            state = _import_state(n, name)
            app_db.session.remove()
        assert state in ((0, 0, 0, 0), full), f"kill {n}: partial import {state}"
        if acked:
            assert acked[0].startswith("committed") and state == full, f"kill {n}: an acknowledged import was lost"
            took = 0.7 * took + 0.3 * float(acked[0].split()[1])
        elif state == (0, 0, 0, 0) and outcomes["all"] == 0:
            took *= 1.15  # nothing committed yet: let the next child run a little longer
        outcomes["all" if state == full else "none"] += 1
    # The kills really landed on both sides of the commit.
    assert outcomes["none"] > 0 and outcomes["all"] > 0, outcomes


# ---------------------------------------------------------------------------------------------
# Case actions


def _actions_child(w: int, numbers: list[str], seed: int, started: float = 0.0) -> None:
    """Pause and resume the clock of the cases, one request-like transaction each, forever."""
    rng = random.Random(seed)
    while True:
        user = app_db.session.scalar(select(User).where(User.username == "village_mediator"))
        case = get_visible_case(user, rng.choice(numbers))
        action = "resume" if case.paused_since else "pause"
        entry = apply_action(user, case, action, {"reason": f"等待鉴定结论 {seed}"})
        app_db.session.commit()
        # Acknowledged after the commit returned (with the time since the fork).
        os.write(w, f"{entry.id} {case.id} {action} {time.monotonic() - started:.4f}\n".encode())
        app_db.session.remove()


def _one_snapshot(s) -> None:
    """Read what follows from one snapshot.  A child killed while its COMMIT was on the wire
    leaves the server finishing that commit after the child is gone: under READ COMMITTED the
    check could see the case row from before it and the timeline from after it (seen on a
    loaded machine).  SQLite's read transaction is one snapshot already."""
    if s.get_bind().dialect.name == "postgresql":
        s.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _check_cases(numbers: list[str], acked: list[str]) -> int:
    s = app_db.session
    _one_snapshot(s)
    for line in acked:
        entry_id, case_id, action, _at = line.split()
        entry = s.get(TimelineEntry, int(entry_id))
        assert entry is not None and (entry.case_id, entry.action) == (int(case_id), action), \
            f"acknowledged action lost: {line}"
    total = 0
    for number in numbers:
        case = s.scalar(select(Case).where(Case.number == number))
        entries = s.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case.id)
                            .order_by(TimelineEntry.id)).all()
        audits = s.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.object_id == number, AuditLog.action.in_(("case.pause", "case.resume"))))
        assert len(entries) == audits, f"{number}: timeline and audit disagree"
        assert case.version == 1 + len(entries), f"{number}: the case row and its timeline disagree"
        paused = bool(entries) and entries[-1].action == "pause"
        assert (case.paused_since is not None) == paused, f"{number}: state and timeline disagree"
        assert (case.pause_reason is not None) == paused
        total += len(entries)
    return total


def test_killed_case_actions_leave_whole_actions_only(crash_app):
    application, url = crash_app
    with application.app_context():
        numbers = [make_case("in_mediation", "village").number for _ in range(ACTION_CASES)]
        app_db.session.commit()
        app_db.session.remove()
        # Warm the statement cache the children inherit: one pause and one resume here.
        for action in ("pause", "resume"):
            user = app_db.session.scalar(select(User).where(User.username == "village_mediator"))
            apply_action(user, get_visible_case(user, numbers[0]), action, {"reason": "预热"})
            app_db.session.commit()
            app_db.session.remove()
    rng = random.Random(4)
    acked_total = 0
    first = 0.02  # how long a child takes to its first commit here and now (measured as they go)
    for n in range(KILLS):
        proc, r = _start(_actions_child, application, url, numbers, n, time.monotonic())
        _kill_after(proc, first + rng.uniform(0.0, 0.08))
        acked = _markers(r)
        assert not [m for m in acked if m.startswith("ERROR")], acked
        acked_total += len(acked)
        first = 0.7 * first + 0.3 * float(acked[0].split()[3]) if acked else first * 1.3
        _integrity_ok(application)
        with application.app_context():
            in_db = _check_cases(numbers, acked)
            app_db.session.remove()
        assert in_db >= acked_total
    assert acked_total >= KILLS // 2, "the children got real work done between kills"


# ---------------------------------------------------------------------------------------------
# Several processes writing the same rows


WRITERS = 4
PER_WRITER = 25


def _writer_child(w: int, numbers: list[str], seed: int) -> None:
    """Record 调解记录 on the shared cases as fast as possible; every error is reported."""
    rng = random.Random(seed)
    for i in range(PER_WRITER):
        try:
            user = app_db.session.scalar(select(User).where(User.username == "village_mediator"))
            case = get_visible_case(user, rng.choice(numbers))
            entry = apply_action(user, case, "log_session",
                                 {"held_on": "2026-01-05", "record": f"进程{seed}第{i}次"})
            app_db.session.commit()
            os.write(w, f"{entry.id} {case.id}\n".encode())
        except Exception as exc:
            app_db.session.rollback()
            os.write(w, f"ERROR {type(exc).__name__}: {str(exc)[:200]}\n".encode())
        finally:
            app_db.session.remove()


def test_four_processes_writing_the_same_cases_lose_nothing(crash_app):
    application, url = crash_app
    with application.app_context():
        cases = [make_case("in_mediation", "village") for _ in range(2)]
        app_db.session.commit()
        numbers = [c.number for c in cases]
        app_db.session.remove()
    started = [_start(_writer_child, application, url, numbers, seed) for seed in range(WRITERS)]
    acked: list[str] = []
    for proc, r in started:
        acked += _markers(r)  # EOF once the child exits
        proc.join(120)
        assert proc.exitcode == 0
    errors = [m for m in acked if m.startswith("ERROR")]
    assert errors == [], errors
    assert len(acked) == WRITERS * PER_WRITER
    _integrity_ok(application)
    with application.app_context():
        s = app_db.session
        total = 0
        for number in numbers:
            case = s.scalar(select(Case).where(Case.number == number))
            n = s.scalar(select(func.count()).select_from(TimelineEntry).where(
                TimelineEntry.case_id == case.id, TimelineEntry.action == "log_session"))
            assert case.version == 1 + n, "every write bumped the version once: no lost update"
            total += n
        assert total == WRITERS * PER_WRITER, "0 lost updates: every acknowledged write is there"
        ids = {int(m.split()[0]) for m in acked}
        assert len(ids) == len(acked) and s.scalar(select(func.count()).select_from(TimelineEntry).where(
            TimelineEntry.id.in_(ids))) == len(ids)
        app_db.session.remove()


def test_sqlite_write_transactions_begin_immediate(crash_app):
    """The setting the above relies on: WAL, a busy timeout, and write transactions (the
    default, e.g. CLI commands and POSTs) opened with BEGIN IMMEDIATE."""
    application, url = crash_app
    if PG_URL:
        pytest.skip("SQLite only")
    engine = app_db.make_engine(url)
    statements = []
    from sqlalchemy import event
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert "BEGIN IMMEDIATE" in statements
