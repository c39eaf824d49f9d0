"""Browser test at phone width (390×844): a grid worker files a 零报告, then a sweep of the
same period that finds a dispute (added to the same record, the case registered as 排查发现);
the township director sees the village reported on the coverage page and the warning board.
Set SCREENSHOT_DIR to keep screenshots of the pages."""
from __future__ import annotations

import os

from tests.browser.conftest import login


def _shot(page, name: str) -> None:
    target = os.environ.get("SCREENSHOT_DIR")
    if target:
        page.screenshot(path=os.path.join(target, f"screening-{name}.png"), full_page=True)


def _add_overdue_high_risk_case(live_server) -> str:
    import uuid
    from datetime import timedelta

    from sqlalchemy import select

    from app.cases.models import Case
    from app.orgs.models import OrgUnit
    from app.templating import today_local

    number = f"SCB-{uuid.uuid4().hex[:8]}"
    with live_server.db() as s:
        v = s.scalar(select(OrgUnit).where(OrgUnit.code == "429960002003"))
        today = today_local()
        s.add(Case(number=number, source="群众来访", dispute_type="征地拆迁", type_category="征地拆迁",
                   county_id=v.county_id, township_id=v.township_id, village_id=v.id, status="in_mediation",
                   summary="征地补偿分配争议，多户扬言上访", registered_on=today - timedelta(days=40),
                   deadline_on=today - timedelta(days=10), risk_level="high"))
    return number


def test_grid_worker_files_nil_report_then_a_finding_on_a_phone(make_page, live_server):
    from playwright.sync_api import expect

    overdue = _add_overdue_high_risk_case(live_server)

    page = make_page(width=390, height=844)
    login(page, "grid_worker")
    page.goto("/screening/new")
    # The form fits the phone: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, "form-phone")
    page.check("input[name=participants][value=网格员]")
    page.fill("[name=households_visited]", "18")
    page.check("[data-nil-report]")
    expect(page.locator("[data-findings]")).to_be_hidden()
    page.click("[data-testid=submit-sweep]")
    expect(page.locator("[data-testid=sweep-result]")).to_contain_text("零报告")

    page.goto("/screening/new")
    expect(page.locator("[data-testid=sweep-period]")).to_contain_text("本期已上报过")
    page.check("input[name=participants][value=村干部]")
    page.fill("[name=households_visited]", "6")
    page.select_option("[name=findings-0-type]", "邻里")
    page.fill("[name=findings-0-summary]", "两户因屋后排水沟改道发生争执")
    page.fill("[name=findings-0-party_name]", "网格浏览甲")
    page.fill("[name=findings-0-party_phone]", "13500009999")
    page.click("[data-testid=add-finding]")
    expect(page.locator("[data-finding-row]")).to_have_count(2)
    page.locator("[data-finding-row]").nth(1).locator("[data-remove-finding]").click()
    expect(page.locator("[data-finding-row]")).to_have_count(1)
    _shot(page, "form-phone-finding")
    page.click("[data-testid=submit-sweep]")
    expect(page.locator("[data-testid=sweep-result]")).to_contain_text("发现纠纷")
    expect(page.locator("[data-testid=sweep-cases]")).to_contain_text("两户因屋后排水沟改道")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    case_url = page.locator("[data-testid=sweep-cases] a").first.get_attribute("href")
    page.goto(case_url)
    expect(page.locator("body")).to_contain_text("排查发现")

    desk = make_page()
    login(desk, "township_director")
    desk.goto("/screening/")
    expect(desk.locator("[data-testid=village-reported]")).to_contain_text("发现纠纷 1 件")
    _shot(desk, "coverage")
    desk.goto(case_url)
    expect(desk.locator("[data-testid=criminal-form]")).to_be_visible()
    desk.click("[data-testid=criminal-form] button[value=prevented]")
    expect(desk.locator("[data-testid=criminal-status]")).to_contain_text("防止民转刑")
    _shot(desk, "case")
    desk.goto("/screening/warnings")
    row = desk.locator(f"[data-case={overdue}]")
    expect(row.locator("[data-reason=overdue]")).to_contain_text("已超过办理期限 10 天")
    expect(row.locator("[data-reason=inactive]")).to_be_visible()
    _shot(desk, "warnings")
    desk.goto("/screening/hotspots")
    expect(desk.locator("[data-testid=hotspot-chart] canvas")).to_have_count(1)
    _shot(desk, "hotspots")
