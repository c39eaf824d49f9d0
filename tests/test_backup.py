"""``flask backup`` / ``flask restore`` round trip on a committed database of its own."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import create_app
from app import db as app_db
from app.orgs.models import OrgUnit
from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database


@pytest.fixture()
def own_app(tmp_path):
    if PG_URL:
        import shutil
        if not shutil.which("pg_dump"):
            pytest.skip("pg_dump not installed")
        url = _create_pg_database(PG_URL)
    else:
        url = f"sqlite:///{tmp_path / 'own.db'}"
    application = create_app({"TESTING": True, "DATABASE_URL": url})
    with application.app_context():
        app_db.Base.metadata.create_all(app_db.get_engine(application))
        from app.demo.seed import seed_demo
        seed_demo(with_cases=False, echo=lambda *_: None)
        app_db.session.commit()
        app_db.session.remove()
    yield application
    app_db.get_engine(application).dispose()
    app_db.session.remove()
    if PG_URL:
        _drop_pg_database(url, PG_URL)


def _count(application) -> int:
    with application.app_context():
        n = app_db.session.scalar(select(func.count(OrgUnit.id)))
        app_db.session.remove()
        return n


def test_backup_restore_round_trip(own_app, tmp_path):
    runner = own_app.test_cli_runner()
    before = _count(own_app)
    backup = tmp_path / "qy.backup"
    result = runner.invoke(args=["backup", str(backup)])
    assert result.exit_code == 0, result.output
    assert backup.stat().st_size > 0

    with own_app.app_context():  # a change after the backup ...
        county = app_db.session.scalar(select(OrgUnit).where(OrgUnit.code == "429960"))
        from app.orgs.services import add_unit
        add_unit("新乡镇", "township", county)
        app_db.session.commit()
        app_db.session.remove()
    assert _count(own_app) == before + 1

    result = runner.invoke(args=["restore", str(backup), "--yes"])  # ... is gone after restore
    assert result.exit_code == 0, result.output
    assert _count(own_app) == before


def test_restore_refuses_garbage(own_app, tmp_path):
    if PG_URL:
        pytest.skip("SQLite file check")
    bad = tmp_path / "bad.backup"
    bad.write_bytes(b"not a database at all" * 100)
    before = _count(own_app)
    result = own_app.test_cli_runner().invoke(args=["restore", str(bad), "--yes"])
    assert result.exit_code != 0
    assert "无法读取" in result.output
    assert _count(own_app) == before
