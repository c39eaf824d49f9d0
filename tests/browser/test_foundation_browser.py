"""Browser: the demo township mediator logs in and sees the 工作台 in Chinese; on a phone the
menu is collapsed behind the toggler and opens on a tap."""
from __future__ import annotations

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def test_township_mediator_sees_the_workbench_in_chinese(page):
    from playwright.sync_api import expect

    page.goto("/")
    assert "/login" in page.url
    login(page, "township_mediator")
    expect(page.locator("h1")).to_have_text("工作台")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    nav = page.locator("[data-testid=main-nav]")
    expect(nav).to_be_visible()
    expect(nav).to_contain_text("纠纷台账")
    expect(nav).not_to_contain_text("用户管理")
    expect(page.locator("body")).to_contain_text("李调解")
    expect(page.locator("body")).to_contain_text("南湖镇")
    expect(page.locator("[data-testid=status-counts]")).to_contain_text("调解中")
    assert "工作台" in page.title()


def test_phone_viewport_collapses_the_menu(make_page):
    from playwright.sync_api import expect

    phone = make_page(390, 844, is_mobile=True, has_touch=True)
    login(phone, "grid_worker")
    expect(phone.locator("h1")).to_have_text("工作台")
    nav = phone.locator("[data-testid=main-nav]")
    toggler = phone.locator(".navbar-toggler")
    expect(toggler).to_be_visible()
    expect(nav).to_be_hidden()
    toggler.click()
    expect(nav).to_be_visible()
    expect(nav).to_contain_text("登记纠纷")
    # Nothing wider than the screen.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_live_server_database_accepts_test_data(live_server, page):
    from app.accounts.services import create_user
    from app.orgs.services import find_by_code

    with live_server.db():
        create_user("browser_fixture_user", "浏览器测试员", "village_mediator", find_by_code("429960002002"),
                    "Browser-fixture-2026")
    login(page, "browser_fixture_user", "Browser-fixture-2026")
    assert "浏览器测试员" in page.locator("nav").inner_text()
