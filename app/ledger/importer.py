"""Importing a township ledger (台账, PRODUCT.md §7): validate every row of both sheets first,
then write a clean file in one transaction (the caller commits; this module only flushes).

All-or-nothing: any problem, reported as ``矛盾纠纷台账!C12: 纠纷类型 "邻居" 不在列表中``, means
nothing is written.  Re-importing the same 编号 updates that case, never duplicates it (编号 is
matched against the external number first, then against our own case number, so an exported
ledger imports back onto the same cases).  Reception rows carry an ``import_key`` (a hash of the
row and its occurrence among identical rows) so they are not duplicated either.

Decisions:
- an imported case with no 办理结果 is open and ``in_mediation`` (it is already in a township's
  ledger, so it has been accepted); 不予受理 is ``declined``, with no close date (declined cases
  are never closed) — its 结案日期, if given, is kept in the timeline note;
- a masked phone (``138****5678``, from a masked export) never overwrites a stored phone;
- new 高 risk cases get ``high_risk_at`` = midnight of 登记日期 in Asia/Shanghai;
- an update sets only the ledger fields whose value changed, and only then what follows from
  them (status from 办理结果, ``closed_at`` from 结案日期, ``high_risk_at`` = now when first graded
  高): re-importing an export leaves escalated, transferred, archived … cases as they are;
- a township (or county) user imports only rows of their own jurisdiction and updates only cases
  in it (the CLI has county-wide rights); the leading apostrophe the exporter puts before a
  formula-like text is removed again;
- the deadline is 登记日期 + the mediation rule (``deadline.mediation``, 30 calendar days by default).

Rows go in with bulk INSERTs (ids reserved up front) and a re-import's changes with bulk
UPDATEs (cases, parties and follow-ups read 500 cases at a time), and sheets are read with a
quick path for inline strings, so a 50,000-row ledger validates and imports in about a minute
of CPU on SQLite (``make bench-ledger``, ``bench/ledger_import.py``).
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO, Callable, Optional

import openpyxl
from openpyxl.utils import coordinate_to_tuple, get_column_letter
from openpyxl.worksheet._reader import INLINE_STRING, WorkSheetParser
from openpyxl.xml.constants import SHEET_MAIN_NS
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm.exc import StaleDataError

from app.cases.models import Case, FollowUp, Party, TimelineEntry
from app.cases.numbering import allocate_many
from app.cases.vocab import (AGREEMENT_FORMS, LEVELS, OUTCOMES, PARTY_ROLES, PERFORMANCE,
                             RECEPTION_HANDLING, SATISFACTION, code_for)
from app.db import session, utcnow
from app.orgs.models import OrgUnit
from app.reception.models import ReceptionEntry
from app.settings.models import CaseSource, DisputeType
from app.spreadsheets import FORMULA_PREFIXES
from app.templating import SHANGHAI

CASE_SHEET = "矛盾纠纷台账"
RECEPTION_SHEET = "来访登记"
CASE_REQUIRED = ["登记日期", "来源", "乡镇", "村(社区)", "纠纷类型", "简要情况", "当事人"]
CASE_OPTIONAL = ["编号", "联系电话", "涉及人数", "涉及金额", "风险等级", "化解层级", "办理结果", "结案日期",
                 "协议形式", "履行情况", "回访日期", "满意度", "责任人", "备注"]
RECEPTION_REQUIRED = ["日期", "乡镇", "来访人", "人数", "处理方式"]
RECEPTION_OPTIONAL = ["事由", "备注"]
RISK_WORDS = {"高": "high", "红": "high", "中": "medium", "黄": "medium", "低": "low", "绿": "low"}
PARTY_RE = re.compile(r"^\s*(.+?)\s*[（(]\s*(申请人|被申请人|第三人)\s*[)）]\s*$")
SPLIT_RE = re.compile(r"[；;]")
BATCH = 2000
_T_TAG, _R_TAG = f"{{{SHEET_MAIN_NS}}}t", f"{{{SHEET_MAIN_NS}}}r"


@dataclass
class ImportReport:
    """What an import found and did."""

    filename: str
    problems: list[str] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    reception_created: int = 0
    reception_skipped: int = 0
    rows: int = 0
    reception_rows: int = 0
    dry_run: bool = False
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            return f"发现 {len(self.problems)} 处错误，未写入任何数据"
        verb = "校验通过（未写入）：将" if self.dry_run else "导入完成："
        return (f"{verb}新增 {self.created} 件、更新 {self.updated} 件纠纷，"
                f"来访登记新增 {self.reception_created} 条（已存在 {self.reception_skipped} 条）")


class LedgerInvalid(Exception):
    """Raised by ``import_ledger(..., raise_on_problems=True)``."""

    def __init__(self, report: ImportReport):
        super().__init__(report.summary())
        self.report = report


# ---------------------------------------------------------------- cell parsing

def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
        value = value[1:]  # undo exactly the exporter's formula escaping (app.spreadsheets.neutralise)
    return str(value).strip()


def _date(value: Any) -> Optional[date]:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    s = _text(value).replace("/", "-").replace(".", "-")
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", s) or \
        re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日", _text(value))
    if not m:
        raise ValueError
    return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


@dataclass
class _Lookups:
    townships: dict[str, OrgUnit]
    villages: dict[tuple[int, str], OrgUnit]
    types: dict[str, tuple[str, str]]  # name → (name, category)
    sources: set[str]
    county_id: int
    # org unit → whether the importing user may write there (None: the CLI, county-wide rights)
    in_scope: Optional[Callable[[OrgUnit], bool]] = None


def _scope_check(user) -> Optional[Callable[[OrgUnit], bool]]:
    """Whether an org unit lies in ``user``'s jurisdiction (``org_in_jurisdiction``), cached per unit."""
    if user is None:
        return None
    from app.cases.queries import org_in_jurisdiction
    cache: dict[int, bool] = {}

    def check(org: OrgUnit) -> bool:
        if org.id not in cache:
            cache[org.id] = bool(org_in_jurisdiction(user, org))
        return cache[org.id]
    return check


