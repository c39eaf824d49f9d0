"""Screening verbs (联排清底): filing a village's sweep for a period, with the disputes it
found registered as cases (source 排查发现) or an explicit 零报告; and the 民转刑 flags.

Services only flush; the route commits once.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.accounts.roles import COUNTY_ROLES, TOWNSHIP_ROLES
from app.audit.services import audit
from app.cases.models import Case, TimelineEntry
from app.db import session
from app.errors import PermissionDenied, ValidationFailed
from app.orgs.models import OrgUnit
from app.screening.models import Sweep, SweepFinding
from app.settings.services import get_setting
from app.templating import today_local

SWEEP_SOURCE = "排查发现"
# Checkbox choices for who took part; free text adds the rest (names, departments).
PARTICIPANT_KINDS = ["网格员", "村干部", "村调解员", "乡镇干部", "司法所", "派出所", "其他部门"]
MAX_FINDINGS = 20


def period_of(day: date, kind: Optional[str] = None) -> tuple[date, date]:
    """The screening period containing ``day``: its ISO week (Monday–Sunday) when the setting
    ``screening.period`` is "weekly", otherwise its calendar month."""
    kind = kind or get_setting("screening.period") or "monthly"
    if kind == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def previous_periods(day: date, count: int = 12) -> list[tuple[date, date]]:
    """The period containing ``day`` and the ``count - 1`` before it, newest first."""
    periods = []
    for _ in range(count):
        start, end = period_of(day)
        periods.append((start, end))
        day = start - timedelta(days=1)
    return periods


def villages_in(org: OrgUnit) -> Any:
    """A SELECT of the active villages in ``org`` (a county, township or village)."""
    stmt = select(OrgUnit).where(OrgUnit.level == "village", OrgUnit.active.is_(True))
    if org.level == "county":
        return stmt.where(OrgUnit.county_id == org.id)
    if org.level == "township":
        return stmt.where(OrgUnit.township_id == org.id)
    if org.level == "village":
        return stmt.where(OrgUnit.id == org.id)
    if org.level == "grid":
        return stmt.where(OrgUnit.id == org.parent_id)
    return stmt.where(OrgUnit.id.is_(None))


def home_org(user: User) -> Optional[OrgUnit]:
    """The org whose villages ``user`` sees in screening: county, township or own village."""
    org = user.org
    if user.role in COUNTY_ROLES:
        return org if org.level == "county" else session.get(OrgUnit, org.county_id)
    if user.role in TOWNSHIP_ROLES:
        return org if org.level == "township" else session.get(OrgUnit, org.township_id)
    if user.role == "village_mediator":
        return org
    if user.role == "grid_worker":
        return org if org.level == "village" else session.get(OrgUnit, org.parent_id)
    return None


def org_visible(user: User, org: OrgUnit) -> bool:
    """Whether ``org`` lies within the user's screening home org."""
    home = home_org(user)
    if home is None:
        return False
    if home.level == "county":
        return org.id == home.id or org.county_id == home.id
    if home.level == "township":
        return org.id == home.id or org.township_id == home.id
    return org.id == home.id


def coverage(org_unit: OrgUnit, date_from: date, date_to: date) -> tuple[int, int]:
    """排查覆盖率 parts for §6: (villages in ``org_unit`` with a sweep record — 零报告 included —
    whose period overlaps ``date_from``..``date_to``, all villages in ``org_unit``)."""
    villages = villages_in(org_unit).subquery()
    total = session.scalar(select(func.count()).select_from(villages)) or 0
    covered = session.scalar(
        select(func.count(Sweep.village_id.distinct())).where(
            Sweep.village_id.in_(select(villages.c.id)),
            Sweep.period_start <= date_to, Sweep.period_end >= date_from)) or 0
    return covered, total


@dataclass
class SweepInput:
    """A sweep submission, cleaned: who, how many households, found disputes or 零报告."""
    swept_on: date
    nil_report: bool
    households_visited: Optional[int]
    participants: list[str] = field(default_factory=list)
    notes: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)


