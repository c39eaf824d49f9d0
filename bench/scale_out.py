"""Scale-out benchmark (issue 10): the mixed workload through nginx to several app hosts.

    .venv/bin/python bench/scale_out.py [--db postgres|URL] [--cases N] [--hosts H] [--workers W]
                                        [--clients C] [--duration D]
    make bench-scale-out BENCH_SCALE_OUT_ARGS="--cases 1000000"

Runs the mixed workload of ``bench/run.py`` (70 % reads, 20 % searches, 10 % writes, including
every client editing the same 3 cases at once) three ways on one database:

1. **direct** — one gunicorn with H×W workers, clients connecting to it (what ``bench/run.py``
   measures);
2. **nginx → 1 host** — the same gunicorn behind nginx (the proxy's own cost);
3. **nginx → H hosts** — H gunicorn masters with W workers each (separate processes with their
   own caches, as separate machines would run them; ``PROXY_COUNT=1``), behind one nginx
   ``upstream`` with ``least_conn`` and keep-alive, as ``deploy/nginx.conf`` has it.

For each: operations/s, latency p50/p95, errors, writes lost, updates lost, edit conflicts,
the requests each host answered (from nginx's access log, ``$upstream_addr``) and the most
database connections seen at once.  On a 2-core machine the hosts share the cores, so the
run shows the system stays correct and what the proxy costs, not how throughput grows with
hosts (that needs machines).  The database is the one ``bench/run.py`` uses for N (seeded if
missing).  PostgreSQL is the point (SQLite cannot be shared by hosts); a SQLite URL works
for a local check.  The table is printed and written to ``bench/results/scale-out-<db>-<N>.md``.
Needs nginx (``apt-get install nginx``); exit status 1 on any error or loss.
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS_DIR, create_schema_and_seed, database_exists, db_kind,  # noqa: E402
                    drop_and_create, make_app, resolve_url)
from run import Server, Workload, _session_cookies, drive, free_port  # noqa: E402

NGINX_CONF = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    log_format upstream '$upstream_addr $status';
    access_log {tmp}/access.log upstream;
    upstream qingyuan_app {{
        least_conn;
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 21m;
        location / {{
            proxy_pass http://qingyuan_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground with a configuration of its own in a temporary directory."""

    def __init__(self, upstreams: list[int]):
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(exe).exists():
            raise SystemExit("nginx is not installed (apt-get install nginx)")
        self.tmp = Path(tempfile.mkdtemp(prefix="qy-nginx-"))
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.tmp / sub).mkdir()
            os.chmod(self.tmp / sub, 0o777)  # nginx's workers run as another user (bench only)
        os.chmod(self.tmp, 0o755)
        self.port = free_port()
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;" for p in upstreams)
        conf = self.tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=self.tmp, servers=servers, port=self.port))
        self.proc = subprocess.Popen([exe, "-p", str(self.tmp), "-c", str(conf), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20) -> None:
        import httpx
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("nginx exited at start: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                if httpx.get(self.base + "/login", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("nginx did not answer")

    def answered_by(self) -> dict[str, int]:
        """Requests per upstream address, from the access log."""
        counts: collections.Counter = collections.Counter()
        log = self.tmp / "access.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            counts[line.split(" ")[0]] += 1
        return dict(counts)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


class ConnectionWatch:
    """The most connections to the database seen at once (PostgreSQL's pg_stat_activity)."""

    def __init__(self, url: str):
        self.url, self.peak = url, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        if db_kind(self.url) == "postgresql":
            self.peak = 0
            self._thread.start()
        return self

    def _run(self) -> None:
        from sqlalchemy import create_engine, text
        engine = create_engine(self.url)
        with engine.connect() as conn:
            while not self._stop.is_set():
                n = conn.execute(text("SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()")
                                 ).scalar()
                conn.rollback()
                self.peak = max(self.peak, n)
                time.sleep(0.2)
        engine.dispose()

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run_config(name: str, url: str, hosts: int, workers: int, behind_nginx: bool, clients: int,
               duration: float, rng: random.Random, log_dir: Path) -> dict:
    work = Workload(url, rng)
    env = {"PROXY_COUNT": "1"} if behind_nginx else {}
    servers = []
    for i in range(hosts):
        log = log_dir / f"gunicorn-scale-out-{name}-{i}.log"
        log.write_text("")  # this run's server errors only
        servers.append(Server("wsgi:app", workers, url, log, env=env))
    proxy = None
    try:
        for s in servers:
            s.wait_ready("/login")
        if behind_nginx:
            proxy = Nginx([s.port for s in servers])
            proxy.wait_ready()
        base = proxy.base if proxy else servers[0].base
        cookies, token = _session_cookies(base, "county_supervisor")
        with ConnectionWatch(url) as watch:
            result = drive(base, work.mixed, clients, duration, cookies, token)
        result["db_connections_peak"] = watch.peak
        result["answered_by"] = proxy.answered_by() if proxy else {}
    finally:
        if proxy:
            proxy.stop()
        for s in servers:
            s.stop()
    result["peak_worker_rss_mb"] = max(s.peak_rss for s in servers) / 2**20
    return work.check_mixed(result)


def render(meta: dict, rows: dict[str, dict]) -> str:
    lines = [f"# Scale-out: {meta['db']}, {meta['cases']:,} cases",
             "", f"{meta['when']} · {meta['cpus']} CPUs · {meta['clients']} client threads · {meta['duration']:.0f} s "
                 f"each · mixed workload (70 % reads, 20 % searches, 10 % writes) · load {meta['load']}", "",
             "| configuration | ops/s | p50 ms | p95 ms | errors | lost writes | lost updates | conflicts | "
             "requests per host | DB connections (peak) | worker RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for name, r in rows.items():
        per_host = ", ".join(str(n) for _addr, n in sorted(r["answered_by"].items())) or "—"
        lines.append(f"| {name} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['errors']} | "
                     f"{r['lost_writes']} | {r['lost_updates']} | {r['conflicts']} | {per_host} | "
                     f"{r['db_connections_peak'] if r['db_connections_peak'] is not None else '—'} | "
                     f"{r['peak_worker_rss_mb']:.0f} |")
        if r["error_samples"]:
            lines.append(f"|  ↳ errors, e.g. | {'; '.join(r['error_samples'])} |||||||||")
    lines += ["", "Requests per host: what nginx's access log says each upstream answered (a search or an edit is "
                  "two requests). Conflicts are edits refused with 409 because another client saved first: the "
                  "user sees both versions; nothing is lost."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Qingyuan scale-out benchmark: nginx in front of several app hosts")
    ap.add_argument("--db", default="postgres", help="postgres (default), sqlite or a database URL")
    ap.add_argument("--cases", type=int, default=100_000, help="the bench database of this size (seeded if missing)")
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="gunicorn workers per host")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--out", help="where to write the markdown table")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = resolve_url(args.db, f"qy_bench_{args.cases}")
    kind = db_kind(url)
    if not database_exists(url):
        print(f"seeding {args.cases:,} cases into {kind} ...", flush=True)
        drop_and_create(url)
        create_schema_and_seed(make_app(url), args.cases, 0, echo=lambda m: print(m, flush=True))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    total = args.hosts * args.workers
    configs = [(f"direct: 1 host × {total} workers", 1, total, False),
               (f"nginx → 1 host × {total} workers", 1, total, True),
               (f"nginx → {args.hosts} hosts × {args.workers} worker{'s' if args.workers > 1 else ''}",
                args.hosts, args.workers, True)]
    rows = {}
    for i, (name, hosts, workers, proxied) in enumerate(configs):
        print(f"{name} ...", flush=True)
        rows[name] = run_config(str(i), url, hosts, workers, proxied, args.clients, args.duration, rng, RESULTS_DIR)
    meta = {"db": kind, "cases": args.cases, "clients": args.clients, "duration": args.duration,
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
            "load": " / ".join(f"{x:.1f}" for x in os.getloadavg())}
    table = render(meta, rows)
    print(table)
    out = Path(args.out) if args.out else RESULTS_DIR / f"scale-out-{kind}-{args.cases}.md"
    out.write_text(table, encoding="utf-8")
    bad = [n for n, r in rows.items() if r["errors"] or r["lost_writes"] or r["lost_updates"]]
    if len(rows[configs[-1][0]]["answered_by"]) < args.hosts:
        print(f"not every host answered: {rows[configs[-1][0]]['answered_by']}", file=sys.stderr)
        bad.append("hosts")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
