"""Documents (§8), the backlog figures, and the mediation pages through the test client."""
from __future__ import annotations

import re
from datetime import date, timedelta

from app.mediation import services
from app.mediation.queries import backlog
from app.templating import today_local
from tests.helpers import csrf_token
from tests.intake_helpers import login
from tests.mediation_factories import mediation_case, roster_member, user, written_agreement_data
from tests.workflow_factories import OTHER_TOWNSHIP_VILLAGE, make_case


def _agreement_case(db):
    case = mediation_case()
    services.agree(user("township_mediator"), case, written_agreement_data(case))
    return case


def test_agreement_document_has_every_art29_element(db, client, auth):
    case = _agreement_case(db)
    login(auth, "township_mediator")
    html = client.get(f"/mediation/cases/{case.number}/documents/agreement").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", " ", html)
    # parties' details (unmasked for a mediator role), facts, disputes, responsibilities
    for needle in ("张大山", "李小河", "420222198001011234", "南湖镇一组", "李小河修建围墙堵塞排水沟",
                   "损失数额及排水沟疏通责任", "李小河负主要责任",
                   # terms with manner and deadline
                   "赔偿张大山损失人民币2000元", "一次性现金支付", "疏通排水沟", "自行雇工疏通",
                   "人民调解员（签名）", "（印章）", "本协议一式 3 份"):
        assert needle in text, needle
    d = today_local() + timedelta(days=10)
    assert f"{d.year}年{d.month}月{d.day}日前" in text
    # one copy per party plus one for the committee
    assert html.count('data-testid="agreement-doc"') == 3
    assert "本份：张大山 执" in text and "人民调解委员会 执" in text
    assert 'data-print' in html and "<script>" not in html.replace('<script src', '')


def test_documents_masked_for_roles_that_may_not_unmask(db, client, auth):
    case = _agreement_case(db)
    login(auth, "township_secretary")
    html = client.get(f"/mediation/cases/{case.number}/documents/agreement").get_data(as_text=True)
    assert "420222198001011234" not in html and "420222********1234" in html and "138****1111" in html


def test_every_document_renders(db, client, auth):
    case = _agreement_case(db)
    services.follow_up(user("township_mediator"), case, {"performance": "performed", "satisfaction": "satisfied"})
    login(auth, "township_mediator")
    for kind in ("register", "rights", "sessions", "agreement", "oral", "follow_up", "supervision", "cover"):
        r = client.get(f"/mediation/cases/{case.number}/documents/{kind}")
        assert r.status_code == 200, kind
    cover = client.get(f"/mediation/cases/{case.number}/documents/cover").get_data(as_text=True)
    assert cover.index("受理登记表") < cover.index("当事人权利义务告知书") < cover.index("封底")
    assert client.get(f"/mediation/cases/{case.number}/documents/nope").status_code == 404


def test_backlog_figures_against_hand_built_fixture(db):
    # A fixed day in the past (30 June of last year): every figure, the >90 bucket included, is
    # checked whatever today's date; the cases' default deadlines (today + 20) are not overdue then.
    as_of = date(today_local().year - 1, 6, 30)
    jan1 = date(as_of.year, 1, 1)
    make_case("in_mediation", "township", registered_on=as_of - timedelta(days=5), risk_level="high")
    make_case("pending_triage", "village", registered_on=as_of - timedelta(days=45))
    make_case("in_mediation", "township", registered_on=as_of - timedelta(days=120),
              deadline_on=as_of - timedelta(days=1), risk_level="low")  # overdue
    make_case("escalated", "village", registered_on=as_of - timedelta(days=31), risk_level="medium")
    # start-of-year backlog: two open on 1 Jan; one of them closed since
    make_case("closed", "township", registered_on=jan1 - timedelta(days=10), closed_on=as_of - timedelta(days=1))
    make_case("in_mediation", "township", registered_on=jan1 - timedelta(days=20))  # 201 days old: >90
    make_case("closed", "township", registered_on=jan1 - timedelta(days=30), closed_on=jan1 - timedelta(days=2))  # cleared before
    make_case("declined", "township", registered_on=jan1 - timedelta(days=5))
    make_case("in_mediation", "township", village=OTHER_TOWNSHIP_VILLAGE, registered_on=as_of)  # out of scope
    make_case("in_mediation", "township", registered_on=as_of + timedelta(days=1))  # registered after as_of
    b = backlog(user("township_mediator"), as_of)
    assert b.total == 5
    assert b.by_bucket == {"le30": 1, "d31_90": 2, "gt90": 2}
    assert backlog(user("township_mediator"), as_of, {"bucket": "gt90"}).total == 2
    assert backlog(user("township_mediator"), as_of, {"overdue": "1"}).total == 1
    assert b.overdue == 1
    assert b.by_level == {"village": 2, "township": 3, "county": 0}
    assert b.by_risk == {"high": 1, "medium": 1, "low": 1, "none": 2}
    assert b.year_start_backlog == 2 and b.year_start_cleared == 1 and b.cleared_rate == 50.0
    county = backlog(user("county_supervisor"), as_of)
    assert county.total == 6 and len(county.by_township) == 2


def test_pages_render_and_session_form_posts(db, client, auth):
    case = mediation_case()
    m = roster_member()
    login(auth, "township_mediator")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert 'data-testid="mediation-section"' in page and "王五老" in page
    for url in ("/mediation/backlog", "/mediation/roster", "/mediation/follow-ups",
                f"/mediation/cases/{case.number}/session", f"/mediation/cases/{case.number}/agreement"):
        assert client.get(url).status_code == 200, url
    token = csrf_token(client, f"/mediation/cases/{case.number}/session")
    r = client.post(f"/mediation/cases/{case.number}/session", data={"csrf_token": token, "held_on": "", "place": ""})
    assert r.status_code == 422 and "请填写调解地点" in r.get_data(as_text=True)
    r = client.post(f"/mediation/cases/{case.number}/session", data={
        "csrf_token": token, "held_on": today_local().isoformat(), "place": "村委会", "record": "双方陈述",
        "party_ids": [str(p.id) for p in case.parties], "roster_ids": [str(m.id)]})
    assert r.status_code == 302
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert "王五老（五老）" in page
