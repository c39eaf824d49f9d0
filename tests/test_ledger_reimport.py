"""Re-importing a ledger updates the cases its 编号 name (the bulk update path of the importer):
changed fields, parties by position, phones (a masked one never overwrites), new follow-ups, a
timeline entry naming what changed, the version counter; never a duplicate."""
from __future__ import annotations

import io
from datetime import date, timedelta

from sqlalchemy import func, select

from app.cases.models import Case, FollowUp, Party, TimelineEntry
from app.crypto import lookup_hash
from app.ledger.importer import import_ledger
from tests.ledger_helpers import FOLLOW_UP_HEADERS, good_row, workbook

def _row(**over):
    return good_row(**{"编号": "R-1", **over})


def _book(rows) -> io.BytesIO:
    return workbook(rows, headers=FOLLOW_UP_HEADERS)


def _case(db, external="R-1") -> Case:
    db.expire_all()
    return db.scalar(select(Case).where(Case.external_number == external))


def test_reimport_updates_in_place(db):
    first = import_ledger(_book([_row(), _row(编号="R-2", 简要情况="另一件")]), "a.xlsx")
    assert first.ok and first.created == 2, first.problems
    case = _case(db)
    assert case.version == 1
    other_version = _case(db, "R-2").version

    changed = _row(简要情况="因排水沟堵塞再次争执", 当事人="张三(申请人)；王五(被申请人)；赵六(第三人)",
                   联系电话="138****0001；13900000002；", 履行情况="已履行", 回访日期="2025-04-01", 满意度="满意")
    report = import_ledger(_book([changed, _row(编号="R-2", 简要情况="另一件")]), "b.xlsx")
    assert report.ok and (report.created, report.updated) == (0, 2), report.problems
    assert db.scalar(select(func.count()).select_from(Case)) == 2

    case = _case(db)
    assert case.summary == "因排水沟堵塞再次争执"
    assert (case.followed_up_on, case.performance, case.satisfaction) == (date(2025, 4, 1), "performed", "satisfied")
    assert case.version == 2
    parties = sorted(case.parties, key=lambda p: p.position)
    assert [(p.name, p.role) for p in parties] == [("张三", "applicant"), ("王五", "respondent"),
                                                   ("赵六", "third_party")]
    assert parties[0].phone == "13800000001"  # the masked phone did not overwrite it
    assert parties[1].phone == "13900000002"
    assert parties[1].phone_hash == lookup_hash("phone", "13900000002")
    assert db.scalars(select(FollowUp.visited_on).where(FollowUp.case_id == case.id)).all() == [date(2025, 4, 1)]
    entries = db.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case.id)
                         .order_by(TimelineEntry.id)).all()
    assert len(entries) == 2 and "b.xlsx" in entries[-1].note
    assert {"summary", "parties", "followed_up_on", "performance", "satisfaction"} <= set(entries[-1].data["fields"])
    # The unchanged row changed nothing: no version bump, no timeline entry.
    unchanged = _case(db, "R-2")
    assert unchanged.version == other_version
    assert db.scalar(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.case_id == unchanged.id)) == 1

    # The same file again: idempotent.
    again = import_ledger(_book([changed]), "b.xlsx")
    assert again.ok and again.updated == 1
    case = _case(db)
    assert case.version == 2
    assert db.scalar(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.case_id == case.id)) == 2
    assert db.scalar(select(func.count()).select_from(FollowUp).where(FollowUp.case_id == case.id)) == 1
    assert db.scalar(select(func.count()).select_from(Party).where(Party.case_id == case.id)) == 3


def test_own_case_number_matches_too(db):
    """An exported ledger carries our own 编号 for cases that had none: it imports back onto them."""
    import_ledger(_book([_row(编号=None)]), "a.xlsx")
    case = db.scalar(select(Case).where(Case.summary == "因排水沟发生争执"))
    report = import_ledger(_book([_row(编号=case.number, 风险等级="高")]), "b.xlsx")
    assert report.ok and (report.created, report.updated) == (0, 1), report.problems
    db.expire_all()
    assert db.get(Case, case.id).risk_level == "high"
    assert db.scalar(select(func.count()).select_from(Case)) == 1


def _snapshot(db, case_ids):
    """Every column of the cases, their parties, timeline, follow-ups (what a no-op import must keep)."""
    from app.cases.models import Case as C
    db.expire_all()
    out = {}
    for table in (C.__table__, Party.__table__, TimelineEntry.__table__, FollowUp.__table__):
        key = table.c.id if table is C.__table__ else table.c.case_id
        rows = db.execute(select(table).where(key.in_(case_ids)).order_by(table.c.id)).all()
        out[table.name] = [tuple(r) for r in rows]
    return out


