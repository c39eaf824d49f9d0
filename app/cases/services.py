"""Workflow verbs on cases (PRODUCT.md §4–§5): ONE ``apply_action`` that every page and the
API go through, and one small function per action.

``apply_action`` checks, in order: the case is within the user's jurisdiction (404), the
action exists (422), the record is not stale (409), the role may take the action at the
case's handling level (403), the transition table allows it from the current state (409),
then the action's own conditions and fields (409 / 422).  Every handler validates all of
its input before it changes anything, so a refused action changes nothing.  Then the
state moves, a timeline entry and an audit record are written, and the session is flushed
(the route or API view commits once).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Iterable, Optional

from sqlalchemy import bindparam, or_, select

from app.accounts.models import User
from app.accounts.roles import COUNTY_ROLES, ROLES
from app.audit.services import audit
from app.cases import workflow
from app.cases.models import (Case, DepartmentTask, FollowUp, RiskGrading, SignOff, SupervisionOrder,
                              TimelineEntry)
from app.cases.queries import has_related, scope_cases
from app.cases.vocab import (AGREEMENT_FORMS, LEVELS, PERFORMANCE, REFERRAL_PATHS, RISK_LEVELS,
                             SATISFACTION, code_for)
from app.db import prepared, select_entities, session, utcnow
from app.i18n import N_
from app.errors import InvalidTransition, NotFound, PermissionDenied, StaleRecord, ValidationFailed
from app.orgs.models import OrgUnit
from app.settings.models import RiskFactor
from app.templating import today_local
from app.workflow import deadlines


@dataclass
class Change:
    """What a handler decided: the target state (None = unchanged), the timeline note and data,
    and a function that applies the change (run only once every check has passed)."""
    to: Optional[str] = None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    outcome: Optional[str] = None
    apply: Callable[[], None] = lambda: None


# ---------------------------------------------------------------------------------------------
# Input helpers: each appends a Chinese message to ``errors`` under the field's own name.

def _text(data: dict, key: str, errors: dict, label: str, required: bool = True, max_len: int = 4000) -> str:
    value = data.get(key)
    value = "" if value is None else str(value).strip()
    if required and not value:
        errors[key] = f"请填写{label}"
    elif len(value) > max_len:
        errors[key] = f"{label}不能超过 {max_len} 字"
    return value


def _date(data: dict, key: str, errors: dict, label: str, required: bool = True) -> Optional[date]:
    value = data.get(key)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value in (None, ""):
        if required:
            errors[key] = f"请填写{label}"
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        errors[key] = f"{label}格式应为 YYYY-MM-DD"
        return None


def _listify(value: Any) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return [v for v in value if v not in (None, "")]
    if isinstance(value, str):
        return [v.strip() for v in value.replace("，", ",").replace("、", ",").replace("\n", ",").split(",")
                if v.strip()]
    return [value]


def _find_user(value: Any, case: Case) -> Optional[User]:
    """A user by id or username, active and of the case's county."""
    if value in (None, ""):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        user = session.get(User, int(value))
    else:
        user = session.scalar(select(User).where(User.username == str(value).strip()))
    if user is None or not user.active or (user.org.county_id or user.org.id) != case.county_id:
        return None
    return user


def _user(data: dict, key: str, errors: dict, label: str, case: Case, required: bool = True) -> Optional[User]:
    value = data.get(key, data.get(f"{key}_id"))
    if value in (None, ""):
        if required:
            errors[key] = f"请选择{label}"
        return None
    user = _find_user(value, case)
    if user is None:
        errors[key] = f"{label}不是本县的有效用户"
    return user


def _users(data: dict, key: str, errors: dict, label: str, case: Case) -> list[User]:
    values = _listify(data.get(key, data.get(f"{key.rstrip('s')}_ids")))
    users = [_find_user(v, case) for v in values]
    if any(u is None for u in users):
        errors[key] = f"{label}中有无效的用户"
        return []
    return users


def _find_department(value: Any, case: Case) -> Optional[OrgUnit]:
    if value in (None, ""):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 9):
        org = session.get(OrgUnit, int(value))
    else:
        org = session.scalar(select(OrgUnit).where(OrgUnit.code == str(value).strip()))
    if org is None or org.level != "department" or not org.active or org.county_id != case.county_id:
        return None
    return org


def _department(data: dict, key: str, errors: dict, case: Case, required: bool = True) -> Optional[OrgUnit]:
    value = data.get(key, data.get(f"{key}_id"))
    if value in (None, ""):
        if required:
            errors[key] = "请选择部门"
        return None
    org = _find_department(value, case)
    if org is None:
        errors[key] = "部门无效或不在本县"
    return org


def _choice(data: dict, key: str, errors: dict, label: str, vocab: dict[str, str], required: bool = True) -> Optional[str]:
    value = data.get(key)
    value = "" if value is None else str(value).strip()
    if not value:
        if required:
            errors[key] = f"请选择{label}"
        return None
    if value in vocab:
        return value
    code = code_for(vocab, value)
    if code is None:
        errors[key] = f"{label}「{value}」无效，应为：" + "、".join(vocab.values())
    return code


def _bool(data: dict, key: str, errors: dict, label: str) -> Optional[bool]:
    value = data.get(key)
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "on", "resolved", "已化解", "是"):
        return True
    if text in ("0", "false", "no", "n", "off", "unresolved", "未化解", "否"):
        return False
    errors[key] = f"请选择{label}"
    return None


def _check(errors: dict) -> None:
    if errors:
        raise ValidationFailed(errors=errors)


def _name(user: Optional[User]) -> Optional[str]:
    return user.display_name if user else None


