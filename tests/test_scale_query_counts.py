"""No page's number of SQL statements grows with the rows it shows (issue 10: no N+1).

Every list and report page (the GET routes of the URL map that render lists or reports) is
requested with few rows in the database, then again after many more rows of every kind were
added (cases with parties, timeline entries, tasks, orders, sessions, follow-ups; reception
entries, sweeps and one sweep's findings, audit entries, users, roster members, org units,
calendar days, dispute types); the statements per request are counted with the engine's ``before_cursor_execute`` event and must be the same.  The case
pages are measured the same way with 3 and 40 parties, timeline entries, sessions and so on."""
from __future__ import annotations

import gc
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app import db as app_db
from app.accounts.models import User
from app.audit.models import AuditLog
from app.cases.queries import encode_cursor
from app.cases.models import (Attachment, Case, DepartmentTask, FollowUp, Party, RiskGrading, SupervisionOrder,
                              TimelineEntry)
from app.mediation.models import Agreement, MediationSession, Obligation, RosterMember, SessionParticipant
from app.orgs.models import OrgUnit
from app.reception.models import ReceptionEntry
from app.screening.models import Sweep, SweepFinding
from app.settings.models import CalendarDay, DisputeType
from app.templating import today_local
from tests.helpers import count_queries
from tests.intake_helpers import api_token, login
from tests.workflow_factories import LIAISON_DEPT, org, user

VILLAGE, VILLAGE_2, TOWNSHIP = "429960002001", "429960002002", "429960002"
BIG_SWEEP_HOUSEHOLDS = 999  # marks the one sweep every ``populate`` adds findings to


def _now():
    return datetime.now(timezone.utc)


def add_case(i: int, village: OrgUnit, **fields) -> Case:
    today = today_local()
    mediator, vm, secretary = user("township_mediator"), user("village_mediator"), user("township_secretary")
    township_level = i % 3 != 0
    values = dict(number=f"QC-{uuid.uuid4().hex[:10]}", source="群众来访" if i % 2 else "网格上报",
                  dispute_type="邻里" if i % 2 else "婚姻家庭", type_category="邻里" if i % 2 else "婚姻家庭",
                  county_id=village.county_id, township_id=village.township_id, village_id=village.id,
                  summary=f"第{i}起：两户因排水沟堵塞发生争执", registered_on=today - timedelta(days=i % 25),
                  status="in_mediation", handling_level="township" if township_level else "village",
                  lead_mediator_id=(mediator if township_level else vm).id, co_mediator_ids=[vm.id, mediator.id],
                  leader_id=secretary.id, deadline_on=today + timedelta(days=i % 9 - 4),
                  risk_level="high" if i % 2 else "medium", high_risk_at=_now() if i % 2 else None,
                  last_activity_at=_now() - timedelta(days=i % 40), responsible_org_id=village.township_id,
                  grid_id=None)
    values.update(fields)
    case = Case(**values)
    app_db.session.add(case)
    app_db.session.flush()
    return case


def add_case_details(case: Case, k: int, i: int = 0) -> None:
    """``k`` of every per-case row (parties, timeline, tasks, orders, sessions, follow-ups, ...)."""
    s = app_db.session
    today = today_local()
    mediator, county_sup = user("township_mediator"), user("county_supervisor")
    dept, township = org(LIAISON_DEPT), org(TOWNSHIP)
    for j in range(k):
        s.add(Party(case_id=case.id, position=j, name=f"当事人{(i + j) // 2}", role="applicant" if j % 2 else "respondent",
                    phone=f"1380000{(i + j) // 2:04d}", id_number=None))
        s.add(TimelineEntry(case_id=case.id, at=_now() - timedelta(hours=j), actor_id=mediator.id,
                            actor_name="乡镇调解员", action="note", note=f"走访{j}"))
        s.add(DepartmentTask(case_id=case.id, department_id=dept.id, kind="transfer" if j % 2 else "invite",
                             request="请协助", requested_by_id=mediator.id, due_on=today + timedelta(days=j - 2)))
        s.add(SupervisionOrder(case_id=case.id, issued_by_id=county_sup.id, issuing_org_id=case.county_id,
                               responsible_org_id=township.id, requirement="限期化解", due_on=today + timedelta(days=j - 2)))
        s.add(RiskGrading(case_id=case.id, level="high", factors=None, reason="复查", graded_by_id=mediator.id))
        ms = MediationSession(case_id=case.id, held_on=today - timedelta(days=j), place="调委会",
                              record=f"第{j}次调解", recorded_by_id=mediator.id, recorded_by_name="乡镇调解员")
        s.add(ms)
        s.flush()
        s.add(SessionParticipant(session_id=ms.id, case_id=case.id, kind="user", user_id=mediator.id,
                                 name="乡镇调解员"))
        s.add(FollowUp(case_id=case.id, visited_on=today - timedelta(days=j), visitor_id=mediator.id,
                       visitor_name="乡镇调解员", performance="performed", satisfaction="satisfied"))
        s.add(Attachment(case_id=case.id, filename=f"f{j}.pdf", content_type="application/pdf", size=10,
                         storage_key=uuid.uuid4().hex, uploaded_by_id=mediator.id))
    ag = Agreement(case_id=case.id, form="written", agreed_on=today, content="协议", created_by_id=mediator.id)
    s.add(ag)
    s.flush()
    for j in range(k):
        s.add(Obligation(agreement_id=ag.id, position=j, obligor="李四", content=f"义务{j}", manner="现金",
                         deadline=today + timedelta(days=j)))
    s.flush()


