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
