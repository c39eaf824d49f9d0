"""Re-importing a ledger updates the cases its 编号 name (the bulk update path of the importer):
changed fields, parties by position, phones (a masked one never overwrites), new follow-ups, a
timeline entry naming what changed, the version counter; never a duplicate."""
from __future__ import annotations

import io
from datetime import date

import openpyxl
from sqlalchemy import func, select

from app.cases.models import Case, FollowUp, Party, TimelineEntry
from app.crypto import lookup_hash
from app.ledger.importer import import_ledger

HEADERS = ["编号", "登记日期", "来源", "乡镇", "村(社区)", "纠纷类型", "简要情况", "当事人", "联系电话",
           "涉及人数", "涉及金额", "风险等级", "化解层级", "办理结果", "结案日期", "履行情况", "回访日期", "满意度"]


def _row(**over):
    row = {"编号": "R-1", "登记日期": "2025-03-01", "来源": "群众来访", "乡镇": "南湖镇", "村(社区)": "赵坪村",
           "纠纷类型": "邻里纠纷", "简要情况": "因排水沟发生争执", "当事人": "张三(申请人)；李四(被申请人)",
           "联系电话": "13800000001；13800000002", "涉及人数": 2, "涉及金额": 0, "风险等级": "低",
           "化解层级": "村级", "办理结果": "调解成功", "结案日期": "2025-03-10"}
    row.update(over)
    return row


def _book(rows) -> io.BytesIO:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "矛盾纠纷台账"
    ws.append(HEADERS)
    for row in rows:
        ws.append([row.get(h) for h in HEADERS])
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf


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