def org_id_at_level(case: Case, level: str) -> int:
    """The org unit (village, township or county) that handles ``case`` at ``level``."""
    return {"village": case.village_id, "township": case.township_id, "county": case.county_id}[level]


def user_unit_id(user: User) -> Optional[int]:
    """The centre (org unit) a user acts for: their village, township or county."""
    org = user.org
    if user.role in COUNTY_ROLES:
        return org.county_id or org.id
    if org.level == "township":
        return org.id
    if org.level == "village":
        return org.id
    if org.level == "grid":
        return org.parent_id
    return org.id


MEDIATOR_ROLES = frozenset(workflow.CENTRE)
LEADER_ROLES = frozenset({"township_director", "township_secretary", "county_supervisor", "county_leader"})


def _leader(data: dict, errors: dict, case: Case, required: bool) -> Optional[User]:
    """The 包案领导: a township or county leader of the case's county."""
    leader = _user(data, "leader", errors, "包案领导", case, required=required)
    if leader is not None and leader.role not in LEADER_ROLES:
        errors["leader"] = "包案领导须为乡镇或县级领导"
    return leader


SIGN_OFF_REQUIRED = {
    "centre": N_("高风险案件须经签批（乡镇党委书记或县领导）后，才能以达成协议、调解终止、撤回或直接答复结案。"),
    "department": N_("高风险案件尚未签批，不能以「已化解」结案：请待乡镇党委书记或县领导签批后再反馈，"
                     "或反馈为未化解、退回综治中心。"),
}


def _require_signed_off(case: Case, who: str = "centre") -> None:
    """A 高 case is closed only after its sign-off (签批, PRODUCT.md §5): every close that ends the
    dispute in the county — 达成协议, 调解终止, 撤回 (the applicant withdrawing does not end the
    risk the task force is named for), 直接答复, and a department's 部门处理化解 answer (an
    unresolved answer, which returns the case to the centre, is still accepted).  Not 上交
    (``hand_up``): handing a case beyond the county is the last escalation of a case the county
    cannot settle and must not wait for a county sign-off."""
    if case.risk_level == "high" and case.signed_off_at is None:
        raise InvalidTransition(SIGN_OFF_REQUIRED[who])


def _open_task(case: Case, department_id: int, kind: Optional[str] = None) -> Optional[DepartmentTask]:
    stmt = (select(DepartmentTask).where(DepartmentTask.case_id == case.id,
                                         DepartmentTask.department_id == department_id,
                                         DepartmentTask.answered_at.is_(None))
            .order_by(DepartmentTask.kind.desc(), DepartmentTask.id))  # transfer before invite
    if kind:
        stmt = stmt.where(DepartmentTask.kind == kind)
    return session.scalars(stmt).first()


def _open_orders_for(case: Case, user: User) -> list[SupervisionOrder]:
    return list(session.scalars(select(SupervisionOrder).where(
        SupervisionOrder.case_id == case.id, SupervisionOrder.answered_at.is_(None),
        SupervisionOrder.responsible_org_id == user_unit_id(user)).order_by(SupervisionOrder.id)))


# ---------------------------------------------------------------------------------------------
# One handler per action: validate everything, then return the change to apply.

def _check_recusal(case: Case, errors: dict, key: str, users: list[User]) -> None:
    """回避 (人民调解法 Arts. 19, 23) at assignment: a mediator who is a party, a party's agent or
    shares a party's phone is refused under ``key`` until someone else is picked."""
    from app.mediation.services import conflict_reason  # the mediation services import this module
    for u in users:
        why = None if key in errors else conflict_reason(case, u.display_name, u.phone)
        if why:
            errors[key] = f"{u.display_name}{why}，应当回避，请另行指定调解员"


def accept_case(user: User, case: Case, data: dict) -> Change:
    """受理: assign a lead mediator (and co-mediators), the handling level, and the mediation deadline
    (kept when intake already set it at registration)."""
    errors: dict[str, str] = {}
    lead = _user(data, "lead_mediator", errors, "主办调解员", case)
    co = _users(data, "co_mediators", errors, "协办调解员", case)
    if lead is not None and lead.role not in MEDIATOR_ROLES:
        errors["lead_mediator"] = "主办调解员须为调解员或综治中心工作人员"
    if any(u.role not in MEDIATOR_ROLES for u in co):
        errors["co_mediators"] = "协办调解员须为调解员或综治中心工作人员"
    _check_recusal(case, errors, "lead_mediator", [lead] if lead is not None else [])
    _check_recusal(case, errors, "co_mediators", co)
    level = (data.get("handling_level") or case.handling_level).strip()
    tier = workflow.ROLE_TIER.get(user.role, "village")
    if level not in workflow.LEVEL_ORDER:
        errors["handling_level"] = "办理层级无效"
    elif workflow.LEVEL_ORDER.index(level) > workflow.LEVEL_ORDER.index(tier):
        errors["handling_level"] = "不能指定高于本级的办理层级（需要上级办理请使用「上报」）"
    _check(errors)
    # The clock runs from registration (首接) when intake set it, as the ledger counts it.
    due = case.deadline_on or deadlines.add_days(today_local(), "mediation")

    def apply():
        case.lead_mediator_id = lead.id
        case.co_mediator_ids = [u.id for u in co] or None
        case.handling_level = level
        case.responsible_org_id = org_id_at_level(case, level)
        case.deadline_on = due
    return Change(note=str(data.get("note") or "").strip(), apply=apply,
                  data={"lead_mediator": lead.display_name, "co_mediators": [u.display_name for u in co],
                        "handling_level": level, "deadline_on": due.isoformat()})


