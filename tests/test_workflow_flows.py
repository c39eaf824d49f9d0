"""Escalation up and back, the department loop, risk grading and sign-off, supervision,
reopen and archive, through the one service."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.cases.models import DepartmentTask, FollowUp, RiskGrading, SignOff, SupervisionOrder
from app.cases.services import apply_action
from app.errors import InvalidTransition, PermissionDenied, ValidationFailed
from app.templating import today_local
from app.workflow import queries
from tests.workflow_factories import LIAISON_DEPT, add_task, make_case, org, user


def test_escalation_village_to_township_to_county_and_back(db):
    case = make_case("pending_triage", "village")
    apply_action(user("village_mediator"), case, "escalate", {"reason": "涉及两个村的宅基地"})
    assert case.status == "escalated" and case.handling_level == "village"
    assert case.escalation_due_on == today_local() + timedelta(days=3)
    # the village can no longer act on it; the township director accepts: the level moves up
    with pytest.raises(PermissionDenied):
        apply_action(user("village_mediator"), case, "accept_escalation", {})
    apply_action(user("township_director"), case, "accept_escalation", {"lead_mediator": "township_mediator"})
    assert (case.status, case.handling_level) == ("in_mediation", "township")
    assert case.responsible_org_id == case.township_id and case.escalation_due_on is None
    # township escalates to the county; the county returns it with a reason: the level stays
    apply_action(user("township_mediator"), case, "escalate", {"reason": "需要县级协调"})
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("county_supervisor"), case, "return_escalation", {})
    assert exc.value.errors == {"reason": "请填写退回理由"}
    apply_action(user("county_supervisor"), case, "return_escalation", {"reason": "乡镇可以化解"})
    assert (case.status, case.handling_level) == ("in_mediation", "township")
    # escalate again, the county accepts and hands it up beyond the county
    apply_action(user("township_mediator"), case, "escalate", {"reason": "再次上报"})
    apply_action(user("county_supervisor"), case, "accept_escalation", {})
    assert case.handling_level == "county"
    apply_action(user("county_supervisor"), case, "hand_up", {"to": "市综治中心", "reason": "跨县"})
    assert (case.status, case.outcome) == ("closed", "handed_up")
    actions = [e.action for e in case.timeline]
    assert actions == ["escalate", "accept_escalation", "escalate", "return_escalation", "escalate",
                       "accept_escalation", "hand_up"]


def test_department_loop_resolved_closes_the_case(db):
    case = make_case("pending_triage", "township")
    apply_action(user("township_mediator"), case, "transfer", {"department": LIAISON_DEPT, "request": "劳资纠纷"})
    assert case.status == "transferred"
    task = db.scalar(select(DepartmentTask).where(DepartmentTask.case_id == case.id))
    assert task.due_on == today_local() + timedelta(days=7) and task.kind == "transfer"
    queue = queries.department_queue(user("dept_liaison"))
    assert [c.number for c, t, s in queue["open_rows"]] == [case.number]
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "已处理"})
    assert "resolved" in exc.value.errors
    apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "已调解支付工资", "resolved": "1"})
    assert (case.status, case.outcome) == ("closed", "department_resolved")
    assert task.answered_at is not None and task.resolved is True
    assert queries.department_queue(user("dept_liaison"))["open_rows"] == []


def test_department_loop_unresolved_returns_to_the_centre(db):
    case = make_case("in_mediation", "township")
    apply_action(user("township_mediator"), case, "transfer", {"department": LIAISON_DEPT})
    apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "不属本部门职责", "resolved": False})
    assert case.status == "in_mediation" and case.outcome is None
    # a second feedback has nothing to answer
    with pytest.raises(InvalidTransition):
        apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "x", "resolved": True})


def test_invited_department_answers_and_mediation_continues(db):
    case = make_case("in_mediation", "township")
    apply_action(user("township_mediator"), case, "invite_department",
                 {"department": LIAISON_DEPT, "request": "请派员参加联调"})
    apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "已派员参加"})
    assert case.status == "in_mediation"
    assert db.scalar(select(DepartmentTask).where(DepartmentTask.case_id == case.id)).answered_at is not None


def test_unanswered_transfer_goes_overdue(db):
    case = make_case("transferred", "township")
    add_task(case, due_on=today_local() - timedelta(days=1))
    rows = queries.department_queue(user("dept_liaison"))["open_rows"]
    assert [(c.number, state) for c, t, state in rows] == [(case.number, "overdue")]


def test_liaison_of_another_department_cannot_answer(db):
    case = make_case("transferred", "township")
    add_task(case, dept_code="429960002D002")  # 派出所
    from app.errors import NotFound
    with pytest.raises(NotFound):  # the 司法所 liaison does not even see the case
        apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "x", "resolved": True})


def test_risk_grading_history_and_high_risk_clock(db):
    case = make_case("in_mediation", "township")
    director = user("township_director")
    with pytest.raises(ValidationFailed) as exc:
        apply_action(director, case, "grade_risk", {"level": "medium"})
    assert exc.value.errors == {"leader": "请选择包案领导"}
    apply_action(director, case, "grade_risk", {"level": "medium", "leader": "township_director",
                                                "factors": ["多次调解未果"]})
    assert case.risk_level == "medium" and case.leader_id == director.id and case.high_risk_at is None
    apply_action(director, case, "grade_risk", {"level": "high", "factors": ["过激言行或扬言报复（民转刑风险）"]})
    first_high = case.high_risk_at
    assert first_high is not None
    # lower than suggested needs a reason
    with pytest.raises(ValidationFailed) as exc:
        apply_action(director, case, "grade_risk", {"level": "low", "factors": ["过激言行或扬言报复（民转刑风险）"]})
    assert "reason" in exc.value.errors
    apply_action(director, case, "grade_risk", {"level": "low", "reason": "当事人情绪已平复"})
    apply_action(director, case, "grade_risk", {"level": "high", "factors": ["越级上访倾向"]})
    assert case.high_risk_at == first_high  # set the first time only
    apply_action(director, case, "grade_risk", {"level": "none", "reason": "隐患消除"})
    assert case.risk_level is None
    rows = db.scalars(select(RiskGrading).where(RiskGrading.case_id == case.id).order_by(RiskGrading.id)).all()
    assert [r.level for r in rows] == ["medium", "high", "low", "high", None]
    assert [r.suggested_level for r in rows] == ["medium", "high", "low", "high", "low"]
    kinds = [e.data["change"] for e in case.timeline]
    assert kinds == ["定级", "升级", "降级", "升级", "销号"]


def test_unknown_risk_factor_is_refused(db):
    case = make_case("in_mediation", "township")
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("township_director"), case, "grade_risk", {"level": "high", "factors": ["天气不好"]})
    assert "factors" in exc.value.errors


def test_high_risk_case_cannot_close_until_signed_off(db):
    case = make_case("in_mediation", "township")
    apply_action(user("township_director"), case, "grade_risk",
                 {"level": "high", "factors": ["涉及人数≥5（群体性）"]})
    agree = {"agreement_form": "oral", "terms": "双方各退一步"}
    with pytest.raises(InvalidTransition) as exc:
        apply_action(user("township_mediator"), case, "agree", agree)
    assert "签批" in exc.value.message
    with pytest.raises(InvalidTransition):
        apply_action(user("township_mediator"), case, "terminate", {"reason": "x", "referral_path": "诉讼"})
    assert case.status == "in_mediation"
    # the secretary signs off: plan, 包案领导 and task force (users, departments, invited)
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("township_secretary"), case, "sign_off", {"plan": "方案", "leader": "township_secretary"})
    assert "members" in exc.value.errors
    apply_action(user("township_secretary"), case, "sign_off",
                 {"plan": "书记包案，联合司法所、派出所化解", "leader": "township_secretary",
                  "members": ["township_mediator"], "departments": [LIAISON_DEPT, "429960002D002"],
                  "invited": "老支书王某\n乡贤李某"})
    sign = db.scalar(select(SignOff).where(SignOff.case_id == case.id))
    assert sign.task_force == {"users": [user("township_mediator").id],
                               "departments": [org(LIAISON_DEPT).id, org("429960002D002").id],
                               "invited": ["老支书王某", "乡贤李某"]}
    assert case.signed_off_at is not None and case.leader_id == user("township_secretary").id
    apply_action(user("township_mediator"), case, "agree", agree)
    assert (case.status, case.outcome, case.agreement_form) == ("closed", "success", "oral")
    assert case.follow_up_due_on == today_local() + timedelta(days=30)


def test_sign_off_only_for_high_risk_and_by_the_right_person(db):
    case = make_case("in_mediation", "township", risk_level="medium")
    with pytest.raises(InvalidTransition):
        apply_action(user("township_secretary"), case, "sign_off", {"plan": "x", "leader": "township_secretary",
                                                                    "invited": ["某"]})
    county_case = make_case("in_mediation", "county", risk_level="high")
    with pytest.raises(PermissionDenied):
        apply_action(user("township_secretary"), county_case, "sign_off", {})
    apply_action(user("county_leader"), county_case, "sign_off",
                 {"plan": "县领导包案", "leader": "county_leader", "members": ["county_supervisor"]})
    assert county_case.signed_off_at is not None


def test_supervision_order_and_answer(db):
    case = make_case("in_mediation", "village")
    apply_action(user("township_director"), case, "supervise",
                 {"requirement": "三日内上门化解", "due_on": (today_local() + timedelta(days=3)).isoformat()})
    order = db.scalar(select(SupervisionOrder).where(SupervisionOrder.case_id == case.id))
    assert order.responsible_org_id == case.village_id and order.issuing_org_id == case.township_id
    assert [o.id for c, o in queries.supervision_orders(user("township_director"), "open")] == [order.id]
    with pytest.raises(InvalidTransition):  # not the responsible unit
        apply_action(user("township_mediator"), make_case("in_mediation", "township"), "answer_supervision",
                     {"answer": "x"})
    apply_action(user("village_mediator"), case, "answer_supervision", {"answer": "已上门调解"})
    assert order.answered_at is not None and order.answer == "已上门调解"
    assert queries.supervision_counts(user("county_supervisor"))["answered"] >= 1
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("county_supervisor"), case, "supervise",
                     {"requirement": "x", "due_on": (today_local() - timedelta(days=1)).isoformat()})
    assert "due_on" in exc.value.errors


def test_overdue_supervision_orders_are_listed_as_overdue(db):
    from tests.workflow_factories import add_order
    case = make_case("in_mediation", "township")
    order = add_order(case, org("429960002"), due_on=today_local() - timedelta(days=2))
    assert [o.id for c, o in queries.supervision_orders(user("county_supervisor"), "overdue")] == [order.id]
    assert order.id not in [o.id for c, o in queries.supervision_orders(user("county_supervisor"), "open")]


def test_follow_up_archive_reopen(db):
    case = make_case("in_mediation", "village")
    apply_action(user("village_mediator"), case, "agree", {"agreement_form": "书面", "terms": "赔偿 500 元"})
    with pytest.raises(InvalidTransition) as exc:
        apply_action(user("village_mediator"), case, "archive", {})
    assert "回访" in exc.value.message
    apply_action(user("grid_worker"), case, "follow_up", {"performance": "部分履行", "satisfaction": "基本满意"})
    assert (case.performance, case.satisfaction) == ("partly", "basically")
    assert db.scalar(select(FollowUp).where(FollowUp.case_id == case.id)).visitor_name == user("grid_worker").display_name
    apply_action(user("village_mediator"), case, "reopen", {"reason": "协议未完全履行"})
    assert (case.status, case.outcome, case.closed_on, case.recurrence_count) == ("in_mediation", None, None, 1)
    # Archiving needs a complete case file (app.mediation.services.completeness): the parties and
    # the withdrawal record that the full withdraw form writes.
    from app.cases.models import Party
    from app.mediation.services import withdraw
    party = Party(case_id=case.id, position=0, kind="person", name="王某", role="applicant")
    db.add(party)
    db.flush()
    db.refresh(case)
    withdraw(user("village_mediator"), case, {"reason": "双方和解", "requested_by": str(party.id)})
    apply_action(user("village_mediator"), case, "archive", {})
    assert case.status == "archived"


def test_judicial_confirmation_within_30_days(db):
    case = make_case("closed", "village", outcome="success", agreement_form="written",
                     closed_on=today_local() - timedelta(days=40))
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("village_mediator"), case, "judicial_confirmation",
                     {"applied_on": today_local().isoformat(), "court": "示范县人民法院"})
    assert "30日内" in exc.value.errors["applied_on"]
    failed = make_case("closed", "village", outcome="failed")
    with pytest.raises(InvalidTransition):
        apply_action(user("village_mediator"), failed, "judicial_confirmation",
                     {"applied_on": today_local().isoformat(), "court": "法院"})


def test_decline_keeps_reason_and_guidance(db):
    case = make_case("pending_triage", "village")
    entry = apply_action(user("village_mediator"), case, "decline",
                         {"reason": "属于劳动仲裁范围", "guidance": "引导至县劳动人事争议仲裁委"})
    assert (case.status, case.outcome, case.closed_on) == ("declined", "declined", None)
    assert entry.data == {"guidance": "引导至县劳动人事争议仲裁委"} and entry.note == "属于劳动仲裁范围"


def _unsigned_high(status: str = "in_mediation", level: str = "township"):
    case = make_case(status, level)
    apply_action(user("township_director"), case, "grade_risk", {"level": "high", "factors": ["越级上访倾向"]})
    return case


def test_withdraw_and_answer_directly_need_the_sign_off_of_a_high_case(db):
    case = _unsigned_high()
    before = (case.status, case.outcome, len(case.timeline))
    with pytest.raises(InvalidTransition) as exc:
        apply_action(user("township_mediator"), case, "withdraw", {"reason": "申请人撤回"})
    assert "签批" in exc.value.message
    assert (case.status, case.outcome, len(case.timeline)) == before
    pending = _unsigned_high("pending_triage")
    with pytest.raises(InvalidTransition):
        apply_action(user("township_director"), pending, "answer_directly", {"answer": "已当场答复"})
    assert pending.status == "pending_triage"
    # The panel does not offer them either.
    from app.cases.services import actions_for
    assert not {"withdraw", "answer_directly", "agree", "terminate"} & {
        a.name for a in actions_for(user("township_director"), pending)}
    apply_action(user("township_secretary"), case, "sign_off",
                 {"plan": "书记包案", "leader": "township_secretary", "members": ["township_mediator"]})
    apply_action(user("township_mediator"), case, "withdraw", {"reason": "申请人撤回"})
    assert (case.status, case.outcome) == ("closed", "withdrawn")


def test_a_resolved_department_answer_does_not_close_an_unsigned_high_case(db):
    case = _unsigned_high("transferred")
    task = add_task(case)
    with pytest.raises(InvalidTransition) as exc:
        apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "已调处", "resolved": "yes"})
    assert "未化解" in exc.value.message  # tells the liaison what they can do
    assert case.status == "transferred" and task.answered_at is None
    # An unresolved answer returns the case to the centre as before.
    apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "未能化解", "resolved": "no"})
    assert case.status == "in_mediation" and task.answered_at is not None
    # Once signed off, a resolved answer closes it as 部门处理化解.
    signed = _unsigned_high("transferred")
    add_task(signed)
    apply_action(user("township_secretary"), signed, "sign_off",
                 {"plan": "书记包案", "leader": "township_secretary", "members": ["township_mediator"]})
    apply_action(user("dept_liaison"), signed, "department_feedback", {"answer": "已调处", "resolved": "yes"})
    assert (signed.status, signed.outcome) == ("closed", "department_resolved")


def test_the_panel_offers_answers_only_where_an_order_or_a_task_is_open(db):
    """``actions_for`` rules out 答复督办 and 部门反馈 without a query when the case has no order or
    task at all (``has_related``), and still offers them to the unit that has one open."""
    from app.cases.services import actions_for
    case = make_case("in_mediation", "village")
    plain = make_case("in_mediation", "village")
    assert "answer_supervision" not in {a.name for a in actions_for(user("village_mediator"), case)}
    apply_action(user("township_director"), case, "supervise",
                 {"requirement": "三日内上门化解", "due_on": (today_local() + timedelta(days=3)).isoformat()})
    assert "answer_supervision" in {a.name for a in actions_for(user("village_mediator"), case)}
    assert "answer_supervision" not in {a.name for a in actions_for(user("village_mediator"), plain)}
    transferred = make_case("pending_triage", "township")
    assert "department_feedback" not in {a.name for a in actions_for(user("dept_liaison"), transferred)}
    apply_action(user("township_mediator"), transferred, "transfer", {"department": LIAISON_DEPT, "request": "劳资纠纷"})
    assert "department_feedback" in {a.name for a in actions_for(user("dept_liaison"), transferred)}
