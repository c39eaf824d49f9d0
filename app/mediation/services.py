"""Write services of joint mediation and close-out (issue 5).  Each validates all of its own
input first (Chinese per-field messages), then lets ``app.cases.services.apply_action`` check
and move the case (jurisdiction, role × level, the transition table, the action's own fields),
then adds the richer records.  Anything refused raises before a change; the route rolls back.
Services only flush; the route commits once.  An archived case is read-only: every service here
refuses it (the workflow table has no action from 已归档 either).
"""
from __future__ import annotations

from datetime import date
from typing import Any, Optional

from sqlalchemy import select

from app.accounts.models import User
from app.audit.services import audit
from app.cases.models import Case, FollowUp, Party, TimelineEntry
from app.cases.services import (MEDIATOR_ROLES, check_version, lock_case, _find_department, _find_user, apply_action, check_allowed,
                                 in_jurisdiction)
from app.cases.vocab import AGREEMENT_FORMS, REFERRAL_PATHS
from app.db import session, utcnow
from app.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from app.mediation.models import (CHANGE_KINDS, CONFIRMATION_RESULTS, ROSTER_KINDS, Agreement, CaseClosure,
                                  JudicialConfirmation, MediationSession, MediatorChange, Obligation,
                                  RosterMember, SessionParticipant)
from app.orgs.models import OrgUnit
from app.templating import today_local

MAX_OBLIGATIONS = 20


# ---------------------------------------------------------------------------------------------
# small helpers

def _s(data: dict, key: str) -> str:
    v = data.get(key)
    return "" if v is None else str(v).strip()


def _req(data: dict, key: str, errors: dict, label: str, max_len: int = 4000) -> str:
    v = _s(data, key)
    if not v:
        errors[key] = f"请填写{label}"
    elif len(v) > max_len:
        errors[key] = f"{label}不能超过 {max_len} 字"
    return v


def _opt(data: dict, key: str, errors: dict, label: str, max_len: int = 4000) -> str:
    v = _s(data, key)
    if len(v) > max_len:
        errors[key] = f"{label}不能超过 {max_len} 字"
    return v


def _date(data: dict, key: str, errors: dict, label: str, required: bool = True) -> Optional[date]:
    v = data.get(key)
    if isinstance(v, date):
        return v
    v = "" if v is None else str(v).strip()
    if not v:
        if required:
            errors[key] = f"请填写{label}"
        return None
    try:
        return date.fromisoformat(v)
    except ValueError:
        errors[key] = f"{label}格式应为 YYYY-MM-DD"
        return None


def _ids(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).replace("，", ",").split(",") if v.strip()]


def _check(errors: dict) -> None:
    if errors:
        raise ValidationFailed(errors=errors)


def ensure_writable(user: User, case: Case, action: Optional[str] = None) -> None:
    """Refuse an archived case (read-only) and a case outside the user's jurisdiction; with
    ``action``, also what the workflow's role matrix and table refuse (before any field check)."""
    if not in_jurisdiction(user, case):
        raise NotFound()
    if case.status == "archived":
        raise InvalidTransition("案件已归档，只能查阅，不能修改。")
    if action:
        check_allowed(user, case, action)


def _timeline(user: User, case: Case, action: str, note: str, data: Optional[dict] = None) -> TimelineEntry:
    entry = TimelineEntry(case=case, at=utcnow(), actor_id=user.id, actor_name=user.display_name, action=action,
                          from_status=case.status, to_status=case.status, note=note or None, data=data or None)
    session.add(entry)
    case.last_activity_at = entry.at
    return entry


def parties_of(case: Case) -> list[Party]:
    return list(case.parties)


def _party(case: Case, value: Any) -> Optional[Party]:
    for p in case.parties:
        if str(p.id) == str(value).strip():
            return p
    return None


def roster_member_for_case(case: Case, value: Any) -> Optional[RosterMember]:
    """An active roster member of the case's county."""
    if value in (None, "") or not str(value).strip().isdigit():
        return None
    m = session.get(RosterMember, int(str(value).strip()))
    if m is None or not m.active or (m.org.county_id or m.org.id) != case.county_id:
        return None
    return m


# ---------------------------------------------------------------------------------------------
# 回避: a mediator who is a party or related to one

