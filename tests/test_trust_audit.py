"""The audit trail's coverage and immutability (issue 9), and the holiday calendar's input checks.

- Every allowed state-changing POST of the authorization table that changes the database
  leaves at least one new ``AuditLog`` row (and enough of them do change it for the walk to
  mean something).
- Exports of the monthly report, attachment downloads, calendar edits and the routing table
  are audited.
- The ORM refuses to update or delete audit rows; no code of app/ deletes them (≥ 180 days).
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from app.audit.models import AuditLog, AuditLogImmutable
from app.audit.services import audit
from app.db import session
from app.settings.models import CalendarDay
from tests.helpers import csrf_token
from tests.intake_helpers import login
from tests.test_trust_authz import ROUTES, _request, database_digest, worlds, worlds_for  # noqa: F401

MONTH = "2026-10"


def _audit_count() -> int:
    return session.scalar(select(func.count()).select_from(AuditLog))


def _last(action: str):
    return session.scalar(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id.desc()))


# ---------------------------------------------------------------------------------------------
# The walk: allowed writes are audited

# Who performs each write: the first role in this order that the table allows.
ROLE_ORDER = ("village_mediator", "township_mediator", "township_director", "county_supervisor", "grid_worker",
              "township_secretary", "county_leader", "dept_liaison", "admin")
NOT_WRITES = {"/login", "/login/code", "/login/totp-setup", "/logout", "/cases/search", "/api/v1/cases/search",
              "/cases/export.xlsx"}


def _writes_by_role():
    plan: dict[str, list] = {}
    for (rule, method), exp in sorted(ROUTES.items()):
        if method == "GET" or rule in NOT_WRITES or exp.api:
            continue
        role = next(r for r in ROLE_ORDER if r in exp.allow)
        plan.setdefault(role, []).append((rule, method, exp))
    return sorted(plan.items(), key=lambda kv: ROLE_ORDER.index(kv[0]))


def test_every_allowed_write_leaves_an_audit_row(app, client, auth, worlds):  # noqa: F811
    changed, silent = [], []
    for role, writes in _writes_by_role():
        login(auth, role)
        token = csrf_token(client, "/")
        w = worlds_for(role, worlds)["in"]
        for rule, method, exp in writes:
            before, count = database_digest(), _audit_count()
            resp = _request(client, exp, method, w.fmt(exp.url), None, token, w)
            assert resp.status_code < 500, f"{method} {rule} as {role}: {resp.status_code}"
            if database_digest() != before:
                changed.append(rule)
                if _audit_count() <= count:
                    silent.append(f"{method} {rule} as {role} ({resp.status_code})")
    assert not silent, "writes that left no audit record:\n" + "\n".join(silent)
    assert len(changed) >= 12, f"too few writes succeeded for the walk to mean anything: {changed}"


def test_api_writes_are_audited(app, client, db):
    from tests.intake_helpers import api_token, intake_body
    token = api_token("county_supervisor")
    session.commit()
    count = _audit_count()
    resp = client.post("/api/v1/cases", json=intake_body(), headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201
    assert _audit_count() > count and _last("case.register").object_id == resp.get_json()["number"]


# ---------------------------------------------------------------------------------------------
# Reads that are audited: the monthly report's Excel and attachment downloads


def test_monthly_report_export_is_audited(client, auth, db):
    login(auth, "county_supervisor")
    resp = client.get(f"/reports/monthly.xlsx?org=429960&month={MONTH}")
    assert resp.status_code == 200
    entry = _last("report.export")
    assert entry and entry.object_id == "429960" and entry.detail["month"] == MONTH
    assert entry.username == "county_supervisor"


def test_attachment_download_is_audited(client, auth, db):
    from app.cases.attachments import add_attachment
    from tests.intake_helpers import user
    from tests.workflow_factories import make_case
    case = make_case(summary="附件")
    att = add_attachment(user("village_mediator"), case, io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32), "a.png")
    session.commit()
    login(auth, "township_mediator")
    assert client.get(f"/cases/{case.number}/attachments/{att.id}").status_code == 200
    entry = _last("case.attachment.download")
    assert entry and entry.object_id == case.number and entry.detail["attachment"] == att.id
    assert entry.username == "township_mediator"
    count = _audit_count()
    assert client.get(f"/cases/{case.number}/attachments/{att.id + 999}").status_code == 404
    assert _audit_count() == count  # nothing read, nothing recorded


# ---------------------------------------------------------------------------------------------
# The holiday calendar and the routing table


def _calendar_rows():
    return session.execute(select(CalendarDay.day, CalendarDay.is_working_day, CalendarDay.name)
                           .order_by(CalendarDay.day)).all()


@pytest.mark.parametrize("year", ["99999999", "0", "-5", "abc", "10000", "1e3"])
def test_calendar_bad_year_is_a_chinese_400(client, auth, db, year):
    login(auth, "admin")
    resp = client.get(f"/workflow/calendar?year={year}")
    assert resp.status_code == 400
    assert "年份无效" in resp.get_data(as_text=True)


@pytest.mark.parametrize("bad", ["not-a-date", "2026-13-45", "99999-01-01", " ", "2026-02-30x"])
def test_calendar_bad_delete_is_a_chinese_400_and_changes_nothing(client, auth, db, bad):
    session.add(CalendarDay(day=__import__("datetime").date(2026, 10, 1), is_working_day=False, name="国庆节"))
    session.commit()
    login(auth, "admin")
    before, count = _calendar_rows(), _audit_count()
    resp = client.post("/workflow/calendar", data={"delete": bad, "csrf_token": csrf_token(client, "/workflow/calendar")})
    if bad.strip():
        assert resp.status_code == 400 and "要删除的日期无效" in resp.get_data(as_text=True)
    else:
        assert resp.status_code < 500
    assert _calendar_rows() == before and _audit_count() == count


def test_calendar_add_and_delete_are_audited(client, auth, db):
    login(auth, "admin")
    token = csrf_token(client, "/workflow/calendar")
    resp = client.post("/workflow/calendar", data={"day": "2026-12-25", "kind": "holiday", "name": "测试假日",
                                                    "csrf_token": token})
    assert resp.status_code == 302
    entry = _last("calendar.save")
    assert entry.object_id == "2026-12-25" and entry.detail["name"] == "测试假日" and entry.detail["before"] is None
    client.post("/workflow/calendar", data={"day": "2026-12-25", "kind": "working", "name": "调休",
                                             "csrf_token": token})
    assert _last("calendar.save").detail["before"] == {"working_day": False, "name": "测试假日"}
    resp = client.post("/workflow/calendar?year=2026", data={"delete": "2026-12-25", "csrf_token": token})
    assert resp.status_code == 302
    entry = _last("calendar.delete")
    assert entry.object_id == "2026-12-25" and entry.username == "admin"
    # A date not in the calendar: a message, no audit row, no error.
    count = _audit_count()
    resp = client.post("/workflow/calendar", data={"delete": "2026-12-26", "csrf_token": token},
                       follow_redirects=True)
    assert resp.status_code == 200 and "日历中没有该日期" in resp.get_data(as_text=True)
    assert _audit_count() == count


def test_calendar_form_year_out_of_range_is_refused(client, auth, db):
    login(auth, "admin")
    token = csrf_token(client, "/workflow/calendar")
    resp = client.post("/workflow/calendar", data={"day": "0001-01-01", "kind": "holiday", "csrf_token": token})
    assert resp.status_code == 422 and not _calendar_rows()


def test_routing_save_is_audited(client, auth, db):
    from app.settings.services import active_types
    from app.workflow.routing import routing_version
    login(auth, "admin")
    t = active_types()[0]
    token = csrf_token(client, "/workflow/routing")
    resp = client.post("/workflow/routing", data={f"type_{t.id}": "派出所", "version": routing_version(),
                                                   "csrf_token": token})
    assert resp.status_code == 302
    entry = _last("settings.routing")
    assert entry and entry.detail["changes"][t.name]["to"] == "派出所"


# ---------------------------------------------------------------------------------------------
# Append-only


def test_orm_refuses_to_change_or_delete_audit_rows(db):
    entry = audit("test.event", "thing", 1, {"a": 1})
    session.flush()
    entry.action = "forged"
    with pytest.raises(AuditLogImmutable):
        session.flush()
    session.rollback()
    entry = audit("test.event", "thing", 2)
    session.flush()
    session.delete(entry)
    with pytest.raises(AuditLogImmutable):
        session.flush()
    session.rollback()
    with pytest.raises(AuditLogImmutable):
        session.execute(update(AuditLog).values(action="forged"))
    session.rollback()
    with pytest.raises(AuditLogImmutable):
        session.execute(delete(AuditLog).where(AuditLog.at < func.now()))
    session.rollback()


def test_nothing_in_the_app_purges_the_audit_trail():
    """Kept at least 180 days (网络安全法 Art. 21): no code deletes audit rows."""
    root = Path(__file__).resolve().parent.parent / "app"
    pattern = re.compile(r"delete\(\s*AuditLog|DELETE\s+FROM\s+audit_log|TRUNCATE\s+audit_log|"
                         r"audit_log.*\.delete\(", re.IGNORECASE)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders
