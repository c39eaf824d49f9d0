"""Org tree changes: the CSV import of PRODUCT.md §10, and the admin's add/rename."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import select

from app.db import session
from app.errors import ValidationFailed
from app.orgs.models import LEVEL_FROM_LABEL, PARENT_LEVEL, OrgUnit

CSV_HEADER = ["代码", "名称", "层级", "上级代码"]


@dataclass
class OrgRow:
    line: int
    code: str
    name: str
    level: str
    parent_code: str


@dataclass
class ImportResult:
    created: int
    updated: int


class OrgImportError(ValidationFailed):
    """Bad rows of an org CSV; ``problems`` are Chinese lines naming the CSV line number."""

    def __init__(self, problems: list[str]):
        super().__init__("组织机构导入失败：" + "；".join(problems[:5]))
        self.problems = problems


def _parse(text: str) -> tuple[list[OrgRow], list[str]]:
    text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text))
    problems: list[str] = []
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], ["第1行：文件为空"]
    if header[:4] != CSV_HEADER:
        return [], [f"第1行：表头应为 {','.join(CSV_HEADER)}，实际为 {','.join(header)}"]
    rows: list[OrgRow] = []
    for line, raw in enumerate(reader, start=2):
        if not any(cell.strip() for cell in raw):
            continue
        cells = [c.strip() for c in raw] + [""] * 4
        code, name, level_label, parent = cells[:4]
        if len(raw) > 4 and any(c.strip() for c in raw[4:]):
            problems.append(f"第{line}行：列数多于4列")
            continue
        if not code:
            problems.append(f"第{line}行：代码为空")
            continue
        if not code.isdigit() or len(code) > 32:
            problems.append(f"第{line}行：代码 \"{code}\" 应为数字（不超过32位）")
            continue
        if not name:
            problems.append(f"第{line}行：名称为空")
            continue
        if len(name) > 100:
            problems.append(f"第{line}行：名称过长")
            continue
        level = LEVEL_FROM_LABEL.get(level_label)
        if level is None:
            problems.append(f"第{line}行：层级 \"{level_label}\" 应为 县、乡镇、村、网格 之一")
            continue
        rows.append(OrgRow(line, code, name, level, parent))
    return rows, problems


def import_orgs_csv(text: str) -> ImportResult:
    """Validate every row, then create or rename units by code in one go; raise
    ``OrgImportError`` listing every bad row (by line number) and write nothing."""
    rows, problems = _parse(text)
    existing = {o.code: o for o in session.scalars(select(OrgUnit))}
    seen: dict[str, OrgRow] = {}
    for row in rows:
        if row.code in seen:
            problems.append(f"第{row.line}行：代码 {row.code} 与第{seen[row.code].line}行重复")
            continue
        seen[row.code] = row

    def level_of(code: str) -> Optional[str]:
        if code in seen:
            return seen[code].level
        return existing[code].level if code in existing else None

    for row in seen.values():
        expected_parent = PARENT_LEVEL[row.level]
        if expected_parent is None:
            if row.parent_code:
                problems.append(f"第{row.line}行：县级单位不应有上级代码")
            continue
        if not row.parent_code:
            problems.append(f"第{row.line}行：上级代码为空")
            continue
        parent_level = level_of(row.parent_code)
        if parent_level is None:
            problems.append(f"第{row.line}行：上级代码 {row.parent_code} 不存在")
        elif parent_level != expected_parent:
            problems.append(f"第{row.line}行：{row.name} 的上级 {row.parent_code} 层级不符"
                            f"（应为{ {'county': '县', 'township': '乡镇', 'village': '村'}[expected_parent] }）")
        if row.code in existing and existing[row.code].level != row.level:
            problems.append(f"第{row.line}行：代码 {row.code} 已存在且层级不同，不能更改层级")
    if not rows and not problems:
        problems.append("文件中没有数据行")
    if problems:
        problems.sort(key=lambda p: int(p[1:p.index("行")]) if p[1:p.index("行")].isdigit() else 0)
        raise OrgImportError(problems)

    created = updated = 0
    moved: list[OrgUnit] = []
    order = {"county": 0, "township": 1, "village": 2, "grid": 3}
    for row in sorted(seen.values(), key=lambda r: order[r.level]):
        unit = existing.get(row.code)
        parent = existing.get(row.parent_code) if row.parent_code else None
        if unit is None:
            unit = OrgUnit(code=row.code, name=row.name, level=row.level)
            session.add(unit)
            existing[row.code] = unit
            created += 1
        elif unit.name != row.name or (parent is not None and unit.parent_id != parent.id):
            if parent is not None and unit.parent_id != parent.id:
                moved.append(unit)
            unit.name = row.name
            updated += 1
        _place(unit, parent)
        session.flush()
    for unit in moved:  # a unit moved to another parent takes its subtree along
        _replace_descendants(unit)
    return ImportResult(created, updated)


def _replace_descendants(unit: OrgUnit) -> None:
    """Recompute the denormalised county/township ids below ``unit`` after it moved."""
    for child in session.scalars(select(OrgUnit).where(OrgUnit.parent_id == unit.id)).all():
        _place(child, unit)
        _replace_descendants(child)


def _place(unit: OrgUnit, parent: Optional[OrgUnit]) -> None:
    """Set parent and the denormalised county/township ids from the parent."""
    unit.parent = parent
    if unit.level == "county":
        session.flush()
        unit.county_id = unit.id
        unit.township_id = None
        return
    assert parent is not None  # nosec B101 # type narrowing; add_unit validated the parent
    session.flush()
    unit.county_id = parent.county_id if parent.level != "county" else parent.id
    if unit.level == "township":
        unit.township_id = unit.id
    elif parent.level == "township":
        unit.township_id = parent.id
    else:
        unit.township_id = parent.township_id


def add_unit(name: str, level: str, parent: Optional[OrgUnit], code: Optional[str] = None,
             department_kind: Optional[str] = None) -> OrgUnit:
    """Add a unit (or a department under a county or township) from the admin page."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = _("请填写名称")
    expected = PARENT_LEVEL.get(level, "?")
    if expected == "?":
        errors["level"] = _("层级无效")
    elif expected is None:
        if parent is not None:
            errors["parent"] = _("县级单位不应有上级")
    elif parent is None or (parent.level not in expected if isinstance(expected, tuple) else parent.level != expected):
        errors["parent"] = _("上级单位的层级不符")
    if level == "department" and not (department_kind or "").strip():
        errors["department_kind"] = _("请填写部门类别（如 司法所、派出所）")
    if not code:
        code = _next_child_code(parent, level)
    elif len(code) > 32 or not code.isalnum():
        errors["code"] = _("代码应为字母或数字（不超过32位）")
    elif session.scalar(select(OrgUnit.id).where(OrgUnit.code == code)):
        errors["code"] = _("代码 %(code)s 已存在", code=code)
    if errors:
        raise ValidationFailed(errors=errors)
    unit = OrgUnit(code=code, name=name, level=level, department_kind=(department_kind or None))
    session.add(unit)
    _place(unit, parent)
    session.flush()
    return unit


def _next_child_code(parent: Optional[OrgUnit], level: str) -> str:
    prefix = parent.code if parent else ""
    width = {"township": 3, "village": 3, "grid": 2, "department": 3, "county": 6}[level]
    if level == "department":
        prefix += "D"
    codes = session.scalars(select(OrgUnit.code).where(OrgUnit.code.like(prefix + "%"))).all()
    taken = {c[len(prefix):] for c in codes if len(c) == len(prefix) + width}
    n = 1
    while f"{n:0{width}d}" in taken:
        n += 1
    return f"{prefix}{n:0{width}d}"


def rename_unit(unit: OrgUnit, name: str) -> None:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(errors={"name": _("请填写名称")})
    unit.name = name
    session.flush()


def children(parent_id: Optional[int]) -> list[OrgUnit]:
    """Direct children of a unit, departments last, by code."""
    stmt = select(OrgUnit).where(OrgUnit.parent_id == parent_id) if parent_id else \
        select(OrgUnit).where(OrgUnit.parent_id.is_(None))
    return list(session.scalars(stmt.order_by(OrgUnit.level == "department", OrgUnit.code)))


def find_by_code(code: str) -> Optional[OrgUnit]:
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))
