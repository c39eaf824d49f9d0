"""Importing is limited to the importing user's jurisdiction: a township user can neither create
cases (or reception entries) in another township nor overwrite another township's case by its
编号; each such row is a problem with its cell and nothing is written.  The CLI (no user) keeps
county-wide rights."""
from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from app.cases.models import Case, TimelineEntry
from app.ledger.importer import import_ledger
from app.reception.models import ReceptionEntry
from tests.helpers import csrf_token
from tests.ledger_helpers import good_row, workbook
from tests.workflow_factories import OTHER_TOWNSHIP_VILLAGE, make_case, user

OTHER = {"乡镇": "西坪镇", "村(社区)": "周家冲村"}  # 429960003010, another township of the county


def _counts(db):
    return (db.scalar(select(func.count()).select_from(Case)),
            db.scalar(select(func.count()).select_from(ReceptionEntry)),
            db.scalar(select(func.count()).select_from(TimelineEntry)))


def _upload(client, data, name="t.xlsx"):
    token = csrf_token(client, "/ledger/")
    return client.post("/ledger/preview", data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_web_import_of_a_row_for_another_township_is_refused(client, auth, db):
    auth.login("township_director")  # 南湖镇
    before = _counts(db)
    rows = [good_row(编号="MINE-1"), good_row(编号="THEIRS-1", **OTHER)]
    resp = _upload(client, workbook(rows).getvalue())
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "矛盾纠纷台账!D3" in html and "不在您的管辖范围内" in html
    assert not re.search(r'name="token"', html)  # no confirm button
    assert _counts(db) == before
    # the confirm step's import (same call, not a dry run) refuses it too
    report = import_ledger(workbook(rows), "t.xlsx", user=user("township_director"))
    assert any(p.startswith("矛盾纠纷台账!D3:") and "西坪镇" in p for p in report.problems), report.problems
    assert _counts(db) == before


def test_reception_row_for_another_township_is_refused(db):
    before = _counts(db)
    report = import_ledger(workbook([good_row()], reception=[["2025-03-01", "西坪镇", "王某", 1, "咨询", "直接答复", None]]),
                           "t.xlsx", user=user("township_director"))
    assert any(p.startswith("来访登记!B2:") and "管辖范围" in p for p in report.problems), report.problems
    assert _counts(db) == before


def test_matched_case_in_another_township_is_not_overwritten(client, auth, db):
    theirs = make_case("in_mediation", "village", village=OTHER_TOWNSHIP_VILLAGE, external_number="XP-7",
                       summary="西坪镇的纠纷")
    db.flush()
    snapshot = (theirs.township_id, theirs.summary, theirs.version, theirs.status)
    before = _counts(db)
    auth.login("township_director")
    # By its external number and by our own case number, moved into 南湖镇 in the row.
    for number in ("XP-7", theirs.number):
        resp = _upload(client, workbook([good_row(编号="OK-1"), good_row(编号=number, 简要情况="被改写")]).getvalue())
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422 and "矛盾纠纷台账!A3" in html and "管辖范围" in html, html[-2000:]
        report = import_ledger(workbook([good_row(编号=number, 简要情况="被改写")]), "t.xlsx",
                               user=user("township_director"))
        assert any(p.startswith("矛盾纠纷台账!A2:") and number in p for p in report.problems), report.problems
    db.expire_all()
    case = db.get(Case, theirs.id)
    assert (case.township_id, case.summary, case.version, case.status) == snapshot
    assert _counts(db) == before


def test_county_users_and_the_cli_import_county_wide(runner, db, tmp_path):
    report = import_ledger(workbook([good_row(编号="CTY-1", **OTHER)]), "t.xlsx", user=user("county_supervisor"))
    assert report.ok and report.created == 1, report.problems
    path = tmp_path / "cli.xlsx"
    path.write_bytes(workbook([good_row(编号="CLI-XP", **OTHER)]).getvalue())
    result = runner.invoke(args=["ledger", "import", str(path)])
    assert result.exit_code == 0, result.output
    case = db.scalar(select(Case).where(Case.external_number == "CLI-XP"))
    assert case is not None and case.township.name == "西坪镇"
