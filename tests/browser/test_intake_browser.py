"""Browser test: a township mediator records a visit at the reception desk as 登记为纠纷,
completes the pre-filled registration form with two parties (one row added by JS), saves, and
finds the case in the ledger list by a Chinese substring."""
from __future__ import annotations

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def test_register_from_reception_with_two_parties_and_find_in_ledger(page):
    from playwright.sync_api import expect

    login(page, "township_mediator")
    expect(page.locator("h1")).to_have_text("工作台")  # logged in before the next page is asked for

    page.goto("/reception/")
    page.fill("[name=visitor_names]", "钱浏览")
    page.fill("[name=headcount]", "1")
    page.fill("[name=phone]", "13700007777")
    page.fill("[name=matter]", "邻居违建挡住采光通道")
    page.check("#handling-registered")
    page.click("[data-testid=save-visit]")

    expect(page.locator("[data-testid=from-reception]")).to_be_visible()
    expect(page.locator("[name=summary]")).to_have_value("邻居违建挡住采光通道")
    expect(page.locator("[name=parties-0-name]")).to_have_value("钱浏览")
    page.select_option("[name=type]", "邻里")
    page.select_option("[name=village]", index=1)
    # Fill the second row (shown without JS), then add a third-party row with JS.
    page.select_option("[name=parties-1-role]", "respondent")
    page.fill("[name=parties-1-name]", "孙邻居")
    page.click("[data-testid=add-party]")
    expect(page.locator("[data-party-row]")).to_have_count(3)
    page.locator("[data-party-row]").nth(2).locator("[data-remove-party]").click()
    expect(page.locator("[data-party-row]")).to_have_count(2)
    page.click("[data-testid=submit-case]")

    number = page.locator("[data-testid=case-number]").inner_text().strip()
    assert number.startswith("QH-")
    expect(page.locator("[data-testid=parties]")).to_contain_text("钱浏览")
    expect(page.locator("[data-testid=parties]")).to_contain_text("孙邻居")
    expect(page.locator("[data-testid=parties]")).to_contain_text("137****7777")

    page.goto("/cases/?q=" + "采光")
    expect(page.locator("[data-testid=case-table]")).to_contain_text(number)
    page.goto("/reception/")
    expect(page.locator("[data-testid=reception-table]")).to_contain_text(number)
