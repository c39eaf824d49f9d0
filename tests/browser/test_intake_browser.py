"""Browser test: a township mediator records a visit at the reception desk as 登记为纠纷,
completes the pre-filled registration form with two parties (one row added by JS), saves, and
finds the case in the ledger list by a Chinese substring."""
from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture()
def base_url(request, tmp_path):
    """The shared live server (tests/browser/conftest.py) when it exists; otherwise our own
    server on a committed SQLite file seeded with the demo county."""
    try:
        server = request.getfixturevalue("live_server")
    except pytest.FixtureLookupError:
        server = None
    if server is not None:
        yield str(getattr(server, "url", server)).rstrip("/")
        return
    from werkzeug.serving import make_server

    from app import create_app
    from app import db as app_db
    from app.demo.seed import seed_demo

    previous_bind = app_db.session.session_factory.kw.get("bind")
    # The db fixture may leave the factory with another join mode; a plain session here.
    app_db.session.remove()
    app_db.session.configure(join_transaction_mode="conditional_savepoint")
    application = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'browser.db'}",
                              "UPLOAD_DIR": str(tmp_path / "uploads")})
    with application.app_context():
        app_db.Base.metadata.create_all(app_db.get_engine(application))
        seed_demo(with_cases=False, echo=lambda *_: None)
        app_db.session.commit()
        app_db.session.remove()
    srv = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        app_db.get_engine(application).dispose()
        app_db.session.remove()
        app_db.session.configure(bind=previous_bind)


def test_register_from_reception_with_two_parties_and_find_in_ledger(base_url):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base_url + "/login")
        page.fill("input[name=username]", "township_mediator")
        page.fill("input[name=password]", "Qingyuan@2026")
        page.click("button[type=submit]")

        page.goto(base_url + "/reception/")
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

        page.goto(base_url + "/cases/?q=" + "采光")
        expect(page.locator("[data-testid=case-table]")).to_contain_text(number)
        page.goto(base_url + "/reception/")
        expect(page.locator("[data-testid=reception-table]")).to_contain_text(number)
        browser.close()