def conflict_reason(case: Case, name: Optional[str], phone: Optional[str] = None,
                    declared_related: bool = False) -> Optional[str]:
    """Why a would-be mediator must step aside (Art. 19/23 回避), or None."""
    if declared_related:
        return "与当事人有利害关系"
    name = (name or "").strip()
    for p in case.parties:
        if name and (p.name == name or (p.agent and p.agent.strip() == name)):
            return f"是本案当事人或代理人（{p.name}）"
        if phone and p.phone and p.phone.strip() == phone.strip():
            return f"与当事人 {p.name} 联系电话相同，可能为近亲属"
    return None


def change_mediator(user: User, case: Case, data: dict) -> MediatorChange:
    """Parties choose or accept a mediator, or ask for a replacement; or the mediator recuses.

    ``kind``: party_choice / replacement / recusal; ``new_mediator`` (user id) or ``new_roster``
    (roster id: a person without login, who mediates alongside the lead on a party's choice and
    takes the lead's place on a replacement or recusal — the old lead is removed); ``reason``;
    ``requested_by`` (party id) required for a party's choice or replacement.  A candidate who is
    a party or related to one (``related`` ticked) is refused (回避)."""
    ensure_writable(user, case)
    if case.status not in ("pending_triage", "in_mediation"):
        raise InvalidTransition("只有待研判或调解中的案件可以选择或更换调解员。")
    if user.role not in MEDIATOR_ROLES:
        raise PermissionDenied("只有调解员或综治中心工作人员可以登记调解员的选择与更换。")
    lock_case(case)
    check_version(case, data.get("version"))
    errors: dict[str, str] = {}
    kind = _s(data, "kind")
    if kind not in CHANGE_KINDS:
        errors["kind"] = "请选择变更类型（当事人选择、当事人申请更换或回避）"
    reason = _req(data, "reason", errors, "理由")
    party = None
    if kind in ("party_choice", "replacement"):
        party = _party(case, data.get("requested_by"))
        if party is None:
            errors["requested_by"] = "请选择提出选择或更换的当事人"
    new_user = _find_user(data.get("new_mediator"), case) if _s(data, "new_mediator") else None
    new_roster = roster_member_for_case(case, data.get("new_roster")) if _s(data, "new_roster") else None
    if _s(data, "new_mediator") and (new_user is None or new_user.role not in MEDIATOR_ROLES):
        errors["new_mediator"] = "新调解员须为本县的调解员或综治中心工作人员"
    if _s(data, "new_roster") and new_roster is None:
        errors["new_roster"] = "所选调解力量不在本县调解力量库中"
    if not _s(data, "new_mediator") and not _s(data, "new_roster"):
        errors["new_mediator"] = "请选择新的调解员"
    candidate = new_user or new_roster
    if candidate is not None and "new_mediator" not in errors:
        why = conflict_reason(case, getattr(candidate, "display_name", None) or candidate.name,
                              candidate.phone, declared_related=data.get("related") in ("1", "on", True, "true"))
        if why:
            errors["new_mediator"] = f"{getattr(candidate, 'display_name', None) or candidate.name}{why}，应当回避，请另行选择调解员"
    linked = None  # a roster person with a mediator's login takes the lead as that user
    if new_user is None and new_roster is not None and new_roster.user_id and kind != "party_choice":
        linked = session.get(User, new_roster.user_id)
        if linked is None or not linked.active or linked.role not in MEDIATOR_ROLES:
            linked = None
    if (new_user or linked) is not None and (new_user or linked).id == case.lead_mediator_id:
        errors["new_mediator"] = "新调解员与现任主办调解员相同"
    _check(errors)
    new_user = new_user or linked
    old = session.get(User, case.lead_mediator_id) if case.lead_mediator_id else None
    new_name = new_user.display_name if new_user else new_roster.name
    change = MediatorChange(case_id=case.id, kind=kind, old_user_id=old.id if old else None,
                            old_name=old.display_name if old else case.responsible_name,
                            new_user_id=new_user.id if new_user else None,
                            new_roster_id=new_roster.id if new_roster else None, new_name=new_name,
                            requested_by=party.name if party else None, reason=reason, created_by_id=user.id)
    session.add(change)
    if new_user is not None:
        case.lead_mediator_id = new_user.id
        case.responsible_name = new_user.display_name
        if case.co_mediator_ids and new_user.id in case.co_mediator_ids:
            case.co_mediator_ids = [i for i in case.co_mediator_ids if i != new_user.id] or None
    elif kind in ("replacement", "recusal") or case.lead_mediator_id is None:
        # The old lead steps aside (回避, or replaced at a party's request) even when the new
        # mediator is a roster person without a login: no lead user is left on the case.
        case.lead_mediator_id = None
        case.responsible_name = new_roster.name
    # else (a party's choice of a roster person): they mediate alongside the lead
    _timeline(user, case, "mediator_change", f"{CHANGE_KINDS[kind]}：{change.old_name or '—'} → {new_name}。{reason}",
              {"kind": kind, "new": new_name, "requested_by": change.requested_by})
    session.flush()
    audit("case.mediator_change", "case", case.number, {"kind": kind, "new": new_name}, user=user)
    return change


