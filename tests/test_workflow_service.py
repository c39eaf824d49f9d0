"""Every (state, action) pair through the service: allowed pairs move the case and write one
timeline entry; refused pairs raise and leave the case, its timeline and its tasks unchanged.
And the role × action × level matrix through ``check_allowed``."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.accounts.roles import ROLES
from app.audit.models import AuditLog
from app.cases import workflow
from app.cases.models import Case, DepartmentTask, Party, SupervisionOrder, TimelineEntry
from app.cases.services import apply_action, check_allowed
from app.cases.vocab import STATUSES
from app.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from app.db import session
from app.templating import today_local
from tests.workflow_factories import (LIAISON_DEPT, OTHER_TOWNSHIP_VILLAGE, add_order, add_task, make_case,
                                      org_at_level, user)

PREFERRED_LEVEL = ("township", "village", "county")


def actor_for(action: str) -> tuple[str, str]:
    """A (username, handling level) the matrix allows for ``action``."""
    roles = workflow.ACTIONS[action].roles
    for level in PREFERRED_LEVEL:
        for role in ("township_director", "township_mediator", "village_mediator", "township_secretary",
                     "county_supervisor", "county_leader", "dept_liaison", "grid_worker"):
            if level in roles.get(role, ()):
                return role, level
    raise AssertionError(action)


def valid_data(action: str) -> dict:
    today = today_local()
    return {
        "accept": {"lead_mediator": "township_mediator"},
        "answer_directly": {"answer": "已当场答复当事人"},
        "decline": {"reason": "属于行政争议", "guidance": "引导申请行政复议"},
        "transfer": {"department": LIAISON_DEPT, "request": "请司法所处理"},
        "department_feedback": {"answer": "已协调双方", "resolved": True},
        "escalate": {"reason": "涉及多个村"},
        "accept_escalation": {},
        "return_escalation": {"reason": "属于村级可化解的纠纷"},
        "grade_risk": {"level": "low"},
        "sign_off": {"plan": "书记包案，三日内召开联调会", "leader": "township_secretary", "invited": ["老支书王某"]},
        "log_session": {"held_on": today.isoformat(), "record": "双方陈述意见"},
        "invite_department": {"department": LIAISON_DEPT, "request": "请派员参加联调"},
        "agree": {"agreement_form": "written", "terms": "甲方于月底前疏通排水沟"},
        "terminate": {"reason": "一方拒绝继续调解", "referral_path": "litigation"},
        "withdraw": {"reason": "申请人撤回"},
        "follow_up": {"performance": "performed", "satisfaction": "satisfied"},
        "judicial_confirmation": {"applied_on": today.isoformat(), "court": "示范县人民法院"},
        "reopen": {"reason": "协议未履行"},
        "hand_up": {"to": "市综治中心", "reason": "跨县纠纷"},
        "archive": {},
        "supervise": {"requirement": "五日内化解", "due_on": (today + timedelta(days=5)).isoformat()},
        "answer_supervision": {"answer": "已按要求办理"},
        "extend_deadline": {"reason": "等待双方协商"},
        "pause": {"reason": "等待伤情鉴定"},
        "resume": {},
        "register": {},
    }[action]


def prepare(action: str, state: str, level: str) -> Case:
    """A case in ``state`` at ``level`` satisfying the action's own conditions."""
    fields = {}
    if action == "sign_off":
        fields.update(risk_level="high")
    if action == "judicial_confirmation" and state in ("closed", "archived"):
        fields.update(outcome="success")
    if action == "resume":
        fields.update(paused_since=today_local() - timedelta(days=2))
    if action == "archive" and state == "closed":
        fields.update(outcome="direct_answer")  # a complete case file needs only its parties
    case = make_case(state, level, **fields)
    if action == "archive" and state == "closed":
        session.add(Party(case_id=case.id, position=0, kind="person", name="王某", role="applicant"))
        session.flush()
        session.refresh(case)
    if action == "department_feedback":
        add_task(case, "transfer" if state != "in_mediation" else "invite")
    if action == "answer_supervision":
        add_order(case, org_at_level(case, level))
    return case


def snapshot(case: Case, db) -> tuple:
    db.refresh(case)
    counts = [db.scalar(select(func.count()).select_from(m).where(m.case_id == case.id))
              for m in (TimelineEntry, DepartmentTask, SupervisionOrder)]
    return (case.status, case.version, case.handling_level, case.risk_level, case.outcome, case.closed_on,
            case.deadline_on, case.signed_off_at, *counts)


PAIRS = [(s, a) for s in STATUSES for a in workflow.ACTIONS]


