"""The org tree import of PRODUCT.md §10 (``flask orgs import`` and the admin upload), and the
admin's tree page: add units and departments, rename."""
from __future__ import annotations

import io
import random

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.orgs.models import OrgUnit
from app.orgs.services import OrgImportError, import_orgs_csv
from tests.helpers import csrf_token

HEADER = "代码,名称,层级,上级代码"
# A small second county (codes unused by the demo county).
ROWS = ["519900,测试县,县,", "519900001,东风镇,乡镇,519900", "519900002,西河乡,乡镇,519900",
        "519900001001,红旗村,村,519900001", "519900001002,向阳社区,村,519900001",
        "519900002001,柳树村,村,519900002", "51990000100101,第1网格,网格,519900001001"]


def csv_text(rows, header=HEADER, bom=False) -> str:
    return ("\ufeff" if bom else "") + "\n".join([header, *rows]) + "\n"


def unit_count(db) -> int:
    return db.scalar(select(func.count(OrgUnit.id)))


def by_code(db, code):
    return db.scalar(select(OrgUnit).where(OrgUnit.code == code))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_import_in_any_order(db, seed):
    rows = ROWS[:]
    random.Random(seed).shuffle(rows)
    before = unit_count(db)
    result = import_orgs_csv(csv_text(rows))
    assert (result.created, result.updated) == (7, 0)
    assert unit_count(db) == before + 7
    grid = by_code(db, "51990000100101")
    village = by_code(db, "519900001001")
    township = by_code(db, "519900001")
    county = by_code(db, "519900")
    assert grid.parent_id == village.id and village.parent_id == township.id and township.parent_id == county.id
    assert grid.township_id == township.id and grid.county_id == county.id
    assert village.level == "village" and grid.level == "grid"


def test_reimport_updates_names_and_never_duplicates(db):
    import_orgs_csv(csv_text(ROWS))
    before = unit_count(db)
    renamed = [r.replace("红旗村", "红旗新村") for r in ROWS]
    result = import_orgs_csv(csv_text(list(reversed(renamed))))
    assert (result.created, result.updated) == (0, 1)
    assert unit_count(db) == before
    assert by_code(db, "519900001001").name == "红旗新村"
    assert db.scalar(select(func.count(OrgUnit.id)).where(OrgUnit.code == "519900001001")) == 1


def test_bom_accepted(db):
    assert import_orgs_csv(csv_text(ROWS, bom=True)).created == 7


def test_reimport_of_the_demo_file_changes_nothing(db):
    from app.demo.seed import DEMO_DIR
    before = unit_count(db)
    result = import_orgs_csv((DEMO_DIR / "orgs.csv").read_text(encoding="utf-8"))
    assert (result.created, result.updated) == (0, 0)
    assert unit_count(db) == before


BAD_CASES = {
    "missing code": (["519900,测试县,县,", ",无码镇,乡镇,519900"], ["第3行", "代码为空"]),
    "missing name": (["519900,测试县,县,", "519900001,,乡镇,519900"], ["第3行", "名称为空"]),
    "bad level": (["519900,测试县,县,", "519900001,东风镇,省,519900"], ["第3行", "层级"]),
    "unknown parent": (["519900,测试县,县,", "519900001,东风镇,乡镇,888888"], ["第3行", "888888", "不存在"]),
    "wrong parent level": (["519900,测试县,县,", "519900001001,红旗村,村,519900"], ["第3行", "层级不符"]),
    "duplicate code": (["519900,测试县,县,", "519900001,东风镇,乡镇,519900", "519900001,东风乡,乡镇,519900"],
                       ["第4行", "重复", "第3行"]),
    "too many columns": (["519900,测试县,县,", "519900001,东风镇,乡镇,519900,多余"], ["第3行", "列数多于4列"]),
    "non-numeric code": (["519900,测试县,县,", "51990A001,东风镇,乡镇,519900"], ["第3行", "51990A001", "应为数字"]),
    "code too long": (["519900,测试县,县,", "5" * 33 + ",东风镇,乡镇,519900"], ["第3行", "不超过32位"]),
    "name too long": (["519900,测试县,县,", "519900001," + "东" * 101 + ",乡镇,519900"], ["第3行", "名称过长"]),
    "county with a parent": (["519900,测试县,县,429960"], ["第2行", "县级单位不应有上级代码"]),
    "empty parent code": (["519900,测试县,县,", "519900001,东风镇,乡镇,"], ["第3行", "上级代码为空"]),
    "grid without parent": (["519900,测试县,县,", "51990000100101,第1网格,网格,"], ["第3行", "上级代码为空"]),
    # 429960002 is the demo county's township 南湖镇: a re-import may rename it, not make it a village.
    "level of an existing unit changed": (["519900,测试县,县,", "429960002,南湖镇,村,429960001"],
                                          ["第3行", "429960002", "层级不同", "不能更改层级"]),
}


