"""The sample county (tests/data, copied from shared/data/sample-county): its ledger imported
once into a database of its own gives exactly the figures of expected.json, through the CLI
and through the API, on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app import db as app_db
from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sample_app(tmp_path_factory):
    url = _create_pg_database(PG_URL) if PG_URL else f"sqlite:///{tmp_path_factory.mktemp('sample') / 'sample.db'}"
    application = create_app({"TESTING": True, "DATABASE_URL": url})
    with application.app_context():
        app_db.Base.metadata.create_all(app_db.get_engine(application))
        from app.demo.seed import seed_demo
        from app.ledger.importer import import_ledger
        seed_demo(with_cases=False, echo=lambda *_: None)
        with open(DATA / "ledger.xlsx", "rb") as fh:
            report = import_ledger(fh, filename="ledger.xlsx")
        assert report.ok, report.problems[:5]
        from app.accounts.models import User
        from app.accounts.services import issue_token
        admin = app_db.session.scalar(select(User).where(User.username == "county_supervisor"))
        application.config["SAMPLE_TOKEN"] = issue_token(admin)
        app_db.session.commit()
        app_db.session.remove()
    yield application
    app_db.session.remove()
    app_db.get_engine(application).dispose()
    if PG_URL:
        _drop_pg_database(url, PG_URL)


def _cli_args(entry):
    if entry["kind"] == "monthly":
        return ["report", "monthly", "--org", entry["org"], "--month", entry["from"][:7], "--json"]
    return ["report", "period", "--org", entry["org"], "--from", entry["from"], "--to", entry["to"], "--json"]


def _api_url(entry):
    if entry["kind"] == "monthly":
        return f"/api/v1/reports/monthly?org={entry['org']}&month={entry['from'][:7]}"
    return f"/api/v1/reports/period?org={entry['org']}&from={entry['from']}&to={entry['to']}"


def _assert_matches(expected: dict, got: dict, path: str = "") -> None:
    for key, value in expected.items():
        assert key in got, f"{path}{key} missing"
        if isinstance(value, dict):
            assert isinstance(got[key], dict), f"{path}{key}"
            if key in ("by_type", "by_source"):
                # every row present must match, and no extra non-empty rows
                assert set(got[key]) == set(value), f"{path}{key} keys differ"
            _assert_matches(value, got[key], f"{path}{key}.")
        else:
            assert got[key] == value, f"{path}{key}: expected {value}, got {got[key]}"


@pytest.mark.parametrize("entry", EXPECTED, ids=[e["label"] for e in EXPECTED])
def test_cli_gives_expected_figures(sample_app, entry):
    with sample_app.app_context():
        result = sample_app.test_cli_runner().invoke(args=_cli_args(entry))
        app_db.session.remove()
    assert result.exit_code == 0, result.output
    _assert_matches(entry["expected"], json.loads(result.output))


@pytest.mark.parametrize("entry", EXPECTED, ids=[e["label"] for e in EXPECTED])
def test_api_gives_the_same_json_as_the_cli(sample_app, entry):
    token = sample_app.config["SAMPLE_TOKEN"]
    resp = sample_app.test_client().get(_api_url(entry), headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    api_json = resp.get_json()
    _assert_matches(entry["expected"], api_json)
    with sample_app.app_context():
        cli_json = json.loads(sample_app.test_cli_runner().invoke(args=_cli_args(entry)).output)
        app_db.session.remove()
    assert api_json == cli_json