# ---------------------------------------------------------------------------------------------
# Sessions and invitations

def _participants(case: Case, data: dict, errors: dict) -> list[dict]:
    """The participants of every kind named in ``data``: ``user_ids``, ``department_ids``,
    ``roster_ids``, ``party_ids`` and free-text ``others`` (one per line or comma)."""
    rows: list[dict] = []
    for v in _ids(data.get("user_ids")):
        u = _find_user(v, case)
        if u is None:
            errors["user_ids"] = "参加的调解员中有无效的用户"
            break
        rows.append({"kind": "user", "user_id": u.id, "name": u.display_name})
    for v in _ids(data.get("department_ids")):
        d = _find_department(v, case)
        if d is None:
            errors["department_ids"] = "参加的部门无效或不在本县"
            break
        rows.append({"kind": "department", "department_id": d.id, "name": d.name})
    for v in _ids(data.get("roster_ids")):
        m = roster_member_for_case(case, v)
        if m is None:
            errors["roster_ids"] = "参加的调解力量不在本县调解力量库中"
            break
        rows.append({"kind": "roster", "roster_id": m.id, "name": f"{m.name}（{ROSTER_KINDS.get(m.kind, m.kind)}）"})
    for v in _ids(data.get("party_ids")):
        p = _party(case, v)
        if p is None:
            errors["party_ids"] = "到场当事人不属于本案"
            break
        rows.append({"kind": "party", "party_id": p.id, "name": p.name})
    others = _s(data, "others").replace("，", ",").replace("、", ",").replace("\n", ",")
    for name in [n.strip() for n in others.split(",") if n.strip()]:
        rows.append({"kind": "other", "name": name[:100]})
    keys = ("user_ids", "department_ids", "roster_ids", "party_ids")
    if not any(k in errors for k in keys) and not any(r["kind"] == "party" for r in rows):
        errors["party_ids"] = "请勾选到场的当事人"
    if not any(k in errors for k in keys) and not any(r["kind"] in ("user", "roster") for r in rows):
        errors["user_ids"] = "请至少选择一名主持调解的调解员或特邀调解人员"
    return rows


def record_session(user: User, case: Case, data: dict) -> MediationSession:
    """调解记录: a session with participants of every kind; the workflow's log_session writes the timeline."""
    ensure_writable(user, case, "log_session")
    errors: dict[str, str] = {}
    held_on = _date(data, "held_on", errors, "调解日期")
    place = _req(data, "place", errors, "调解地点", 200)
    record = _req(data, "record", errors, "调解情况（各方陈述与调解过程）")
    agreed = _opt(data, "agreed", errors, "达成的共识")
    next_steps = _opt(data, "next_steps", errors, "下一步安排")
    rows = _participants(case, data, errors)
    _check(errors)
    entry = apply_action(user, case, "log_session",
                         {"held_on": held_on, "place": place, "record": record,
                          "participants": "、".join(r["name"] for r in rows)},
                         expected_version=data.get("version"))
    s = MediationSession(case_id=case.id, held_on=held_on, place=place, record=record, agreed=agreed or None,
                         next_steps=next_steps or None, recorded_by_id=user.id, recorded_by_name=user.display_name,
                         timeline_entry_id=entry.id)
    s.participants = [SessionParticipant(case_id=case.id, **r) for r in rows]
    session.add(s)
    session.flush()
    return s


