"""Static security checks (issue 9): bandit over app/ reports nothing.  Every finding is either
fixed or justified where it stands (``# nosec Bxxx # reason``); the configuration is
``[tool.bandit]`` in pyproject.toml.  ``make lint`` runs the same command."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bandit() -> str:
    exe = Path(sys.executable).with_name("bandit")
    if exe.exists():
        return str(exe)
    found = shutil.which("bandit")
    if found is None:
        pytest.fail("bandit is not installed: `pip install -e .[dev]` (it is in the dev extra)")
    return found


def test_bandit_finds_nothing_in_app():
    proc = subprocess.run([_bandit(), "-r", "app", "-q", "-c", "pyproject.toml", "-f", "json"],  # nosec B603
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)
    findings = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]]
    assert not findings, "bandit findings (fix, or justify with `# nosec Bxxx # reason`):\n" + "\n".join(findings)
    assert not report["errors"], report["errors"]
    assert proc.returncode == 0
    # The scan really covered the code (not an empty or mistyped target).
    assert report["metrics"]["_totals"]["loc"] > 5000


def test_bandit_would_catch_a_finding(tmp_path):
    """The same configuration reports an obvious injection (so a clean run means something)."""
    bad = tmp_path / "app"
    bad.mkdir()
    (bad / "bad.py").write_text("import subprocess\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n",
                                encoding="utf-8")
    proc = subprocess.run([_bandit(), "-r", str(bad), "-q", "-c", str(ROOT / "pyproject.toml"), "-f", "json"],  # nosec B603
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    ids = {r["test_id"] for r in json.loads(proc.stdout)["results"]}
    assert "B602" in ids and proc.returncode == 1
