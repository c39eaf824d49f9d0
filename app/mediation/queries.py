"""Read side of joint mediation: the roster with how many cases each person joined and the
suggestions for a case, what the case page's mediation section shows, the follow-up and
judicial-confirmation due lists, and the 清仓 backlog view.  Every read of cases goes through
``scope_cases``."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Optional

from sqlalchemy import bindparam, distinct, func, or_, select, union_all
from sqlalchemy.orm import selectinload

from app.accounts.models import User
from app.accounts.roles import COUNTY_ROLES, TOWNSHIP_ROLES
from app.cases.models import Case, FollowUp
from app.cases.queries import department_tasks_of, has_related, scope_cases
from app.cases.services import MEDIATOR_ROLES
from app.cases.vocab import LEVELS, OPEN_STATUSES, RISK_LEVELS
from app.db import common, entities_with_parent, entity_columns, prepared, select_entities, select_rows, session
from app.mediation.models import (Agreement, CaseClosure, JudicialConfirmation, MediationSession, MediatorChange,
                                  RosterMember, SessionParticipant)
from app.orgs.models import OrgUnit
from app.templating import today_local
from app.workflow import deadlines


# ---------------------------------------------------------------------------------------------
# Roster

def roster_orgs(user: User) -> list[OrgUnit]:
    """Townships and villages whose roster the user may see and add to."""
    org = user.org
    stmt = select(OrgUnit).where(OrgUnit.active, OrgUnit.level.in_(("township", "village")))
    if user.role in COUNTY_ROLES:
        stmt = stmt.where(OrgUnit.county_id == (org.county_id or org.id))
    elif user.role in TOWNSHIP_ROLES:
        stmt = stmt.where(or_(OrgUnit.id == org.township_id, OrgUnit.township_id == org.township_id))
    elif user.role in ("village_mediator", "grid_worker"):
        vid = org.id if org.level == "village" else org.village_id
        stmt = stmt.where(OrgUnit.id == vid)
    else:
        return []
    return list(session.scalars(stmt.order_by(OrgUnit.code)))


def _case_counts_by_roster(ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    stmt = prepared("roster.case_counts", lambda: (
        select(SessionParticipant.roster_id, func.count(distinct(SessionParticipant.case_id)))
        .where(SessionParticipant.roster_id.in_(bindparam("ids", expanding=True)))
        .group_by(SessionParticipant.roster_id)), server_prepare=True)
    return dict(session.execute(stmt, {"ids": ids}).all())


def _case_counts_by_user(ids: list[int]) -> dict[int, int]:
    """Cases a user joined: as lead mediator or as a session participant."""
    if not ids:
        return {}
    counts: dict[int, set] = {i: set() for i in ids}
    for uid, cid in session.execute(select(Case.lead_mediator_id, Case.id).where(Case.lead_mediator_id.in_(ids))):
        counts[uid].add(cid)
    for uid, cid in session.execute(select(SessionParticipant.user_id, SessionParticipant.case_id)
                                    .where(SessionParticipant.user_id.in_(ids))):
        counts[uid].add(cid)
    return {k: len(v) for k, v in counts.items()}


@dataclass
class RosterRow:
    kind: str
    name: str
    org: OrgUnit
    specialty: Optional[str]
    phone: Optional[str]
    cases: int
    member: Optional[RosterMember] = None
    user: Optional[User] = None
    score: int = 0
    why: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"u{self.user.id}" if self.member is None and self.user else f"r{self.member.id}"


def roster(user: User, org_id: Optional[int] = None) -> list[RosterRow]:
    """The 调解力量库 of the user's units: mediators with logins, then people without."""
    orgs = roster_orgs(user)
    if org_id:
        orgs = [o for o in orgs if o.id == org_id]
    ids = [o.id for o in orgs]
    if not ids:
        return []
    by_id = {o.id: o for o in orgs}
    users = list(session.scalars(select(User).where(User.active, User.role.in_(sorted(MEDIATOR_ROLES)),
                                                    User.org_id.in_(ids)).order_by(User.org_id, User.display_name)))
    members = list(session.scalars(select(RosterMember).where(RosterMember.active, RosterMember.org_id.in_(ids))
                                   .order_by(RosterMember.org_id, RosterMember.kind, RosterMember.name)))
    ucount = _case_counts_by_user([u.id for u in users])
    mcount = _case_counts_by_roster([m.id for m in members])
    rows = [RosterRow("mediator", u.display_name, by_id[u.org_id], u.role_label, u.phone, ucount.get(u.id, 0),
                      user=u) for u in users]
    rows += [RosterRow(m.kind, m.name, by_id[m.org_id], m.specialty, m.phone, mcount.get(m.id, 0), member=m)
             for m in members]
    return rows


