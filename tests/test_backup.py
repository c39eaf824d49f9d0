"""``flask backup`` / ``flask restore`` round trip on a committed database of its own."""
from __future__ import annotations

import os

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
            if os.environ.get("REQUIRE_POSTGRES"):  # CI: a missing client is a failure, not a skip
                pytest.fail("REQUIRE_POSTGRES is set but pg_dump is not installed")
            pytest.skip("pg_dump not installed")
        url = _create_pg_database(PG_URL)
    else:
        url = f"sqlite:///{tmp_path / 'own.db'}"
    application = create_app({"TESTING": True, "DATABASE_URL": url, "UPLOAD_DIR": str(tmp_path / "uploads")})
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


def _monthly_json(application) -> dict:
    """The monthly report of June 2026 for the county and 南湖镇, as the API serves it."""
    import json
    from app.orgs.services import find_by_code
    from app.reports.queries import monthly_report
    with application.app_context():
        out = {code: monthly_report(find_by_code(code), 2026, 6) for code in ("429960", "429960002")}
        app_db.session.remove()
    return json.loads(json.dumps(out, default=str, sort_keys=True))


def test_round_trip_gives_the_same_report_figures_and_attachments(own_app, tmp_path):
    import io
    from pathlib import Path
    from app.cases.attachments import add_attachment, open_attachment
    from tests.intake_helpers import user
    from tests.reports_factories import build_fixture
    with own_app.app_context():
        build_fixture()  # the hand-worked June 2026 (tests/test_reports_fixture.py)
        from app.cases.models import Case
        case = app_db.session.scalar(select(Case).order_by(Case.id))
        att = add_attachment(user("village_mediator"), case, io.BytesIO(b"%PDF-1.4\n" + b"0" * 64), "协议.pdf")
        number, att_id = case.number, att.id
        app_db.session.commit()
        app_db.session.remove()
    before = _monthly_json(own_app)
    assert before["429960002"]["registered"] > 0  # the fixture is in
    runner = own_app.test_cli_runner()
    backup = tmp_path / "qy.backup"
    result = runner.invoke(args=["backup", str(backup), "--with-uploads"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "qy.backup.uploads.tar.gz").is_file()

    # Lose data after the backup: more cases, and the attachment files.
    with own_app.app_context():
        from tests.reports_factories import add_case
        from datetime import date
        for day in range(1, 6):
            add_case(date(2026, 6, day))
        app_db.session.commit()
        app_db.session.remove()
    assert _monthly_json(own_app) != before
    import shutil
    shutil.rmtree(tmp_path / "uploads")

    result = runner.invoke(args=["restore", str(backup), "--yes"])
    assert result.exit_code == 0, result.output
    assert _monthly_json(own_app) == before
    with own_app.app_context():
        _att, path = open_attachment(user("county_supervisor"), number, att_id)
        assert Path(path).read_bytes().startswith(b"%PDF-1.4")
        app_db.session.remove()


def test_backup_without_uploads_writes_no_archive(own_app, tmp_path):
    result = own_app.test_cli_runner().invoke(args=["backup", str(tmp_path / "db.backup")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "db.backup.uploads.tar.gz").exists()


def test_restore_uploads_refuses_paths_outside(own_app, tmp_path):
    import io
    import tarfile
    from app.backup import restore_uploads
    archive = tmp_path / "x.backup.uploads.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with own_app.app_context():
        with pytest.raises(tarfile.TarError):
            restore_uploads(tmp_path / "x.backup")
    assert not (tmp_path / "escaped.txt").exists()
