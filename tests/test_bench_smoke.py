"""The benchmark script runs end to end on a small N (issue 10): it seeds a fresh database,
times every page, serves the app and the bare route under gunicorn, and writes its table.
Timings are not asserted (speed targets live in bench/, not in timed tests).

On SQLite by default; when TEST_DATABASE_URL is set, on a throwaway PostgreSQL database."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from run import REPORT_ROWS, SERVER_ROWS, THROUGHPUT_ROWS  # noqa: E402


@pytest.fixture()
def bench_url(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'bench.db'}"
        return
    url = make_url(base).set(drivername="postgresql+psycopg", database=f"qy_bench_smoke_{uuid.uuid4().hex[:8]}")
    yield url.render_as_string(hide_password=False)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {url.database} WITH (FORCE)"))
    admin.dispose()


def test_bench_runs_end_to_end(bench_url, tmp_path):
    out = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--db", bench_url, "--cases", "300",
                           "--repeat", "2", "--duration", "1.5", "--workers", "1", "--clients", "2",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = out.read_text(encoding="utf-8")
    assert "300 cases" in table
    for row in SERVER_ROWS:
        m = re.search(rf"^\| {re.escape(row)} \| ([\d.]+) \| ([\d.]+) \|", table, re.M)
        assert m, f"no server-time row for {row}"
        assert float(m.group(2)) >= float(m.group(1)) > 0
    for row in REPORT_ROWS:
        assert re.search(rf"^\| {re.escape(row)} \| [\d.]+ \| [\d.]+ \| [\d.]+× \|", table, re.M), row
    for row in THROUGHPUT_ROWS:
        m = re.search(rf"^\| {re.escape(row)} \| ([\d,]+) \| ([\d.]+) \| [\d.]+% \| [\d.]+ \| [\d.]+ \| (\d+) \|$",
                      table, re.M)
        assert m, f"no throughput row for {row}"
        assert int(m.group(1).replace(",", "")) > 0 and m.group(3) == "0", m.group(0)
    m = re.search(r"Writes in the mixed workload: (\d+) accepted, (\d+) lost\. Peak worker RSS: (\d+) MB", table)
    assert m and m.group(2) == "0" and int(m.group(3)) > 0