def invite_department(user: User, case: Case, data: dict):
    """邀请联调: the workflow's invite_department (a DepartmentTask of kind invite in the liaison's queue)."""
    ensure_writable(user, case, "invite_department")
    return apply_action(user, case, "invite_department",
                        {"department": data.get("department"), "request": data.get("request"),
                         "due_on": data.get("due_on")}, expected_version=data.get("version"))


# ---------------------------------------------------------------------------------------------
# Close-out

def parse_obligations(data: dict, errors: dict) -> list[dict]:
    """Obligation rows ``ob-<i>-obligor|content|manner|deadline``; a blank row is skipped,
    a partly filled one gets a message on each missing field."""
    rows = []
    for i in range(MAX_OBLIGATIONS):
        keys = {f: f"ob-{i}-{f}" for f in ("obligor", "content", "manner", "deadline")}
        values = {f: _s(data, k) for f, k in keys.items()}
        if not any(values.values()):
            continue
        labels = {"obligor": "履行义务人", "content": "义务内容", "manner": "履行方式", "deadline": "履行期限"}
        for f, k in keys.items():
            if not values[f]:
                errors[k] = f"第 {i + 1} 项义务：请填写{labels[f]}"
        deadline = None
        if values["deadline"]:
            deadline = _date(data, keys["deadline"], errors, f"第 {i + 1} 项义务的履行期限")
        rows.append({"obligor": values["obligor"][:100], "content": values["content"],
                     "manner": values["manner"][:200], "deadline": deadline, "position": i})
    return rows


def agree(user: User, case: Case, data: dict) -> Agreement:
    """达成协议 (Arts. 28–29).  Written: facts, points in dispute, terms, and at least one
    obligation each with obligor, manner and deadline.  Oral: the content as recorded."""
    ensure_writable(user, case, "agree")
    errors: dict[str, str] = {}
    form = _s(data, "agreement_form")
    if form not in AGREEMENT_FORMS:
        errors["agreement_form"] = "请选择协议形式（书面或口头）"
    agreed_on = _date(data, "agreed_on", errors, "协议日期")
    if agreed_on and agreed_on > today_local():
        errors["agreed_on"] = "协议日期不能晚于今天"
    content = _req(data, "content", errors, "协议内容" if form != "oral" else "口头协议内容")
    facts = disputes = responsibilities = ""
    obligations: list[dict] = []
    copies = len(case.parties) + 1
    if form == "written":
        facts = _req(data, "facts", errors, "纠纷主要事实")
        disputes = _req(data, "disputes", errors, "争议事项")
        responsibilities = _opt(data, "responsibilities", errors, "各方责任")
        obligations = parse_obligations(data, errors)
        if not obligations and not any(k.startswith("ob-") for k in errors):
            errors["ob-0-content"] = "书面协议须至少写明一项义务及其履行方式和期限"
        if len(case.parties) < 2:
            errors["parties"] = "书面协议须有双方当事人，请先补全当事人信息"
    elif form == "oral":
        obligations = parse_obligations(data, errors)
    _check(errors)
    terms = content
    if obligations:
        terms += "\n" + "\n".join(f"{o['obligor']}：{o['content']}（{o['manner']}，{o['deadline']}前）"
                                  for o in obligations)
    lead = session.get(User, case.lead_mediator_id) if case.lead_mediator_id else None
    mediator_name = lead.display_name if lead else (case.responsible_name or user.display_name)
    apply_action(user, case, "agree", {"agreement_form": form, "terms": terms},
                 expected_version=data.get("version"))
    a = Agreement(case_id=case.id, form=form, agreed_on=agreed_on, facts=facts or None, disputes=disputes or None,
                  responsibilities=responsibilities or None, content=content, copies=copies,
                  mediator_name=mediator_name, created_by_id=user.id)
    a.obligations = [Obligation(**o) for o in obligations]
    session.add(a)
    session.flush()
    return a