def populate(start: int, n: int) -> None:
    """``n`` more rows of every kind the list pages show, in 南湖镇 (seen by township and county users)."""
    s = app_db.session
    today = today_local()
    v1, v2, township = org(VILLAGE), org(VILLAGE_2), org(TOWNSHIP)
    mediator, admin = user("township_mediator"), user("admin")
    big_sweep = s.scalar(select(Sweep).where(Sweep.households_visited == BIG_SWEEP_HOUSEHOLDS))
    if big_sweep is None:
        big_sweep = Sweep(village_id=v1.id, township_id=v1.township_id, county_id=v1.county_id,
                          period_start=today - timedelta(days=30), period_end=today, swept_on=today,
                          nil_report=False, households_visited=BIG_SWEEP_HOUSEHOLDS,
                          filed_by_id=user("village_mediator").id)
        s.add(big_sweep)
        s.flush()
    parent_type = s.scalar(select(DisputeType).where(DisputeType.parent_id.is_(None)).order_by(DisputeType.id))
    for i in range(start, start + n):
        village = v1 if i % 2 == 0 else v2
        open_case = add_case(i, village)
        add_case_details(open_case, 2, i)
        closed_on = today - timedelta(days=i % 20 + 1)
        closed = add_case(i, village, status="closed", outcome="success", closed_on=closed_on,
                          closed_at=_now() - timedelta(days=i % 20 + 1), follow_up_due_on=today - timedelta(days=1),
                          registered_on=closed_on - timedelta(days=3), risk_level=None, high_risk_at=None,
                          handling_level="village" if i % 2 else "township")
        add_case_details(closed, 1, i)
        pending = add_case(i, village, status="pending_triage", handling_level="village", risk_level=None)
        s.add(SweepFinding(sweep_id=big_sweep.id, case_id=pending.id))  # the sweep page lists them
        s.add(ReceptionEntry(centre_id=township.id, county_id=township.county_id, township_id=township.id,
                             village_id=village.id, received_on=today - timedelta(days=i % 10),
                             visitor_names=f"来访人{i}", headcount=1 + i % 3, phone=f"1390000{i:04d}",
                             matter="咨询宅基地", handling=("direct_answer", "registered", "direct_answer", "transferred")[i % 4],
                             department_id=org(LIAISON_DEPT).id if i % 4 == 0 else None,
                             case_id=open_case.id if i % 2 == 0 else None, recorded_by_id=mediator.id))
        sweep = Sweep(village_id=village.id, township_id=village.township_id, county_id=village.county_id,
                      period_start=today - timedelta(days=7 * (i + 1)), period_end=today - timedelta(days=7 * i),
                      swept_on=today - timedelta(days=7 * i), nil_report=i % 2 == 1, households_visited=10,
                      filed_by_id=user("village_mediator").id)
        s.add(sweep)
        s.flush()
        if i % 2 == 0:
            s.add(SweepFinding(sweep_id=sweep.id, case_id=open_case.id))
        s.add(AuditLog(user_id=admin.id, username="admin", action="case.view", object_type="case",
                       object_id=open_case.number, detail={"i": i}, ip="127.0.0.1"))
        s.add(User(username=f"qc_user_{i}", display_name=f"测试用户{i}", role="village_mediator",
                   org_id=village.id, password_hash="x"))
        s.add(RosterMember(org_id=village.id, kind="wulao", name=f"五老{i}", specialty="邻里", phone="13700000000"))
        s.add(OrgUnit(code=f"{VILLAGE}{90 - i % 90:02d}{i:03d}", name=f"测试网格{i}", level="grid",
                      parent_id=v1.id, county_id=v1.county_id, township_id=v1.township_id))
        s.merge(CalendarDay(day=today.replace(month=1, day=1) + timedelta(days=i), is_working_day=i % 2 == 0,
                            name=f"测试假日{i}"))  # the calendar page lists this year's days
        s.add(DisputeType(name=f"测试类型{i}", parent_id=parent_type.id if parent_type and i % 2 else None,
                          position=100 + i))  # the routing and settings pages list every type
    s.flush()