@pytest.mark.parametrize("kind", BAD_CASES)
def test_bad_rows_reported_by_line_and_nothing_written(db, kind):
    rows, expected = BAD_CASES[kind]
    before = unit_count(db)
    with pytest.raises(OrgImportError) as info:
        import_orgs_csv(csv_text(rows))
    text = "\n".join(info.value.problems)
    for fragment in expected:
        assert fragment in text
    assert unit_count(db) == before
    assert by_code(db, "519900") is None


def test_a_longest_name_and_code_are_accepted(db):
    """The limits are inclusive: a 100-character name and a 32-digit code import."""
    rows = ["519900,测试县,县,", "5" * 32 + "," + "东" * 100 + ",乡镇,519900"]
    assert import_orgs_csv(csv_text(rows)).created == 2
    assert by_code(db, "5" * 32).name == "东" * 100


def test_level_change_refused_leaves_the_unit_as_it_was(db):
    with pytest.raises(OrgImportError):
        import_orgs_csv(csv_text(["429960002,南湖新镇,村,429960001"]))
    unit = by_code(db, "429960002")
    assert unit.level == "township" and unit.name == "南湖镇" and unit.parent.code == "429960"


def test_every_bad_row_is_reported_at_once(db):
    rows = ["519900,测试县,县,", ",无码镇,乡镇,519900", "519900002,,乡镇,519900", "519900003,北山镇,省,519900"]
    with pytest.raises(OrgImportError) as info:
        import_orgs_csv(csv_text(rows))
    assert [p[:3] for p in info.value.problems] == ["第3行", "第4行", "第5行"]


@pytest.mark.parametrize("text,fragment", [("", "文件为空"), ("编码,名称,级别,上级\n1,县,县,\n", "表头"),
                                           (HEADER + "\n", "没有数据行")])
def test_empty_file_and_bad_header(db, text, fragment):
    with pytest.raises(OrgImportError) as info:
        import_orgs_csv(text)
    assert fragment in "".join(info.value.problems)