def terminate(user: User, case: Case, data: dict) -> CaseClosure:
    """调解终止 (Art. 26): the reason and the routes told to the parties (诉讼/仲裁/行政处理/信访)."""
    ensure_writable(user, case, "terminate")
    errors: dict[str, str] = {}
    reason = _req(data, "reason", errors, "终止原因")
    paths = _ids(data.get("referral_paths"))
    if not paths:
        errors["referral_paths"] = "请勾选已告知当事人的途径（诉讼、仲裁、行政处理、信访）"
    elif any(p not in REFERRAL_PATHS for p in paths):
        errors["referral_paths"] = "告知途径无效"
    told_on = _date(data, "told_on", errors, "告知日期")
    _check(errors)
    apply_action(user, case, "terminate", {"reason": reason, "referral_path": paths[0]},
                 expected_version=data.get("version"))
    c = CaseClosure(case_id=case.id, kind="terminated", closed_on=case.closed_on, reason=reason,
                    referral_paths=paths, told_on=told_on, created_by_id=user.id)
    case.outcome_note = f"{reason}\n告知途径：{'、'.join(REFERRAL_PATHS[p] for p in paths)}"
    session.add(c)
    session.flush()
    return c


def withdraw(user: User, case: Case, data: dict) -> CaseClosure:
    """撤回: which party withdrew and why."""
    ensure_writable(user, case, "withdraw")
    errors: dict[str, str] = {}
    reason = _req(data, "reason", errors, "撤回原因")
    party = _party(case, data.get("requested_by")) if _s(data, "requested_by") else None
    if party is None:
        errors["requested_by"] = "请选择申请撤回的当事人"
    _check(errors)
    apply_action(user, case, "withdraw", {"reason": f"{party.name}申请撤回：{reason}"},
                 expected_version=data.get("version"))
    c = CaseClosure(case_id=case.id, kind="withdrawn", closed_on=case.closed_on, reason=reason,
                    requested_by=party.name, created_by_id=user.id)
    session.add(c)
    session.flush()
    return c


# ---------------------------------------------------------------------------------------------
# After close: follow-up, reopen, judicial confirmation, archive

def follow_up(user: User, case: Case, data: dict) -> FollowUp:
    """回访 through the workflow's follow_up (FollowUp row + the case's denormalised columns);
    with ``reopen`` ticked and a reason, an unperformed agreement or a flare-up reopens the case
    (a recurrence)."""
    ensure_writable(user, case, "follow_up")
    errors: dict[str, str] = {}
    reopen = data.get("reopen") in ("1", "on", True, "true")
    perf = _s(data, "performance")
    if not perf and case.outcome == "success":
        errors["performance"] = "请选择协议履行情况"
    sat = _s(data, "satisfaction")
    if not sat:
        errors["satisfaction"] = "请选择满意度"
    reopen_reason = _s(data, "reopen_reason")
    if reopen:
        if not reopen_reason:
            errors["reopen_reason"] = "请填写重新办理的原因"
        if perf not in ("not_performed", "partly", "未履行", "部分履行") and not _s(data, "new_risks"):
            errors["reopen"] = "只有协议未履行（或部分履行）或出现新的风险时才能重新办理"
    _check(errors)
    apply_action(user, case, "follow_up", {"visited_on": data.get("visited_on"), "performance": perf,
                                           "satisfaction": sat, "new_risks": data.get("new_risks"),
                                           "notes": data.get("notes")}, expected_version=data.get("version"))
    fu = session.scalars(select(FollowUp).where(FollowUp.case_id == case.id).order_by(FollowUp.id.desc())).first()
    if reopen:
        apply_action(user, case, "reopen", {"reason": reopen_reason})
    return fu


