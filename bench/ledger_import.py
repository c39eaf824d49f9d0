"""The ledger import benchmark (issue 8): a 50,000-row ledger in the PRODUCT.md §7 format,
validated (dry run), imported into a fresh database, and imported again (every row updates
its case by 编号; nothing is duplicated).  Target: validate + import < 60 s on SQLite on a
2-core machine, i.e. the import step, which validates every row before it writes anything.

    .venv/bin/python bench/ledger_import.py [--db sqlite|postgres|URL] [--rows 50000]

The ledger is made once (cached under ``instance/bench/``): ``ROWS`` generated cases in a
scratch SQLite database (``app.benchgen``), exported with ``app.ledger.exporter`` unmasked
(phones in full, as a township's own spreadsheet has them).  Each step runs in its own
process so its peak memory is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (BENCH_DIR, RESULTS_DIR, ROOT, create_schema_and_seed, db_kind, drop_and_create,  # noqa: E402
                    make_app, peak_rss_mb, resolve_url)


def make_ledger(rows: int) -> Path:
    """The ``rows``-row ledger file (built once)."""
    path = BENCH_DIR / f"ledger-{rows}.xlsx"
    if path.exists():
        return path
    url = resolve_url("sqlite", f"ledger_source_{rows}")
    drop_and_create(url)
    app = make_app(url)
    create_schema_and_seed(app, rows, echo=None)
    from app.demo.seed import COUNTY_CODE
    from app.ledger.exporter import export_ledger
    from app.orgs.services import find_by_code
    tmp = path.with_suffix(".tmp")
    with app.app_context(), open(tmp, "wb") as fh:
        export_ledger(fh, find_by_code(COUNTY_CODE), unmasked=True)
    tmp.rename(path)
    return path


def step(url: str, path: str, mode: str) -> dict:
    """One import of ``path`` (``validate`` = dry run, ``import``); runs in a child process."""
    app = make_app(url)
    from sqlalchemy import func, select

    from app.cases.models import Case
    from app.db import session
    from app.ledger.importer import import_ledger
    with app.app_context():
        t0, c0 = time.perf_counter(), time.process_time()
        with open(path, "rb") as fh:
            report = import_ledger(fh, Path(path).name, dry_run=(mode == "validate"))
        if mode == "validate" or report.problems:
            session.rollback()
        else:
            session.commit()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        cases = session.scalar(select(func.count(Case.id)))
    return {"mode": mode, "seconds": seconds, "cpu": cpu, "rows": report.rows, "created": report.created,
            "updated": report.updated, "problems": len(report.problems), "first_problems": report.problems[:5],
            "cases_after": cases, "peak_rss_mb": peak_rss_mb()}


def run_step(url: str, path: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--step", mode, "--url", url, "--file", str(path)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"step {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="sqlite, postgres or a database URL")
    ap.add_argument("--rows", type=int, default=50000)
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        print(json.dumps(step(args.url, args.file, args.step), ensure_ascii=False))
        return 0

    t0 = time.perf_counter()
    path = make_ledger(args.rows)
    made = time.perf_counter() - t0
    url = resolve_url(args.db, f"qy_bench_ledger_{args.rows}")
    drop_and_create(url)
    create_schema_and_seed(make_app(url), 0, echo=None)
    results = [run_step(url, path, "validate"), run_step(url, path, "import"), run_step(url, path, "import")]
    results[2]["mode"] = "re-import"
    ok = (all(r["problems"] == 0 for r in results) and results[1]["created"] == args.rows
          and results[2]["updated"] == args.rows and results[2]["created"] == 0
          and results[2]["cases_after"] == args.rows)
    # ``import`` is what ``flask ledger import FILE`` does: every row validated first, then written in
    # one transaction; the ``validate`` step is the separate ``--dry-run`` (a user's preview), not a part of it
    total = next(r["seconds"] for r in results if r["mode"] == "import")
    lines = [f"## Ledger import, {args.rows:,} rows, {db_kind(url)}",
             "", f"ledger file: {path.name} ({path.stat().st_size / 1e6:.1f} MB, made/cached in {made:.1f} s)", "",
             "| step | seconds | CPU s (this process) | created | updated | problems | cases after | peak RSS (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['mode']} | {r['seconds']:.1f} | {r['cpu']:.1f} | {r['created']:,} | {r['updated']:,} | {r['problems']} "
                     f"| {r['cases_after']:,} | {r['peak_rss_mb']:.0f} |")
    load = os.getloadavg()[0]
    lines += ["", f"validate + import (the import step, which validates every row before writing): **{total:.1f} s** "
                  f"(target < 60 s on SQLite; load average {load:.1f} "
                  f"on {os.cpu_count()} CPUs during the run); "
                  f"re-import without duplicates: {'yes' if ok else 'NO'}"]
    if not ok:
        lines.append(f"problems: {[r['first_problems'] for r in results]}")
    text_out = "\n".join(lines)
    print(text_out)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"ledger-{db_kind(url)}-{args.rows}.md").write_text(text_out + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