def _load_lookups(in_scope: Optional[Callable[[OrgUnit], bool]] = None) -> _Lookups:
    orgs = list(session.scalars(select(OrgUnit).where(OrgUnit.level.in_(("county", "township", "village")))
                                .order_by(OrgUnit.id)))
    if in_scope is not None:  # a name shared with a unit outside the user's area means their own unit
        orgs.sort(key=in_scope)
    townships = {o.name: o for o in orgs if o.level == "township"}
    villages = {(o.township_id, o.name): o for o in orgs if o.level == "village"}
    county = next((o for o in orgs if o.level == "county"), None)
    type_rows = list(session.scalars(select(DisputeType)))
    by_id = {t.id: t for t in type_rows}
    types = {t.name: (t.name, by_id[t.parent_id].name if t.parent_id else t.name) for t in type_rows if t.active}
    sources = set(session.scalars(select(CaseSource.name).where(CaseSource.active)))
    return _Lookups(townships, villages, types, sources, county.id if county else 0, in_scope)


def _header_map(ws, required: list[str], optional: list[str], problems: list[str]) -> dict[str, int]:
    first = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    columns: dict[str, int] = {}
    for i, value in enumerate(first):
        name = _text(value)
        if name in required or name in optional:
            columns.setdefault(name, i)
    for name in required:
        if name not in columns:
            problems.append(f"{ws.title}!1: 缺少必填列 \"{name}\"")
    return columns


class _RowReader:
    """Reads one row's cells by header name and records problems with their cell reference."""

    def __init__(self, sheet: str, row_number: int, values: tuple, columns: dict[str, int],
                 problems: list[str]):
        self.sheet, self.row_number, self.values, self.columns = sheet, row_number, values, columns
        self.problems = problems
        self.bad = False

    def ref(self, name: str) -> str:
        col = self.columns.get(name)
        letter = get_column_letter(col + 1) if col is not None else "?"
        return f"{self.sheet}!{letter}{self.row_number}"

    def raw(self, name: str) -> Any:
        col = self.columns.get(name)
        if col is None or col >= len(self.values):
            return None
        return self.values[col]

    def text(self, name: str, required: bool = False, max_len: int = 2000) -> str:
        value = _text(self.raw(name))
        if required and not value:
            self.problem(name, f"{name} 为必填项，不能为空")
        elif len(value) > max_len:
            self.problem(name, f"{name} 超过 {max_len} 字")
        return value

    def date(self, name: str, required: bool = False) -> Optional[date]:
        raw = self.raw(name)
        if raw is None or _text(raw) == "":
            if required:
                self.problem(name, f"{name} 为必填项，不能为空")
            return None
        try:
            return _date(raw)
        except (ValueError, TypeError):
            self.problem(name, f"{name} \"{_text(raw)}\" 不是有效日期（应为 YYYY-MM-DD）")
            return None

    def choice(self, name: str, allowed: dict[str, str] | set[str], label: str = "") -> Optional[str]:
        value = self.text(name)
        if not value:
            return None
        if value not in allowed:
            options = "、".join(allowed.keys() if isinstance(allowed, dict) else sorted(allowed))
            self.problem(name, f"{label or name} \"{value}\" 不在列表中（可选：{options}）")
            return None
        return allowed[value] if isinstance(allowed, dict) else value

    def number(self, name: str, integer: bool, minimum: int) -> Optional[Decimal]:
        raw = self.raw(name)
        if raw is None or _text(raw) == "":
            return None
        try:
            value = Decimal(_text(raw))
        except InvalidOperation:
            self.problem(name, f"{name} \"{_text(raw)}\" 不是有效数字")
            return None
        if integer and value != value.to_integral_value():
            self.problem(name, f"{name} \"{_text(raw)}\" 应为整数")
            return None
        if value < minimum:
            self.problem(name, f"{name} 不能小于 {minimum}")
            return None
        return value

    def problem(self, name: str, message: str) -> None:
        self.bad = True
        self.problems.append(f"{self.ref(name)}: {message}")