def answer_directly(user: User, case: Case, data: dict) -> Change:
    """直接答复: closes the case at once with outcome 直接答复化解 (a 高 case only once signed off)."""
    _require_signed_off(case)
    errors: dict[str, str] = {}
    answer = _text(data, "answer", errors, "答复内容")
    _check(errors)

    def apply():
        case.outcome_note = answer
    return Change(note=answer, apply=apply)


def decline_case(user: User, case: Case, data: dict) -> Change:
    """不予受理: outside 人民调解 scope; the reason and the guidance (行政/仲裁/诉讼) are required."""
    errors: dict[str, str] = {}
    reason = _text(data, "reason", errors, "不予受理理由")
    guidance = _text(data, "guidance", errors, "引导途径（行政、仲裁、诉讼等）")
    _check(errors)

    def apply():
        case.outcome_note = f"{reason}\n引导：{guidance}"
    return Change(note=reason, data={"guidance": guidance}, apply=apply)


def transfer_case(user: User, case: Case, data: dict) -> Change:
    """转办: the department gets a task in its queue, due by the department deadline."""
    errors: dict[str, str] = {}
    dept = _department(data, "department", errors, case)
    request_text = _text(data, "request", errors, "转办要求", required=False)
    due = _date(data, "due_on", errors, "反馈期限", required=False)
    today = today_local()
    if due is not None and due < today:
        errors["due_on"] = "反馈期限不能早于今天"
    _check(errors)
    due = due or deadlines.add_days(today, "department")

    def apply():
        session.add(DepartmentTask(case_id=case.id, department_id=dept.id, kind="transfer",
                                   request=request_text or None, requested_by_id=user.id, due_on=due))
    return Change(note=request_text, apply=apply,
                  data={"department": dept.name, "department_code": dept.code, "due_on": due.isoformat()})


def invite_department(user: User, case: Case, data: dict) -> Change:
    """邀请联调: the department is asked to join the mediation and answers with what it did."""
    errors: dict[str, str] = {}
    dept = _department(data, "department", errors, case)
    request_text = _text(data, "request", errors, "联调事项")
    due = _date(data, "due_on", errors, "反馈期限", required=False)
    _check(errors)
    due = due or deadlines.add_days(today_local(), "department")

    def apply():
        session.add(DepartmentTask(case_id=case.id, department_id=dept.id, kind="invite",
                                   request=request_text, requested_by_id=user.id, due_on=due))
    return Change(note=request_text, apply=apply,
                  data={"department": dept.name, "department_code": dept.code, "due_on": due.isoformat()})


def department_feedback(user: User, case: Case, data: dict) -> Change:
    """部门反馈: the liaison answers the open transfer (closes as 部门处理化解, or returns the case
    to the centre as 未化解) or the open invitation (the case stays in mediation)."""
    task = _open_task(case, user.org_id, "transfer" if case.status == "transferred" else "invite")
    if task is None:
        raise InvalidTransition("本部门在该案件上没有待反馈的转办或联调任务。")
    errors: dict[str, str] = {}
    answer = _text(data, "answer", errors, "处理情况")
    resolved = _bool(data, "resolved", errors, "是否化解") if task.kind == "transfer" else bool(data.get("resolved"))
    _check(errors)
    to = case.status  # an invitation's answer leaves the case where it is
    if task.kind == "transfer":
        to = "closed" if resolved else "in_mediation"
    if to == "closed":
        _require_signed_off(case, "department")
    today = today_local()

    def apply():
        task.answered_at = utcnow()
        task.answered_by_id = user.id
        task.answer = answer
        task.resolved = resolved
        if to == "closed":
            case.outcome_note = answer
        elif to == "in_mediation" and case.deadline_on is None:
            case.deadline_on = deadlines.add_days(today, "mediation")
    return Change(to=to, note=answer, apply=apply,
                  data={"department": task.department.name, "kind": task.kind, "resolved": resolved})


def escalate_case(user: User, case: Case, data: dict) -> Change:
    """上报: village → township → county, with a reason; the upper level must accept or return it."""
    errors: dict[str, str] = {}
    reason = _text(data, "reason", errors, "上报理由")
    _check(errors)
    upper = workflow.next_level_up(case.handling_level)
    due = deadlines.add_days(today_local(), "escalation")

    def apply():
        case.escalated_at = utcnow()
        case.escalation_due_on = due
    return Change(note=reason, apply=apply,
                  data={"from_level": case.handling_level, "to_level": upper, "due_on": due.isoformat()})


def accept_escalation(user: User, case: Case, data: dict) -> Change:
    """接收上报: the handling level moves up one; the lead mediator may be reassigned."""
    errors: dict[str, str] = {}
    lead = _user(data, "lead_mediator", errors, "主办调解员", case, required=False)
    _check_recusal(case, errors, "lead_mediator", [lead] if lead is not None else [])
    _check(errors)
    upper = workflow.next_level_up(case.handling_level)
    old = case.handling_level
    # The case keeps its deadline (counted from registration); the upper level may extend it once.
    due = case.deadline_on or deadlines.add_days(today_local(), "mediation")

    def apply():
        case.handling_level = upper
        case.responsible_org_id = org_id_at_level(case, upper)
        case.escalated_at = None
        case.escalation_due_on = None
        case.deadline_on = due
        if lead is not None:
            case.lead_mediator_id = lead.id
    return Change(note=str(data.get("note") or "").strip(), apply=apply,
                  data={"from_level": old, "to_level": upper, "deadline_on": due.isoformat(),
                        "lead_mediator": _name(lead)})


def return_escalation(user: User, case: Case, data: dict) -> Change:
    """退回上报: back to the lower level with a reason; the level stays where it was."""
    errors: dict[str, str] = {}
    reason = _text(data, "reason", errors, "退回理由")
    _check(errors)
    today = today_local()

    def apply():
        case.escalated_at = None
        case.escalation_due_on = None
        if case.deadline_on is None:
            case.deadline_on = deadlines.add_days(today, "mediation")
    return Change(note=reason, apply=apply)