def test_reimporting_an_export_of_workflow_cases_changes_nothing(db):
    """Cases made through the workflow (pending, escalated, transferred, high-risk signed off,
    archived after agreement and follow-up), exported and imported back onto the same database:
    no case changes at all (status, high_risk_at, closed_at, version, timeline), figures identical."""
    from app.cases.intake import register_case
    from app.cases.services import apply_action
    from app.ledger.exporter import export_ledger
    from app.mediation import services as mediation
    from app.reports.queries import Period, figures
    from app.templating import today_local
    from tests.intake_helpers import intake_body, user
    from tests.mediation_factories import mediation_case, written_agreement_data
    from tests.workflow_factories import LIAISON_DEPT, org

    def register(username="village_mediator", **over):
        return register_case(user(username), intake_body(**over))

    pending = register(summary="尚未分流的纠纷")
    escalated = register(summary="上报乡镇的纠纷")
    apply_action(user("village_mediator"), escalated, "escalate", {"reason": "涉及两个村"})
    transferred = register("township_mediator", summary="转办司法所的纠纷")
    apply_action(user("township_mediator"), transferred, "transfer", {"department": LIAISON_DEPT, "request": "请处理"})
    high = register("township_mediator", summary="高风险已签批的纠纷")
    apply_action(user("township_director"), high, "accept", {"lead_mediator": "township_mediator"})
    apply_action(user("township_director"), high, "grade_risk", {"level": "high", "factors": ["涉及人数≥5（群体性）"]})
    apply_action(user("township_secretary"), high, "sign_off", {"plan": "书记包案", "leader": "township_secretary",
                                                                "members": ["township_mediator"]})
    archived = mediation_case()  # township level, two parties with phones and an ID number
    mediation.record_session(user("township_mediator"), archived, {
        "held_on": today_local().isoformat(), "place": "村委会", "record": "双方陈述",
        "party_ids": [str(p.id) for p in archived.parties], "user_ids": [str(user("township_mediator").id)]})
    mediation.agree(user("township_mediator"), archived, written_agreement_data(archived))
    mediation.follow_up(user("township_mediator"), archived, {"performance": "performed", "satisfaction": "satisfied"})
    mediation.archive(user("township_mediator"), archived, {})
    cases = [pending, escalated, transferred, high, archived]
    assert [c.status for c in cases] == ["pending_triage", "escalated", "transferred", "in_mediation", "archived"]
    assert high.high_risk_at is not None and high.signed_off_at is not None
    db.flush()
    ids = [c.id for c in cases]
    township = org("429960002")
    period = Period(today_local() - timedelta(days=400), today_local())
    before, figures_before = _snapshot(db, ids), figures(township, period)

    buf = io.BytesIO()
    assert export_ledger(buf, township) == len(cases)
    buf.seek(0)
    report = import_ledger(buf, "导出.xlsx", user=user("township_director"))
    assert report.ok and (report.created, report.updated) == (0, len(cases)), report.problems
    db.flush()
    assert _snapshot(db, ids) == before
    assert figures(township, period) == figures_before
    assert db.scalar(select(func.count()).select_from(Case)) == len(cases)


def test_a_real_change_moves_only_what_follows_from_it(db):
    """An escalated case whose ledger row changes only its summary stays escalated (its summary
    changes); a row giving an open case an outcome closes it at its 结案日期; 高 first set on
    re-import stamps high_risk_at now (as grading does), not midnight of 登记日期."""
    from app.cases.services import apply_action
    from tests.intake_helpers import user
    from tests.workflow_factories import make_case
    place = {"乡镇": "南湖镇", "村(社区)": "朱湖社区"}
    escalated = make_case("pending_triage", "village", external_number="W-1", registered_on=date(2025, 3, 1),
                          summary="原来的情况")
    apply_action(user("village_mediator"), escalated, "escalate", {"reason": "涉及两个村"})
    open_case = make_case("in_mediation", "village", external_number="W-2", registered_on=date(2025, 3, 1),
                          summary="原来的情况")
    db.flush()
    rows = [_row(编号="W-1", 简要情况="改过的情况", 办理结果=None, 结案日期=None, 风险等级=None, 涉及人数=None,
                 涉及金额=None, 当事人="张三(申请人)", 联系电话=None, **place),
            _row(编号="W-2", 简要情况="原来的情况", 风险等级="高", 涉及人数=None, 涉及金额=None,
                 当事人="张三(申请人)", 联系电话=None, **place)]
    report = import_ledger(_book(rows), "c.xlsx")
    assert report.ok and report.updated == 2, report.problems
    db.expire_all()
    escalated, open_case = db.get(Case, escalated.id), db.get(Case, open_case.id)
    assert (escalated.status, escalated.summary, escalated.high_risk_at) == ("escalated", "改过的情况", None)
    assert (open_case.status, open_case.outcome, open_case.closed_on) == ("closed", "success", date(2025, 3, 10))
    assert open_case.closed_at.date() == date(2025, 3, 10)
    assert open_case.high_risk_at is not None and open_case.high_risk_at.date() != date(2025, 3, 1)
    entry = db.scalars(select(TimelineEntry).where(TimelineEntry.case_id == open_case.id)
                       .order_by(TimelineEntry.id.desc())).first()
    assert (entry.action, entry.from_status, entry.to_status) == ("import", "in_mediation", "closed")