# ---------------------------------------------------------------- validation

def _parse_case_row(r: _RowReader, lk: _Lookups) -> Optional[dict[str, Any]]:
    registered_on = r.date("登记日期", required=True)
    source = r.text("来源", required=True)
    if source and source not in lk.sources:
        r.problem("来源", f"来源 \"{source}\" 不在列表中")
    township_name = r.text("乡镇", required=True)
    township = lk.townships.get(township_name)
    if township_name and township is None:
        r.problem("乡镇", f"乡镇 \"{township_name}\" 不在组织机构中")
    village_name = r.text("村(社区)", required=True)
    village = lk.villages.get((township.id, village_name)) if township else None
    if village_name and township and village is None:
        r.problem("村(社区)", f"村(社区) \"{village_name}\" 不属于 {township_name}")
    if township and lk.in_scope is not None:
        if not lk.in_scope(township) and not (village and lk.in_scope(village)):
            r.problem("乡镇", f"乡镇 \"{township_name}\" 不在您的管辖范围内，不能导入")
        elif village and not lk.in_scope(village):
            r.problem("村(社区)", f"村(社区) \"{village_name}\" 不在您的管辖范围内，不能导入")
    type_text = r.text("纠纷类型", required=True)
    type_pair = lk.types.get(type_text) or (lk.types.get(type_text[:-2]) if type_text.endswith("纠纷") else None)
    if type_text and type_pair is None:
        r.problem("纠纷类型", f"纠纷类型 \"{type_text}\" 不在列表中")
    summary = r.text("简要情况", required=True)
    parties = _parse_parties(r)
    people = r.number("涉及人数", integer=True, minimum=1)
    amount = r.number("涉及金额", integer=False, minimum=0)
    risk = r.choice("风险等级", RISK_WORDS)
    level = r.choice("化解层级", {v: k for k, v in LEVELS.items()})
    outcome = r.choice("办理结果", {v: k for k, v in OUTCOMES.items()})
    closed_on = r.date("结案日期")
    if outcome and outcome != "declined" and closed_on is None and _text(r.raw("结案日期")) == "":
        r.problem("结案日期", "已填写办理结果，结案日期为必填项")
    if closed_on and not outcome:
        r.problem("办理结果", "填写了结案日期，但办理结果为空")
    if closed_on and registered_on and closed_on < registered_on:
        r.problem("结案日期", f"结案日期 {closed_on} 早于登记日期 {registered_on}")
    today = datetime.now(SHANGHAI).date()
    if registered_on and registered_on > today:
        r.problem("登记日期", f"登记日期 {registered_on} 晚于今天")
    form = r.choice("协议形式", {v: k for k, v in AGREEMENT_FORMS.items()})
    performance = r.choice("履行情况", {v: k for k, v in PERFORMANCE.items()})
    followed_up_on = r.date("回访日期")
    satisfaction = r.choice("满意度", {v: k for k, v in SATISFACTION.items()})
    responsible = r.text("责任人", max_len=64)
    notes = r.text("备注")
    number = r.text("编号", max_len=64)
    if r.bad:
        return None
    return dict(external=number or None, registered_on=registered_on, source=source,
                township=township, village=village, dispute_type=type_pair[0], type_category=type_pair[1],
                summary=summary, parties=parties, people_involved=int(people) if people is not None else None,
                amount=amount, risk_level=risk, handling_level=level or "village", outcome=outcome,
                closed_on=closed_on if outcome != "declined" else None, declined_on=closed_on if outcome == "declined" else None,
                agreement_form=form, performance=performance, followed_up_on=followed_up_on,
                satisfaction=satisfaction, responsible_name=responsible or None, notes=notes or None,
                row=r.row_number, number_ref=r.ref("编号"))


def _parse_parties(r: _RowReader) -> list[dict[str, Any]]:
    text_value = r.text("当事人", required=True)
    if not text_value:
        return []
    names = [p for p in (s.strip() for s in SPLIT_RE.split(text_value)) if p]
    phones = [p.strip() for p in SPLIT_RE.split(r.text("联系电话"))] if r.text("联系电话") else []
    parties = []
    for position, chunk in enumerate(names):
        m = PARTY_RE.match(chunk)
        if not m:
            r.problem("当事人", f"当事人 \"{chunk}\" 应写作 姓名(角色)，角色为申请人、被申请人或第三人")
            continue
        phone = phones[position] if position < len(phones) and phones[position] else None
        if phone and not re.fullmatch(r"[0-9*\-+ ]{5,20}", phone):
            r.problem("联系电话", f"联系电话 \"{phone}\" 格式不正确")
            phone = None
        parties.append(dict(name=m.group(1)[:100], role=code_for(PARTY_ROLES, m.group(2)), phone=phone,
                            position=position))
    return parties