def active_risk_factors() -> list[RiskFactor]:
    return list(session.scalars(select(RiskFactor).where(RiskFactor.active).order_by(RiskFactor.position)))


def grade_risk(user: User, case: Case, data: dict) -> Change:
    """定级: the factor checklist gives a suggested level; the person confirms a level (or 销号)
    and a dated history row is written.  中 names a 包案领导; the first 高 starts the sign-off clock."""
    errors: dict[str, str] = {}
    factors_by_name = {f.name: f for f in active_risk_factors()}
    raw_factors = data.get("factors") or []
    if isinstance(raw_factors, str):  # one per line (factor names may contain 、)
        raw_factors = raw_factors.split("\n")
    factors = list(dict.fromkeys(str(f).strip() for f in raw_factors if str(f).strip()))
    unknown = [f for f in factors if f not in factors_by_name]
    if unknown:
        errors["factors"] = "未知的风险因素：" + "、".join(unknown)
    suggested = workflow.suggest_risk_level([factors_by_name[f].suggests for f in factors if f in factors_by_name])
    raw = str(data.get("level") or "").strip()
    level: Optional[str]
    if raw in ("none", "销号", "cleared"):
        level = None
        if case.risk_level is None:
            errors["level"] = "案件尚未定级，无需销号"
    else:
        level = _choice(data, "level", errors, "风险等级", RISK_LEVELS)
    reason = _text(data, "reason", errors, "理由", required=False)
    if not reason and "level" not in errors and (level is None or
                                                 workflow.RISK_ORDER[level] < workflow.RISK_ORDER[suggested]):
        errors["reason"] = "销号或低于建议等级时，请说明理由"
    leader = _leader(data, errors, case, required=(level == "medium" and not case.leader_id))
    _check(errors)
    kind = workflow.risk_change_kind(case.risk_level, level)

    def apply():
        session.add(RiskGrading(case_id=case.id, level=level, suggested_level=suggested, factors=factors,
                                reason=reason or kind, graded_by_id=user.id))
        case.risk_level = level
        case.risk_factors = factors or None
        if level == "high" and case.high_risk_at is None:
            case.high_risk_at = utcnow()
        if leader is not None:
            case.leader_id = leader.id
    return Change(note=reason, apply=apply,
                  data={"level": level, "suggested_level": suggested, "factors": factors, "change": kind,
                        "leader": _name(leader)})


def sign_off_high_risk(user: User, case: Case, data: dict) -> Change:
    """签批: the plan (化解方案), the 包案领导 and the task force (工作专班: users, departments,
    invited people without a login)."""
    if case.risk_level != "high":
        raise InvalidTransition("只有风险等级为「高」的案件需要签批。")
    errors: dict[str, str] = {}
    plan = _text(data, "plan", errors, "化解方案")
    leader = _leader(data, errors, case, required=True)
    members = _users(data, "members", errors, "专班成员", case)
    departments: list[OrgUnit] = []
    for value in _listify(data.get("departments")):
        org = _find_department(value, case)
        if org is None:
            errors["departments"] = "专班部门中有无效的部门"
        else:
            departments.append(org)
    invited = [str(v) for v in _listify(data.get("invited"))]
    if not errors and not (members or departments or invited):
        errors["members"] = "请至少指定一名工作专班成员（用户、部门或邀请人员）"
    _check(errors)
    task_force = {"users": [u.id for u in members], "departments": [d.id for d in departments], "invited": invited}

    def apply():
        session.add(SignOff(case_id=case.id, signed_by_id=user.id, plan=plan, leader_id=leader.id,
                            task_force=task_force))
        if case.signed_off_at is None:
            case.signed_off_at = utcnow()
        case.leader_id = leader.id
    return Change(note=plan, apply=apply,
                  data={"leader": leader.display_name, "members": [u.display_name for u in members],
                        "departments": [d.name for d in departments], "invited": invited})


def log_session(user: User, case: Case, data: dict) -> Change:
    """调解记录: one session with date, place, participants and the record."""
    errors: dict[str, str] = {}
    held_on = _date(data, "held_on", errors, "调解日期")
    if held_on and held_on > today_local():
        errors["held_on"] = "调解日期不能晚于今天"
    place = _text(data, "place", errors, "地点", required=False, max_len=200)
    participants = _text(data, "participants", errors, "参加人员", required=False)
    record = _text(data, "record", errors, "调解记录")
    _check(errors)
    return Change(note=record, data={"held_on": held_on.isoformat(), "place": place, "participants": participants})


def agree(user: User, case: Case, data: dict) -> Change:
    """达成协议: closes as 调解成功; written (协议书) or oral (recorded); the follow-up clock starts."""
    _require_signed_off(case)
    errors: dict[str, str] = {}
    form = _choice(data, "agreement_form", errors, "协议形式", AGREEMENT_FORMS)
    terms = _text(data, "terms", errors, "协议内容")
    _check(errors)
    due = deadlines.add_days(today_local(), "follow_up")

    def apply():
        case.agreement_form = form
        case.outcome_note = terms
        case.follow_up_due_on = due
    return Change(note=terms, apply=apply, data={"agreement_form": form, "follow_up_due_on": due.isoformat()})


def terminate(user: User, case: Case, data: dict) -> Change:
    """调解终止: closes as 调解不成; the referral path told to the parties is recorded."""
    _require_signed_off(case)
    errors: dict[str, str] = {}
    reason = _text(data, "reason", errors, "终止原因")
    path = _choice(data, "referral_path", errors, "告知途径", REFERRAL_PATHS)
    _check(errors)

    def apply():
        case.outcome_note = f"{reason}\n告知途径：{REFERRAL_PATHS[path]}"
    return Change(note=reason, apply=apply, data={"referral_path": path})


