"""Registering a dispute (登记): the one service the registration page, the reception desk and
``POST /api/v1/cases`` all call.

``prepare_intake`` validates and normalises the intake body of PRODUCT.md §10 (errors keyed by
field, ``parties.N.field`` for party rows); ``possible_duplicates`` lists cases it may repeat;
``register_case`` saves it: number, status 待研判, handling level from the registrar's level,
deadline from the mediation setting, a timeline entry and an audit record.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import select

from app.accounts.models import User
from app.accounts.roles import COUNTY_ROLES, TOWNSHIP_ROLES
from app.audit.services import audit
from app.cases import vocab
from app.cases.models import Case, Party, TimelineEntry
from app.cases.numbering import next_case_number
from app.cases.queries import find_possible_duplicates, village_in_jurisdiction
from app.cases.validators import (FieldError, clean_amount, clean_id_number, clean_past_date,
                                  clean_people, clean_phone)
from app.db import session, utcnow
from app.errors import PermissionDenied, ValidationFailed
from app.orgs.models import OrgUnit
from app.settings.services import active_sources, get_setting, resolve_type
from app.templating import today_local

MAX_PARTIES = 50
TEXT_LIMITS = {"summary": 4000, "claims": 2000}
PARTY_TEXT_LIMITS = {"name": 100, "address": 200, "agent": 100}


@dataclass
class PartyData:
    kind: str
    name: str
    role: str
    gender: Optional[str] = None
    id_type: Optional[str] = None
    id_number: Optional[str] = None
    phone: Optional[str] = None
    address: Optional[str] = None
    agent: Optional[str] = None


@dataclass
class IntakeData:
    """A validated intake body, ready to save."""

    source: str
    dispute_type: str
    type_category: str
    village: OrgUnit
    grid: Optional[OrgUnit]
    summary: str
    claims: Optional[str]
    people_involved: Optional[int]
    amount: Optional[Decimal]
    occurred_on: Optional[date]
    parties: list[PartyData] = field(default_factory=list)

    @property
    def id_numbers(self) -> list[str]:
        return sorted({p.id_number for p in self.parties if p.id_number})

    @property
    def phones(self) -> list[str]:
        return sorted({p.phone for p in self.parties if p.phone})


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _code(vocabulary: dict[str, str], value: Any) -> Optional[str]:
    """A vocabulary code from a code or its Chinese label."""
    v = _text(value)
    if not v:
        return None
    if v in vocabulary:
        return v
    return vocab.code_for(vocabulary, v)


def is_blank_party(row: dict) -> bool:
    """A party row the registrar left empty (the form always shows two)."""
    return not any(_text(row.get(k)) for k in ("name", "id_number", "phone", "address", "agent"))


def _clean_party(row: dict, n: int, today: date, errors: dict[str, str]) -> Optional[PartyData]:
    key = f"parties.{n}."
    kind = _code(vocab.PARTY_KINDS, row.get("kind")) or "person"
    if _text(row.get("kind")) and _code(vocab.PARTY_KINDS, row.get("kind")) is None:
        errors[key + "kind"] = "当事人类别应为“个人”或“单位”。"
    name = _text(row.get("name"))
    if not name:
        errors[key + "name"] = "请填写当事人姓名或单位名称。"
    role = _code(vocab.PARTY_ROLES, row.get("role"))
    if role is None:
        errors[key + "role"] = "请选择当事人角色（申请人、被申请人或第三人）。"
    gender = None
    if _text(row.get("gender")):
        gender = _code(vocab.GENDERS, row.get("gender"))
        if gender is None:
            errors[key + "gender"] = "性别应为“男”或“女”。"
    id_number = _text(row.get("id_number")) or None
    id_type = _code(vocab.ID_TYPES, row.get("id_type"))
    if _text(row.get("id_type")) and id_type is None:
        errors[key + "id_type"] = "证件类型应为“居民身份证”或“其他证件”。"
    if id_number and id_type is None:
        id_type = "resident_id" if kind == "person" else "other"
    if id_number and id_type == "resident_id":
        try:
            id_number = clean_id_number(id_number, today)
        except FieldError as exc:
            errors[key + "id_number"] = str(exc)
    elif id_number and len(id_number) > 32:
        errors[key + "id_number"] = "证件号码过长（最多32个字符）。"
    if not id_number:
        id_type = None
    try:
        phone = clean_phone(row.get("phone"))
    except FieldError as exc:
        errors[key + "phone"] = str(exc)
        phone = None
    texts = {}
    for name_, limit in PARTY_TEXT_LIMITS.items():
        texts[name_] = _text(row.get(name_)) or None
        if texts[name_] and len(texts[name_]) > limit:
            errors[key + name_] = f"最多{limit}个字。"
    if any(k.startswith(key) for k in errors):
        return None
    return PartyData(kind=kind, name=name, role=role, gender=gender, id_type=id_type,
                     id_number=id_number, phone=phone, address=texts["address"], agent=texts["agent"])


def prepare_intake(user: User, data: dict[str, Any], today: Optional[date] = None) -> IntakeData:
    """Validate and normalise an intake body; ``ValidationFailed`` with a Chinese message per
    field, ``PermissionDenied`` when the user's role may not register cases."""
    if not user.can("cases.register"):
        raise PermissionDenied("您的角色不能登记纠纷。")
    today = today or today_local()
    errors: dict[str, str] = {}

    source = _text(data.get("source"))
    if not source:
        errors["source"] = "请选择纠纷来源。"
    elif source not in active_sources():
        errors["source"] = f"来源“{source}”不在来源列表中。"
    dtype = resolve_type(_text(data.get("type")))
    if not _text(data.get("type")):
        errors["type"] = "请选择纠纷类型。"
    elif dtype is None or not dtype.active:
        errors["type"] = f"纠纷类型“{_text(data.get('type'))}”不在类型列表中。"

    village = grid = None
    village_code = _text(data.get("village"))
    if not village_code:
        errors["village"] = "请选择纠纷发生的村（社区）。"
    else:
        village = village_in_jurisdiction(user, village_code)
        if village is None:
            errors["village"] = "该村（社区）不存在或不在您的管辖范围内。"
    grid_code = _text(data.get("grid"))
    if village is not None and grid_code:
        grid = session.scalar(select(OrgUnit).where(OrgUnit.code == grid_code, OrgUnit.level == "grid",
                                                    OrgUnit.parent_id == village.id))
        if grid is None:
            errors["grid"] = "所选网格不属于该村（社区）。"
    elif village is not None and user.role == "grid_worker" and user.org.level == "grid":
        grid = user.org

    summary = _text(data.get("summary"))
    if not summary:
        errors["summary"] = "请填写纠纷简要情况。"
    claims = _text(data.get("claims")) or None
    for name, limit in TEXT_LIMITS.items():
        value = summary if name == "summary" else claims
        if value and len(value) > limit:
            errors[name] = f"最多{limit}个字。"

    people = amount = occurred_on = None
    try:
        people = clean_people(data.get("people_involved"))
    except FieldError as exc:
        errors["people_involved"] = str(exc)
    try:
        amount = clean_amount(data.get("amount"))
    except FieldError as exc:
        errors["amount"] = str(exc)
    try:
        occurred_on = clean_past_date(data.get("occurred_on"), today, "纠纷发生日期")
    except FieldError as exc:
        errors["occurred_on"] = str(exc)

    rows = data.get("parties") or []
    if not isinstance(rows, list):
        rows = []
    # Rows keep their index in the submitted list so errors point at the right row.
    filled = [(n, r) for n, r in enumerate(rows) if isinstance(r, dict) and not is_blank_party(r)]
    parties: list[PartyData] = []
    if not filled:
        errors["parties"] = "至少填写一名当事人（姓名和角色）。"
    elif len(filled) > MAX_PARTIES:
        errors["parties"] = f"当事人最多{MAX_PARTIES}名。"
    for n, row in filled[:MAX_PARTIES]:
        party = _clean_party(row, n, today, errors)
        if party:
            parties.append(party)

    if errors:
        raise ValidationFailed(errors=errors)
    return IntakeData(source=source, dispute_type=dtype.name, type_category=dtype.category,
                      village=village, grid=grid, summary=summary, claims=claims,
                      people_involved=people, amount=amount, occurred_on=occurred_on, parties=parties)