def roster_for_case(case: Case) -> list[RosterMember]:
    """Active roster members of the case's township (and its villages), by name, each with its
    unit (``org``) loaded.  The open cases' pages read it for the invitation suggestions: a
    statement built once per process (``app.db.prepared``) whose rows carry the member's and its
    unit's columns (``entities_with_parent``): through the ORM it cost ~0.19 ms of Python per
    case page even when the roster was empty, and each member's unit was then a lazy load."""
    stmt = prepared("roster.for_township.rows", lambda: (
        select(*entity_columns(RosterMember), *entity_columns(OrgUnit)).join(OrgUnit, RosterMember.org_id == OrgUnit.id)
        .where(RosterMember.active, or_(OrgUnit.id == bindparam("township"), OrgUnit.township_id == bindparam("township")))
        .order_by(RosterMember.name)), server_prepare=True)
    return entities_with_parent(select_rows(stmt, {"township": case.township_id}), RosterMember, "org", OrgUnit)


def suggestions(case: Case, limit: int = 8) -> list[RosterRow]:
    """Who to invite: same village first, then same township; matching specialty ranks higher;
    among equals, fewer cases joined first."""
    members = roster_for_case(case)
    counts = _case_counts_by_roster([m.id for m in members])
    words = {w for w in (case.dispute_type, case.type_category) if w}
    rows = []
    for m in members:
        why, score = [], 0
        if m.org_id == case.village_id:
            score += 2
            why.append("同村")
        else:
            why.append("同乡镇")
        spec = m.specialty or ""
        if any(w in spec for w in words):
            score += 3
            why.append(f"擅长{case.type_category}")
        rows.append(RosterRow(m.kind, m.name, m.org, m.specialty, m.phone, counts.get(m.id, 0), member=m,
                              score=score, why=why))
    rows.sort(key=lambda r: (-r.score, r.cases, r.name))
    return rows[:limit]


# ---------------------------------------------------------------------------------------------
# The case page's section

def _of_case(model):
    return model.case_id == bindparam("case_id")


# What the case page lists of the mediation records: name → (the table, the statement's builder,
# run once per process: ``app.db.prepared``).  Participants, obligations and departments come
# with their parents, never a query per row.
CASE_RECORDS = {
    "sessions": ("mediation_session", lambda: select(MediationSession).where(_of_case(MediationSession))
                 .options(selectinload(MediationSession.participants))
                 .order_by(MediationSession.held_on, MediationSession.id)),
    "agreements": ("mediation_agreement", lambda: select(Agreement).where(_of_case(Agreement))
                   .options(selectinload(Agreement.obligations)).order_by(Agreement.id)),
    "closures": ("case_closure", lambda: select(CaseClosure).where(_of_case(CaseClosure)).order_by(CaseClosure.id)),
    "follow_ups": ("follow_up", lambda: select(FollowUp).where(_of_case(FollowUp)).order_by(FollowUp.id)),
    "confirmations": ("judicial_confirmation", lambda: select(JudicialConfirmation)
                      .where(_of_case(JudicialConfirmation)).order_by(JudicialConfirmation.id)),
    "changes": ("mediator_change", lambda: select(MediatorChange).where(_of_case(MediatorChange))
                .order_by(MediatorChange.id)),
}


def case_records(case: Case) -> dict[str, Any]:
    """The mediation records the case page lists (``CASE_RECORDS``).  Only the tables holding
    rows of this case are read (``has_related``: one EXISTS statement tells which)."""
    params = {"case_id": case.id}
    records: dict[str, Any] = {
        name: select_entities(prepared(("case_records", name), build, server_prepare=True), params)
        if has_related(case, table) else [] for name, (table, build) in CASE_RECORDS.items()}
    records["invites"] = [t for t in department_tasks_of(case) if t.kind == "invite"]  # shared with the panel
    records["agreement"] = records["agreements"][-1] if records["agreements"] else None
    return records


def agreement_date(case: Case) -> Optional[date]:
    """The day the case's (latest) agreement was reached; the close date when none was recorded."""
    agreed_on = session.scalar(select(Agreement.agreed_on).where(Agreement.case_id == case.id)
                               .order_by(Agreement.id.desc()).limit(1))
    return agreed_on or case.closed_on


