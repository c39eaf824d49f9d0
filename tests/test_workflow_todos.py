"""我的待办: each role's workflow sections hold exactly the items that role must act on."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from app.db import utcnow
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


OVERDUE_TRANSFERS = "转办逾期未反馈"


def test_overdue_transfers_show_for_the_transferring_centre_and_the_supervising_level(db):
    today = today_local()
    village_late = make_case("transferred", "village")
    add_task(village_late, due_on=today - timedelta(days=2))
    township_late = make_case("transferred", "township")
    add_task(township_late, due_on=today - timedelta(days=1))
    in_time = make_case("transferred", "township")
    add_task(in_time, due_on=today + timedelta(days=3))
    answered = make_case("in_mediation", "township")
    task = add_task(answered, due_on=today - timedelta(days=4))
    task.answered_at = utcnow()
    invite_late = make_case("in_mediation", "township")
    add_task(invite_late, "invite", due_on=today - timedelta(days=4))  # invitations are not transfers
    other_township = make_case("transferred", "township", village=OTHER_TOWNSHIP_VILLAGE)
    add_task(other_township, due_on=today - timedelta(days=2))
    db.flush()

    assert sections("village_mediator")[OVERDUE_TRANSFERS] == [village_late.number]
    assert sections("township_mediator")[OVERDUE_TRANSFERS] == [township_late.number]
    # The township director supervises the township's villages: both, oldest due first; not the other township's.
    assert sections("township_director")[OVERDUE_TRANSFERS] == [village_late.number, township_late.number]
    assert badges("township_director", OVERDUE_TRANSFERS) == {village_late.number: "danger",
                                                              township_late.number: "danger"}
    # The county supervisor sees every township's.
    assert set(sections("county_supervisor")[OVERDUE_TRANSFERS]) == {
        village_late.number, township_late.number, other_township.number}
    for username in ("township_secretary", "county_leader", "grid_worker", "dept_liaison"):
        assert OVERDUE_TRANSFERS not in sections(username), username
    detail = next(i.detail for s in todos("township_mediator") if s.title == OVERDUE_TRANSFERS for i in s.items)
    assert "南湖镇司法所" in detail and "逾期 1 天" in detail


def test_county_leader_sees_a_county_level_high_case_to_sign_off(db):
    county_high = make_case("in_mediation", "county", risk_level="high")
    make_case("in_mediation", "township", risk_level="high")  # the township secretary's, not the county leader's
    make_case("in_mediation", "county", risk_level="high", signed_off_at=county_high.registered_at)
    assert sections("county_leader") == {"待签批的高风险纠纷": [county_high.number]}
    assert county_high.number not in sections("township_secretary").get("待签批的高风险纠纷", [])