def withdraw(user: User, case: Case, data: dict) -> Change:
    """撤回: the applicant withdraws; closes as 撤回 (a 高 case only once signed off)."""
    _require_signed_off(case)
    errors: dict[str, str] = {}
    reason = _text(data, "reason", errors, "撤回原因")
    _check(errors)

    def apply():
        case.outcome_note = reason
    return Change(note=reason, apply=apply)


def follow_up(user: User, case: Case, data: dict) -> Change:
    """回访: performance, satisfaction and new risks; the latest is copied onto the case."""
    errors: dict[str, str] = {}
    visited_on = _date(data, "visited_on", errors, "回访日期", required=False) or today_local()
    performance = _choice(data, "performance", errors, "履行情况", PERFORMANCE, required=False)
    satisfaction = _choice(data, "satisfaction", errors, "满意度", SATISFACTION, required=False)
    new_risks = _text(data, "new_risks", errors, "新的风险", required=False)
    notes = _text(data, "notes", errors, "回访情况", required=False)
    if not errors and not (performance or satisfaction or notes):
        errors["notes"] = "请至少填写履行情况、满意度或回访情况之一"
    _check(errors)

    def apply():
        session.add(FollowUp(case_id=case.id, visited_on=visited_on, visitor_id=user.id,
                             visitor_name=user.display_name, performance=performance,
                             satisfaction=satisfaction, new_risks=new_risks or None, notes=notes or None))
        case.followed_up_on = visited_on
        case.performance = performance or case.performance
        case.satisfaction = satisfaction or case.satisfaction
        case.follow_up_due_on = None
    return Change(note=notes, apply=apply,
                  data={"visited_on": visited_on.isoformat(), "performance": performance,
                        "satisfaction": satisfaction, "new_risks": new_risks})


def judicial_confirmation(user: User, case: Case, data: dict) -> Change:
    """司法确认: applied within 30 days of the agreement (counted from the agreement's date, the
    day it took effect; the close date only when no agreement was recorded), to a court, with its
    result when known."""
    if case.outcome != "success":
        raise InvalidTransition("只有达成协议（调解成功）的案件可以申请司法确认。")
    errors: dict[str, str] = {}
    applied_on = _date(data, "applied_on", errors, "申请日期")
    court = _text(data, "court", errors, "受理法院", max_len=100)
    result = _text(data, "result", errors, "确认结果", required=False)
    from app.mediation.models import Agreement  # the mediation package imports this module
    agreed_on = session.scalar(select(Agreement.agreed_on).where(Agreement.case_id == case.id)
                               .order_by(Agreement.id.desc()).limit(1)) or case.closed_on
    if applied_on and agreed_on:
        limit = deadlines.add_days(agreed_on, "judicial_confirmation")
        if applied_on < agreed_on or applied_on > limit:
            errors["applied_on"] = f"须在协议生效之日起30日内申请（{agreed_on} 至 {limit}）"
    _check(errors)
    return Change(note=result, data={"applied_on": applied_on.isoformat(), "court": court, "result": result})


def reopen(user: User, case: Case, data: dict) -> Change:
    """重新办理: the agreement was not performed or the dispute flared up; counts as a recurrence."""
    errors: dict[str, str] = {}
    reason = _text(data, "reason", errors, "重新办理原因")
    _check(errors)
    previous = case.outcome
    due = deadlines.add_days(today_local(), "mediation")

    def apply():
        case.closed_on = None
        case.closed_at = None
        case.outcome = None
        case.outcome_note = None
        case.agreement_form = None
        case.follow_up_due_on = None
        case.recurrence_count = (case.recurrence_count or 0) + 1
        case.deadline_on = due
        case.deadline_extended = False
    return Change(note=reason, apply=apply, data={"previous_outcome": previous, "deadline_on": due.isoformat()})


def hand_up(user: User, case: Case, data: dict) -> Change:
    """上交: the county hands the case beyond the county (outcome 上报县级以上)."""
    errors: dict[str, str] = {}
    to = _text(data, "to", errors, "上交单位（市级或省级）", max_len=100)
    reason = _text(data, "reason", errors, "上交理由")
    _check(errors)

    def apply():
        case.outcome_note = f"上交：{to}\n{reason}"
    return Change(note=reason, apply=apply, data={"to": to})


def archive(user: User, case: Case, data: dict) -> Change:
    """归档: read-only after; only a complete case file (一案一卷) — the same check as the
    mediation pages (``app.mediation.services.completeness``; an agreement case needs its follow-up)."""
    from app.mediation.services import completeness  # the mediation services import this module
    missing = completeness(case)
    if missing:
        raise InvalidTransition("卷宗不完整，不能归档。缺少：" + "；".join(missing))
    return Change(note=str(data.get("note") or "").strip())


def supervise(user: User, case: Case, data: dict) -> Change:
    """督办: an order with a requirement and a deadline to the unit handling the case."""
    errors: dict[str, str] = {}
    requirement = _text(data, "requirement", errors, "督办要求")
    due = _date(data, "due_on", errors, "办理期限")
    if due and due < today_local():
        errors["due_on"] = "办理期限不能早于今天"
    _check(errors)
    responsible = org_id_at_level(case, case.handling_level)

    def apply():
        session.add(SupervisionOrder(case_id=case.id, issued_by_id=user.id, issuing_org_id=user_unit_id(user),
                                     responsible_org_id=responsible, requirement=requirement, due_on=due))
    return Change(note=requirement, apply=apply,
                  data={"due_on": due.isoformat(), "responsible_org": session.get(OrgUnit, responsible).name})