def clean_sweep(data: dict[str, Any], today: date) -> SweepInput:
    """Validate a sweep body; errors keyed by field (``findings.N.field`` for dispute rows)."""
    errors: dict[str, str] = {}
    swept_on = data.get("swept_on") or today
    if isinstance(swept_on, str):
        try:
            swept_on = date.fromisoformat(swept_on.strip())
        except ValueError:
            errors["swept_on"] = "排查日期格式应为 年-月-日。"
            swept_on = today
    if isinstance(swept_on, datetime):
        swept_on = swept_on.date()
    if swept_on > today:
        errors["swept_on"] = "排查日期不能晚于今天。"
    households = data.get("households_visited")
    if households in (None, ""):
        households = None
    else:
        try:
            households = int(str(households).strip())
            if households < 0 or households > 100000:
                raise ValueError
        except ValueError:
            errors["households_visited"] = "走访户数应为 0 或正整数。"
            households = None
    participants = [p.strip() for p in (data.get("participants") or []) if p and p.strip()]
    extra = (data.get("participants_other") or "").strip()
    if extra:
        participants += [p.strip() for p in extra.replace("，", ",").replace("、", ",").split(",") if p.strip()]
    if not participants:
        errors["participants"] = "请勾选或填写参加排查的人员。"
    findings = [f for f in (data.get("findings") or [])
                if isinstance(f, dict) and any(str(v or "").strip() for k, v in f.items() if k != "type")]
    nil_report = bool(data.get("nil_report"))
    if nil_report and findings:
        errors["nil_report"] = "已填写排查发现的纠纷，不能同时报零报告。"
    elif not nil_report and not findings:
        errors["nil_report"] = "没有发现纠纷时，请勾选“零报告”；发现纠纷时，请逐条填写。"
    if len(findings) > MAX_FINDINGS:
        errors["findings"] = f"一次最多上报{MAX_FINDINGS}条纠纷。"
    if errors:
        raise ValidationFailed(errors=errors)
    return SweepInput(swept_on=swept_on, nil_report=nil_report, households_visited=households,
                      participants=participants, notes=(data.get("notes") or "").strip(), findings=findings)


def _intake_body(finding: dict[str, Any], village: OrgUnit) -> dict[str, Any]:
    party = {"kind": "person", "name": (finding.get("party_name") or "").strip(), "role": "申请人",
             "phone": (finding.get("party_phone") or "").strip() or None,
             "id_number": (finding.get("party_id_number") or "").strip() or None}
    parties = [party]
    other = (finding.get("other_party") or "").strip()
    if other:
        parties.append({"kind": "person", "name": other, "role": "被申请人"})
    return {"source": SWEEP_SOURCE, "type": finding.get("type"), "village": village.code,
            "summary": (finding.get("summary") or "").strip(),
            "people_involved": finding.get("people_involved") or None, "parties": parties}


def sweep_village(user: User) -> OrgUnit:
    """The village a filer sweeps: a village mediator's own, a grid worker's grid's village."""
    org = home_org(user)
    if org is None or org.level != "village" or not user.can("screening.file"):
        raise PermissionDenied()
    return org


def file_sweep(user: User, data: dict[str, Any]) -> tuple[Sweep, list[Case]]:
    """File (or add to) the sweep of the user's village for the period containing the sweep
    date.  Each found dispute is registered as a case (source 排查发现) and linked to the sweep;
    a sweep without findings must be an explicit 零报告.  A second filing in the same period
    adds participants, households and findings to the first one (one record per village and
    period)."""
    from app.cases.intake import register_case

    village = sweep_village(user)
    today = today_local()
    clean = clean_sweep(data, today)
    start, end = period_of(clean.swept_on)

    cases: list[Case] = []
    errors: dict[str, str] = {}
    for n, finding in enumerate(clean.findings):
        try:
            cases.append(register_case(user, _intake_body(finding, village)))
        except ValidationFailed as exc:
            for key, msg in exc.errors.items():
                key = {"parties.0.name": "party_name", "parties.0.phone": "party_phone",
                       "parties.0.id_number": "party_id_number", "parties": "party_name"}.get(key, key)
                errors[f"findings.{n}.{key}"] = f"第{n + 1}条纠纷：{msg}"
    if errors:
        raise ValidationFailed(errors=errors)

    sweep, created = _get_or_create_sweep(village, start, end, clean.swept_on, user)
    sweep.swept_on = max(sweep.swept_on, clean.swept_on)
    known = [p for p in (sweep.participants or "").split("、") if p]
    sweep.participants = "、".join(known + [p for p in clean.participants if p not in known])
    if clean.households_visited is not None:
        # A second filing in the period visited more households: add them up.
        sweep.households_visited = (clean.households_visited if created
                                    else (sweep.households_visited or 0) + clean.households_visited)
    if clean.notes:
        sweep.notes = f"{sweep.notes}\n{clean.notes}" if sweep.notes else clean.notes
    for case in cases:
        session.add(SweepFinding(sweep_id=sweep.id, case_id=case.id))
    has_findings = bool(cases) or bool(session.scalar(
        select(SweepFinding.id).where(SweepFinding.sweep_id == sweep.id).limit(1)))
    sweep.nil_report = not has_findings
    session.flush()
    audit("sweep.file", "sweep", sweep.id, {"village": village.code, "period": start.isoformat(),
                                             "nil_report": sweep.nil_report,
                                             "cases": [c.number for c in cases]}, user=user)
    return sweep, cases


