"""The county monthly report in a browser: a figure leads to exactly its cases, and the ECharts
trend chart renders a canvas of non-zero size."""
from __future__ import annotations

from datetime import date

from tests.browser.conftest import login
from tests.reports_factories import add_case, closed


def test_monthly_report_figure_to_cases_and_chart(live_server, page):
    with live_server.db():
        for day in (3, 9, 14):
            add_case(date(2024, 3, day), **closed(date(2024, 3, 20), "success"))
        add_case(date(2024, 3, 22))
    login(page, "county_supervisor")
    page.goto("/reports/monthly?org=429960&month=2024-03")
    link = page.locator('[data-testid="month-accepted"] a')
    figure = int(link.inner_text())
    assert figure >= 4
    canvas = page.locator("#chart-trend canvas")
    canvas.wait_for(state="attached", timeout=10000)
    box = canvas.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0
    link.click()
    page.wait_for_selector('[data-testid="total"]')
    assert int(page.locator('[data-testid="total"]').inner_text()) == figure
    assert page.locator('[data-testid="drill-row"]').count() == figure