def answer_supervision(user: User, case: Case, data: dict) -> Change:
    """答复督办: the responsible unit answers its open order (the given ``order_id`` or the oldest)."""
    orders = _open_orders_for(case, user)
    if data.get("order_id") not in (None, ""):
        orders = [o for o in orders if str(o.id) == str(data["order_id"]).strip()]
    if not orders:
        raise InvalidTransition("该案件没有需要本单位答复的督办单。")
    order = orders[0]
    errors: dict[str, str] = {}
    answer = _text(data, "answer", errors, "答复内容")
    _check(errors)

    def apply():
        order.answered_at = utcnow()
        order.answered_by_id = user.id
        order.answer = answer
    return Change(note=answer, apply=apply, data={"order_id": order.id})


def extend_deadline(user: User, case: Case, data: dict) -> Change:
    """延长期限: once, with a reason."""
    if case.deadline_extended:
        raise InvalidTransition("办理期限只能延长一次。")
    if case.paused_since is not None:
        raise InvalidTransition("计时已中止，请先恢复计时再延长期限。")
    errors: dict[str, str] = {}
    reason = _text(data, "reason", errors, "延期理由")
    _check(errors)
    old = case.deadline_on
    new = deadlines.extend(case, today_local())

    def apply():
        case.deadline_on = new
        case.deadline_extended = True
        case.extension_reason = reason
    return Change(note=reason, apply=apply,
                  data={"from": old.isoformat() if old else None, "to": new.isoformat()})


def pause_clock(user: User, case: Case, data: dict) -> Change:
    """中止: stops the clock (e.g. awaiting an appraisal or a court decision), with a reason."""
    if case.paused_since is not None:
        raise InvalidTransition("计时已经中止。")
    errors: dict[str, str] = {}
    reason = _text(data, "reason", errors, "中止原因")
    _check(errors)
    today = today_local()

    def apply():
        case.paused_since = today
        case.pause_reason = reason
    return Change(note=reason, apply=apply, data={"since": today.isoformat()})


def resume_clock(user: User, case: Case, data: dict) -> Change:
    """恢复计时: the deadline moves by the days the pause used up, in the unit of the case's
    deadline rule (working days follow the admin calendar: holidays skipped, 调休 counted)."""
    if case.paused_since is None:
        raise InvalidTransition("计时没有中止，无需恢复。")
    today = today_local()
    unit = deadlines.case_clock_unit(case)
    days = deadlines.paused_span(case.paused_since, today, unit)
    new = deadlines.resume_deadline(case.deadline_on, case.paused_since, today, unit)

    def apply():
        case.deadline_on = new
        case.paused_days = (case.paused_days or 0) + days
        case.paused_since = None
        case.pause_reason = None
    return Change(note=str(data.get("note") or "").strip(), apply=apply,
                  data={"paused_days": days, "unit": unit, "deadline_on": new.isoformat() if new else None})


def _register(user: User, case: Case, data: dict) -> Change:  # pragma: no cover - never allowed
    raise InvalidTransition("登记请通过登记纠纷页面或 POST /api/v1/cases 进行。")


HANDLERS: dict[str, Callable[[User, Case, dict], Change]] = {
    "register": _register, "accept": accept_case, "answer_directly": answer_directly, "decline": decline_case,
    "transfer": transfer_case, "department_feedback": department_feedback, "escalate": escalate_case,
    "accept_escalation": accept_escalation, "return_escalation": return_escalation, "grade_risk": grade_risk,
    "sign_off": sign_off_high_risk, "log_session": log_session, "invite_department": invite_department,
    "agree": agree, "terminate": terminate, "withdraw": withdraw, "follow_up": follow_up,
    "judicial_confirmation": judicial_confirmation, "reopen": reopen, "hand_up": hand_up,
    "archive": archive, "supervise": supervise, "answer_supervision": answer_supervision,
    "extend_deadline": extend_deadline, "pause": pause_clock, "resume": resume_clock,
}
assert set(HANDLERS) == set(workflow.ACTIONS)  # nosec B101 # an import-time consistency check, not a guard


# ---------------------------------------------------------------------------------------------

def in_jurisdiction(user: User, case: Case) -> bool:
    """Whether ``case`` is among what ``user`` may see (the one scoping function decides)."""
    return session.scalar(scope_cases(user, select(Case.id)).where(Case.id == case.id)) is not None


def check_allowed(user: User, case: Case, action: str) -> workflow.Action:
    """Raise unless ``user`` may take ``action`` on ``case`` by the matrix and the table."""
    a = workflow.get_action(action)
    if a is None:
        raise ValidationFailed(errors={"action": f"未知的操作「{action}」"})
    if not workflow.role_allowed(user.role, action, case.handling_level):
        raise PermissionDenied(f"{ROLES.get(user.role, user.role)}不能对{LEVELS[case.handling_level]}案件"
                               f"进行「{a.label}」操作。")
    if not workflow.transition_allowed(case.status, action):
        raise InvalidTransition(workflow.refusal_message(case.status, action))
    return a


def lock_case(case: Case) -> None:
    """Lock ``case``'s row on PostgreSQL (``SELECT … FOR UPDATE``) and re-read it if another
    transaction committed since it was loaded, so the version checked is the one this
    transaction will update and concurrent writers queue instead of failing.  SQLite ignores
    ``FOR UPDATE``: every write transaction begins IMMEDIATE (``app.db``), which already
    serialises writers; the version read still catches an object loaded before a commit."""
    stored = session.scalar(select(Case.version).where(Case.id == case.id).with_for_update())
    if stored != case.version:  # another transaction committed since this object was loaded
        session.refresh(case)