def _parse_reception_row(r: _RowReader, lk: _Lookups) -> Optional[dict[str, Any]]:
    received_on = r.date("日期", required=True)
    township_name = r.text("乡镇", required=True)
    township = lk.townships.get(township_name)
    if township_name and township is None:
        r.problem("乡镇", f"乡镇 \"{township_name}\" 不在组织机构中")
    elif township and lk.in_scope is not None and not lk.in_scope(township):
        r.problem("乡镇", f"乡镇 \"{township_name}\" 不在您的管辖范围内，不能导入")
    visitor = r.text("来访人", required=True, max_len=200)
    count = r.number("人数", integer=True, minimum=1)
    if count is None and not r.bad:
        r.problem("人数", "人数 为必填项，不能为空")
    handling = r.choice("处理方式", {v: k for k, v in RECEPTION_HANDLING.items()})
    if handling is None and not r.text("处理方式"):
        r.problem("处理方式", "处理方式 为必填项，不能为空")
    matter = r.text("事由")
    notes = r.text("备注")
    if r.bad:
        return None
    return dict(received_on=received_on, township=township, visitor=visitor, headcount=int(count),
                handling=handling, matter=matter, notes=notes or None)


# ---------------------------------------------------------------- import

def import_ledger(fileobj: BinaryIO, filename: str, dry_run: bool = False, user=None) -> ImportReport:
    """Validate and (unless ``dry_run`` or there are problems) write the ledger; see the module doc."""
    report = ImportReport(filename=filename, dry_run=dry_run)
    try:
        wb = openpyxl.load_workbook(fileobj, read_only=True, data_only=True)
    except Exception:
        report.problems.append(f"{filename}: 不是有效的 Excel（.xlsx）文件")
        return report
    if CASE_SHEET not in wb.sheetnames:
        report.problems.append(f"{filename}: 缺少工作表 \"{CASE_SHEET}\"")
        return report
    lk = _load_lookups(_scope_check(user))
    case_rows = _read_sheet(wb[CASE_SHEET], CASE_REQUIRED, CASE_OPTIONAL, _parse_case_row, lk, report)
    reception_rows = []
    if RECEPTION_SHEET in wb.sheetnames:
        reception_rows = _read_sheet(wb[RECEPTION_SHEET], RECEPTION_REQUIRED, RECEPTION_OPTIONAL,
                                     _parse_reception_row, lk, report)
    wb.close()
    report.rows, report.reception_rows = len(case_rows), len(reception_rows)
    seen: dict[str, int] = {}
    for row in case_rows:
        if row["external"]:
            if row["external"] in seen:
                report.problems.append(f"{row['number_ref']}: 编号 {row['external']} 与第 {seen[row['external']]} 行重复")
            seen.setdefault(row["external"], row["row"])
    if report.problems:
        return report
    existing = _existing_cases([r["external"] for r in case_rows if r["external"]])
    outside = _outside_jurisdiction(user, existing)
    for row in case_rows:
        if row["external"] and row["external"] in existing and existing[row["external"]].id in outside:
            report.problems.append(f"{row['number_ref']}: 编号 {row['external']} 对应的纠纷不在您的管辖范围内，"
                                   f"不能更新")
    if report.problems:
        return report
    new_rows = [r for r in case_rows if not (r["external"] and r["external"] in existing)]
    update_rows = [r for r in case_rows if r["external"] and r["external"] in existing]
    report.created, report.updated = len(new_rows), len(update_rows)
    report.preview = [{"行": r["row"], "编号": r["external"] or "（新编号）", "登记日期": str(r["registered_on"]),
                       "村(社区)": r["village"].name, "纠纷类型": r["dispute_type"],
                       "办理结果": OUTCOMES.get(r["outcome"], "办理中") if r["outcome"] else "办理中"}
                      for r in case_rows[:20]]
    keys = _reception_keys(reception_rows)
    known_keys = _existing_reception_keys(keys)
    report.reception_skipped = sum(1 for k in keys if k in known_keys)
    report.reception_created = len(keys) - report.reception_skipped
    if dry_run:
        return report
    if session.get_bind().dialect.name == "sqlite":
        # The trigram search index makes a big import touch far more pages than SQLite's
        # default 2 MB cache holds; without this it rereads them from the WAL millions of times.
        session.execute(text("PRAGMA cache_size = -262144"))
    deadline_for = _deadline_function()
    _insert_cases(new_rows, lk, filename, deadline_for, user)
    _update_cases(update_rows, existing, filename, deadline_for, user)
    _insert_reception(reception_rows, keys, known_keys, lk, user)
    session.flush()
    from app.audit.services import audit
    audit("ledger.import", "ledger", filename, {"created": report.created, "updated": report.updated,
                                                 "reception": report.reception_created}, user=user)
    return report


