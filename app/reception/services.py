"""The reception log (来访登记) of a centre: recording visits, the centre's list and its day
and month counts (§6 接待人次 = sum of head-counts; 直接答复 = entries answered on the spot).

Entries are scoped like cases: county staff see the county's entries, township staff their
township's, village staff their village's."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional

from sqlalchemy import Select, and_, case as sql_case, false, func, or_, select

from app.accounts.models import User
from app.accounts.roles import COUNTY_ROLES, TOWNSHIP_ROLES, VILLAGE_ROLES
from app.audit.services import audit
from app.cases.validators import FieldError, clean_phone
from app.cases.vocab import RECEPTION_HANDLING
from app.db import session
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.orgs.models import OrgUnit
from app.reception.models import ReceptionEntry
from app.templating import SHANGHAI, today_local

PAGE_SIZE = 50


def reception_clause(user: User):
    """The WHERE clause limiting reception entries to the user's jurisdiction."""
    org = user.org
    if user.role in COUNTY_ROLES:
        return ReceptionEntry.county_id == (org.county_id or org.id)
    if user.role in TOWNSHIP_ROLES:
        return ReceptionEntry.township_id == org.township_id
    if user.role in VILLAGE_ROLES:
        return ReceptionEntry.village_id == org.village_id
    return false()


def scope_entries(user: User, stmt: Optional[Select] = None) -> Select:
    return (stmt if stmt is not None else select(ReceptionEntry)).where(reception_clause(user))


def get_visible_entry(user: User, entry_id: int) -> ReceptionEntry:
    entry = session.scalar(scope_entries(user).where(ReceptionEntry.id == entry_id))
    if entry is None:
        raise NotFound()
    return entry


def departments_for(user: User) -> list[OrgUnit]:
    """Departments a centre may transfer a visitor to: its township's and the county's."""
    org = user.org
    county_id = org.county_id or org.id
    parents = [county_id] + ([org.township_id] if org.township_id else [])
    stmt = select(OrgUnit).where(OrgUnit.level == "department", OrgUnit.active)
    if user.role in COUNTY_ROLES:
        stmt = stmt.where(OrgUnit.county_id == county_id)
    else:
        stmt = stmt.where(OrgUnit.parent_id.in_(parents))
    return list(session.scalars(stmt.order_by(OrgUnit.code)))


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()


def _parse_local_datetime(value: str) -> datetime:
    value = value.strip().replace(" ", "T")
    local = datetime.fromisoformat(value)
    if local.tzinfo is None:
        local = local.replace(tzinfo=SHANGHAI)
    return local


def record_visit(user: User, data: dict[str, Any]) -> ReceptionEntry:
    """Record a visit at the user's centre; ``ValidationFailed`` with per-field messages."""
    if not user.can("reception"):
        raise PermissionDenied("您的角色不能进行来访登记。")
    errors: dict[str, str] = {}
    now = datetime.now(SHANGHAI)
    received_at = now
    if _text(data.get("received_at")):
        try:
            received_at = _parse_local_datetime(_text(data["received_at"]))
            if received_at > now + timedelta(minutes=5):
                errors["received_at"] = "来访时间不能晚于现在。"
        except ValueError:
            errors["received_at"] = "来访时间格式应为 YYYY-MM-DD HH:MM。"
    names = _text(data.get("visitor_names"))
    if not names:
        errors["visitor_names"] = "请填写来访人姓名。"
    elif len(names) > 200:
        errors["visitor_names"] = "最多200个字。"
    headcount = 1
    try:
        headcount = int(_text(data.get("headcount")) or 1)
        if headcount < 1 or headcount > 10000:
            raise ValueError
    except ValueError:
        errors["headcount"] = "来访人数应为不小于1的整数。"
    phone = None
    try:
        phone = clean_phone(data.get("phone"))
    except FieldError as exc:
        errors["phone"] = str(exc)
    matter = _text(data.get("matter"))
    if not matter:
        errors["matter"] = "请填写来访事由。"
    handling = _text(data.get("handling"))
    if handling not in RECEPTION_HANDLING:
        errors["handling"] = "请选择处理方式。"
    department_id = None
    if handling == "transferred":
        dept = _text(data.get("department"))
        allowed = {str(d.id): d for d in departments_for(user)}
        if not dept:
            errors["department"] = "转办时请选择承办部门。"
        elif dept not in allowed:
            errors["department"] = "所选部门不在可转办的范围内。"
        else:
            department_id = allowed[dept].id
    if errors:
        raise ValidationFailed(errors=errors)
    org = user.org
    entry = ReceptionEntry(
        centre_id=org.id, county_id=org.county_id or org.id, township_id=org.township_id,
        village_id=org.village_id, received_at=received_at.astimezone(timezone.utc), received_on=received_at.astimezone(SHANGHAI).date(),
        visitor_names=names, headcount=headcount, phone=phone, matter=matter, handling=handling,
        department_id=department_id, notes=_text(data.get("notes")) or None, recorded_by_id=user.id)
    session.add(entry)
    session.flush()
    audit("reception.record", "reception_entry", entry.id, {"handling": handling}, user=user)
    return entry