def confirm_judicially(user: User, case: Case, data: dict) -> JudicialConfirmation:
    """司法确认 through the workflow's judicial_confirmation (30 days from the agreement's date),
    plus its record.  A later result (裁定) updates the application already recorded for the
    agreement — one record per agreement, each change on the timeline — instead of adding a row;
    the application's date and court are kept unless given again."""
    ensure_writable(user, case, "judicial_confirmation")
    agreement = current_agreement(case)
    same = (JudicialConfirmation.agreement_id == agreement.id if agreement is not None
            else JudicialConfirmation.agreement_id.is_(None))
    existing = session.scalars(select(JudicialConfirmation).where(JudicialConfirmation.case_id == case.id, same)
                               .order_by(JudicialConfirmation.id.desc())).first()
    if existing is not None:
        data = dict(data)
        if not _s(data, "applied_on"):
            data["applied_on"] = existing.applied_on
        if not _s(data, "court"):
            data["court"] = existing.court
    errors: dict[str, str] = {}
    result = _s(data, "result") or "pending"
    if result not in CONFIRMATION_RESULTS:
        errors["result"] = "确认结果无效"
    decided_on = _date(data, "decided_on", errors, "裁定日期", required=False)
    if result != "pending" and decided_on is None and "decided_on" not in errors:
        errors["decided_on"] = "已有结果的，请填写裁定日期"
    ruling = _opt(data, "ruling_number", errors, "裁定书文号", 64)
    _check(errors)
    apply_action(user, case, "judicial_confirmation",
                 {"applied_on": data.get("applied_on"), "court": data.get("court"),
                  "result": CONFIRMATION_RESULTS[result]}, expected_version=data.get("version"))
    applied_on = (data["applied_on"] if isinstance(data["applied_on"], date)
                  else date.fromisoformat(str(data["applied_on"]).strip()))
    jc = existing or JudicialConfirmation(case_id=case.id, agreement_id=agreement.id if agreement else None,
                                          created_by_id=user.id)
    jc.applied_on, jc.court, jc.result = applied_on, _s(data, "court"), result
    jc.ruling_number = ruling or (existing.ruling_number if existing else None)
    jc.decided_on = decided_on
    jc.notes = _s(data, "notes") or (existing.notes if existing else None)
    session.add(jc)
    session.flush()
    return jc


def current_agreement(case: Case) -> Optional[Agreement]:
    return session.scalars(select(Agreement).where(Agreement.case_id == case.id)
                           .order_by(Agreement.id.desc())).first()


def completeness(case: Case, records: Optional[dict] = None) -> list[str]:
    """What the case file (一案一卷) still lacks before it may be archived; empty when complete.
    ``records``: the case's ``queries.case_records`` when the caller has them (the case page),
    so nothing is read twice."""
    missing: list[str] = []
    if case.status != "closed":
        missing.append("案件尚未办结")
        return missing
    if not case.parties:
        missing.append("当事人信息")
    if records is not None:
        has_session = bool(records["sessions"])
    else:
        has_session = session.scalar(select(MediationSession.id).where(MediationSession.case_id == case.id).limit(1))
    if case.outcome in ("success", "failed") and not has_session:
        missing.append("调解记录（至少一次调解）")
    if case.outcome == "success":
        agreement = records["agreement"] if records is not None else current_agreement(case)
        if agreement is None:
            missing.append("调解协议（书面协议书或口头协议登记）")
        elif agreement.form == "written" and not agreement.obligations:
            missing.append("协议书的履行义务、方式和期限")
        if case.followed_up_on is None or (case.closed_on and case.followed_up_on < case.closed_on):
            missing.append("回访记录（达成协议的案件须先回访）")
    if case.outcome in ("failed", "withdrawn"):
        kind = "terminated" if case.outcome == "failed" else "withdrawn"
        if records is not None:
            closed = any(c.kind == kind for c in records["closures"])
        else:
            closed = session.scalar(select(CaseClosure.id).where(CaseClosure.case_id == case.id,
                                                                CaseClosure.kind == kind).limit(1))
        if not closed:
            missing.append("终止调解的原因及告知途径" if kind == "terminated" else "撤回申请记录")
    return missing


def archive(user: User, case: Case, data: Optional[dict] = None) -> TimelineEntry:
    """归档: refused with the list of what is missing; afterwards the case is read-only."""
    ensure_writable(user, case, "archive")
    missing = completeness(case)
    if missing:
        raise ValidationFailed("卷宗不完整，不能归档。缺少：" + "；".join(missing),
                               errors={"archive": "卷宗不完整，缺少：" + "；".join(missing)})
    return apply_action(user, case, "archive", {"note": _s(data or {}, "note")},
                        expected_version=(data or {}).get("version"))


# ---------------------------------------------------------------------------------------------
# The generic entry points: the case panel's ``/workflow/cases/<n>/actions/<action>`` and the
# API's ``POST /api/v1/cases/<n>/actions``.  The actions below keep their records in the mediation
# tables (调解记录, 协议书及履行义务, 终止/撤回记录, 回访, 司法确认); bare ``apply_action`` would close
# a case with none of them (e.g. an "agreement" of ``terms="x"``), so the pages refuse them and
# point to the full form, and the API runs them through these services (same required fields).

