"""Browser: a village mediator escalates, the township accepts and grades it 高, the party
secretary signs off, and the county's high-risk board shows it.

Runs against its own live server on a fresh SQLite file (the shared live-server fixture of
tests/browser/conftest.py did not exist when this was written)."""
from __future__ import annotations

import re
import threading

import pytest

from tests.browser.conftest import open_action, submit

pytestmark = pytest.mark.browser

PASSWORD = "Qingyuan@2026"


@pytest.fixture(scope="module")
def wf_live_server(app, tmp_path_factory):
    from werkzeug.serving import make_server

    from app import create_app
    from app import db as app_db
    from app.demo.seed import seed_demo

    # tests/conftest.py's db fixture leaves join_transaction_mode="conservative_savepoint" (not a
    # SQLAlchemy value: "conditional_savepoint"); a session made after it would refuse to start.
    app_db.session.remove()
    app_db.session.configure(join_transaction_mode="conditional_savepoint")
    url = f"sqlite:///{tmp_path_factory.mktemp('wf_live') / 'live.db'}"
    live = create_app({"TESTING": True, "DATABASE_URL": url, "SERVER_NAME": None,
                       "UPLOAD_DIR": str(tmp_path_factory.mktemp("wf_uploads"))})
    with live.app_context():
        app_db.Base.metadata.create_all(app_db.get_engine(live))
        seed_demo(with_cases=False, echo=lambda *_: None)
        from tests.workflow_factories import make_case
        case = make_case("pending_triage", "village", number="QH-2026-009001",
                         summary="两户因宅基地边界争执，一方扬言报复")
        number = case.number
        app_db.session.commit()
        app_db.session.remove()
    server = make_server("127.0.0.1", 0, live, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"base": f"http://127.0.0.1:{server.server_port}", "number": number}
    server.shutdown()
    app_db.session.remove()
    app_db.session.configure(bind=app_db.get_engine(app))  # give the suite its database back


def login(browser, base, username):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url or "/login/" in url)
    from tests.browser.conftest import finish_second_factor
    finish_second_factor(page, username)  # enrolment for admin; nobody here has a code yet
    page.wait_for_url(re.compile(r".*/$"))
    return page


def test_escalate_accept_grade_sign_off_board(browser, wf_live_server):
    base, number = wf_live_server["base"], wf_live_server["number"]
    case_url = f"{base}/cases/{number}"

    page = login(browser, base, "village_mediator")
    page.goto(case_url)
    form = open_action(page, "escalate")
    form.locator("textarea[name=reason]").fill("涉及宅基地确权，村级难以化解")
    submit(page, form)
    assert "已完成：上报" in page.content()
    assert page.locator("button[data-action=escalate]").count() == 0
    page.context.close()

    page = login(browser, base, "township_director")
    page.goto(case_url)
    form = open_action(page, "accept_escalation")
    lead = form.locator("select[name=lead_mediator] option", has_text="李调解").get_attribute("value")
    form.locator("select[name=lead_mediator]").select_option(lead)
    submit(page, form)
    assert "已完成：接收上报" in page.content()
    form = open_action(page, "grade_risk")
    form.get_by_label(re.compile("过激言行或扬言报复")).check()
    assert form.locator("[data-risk-suggestion]").inner_text() == "高"  # workflow.js suggests
    assert form.locator("select[name=level]").input_value() == "high"
    submit(page, form)
    assert "已完成：风险定级" in page.content()
    assert page.locator("[data-testid=risk-history]").inner_text().count("过激言行") == 1
    page.context.close()

    page = login(browser, base, "county_supervisor")
    page.goto(f"{base}/workflow/high-risk")
    row = page.locator("[data-testid=high-risk-board] tr", has_text=number)
    assert "待签批" in row.inner_text()
    page.context.close()

    page = login(browser, base, "township_secretary")
    page.click(f"a[href$='/cases/{number}#wf-sign_off']")  # from the secretary's 我的待办
    form = page.locator("form[data-testid=form-sign_off]")
    form.wait_for(state="visible")  # the link opens the sign-off form
    form.locator("textarea[name=plan]").fill("书记包案，联合司法所、派出所三日内召开联调会")
    form.locator("select[name=departments]").select_option(label="南湖镇司法所")
    form.locator("textarea[name=invited]").fill("老支书王某\n乡贤李某")
    submit(page, form)
    assert "已完成：签批" in page.content()
    assert "老支书王某" in page.locator("[data-testid=sign-offs]").inner_text()
    page.context.close()

    page = login(browser, base, "county_supervisor")
    page.goto(f"{base}/workflow/high-risk")
    row = page.locator("[data-testid=high-risk-board] tr", has_text=number)
    text = row.inner_text()
    assert "已签批" in text and "乡镇级" in text
    page.screenshot(path="/tmp/wf_browser_board.png", full_page=True)
    page.context.close()