class _FastParser(WorkSheetParser):
    """openpyxl's sheet parser with a quick path for inline strings (what openpyxl itself and
    many tools write): their plain text, as ``Text.content`` gives it, without building the
    rich-text objects that cost most of a large ledger's reading time."""

    def parse_cell(self, element):
        if element.get("t") != "inlineStr":
            return super().parse_cell(element)
        coordinate = element.get("r")
        if coordinate:
            row, column = coordinate_to_tuple(coordinate)
            self.col_counter = column
        else:
            self.col_counter += 1
            row, column = self.row_counter, self.col_counter
        value = None
        child = element.find(INLINE_STRING)
        if child is not None:
            plain = child.find(_T_TAG)
            parts = [plain.text or ""] if plain is not None else []
            for run in child.findall(_R_TAG):
                t = run.find(_T_TAG)
                if t is not None:
                    parts.append(t.text or "")
            value = "".join(parts)
        return {"row": row, "column": column, "value": value, "data_type": "s",
                "style_id": int(element.get("s", 0) or 0)}


def _sheet_rows(ws, min_row: int):
    """(row number, values) of every row from ``min_row`` on, like ``iter_rows(values_only=True)``
    (rows missing from the file are skipped; they would be empty anyway)."""
    try:
        source = ws._get_source()
        shared, wb = ws._shared_strings, ws.parent
        parser = _FastParser(source, shared, data_only=True, epoch=wb.epoch, date_formats=wb._date_formats,
                             timedelta_formats=wb._timedelta_formats)
    except AttributeError:  # pragma: no cover - another openpyxl layout: the public, slower path
        yield from enumerate(ws.iter_rows(min_row=min_row, values_only=True), start=min_row)
        return
    with source:
        for number, cells in parser.parse():
            if number < min_row or not cells:
                continue
            values = [None] * max(c["column"] for c in cells)
            for c in cells:
                values[c["column"] - 1] = c["value"]
            yield number, tuple(values)


def _read_sheet(ws, required, optional, parse, lk, report) -> list[dict[str, Any]]:
    columns = _header_map(ws, required, optional, report.problems)
    if any(p.startswith(f"{ws.title}!1:") for p in report.problems):
        return []
    rows = []
    for number, values in _sheet_rows(ws, 2):
        if not values or all(v is None or _text(v) == "" for v in values):
            continue
        parsed = parse(_RowReader(ws.title, number, values, columns, report.problems), lk)
        if parsed is not None:
            rows.append(parsed)
    return rows


# The columns a ledger row carries (what an update compares), and those it reads besides: the
# workflow state that follows from them, changed only when a ledger value really changed.
_LEDGER_FIELDS = ("source", "dispute_type", "township_id", "village_id", "handling_level", "summary",
                  "people_involved", "amount", "registered_on", "risk_level", "responsible_name", "closed_on",
                  "outcome", "agreement_form", "followed_up_on", "performance", "satisfaction", "notes")
_COMPARED = _LEDGER_FIELDS + ("type_category", "county_id", "status", "high_risk_at", "closed_at")
CHUNK = 500


def _existing_cases(numbers: list[str]) -> dict[str, Any]:
    """编号 → the stored case's row (id, number, external number, version and the compared
    columns), matched on the external number first, then on our own number; 500 at a time."""
    t = Case.__table__
    cols = [t.c.id, t.c.number, t.c.external_number, t.c.version] + [t.c[k] for k in _COMPARED]
    found: dict[str, Any] = {}
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start:start + CHUNK]
        for row in session.execute(select(*cols).where(t.c.external_number.in_(chunk))):
            found[row.external_number] = row
        missing = [n for n in chunk if n not in found]
        if missing:
            for row in session.execute(select(*cols).where(t.c.number.in_(missing))):
                found[row.number] = row
    return found


def _outside_jurisdiction(user, existing: dict[str, Any]) -> set[int]:
    """Ids of the matched cases ``user`` may not see (through ``scope_cases``; none for the CLI)."""
    if user is None or not existing:
        return set()
    from app.cases.queries import scope_cases
    ids = sorted({row.id for row in existing.values()})
    visible: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        visible.update(session.scalars(scope_cases(user, select(Case.id)).where(Case.id.in_(chunk))))
    return set(ids) - visible


def _deadline_function():
    """registered_on → deadline by the mediation rule (calendar or working days)."""
    from datetime import timedelta
    try:
        from app.workflow.deadlines import add_working_days, calendar_exceptions, rule_for
    except ImportError:  # pragma: no cover
        return lambda d: d + timedelta(days=30)
    rule = rule_for("mediation")
    if rule["unit"] != "working":
        return lambda d: d + timedelta(days=rule["days"])
    exceptions = calendar_exceptions(date(1990, 1, 1), date(2100, 12, 31))
    return lambda d: add_working_days(d, rule["days"], exceptions)


