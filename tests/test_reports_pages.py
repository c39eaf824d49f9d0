"""Report pages: roles and jurisdiction, figures on the page, every drill-down's length equals its
figure, the Excel 月报表, the dashboard, and a bounded number of SQL queries."""
from __future__ import annotations

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
    assert (month_accepted, ytd_accepted) == ("6", "8")
    assert "66.7%" in html and "33.3%" in html
    by_type = html.split('data-testid="by-type"')[1].split("</table>")[0]
    assert "劳动争议" in by_type and "拖欠农民工工资" not in by_type


def test_grid_worker_has_no_reports_and_outside_org_is_403(client, auth):
    auth.login("grid_worker")
    assert client.get("/reports/monthly").status_code == 403
    auth.logout()
    auth.login("township_mediator")
    assert client.get(f"/reports/monthly?org=429960003&month={JUNE}").status_code == 403
    assert client.get(f"/reports/cases?org=429960003&figure=accepted&from=2026-06-01&to=2026-06-30").status_code == 403
    assert client.get("/reports/dashboard").status_code == 403


def test_period_page_quarter_and_dates(client, auth):
    build_fixture()
    auth.login("county_supervisor")
    assert client.get("/reports/period?org=429960&quarter=2026-Q2").status_code == 200
    html = client.get("/reports/period?org=429960002&from=2026-06-01&to=2026-06-30").get_data(as_text=True)
    assert re.search(r'data-testid="month-accepted">\s*<a[^>]*>6</a>', html)
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
    assert _total(html) == rc["direct_answers"]


def test_breakdown_drilldowns(client, auth):
    build_fixture()
    auth.login("county_supervisor")
    q = {"org": "429960", "figure": "accepted", **ARGS}
    assert _total(client.get("/reports/cases", query_string={**q, "type": "劳动争议"}).get_data(as_text=True)) == 1
    assert _total(client.get("/reports/cases", query_string={**q, "township": "429960002"}).get_data(as_text=True)) == 6
    assert _total(client.get("/reports/cases", query_string={**q, "source": "群众来访"}).get_data(as_text=True)) == 6
    assert client.get("/reports/cases", query_string={**q, "figure": "bogus"}).status_code == 422


def test_excel_export_holds_figures(client, auth):
    build_fixture()
    auth.login("township_mediator")
    resp = client.get(f"/reports/monthly.xlsx?org=429960002&month={JUNE}")
    assert resp.status_code == 200
    ws = load_workbook(BytesIO(resp.data)).active
    rows = {r[0]: r[1:3] for r in ws.iter_rows(values_only=True) if r[0]}
    assert rows["受理数"] == (6, 8)
    assert rows["化解率"] == ("33.3%", "37.5%")
    assert rows["调解成功率"][0] == "66.7%"
    assert str(ws.page_setup.paperSize) == str(ws.PAPERSIZE_A4) and ws.freeze_panes == "A7"
    assert any("劳动争议" == r[0] for r in ws.iter_rows(values_only=True))
    assert safe("=SUM(A1)") == "'=SUM(A1)" and safe("@x") == "'@x" and safe("正常") == "正常"


def test_trend_json(client, auth):
    build_fixture()
    auth.login("township_mediator")
    data = client.get(f"/reports/trend.json?org=429960002&month={JUNE}").get_json()
    assert data["months"][0] == "2025-07" and data["months"][-1] == "2026-06"
    assert data["accepted"][-1] == 6 and data["resolved"][-1] == 3 and data["resolution_rate"][-1] == 33.3
    assert data["accepted"][data["months"].index("2026-05")] == 1 and data["resolution_rate"][0] is None


def test_dashboard(client, auth):
    build_fixture()
    auth.login("county_leader")
    resp = client.get("/reports/dashboard")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "各乡镇化解率排名" in html and 'data-testid="high-open"' in html


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
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(f"/reports/monthly?org=429960&month={JUNE}").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(seen)


def test_query_count_does_not_grow_with_cases(app, client, auth):
    auth.login("county_supervisor")
    client.get(f"/reports/monthly?org=429960&month={JUNE}")  # warm caches
    few = _count_queries(app, client, 10)
    many = _count_queries(app, client, 190)
    assert few == many and few < 60