def _get_or_create_sweep(village: OrgUnit, start: date, end: date, swept_on: date,
                         user: User) -> tuple[Sweep, bool]:
    """The village's sweep for the period, created when missing; a concurrent insert of the
    same (village, period) loses the unique constraint race and re-reads the winner's row."""
    stmt = select(Sweep).where(Sweep.village_id == village.id, Sweep.period_start == start)
    sweep = session.scalar(stmt)
    if sweep is not None:
        return sweep, False
    sweep = Sweep(village_id=village.id, township_id=village.township_id, county_id=village.county_id,
                  period_start=start, period_end=end, swept_on=swept_on, nil_report=True,
                  filed_by_id=user.id, participants="")
    try:
        with session.begin_nested():
            session.add(sweep)
            session.flush()
    except IntegrityError:
        return session.scalar(stmt), False
    return sweep, True


# County and township staff who handle cases; the admin and the county leader are read-only
# (PRODUCT.md §1) and may not mark cases.
CRIMINAL_FLAG_ROLES = (COUNTY_ROLES | TOWNSHIP_ROLES) - {"admin", "county_leader"}


def can_flag_criminal(user: User) -> bool:
    return user.role in CRIMINAL_FLAG_ROLES


def flag_criminal(user: User, case: Case, kind: str, on: Optional[date], ref: str = "",
                  note: str = "") -> Case:
    """Mark ``case`` as 民转刑 (turned criminal, with the police case reference) or as
    防止民转刑 (prevented), or clear both (``kind`` "clear"); timeline entry and audit record."""
    if not can_flag_criminal(user):
        raise PermissionDenied()
    today = today_local()
    on = on or today
    errors = {}
    if kind not in ("turned", "prevented", "clear"):
        errors["kind"] = "请选择标记类型。"
    if on > today:
        errors["on"] = "日期不能晚于今天。"
    ref = (ref or "").strip()
    if kind == "turned" and not ref:
        errors["ref"] = "请填写公安机关的案件编号。"
    if len(ref) > 64:
        errors["ref"] = "案件编号最多64个字。"
    if errors:
        raise ValidationFailed(errors=errors)
    if kind == "turned":
        case.criminal_turned_on, case.criminal_case_ref = on, ref
        label = f"标记为民转刑（{ref}）"
    elif kind == "prevented":
        case.criminal_prevented_on = on
        label = "标记为防止民转刑"
    else:
        case.criminal_turned_on = case.criminal_case_ref = case.criminal_prevented_on = None
        label = "撤销民转刑标记"
    if note:
        label = f"{label}：{note.strip()}"
    session.add(TimelineEntry(case_id=case.id, actor_id=user.id, actor_name=user.display_name,
                              action="criminal_flag", from_status=case.status, to_status=case.status,
                              note=label, data={"kind": kind, "on": on.isoformat(), "ref": ref or None}))
    session.flush()
    audit("case.criminal_flag", "case", case.number, {"kind": kind, "on": on.isoformat(), "ref": ref or None},
          user=user)
    return case
