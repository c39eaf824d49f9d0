"""Each kind of bad cell is reported with its sheet and cell, and nothing is written."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.cases.models import Case
from app.ledger.importer import import_ledger
from tests.ledger_helpers import HEADERS, good_row, workbook


def _col(header):
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[HEADERS.index(header)]


def _cases(db):
    return db.scalar(select(func.count()).select_from(Case))


def test_a_good_row_imports(db):
    report = import_ledger(workbook([good_row()]), "t.xlsx")
    assert report.ok, report.problems
    assert report.created == 1
    case = db.scalar(select(Case).where(Case.external_number == "T-1"))
    assert case.status == "closed" and [p.name for p in case.parties] == ["张三", "李四"]


@pytest.mark.parametrize("over, header, words", [
    ({"简要情况": None}, "简要情况", "必填"),
    ({"纠纷类型": "邻居"}, "纠纷类型", "邻居"),
    ({"来源": "托梦"}, "来源", "托梦"),
    ({"乡镇": "火星镇"}, "乡镇", "火星镇"),
    ({"村(社区)": "不存在村"}, "村(社区)", "不存在村"),
    ({"登记日期": "2025-13-45"}, "登记日期", "日期"),
    ({"结案日期": "2025-02-01"}, "结案日期", ""),
    ({"结案日期": None}, "结案日期", ""),
    ({"涉及金额": "很多"}, "涉及金额", "数字"),
])
def test_bad_cell_is_named_and_nothing_written(db, over, header, words):
    before = _cases(db)
    rows = [good_row(编号=f"OK-{i}") for i in range(5)] + [good_row(编号="BAD", **over)]
    report = import_ledger(workbook(rows), "t.xlsx")
    assert not report.ok
    ref = f"矛盾纠纷台账!{_col(header)}7:"
    assert any(p.startswith(ref) and words in p for p in report.problems), report.problems
    assert _cases(db) == before


def test_dry_run_writes_nothing(db):
    before = _cases(db)
    report = import_ledger(workbook([good_row()]), "t.xlsx", dry_run=True)
    assert report.ok and report.created == 1
    assert _cases(db) == before


def test_cli_exit_codes(runner, db, tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(workbook([good_row(纠纷类型="邻居")]).getvalue())
    result = runner.invoke(args=["ledger", "import", str(bad)])
    assert result.exit_code != 0
    assert "矛盾纠纷台账!F2" in result.output
    good = tmp_path / "good.xlsx"
    good.write_bytes(workbook([good_row(编号="CLI-1")]).getvalue())
    dry = runner.invoke(args=["ledger", "import", str(good), "--dry-run"])
    assert dry.exit_code == 0 and "未写入" in dry.output
    assert db.scalar(select(Case).where(Case.external_number == "CLI-1")) is None
    ok = runner.invoke(args=["ledger", "import", str(good)])
    assert ok.exit_code == 0, ok.output
    assert db.scalar(select(Case).where(Case.external_number == "CLI-1")) is not None


def test_export_neutralises_formulas(runner, db, tmp_path):
    import openpyxl
    rows = [good_row(编号="INJ-1", 当事人="@SUM(A1)(申请人)；李四(被申请人)")]
    report = import_ledger(workbook(rows), "t.xlsx")
    assert report.ok, report.problems
    case = db.scalar(select(Case).where(Case.external_number == "INJ-1"))
    case.summary = "=HYPERLINK(\"http://x\")"
    case.notes = "\tcmd"
    db.flush()
    out = tmp_path / "out.xlsx"
    result = runner.invoke(args=["ledger", "export", str(out), "--org", "429960002"])
    assert result.exit_code == 0, result.output
    ws = openpyxl.load_workbook(out)["矛盾纠纷台账"]
    headers = [c.value for c in ws[1]]
    row = [c.value for c in ws[2]]
    assert row[headers.index("简要情况")] == "'=HYPERLINK(\"http://x\")"
    assert row[headers.index("当事人")].startswith("'@SUM")
    assert row[headers.index("联系电话")] != "13800000001；13800000002"  # masked by default
    for cell in ws[2]:
        assert not (isinstance(cell.value, str) and cell.value[:1] in "=+-@")


def test_outcome_without_close_date_is_reported_even_with_another_error(db):
    report = import_ledger(workbook([good_row(纠纷类型="邻居", 结案日期=None)]), "t.xlsx")
    assert any(p.startswith(f"矛盾纠纷台账!{_col('纠纷类型')}2:") for p in report.problems), report.problems
    assert any(p.startswith(f"矛盾纠纷台账!{_col('结案日期')}2:") and "结案日期为必填项" in p
               for p in report.problems), report.problems
    # a bad close date is reported once, as a bad date
    bad = import_ledger(workbook([good_row(结案日期="昨天")]), "t.xlsx")
    assert [p for p in bad.problems if p.startswith(f"矛盾纠纷台账!{_col('结案日期')}2:")] == \
        ['矛盾纠纷台账!O2: 结案日期 "昨天" 不是有效日期（应为 YYYY-MM-DD）']


def test_headers_in_any_order(db):
    import io
    import openpyxl
    shuffled = list(reversed(HEADERS))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "矛盾纠纷台账"
    ws.append(["无关的列"] + shuffled)
    ws.append(["x"] + [good_row(编号="SHUF-1").get(h) for h in shuffled])
    ws.append(["x"] + [good_row(编号="SHUF-2", 纠纷类型="邻居").get(h) for h in shuffled])
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    report = import_ledger(buf, "t.xlsx")
    # the bad type is named in its own (moved) column: 1 extra column + its reversed position
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[1 + shuffled.index("纠纷类型")]
    assert report.problems == [f'矛盾纠纷台账!{letter}3: 纠纷类型 "邻居" 不在列表中'], report.problems
    buf.seek(0)
    wb = openpyxl.load_workbook(buf)
    wb.active.delete_rows(3)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    report = import_ledger(buf, "t.xlsx")
    assert report.ok, report.problems
    case = db.scalar(select(Case).where(Case.external_number == "SHUF-1"))
    assert (case.summary, case.dispute_type, case.outcome) == ("因排水沟发生争执", "邻里", "success")
    assert sorted(p.phone for p in case.parties) == ["13800000001", "13800000002"]


def test_traffic_light_risk_words(db):
    rows = [good_row(编号=f"RISK-{w}", 风险等级=w) for w in ("红", "黄", "绿", "高", "中", "低")]
    report = import_ledger(workbook(rows), "t.xlsx")
    assert report.ok, report.problems
    got = dict(db.execute(select(Case.external_number, Case.risk_level)
                          .where(Case.external_number.like("RISK-%"))).all())
    assert got == {"RISK-红": "high", "RISK-黄": "medium", "RISK-绿": "low",
                   "RISK-高": "high", "RISK-中": "medium", "RISK-低": "low"}


def test_deadline_follows_the_default_setting(db):
    from datetime import date, timedelta
    from app.settings.services import set_setting
    import_ledger(workbook([good_row(编号="DL-30", 登记日期="2025-03-01")]), "t.xlsx")
    set_setting("deadline.mediation", {"days": 15, "unit": "calendar"})
    import_ledger(workbook([good_row(编号="DL-15", 登记日期="2025-03-01")]), "t.xlsx")
    got = dict(db.execute(select(Case.external_number, Case.deadline_on)
                          .where(Case.external_number.in_(["DL-30", "DL-15"]))).all())
    assert got == {"DL-30": date(2025, 3, 1) + timedelta(days=30), "DL-15": date(2025, 3, 1) + timedelta(days=15)}


def test_new_case_timeline_names_file_and_row(db):
    from app.cases.models import TimelineEntry
    report = import_ledger(workbook([good_row(编号="TL-1"), good_row(编号="TL-2")]), "南湖镇台账.xlsx")
    assert report.ok, report.problems
    case = db.scalar(select(Case).where(Case.external_number == "TL-2"))
    entries = db.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case.id)).all()
    assert [(e.action, e.note) for e in entries] == [("import", "从台账导入（文件 南湖镇台账.xlsx，第 3 行）")]


def test_formula_escaping_round_trips(runner, db, tmp_path):
    """The apostrophe the export puts before = + - @ is removed on import (exactly that escaping:
    an apostrophe before anything else is the user's text); an export re-imports as no change."""
    import openpyxl
    report = import_ledger(workbook([good_row(编号="EQ-1"), good_row(编号="APOS-1", 简要情况="'引号开头")]), "t.xlsx")
    assert report.ok, report.problems
    case = db.scalar(select(Case).where(Case.external_number == "EQ-1"))
    case.summary = "=1+1 双方各执一词"
    case.notes = "-不是负数"
    db.flush()
    version = case.version
    out = tmp_path / "out.xlsx"
    assert runner.invoke(args=["ledger", "export", str(out), "--org", "429960002"]).exit_code == 0
    again = import_ledger(open(out, "rb"), "out.xlsx")
    assert again.ok and again.updated == 2, again.problems
    db.expire_all()
    case = db.scalar(select(Case).where(Case.external_number == "EQ-1"))
    assert (case.summary, case.notes, case.version) == ("=1+1 双方各执一词", "-不是负数", version)
    assert db.scalar(select(Case.summary).where(Case.external_number == "APOS-1")) == "'引号开头"
    # as a new case (编号 cleared) the text comes in unescaped too
    wb = openpyxl.load_workbook(out)
    ws = wb["矛盾纠纷台账"]
    headers = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2) if r[headers.index("编号")].value == "EQ-1")
    assert row[headers.index("简要情况")].value == "'=1+1 双方各执一词"
    row[headers.index("编号")].value = None
    wb.save(out)
    fresh = import_ledger(open(out, "rb"), "out.xlsx")
    assert fresh.ok and fresh.created == 1, fresh.problems
    assert db.scalar(select(func.count()).select_from(Case).where(Case.summary == "=1+1 双方各执一词")) == 2


def test_imported_case_last_activity_is_the_ledgers_last_date(db):
    """Not the moment of the import: the high-risk board and the early warnings judge "no recent
    activity" by it."""
    from datetime import datetime, timezone

    from app.cases.models import Case
    from app.ledger.importer import import_ledger
    from tests.ledger_helpers import good_row, workbook
    report = import_ledger(workbook([good_row(**{"编号": "LA-1", "登记日期": "2026-03-02", "结案日期": "2026-03-20"}),
                                     good_row(**{"编号": "LA-2", "登记日期": "2026-04-07", "办理结果": "",
                                                 "结案日期": ""})]), filename="la.xlsx")
    assert report.ok, report.problems
    closed = db.scalar(select(Case).where(Case.external_number == "LA-1"))
    open_ = db.scalar(select(Case).where(Case.external_number == "LA-2"))

    def utc(value):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    assert utc(closed.last_activity_at) == datetime(2026, 3, 20, 4, tzinfo=timezone.utc)  # 12:00 in Shanghai
    assert utc(open_.last_activity_at) == datetime(2026, 4, 7, 1, tzinfo=timezone.utc)  # 09:00 in Shanghai
