"""我的待办: each role's workflow sections hold exactly the items that role must act on."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from app.home.services import workbench
from app.templating import today_local
from tests.workflow_factories import OTHER_TOWNSHIP_VILLAGE, add_order, add_task, make_case, org, user


def todos(username: str):
    with current_app.test_request_context():  # items carry URLs
        return workbench(user(username)).todos


def sections(username: str) -> dict[str, list[str]]:
    return {s.title: [i.title.split()[0] for i in s.items] for s in todos(username)}


def badges(username: str, title: str) -> dict[str, str]:
    for s in todos(username):
        if s.title == title:
            return {i.title.split()[0]: i.badge for i in s.items}
    return {}


def test_each_role_sees_its_own_to_dos(db):
    today = today_local()
    v_pending = make_case("pending_triage", "village")
    t_pending = make_case("pending_triage", "township")
    elsewhere = make_case("pending_triage", "township", village=OTHER_TOWNSHIP_VILLAGE)
    v_escalated = make_case("escalated", "village", escalation_due_on=today - timedelta(days=1))
    t_escalated = make_case("escalated", "township")
    high = make_case("in_mediation", "township", risk_level="high")
    signed = make_case("in_mediation", "township", risk_level="high", signed_off_at=high.registered_at)
    transferred = make_case("transferred", "township")
    add_task(transferred, due_on=today - timedelta(days=2))
    supervised = make_case("in_mediation", "village", deadline_on=today + timedelta(days=25))
    add_order(supervised, org("429960002001"))
    near = make_case("in_mediation", "township", deadline_on=today + timedelta(days=1))
    late = make_case("in_mediation", "village", deadline_on=today - timedelta(days=3))
    follow = make_case("closed", "village", outcome="success", follow_up_due_on=today - timedelta(days=1))

    vm = sections("village_mediator")
    assert vm["待研判分流"] == [v_pending.number]
    assert vm["待答复的督办"] == [supervised.number]
    assert vm["临近或超过办理期限"] == [late.number]
    assert vm["待回访"] == [follow.number]
    assert "待接收的上报" not in vm and "待签批的高风险纠纷" not in vm

    td = sections("township_director")
    assert td["待研判分流"] == [t_pending.number]  # not the other township's, not the village's
    assert elsewhere.number not in td["待研判分流"]
    assert td["待接收的上报"] == [v_escalated.number]
    assert badges("township_director", "待接收的上报") == {v_escalated.number: "danger"}
    assert set(td["临近或超过办理期限"]) == {near.number, late.number}  # supervising level sees the village's too

    tm = sections("township_mediator")
    assert "待接收的上报" not in tm
    assert tm["临近或超过办理期限"] == [near.number]
    assert badges("township_mediator", "临近或超过办理期限") == {near.number: "warning"}

    ts = sections("township_secretary")
    assert ts == {"待签批的高风险纠纷": [high.number]}
    assert signed.number not in ts["待签批的高风险纠纷"]

    cs = sections("county_supervisor")
    assert cs["待接收的上报"] == [t_escalated.number]
    assert set(cs["临近或超过办理期限"]) == {near.number, late.number}

    dl = sections("dept_liaison")
    assert dl == {"待反馈的转办/联调": [transferred.number]}
    assert badges("dept_liaison", "待反馈的转办/联调") == {transferred.number: "danger"}

    gw = sections("grid_worker")
    assert gw == {"待回访": [follow.number]}

    assert sections("county_leader") == {}


def test_todo_items_link_to_the_case_page(db, client, auth):
    case = make_case("pending_triage", "village")
    auth.login("village_mediator")
    html = client.get("/").get_data(as_text=True)
    assert "待研判分流" in html
    assert f"/cases/{case.number}#wf-accept" in html  # the panel opens the triage form