def _month(back: int = 0) -> str:
    t = today_local().replace(day=1)
    for _ in range(back):
        t = (t - timedelta(days=1)).replace(day=1)
    return f"{t:%Y-%m}"


def pages() -> list[tuple[str, str]]:
    """(user, path) of every list and report page."""
    today = today_local()
    month, first = _month(), today.replace(day=1).isoformat()
    dr = f"from={first}&to={today.isoformat()}"
    sweep_id = app_db.session.scalar(select(Sweep.id).where(Sweep.households_visited == BIG_SWEEP_HOUSEHOLDS))
    # a keyset page of the ledger: the cases registered before yesterday (more of them later)
    cursor = encode_cursor("-registered", today - timedelta(days=1), 10**9)
    return [
        ("township_mediator", "/"),
        ("village_mediator", "/"),
        ("township_director", "/"),
        ("county_supervisor", "/"),
        ("dept_liaison", "/"),
        ("county_leader", "/"),
        ("grid_worker", "/"),
        ("township_director", "/cases/"),
        ("township_director", "/cases/?status=in_mediation&risk=high&sort=deadline"),
        ("county_supervisor", "/cases/?q=排水沟"),  # answers 302 to the sealed-token URL: measured there
        ("township_director", f"/cases/?cursor={cursor}"),
        ("county_supervisor", f"/cases/?township={TOWNSHIP}&type=邻里&source=群众来访"),
        ("township_director", "/cases/export.xlsx?status=in_mediation"),
        ("township_director", "/reception/"),
        ("township_director", "/reception/?handling=direct_answer"),
        ("township_director", "/screening/"),
        ("village_mediator", "/screening/"),
        ("township_director", "/screening/repeats"),
        ("township_director", "/screening/hotspots"),
        ("township_director", "/screening/hotspots.json"),
        ("township_director", "/screening/warnings"),
        ("county_supervisor", "/workflow/high-risk"),
        ("township_secretary", "/workflow/sign-offs"),
        ("dept_liaison", "/workflow/department"),
        ("county_supervisor", "/workflow/supervision"),
        ("township_director", "/workflow/supervision"),
        ("township_mediator", "/mediation/backlog"),
        ("township_mediator", "/mediation/follow-ups"),
        ("township_director", "/mediation/roster"),
        ("admin", "/admin/audit/"),
        ("admin", "/admin/audit/?action=case.view"),
        ("admin", "/admin/users"),
        ("admin", "/admin/orgs/"),
        ("admin", "/admin/settings"),
        ("admin", "/workflow/calendar"),
        ("admin", "/workflow/routing"),
        ("township_director", f"/screening/sweeps/{sweep_id}"),
        ("village_mediator", f"/screening/sweeps/{sweep_id}"),
        ("county_supervisor", f"/reports/monthly?org=429960&month={month}"),
        ("county_supervisor", f"/reports/monthly?org={TOWNSHIP}&month={month}"),
        ("county_supervisor", f"/reports/period?org=429960&{dr}"),
        ("county_supervisor", f"/reports/period?org=429960&year={today.year}"),
        ("county_supervisor", f"/reports/period?org={TOWNSHIP}&year={today.year}"),
        ("county_supervisor", f"/reports/trend.json?org=429960&month={month}"),
        ("county_supervisor", f"/reports/cases?org=429960&figure=registered&{dr}"),
        ("county_supervisor", f"/reports/cases?org=429960&figure=backlog&{dr}"),
        ("county_supervisor", f"/reports/monthly.xlsx?org=429960&month={month}"),
        ("county_leader", "/reports/dashboard"),
        ("county_supervisor", "/api/v1/cases"),
        ("county_supervisor", "/api/v1/cases?status=in_mediation"),
        ("county_supervisor", f"/api/v1/reports/monthly?org=429960&month={month}"),
        ("county_supervisor", f"/api/v1/reports/period?org=429960&{dr}"),
        ("county_supervisor", "/ledger/"),
    ]