@dataclass
class ReceptionFilters:
    date_from: Optional[date] = None
    date_to: Optional[date] = None
    handling: Optional[str] = None
    q: Optional[str] = None

    @classmethod
    def from_args(cls, args) -> "ReceptionFilters":
        def d(name):
            try:
                return date.fromisoformat(args.get(name, "").strip()) if args.get(name, "").strip() else None
            except ValueError:
                return None
        handling = args.get("handling", "").strip()
        return cls(d("from"), d("to"), handling if handling in RECEPTION_HANDLING else None,
                   args.get("q", "").strip() or None)

    def as_args(self) -> dict[str, str]:
        out = {"from": self.date_from and self.date_from.isoformat(), "to": self.date_to and self.date_to.isoformat(),
               "handling": self.handling, "q": self.q}
        return {k: v for k, v in out.items() if v}


def list_entries(user: User, filters: ReceptionFilters, before_id: Optional[int] = None,
                 limit: int = PAGE_SIZE) -> tuple[list[ReceptionEntry], Optional[int]]:
    """Newest entries first, keyset by id; returns the page and the id to continue before."""
    stmt = scope_entries(user)
    if filters.date_from:
        stmt = stmt.where(ReceptionEntry.received_on >= filters.date_from)
    if filters.date_to:
        stmt = stmt.where(ReceptionEntry.received_on <= filters.date_to)
    if filters.handling:
        stmt = stmt.where(ReceptionEntry.handling == filters.handling)
    if filters.q:
        pattern = "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(ReceptionEntry.visitor_names.like(pattern, escape="\\"),
                              ReceptionEntry.matter.like(pattern, escape="\\")))
    if before_id:
        stmt = stmt.where(ReceptionEntry.id < before_id)
    rows = list(session.scalars(stmt.order_by(ReceptionEntry.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


@dataclass
class ReceptionCounts:
    day_visitors: int
    day_direct: int
    month_visitors: int
    month_direct: int


def reception_counts(user: User, today: Optional[date] = None) -> ReceptionCounts:
    """Visitors (sum of head-counts) and direct answers of the day and of the month."""
    today = today or today_local()
    first = today.replace(day=1)
    is_today = ReceptionEntry.received_on == today
    direct = ReceptionEntry.handling == "direct_answer"
    stmt = scope_entries(user, select(
        func.coalesce(func.sum(sql_case((is_today, ReceptionEntry.headcount), else_=0)), 0),
        func.coalesce(func.sum(sql_case((and_(is_today, direct), 1), else_=0)), 0),
        func.coalesce(func.sum(ReceptionEntry.headcount), 0),
        func.coalesce(func.sum(sql_case((direct, 1), else_=0)), 0),
    )).where(ReceptionEntry.received_on >= first, ReceptionEntry.received_on <= today)
    row = session.execute(stmt).one()
    return ReceptionCounts(*(int(v) for v in row))