def test_cli_import_ok_and_errors_exit_non_zero(runner, db, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(csv_text(ROWS, bom=True), encoding="utf-8")
    result = runner.invoke(args=["orgs", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "新增 7 个" in result.output
    assert by_code(db, "519900001") is not None

    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text(["529900,另一县,县,", "529900001,东风镇,乡镇,777777"]), encoding="utf-8")
    before = unit_count(db)
    result = runner.invoke(args=["orgs", "import", str(bad)])
    assert result.exit_code != 0
    assert "第3行" in result.output and "未写入任何数据" in result.output
    assert unit_count(db) == before


def test_cli_import_refuses_non_utf8(runner, db, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(csv_text(ROWS).encode("gbk"))
    result = runner.invoke(args=["orgs", "import", str(path)])
    assert result.exit_code != 0
    assert "UTF-8" in result.output


# ---- the admin page --------------------------------------------------------------------------

def test_tree_page_shows_the_county_and_its_levels(client, auth):
    auth.login("admin")
    html = client.get("/admin/orgs/?unit=429960002001").get_data(as_text=True)
    assert 'data-testid="org-tree"' in html
    assert "南湖镇" in html and "第1网格" in html and "南湖镇司法所" in html
    assert "<details" in html  # collapsible


def test_tree_page_is_admin_only(client, auth):
    auth.login("township_director")
    assert client.get("/admin/orgs/").status_code == 403


def test_add_unit_department_and_rename(client, auth, db):
    auth.login("admin")
    token = csrf_token(client, "/admin/orgs/")
    resp = client.post("/admin/orgs/add", data={"csrf_token": token, "parent": "429960002", "level": "village",
                                                 "name": "新建村"})
    assert resp.status_code == 302
    village = db.scalar(select(OrgUnit).where(OrgUnit.name == "新建村"))
    assert village.level == "village" and village.parent.code == "429960002"
    assert village.code.startswith("429960002") and len(village.code) == 12

    resp = client.post("/admin/orgs/add", data={"csrf_token": token, "parent": "429960002", "level": "department",
                                                 "name": "南湖镇妇联", "department_kind": "妇联"})
    assert resp.status_code == 302
    dept = db.scalar(select(OrgUnit).where(OrgUnit.name == "南湖镇妇联"))
    assert dept.level == "department" and dept.township_id == dept.parent_id

    resp = client.post("/admin/orgs/rename", data={"csrf_token": token, "unit": village.code, "name": "新建社区"})
    assert resp.status_code == 302
    db.refresh(village)
    assert village.name == "新建社区"
    actions = set(db.scalars(select(AuditLog.action).where(AuditLog.object_id.in_([str(village.id), str(dept.id)]))))
    assert {"org.add", "org.rename"} <= actions


def test_add_refuses_a_department_without_kind_and_a_grid_under_a_township(client, auth, db):
    auth.login("admin")
    token = csrf_token(client, "/admin/orgs/")
    before = unit_count(db)
    resp = client.post("/admin/orgs/add", data={"csrf_token": token, "parent": "429960002", "level": "department",
                                                 "name": "某部门"})
    assert resp.status_code == 422 and "部门类别" in resp.get_data(as_text=True)
    resp = client.post("/admin/orgs/add", data={"csrf_token": token, "parent": "429960002", "level": "grid",
                                                 "name": "错层网格"})
    assert resp.status_code == 422 and "层级不符" in resp.get_data(as_text=True)
    assert unit_count(db) == before


def test_upload_shows_every_bad_row_and_writes_nothing(client, auth, db):
    auth.login("admin")
    token = csrf_token(client, "/admin/orgs/")
    before = unit_count(db)
    body = csv_text(["519900,测试县,县,", ",无码镇,乡镇,519900", "519900002,西河乡,乡镇,999999"]).encode()
    resp = client.post("/admin/orgs/import", data={"csrf_token": token, "file": (io.BytesIO(body), "orgs.csv")},
                       content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "第3行：代码为空" in html and "第4行：上级代码 999999 不存在" in html
    assert unit_count(db) == before

    resp = client.post("/admin/orgs/import", data={"csrf_token": token,
                                                    "file": (io.BytesIO(csv_text(ROWS, bom=True).encode()), "o.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 302
    assert unit_count(db) == before + 7
    assert db.scalar(select(AuditLog).where(AuditLog.action == "org.import")) is not None


def test_reimport_moving_a_village_moves_its_grids(db):
    import_orgs_csv(csv_text(ROWS))
    moved = [r.replace("519900001001,红旗村,村,519900001", "519900001001,红旗村,村,519900002") for r in ROWS]
    assert import_orgs_csv(csv_text(moved)).updated == 1
    west = by_code(db, "519900002")
    assert by_code(db, "519900001001").township_id == west.id
    assert by_code(db, "51990000100101").township_id == west.id