def possible_duplicates(user: User, intake: IntakeData, today: Optional[date] = None) -> list[Case]:
    """Cases in the user's jurisdiction that may be this dispute again (§ issue 3)."""
    return find_possible_duplicates(user, intake.village.id, intake.dispute_type, intake.id_numbers,
                                    intake.phones, today or today_local())


def handling_level_of(user: User) -> str:
    """The level a case starts at: the registrar's own level (村级/乡镇级/县级)."""
    if user.role in COUNTY_ROLES:
        return "county"
    if user.role in TOWNSHIP_ROLES:
        return "township"
    return "village"


def mediation_deadline(start: date) -> date:
    """``start`` plus the mediation limit: the workflow's working-day calendar when it exists,
    calendar days of the ``deadline.mediation`` setting otherwise."""
    try:
        deadlines = importlib.import_module("app.workflow.deadlines")
    except ModuleNotFoundError:
        deadlines = None
    add_days = getattr(deadlines, "add_days", None)
    if add_days is not None:
        return add_days(start, "mediation")
    setting = get_setting("deadline.mediation") or {"days": 30}
    days = setting.get("days", 30) if isinstance(setting, dict) else int(setting)
    return start + timedelta(days=int(days))


def register_case(user: User, data: dict[str, Any] | IntakeData, reception_entry=None) -> Case:
    """Register a dispute: validate, check jurisdiction, number it, status 待研判, deadline,
    timeline entry "register" and audit record; flushes (the caller commits).  When it comes
    from a reception entry, the entry is linked to the case."""
    intake = data if isinstance(data, IntakeData) else prepare_intake(user, data)
    today = today_local()
    village = intake.village
    case = Case(
        number=next_case_number(today.year),
        source=intake.source, dispute_type=intake.dispute_type, type_category=intake.type_category,
        county_id=village.county_id, township_id=village.township_id, village_id=village.id,
        grid_id=intake.grid.id if intake.grid else None,
        handling_level=handling_level_of(user), status="pending_triage",
        summary=intake.summary, claims=intake.claims, people_involved=intake.people_involved,
        amount=intake.amount, occurred_on=intake.occurred_on,
        registered_on=today, registered_at=utcnow(), registered_by_id=user.id,
        deadline_on=mediation_deadline(today),
    )
    for position, p in enumerate(intake.parties):
        case.parties.append(Party(position=position, kind=p.kind, name=p.name, role=p.role, gender=p.gender,
                                  id_type=p.id_type, id_number=p.id_number, phone=p.phone,
                                  address=p.address, agent=p.agent))
    case.timeline.append(TimelineEntry(actor_id=user.id, actor_name=user.display_name, action="register",
                                       to_status="pending_triage",
                                       note=f"登记（{intake.source}）",
                                       data={"reception_entry_id": getattr(reception_entry, "id", None)}
                                       if reception_entry is not None else None))
    session.add(case)
    session.flush()
    if reception_entry is not None:
        reception_entry.case_id = case.id
        reception_entry.handling = "registered"
    audit("case.register", "case", case.number, {"source": intake.source, "type": intake.dispute_type},
          user=user)
    session.flush()
    return case