def confirmation_deadline(case: Case, agreed_on: Optional[date] = None) -> Optional[date]:
    """The last day to apply for 司法确认: 30 days from the agreement's date (Art. 33), not from the
    close.  ``agreed_on`` saves the query when the caller already has it."""
    if case.outcome != "success" or case.closed_on is None:
        return None
    start = agreed_on or agreement_date(case)
    return deadlines.add_days(start, "judicial_confirmation") if start else None


def recorded_confirmation(case: Case) -> dict[str, str]:
    """The 司法确认 already recorded for the case's latest agreement, as the form's values (a
    later result updates it), or {}."""
    latest = session.scalar(select(Agreement.id).where(Agreement.case_id == case.id)
                            .order_by(Agreement.id.desc()).limit(1))
    jc = session.scalars(select(JudicialConfirmation).where(JudicialConfirmation.case_id == case.id,
                                                            JudicialConfirmation.agreement_id == latest)
                         .order_by(JudicialConfirmation.id.desc()).limit(1)).first() if latest else None
    if jc is None:
        return {}
    return {"applied_on": jc.applied_on.isoformat(), "court": jc.court, "result": jc.result,
            "decided_on": jc.decided_on.isoformat() if jc.decided_on else "",
            "ruling_number": jc.ruling_number or "", "notes": jc.notes or ""}


# ---------------------------------------------------------------------------------------------
# Due lists

def follow_ups_due(user: User, limit: int = 200) -> list[Case]:
    """Closed agreements without a follow-up since the close, oldest due first."""
    stmt = scope_cases(user).where(Case.status == "closed", Case.outcome == "success",
                                   or_(Case.followed_up_on.is_(None), Case.followed_up_on < Case.closed_on))
    return list(session.scalars(stmt.order_by(Case.follow_up_due_on, Case.closed_on, Case.id).limit(limit)))


def _first_start(test, low: date, high: date) -> date:
    """The first day in [low, high] for which ``test(day)`` holds (``test`` turns true once and
    stays true as the day grows); ``high`` + 1 day when it never does."""
    while low <= high:
        mid = low + (high - low) // 2
        if test(mid):
            high = mid - timedelta(days=1)
        else:
            low = mid + timedelta(days=1)
    return low


def confirmations_due(user: User, today: Optional[date] = None, until: Optional[date] = None,
                      limit: int = 500) -> list[tuple[Case, date, date]]:
    """Agreements still inside their judicial-confirmation window (Art. 33: 30 days from the
    agreement) with no application, each as (case, agreement date, last day), the soonest last
    day first; with ``until``, only those whose last day is no later.

    The window's last day grows with the agreement's date (``deadlines.add_days``, calendar or
    working days), so the agreement dates whose window is still open and ends by ``until`` form
    one range, found here by bisection.  The cases are read from that range alone, in two
    parts, each in date order and cut at ``limit``: those with no agreement record (the window
    counts from the close) from the closed-date index, and those whose latest agreement is
    dated in the range from the agreement-date index.  Reading every case closed since the
    range's first day instead, and working out each one's latest agreement, cost 26 ms on the
    county's 工作台 at 1,000,000 cases (9,000 closes), whose to-do list shows ten."""
    today = today or today_local()

    def last_day(start: date) -> date:
        return deadlines.add_days(start, "judicial_confirmation")
    first = _first_start(lambda d: last_day(d) >= today, today - timedelta(days=400), today)
    end = today if until is None else _first_start(lambda d: last_day(d) > until, first, today) - timedelta(days=1)
    if end < first:
        return []
    latest_agreed_on = (select(Agreement.agreed_on).where(Agreement.case_id == Case.id)
                        .order_by(Agreement.id.desc()).limit(1).scalar_subquery())
    due = (common(Case.status == "closed"), common(Case.outcome == "success"),
           Case.id.not_in(select(JudicialConfirmation.case_id)))
    without_agreement = (scope_cases(user, select(Case.id.label("id"), Case.closed_on.label("start")))
                         .where(*due, Case.closed_on.between(first, end),
                                ~select(Agreement.id).where(Agreement.case_id == Case.id).exists())
                         .order_by(Case.closed_on, Case.id).limit(limit))
    # an agreement is never dated after the close, so these cases closed on or after ``first`` too
    with_agreement = (scope_cases(user, select(Case.id.label("id"), latest_agreed_on.label("start")))
                      .where(*due, Case.closed_on >= first,
                             Case.id.in_(select(Agreement.case_id).where(Agreement.agreed_on.between(first, end))),
                             latest_agreed_on.between(first, end))
                      .order_by(latest_agreed_on, Case.id).limit(limit))
    parts = union_all(select(without_agreement.subquery()), select(with_agreement.subquery())).subquery()
    stmt = (select(Case, parts.c.start).join(parts, parts.c.id == Case.id)
            .order_by(parts.c.start, Case.id).limit(limit))
    rows = []
    for case, started in session.execute(stmt):
        last = confirmation_deadline(case, started)
        if last is not None and today <= last and (until is None or last <= until):
            rows.append((case, started, last))
    rows.sort(key=lambda r: (r[2], r[0].id))  # several agreement days can share a last (working) day
    return rows


