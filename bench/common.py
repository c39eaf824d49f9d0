"""Shared plumbing of the benchmarks: database URLs, fresh databases, the app, seeding, timing.

A benchmark database is created from the models (``create_all``, as the tests do; the search
table/trigram indexes come with it) and seeded with the demo county and ``N`` generated cases
(``app.benchgen.generate_cases``, the code behind ``flask bench seed``).  SQLite files live under
``instance/bench/``; PostgreSQL databases are created with a UTF-8 ctype so pg_trgm indexes
Chinese (``-T template0 -E UTF8 --lc-ctype=C.UTF-8``).
"""
from __future__ import annotations

import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

BENCH_DIR = ROOT / "instance" / "bench"
RESULTS_DIR = ROOT / "bench" / "results"
PG_BASE = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def resolve_url(db: str, name: str) -> str:
    """``sqlite`` / ``postgres`` shorthands → a URL for database ``name``; a full URL is kept."""
    if db == "sqlite":
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{BENCH_DIR / (name + '.db')}"
    if db in ("postgres", "postgresql", "pg"):
        return make_url(PG_BASE).set(database=name).render_as_string(hide_password=False)
    return db


def seeded_database(db: str, cases: int) -> str:
    """The URL of the benchmark database ``run.py`` seeded with ``cases`` cases (``db``: sqlite,
    postgres or a URL); exits with the command to seed it when there is none."""
    url = resolve_url(db, f"qy_bench_{cases}")
    if not database_exists(url):
        raise SystemExit(f"no benchmark database for {cases:,} cases: run bench/run.py --db {db} "
                         f"--cases {cases} first")
    return url


def db_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def drop_and_create(url: str) -> None:
    """Make ``url`` an empty database (delete the SQLite file; drop and create on PostgreSQL)."""
    if db_kind(url) == "sqlite":
        path = Path(make_url(url).database)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    u = make_url(url)
    name = u.database
    if not re.fullmatch(r"[a-z0-9_]+", name or ""):
        raise SystemExit(f"refusing database name {name!r}")
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                          f"LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
    admin.dispose()


def database_exists(url: str) -> bool:
    if db_kind(url) == "sqlite":
        return Path(make_url(url).database).exists()
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"))
    with admin.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}).scalar()
    admin.dispose()
    return bool(found)


def make_app(url: str):
    """The real application (development config) on ``url``."""
    os.environ["DATABASE_URL"] = url
    from app import create_app
    return create_app({"DATABASE_URL": url})


def create_schema_and_seed(app, cases: int, townships: int = 0, echo=print, counties: int = 1) -> float:
    """Schema from the models, the demo county (no demo cases) and ``cases`` generated cases;
    returns the generator's seconds."""
    from app import db as app_db
    from app.benchgen import ensure_counties, ensure_townships, generate_cases
    from app.demo.seed import COUNTY_CODE, seed_demo
    from app.orgs.services import find_by_code
    with app.app_context():
        app_db.Base.metadata.create_all(app_db.get_engine(app))
        seed_demo(with_cases=False, echo=lambda *_: None)
        app_db.session.commit()
        county = find_by_code(COUNTY_CODE)
        every = None
        if counties > 1:
            every = ensure_counties(county, counties, townships or 12 * counties)
            app_db.session.commit()
        elif townships:
            ensure_townships(county, townships)
            app_db.session.commit()
        t0 = time.perf_counter()
        if cases:
            generate_cases(county, cases, echo=echo, counties=every)
        seconds = time.perf_counter() - t0
        app_db.session.commit()  # generate_cases rebuilt the figure summary in the loading transaction
        analyze(app_db.session)
        app_db.session.commit()
        app_db.session.remove()
    return seconds


def analyze(session) -> None:
    """Fresh planner statistics after a bulk load (both databases plan badly without them); on
    SQLite then a WAL checkpoint.  On PostgreSQL also VACUUM, outside a transaction: index-only scans (the report's covering
    indexes) need the visibility map that only VACUUM sets."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.commit()
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        return
    session.execute(text("ANALYZE"))
    session.commit()
    checkpoint(bind)


def checkpoint(engine) -> None:
    """SQLite: copy what is left of the WAL into the database and truncate the file (a load of
    1,000,000 cases leaves it at gigabytes, a size SQLite otherwise keeps).  On a DBAPI
    connection outside any transaction: a checkpoint cannot run inside one."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest-rank) of ``values``."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_mb() -> float:
    """This process's peak resident set size (MB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