def _status(row) -> str:
    if row["outcome"] is None:
        return "in_mediation"
    return "declined" if row["outcome"] == "declined" else "closed"


def _case_values(row, deadline_for) -> dict[str, Any]:
    high_at = None
    if row["risk_level"] == "high":
        high_at = datetime.combine(row["registered_on"], time.min, tzinfo=SHANGHAI).astimezone(timezone.utc)
    closed_at = (datetime.combine(row["closed_on"], time(12), tzinfo=SHANGHAI).astimezone(timezone.utc)
                 if row["closed_on"] else None)
    return dict(source=row["source"], dispute_type=row["dispute_type"], type_category=row["type_category"],
                county_id=row["township"].county_id, township_id=row["township"].id, village_id=row["village"].id,
                handling_level=row["handling_level"], status=_status(row), summary=row["summary"],
                people_involved=row["people_involved"], amount=row["amount"], registered_on=row["registered_on"],
                risk_level=row["risk_level"], high_risk_at=high_at, responsible_name=row["responsible_name"],
                deadline_on=deadline_for(row["registered_on"]), closed_on=row["closed_on"], closed_at=closed_at,
                outcome=row["outcome"], agreement_form=row["agreement_form"],
                followed_up_on=row["followed_up_on"], performance=row["performance"],
                satisfaction=row["satisfaction"], notes=row["notes"])


def _ledger_values(row) -> dict[str, Any]:
    """The values of ``_LEDGER_FIELDS`` a parsed row gives."""
    return dict(source=row["source"], dispute_type=row["dispute_type"], township_id=row["township"].id,
                village_id=row["village"].id, handling_level=row["handling_level"], summary=row["summary"],
                people_involved=row["people_involved"], amount=row["amount"], registered_on=row["registered_on"],
                risk_level=row["risk_level"], responsible_name=row["responsible_name"], closed_on=row["closed_on"],
                outcome=row["outcome"], agreement_form=row["agreement_form"],
                followed_up_on=row["followed_up_on"], performance=row["performance"],
                satisfaction=row["satisfaction"], notes=row["notes"])


def _status_after(status: str, outcome: Optional[str]) -> str:
    """A stored case's status once the ledger changed its 办理结果 to ``outcome``: an open case closes
    (or is declined), a closed or archived one stays so, a cleared outcome reopens it."""
    if outcome is None:
        return "in_mediation" if status in ("closed", "archived", "declined") else status
    if outcome == "declined":
        return "declined"
    return status if status in ("closed", "archived") else "closed"


def _ledger_changes(case, row, now: datetime) -> dict[str, Any]:
    """The columns ``row`` changes on the stored ``case``: each ledger field whose value really
    differs, and only then the state that follows from it (category, county, the first 高 time as
    grading does it, status from the outcome, close time from the close date).  An unchanged row
    changes nothing: a workflow case's status, high_risk_at and closed_at are its own."""
    changed = {k: v for k, v in _ledger_values(row).items() if not _same(getattr(case, k), v)}
    if "dispute_type" in changed and case.type_category != row["type_category"]:
        changed["type_category"] = row["type_category"]
    if "township_id" in changed and case.county_id != row["township"].county_id:
        changed["county_id"] = row["township"].county_id
    if "risk_level" in changed and row["risk_level"] == "high" and case.high_risk_at is None:
        changed["high_risk_at"] = now
    if "outcome" in changed:
        status = _status_after(case.status, row["outcome"])
        if status != case.status:
            changed["status"] = status
    if "closed_on" in changed:
        changed["closed_at"] = (datetime.combine(row["closed_on"], time(12), tzinfo=SHANGHAI).astimezone(timezone.utc)
                                if row["closed_on"] else None)
    return changed


def _timeline_note(row, filename: str, updated: bool) -> str:
    note = f"从台账导入（文件 {filename}，第 {row['row']} 行）"
    if updated:
        note = f"按台账更新（文件 {filename}，第 {row['row']} 行）"
    if row["declined_on"]:
        note += f"；不予受理日期 {row['declined_on']}"
    return note


