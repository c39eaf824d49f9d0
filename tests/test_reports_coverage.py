"""排查覆盖率 has one count: the report's figure (app.reports.queries.screening_coverage) is
app.screening.services.coverage as a §6 rate; the screening coverage page shows the same rate
(half-up, "—" for no villages); and the report's figure links to that page for its org and period."""
from __future__ import annotations

import html as htmllib
import re
from datetime import date

import pytest

from app.orgs.services import find_by_code
from app.reports.queries import Period, figures, month_period, rate, screening_coverage
from app.screening.services import coverage
from tests.reports_factories import add_sweep, build_fixture

JUNE = month_period(2026, 6)
PERIODS = [JUNE, month_period(2026, 5), Period(date(2026, 1, 1), date(2026, 6, 30)),
           Period(date(2026, 6, 29), date(2026, 7, 5)), Period(date(2026, 7, 1), date(2026, 7, 1))]
ORGS = ["429960", "429960002", "429960011", "429960003", "429960002001", "429960002003", "429960002002"]


@pytest.mark.parametrize("code", ORGS)
def test_report_figure_and_screening_coverage_agree(db, code):
    build_fixture()
    org = find_by_code(code)
    for p in PERIODS:
        covered, total = coverage(org, p.start, p.end)
        assert screening_coverage(org, p) == rate(covered, total) == figures(org, p, breakdowns=False)[
            "screening_coverage"], (code, p)


def test_known_parts(db):
    build_fixture()
    assert coverage(find_by_code("429960002"), JUNE.start, JUNE.end) == (2, 12)
    assert coverage(find_by_code("429960011"), JUNE.start, JUNE.end) == (1, 8)
    assert coverage(find_by_code("429960"), JUNE.start, JUNE.end) == (3, 140)
    assert coverage(find_by_code("429960002"), date(2026, 7, 1), date(2026, 7, 1)) == (1, 12)  # the week to 7-05


def _coverage_link(page: str, key: str = "month-screening_coverage") -> tuple[str, str]:
    cell = re.search(rf'data-testid="{key}">\s*<a[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', page)
    assert cell, f"{key} is not a link"
    return htmllib.unescape(cell.group(1)), cell.group(2)


def test_report_coverage_links_to_the_screening_page_of_its_org_and_period(client, auth):
    build_fixture()
    auth.login("county_supervisor")
    page = client.get("/reports/monthly?org=429960002&month=2026-06").get_data(as_text=True)
    url, shown = _coverage_link(page)
    assert shown == "16.7%" and "org=429960002" in url and "period=2026-06-01/2026-06-30" in url
    screening = client.get(url).get_data(as_text=True)
    assert re.search(r'data-testid="coverage-rate">16.7%<', screening)
    assert screening.count('data-testid="village-reported"') == 2
    assert screening.count('data-testid="village-missing"') == 10
    # 本年累计 links to its own period: 3 of 12 villages
    url, shown = _coverage_link(page, "ytd-screening_coverage")
    assert shown == "25.0%" and "period=2026-01-01/2026-06-30" in url
    assert re.search(r'data-testid="coverage-rate">25.0%<', client.get(url).get_data(as_text=True))
    # a quarter on the period page, for the county: 4 of 140 villages swept in Q2
    page = client.get("/reports/period?org=429960&quarter=2026-Q2").get_data(as_text=True)
    url, shown = _coverage_link(page)
    assert shown == "2.9%" and "period=2026-04-01/2026-06-30" in url
    assert re.search(r'data-testid="coverage-rate">2.9%<', client.get(url).get_data(as_text=True))


def test_screening_page_rounds_half_up_like_the_report(client, auth, db):
    # 东岭镇 has 16 villages: 1/16 = 6.25% is 6.3 half-up (a float round() would show 6.2)
    add_sweep("429960001002", date(2026, 6, 1), date(2026, 6, 30))
    township = find_by_code("429960001")
    assert figures(township, JUNE, breakdowns=False)["screening_coverage"] == 6.3
    auth.login("county_supervisor")
    page = client.get("/screening/?org=429960001&period=2026-06-01/2026-06-30").get_data(as_text=True)
    assert re.search(r'data-testid="coverage-rate">6.3%<', page)
    county = client.get("/screening/?period=2026-06-01/2026-06-30").get_data(as_text=True)
    summary = county.split('data-testid="township-summary"')[1].split("</table>")[0]
    assert "6.3%" in summary and "6.2%" not in summary


def test_bad_period_range_is_a_clear_error(client, auth):
    auth.login("county_supervisor")
    resp = client.get("/screening/?period=2026-06-30/2026-06-01")
    assert resp.status_code == 422 and "开始日期不能晚于结束日期" in resp.get_data(as_text=True)
    resp = client.get("/screening/?period=2026-06/x")
    assert resp.status_code == 422 and "统计区间格式" in resp.get_data(as_text=True)