@pytest.mark.parametrize("state,action", PAIRS)
def test_state_action_pair_through_service(db, state, action):
    role, level = actor_for(action)
    case = prepare(action, state, level)
    before = snapshot(case, db)
    if not workflow.transition_allowed(state, action):
        with pytest.raises(InvalidTransition):
            apply_action(user(role), case, action, valid_data(action))
        assert snapshot(case, db) == before
        return
    entry = apply_action(user(role), case, action, valid_data(action))
    assert entry.action == action and entry.from_status == state
    assert entry.to_status == case.status
    assert case.status in workflow.TRANSITIONS[(state, action)]
    assert entry.actor_name == user(role).display_name
    assert db.scalar(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.case_id == case.id)) == 1
    assert db.scalar(select(AuditLog).where(AuditLog.action == f"case.{action}",
                                            AuditLog.object_id == case.number)) is not None
    if case.status == "closed" and state != "closed":
        assert case.closed_on == today_local() and case.closed_at is not None
        assert case.outcome == workflow.ACTIONS[action].outcome


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("action", [a for a in workflow.ACTIONS if a != "register"])
def test_role_action_level_matrix(db, role, action):
    a = workflow.ACTIONS[action]
    state = sorted(a.sources)[0]
    actor = user(role)
    for level in workflow.LEVEL_ORDER:
        case = Case(status=state, handling_level=level)  # transient: the check needs no row
        if workflow.role_allowed(role, action, level):
            assert check_allowed(actor, case, action) is a
        else:
            with pytest.raises(PermissionDenied):
                check_allowed(actor, case, action)


def test_refused_permission_changes_nothing(db):
    case = make_case("pending_triage", "township")
    before = snapshot(case, db)
    with pytest.raises(PermissionDenied):
        apply_action(user("village_mediator"), case, "accept", {"lead_mediator": "village_mediator"})
    assert snapshot(case, db) == before


def test_bad_input_is_422_with_per_field_messages_and_changes_nothing(db):
    case = make_case("pending_triage", "township")
    before = snapshot(case, db)
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("township_director"), case, "decline", {"reason": " "})
    assert exc.value.errors == {"reason": "请填写不予受理理由", "guidance": "请填写引导途径（行政、仲裁、诉讼等）"}
    assert snapshot(case, db) == before


def test_case_outside_jurisdiction_is_not_found(db):
    case = make_case("pending_triage", "township", village=OTHER_TOWNSHIP_VILLAGE)
    with pytest.raises(NotFound):
        apply_action(user("township_director"), case, "accept", {"lead_mediator": "township_mediator"})


def test_unknown_action_is_a_validation_error(db):
    case = make_case("pending_triage", "township")
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("township_director"), case, "teleport", {})
    assert "action" in exc.value.errors


def test_stale_version_is_refused(db):
    from app.errors import StaleRecord
    case = make_case("pending_triage", "township")
    with pytest.raises(StaleRecord):
        apply_action(user("township_director"), case, "accept", {"lead_mediator": "township_mediator"},
                     expected_version=case.version + 1)
    entry = apply_action(user("township_director"), case, "accept", {"lead_mediator": "township_mediator"},
                         expected_version=case.version)
    assert entry.to_status == "in_mediation"


def test_accept_records_assignment_and_deadline(db):
    case = make_case("pending_triage", "township")
    entry = apply_action(user("township_director"), case, "accept",
                         {"lead_mediator": "township_mediator", "co_mediators": ["village_mediator"],
                          "handling_level": "village"})
    assert case.lead_mediator_id == user("township_mediator").id
    assert case.co_mediator_ids == [user("village_mediator").id]
    assert case.handling_level == "village"
    assert case.deadline_on == today_local() + timedelta(days=30)
    assert entry.data["deadline_on"] == case.deadline_on.isoformat()


def test_accept_cannot_assign_above_own_level(db):
    case = make_case("pending_triage", "village")
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("village_mediator"), case, "accept",
                     {"lead_mediator": "village_mediator", "handling_level": "county"})
    assert "handling_level" in exc.value.errors


def test_accept_keeps_the_deadline_set_at_registration(db):
    registered_deadline = today_local() + timedelta(days=27)
    case = make_case("pending_triage", "township", deadline_on=registered_deadline)
    apply_action(user("township_director"), case, "accept", {"lead_mediator": "township_mediator"})
    assert case.deadline_on == registered_deadline


def test_lead_mediator_and_leader_must_have_fitting_roles(db):
    case = make_case("pending_triage", "township")
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("township_director"), case, "accept", {"lead_mediator": "dept_liaison"})
    assert exc.value.errors == {"lead_mediator": "主办调解员须为调解员或综治中心工作人员"}
    with pytest.raises(ValidationFailed) as exc:
        apply_action(user("township_director"), case, "grade_risk", {"level": "medium", "leader": "grid_worker"})
    assert exc.value.errors == {"leader": "包案领导须为乡镇或县级领导"}