def _version_number(value: Any) -> Optional[int]:
    """The version a form or API body carried: an int, ``"7"`` or an ETag such as ``W/"7"``."""
    if value in (None, ""):
        return None
    text = str(value).strip().removeprefix("W/").strip('"')
    try:
        return int(text)
    except ValueError:
        raise ValidationFailed(errors={"version": "版本号无效，请刷新页面后重试"}) from None


def case_snapshot(case: Case) -> dict[str, Any]:
    """What the conflict page and the API's 409 show as "now stored" for a case: its state and
    the latest handling, so the user sees what the other person did."""
    from app.cases.vocab import STATUSES
    last = session.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case.id)
                           .order_by(TimelineEntry.id.desc()).limit(1)).first()
    snap: dict[str, Any] = {
        N_("状态"): STATUSES.get(case.status, case.status),
        N_("办理层级"): LEVELS.get(case.handling_level, case.handling_level),
        N_("风险等级"): RISK_LEVELS.get(case.risk_level, "未定级") if case.risk_level else "未定级",
    }
    if last is not None:
        label = workflow.ACTIONS[last.action].label if last.action in workflow.ACTIONS else last.action
        snap[N_("最近办理")] = f"{label}（{last.actor_name or ''}，{last.at:%Y-%m-%d %H:%M} UTC）"
        if last.note:
            snap[N_("最近办理说明")] = last.note
    return snap


def check_version(case: Case, expected_version: Any, current: Optional[dict[str, Any]] = None,
                  submitted: Optional[dict[str, Any]] = None) -> None:
    """Refuse (409 ``StaleRecord``) when the version the form or API call was loaded with is
    older than the stored one; ``None`` means the caller sent no version (API clients may)."""
    expected = _version_number(expected_version)
    if expected is not None and expected != case.version:
        raise StaleRecord(current_version=case.version, submitted_version=expected,
                          current=current if current is not None else case_snapshot(case),
                          submitted=submitted, record=f"{case.number}",
                          record_url=f"/cases/{case.number}")


def apply_action(user: User, case: Case, action: str, data: Optional[dict] = None,
                 expected_version: Optional[int] = None) -> TimelineEntry:
    """Take workflow ``action`` on ``case`` as ``user`` with the action's fields in ``data``;
    returns the new timeline entry.  Refusals raise and leave everything unchanged."""
    data = dict(data or {})
    if not in_jurisdiction(user, case):
        raise NotFound()
    lock_case(case)
    check_version(case, expected_version)
    a = check_allowed(user, case, action)
    change = HANDLERS[action](user, case, data)
    from_status = case.status
    to_status = change.to or a.target_for(from_status)
    change.apply()
    case.status = to_status
    now = utcnow()
    if a.outcome == "declined":
        case.outcome = "declined"
    if to_status == "closed" and from_status != "closed":
        case.closed_on = today_local()
        case.closed_at = now
        case.outcome = a.outcome
        case.paused_since = None
    case.last_activity_at = now
    entry = TimelineEntry(case=case, at=now, actor_id=user.id, actor_name=user.display_name, action=action,
                          from_status=from_status, to_status=to_status, note=change.note or None,
                          data={k: v for k, v in change.data.items() if v not in (None, "", [])} or None)
    session.add(entry)
    session.flush()
    audit(f"case.{action}", "case", case.number,
          {"from": from_status, "to": to_status, **({"data": entry.data} if entry.data else {})}, user=user)
    return entry


def actions_for(user: User, case: Case) -> list[workflow.Action]:
    """The panel's actions: what the table and matrix allow now, minus those whose own
    conditions plainly fail (so the page offers only what will work)."""
    result = []
    for a in workflow.available_actions(user.role, case.status, case.handling_level):
        if not a.in_panel:
            continue
        n = a.name
        if n == "sign_off" and case.risk_level != "high":
            continue
        if n in ("agree", "terminate", "withdraw", "answer_directly") and case.risk_level == "high" \
                and case.signed_off_at is None:
            continue
        if n == "extend_deadline" and (case.deadline_extended or case.paused_since or not case.deadline_on):
            continue
        if n == "pause" and case.paused_since is not None:
            continue
        if n == "resume" and case.paused_since is None:
            continue
        if n == "judicial_confirmation" and case.outcome != "success":
            continue
        if n == "archive" and case.outcome == "success" and case.followed_up_on is None:
            continue
        # a case without any task or order (most: the case page already knows which record tables
        # hold its rows, ``has_related``) needs no query to rule these two out
        if n == "department_feedback" and (not has_related(case, "department_task") or _open_task(
                case, user.org_id, "transfer" if case.status == "transferred" else "invite") is None):
            continue
        if n == "answer_supervision" and (not has_related(case, "supervision_order")
                                          or not _open_orders_for(case, user)):
            continue
        result.append(a)
    return result


def users_for_picker(case: Case, roles: Iterable[str]) -> list[User]:
    """Active users of the case's county with one of ``roles`` whose unit lies over the case, by
    role and name.  One statement built once per process reads the active users over the case
    (every role: the few dozen of a county's, township's and village's units) as rows made the
    session's users (``select_entities``), and the roles are picked here: the workflow panel of
    every open case a mediator or supervisor opens reads it, and the ORM's execution cost ~2 %
    of such a page.  (Not one kept statement per set of roles: statements differing only in
    bound values share SQLAlchemy's compiled form, and adapting its result columns from one to
    the other compares columns with ``==``, which an encrypted column refuses.)"""
    roles = set(roles)
    stmt = prepared("users_for_picker", lambda: (
        select(User).join(OrgUnit, User.org_id == OrgUnit.id)
        .where(User.active, or_(OrgUnit.id == bindparam("county"), OrgUnit.id == bindparam("township"),
                                OrgUnit.id == bindparam("village"), OrgUnit.parent_id == bindparam("village")))
        .order_by(User.role, User.display_name)), server_prepare=True)
    users = select_entities(stmt, {"county": case.county_id, "township": case.township_id, "village": case.village_id})
    return [user for user in users if user.role in roles]


