"""Joint mediation services: sessions with every participant kind, invitations, each close-out
path and its required fields, follow-up and reopen, judicial confirmation, archive."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.cases.models import DepartmentTask, TimelineEntry
from app.errors import InvalidTransition, ValidationFailed
from app.mediation import services
from app.mediation.models import Agreement, CaseClosure, JudicialConfirmation, MediationSession, MediatorChange
from app.mediation.queries import roster, suggestions
from app.templating import today_local
from tests.mediation_factories import mediation_case, org, roster_member, user, written_agreement_data
from tests.workflow_factories import LIAISON_DEPT


def test_session_with_every_participant_kind(db):
    case = mediation_case()
    m = roster_member()
    me = user("township_mediator")
    s = services.record_session(me, case, {
        "held_on": today_local().isoformat(), "place": "村委会调解室", "record": "双方陈述了受淹经过",
        "agreed": "同意先疏通", "next_steps": "下周再谈赔偿",
        "user_ids": [str(me.id)], "department_ids": [str(org(LIAISON_DEPT).id)], "roster_ids": [str(m.id)],
        "party_ids": [str(p.id) for p in case.parties], "others": "村支书刘某"})
    kinds = sorted(p.kind for p in s.participants)
    assert kinds == ["department", "other", "party", "party", "roster", "user"]
    entry = db.get(TimelineEntry, s.timeline_entry_id)
    assert entry.action == "log_session" and "王五老" in entry.data["participants"]
    assert case.status == "in_mediation"
    # the roster counts the case as joined, and suggestions rank the matching specialty
    row = next(r for r in roster(me) if r.member is not None and r.member.id == m.id)
    assert row.cases == 1
    assert suggestions(case)[0].member.id == m.id and "同村" in suggestions(case)[0].why


def test_session_required_fields_change_nothing(db):
    case = mediation_case()
    before = db.scalar(select(TimelineEntry.id).where(TimelineEntry.case_id == case.id).order_by(TimelineEntry.id.desc()))
    with pytest.raises(ValidationFailed) as exc:
        services.record_session(user("township_mediator"), case, {"held_on": "", "place": "", "record": ""})
    assert set(exc.value.errors) >= {"held_on", "place", "record", "party_ids"}
    assert exc.value.errors["place"] == "请填写调解地点"
    assert db.scalar(select(MediationSession.id).where(MediationSession.case_id == case.id)) is None
    after = db.scalar(select(TimelineEntry.id).where(TimelineEntry.case_id == case.id).order_by(TimelineEntry.id.desc()))
    assert before == after


def test_invite_department_goes_to_liaison_queue(db):
    case = mediation_case()
    services.invite_department(user("township_mediator"), case, {"department": str(org(LIAISON_DEPT).id),
                                                                 "request": "请司法所派员参加联调"})
    task = db.scalar(select(DepartmentTask).where(DepartmentTask.case_id == case.id))
    assert task.kind == "invite" and task.answered_at is None
    # the liaison can see the case (scoped by the task) and answer it
    from app.cases.queries import get_visible_case
    liaison = user("dept_liaison")
    assert get_visible_case(liaison, case.number).id == case.id
    from app.cases.services import apply_action
    apply_action(liaison, case, "department_feedback", {"answer": "已派员参加，提供法律意见"})
    assert task.answer == "已派员参加，提供法律意见" and case.status == "in_mediation"


def test_written_agreement_requires_each_obligation_field(db):
    case = mediation_case()
    data = written_agreement_data(case, facts="", **{"ob-1-manner": "", "ob-1-deadline": ""})
    with pytest.raises(ValidationFailed) as exc:
        services.agree(user("township_mediator"), case, data)
    errors = exc.value.errors
    assert errors["facts"] == "请填写纠纷主要事实"
    assert errors["ob-1-manner"] == "第 2 项义务：请填写履行方式"
    assert errors["ob-1-deadline"] == "第 2 项义务：请填写履行期限"
    assert case.status == "in_mediation" and db.scalar(select(Agreement.id).where(Agreement.case_id == case.id)) is None
    with pytest.raises(ValidationFailed) as exc:
        services.agree(user("township_mediator"), case, {"agreement_form": "written", "agreed_on": today_local().isoformat(),
                                                         "facts": "f", "disputes": "d", "content": "c"})
    assert "ob-0-content" in exc.value.errors


def test_written_agreement_closes_with_obligations(db):
    case = mediation_case()
    a = services.agree(user("township_mediator"), case, written_agreement_data(case))
    assert case.status == "closed" and case.outcome == "success" and case.agreement_form == "written"
    assert [o.manner for o in a.obligations] == ["一次性现金支付", "自行雇工疏通"]
    assert a.copies == 3 and a.mediator_name == user("township_mediator").display_name
    assert case.follow_up_due_on is not None


def test_oral_agreement_records_content(db):
    case = mediation_case()
    with pytest.raises(ValidationFailed) as exc:
        services.agree(user("township_mediator"), case, {"agreement_form": "oral", "agreed_on": today_local().isoformat()})
    assert exc.value.errors == {"content": "请填写口头协议内容"}
    a = services.agree(user("township_mediator"), case, {"agreement_form": "oral", "agreed_on": today_local().isoformat(),
                                                         "content": "李小河当场赔礼道歉，张大山表示谅解"})
    assert a.form == "oral" and case.agreement_form == "oral" and case.outcome == "success"


def test_terminate_requires_reason_and_routes(db):
    case = mediation_case()
    with pytest.raises(ValidationFailed) as exc:
        services.terminate(user("township_mediator"), case, {"told_on": today_local().isoformat()})
    assert exc.value.errors["reason"] == "请填写终止原因" and "referral_paths" in exc.value.errors
    assert case.status == "in_mediation"
    c = services.terminate(user("township_mediator"), case, {"reason": "被申请人拒绝继续调解",
                                                             "referral_paths": ["litigation", "petition"],
                                                             "told_on": today_local().isoformat()})
    assert case.status == "closed" and case.outcome == "failed"
    assert c.referral_paths == ["litigation", "petition"] and "诉讼、信访" in case.outcome_note


def test_withdraw_requires_party_and_reason(db):
    case = mediation_case()
    with pytest.raises(ValidationFailed) as exc:
        services.withdraw(user("township_mediator"), case, {})
    assert set(exc.value.errors) == {"reason", "requested_by"}
    services.withdraw(user("township_mediator"), case, {"reason": "双方已私下和解", "requested_by": str(case.parties[0].id)})
    assert case.outcome == "withdrawn"
    assert db.scalar(select(CaseClosure.requested_by).where(CaseClosure.case_id == case.id)) == "张大山"


def test_mediator_recusal_refuses_a_party_and_records_replacement(db):
    case = mediation_case()
    related = roster_member(name="李小河", kind="neighbour")
    with pytest.raises(ValidationFailed) as exc:
        services.change_mediator(user("township_mediator"), case, {"kind": "party_choice", "requested_by": str(case.parties[0].id),
                                                                   "new_roster": str(related.id), "reason": "当事人选择"})
    assert "应当回避" in exc.value.errors["new_mediator"]
    director = user("township_director")
    with pytest.raises(ValidationFailed) as exc:
        services.change_mediator(user("township_mediator"), case, {"kind": "replacement", "requested_by": str(case.parties[1].id),
                                                                   "new_mediator": str(director.id), "reason": "x",
                                                                   "related": "1"})
    assert "回避" in exc.value.errors["new_mediator"]
    ch = services.change_mediator(user("township_mediator"), case, {"kind": "replacement", "requested_by": str(case.parties[1].id),
                                                                    "new_mediator": str(director.id),
                                                                    "reason": "被申请人认为原调解员偏袒"})
    assert case.lead_mediator_id == director.id and ch.requested_by == "李小河"
    assert db.scalar(select(MediatorChange.old_name).where(MediatorChange.case_id == case.id)) == user("township_mediator").display_name


def test_reopen_after_unperformed_follow_up_counts_recurrence(db):
    case = mediation_case()
    services.agree(user("township_mediator"), case, written_agreement_data(case))
    with pytest.raises(ValidationFailed) as exc:
        services.follow_up(user("township_mediator"), case, {"performance": "performed", "satisfaction": "satisfied",
                                                             "reopen": "1", "reopen_reason": "x"})
    assert "reopen" in exc.value.errors and case.status == "closed"
    services.follow_up(user("township_mediator"), case, {"performance": "not_performed", "satisfaction": "dissatisfied",
                                                         "notes": "赔偿款未支付", "reopen": "1",
                                                         "reopen_reason": "协议未履行，重新调解"})
    assert case.status == "in_mediation" and case.recurrence_count == 1
    assert case.performance == "not_performed" and case.followed_up_on == today_local()


def test_judicial_confirmation_window_and_record(db):
    case = mediation_case()
    services.agree(user("township_mediator"), case, written_agreement_data(case))
    with pytest.raises(ValidationFailed) as exc:
        services.confirm_judicially(user("township_mediator"), case, {"applied_on": (today_local() + timedelta(days=40)).isoformat(),
                                                                      "court": "南湖人民法庭"})
    assert "30日内" in exc.value.errors["applied_on"]
    jc = services.confirm_judicially(user("township_mediator"), case, {"applied_on": today_local().isoformat(),
                                                                       "court": "南湖人民法庭", "result": "pending"})
    assert jc.agreement_id is not None and db.get(JudicialConfirmation, jc.id).court == "南湖人民法庭"


def test_archive_refused_when_incomplete_then_read_only(db):
    case = mediation_case()
    services.agree(user("township_mediator"), case, written_agreement_data(case))
    with pytest.raises(ValidationFailed) as exc:
        services.archive(user("township_mediator"), case, {})
    message = exc.value.errors["archive"]
    assert "回访记录" in message and "调解记录" in message and case.status == "closed"
    services.follow_up(user("township_mediator"), case, {"performance": "performed", "satisfaction": "satisfied"})
    # still lacks a session record
    assert services.completeness(case) == ["调解记录（至少一次调解）"]
    db.add(MediationSession(case_id=case.id, held_on=today_local(), place="村委会", record="调解"))
    db.flush()
    services.archive(user("township_mediator"), case, {})
    assert case.status == "archived"
    for fn, data in [(services.follow_up, {"performance": "performed", "satisfaction": "satisfied"}),
                     (services.record_session, {}), (services.agree, {}), (services.confirm_judicially, {}),
                     (services.change_mediator, {})]:
        with pytest.raises(InvalidTransition, match="已归档"):
            fn(user("township_mediator"), case, data)
