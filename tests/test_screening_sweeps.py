"""Sweeps (联排清底): filing with cases found and with 零报告, one record per village and
period, coverage over a period with missing villages, the to-do list, scoping, 民转刑 flags."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.cases.models import Case, TimelineEntry
from app.errors import PermissionDenied, ValidationFailed
from app.screening.models import Sweep, SweepFinding
from app.screening.services import coverage, file_sweep, flag_criminal, period_of
from app.settings.services import set_setting
from app.templating import today_local
from tests.helpers import csrf_token
from tests.screening_factories import (OTHER_TOWNSHIP_VILLAGE, TOWNSHIP, VILLAGE, VILLAGE_2, make_case,
                                       org, user)

FINDING = {"type": "邻里", "summary": "两户因宅前排水沟堵塞争吵", "party_name": "周大明",
           "party_phone": "13800001111", "other_party": "周小明"}


def test_period_monthly_and_weekly(db):
    assert period_of(date(2026, 2, 14), "monthly") == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_of(date(2026, 11, 22), "weekly") == (date(2026, 11, 16), date(2026, 11, 22))
    set_setting("screening.period", "weekly")
    assert period_of(date(2026, 11, 23)) == (date(2026, 11, 23), date(2026, 11, 29))


def test_sweep_with_found_disputes_registers_linked_cases(db):
    mediator = user("village_mediator")
    sweep, cases = file_sweep(mediator, {"participants": ["网格员", "村干部"], "households_visited": "35",
                                         "findings": [FINDING, dict(FINDING, summary="承包地边界争议", type="山林土地",
                                                                    party_name="李四")]})
    assert len(cases) == 2 and not sweep.nil_report
    assert {c.source for c in cases} == {"排查发现"}
    assert all(c.village_id == org(VILLAGE).id for c in cases)
    linked = set(db.scalars(select(SweepFinding.case_id).where(SweepFinding.sweep_id == sweep.id)))
    assert linked == {c.id for c in cases}
    assert sweep.households_visited == 35 and "网格员" in sweep.participants
    assert (sweep.period_start, sweep.period_end) == period_of(today_local())


def test_nil_report_is_explicit(db):
    mediator = user("village_mediator")
    with pytest.raises(ValidationFailed) as exc:
        file_sweep(mediator, {"participants": ["网格员"], "households_visited": "10"})
    assert "nil_report" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        file_sweep(mediator, {"participants": ["网格员"], "nil_report": True, "findings": [FINDING]})
    assert "nil_report" in exc.value.errors
    sweep, cases = file_sweep(mediator, {"participants": ["网格员"], "nil_report": True, "households_visited": 20})
    assert sweep.nil_report and cases == []


def test_second_sweep_same_period_adds_to_the_first(db):
    grid_worker = user("grid_worker")
    first, _ = file_sweep(grid_worker, {"participants": ["网格员"], "nil_report": True, "households_visited": "10"})
    second, cases = file_sweep(grid_worker, {"participants": ["村干部"], "households_visited": "5",
                                             "findings": [FINDING]})
    assert second.id == first.id
    assert db.scalar(select(func.count()).select_from(Sweep).where(Sweep.village_id == first.village_id)) == 1
    assert not second.nil_report and second.households_visited == 15
    assert second.participants == "网格员、村干部"
    # A later 零报告 does not hide what was found.
    third, _ = file_sweep(grid_worker, {"participants": ["网格员"], "nil_report": True})
    assert third.id == first.id and not third.nil_report


def test_invalid_finding_writes_nothing(db):
    mediator = user("village_mediator")
    before = db.scalar(select(func.count()).select_from(Case))
    with pytest.raises(ValidationFailed) as exc:
        file_sweep(mediator, {"participants": ["网格员"], "findings": [dict(FINDING, type="", party_name="")]})
    assert "findings.0.type" in exc.value.errors and "findings.0.party_name" in exc.value.errors
    assert db.scalar(select(func.count()).select_from(Case)) == before


def test_only_filers_file_sweeps(db):
    with pytest.raises(PermissionDenied):
        file_sweep(user("township_mediator"), {"participants": ["网格员"], "nil_report": True})


def test_coverage_over_a_period_with_missing_villages(db):
    file_sweep(user("village_mediator"), {"participants": ["村干部"], "nil_report": True})
    v2 = org(VILLAGE_2)
    start, end = period_of(today_local())
    db.add(Sweep(village_id=v2.id, township_id=v2.township_id, county_id=v2.county_id, period_start=start,
                 period_end=end, swept_on=start, nil_report=True))
    # A sweep of the previous period does not count for this one.
    other = org(OTHER_TOWNSHIP_VILLAGE)
    prev_start, prev_end = period_of(start - timedelta(days=1))
    db.add(Sweep(village_id=other.id, township_id=other.township_id, county_id=other.county_id,
                 period_start=prev_start, period_end=prev_end, swept_on=prev_start, nil_report=True))
    db.flush()
    assert coverage(org(TOWNSHIP), start, end) == (2, 12)
    county = org(TOWNSHIP).parent
    covered, total = coverage(county, start, end)
    assert covered == 2 and total == 140
    assert coverage(org(OTHER_TOWNSHIP_VILLAGE), prev_start, prev_end) == (1, 1)
    assert coverage(org(OTHER_TOWNSHIP_VILLAGE), start, end) == (0, 1)


def test_coverage_page_and_todo_list(client, auth, db):
    file_sweep(user("village_mediator"), {"participants": ["村干部"], "nil_report": True})
    auth.login("township_director")
    html = client.get("/screening/").get_data(as_text=True)
    assert html.count('data-testid="village-reported"') == 1
    assert html.count('data-testid="village-missing"') == 11
    assert "8.3%" in html
    home = client.get("/").get_data(as_text=True)
    assert "未报排查的村（11个）" in home and "张湾村" in home
    auth.logout()
    auth.login("county_supervisor")
    html = client.get("/screening/").get_data(as_text=True)
    assert html.count('data-testid="village-missing"') == 139
    assert 'data-testid="township-summary"' in html


def test_village_mediator_never_sees_another_village(client, auth, db):
    v2 = org(VILLAGE_2)
    start, end = period_of(today_local())
    other = Sweep(village_id=v2.id, township_id=v2.township_id, county_id=v2.county_id, period_start=start,
                  period_end=end, swept_on=start, nil_report=True, participants="张湾村干部")
    db.add(other)
    db.flush()
    hidden = make_case(village=VILLAGE_2, summary="张湾村内部纠纷", risk_level="high")
    mine = make_case(village=VILLAGE, risk_level="high")
    auth.login("village_mediator")
    assert client.get(f"/screening/sweeps/{other.id}").status_code == 404
    html = client.get("/screening/").get_data(as_text=True)
    assert "张湾村" not in html and 'data-testid="village-missing"' in html
    assert client.get(f"/screening/?org={TOWNSHIP}").status_code == 404
    board = client.get("/screening/warnings").get_data(as_text=True)
    assert mine.number in board and hidden.number not in board
    own, _ = file_sweep(user("village_mediator"), {"participants": ["村干部"], "nil_report": True})
    assert client.get(f"/screening/sweeps/{own.id}").status_code == 200


def test_file_sweep_through_the_form(client, auth, db):
    auth.login("grid_worker")
    token = csrf_token(client, "/screening/new")
    resp = client.post("/screening/new", data={"csrf_token": token, "swept_on": today_local().isoformat(),
                                               "participants": ["网格员"], "households_visited": "12",
                                               "findings-0-type": "", "findings-0-summary": ""})
    assert resp.status_code == 422
    assert "零报告" in resp.get_data(as_text=True)
    resp = client.post("/screening/new", data={"csrf_token": token, "swept_on": today_local().isoformat(),
                                               "participants": ["网格员"], "households_visited": "12",
                                               "findings-0-type": "邻里", "findings-0-summary": "围墙滴水纠纷",
                                               "findings-0-party_name": "赵六"})
    assert resp.status_code == 302
    sweep = db.scalar(select(Sweep).where(Sweep.village_id == org(VILLAGE).id))
    case = db.scalar(select(Case).join(SweepFinding, SweepFinding.case_id == Case.id)
                     .where(SweepFinding.sweep_id == sweep.id))
    assert case.source == "排查发现" and case.parties[0].name == "赵六"
    assert case.number in client.get(resp.headers["Location"]).get_data(as_text=True)


def test_criminal_flags(client, auth, db):
    case = make_case()
    auth.login("township_director")
    token = csrf_token(client, f"/cases/{case.number}")
    resp = client.post(f"/screening/cases/{case.number}/criminal", data={"csrf_token": token, "kind": "turned"})
    assert resp.status_code == 302 and case.criminal_turned_on is None  # no police reference
    client.post(f"/screening/cases/{case.number}/criminal",
                data={"csrf_token": token, "kind": "turned", "ref": "A4299-2026-001"})
    db.refresh(case)
    assert case.criminal_turned_on == today_local() and case.criminal_case_ref == "A4299-2026-001"
    assert db.scalar(select(TimelineEntry).where(TimelineEntry.case_id == case.id,
                                                 TimelineEntry.action == "criminal_flag")) is not None
    assert db.scalar(select(AuditLog).where(AuditLog.action == "case.criminal_flag",
                                            AuditLog.object_id == case.number)) is not None
    html = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert "已民转刑" in html and "A4299-2026-001" in html and "民转刑标记" in html
    flag_criminal(user("township_director"), case, "prevented", None)
    assert case.criminal_prevented_on == today_local()
    with pytest.raises(PermissionDenied):
        flag_criminal(user("village_mediator"), case, "prevented", None)