def departments_for(case: Case) -> list[OrgUnit]:
    """Departments a case may be transferred or invited to: the township's, then the county's."""
    stmt = (select(OrgUnit).where(OrgUnit.level == "department", OrgUnit.active,
                                  (OrgUnit.parent_id == case.township_id) | (OrgUnit.parent_id == case.county_id))
            .order_by(OrgUnit.parent_id == case.county_id, OrgUnit.code))  # the township's first
    return list(session.scalars(stmt))


# ---------------------------------------------------------------------------------------------
# 修改案件信息: the case's own fields, edited by two people at once only over a version check.

CASE_FIELDS: list[tuple[str, str]] = [
    ("source", N_("纠纷来源")), ("type", N_("纠纷类型")), ("occurred_on", N_("纠纷发生日期")),
    ("people_involved", N_("涉及人数")), ("amount", N_("涉及金额（元）")), ("summary", N_("纠纷简要情况")),
    ("claims", N_("主要诉求")),
]
CASE_TEXT_LIMITS = {"summary": 4000, "claims": 2000}


def can_edit_case(user: User, case: Case) -> bool:
    """Centre staff and mediators over the case may correct it; the registrar (e.g. a grid
    worker) while it still waits for triage.  An archived case is read-only."""
    if case.status == "archived" or not user.can("cases.register"):
        return False
    return user.role in MEDIATOR_ROLES or (case.registered_by_id == user.id and case.status == "pending_triage")


def case_field_values(case: Case) -> dict[str, str]:
    """The editable fields as the form shows them (text)."""
    return {"source": case.source or "", "type": case.dispute_type or "",
            "occurred_on": case.occurred_on.isoformat() if case.occurred_on else "",
            "people_involved": "" if case.people_involved is None else str(case.people_involved),
            "amount": "" if case.amount is None else f"{case.amount:.2f}",
            "summary": case.summary or "", "claims": case.claims or ""}


def labelled(values: dict[str, Any]) -> dict[str, Any]:
    """Field values keyed by their Chinese labels, in form order (for the conflict page)."""
    return {label: values.get(name, "") for name, label in CASE_FIELDS}


def update_case_details(user: User, case: Case, data: dict, expected_version: Any) -> dict[str, list]:
    """Save the case's own fields from ``data`` when ``expected_version`` is still the stored
    one (else 409 with both versions); returns the changes ``{field: [old, new]}`` (audited, and
    a timeline entry).  A version is required: a save that cannot say what it was based on
    could silently overwrite someone's change."""
    from app.cases.validators import FieldError, clean_amount, clean_past_date, clean_people
    from app.settings.services import active_sources, resolve_type

    if not in_jurisdiction(user, case):
        raise NotFound()
    if not can_edit_case(user, case):
        raise PermissionDenied("您不能修改该案件的信息（已归档的案件只读）。")
    if _version_number(expected_version) is None:
        raise ValidationFailed(errors={"version": "缺少版本号，请刷新页面后重新修改"})
    lock_case(case)
    submitted = {name: "" if data.get(name) is None else str(data.get(name)).strip() for name, _ in CASE_FIELDS}
    check_version(case, expected_version, current=labelled(case_field_values(case)), submitted=labelled(submitted))

    errors: dict[str, str] = {}
    today = today_local()
    source = submitted["source"]
    if not source:
        errors["source"] = "请选择纠纷来源。"
    elif source != case.source and source not in active_sources():
        errors["source"] = f"来源“{source}”不在来源列表中。"
    dtype = resolve_type(submitted["type"]) if submitted["type"] else None
    if not submitted["type"]:
        errors["type"] = "请选择纠纷类型。"
    elif dtype is None or (not dtype.active and dtype.name != case.dispute_type):
        errors["type"] = f"纠纷类型“{submitted['type']}”不在类型列表中。"
    if not submitted["summary"]:
        errors["summary"] = "请填写纠纷简要情况。"
    for name, limit in CASE_TEXT_LIMITS.items():
        if len(submitted[name]) > limit:
            errors[name] = f"最多{limit}个字。"
    new: dict[str, Any] = {}
    for name, clean in (("people_involved", clean_people), ("amount", clean_amount),
                        ("occurred_on", lambda v: clean_past_date(v, today, "纠纷发生日期"))):
        try:
            new[name] = clean(submitted[name])
        except FieldError as exc:
            errors[name] = str(exc)
    _check(errors)

    new.update(source=source, summary=submitted["summary"], claims=submitted["claims"] or None)
    old = case_field_values(case)
    columns = {"source": "source", "summary": "summary", "claims": "claims", "people_involved": "people_involved",
               "amount": "amount", "occurred_on": "occurred_on"}
    for name, column in columns.items():
        setattr(case, column, new[name])
    case.dispute_type = dtype.name
    case.type_category = dtype.category
    changes = {name: [old[name], value] for name, value in case_field_values(case).items() if old[name] != value}
    if not changes:
        return {}
    now = utcnow()
    case.last_activity_at = now
    labels = dict(CASE_FIELDS)
    session.add(TimelineEntry(case=case, at=now, actor_id=user.id, actor_name=user.display_name, action="edit",
                              from_status=case.status, to_status=case.status,
                              note="修改：" + "、".join(labels[k] for k in changes), data={"changes": changes}))
    session.flush()
    audit("case.edit", "case", case.number, {"changes": changes, "version": case.version}, user=user)
    return changes
