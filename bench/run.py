"""The page and throughput benchmark (issue 10): ``make bench`` or

    .venv/bin/python bench/run.py --db sqlite|postgres|URL --cases N [--townships T] [--reuse]
                                  [--repeat R] [--workers W] [--clients C] [--duration D]

1. Seeds a fresh database with the demo county and N generated cases (``app.benchgen``, the
   code of ``flask bench seed``), or reuses it with ``--reuse``.
2. Server time, in process (Flask test client, logged in once): p50/p95 over R requests of
   the ledger list (plain and filtered), a deep keyset page, the case page, Chinese substring
   searches (3+ and 1–2 characters, a rare name and a common phrase each), the county and a
   township monthly report and the leaders' dashboard.  Each report is divided by its floor:
   the bare GROUP BY over ``dispute_case`` computing its main counts for the same period,
   timed in the same run.
3. Throughput: gunicorn with W sync workers on a free loopback port, C client threads
   (httpx) for D seconds of a mixed workload (70 % reads: case page and list; 20 % searches;
   10 % writes: a reception-log POST with its CSRF token), then case-page-only and list-only
   runs, then the same clients against a bare Flask route (``bench/bare_app.py``) served the
   same way.  Requests/s, the ratio to the bare route, errors, writes lost (POSTs answered
   302 but not in the database), and the peak RSS of a worker.

The table is printed and written to ``bench/results/<db>-<N>.md`` (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS_DIR, ROOT, create_schema_and_seed, database_exists, db_kind,  # noqa: E402
                    drop_and_create, make_app, median, pct, resolve_url)

PASSWORD = "Qingyuan@2026"
TOWNSHIP_CODE = "429960002"  # 南湖镇, the township_mediator's
OPEN = ("pending_triage", "in_mediation", "escalated", "transferred")

# Every row the table has (the smoke test checks them all).
SERVER_ROWS = ["list (first page)", "list with filters", "deep page (keyset)", "case page",
               "search 3+ chars (name)", "search 3+ chars (phrase)", "search 1–2 chars (name)",
               "search 1–2 chars (phrase)", "county monthly report", "township monthly report",
               "leaders' dashboard"]
REPORT_ROWS = ["county monthly report", "township monthly report", "leaders' dashboard"]
THROUGHPUT_ROWS = ["mixed workload", "case page only", "list only", "bare Flask route"]


# ---------------------------------------------------------------- in-process server time

def _login(client, username: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    if resp.status_code != 302:
        raise SystemExit(f"login as {username} failed ({resp.status_code})")


def _time_paths(client, paths: list[str], repeat: int, budget: float, warmup: int = 2,
                cpu: list[float] | None = None) -> list[float]:
    """Milliseconds of ``repeat`` GETs cycling through ``paths`` (after ``warmup`` untimed ones),
    stopping early once ``budget`` seconds are spent and at least 3 are timed.  ``cpu`` gets
    this process's CPU milliseconds of each (on SQLite that includes the database's work; it
    does not depend on what else the machine is running)."""
    for i in range(warmup):
        t0 = time.perf_counter()
        client.get(paths[i % len(paths)])
        if time.perf_counter() - t0 > budget / 5:  # a slow page: one warm-up is enough
            break
    out: list[float] = []
    start = time.perf_counter()
    for i in range(repeat):
        path = paths[i % len(paths)]
        t0, c0 = time.perf_counter(), time.process_time()
        resp = client.get(path)
        resp.get_data()
        out.append((time.perf_counter() - t0) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c0) * 1000)
        if resp.status_code != 200:
            raise SystemExit(f"GET {path} answered {resp.status_code}")
        if len(out) >= 3 and time.perf_counter() - start > budget:
            break
    return out


def _time_sql(conn, statements: list[tuple[str, dict]], repeat: int, warmup: int = 2) -> list[float]:
    from sqlalchemy import text
    for _ in range(warmup):
        for sql, params in statements:
            conn.execute(text(sql), params).all()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for sql, params in statements:
            conn.execute(text(sql), params).all()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _floor_sql(scope_col: str, scope_id: int, start: date, end: date) -> list[tuple[str, dict]]:
    """The bare aggregates of a period's main counts: registered/accepted by status and outcome,
    closed by outcome and level (two GROUP BYs over the scope's date indexes)."""
    p = {"o": scope_id, "s": start, "e": end}
    return [(f"SELECT status, outcome, count(*) FROM dispute_case WHERE {scope_col} = :o "
             f"AND registered_on BETWEEN :s AND :e GROUP BY status, outcome", p),
            (f"SELECT outcome, handling_level, count(*) FROM dispute_case WHERE {scope_col} = :o "
             f"AND closed_on BETWEEN :s AND :e GROUP BY outcome, handling_level", p)]


def _dashboard_floor(county_id: int, today: date) -> list[tuple[str, dict]]:
    """The dashboard's main counts: this month's and this year's registrations and closures, and
    the open cases by risk level."""
    year = _floor_sql("county_id", county_id, date(today.year, 1, 1), today)
    month = _floor_sql("county_id", county_id, today.replace(day=1), today)
    open_sql = ("SELECT risk_level, count(*), count(signed_off_at) FROM dispute_case WHERE county_id = :o "
                "AND status IN ('pending_triage','in_mediation','escalated','transferred') GROUP BY risk_level")
    return year + month + [(open_sql, {"o": county_id})]


def _pick(conn, sql: str, params: dict | None = None):
    from sqlalchemy import text
    return conn.execute(text(sql), params or {}).scalar()


def server_times(app, repeat: int, rng: random.Random, budget: float = 20) -> tuple[dict, dict, dict]:
    """(p50/p95 per page, floor timings per report, details) measured in process."""
    from sqlalchemy import text
    from app.cases.queries import encode_cursor
    from app.db import get_engine
    from app.orgs.services import find_by_code
    from app.reports.services import last_month
    from app.templating import today_local
    with app.app_context():
        today = today_local()
        year, month = last_month(today)
        county = find_by_code("429960")
        township = find_by_code(TOWNSHIP_CODE)
        county_id, township_id = county.id, township.id
    engine = get_engine(app)
    with engine.connect() as conn:
        n = _pick(conn, "SELECT count(*) FROM dispute_case")
        top = _pick(conn, "SELECT max(id) FROM dispute_case") or 0
        ids = rng.sample(range(1, top + 1), min(200, top))
        numbers = [r[0] for r in conn.execute(text("SELECT number FROM dispute_case WHERE id IN (%s)"
                                                   % ",".join(map(str, ids))))][:60]
        deep_offset = int(n * 0.8)
        deep = conn.execute(text("SELECT registered_on, id FROM dispute_case WHERE county_id = :c "
                                 "ORDER BY registered_on DESC, id DESC LIMIT 1 OFFSET :o"),
                            {"c": county_id, "o": deep_offset}).first()
        names3 = [r[0] for r in conn.execute(text(
            "SELECT name FROM party WHERE length(name) = 3 AND id % 97 = 0 LIMIT 40")).all()]
        names2 = [r[0] for r in conn.execute(text(
            "SELECT name FROM party WHERE length(name) = 2 AND id % 89 = 0 LIMIT 40")).all()]
    reg = deep[0] if isinstance(deep[0], date) else date.fromisoformat(str(deep[0]))
    deep_cursor = encode_cursor("-registered", reg, deep[1])
    month_s = f"{year:04d}-{month:02d}"
    from app.reports.queries import month_period
    mp = month_period(year, month)

    results: dict[str, list[float]] = {}
    sup, twn = app.test_client(), app.test_client()
    _login(sup, "county_supervisor")
    _login(twn, "township_mediator")
    cpu_ms: list[list[float]] = []

    def timed(client, paths):
        cpu: list[float] = []
        out = _time_paths(client, paths, repeat, budget, cpu=cpu)
        cpu_ms.append(cpu)
        return out
    results["list (first page)"] = timed(sup, ["/cases/"])
    filtered = "/cases/?" + urlencode({"type": "邻里", "source": "网格上报", "status": "closed",
                                       "township": TOWNSHIP_CODE})
    results["list with filters"] = timed(sup, [filtered])
    results["deep page (keyset)"] = timed(sup, [f"/cases/?cursor={deep_cursor}"])
    results["case page"] = timed(sup, [f"/cases/{n}" for n in numbers])

    def search(terms):
        return timed(sup, ["/cases/?" + urlencode({"q": t}) for t in terms])
    results["search 3+ chars (name)"] = search(names3 or ["王子涵"])
    results["search 3+ chars (phrase)"] = search(["排水沟", "宅基地边界", "交通事故赔偿"])
    results["search 1–2 chars (name)"] = search(names2 or ["王伟"])
    results["search 1–2 chars (phrase)"] = search(["漏水", "噪音", "工资"])
    results["county monthly report"] = timed(sup, [f"/reports/monthly?month={month_s}"])
    results["township monthly report"] = timed(twn, [f"/reports/monthly?month={month_s}"])
    results["leaders' dashboard"] = timed(sup, ["/reports/dashboard"])
    with engine.connect() as conn:
        floors = {
            "county monthly report": _time_sql(conn, _floor_sql("county_id", county_id, mp.start, mp.end), repeat),
            "township monthly report": _time_sql(conn, _floor_sql("township_id", township_id, mp.start, mp.end),
                                                 repeat),
            "leaders' dashboard": _time_sql(conn, _dashboard_floor(county_id, today), repeat),
        }
    details = {"cases": n, "month": month_s, "deep_offset": deep_offset, "names3": len(names3),
               "cpu": dict(zip(results, cpu_ms))}
    return results, floors, details


# ---------------------------------------------------------------- gunicorn throughput

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with ``workers`` sync workers on a free loopback port; its workers' peak RSS."""

    def __init__(self, target: str, workers: int, url: str, log: Path, pythonpath: str | None = None):
        self.port = free_port()
        env = dict(os.environ, DATABASE_URL=url)
        cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
               "--timeout", "120", "--log-level", "warning", "--error-logfile", str(log)]
        if pythonpath:
            cmd += ["--pythonpath", pythonpath]
        self.proc = subprocess.Popen(cmd + [target], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._monitor = threading.Thread(target=self._watch, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        import httpx
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("gunicorn exited at start")
            try:
                if httpx.get(self.base + path, timeout=5).status_code < 500:
                    self._monitor.start()
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not answer")

    def _watch(self) -> None:
        import psutil
        master = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                for child in master.children():
                    self.peak_rss = max(self.peak_rss, child.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _session_cookies(base: str, username: str) -> tuple[dict, str]:
    """Log in once; the signed session cookie and a CSRF token every client thread shares."""
    import httpx
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as c:
        html = c.get("/login").text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        resp = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        if resp.status_code != 302:
            raise SystemExit(f"login as {username} failed ({resp.status_code})")
        html = c.get("/reception/").text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        return dict(c.cookies), token


def drive(base: str, plan, clients: int, duration: float, cookies: dict | None = None,
          token: str | None = None) -> dict:
    """``clients`` threads issuing ``plan(rng)`` → (method, path, data, expected status) for
    ``duration`` seconds; requests/s, errors and 302-answered POSTs."""
    import httpx
    counts = {"requests": 0, "errors": 0, "writes": 0, "latencies": [], "error_samples": []}
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        n = errors = writes = 0
        lat = []
        samples = []
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60, cookies=cookies or {}) as c:
            while time.perf_counter() < stop_at:
                method, path, data, expect = plan(rng)
                t0 = time.perf_counter()
                try:
                    if method == "POST":
                        resp = c.post(path, data=dict(data, csrf_token=token))
                    else:
                        resp = c.get(path)
                    ok = resp.status_code == expect
                except httpx.HTTPError as exc:
                    ok, resp = False, exc
                lat.append((time.perf_counter() - t0) * 1000)
                n += 1
                if not ok:
                    errors += 1
                    if len(samples) < 3:
                        samples.append(f"{method} {path}: {getattr(resp, 'status_code', resp)}")
                elif method == "POST":
                    writes += 1
        with lock:
            counts["requests"] += n
            counts["errors"] += errors
            counts["writes"] += writes
            counts["latencies"] += lat
            counts["error_samples"] += samples

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = counts.pop("latencies") or [0.0]
    return dict(counts, rps=counts["requests"] / elapsed, p50=median(lat), p95=pct(lat, 95))


def throughput(url: str, workers: int, clients: int, duration: float, rng: random.Random, log: Path) -> dict:
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.connect() as conn:
        numbers = [r[0] for r in conn.execute(text("SELECT number FROM dispute_case ORDER BY id DESC LIMIT 5000"))]
        numbers = rng.sample(numbers, min(500, len(numbers)))
        names = [r[0] for r in conn.execute(text("SELECT name FROM party WHERE id % 53 = 0 LIMIT 200"))]
        before = conn.execute(text("SELECT count(*) FROM reception_entry")).scalar()
    lists = ["/cases/", "/cases/?" + urlencode({"type": "邻里", "status": "closed"}),
             "/cases/?" + urlencode({"township": TOWNSHIP_CODE, "risk": "high"}), "/cases/?status=open"]
    terms = names + ["排水沟", "漏水", "宅基地", "工资"]

    def case_page(rng):
        return "GET", f"/cases/{rng.choice(numbers)}", None, 200

    def list_page(rng):
        return "GET", rng.choice(lists), None, 200

    def mixed(rng):
        x = rng.random()
        if x < 0.35:
            return case_page(rng)
        if x < 0.70:
            return list_page(rng)
        if x < 0.90:
            return "GET", "/cases/?" + urlencode({"q": rng.choice(terms)}), None, 200
        return "POST", "/reception/", {"received_at": "", "visitor_names": f"压测{rng.randint(1, 10**6)}",
                                       "headcount": "1", "phone": "", "matter": "基准测试来访",
                                       "handling": "direct_answer", "department": "", "notes": ""}, 302

    out = {}
    log.write_text("")  # this run's server errors only
    server = Server("wsgi:app", workers, url, log)
    try:
        server.wait_ready("/login")
        cookies, token = _session_cookies(server.base, "county_supervisor")
        out["mixed workload"] = drive(server.base, mixed, clients, duration, cookies, token)
        out["case page only"] = drive(server.base, case_page, clients, duration, cookies, token)
        out["list only"] = drive(server.base, list_page, clients, duration, cookies, token)
    finally:
        server.stop()
    app_rss = server.peak_rss
    with engine.connect() as conn:
        after = conn.execute(text("SELECT count(*) FROM reception_entry")).scalar()
    engine.dispose()
    out["mixed workload"]["lost_writes"] = out["mixed workload"]["writes"] - (after - before)
    bare = Server("bare_app:app", workers, url, log, pythonpath=str(ROOT / "bench"))
    try:
        bare.wait_ready("/bare")
        out["bare Flask route"] = drive(bare.base, lambda rng: ("GET", "/bare", None, 200), clients, duration)
    finally:
        bare.stop()
    out["peak_worker_rss_mb"] = app_rss / 2**20
    out["bare_worker_rss_mb"] = bare.peak_rss / 2**20
    return out


# ---------------------------------------------------------------- table

TARGETS = {"list (first page)": 100, "list with filters": 100, "deep page (keyset)": 100, "case page": 50,
           "search 3+ chars (name)": 100, "search 3+ chars (phrase)": 100, "search 1–2 chars (name)": 500,
           "search 1–2 chars (phrase)": 500, "county monthly report": 200}


def render(meta: dict, pages: dict, floors: dict, tput: dict | None) -> str:
    lines = [f"# Benchmark: {meta['db']}, {meta['cases']:,} cases",
             "", f"{meta['when']} · {meta['cpus']} CPUs · seed {meta['seed_note']} · month {meta['month']} · "
                 f"up to {meta['repeat']} requests per page (n: how many), load average {meta['load']}", "",
             "## Server time (in process, ms)", "",
             "| page | p50 | p95 | target p95 | meets | n | CPU p50 |", "|---|---:|---:|---:|---|---:|---:|"]
    for name in SERVER_ROWS:
        v = pages[name]
        target = TARGETS.get(name)
        meets = "" if target is None else ("yes" if pct(v, 95) <= target else "**no**")
        cpu = meta["cpu"].get(name) or [0.0]
        lines.append(f"| {name} | {median(v):.1f} | {pct(v, 95):.1f} | {target or '—'} | {meets} | {len(v)} "
                     f"| {median(cpu):.1f} |")
    lines += ["", "CPU p50: this process's CPU time per request, which does not depend on what else the machine "
                  "runs (SQLite: includes the database's work; PostgreSQL: excludes the server's).",
              "", "## Reports against their SQL floor", "",
              "| report | p50 (ms) | floor p50 (ms) | ratio | target |", "|---|---:|---:|---:|---|"]
    for name in REPORT_ROWS:
        page, floor = median(pages[name]), median(floors[name])
        target = "≤ 1.5×" if name == "county monthly report" else "—"
        lines.append(f"| {name} | {page:.1f} | {floor:.2f} | {page / floor if floor else float('inf'):.1f}× | {target} |")
    if tput:
        bare = tput["bare Flask route"]["rps"]
        lines += ["", f"## Throughput (gunicorn, {meta['workers']} sync workers, {meta['clients']} client threads, "
                      f"{meta['duration']:g} s each)", "",
                  "| workload | requests | req/s | ratio to bare | client p50 (ms) | client p95 (ms) | errors |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name in THROUGHPUT_ROWS:
            r = tput[name]
            lines.append(f"| {name} | {r['requests']:,} | {r['rps']:.1f} | {r['rps'] / bare:.1%} | {r['p50']:.1f} | "
                         f"{r['p95']:.1f} | {r['errors']} |")
        mixed = tput["mixed workload"]
        lines += ["", f"Writes in the mixed workload: {mixed['writes']} accepted, {mixed['lost_writes']} lost. "
                      f"Peak worker RSS: {tput['peak_worker_rss_mb']:.0f} MB "
                      f"(bare app worker: {tput['bare_worker_rss_mb']:.0f} MB)."]
        samples = sum((tput[n]["error_samples"] for n in THROUGHPUT_ROWS), [])
        if samples:
            lines.append("Error samples: " + "; ".join(samples[:6]))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Qingyuan page and throughput benchmark (issue 10)")
    ap.add_argument("--db", default=os.environ.get("BENCH_DB", "sqlite"), help="sqlite, postgres or a database URL")
    ap.add_argument("--cases", type=int, default=int(os.environ.get("BENCH_CASES", 100000)))
    ap.add_argument("--townships", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="reuse the database if it already holds cases")
    ap.add_argument("--repeat", type=int, default=30, help="requests per page (fewer once --budget is spent)")
    ap.add_argument("--budget", type=float, default=20, help="seconds per page before stopping early")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--out", help="where to write the markdown table (default bench/results/<db>-<N>.md)")
    ap.add_argument("--json", help="also write the raw figures as JSON here")
    args = ap.parse_args(argv)
    # A terminated run still stops its gunicorn (the ``finally`` blocks run on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    name = f"qy_bench_{args.cases}" + (f"_t{args.townships}" if args.townships else "")
    url = resolve_url(args.db, name)
    kind = db_kind(url)
    seed_note = "reused"
    if not (args.reuse and database_exists(url)):
        print(f"seeding {args.cases:,} cases into {kind} ...", flush=True)
        drop_and_create(url)
        seconds = create_schema_and_seed(make_app(url), args.cases, args.townships,
                                         echo=lambda m: print(m, flush=True))
        seed_note = f"{seconds:.0f} s"
    app = make_app(url)
    rng = random.Random(10)
    print("server time ...", flush=True)
    pages, floors, details = server_times(app, args.repeat, rng, args.budget)
    tput = None
    if not args.no_throughput:
        print("throughput ...", flush=True)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        tput = throughput(url, args.workers, args.clients, args.duration, rng,
                          RESULTS_DIR / f"gunicorn-{kind}-{args.cases}.log")
    meta = {"db": kind, "cases": details["cases"], "month": details["month"], "repeat": args.repeat,
            "workers": args.workers, "clients": args.clients, "duration": args.duration,
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
            "seed_note": seed_note, "cpu": details["cpu"], "load": " / ".join(f"{x:.1f}" for x in os.getloadavg())}
    table = render(meta, pages, floors, tput)
    print(table)
    out = Path(args.out) if args.out else RESULTS_DIR / f"{kind}-{args.cases}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "pages": pages, "floors": floors, "throughput": tput},
                                              ensure_ascii=False, default=str), encoding="utf-8")
    errors = sum(tput[n]["errors"] for n in THROUGHPUT_ROWS) if tput else 0
    return 1 if errors or (tput and tput["mixed workload"]["lost_writes"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