FULL_FORM_ACTIONS: dict[str, str] = {  # action → the endpoint of its full form
    "log_session": "mediation.session_form", "agree": "mediation.agreement_form",
    "terminate": "mediation.terminate", "withdraw": "mediation.withdraw",
    "follow_up": "mediation.follow_up", "judicial_confirmation": "mediation.confirmation",
}
FULL_FORM_PATHS: dict[str, str] = {  # the same forms' paths, for the API's messages
    "log_session": "session", "agree": "agreement", "terminate": "terminate", "withdraw": "withdraw",
    "follow_up": "follow-up", "judicial_confirmation": "confirmation",
}


def full_form_actions(user: User, case: Case) -> list[tuple[str, str]]:
    """(action, endpoint) of the full forms ``user`` may open now on ``case`` (the matrix and the
    table; the service still checks the rest), in workflow order — the panel's links."""
    from app.cases import workflow
    rows = []
    for name, endpoint in FULL_FORM_ACTIONS.items():
        if case.status == "archived" or not workflow.transition_allowed(case.status, name):
            continue
        if not workflow.role_allowed(user.role, name, case.handling_level):
            continue
        if name == "judicial_confirmation" and case.outcome != "success":
            continue
        if name in ("agree", "terminate") and case.risk_level == "high" and case.signed_off_at is None:
            continue  # 高风险 closes only after 签批 (as the panel's own actions)
        rows.append((name, endpoint))
    return rows


SERVICE_FOR_ACTION = {
    "log_session": record_session, "invite_department": invite_department, "agree": agree,
    "terminate": terminate, "withdraw": withdraw, "follow_up": follow_up,
    "judicial_confirmation": confirm_judicially, "archive": archive,
}


def take_action(user: User, case: Case, action: str, data: Optional[dict] = None,
                expected_version: Any = None) -> TimelineEntry:
    """A workflow action from the API: the mediation actions through their services (jurisdiction,
    then a stale version, then role and state, then every required field), the others through
    ``apply_action``; returns the newest timeline entry."""
    service = SERVICE_FOR_ACTION.get(action)
    if service is None:
        return apply_action(user, case, action, data, expected_version=expected_version)
    if not in_jurisdiction(user, case):
        raise NotFound()
    lock_case(case)
    check_version(case, expected_version)
    service(user, case, {**(data or {}), "version": expected_version})
    return session.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case.id)
                           .order_by(TimelineEntry.id.desc()).limit(1)).first()


# ---------------------------------------------------------------------------------------------
# Roster

def add_roster_member(user: User, data: dict, allowed_orgs: list[OrgUnit]) -> RosterMember:
    errors: dict[str, str] = {}
    kind = _s(data, "kind")
    if kind not in ROSTER_KINDS:
        errors["kind"] = "请选择类别"
    name = _req(data, "name", errors, "姓名或名称", 100)
    org = next((o for o in allowed_orgs if str(o.id) == _s(data, "org_id")), None)
    if org is None:
        errors["org_id"] = "请选择所属村（社区）或乡镇"
    specialty = _opt(data, "specialty", errors, "擅长领域", 200)
    phone = _opt(data, "phone", errors, "联系电话", 32)
    if phone and not phone.replace("-", "").isdigit():
        errors["phone"] = "联系电话只能包含数字和“-”"
    linked = None
    if _s(data, "username"):
        linked = session.scalar(select(User).where(User.username == _s(data, "username")))
        if linked is None:
            errors["username"] = "没有这个用户名"
    _check(errors)
    m = RosterMember(org_id=org.id, kind=kind, name=name, specialty=specialty or None, phone=phone or None,
                     user_id=linked.id if linked else None, notes=_s(data, "notes") or None)
    session.add(m)
    session.flush()
    audit("roster.add", "roster_member", str(m.id), {"name": name, "kind": kind}, user=user)
    return m


def deactivate_roster_member(user: User, member: RosterMember) -> None:
    member.active = False
    session.flush()
    audit("roster.deactivate", "roster_member", str(member.id), {"name": member.name}, user=user)
