"""Where a request's CPU goes under load: gunicorn workers, the PostgreSQL server, the client.

The throughput ratios of ``run.py`` compare whole machines (2 cores shared by the workers, the
database and the client), and on a shared machine the bare route's rate drifts between runs.
CPU seconds per request, taken per process group while the load runs, say which part to work
on and drift much less.  For each workload (``case``: case pages, ``list``: list pages,
``health``: ``/healthz``, the app's framework cost without login or SQL) and for the bare
Flask route, served as ``run.py`` serves them, it prints the workers', PostgreSQL's and the
client's CPU milliseconds per request and the two ratios.

PostgreSQL's share is the CPU of the server processes serving the workers' connections to the
benchmark database (found in ``pg_stat_activity`` after the warm-up), so other databases' work is
not counted; it reads "—" for SQLite or a server on another host.

    .venv/bin/python bench/cpu_budget.py --db postgres --cases 1000000 --duration 8

The database must exist (seed it with ``run.py``, which names it the same way).
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS_DIR, ROOT, db_kind, seeded_database  # noqa: E402
from run import Server, Workload, _session_cookies, drive  # noqa: E402


def _cpu(processes) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a process that ended meanwhile (a PostgreSQL backend)
            pass
    return total


def _pg_backends(url: str, application_name: str | None = None) -> list:
    """The server processes of the connections to the benchmark database (the workers' pooled
    connections, open after the warm-up), only those named ``application_name`` if given;
    [] if the server is not on this machine."""
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    if application_name is not None:
        sql += " AND application_name = :name"
    try:
        with engine.connect() as conn:
            pids = [r[0] for r in conn.execute(text(sql), {"name": application_name})]
    finally:
        engine.dispose()
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid))
        except psutil.Error:
            return []
    return out


def measure(url: str, target: str, plan, ready: str, workers: int, clients: int, duration: float, log: Path,
            postgres: bool, login: bool, pythonpath: str | None = None) -> dict:
    """Serve ``target``, warm it up, then drive ``plan`` for ``duration`` seconds while counting
    CPU seconds per process group; per request in milliseconds."""
    server = Server(target, workers, url, log, pythonpath=pythonpath)
    try:
        server.wait_ready(ready)
        cookies, token = _session_cookies(server.base, "county_supervisor") if login else ({}, None)
        drive(server.base, plan, clients, 2, cookies, token)  # warm-up: imports, caches, prepared statements
        gunicorn = psutil.Process(server.proc.pid).children()
        me = psutil.Process()
        pg = _pg_backends(url) if postgres else []
        before = (_cpu(gunicorn), _cpu(pg), _cpu([me]))
        result = drive(server.base, plan, clients, duration, cookies, token)
        after = (_cpu(gunicorn), _cpu(pg), _cpu([me]))
    finally:
        server.stop()
    n = max(result["requests"], 1)
    worker, database, client = ((a - b) / n * 1000 for a, b in zip(after, before))
    return {"rps": result["requests"] / duration, "errors": result["errors"], "worker": worker,
            "database": database if pg else None, "client": client}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="postgres", help="sqlite, postgres or a database URL")
    ap.add_argument("--cases", type=int, default=1000000)
    ap.add_argument("--workload", action="append", choices=["case", "list", "health"],
                    help="repeatable; default: case")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=8)
    args = ap.parse_args(argv)
    url = seeded_database(args.db, args.cases)
    postgres = db_kind(url) == "postgresql"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log = RESULTS_DIR / "gunicorn-cpu-budget.log"
    log.write_text("")
    work = Workload(url, random.Random(7))
    plans = {"case": work.case_page, "list": work.list_page, "health": lambda rng: ("GET", "/healthz", None, 200)}
    rows = []
    for name in args.workload or ["case"]:
        rows.append((name, measure(url, "wsgi:app", plans[name], "/login", args.workers, args.clients, args.duration,
                                   log, postgres, login=name != "health")))
    bare = measure(url, "bare_app:app", lambda rng: ("GET", "/bare", None, 200), "/bare", args.workers, args.clients,
                   args.duration, log, False, login=False, pythonpath=str(ROOT / "bench"))
    rows.append(("bare Flask route", bare))

    def total(r):
        return r["worker"] + (r["database"] or 0) + r["client"]

    print(f"{db_kind(url)}, {args.cases:,} cases, {args.workers} workers, {args.clients} clients, {args.duration:g} s each")
    print("| workload | req/s | worker ms | database ms | client ms | total ms | CPU ratio to bare | req/s ratio | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        db = f"{r['database']:.2f}" if r["database"] is not None else "—"
        print(f"| {name} | {r['rps']:.1f} | {r['worker']:.2f} | {db} | {r['client']:.2f} | {total(r):.2f} "
              f"| {total(bare) / total(r) * 100:.1f}% | {r['rps'] / bare['rps'] * 100:.1f}% | {r['errors']} |")
    return 1 if any(r["errors"] for _, r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
