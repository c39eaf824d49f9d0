"""Audit fixes of joint mediation (issue 5): no bare close-out through the workflow panel, its
route or the API; archived cases read-only for attachments; 回避 at assignment and a recusal that
really removes the lead; the 司法确认 window counted from the agreement's date and a later result
updating its record; the print layout of label tables; roster suggestions, the follow-up due list
and a flare-up reopen."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.accounts.services import issue_token
from app.cases.attachments import add_attachment
from app.cases.models import Attachment, FollowUp, TimelineEntry
from app.cases.services import apply_action
from app.errors import InvalidTransition, ValidationFailed
from app.mediation import queries, services
from app.mediation.models import Agreement, CaseClosure, JudicialConfirmation, MediationSession, MediatorChange
from app.templating import today_local
from app.workflow import deadlines
from tests.helpers import csrf_token
from tests.intake_helpers import login
from tests.mediation_factories import mediation_case, org, roster_member, user, written_agreement_data
from tests.workflow_factories import OTHER_TOWNSHIP_VILLAGE, VILLAGE, make_case

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _count(db, model, case) -> int:
    return db.scalar(select(func.count()).select_from(model).where(model.case_id == case.id))


def _session(case, me):
    return services.record_session(me, case, {
        "held_on": today_local().isoformat(), "place": "村委会调解室", "record": "双方陈述",
        "user_ids": [str(me.id)], "party_ids": [str(p.id) for p in case.parties]})


# ---------------------------------------------------------------------------------------------
# 1. No bare close-out: the panel links to the full forms; its route and the API refuse or validate


def test_panel_links_to_full_forms_instead_of_quick_close_out_forms(db, client, auth):
    case = mediation_case()
    login(auth, "township_mediator")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    for action in ("agree", "terminate", "withdraw", "log_session"):
        assert f'data-testid="form-{action}"' not in page, action
        assert f'data-testid="full-form-{action}"' in page, action
    assert f'href="/mediation/cases/{case.number}/agreement" data-testid="full-form-agree"' in page
    assert 'data-testid="form-invite_department"' in page  # same service either way: stays in the panel


def test_workflow_route_refuses_agree_with_only_terms_and_changes_nothing(db, client, auth):
    case = mediation_case()
    db.commit()
    login(auth, "township_mediator")
    token = csrf_token(client, f"/cases/{case.number}")
    version = case.version
    r = client.post(f"/workflow/cases/{case.number}/actions/agree",
                    data={"csrf_token": token, "version": str(version), "agreement_form": "written", "terms": "x"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/mediation/cases/{case.number}/agreement")
    db.expire_all()
    assert (case.status, case.outcome, case.closed_on, case.version) == ("in_mediation", None, None, version)
    assert _count(db, Agreement, case) == 0 and _count(db, TimelineEntry, case) == 0
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "须通过完整表单办理" in page
    # the other mediation actions likewise
    for action, data in (("terminate", {"reason": "x", "referral_path": "litigation"}),
                         ("withdraw", {"reason": "x"}),
                         ("log_session", {"held_on": today_local().isoformat(), "record": "x"})):
        r = client.post(f"/workflow/cases/{case.number}/actions/{action}",
                        data={"csrf_token": token, "version": str(version), **data})
        assert r.status_code == 302 and "/mediation/cases/" in r.headers["Location"], action
    db.expire_all()
    assert case.status == "in_mediation" and _count(db, TimelineEntry, case) == 0
    assert _count(db, CaseClosure, case) == 0 and _count(db, MediationSession, case) == 0


def test_workflow_route_refuses_bare_follow_up(db, client, auth):
    case = mediation_case()
    services.agree(user("township_mediator"), case, written_agreement_data(case))
    db.commit()
    login(auth, "township_mediator")
    token = csrf_token(client, f"/cases/{case.number}")
    r = client.post(f"/workflow/cases/{case.number}/actions/follow_up",
                    data={"csrf_token": token, "version": str(case.version), "notes": "x"})
    assert r.headers["Location"].endswith(f"/mediation/cases/{case.number}/follow-up")
    db.expire_all()
    assert _count(db, FollowUp, case) == 0 and case.followed_up_on is None


def _api(client, username, case, body):
    return client.post(f"/api/v1/cases/{case.number}/actions", json=body,
                       headers={"Authorization": f"Bearer {issue_token(user(username))}"})


def test_api_agree_checks_the_full_agreement_fields(db, client):
    case = mediation_case()
    db.commit()  # error responses roll the session back; keep the fixture data
    r = _api(client, "township_mediator", case, {"action": "agree", "agreement_form": "written", "terms": "x"})
    assert r.status_code == 422
    errors = r.get_json()["errors"]
    assert {"agreed_on", "content", "facts", "disputes", "ob-0-content"} <= set(errors)
    db.expire_all()
    assert case.status == "in_mediation" and _count(db, Agreement, case) == 0
    # a stale version is a conflict before any field check
    r = _api(client, "township_mediator", case, {"action": "agree", "version": case.version + 3})
    assert r.status_code == 409
    r = _api(client, "township_mediator", case, {"action": "agree", **written_agreement_data(case),
                                                 "version": case.version})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "closed" and body["timeline_entry"]["action"] == "agree"
    a = db.scalar(select(Agreement).where(Agreement.case_id == case.id))
    assert [o.manner for o in a.obligations] == ["一次性现金支付", "自行雇工疏通"]


def test_api_terminate_and_log_session_use_the_mediation_services(db, client):
    case = mediation_case()
    db.commit()
    r = _api(client, "township_mediator", case, {"action": "log_session", "held_on": today_local().isoformat(),
                                                 "record": "只有记录"})
    assert r.status_code == 422 and {"place", "party_ids"} <= set(r.get_json()["errors"])
    r = _api(client, "township_mediator", case, {"action": "terminate", "reason": "拒绝调解", "referral_path": "litigation"})
    assert r.status_code == 422 and "referral_paths" in r.get_json()["errors"]
    db.expire_all()
    assert case.status == "in_mediation" and _count(db, TimelineEntry, case) == 0
    r = _api(client, "township_mediator", case, {"action": "terminate", "reason": "被申请人拒绝继续调解",
                                                 "referral_paths": ["litigation"],
                                                 "told_on": today_local().isoformat()})
    assert r.status_code == 200 and r.get_json()["status"] == "closed"
    assert db.scalar(select(CaseClosure.kind).where(CaseClosure.case_id == case.id)) == "terminated"


def test_bare_archive_uses_the_completeness_check(db):
    case = mediation_case()
    me = user("township_mediator")
    services.agree(me, case, written_agreement_data(case))
    services.follow_up(me, case, {"performance": "performed", "satisfaction": "satisfied"})
    with pytest.raises(InvalidTransition, match="调解记录"):
        apply_action(me, case, "archive", {})  # the panel's archive form goes straight here
    assert case.status == "closed"
    db.add(MediationSession(case_id=case.id, held_on=today_local(), place="村委会", record="调解"))
    db.flush()
    apply_action(me, case, "archive", {})
    assert case.status == "archived"


# ---------------------------------------------------------------------------------------------
# 2. Archived: no attachments


def test_archived_case_refuses_attachments_and_hides_the_upload_form(db, client, auth):
    case = mediation_case("archived", outcome="withdrawn")
    with pytest.raises(InvalidTransition, match="已归档"):
        add_attachment(user("township_mediator"), case, io.BytesIO(PNG), "照片.png")
    assert _count(db, Attachment, case) == 0
    db.commit()
    login(auth, "township_mediator")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert f"/cases/{case.number}/attachments" not in page and 'type="file"' not in page
    token = csrf_token(client, "/")
    r = client.post(f"/cases/{case.number}/attachments", data={"csrf_token": token, "file": (io.BytesIO(PNG), "a.png")},
                    content_type="multipart/form-data")
    assert r.status_code == 409
    assert _count(db, Attachment, case) == 0
    # an open case still takes them
    open_case = mediation_case()
    assert add_attachment(user("township_mediator"), open_case, io.BytesIO(PNG), "照片.png").id


# ---------------------------------------------------------------------------------------------
# 3. 回避: recusal removes the lead; accept / assign refuse a conflicted mediator


def test_recusal_to_a_roster_person_removes_the_conflicted_lead(db, client, auth):
    case = mediation_case()
    me = user("township_mediator")
    case.parties[1].name = me.display_name  # the lead turns out to be a party
    db.flush()
    wulao = roster_member()
    ch = services.change_mediator(me, case, {"kind": "recusal", "new_roster": str(wulao.id),
                                             "reason": "主办调解员系当事人，依法回避"})
    assert case.lead_mediator_id is None and case.responsible_name == "王五老"
    assert ch.old_name == me.display_name and ch.new_name == "王五老" and ch.new_roster_id == wulao.id
    db.commit()
    login(auth, "township_mediator")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert 'data-testid="recusal-warning"' not in page and "王五老" in page


def test_replacement_by_a_roster_person_with_a_login_makes_them_lead(db):
    case = mediation_case()
    director = user("township_director")
    m = roster_member(name=director.display_name, kind="mediator", phone=None)
    m.user_id = director.id
    db.flush()
    services.change_mediator(user("township_mediator"), case, {"kind": "replacement", "new_roster": str(m.id),
                                                               "requested_by": str(case.parties[1].id),
                                                               "reason": "被申请人申请更换"})
    assert case.lead_mediator_id == director.id and case.responsible_name == director.display_name


def test_party_choice_of_a_roster_person_keeps_the_lead(db):
    case = mediation_case()
    lead = case.lead_mediator_id
    m = roster_member()
    services.change_mediator(user("township_mediator"), case, {"kind": "party_choice", "new_roster": str(m.id),
                                                               "requested_by": str(case.parties[0].id),
                                                               "reason": "申请人选择五老参与"})
    assert case.lead_mediator_id == lead and db.scalar(select(func.count()).select_from(MediatorChange)
                                                       .where(MediatorChange.case_id == case.id)) == 1


def test_accept_refuses_a_lead_or_co_mediator_who_must_step_aside(db):
    case = mediation_case("pending_triage")
    director, mediator = user("township_director"), user("township_mediator")
    case.parties[0].name = mediator.display_name
    db.flush()
    with pytest.raises(ValidationFailed) as exc:
        apply_action(director, case, "accept", {"lead_mediator": str(mediator.id)})
    assert "应当回避" in exc.value.errors["lead_mediator"] and mediator.display_name in exc.value.errors["lead_mediator"]
    assert case.status == "pending_triage" and _count(db, TimelineEntry, case) == 0
    case.parties[0].name = "张大山"
    case.parties[1].phone = "13912345678"
    director.phone = "13912345678"  # same phone as a party: possibly a close relative
    db.flush()
    with pytest.raises(ValidationFailed) as exc:
        apply_action(director, case, "accept", {"lead_mediator": str(mediator.id), "co_mediators": [str(director.id)]})
    assert "回避" in exc.value.errors["co_mediators"] and "lead_mediator" not in exc.value.errors
    assert case.status == "pending_triage"
    apply_action(director, case, "accept", {"lead_mediator": str(mediator.id)})
    assert case.status == "in_mediation" and case.lead_mediator_id == mediator.id


def test_accept_escalation_refuses_a_conflicted_new_lead(db):
    case = mediation_case("escalated", level="village", escalated_at=None)
    director = user("township_director")
    case.parties[1].agent = director.display_name  # the would-be lead is a party's agent
    db.flush()
    with pytest.raises(ValidationFailed) as exc:
        apply_action(director, case, "accept_escalation", {"lead_mediator": str(director.id)})
    assert "应当回避" in exc.value.errors["lead_mediator"] and case.status == "escalated"


# ---------------------------------------------------------------------------------------------
# 4. 司法确认: 30 days from the agreement's date; a later result updates the record


def test_confirmation_window_counts_from_the_agreement_date_not_the_close(db):
    case = mediation_case()
    me = user("township_mediator")
    agreed_on = today_local() - timedelta(days=35)  # agreed 35 days ago, recorded (closed) today
    services.agree(me, case, written_agreement_data(case, agreed_on=agreed_on.isoformat()))
    assert case.closed_on == today_local()
    last = deadlines.add_days(agreed_on, "judicial_confirmation")
    assert last < today_local() and queries.confirmation_deadline(case) == last
    with pytest.raises(ValidationFailed) as exc:
        services.confirm_judicially(me, case, {"applied_on": today_local().isoformat(), "court": "南湖人民法庭"})
    assert "30日内" in exc.value.errors["applied_on"] and str(agreed_on) in exc.value.errors["applied_on"]
    assert case.number not in [c.number for c, _a, _l in queries.confirmations_due(me)]
    # within the window from the agreement's date it is listed, with that date
    other = mediation_case()
    services.agree(me, other, written_agreement_data(other, agreed_on=(today_local() - timedelta(days=20)).isoformat()))
    row = next(r for r in queries.confirmations_due(me) if r[0].id == other.id)
    assert row[1] == today_local() - timedelta(days=20)
    assert row[2] == deadlines.add_days(today_local() - timedelta(days=20), "judicial_confirmation")


def test_later_confirmation_result_updates_the_record(db, client, auth):
    case = mediation_case()
    me = user("township_mediator")
    services.agree(me, case, written_agreement_data(case))
    first = services.confirm_judicially(me, case, {"applied_on": today_local().isoformat(), "court": "南湖人民法庭"})
    assert first.result == "pending"
    db.commit()
    login(auth, "township_mediator")
    form = client.get(f"/mediation/cases/{case.number}/confirmation").get_data(as_text=True)
    assert 'data-testid="confirmation-recorded"' in form and 'value="南湖人民法庭"' in form
    again = services.confirm_judicially(me, case, {"result": "confirmed", "decided_on": today_local().isoformat(),
                                                   "ruling_number": "（2026）湖0101民特12号"})
    assert again.id == first.id and _count(db, JudicialConfirmation, case) == 1
    assert (again.result, again.court, again.applied_on) == ("confirmed", "南湖人民法庭", today_local())
    assert again.ruling_number == "（2026）湖0101民特12号"
    entries = db.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case.id,
                                                     TimelineEntry.action == "judicial_confirmation")).all()
    assert len(entries) == 2 and entries[-1].note == "确认有效"


# ---------------------------------------------------------------------------------------------
# 5. Print layout


def test_print_css_squeezes_only_label_column_tables(db, client, auth):
    css = (ROOT / "static/css/print.css").read_text(encoding="utf-8")
    assert "table.qy-grid th { font-weight: 600; white-space: nowrap; width: 1%" not in css
    assert ".qy-doc table.qy-grid.qy-labels th { white-space: nowrap; width: 1%; }" in css
    case = mediation_case()
    services.agree(user("township_mediator"), case, written_agreement_data(case))
    db.commit()
    login(auth, "township_mediator")
    doc = client.get(f"/mediation/cases/{case.number}/documents/agreement").get_data(as_text=True)
    assert '<table class="qy-grid" data-testid="doc-obligations">' in doc
    register = client.get(f"/mediation/cases/{case.number}/documents/register").get_data(as_text=True)
    assert 'class="qy-grid qy-labels"' in register and '<table class="qy-grid" data-testid="doc-parties">' in register


# ---------------------------------------------------------------------------------------------
# 6. Suggestions, the follow-up due list, a flare-up reopen


def test_suggestions_rank_same_village_and_matching_specialty(db):
    case = mediation_case(village=VILLAGE)  # dispute type 邻里
    township = org(VILLAGE[:9])
    both = roster_member(name="甲同村擅长", specialty="邻里纠纷")
    spec_only = roster_member(name="乙同镇擅长", village="429960002002", specialty="邻里、婚姻家庭")
    village_only = roster_member(name="丙同村", specialty="劳动争议")
    neither = roster_member(name="丁同镇", village=township.code, specialty="劳动争议")
    busy = roster_member(name="戊同村擅长但忙", specialty="邻里")
    busy_case = mediation_case()
    services.record_session(user("township_mediator"), busy_case, {
        "held_on": today_local().isoformat(), "place": "村委会", "record": "调解", "roster_ids": [str(busy.id)],
        "party_ids": [str(busy_case.parties[0].id)]})
    roster_member(name="己外乡镇", village=OTHER_TOWNSHIP_VILLAGE, specialty="邻里")
    rows = queries.suggestions(case)
    names = [r.name for r in rows]
    assert names == ["甲同村擅长", "戊同村擅长但忙", "乙同镇擅长", "丙同村", "丁同镇"]
    assert rows[0].why == ["同村", "擅长邻里"] and rows[2].why == ["同乡镇", "擅长邻里"]
    assert rows[1].cases == 1 and rows[0].cases == 0
    assert [r.member.id for r in rows] == [both.id, busy.id, spec_only.id, village_only.id, neither.id]


def test_roster_for_case_reads_members_with_their_units_in_one_statement(app, db):
    """``roster_for_case`` reads the members and their units as rows: the members the ORM's
    query gives (active ones of the case's township and its villages, by name), each with its
    unit, in one statement however many units they belong to; a member the session holds
    (with a change not flushed) is kept."""
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy import or_, select

    from app.mediation.models import RosterMember
    from app.orgs.models import OrgUnit
    from tests.helpers import count_queries
    case = mediation_case(village=VILLAGE)
    township = org(VILLAGE[:9])
    for i, village in enumerate((VILLAGE, "429960002002", "429960002003", township.code, OTHER_TOWNSHIP_VILLAGE)):
        roster_member(name=f"成员{i}", village=village, phone=f"1370000{i:04d}")
    gone = roster_member(name="成员停用")
    gone.active = False
    db.flush()
    columns = [a.key for a in sa_inspect(RosterMember).column_attrs]
    db.expunge_all()
    case = db.get(type(case), case.id)
    expected = [({k: getattr(m, k) for k in columns}, m.org.code) for m in db.scalars(
        select(RosterMember).join(OrgUnit, RosterMember.org_id == OrgUnit.id)
        .where(RosterMember.active, or_(OrgUnit.id == case.township_id, OrgUnit.township_id == case.township_id))
        .order_by(RosterMember.name))]
    db.expunge_all()
    case = db.get(type(case), case.id)
    with count_queries(app) as seen:
        members = queries.roster_for_case(case)
        got = [({k: getattr(m, k) for k in columns}, m.org.code) for m in members]
    assert got == expected and len(got) == 4 and len({code for _, code in got}) == 4
    assert len(seen) == 1  # the units came with the members: no load per unit
    assert all(sa_inspect(m).persistent for m in members) and members[0].phone == "13700000000"  # decrypted
    members[0].specialty = "未保存"
    assert queries.roster_for_case(case)[0] is members[0] and members[0].specialty == "未保存"


def test_case_page_shows_suggestions_to_mediators_only_and_reads_them_only_for_them(app, db, client, auth):
    from tests.helpers import count_queries
    case = mediation_case(village=VILLAGE)
    roster_member(name="甲同村擅长", specialty="邻里纠纷")
    db.commit()
    seen_by = {}
    for username in ("township_mediator", "county_leader"):
        login(auth, username)
        client.get(f"/cases/{case.number}")
        with count_queries(app) as seen:
            html = client.get(f"/cases/{case.number}").get_data(as_text=True)
        seen_by[username] = (html, [q for q in seen if "roster_member" in q])
    html, roster_sql = seen_by["township_mediator"]
    assert 'data-testid="roster-suggestions"' in html and "甲同村擅长" in html and roster_sql
    html, roster_sql = seen_by["county_leader"]
    assert 'data-testid="roster-suggestions"' not in html and not roster_sql


def test_follow_up_due_list_contents(db):
    me = user("township_mediator")
    due_late = mediation_case()
    services.agree(me, due_late, written_agreement_data(due_late))
    due_soon = mediation_case()
    services.agree(me, due_soon, written_agreement_data(due_soon))
    due_soon.follow_up_due_on = today_local() + timedelta(days=1)
    due_late.follow_up_due_on = today_local() + timedelta(days=9)
    visited = mediation_case()
    services.agree(me, visited, written_agreement_data(visited))
    services.follow_up(me, visited, {"performance": "performed", "satisfaction": "satisfied"})
    failed = mediation_case()
    services.terminate(me, failed, {"reason": "拒绝调解", "referral_paths": ["litigation"],
                                    "told_on": today_local().isoformat()})
    elsewhere = make_case("closed", "township", village=OTHER_TOWNSHIP_VILLAGE, outcome="success")
    open_case = mediation_case()
    db.flush()
    numbers = [c.number for c in queries.follow_ups_due(me)]
    assert numbers == [due_soon.number, due_late.number]
    assert not {visited.number, failed.number, elsewhere.number, open_case.number} & set(numbers)
    county = [c.number for c in queries.follow_ups_due(user("county_supervisor"))]
    assert elsewhere.number in county


def test_flare_up_at_follow_up_reopens_as_a_recurrence(db):
    case = mediation_case()
    me = user("township_mediator")
    services.agree(me, case, written_agreement_data(case))
    services.follow_up(me, case, {"performance": "performed", "satisfaction": "basically",
                                  "new_risks": "双方因排水沟改道再起争执，有肢体冲突苗头", "notes": "协议已履行，但又生矛盾",
                                  "reopen": "1", "reopen_reason": "矛盾激化，重新调解"})
    assert case.status == "in_mediation" and case.recurrence_count == 1 and case.outcome is None
    fu = db.scalar(select(FollowUp).where(FollowUp.case_id == case.id))
    assert fu.performance == "performed" and "再起争执" in fu.new_risks
    actions = [e.action for e in db.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case.id)
                                            .order_by(TimelineEntry.id))]
    assert actions[-2:] == ["follow_up", "reopen"]
    # the reopened case can close again with a new agreement; the new window counts from it
    services.agree(me, case, written_agreement_data(case))
    assert case.status == "closed" and case.recurrence_count == 1
    assert db.scalar(select(func.count()).select_from(Agreement).where(Agreement.case_id == case.id)) == 2
