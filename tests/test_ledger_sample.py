"""The sample ledger (tests/data/ledger.xlsx): imports cleanly, re-imports idempotently, exports
and imports back into an empty database with identical figures."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import create_app
from app import db as app_db
from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database

DATA = Path(__file__).parent / "data"
COUNTY = "429960"
WHOLE = (date(2000, 1, 1), date(2099, 12, 31))


def _make_app(tmp_path_factory, name):
    url = _create_pg_database(PG_URL) if PG_URL else f"sqlite:///{tmp_path_factory.mktemp(name) / 'l.db'}"
    application = create_app({"TESTING": True, "DATABASE_URL": url})
    with application.app_context():
        app_db.Base.metadata.create_all(app_db.get_engine(application))
        from app.demo.seed import seed_demo
        seed_demo(with_cases=False, echo=lambda *_: None)
        app_db.session.commit()
        app_db.session.remove()
    return application, url


def _teardown(application, url):
    app_db.session.remove()
    app_db.get_engine(application).dispose()
    if PG_URL:
        _drop_pg_database(url, PG_URL)


@pytest.fixture(scope="module")
def ledger_app(tmp_path_factory):
    application, url = _make_app(tmp_path_factory, "ledger")
    yield application
    _teardown(application, url)


def _counts():
    from app.cases.models import Case, TimelineEntry
    from app.reception.models import ReceptionEntry
    s = app_db.session
    return (s.scalar(select(func.count()).select_from(Case)),
            s.scalar(select(func.count()).select_from(ReceptionEntry)),
            s.scalar(select(func.count()).select_from(TimelineEntry)))


def _fingerprint():
    from app.cases.models import Case
    from app.orgs.services import find_by_code
    from app.reception.models import ReceptionEntry
    from app.reports.queries import Period, figures
    s = app_db.session
    county = find_by_code(COUNTY)
    out = {"figures": figures(county, Period(*WHOLE))}
    for col in (Case.status, Case.outcome, Case.dispute_type, Case.township_id):
        out[col.key] = sorted(s.execute(select(col, func.count()).group_by(col)).all(), key=repr)
    out["headcount"] = s.scalar(select(func.sum(ReceptionEntry.headcount)))
    return out


def _run_import(application, path):
    with application.app_context():
        result = application.test_cli_runner().invoke(args=["ledger", "import", str(path)])
        app_db.session.remove()
    return result


def test_sample_imports_then_reimport_changes_nothing(ledger_app):
    result = _run_import(ledger_app, DATA / "ledger.xlsx")
    assert result.exit_code == 0, result.output
    assert "新增 3965 件" in result.output
    with ledger_app.app_context():
        cases, receptions, timeline = _counts()
        app_db.session.remove()
    assert (cases, receptions) == (3965, 1480)
    again = _run_import(ledger_app, DATA / "ledger.xlsx")
    assert again.exit_code == 0, again.output
    with ledger_app.app_context():
        assert _counts() == (cases, receptions, timeline)
        app_db.session.remove()


def test_reception_sheet_reaches_the_report(ledger_app):
    with ledger_app.app_context():
        if _counts()[0] == 0:
            _run_import(ledger_app, DATA / "ledger.xlsx")
        from app.orgs.services import find_by_code
        from app.reports.queries import Period, figures
        got = figures(find_by_code(COUNTY), Period(date(2025, 1, 1), date(2025, 12, 31)))
        app_db.session.remove()
    assert (got["visitors"], got["direct_answers"]) == (2290, 611)


def test_export_imports_back_to_identical_figures(ledger_app, tmp_path_factory, tmp_path):
    out = tmp_path / "export.xlsx"
    with ledger_app.app_context():
        if _counts()[0] == 0:
            _run_import(ledger_app, DATA / "ledger.xlsx")
        result = ledger_app.test_cli_runner().invoke(args=["ledger", "export", str(out), "--org", COUNTY])
        assert result.exit_code == 0, result.output
        before = _fingerprint()
        app_db.session.remove()
    fresh, url = _make_app(tmp_path_factory, "roundtrip")
    try:
        back = _run_import(fresh, out)
        assert back.exit_code == 0, back.output
        with fresh.app_context():
            after = _fingerprint()
            app_db.session.remove()
    finally:
        _teardown(fresh, url)
    before.pop("township_id"), after.pop("township_id")  # ids may differ between databases
    assert after == before

