"""Browser: a township mediator accepts a registered case, records a joint session (a roster
五老, a department, both parties), writes an agreement with two obligations and prints the
调解协议书 (a PDF from Chromium's print, plus screenshots of the forms in /tmp)."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest

from tests.browser.conftest import open_action, submit

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("MEDIATION_SHOTS", "/tmp")


@pytest.fixture()
def med_case(live_server):
    """A registered case (待研判, township level, two parties) and a 五老 in the roster, on the
    shared live server's database (tests/browser/conftest.py)."""
    from tests.mediation_factories import mediation_case, roster_member
    with live_server.db():
        case = mediation_case("pending_triage", "township", lead_mediator_id=None)
        roster_member()
        return case.number


def test_accept_joint_session_agreement_and_print(live_server, med_case, page, tmp_path):
    from playwright.sync_api import expect

    from app.templating import today_local

    base, number = str(live_server.url).rstrip("/"), med_case
    deadline = (today_local() + timedelta(days=15)).isoformat()
    page.on("dialog", lambda d: d.accept())
    page.goto(base + "/login")
    page.fill("input[name=username]", "township_mediator")
    page.fill("input[name=password]", "Qingyuan@2026")
    page.click("button[type=submit]")

    # 受理 through the workflow panel
    page.goto(f"{base}/cases/{number}")
    submit(page, open_action(page, "accept"))
    expect(page.locator("[data-testid=new-session]")).to_be_visible()

    # a joint session: both parties, the lead, a department and a 五老 from the roster
    page.click("[data-testid=new-session]")
    page.fill("[name=place]", "南湖镇综治中心调解室")
    page.select_option("[name=department_ids]", label="南湖镇司法所")
    page.check("text=王五老")
    page.fill("[name=others]", "村支书刘某")
    page.fill("[name=record]", "双方陈述受淹经过；司法所讲解相邻关系法律规定；王五老做双方工作。")
    page.fill("[name=agreed]", "李小河同意赔偿并疏通排水沟")
    page.screenshot(path=f"{SHOTS}/mediation_session_form.png", full_page=True)
    page.click("[data-testid=save-session]")
    expect(page.locator("[data-testid=sessions]")).to_contain_text("王五老")
    expect(page.locator("[data-testid=sessions]")).to_contain_text("南湖镇司法所")

    # written agreement; a missing manner is refused with the field's message first
    page.click("[data-testid=agreement-link]")
    page.fill("[name=disputes]", "损失数额及排水沟疏通责任")
    page.fill("[name=content]", "双方同意由李小河赔偿损失并疏通排水沟，此纠纷就此了结。")
    page.select_option("[name=ob-0-obligor]", "李小河")
    page.fill("[name=ob-0-content]", "赔偿张大山损失人民币2000元")
    page.fill("[name=ob-0-deadline]", deadline)
    page.click("[data-testid=save-agreement]")
    expect(page.locator("[data-error='ob-0-manner']")).to_contain_text("请填写履行方式")
    page.fill("[name=ob-0-manner]", "一次性现金支付")
    page.select_option("[name=ob-1-obligor]", "李小河")
    page.fill("[name=ob-1-content]", "疏通排水沟")
    page.fill("[name=ob-1-manner]", "自行雇工疏通")
    page.fill("[name=ob-1-deadline]", deadline)
    page.screenshot(path=f"{SHOTS}/mediation_agreement_form.png", full_page=True)
    page.click("[data-testid=save-agreement]")
    expect(page.locator("[data-testid=agreement-obligations]")).to_contain_text("一次性现金支付")

    # print the 协议书
    page.goto(f"{base}/mediation/cases/{number}/documents/agreement")
    doc = page.locator("[data-testid=agreement-doc]").first
    expect(doc).to_contain_text("张大山")
    expect(doc).to_contain_text("李小河")
    expect(doc).to_contain_text("赔偿张大山损失人民币2000元")
    page.emulate_media(media="print")
    page.screenshot(path=f"{SHOTS}/mediation_agreement_print.png", full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf[:4] == b"%PDF" and len(pdf) > 5000
    (tmp_path / "agreement.pdf").write_bytes(pdf)
    with open(f"{SHOTS}/mediation_agreement.pdf", "wb") as fh:
        fh.write(pdf)
