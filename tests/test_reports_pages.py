"""Report pages: roles and jurisdiction, figures on the page, every drill-down's length equals its
figure, the Excel 月报表, the dashboard, and a bounded number of SQL queries."""
from __future__ import annotations

import difflib
import gc
import re
from datetime import date
from io import BytesIO

import pytest
from openpyxl import load_workbook
from sqlalchemy import event

from app.db import get_engine
from app.orgs.services import find_by_code
from app.reports.excel import safe
from app.reports.queries import case_predicates, case_counts, month_period, reception_counts
from tests.reports_factories import add_case, build_fixture, closed

JUNE = "2026-06"
ARGS = {"from": "2026-06-01", "to": "2026-06-30"}


def _total(html: str) -> int:
    return int(re.search(r'data-testid="total">(\d+)<', html).group(1))


@pytest.mark.parametrize("username,org", [("county_supervisor", "429960"), ("county_leader", "429960"),
                                          ("township_mediator", "429960002"), ("township_director", "429960002"),
                                          ("village_mediator", "429960002001")])
def test_monthly_page_for_allowed_roles(client, auth, username, org):
    build_fixture()
    auth.login(username)
    resp = client.get(f"/reports/monthly?month={JUNE}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "口径说明" in html and f'value="{find_by_code(org).code}" selected' in html


def test_township_figures_on_page(client, auth):
    build_fixture()
    auth.login("township_mediator")
    html = client.get(f"/reports/monthly?org=429960002&month={JUNE}").get_data(as_text=True)
    month_accepted = re.search(r'data-testid="month-accepted">\s*<a[^>]*>(\d+)</a>', html).group(1)
    ytd_accepted = re.search(r'data-testid="ytd-accepted">\s*<a[^>]*>(\d+)</a>', html).group(1)
    assert (month_accepted, ytd_accepted) == ("7", "11")
    assert "66.7%" in html and "28.6%" in html and "27.3%" in html
    by_type = html.split('data-testid="by-type"')[1].split("</table>")[0]
    assert "劳动争议" in by_type and "拖欠农民工工资" not in by_type


def test_grid_worker_has_no_reports_and_outside_org_is_403(client, auth):
    auth.login("grid_worker")
    assert client.get("/reports/monthly").status_code == 403
    auth.logout()
    auth.login("township_mediator")
    assert client.get(f"/reports/monthly?org=429960003&month={JUNE}").status_code == 403
    assert client.get("/reports/cases?org=429960003&figure=accepted&from=2026-06-01&to=2026-06-30").status_code == 403
    assert client.get("/reports/dashboard").status_code == 403


def test_period_page_quarter_and_dates(client, auth):
    build_fixture()
    auth.login("county_supervisor")
    assert client.get("/reports/period?org=429960&quarter=2026-Q2").status_code == 200
    html = client.get("/reports/period?org=429960002&from=2026-06-01&to=2026-06-30").get_data(as_text=True)
    assert re.search(r'data-testid="month-accepted">\s*<a[^>]*>7</a>', html)
    assert client.get("/reports/period?org=429960&from=2026-06-30&to=2026-06-01").status_code == 422


@pytest.mark.parametrize("org_code", ["429960002", "429960"])
def test_every_drilldown_length_equals_its_figure(client, auth, org_code):
    build_fixture()
    auth.login("county_supervisor")
    org = find_by_code(org_code)
    counts = case_counts(org, month_period(2026, 6))
    for key in case_predicates(month_period(2026, 6)):
        html = client.get("/reports/cases", query_string={"org": org_code, "figure": key, **ARGS}).get_data(as_text=True)
        assert _total(html) == counts[key], key
        assert html.count('data-testid="drill-row"') == counts[key], key
    rc = reception_counts(org, month_period(2026, 6))
    html = client.get("/reports/cases", query_string={"org": org_code, "figure": "direct_answers", **ARGS}).get_data(as_text=True)
    assert _total(html) == rc["direct_answers"] > 0
    html = client.get("/reports/cases", query_string={"org": org_code, "figure": "visitors", **ARGS}).get_data(as_text=True)
    # 接待人次 sums head-counts: the list's 合计 equals the figure (a group visit is one row)
    assert int(re.search(r'data-testid="headcount">(\d+)<', html).group(1)) == rc["visitors"] > 0


def test_breakdown_drilldowns(client, auth):
    build_fixture()
    auth.login("county_supervisor")
    q = {"org": "429960", "figure": "accepted", **ARGS}
    assert _total(client.get("/reports/cases", query_string={**q, "type": "劳动争议"}).get_data(as_text=True)) == 1
    assert _total(client.get("/reports/cases", query_string={**q, "township": "429960002"}).get_data(as_text=True)) == 7
    assert _total(client.get("/reports/cases", query_string={**q, "source": "群众来访"}).get_data(as_text=True)) == 7
    assert _total(client.get("/reports/cases", query_string={**q, "type": "邻里"}).get_data(as_text=True)) == 7
    assert client.get("/reports/cases", query_string={**q, "figure": "bogus"}).status_code == 422


def test_excel_export_holds_figures(client, auth):
    build_fixture()
    auth.login("township_mediator")
    resp = client.get(f"/reports/monthly.xlsx?org=429960002&month={JUNE}")
    assert resp.status_code == 200
    ws = load_workbook(BytesIO(resp.data)).active
    rows = {r[0]: r[1:3] for r in ws.iter_rows(values_only=True) if r[0]}
    assert rows["受理数"] == (7, 11)
    assert rows["化解率"] == ("28.6%", "27.3%")
    assert rows["接待人次"] == (8, 9) and rows["排查覆盖率"] == ("16.7%", "25.0%")
    assert rows["调解成功率"][0] == "66.7%"
    assert str(ws.page_setup.paperSize) == str(ws.PAPERSIZE_A4) and ws.freeze_panes == "A7"
    assert any("劳动争议" == r[0] for r in ws.iter_rows(values_only=True))
    assert safe("=SUM(A1)") == "'=SUM(A1)" and safe("@x") == "'@x" and safe("正常") == "正常"


def test_trend_json(client, auth):
    build_fixture()
    auth.login("township_mediator")
    data = client.get(f"/reports/trend.json?org=429960002&month={JUNE}").get_json()
    assert data["months"][0] == "2025-07" and data["months"][-1] == "2026-06"
    assert data["accepted"][-1] == 7 and data["resolved"][-1] == 3 and data["resolution_rate"][-1] == 28.6
    assert data["accepted"][data["months"].index("2026-05")] == 3 and data["resolution_rate"][0] is None


def _dashboard_fixture() -> None:
    """build_fixture (today = 2026-06-30) plus deadlines and 督办单 around that day.

    Open cases of the fixture: 7 (高, signed off), 8 (高, never signed), 11, 12, 13 (高, signed
    off after 25 h) — none with a deadline.  Added, all registered 4-10 in 南湖镇:
      D1 open, deadline 6-29 (overdue)      D2 open, deadline 6-30 = today (not overdue)
      D3 closed success 5-01, deadline 4-20 (closed: not overdue)
      D4 escalated (open), deadline 6-10 (overdue)
    督办单: on 8 due 6-20 unanswered (overdue); on 11 due 7-10 unanswered; on D1 due 6-30
    unanswered (due today: not overdue); on 7 due 6-01 answered (not counted)."""
    from datetime import datetime

    from app.cases.models import Case, SupervisionOrder
    from app.db import session
    build_fixture()
    d1 = add_case(date(2026, 4, 10), deadline_on=date(2026, 6, 29))
    add_case(date(2026, 4, 10), deadline_on=date(2026, 6, 30))
    add_case(date(2026, 4, 10), deadline_on=date(2026, 4, 20), **closed(date(2026, 5, 1), "success"))
    add_case(date(2026, 4, 10), deadline_on=date(2026, 6, 10), status="escalated", handling_level="township")
    by_reg = {c.registered_on: c for c in session.query(Case).filter(Case.registered_on.in_(
        [date(2026, 3, 1), date(2026, 5, 30), date(2026, 6, 15)]))}
    township = find_by_code("429960002")
    county = find_by_code("429960")
    for case, due, answered in ((by_reg[date(2026, 3, 1)], date(2026, 6, 20), False),
                                (by_reg[date(2026, 5, 30)], date(2026, 7, 10), False),
                                (d1, date(2026, 6, 30), False),
                                (by_reg[date(2026, 6, 15)], date(2026, 6, 1), True)):
        session.add(SupervisionOrder(case_id=case.id, issuing_org_id=county.id, responsible_org_id=township.id,
                                     requirement="限期化解", due_on=due,
                                     answered_at=datetime(2026, 5, 30, 2) if answered else None,
                                     answer="已化解" if answered else None))
    session.flush()


def _testid(html: str, testid: str) -> str:
    m = re.search(rf'data-testid="{testid}">\s*(?:<a[^>]*>)?([^<]+)<', html)
    assert m, testid
    return m.group(1).strip()


def test_dashboard(client, auth, monkeypatch):
    import app.reports.routes as report_routes
    _dashboard_fixture()
    monkeypatch.setattr(report_routes, "today_local", lambda: date(2026, 6, 30))
    auth.login("county_leader")
    resp = client.get("/reports/dashboard")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "各乡镇化解率排名" in html
    # open 高: 7 8 13; signed off 7 13 (whenever), not signed 8
    assert (_testid(html, "high-open"), _testid(html, "high-signed"), _testid(html, "high-unsigned")) == ("3", "2", "1")
    # open: 7 8 11 12 13 D1 D2 D4; overdue: D1 (6-29) and D4 (escalated, 6-10), not D2 (due today)
    assert (_testid(html, "open"), _testid(html, "overdue")) == ("8", "2")
    # unanswered 督办单: on 8, 11 and D1; overdue only 8's (due 6-20)
    assert (_testid(html, "orders-open"), _testid(html, "orders-overdue")) == ("3", "1")
    # this month (6-01..6-30) is the county's June; this year adds D1–D4 (D3 resolved by 5-01)
    assert (_testid(html, "month-accepted"), _testid(html, "month-resolution_rate"),
            _testid(html, "month-backlog")) == ("8", "37.5%", "9")
    assert (_testid(html, "year-accepted"), _testid(html, "year-resolution_rate")) == ("16", "31.3%")  # 5/16
    assert _testid(html, "year-visitors") == "13"
    ranked = re.findall(r'data-testid="township-row" data-code="(\d+)"', html)
    assert ranked[:3] == ["429960003", "429960002", "429960001"]  # 100.0, then 4/15 = 26.7, then "—" by code
    assert len(ranked) == 12


def _count_queries(app, client, n_extra: int) -> int:
    for i in range(n_extra):
        add_case(date(2026, 6, 1 + i % 28), **(closed(date(2026, 6, 28), "success") if i % 2 else {}))
    engine = get_engine(app)
    seen = []

    def listener(conn, cursor, statement, *args):
        # The login's user row comes from the session's identity map when the object from the
        # previous request is still alive (a weak reference): whether it is queried depends on
        # the garbage collector, not on the report, so it is not counted.
        if not statement.lstrip().startswith("SELECT user_account."):
            seen.append(statement)
    # Rows loaded by primary key (an org unit) come from the identity map while an object from an
    # earlier request is still alive: collect garbage first, so both counts start alike.
    gc.collect()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(f"/reports/monthly?org=429960&month={JUNE}").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return [s.split("\n")[0][:100] for s in seen]


def test_query_count_does_not_grow_with_cases(app, client, auth):
    auth.login("county_supervisor")
    client.get(f"/reports/monthly?org=429960&month={JUNE}")  # warm caches
    _count_queries(app, client, 1)  # the first case: the figure summary is built whole, once
    few = _count_queries(app, client, 10)
    many = _count_queries(app, client, 190)
    assert len(few) == len(many) and len(few) < 60, "\n".join(difflib.unified_diff(few, many, lineterm=""))
