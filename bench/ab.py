"""Two checkouts of the app compared under the same load, in alternating bursts.

On a shared 2-core machine the same code measured twice a minute apart differs by 20 % and
more (the bare route's rate drifts with the neighbours), so two sequential runs of
``cpu_budget.py`` cannot show a 10 % change.  Here both checkouts are served at once (gunicorn,
``--workers`` each, on the same benchmark database) and the load alternates between them in
short bursts (old, new, new, old, …); each side's CPU per request is summed over its bursts for
its workers, its PostgreSQL backends (told apart by ``application_name``) and the client.
Drift then falls on both sides alike.

    git worktree add /tmp/qy-old <commit>
    .venv/bin/python bench/ab.py --old /tmp/qy-old --db postgres --cases 1000000 --workload case

Both sides use this checkout's virtualenv and secrets (``instance/``, or ``SECRET_KEY``,
``QY_DATA_KEYS``, ``QY_HASH_KEY`` from the environment), so the old side needs no set-up of
its own; its code (``app/``, ``templates/``) is its own: gunicorn runs in the checkout
(``--chdir``), whose directory comes first on ``sys.path``, ahead of the editable install's
finder (which setuptools appends to ``sys.meta_path``).  Prints one row per side and the
new/old ratio of each column.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, db_kind, seeded_database  # noqa: E402
from cpu_budget import _cpu, _pg_backends  # noqa: E402
from run import Workload, _session_cookies, drive, free_port  # noqa: E402


def _secrets_env() -> dict:
    """This checkout's keys for both servers (the data must decrypt the same way on each side)."""
    sys.path.insert(0, str(ROOT))
    from config import Config
    config = Config()
    return {"SECRET_KEY": config.SECRET_KEY, "QY_DATA_KEYS": ",".join(config.DATA_KEYS), "QY_HASH_KEY": config.HASH_KEY}


class _Side:
    """One checkout served by gunicorn; its connections named ``application_name`` = ``name``."""

    def __init__(self, name: str, tree: Path, url: str, workers: int, env: dict):
        self.name, self.tree, self.port = name, tree, free_port()
        if db_kind(url) == "postgresql":
            url += ("&" if "?" in url else "?") + f"application_name={name}"
        cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
               "--chdir", str(tree), "--timeout", "120", "--log-level", "warning", "wsgi:app"]
        self.proc = subprocess.Popen(cmd, cwd=tree, env=dict(os.environ, DATABASE_URL=url, **env),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.cpu = [0.0, 0.0, 0.0]  # workers, database, client (seconds)
        self.requests = self.errors = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        import httpx
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn for {self.tree} exited at start")
            try:
                if httpx.get(self.base + "/login", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit(f"gunicorn for {self.tree} did not answer")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def compare(url: str, old: Path, new: Path, workload: str, rounds: int, burst: float, workers: int,
            clients: int) -> dict[str, _Side]:
    env = _secrets_env()
    sides = {"old": _Side("qy_ab_old", old, url, workers, env), "new": _Side("qy_ab_new", new, url, workers, env)}
    try:
        for side in sides.values():
            side.wait_ready()
        work = Workload(url, random.Random(7))
        plan = {"case": work.case_page, "list": work.list_page}[workload]
        auth = {k: _session_cookies(s.base, "county_supervisor") for k, s in sides.items()}
        for k, side in sides.items():  # warm-up: imports, caches, prepared statements
            drive(side.base, plan, clients, 2, *auth[k])
        me = psutil.Process()
        for r in range(rounds):
            for k in (("old", "new") if r % 2 == 0 else ("new", "old")):
                side = sides[k]
                backends = _pg_backends(url, side.name) if db_kind(url) == "postgresql" else []
                groups = (psutil.Process(side.proc.pid).children(), backends, [me])
                before = [_cpu(g) for g in groups]
                result = drive(side.base, plan, clients, burst, *auth[k])
                after = [_cpu(g) for g in groups]
                for i in range(3):
                    side.cpu[i] += after[i] - before[i]
                side.requests += result["requests"]
                side.errors += result["errors"]
    finally:
        for side in sides.values():
            side.stop()
    return sides


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="the other checkout (a git worktree)")
    ap.add_argument("--new", default=str(ROOT), help="default: this checkout")
    ap.add_argument("--db", default="postgres", help="sqlite, postgres or a database URL")
    ap.add_argument("--cases", type=int, default=1000000)
    ap.add_argument("--workload", choices=["case", "list"], default="case")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--burst", type=float, default=2.0, help="seconds of load per burst")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args(argv)
    url = seeded_database(args.db, args.cases)
    sides = compare(url, Path(args.old).resolve(), Path(args.new).resolve(), args.workload, args.rounds,
                    args.burst, args.workers, args.clients)
    postgres = db_kind(url) == "postgresql"
    print(f"{db_kind(url)}, {args.cases:,} cases, {args.workload} pages, {args.rounds} rounds of {args.burst:g} s "
          f"per side, {args.workers} workers each, {args.clients} clients")
    print("| side | checkout | req/s | worker ms | database ms | client ms | total ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for k, side in sides.items():
        n = max(side.requests, 1)
        worker, database, client = (c / n * 1000 for c in side.cpu)
        rows[k] = (side.requests / (args.rounds * args.burst), worker, database, client, worker + database + client)
        db = f"{database:.2f}" if postgres else "—"
        print(f"| {k} | `{side.tree}` | {rows[k][0]:.1f} | {worker:.2f} | {db} | {client:.2f} | {rows[k][4]:.2f} "
              f"| {side.errors} |")
    ratio = [n / o if o else float("nan") for n, o in zip(rows["new"], rows["old"])]
    print(f"| new / old | | {ratio[0]:.3f} | {ratio[1]:.3f} | {ratio[2]:.3f} | {ratio[3]:.3f} | {ratio[4]:.3f} | |"
          if postgres else
          f"| new / old | | {ratio[0]:.3f} | {ratio[1]:.3f} | — | {ratio[3]:.3f} | {ratio[4]:.3f} | |")
    return 1 if any(s.errors for s in sides.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