def measure(app, client, auth, targets) -> dict[tuple[str, str], int]:
    out = {}
    by_user: dict[str, list[str]] = {}
    for username, path in targets:
        by_user.setdefault(username, []).append(path)
    for username, paths in by_user.items():
        resp = login(auth, username)
        assert resp.status_code in (302, 303), (username, resp.status_code)
        headers = {"Authorization": f"Bearer {api_token(username)}"}
        for listed in paths:
            path = listed
            h = headers if path.startswith("/api/") else {}
            resp = client.get(path, headers=h)  # warm: per-process caches (settings, vocabularies)
            if resp.status_code in (302, 303) and path.startswith("/cases/?"):
                # a search with ?q= moves to its sealed-token URL (``?s=``) once: count the page itself
                loc = urlsplit(resp.headers["Location"])
                path = loc.path + ("?" + loc.query if loc.query else "")
                resp = client.get(path, headers=h)
            assert resp.status_code == 200, (username, path, resp.status_code)
            gc.collect()  # unreferenced ORM objects leave the identity map now, not at random
            with count_queries(app) as seen:
                resp = client.get(path, headers=h)
            assert resp.status_code == 200
            out[(username, listed)] = len(seen)
            out[(username, listed, "sql")] = list(seen)
            out[(username, listed, "size")] = len(resp.data)
    return out


def _diff(few: list[str], many: list[str]) -> str:
    extra = Counter(many) - Counter(few)
    return "\n".join(f"{n}× {sql[:300]}" for sql, n in extra.most_common(5))


def test_list_and_report_pages_do_not_grow_with_rows(app, db, client, auth):
    populate(0, 3)
    targets = pages()
    few = measure(app, client, auth, targets)
    populate(3, 37)
    many = measure(app, client, auth, targets)
    grown = [(t, few[t], many[t], _diff(few[(*t, "sql")], many[(*t, "sql")]))
             for t in targets if many[t] > few[t]]
    assert not grown, "\n\n".join(f"{u} {p}: {a} → {b} statements\n{d}" for (u, p), a, b, d in grown)
    assert all(few[t] > 0 for t in targets)
    # the list pages really show more rows the second time (else the comparison proves nothing)
    lists = [t for t in targets if not t[1].startswith(("/reports/", "/api/v1/reports/", "/ledger/"))
             and t != ("county_leader", "/")]  # a leader's 工作台: 8 recent cases, no to-dos
    same = [t for t in lists if many[(*t, "size")] <= few[(*t, "size")]]
    assert not same, same


@pytest.mark.parametrize("path", ["/cases/{n}", "/workflow/cases/{n}", "/api/v1/cases/{n}",
                                  "/mediation/cases/{n}/documents/cover"])
def test_case_pages_do_not_grow_with_parties_timeline_and_sessions(app, db, client, auth, path):
    small = add_case(1, org(VILLAGE))
    add_case_details(small, 3)
    big = add_case(1, org(VILLAGE))
    add_case_details(big, 40)
    login(auth, "township_director")
    headers = {"Authorization": f"Bearer {api_token('township_director')}"} if path.startswith("/api/") else {}
    counts = {}
    for case in (small, big):
        url = path.format(n=case.number)
        assert client.get(url, headers=headers).status_code == 200
        gc.collect()
        with count_queries(app) as seen:
            assert client.get(url, headers=headers).status_code == 200
        counts[case.number] = list(seen)
    a, b = counts[small.number], counts[big.number]
    assert len(b) <= len(a), f"{path}: {len(a)} → {len(b)}\n{_diff(a, b)}"