def _reserve_ids(table: str, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table`` (a sequence on PostgreSQL; max+1 under SQLite's write lock)."""
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # ``table`` is one of this module's own table names (never input); the count is bound
        rows = session.execute(text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "  # nosec B608
                                    f"FROM generate_series(1, :n)"), {"n": count}).scalars().all()
        return list(rows)
    start = (session.execute(text(f"SELECT MAX(id) FROM {table}")).scalar() or 0) + 1  # nosec B608 # own table name
    return list(range(start, start + count))


def _insert_cases(rows, lk, filename, deadline_for, user) -> None:
    if not rows:
        return
    by_year = Counter(r["registered_on"].year for r in rows)
    numbers = {year: iter(allocate_many(year, n)) for year, n in by_year.items()}
    ids = _reserve_ids("dispute_case", len(rows))
    now = utcnow()
    cases, parties, timeline, follow_ups = [], [], [], []
    for case_id, row in zip(ids, rows):
        values = _case_values(row, deadline_for)
        registered_at = datetime.combine(row["registered_on"], time(9), tzinfo=SHANGHAI).astimezone(timezone.utc)
        # the last work the ledger knows of (not the import itself, which the timeline records):
        # the high-risk board and the early warnings judge "no recent activity" by it
        worked = [registered_at, values["closed_at"]] + (
            [datetime.combine(row["followed_up_on"], time(12), tzinfo=SHANGHAI).astimezone(timezone.utc)]
            if row["followed_up_on"] else [])
        cases.append(dict(values, id=case_id, number=next(numbers[row["registered_on"].year]),
                          external_number=row["external"], registered_at=registered_at,
                          last_activity_at=max(w for w in worked if w is not None),
                          registered_by_id=getattr(user, "id", None), deadline_extended=False,
                          recurrence_count=0, version=1, updated_at=now))
        for p in row["parties"]:
            parties.append(dict(case_id=case_id, village_id=row["village"].id, position=p["position"], kind="person",
                                name=p["name"],
                                role=p["role"], phone=(p["phone"] if p["phone"] and "*" not in p["phone"] else None)))
        timeline.append(dict(case_id=case_id, at=now, actor_id=getattr(user, "id", None),
                             actor_name=getattr(user, "display_name", None), action="import", from_status=None,
                             to_status=values["status"], note=_timeline_note(row, filename, False)))
        if row["followed_up_on"] or row["performance"] or row["satisfaction"]:
            follow_ups.append(dict(case_id=case_id, visited_on=row["followed_up_on"] or row["closed_on"] or row["registered_on"],
                                   performance=row["performance"], satisfaction=row["satisfaction"],
                                   notes="从台账导入", created_at=now))
    order = [(Case.__table__, cases), (Party.__table__, parties)]
    if session.get_bind().dialect.name == "sqlite":
        # Parties first, so the search trigger of each case indexes its names once, instead of
        # the case and then each party rewriting its search row (foreign keys checked at commit).
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
        order.reverse()
    for table, values in order + [(TimelineEntry.__table__, timeline), (FollowUp.__table__, follow_ups)]:
        for start in range(0, len(values), BATCH):
            session.execute(insert(table), values[start:start + BATCH])


def _update_cases(rows, existing: dict[str, Any], filename, deadline_for, user) -> None:
    """Apply ledger rows to the cases they name, in bulk: parties and follow-ups of the cases are
    read 500 cases at a time, and the changes go out as executemany UPDATEs/INSERTs, so a
    re-import costs a few statements per 500 rows instead of several per row.

    Per case, as an edit through the ORM would: the ledger fields whose value really changed are
    set, with only the state that follows from them (``_ledger_changes``; the deadline is kept),
    ``version`` goes up by one (checked, like the ORM's version counter) and ``updated_at`` is
    now; parties are renamed/replaced by position and a masked phone never overwrites a stored
    one; a follow-up is added when its date is new; a timeline entry lists the changed fields.
    A row that changes nothing leaves its case exactly as it was (no version, no timeline entry)."""
    if not rows:
        return
    session.flush()
    now = utcnow()
    actor_id, actor_name = getattr(user, "id", None), getattr(user, "display_name", None)
    ids = [existing[r["external"]].id for r in rows]
    parties_of: dict[int, list[Any]] = {}
    follow_up_dates: set[tuple[int, date]] = set()
    pt, ft = Party.__table__, FollowUp.__table__
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        for p in session.execute(select(pt.c.id, pt.c.case_id, pt.c.position, pt.c.name, pt.c.role, pt.c.phone)
                                 .where(pt.c.case_id.in_(chunk)).order_by(pt.c.case_id, pt.c.position, pt.c.id)):
            parties_of.setdefault(p.case_id, []).append(p)
        follow_up_dates.update(session.execute(select(ft.c.case_id, ft.c.visited_on)
                                               .where(ft.c.case_id.in_(chunk))).all())
    case_updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    party_updates, party_inserts, follow_ups, timeline = [], [], [], []
    for row in rows:
        case = existing[row["external"]]
        changed = _ledger_changes(case, row, now)
        sets = dict(changed)
        if case.external_number is None and case.number != row["external"]:
            sets["external_number"] = row["external"]
        current = parties_of.get(case.id, [])
        for p in row["parties"]:
            match = current[p["position"]] if p["position"] < len(current) else None
            phone = p["phone"] if p["phone"] and "*" not in p["phone"] else None
            if match is None:
                # the row's village is the case's once the case updates below (which run first) are done
                party_inserts.append(dict(case_id=case.id, village_id=row["village"].id, position=p["position"],
                                          kind="person", name=p["name"],
                                          role=p["role"], phone=phone))
                changed.setdefault("parties", True)
                continue
            new = (p["name"], p["role"], phone if phone and match.phone != phone else match.phone)
            if new != (match.name, match.role, match.phone):
                party_updates.append(dict(b_id=match.id, name=new[0], role=new[1], phone=new[2]))
                changed.setdefault("parties", True)
        if "followed_up_on" in changed and row["followed_up_on"] and \
                (case.id, row["followed_up_on"]) not in follow_up_dates:
            follow_ups.append(dict(case_id=case.id, visited_on=row["followed_up_on"], performance=row["performance"],
                                   satisfaction=row["satisfaction"], notes="从台账导入", created_at=now))
            follow_up_dates.add((case.id, row["followed_up_on"]))
        if sets or changed:
            key = tuple(sorted(sets))
            case_updates.setdefault(key, []).append(dict({f"v_{k}": v for k, v in sets.items()},
                                                         b_id=case.id, b_version=case.version))
        if changed:
            status = changed.get("status", case.status)
            timeline.append(dict(case_id=case.id, at=now, actor_id=actor_id, actor_name=actor_name, action="import",
                                 from_status=case.status if status != case.status else None, to_status=status,
                                 note=_timeline_note(row, filename, True), data={"fields": sorted(changed)}))
    ct = Case.__table__
    for key, params in case_updates.items():
        stmt = (update(ct).where(ct.c.id == bindparam("b_id"), ct.c.version == bindparam("b_version"))
                .values({**{k: bindparam(f"v_{k}") for k in key}, "version": ct.c.version + 1, "updated_at": now}))
        for start in range(0, len(params), BATCH):
            batch = params[start:start + BATCH]
            result = session.execute(stmt, batch)
            if session.get_bind().dialect.supports_sane_multi_rowcount and result.rowcount not in (-1, len(batch)):
                raise StaleDataError("a case changed while the ledger was being imported; import again")
    if party_updates:
        values = {"name": bindparam("name"), "role": bindparam("role"), "phone": bindparam("phone")}
        if "phone_hash" in pt.c:  # an encrypted phone's lookup hash moves with it (app.crypto)
            from app.crypto import lookup_hash
            values["phone_hash"] = bindparam("phone_hash")
            for params in party_updates:
                params["phone_hash"] = lookup_hash("phone", params["phone"])
        stmt = update(pt).where(pt.c.id == bindparam("b_id")).values(values)
        for start in range(0, len(party_updates), BATCH):
            session.execute(stmt, party_updates[start:start + BATCH])
    for table, values in ((pt, party_inserts), (ft, follow_ups), (TimelineEntry.__table__, timeline)):
        for start in range(0, len(values), BATCH):
            session.execute(insert(table), values[start:start + BATCH])
    # Cases and parties already in the session were changed behind its back: reload them on next use.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, (Case, Party)):
            session.expire(obj)


def _same(stored: Any, new: Any) -> bool:
    """Equality that ignores whether a datetime came back from the database naive (SQLite) or aware."""
    if isinstance(stored, datetime) and isinstance(new, datetime):
        as_utc = lambda d: d.replace(tzinfo=None) if d.tzinfo is None else d.astimezone(timezone.utc).replace(tzinfo=None)
        return as_utc(stored) == as_utc(new)
    return stored == new


def _reception_keys(rows) -> list[str]:
    occurrences: Counter = Counter()
    keys = []
    for row in rows:
        base = "|".join(str(row[k]) for k in ("received_on", "visitor", "headcount", "handling", "matter", "notes")) \
            + "|" + row["township"].code
        occurrences[base] += 1
        keys.append(hashlib.sha256(f"{base}#{occurrences[base]}".encode()).hexdigest())
    return keys


def _existing_reception_keys(keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        found.update(session.scalars(select(ReceptionEntry.import_key)
                                     .where(ReceptionEntry.import_key.in_(keys[start:start + 500]))))
    return found


def _insert_reception(rows, keys, known, lk, user) -> None:
    values = []
    for row, key in zip(rows, keys):
        if key in known:
            continue
        township = row["township"]
        received_at = datetime.combine(row["received_on"], time(9), tzinfo=SHANGHAI).astimezone(timezone.utc)
        values.append(dict(centre_id=township.id, county_id=township.county_id, township_id=township.id,
                           village_id=None, received_at=received_at, received_on=row["received_on"],
                           visitor_names=row["visitor"], headcount=row["headcount"], matter=row["matter"] or "—",
                           handling=row["handling"], notes=row["notes"], recorded_by_id=getattr(user, "id", None),
                           import_key=key))
    for start in range(0, len(values), BATCH):
        session.execute(insert(ReceptionEntry.__table__), values[start:start + BATCH])