# ---------------------------------------------------------------------------------------------
# 清仓 backlog

BUCKETS = {"le30": "≤30天", "d31_90": "31–90天", "gt90": ">90天"}


def age_bucket(registered_on: date, as_of: date) -> str:
    days = (as_of - registered_on).days
    return "le30" if days <= 30 else ("d31_90" if days <= 90 else "gt90")


@dataclass
class Backlog:
    as_of: date
    cases: list[Case]
    total: int
    overdue: int
    by_bucket: dict[str, int]
    by_level: dict[str, int]
    by_risk: dict[str, int]
    by_township: list[tuple[str, dict[str, int]]]
    year_start_backlog: int
    year_start_cleared: int

    @property
    def cleared_rate(self) -> Optional[float]:
        if not self.year_start_backlog:
            return None
        return 100.0 * self.year_start_cleared / self.year_start_backlog


def backlog(user: User, as_of: Optional[date] = None, filters: Optional[dict] = None) -> Backlog:
    """Open cases (待研判, 调解中, 已上报, 已转办) registered on or before ``as_of``, by age bucket
    (days from registration), handling level, township and risk; overdue = past the deadline.
    The start-of-year backlog: registered before 1 January and not closed before it (never
    declined); cleared = those of them closed since."""
    as_of = as_of or today_local()
    filters = filters or {}
    stmt = scope_cases(user).where(Case.status.in_(OPEN_STATUSES), Case.registered_on <= as_of)
    if filters.get("township"):
        stmt = stmt.where(Case.township_id == int(filters["township"]))
    if filters.get("level") in LEVELS:
        stmt = stmt.where(Case.handling_level == filters["level"])
    if filters.get("risk") in RISK_LEVELS:
        stmt = stmt.where(Case.risk_level == filters["risk"])
    if filters.get("bucket") in BUCKETS:
        b = filters["bucket"]
        if b == "le30":
            stmt = stmt.where(Case.registered_on >= as_of - timedelta(days=30))
        elif b == "d31_90":
            stmt = stmt.where(Case.registered_on < as_of - timedelta(days=30),
                              Case.registered_on >= as_of - timedelta(days=90))
        else:
            stmt = stmt.where(Case.registered_on < as_of - timedelta(days=90))
    if filters.get("overdue") == "1":
        stmt = stmt.where(Case.deadline_on < as_of)
    cases = list(session.scalars(stmt.order_by(Case.registered_on, Case.id)))
    by_bucket = {k: 0 for k in BUCKETS}
    by_level = {k: 0 for k in LEVELS}
    by_risk = {k: 0 for k in (*RISK_LEVELS, "none")}
    townships: dict[str, dict[str, int]] = {}
    overdue = 0
    for c in cases:
        b = age_bucket(c.registered_on, as_of)
        by_bucket[b] += 1
        by_level[c.handling_level] = by_level.get(c.handling_level, 0) + 1
        by_risk[c.risk_level or "none"] += 1
        t = townships.setdefault(c.township.name, {"total": 0, "overdue": 0, **{k: 0 for k in BUCKETS}})
        t["total"] += 1
        t[b] += 1
        if c.deadline_on and c.deadline_on < as_of:
            overdue += 1
            t["overdue"] += 1
    jan1 = date(as_of.year, 1, 1)
    start = scope_cases(user, select(func.count(Case.id))).where(
        Case.registered_on < jan1, Case.status != "declined",
        or_(Case.closed_on.is_(None), Case.closed_on >= jan1))
    cleared = start.where(Case.closed_on.is_not(None), Case.closed_on <= as_of)
    return Backlog(as_of, cases, len(cases), overdue, by_bucket, by_level, by_risk, sorted(townships.items()),
                   session.scalar(start) or 0, session.scalar(cleared) or 0)
