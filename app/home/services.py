"""What a person's 工作台 shows: counts of their cases by state, their newest cases, and the
to-do sections later features add through ``TODO_PROVIDERS``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from app.accounts.models import User
from app.cases.models import Case
from app.cases.queries import jurisdiction, scope_cases
from app.cases.vocab import STATUSES
from app.db import session


@dataclass
class TodoItem:
    """One thing to do, with the link where it is done."""
    title: str
    url: str
    detail: str = ""
    badge: str = ""  # "" / "warning" (黄牌) / "danger" (红牌)


@dataclass
class TodoSection:
    title: str
    items: list[TodoItem] = field(default_factory=list)
    more_url: str | None = None


# Later features register functions ``provider(user) -> TodoSection | None``.
TODO_PROVIDERS: list[Callable[[User], TodoSection | None]] = []


@dataclass
class AdminSummary:
    """What the administrator's 工作台 shows instead of case work: the tree, the accounts and
    the newest audit records."""
    units_by_level: dict[str, int]
    active_users: int
    inactive_users: int
    recent_audit: list


@dataclass
class Workbench:
    status_counts: dict[str, int]
    recent: list[Case]
    todos: list[TodoSection]
    org_path: list[str] = field(default_factory=list)
    admin: AdminSummary | None = None


def status_counts(user: User) -> dict[str, int]:
    """The user's cases by status.  A county, township or village area sums its rows of the
    figure summary (``summary_status_counts``: a county's ten years are ~70,000 rows, where
    counting the cases took 158 ms at 1,000,000 cases on PostgreSQL), and the result is kept in
    the report cache (``app.reports.cache``), keyed by the county's write counters: any
    committed write to a case of the county changes the key, so the counts are never older than
    the last commit.  A department liaison's area (cases with a task for the department) is not
    a report table's and is small: counted live."""
    from app.orgs.models import OrgUnit
    area, unit_id = jurisdiction(user)
    unit = session.get(OrgUnit, unit_id) if area in ("county", "township", "village") and unit_id else None
    if unit is None:
        counts = dict(session.execute(
            scope_cases(user, select(Case.status, func.count(Case.id))).group_by(Case.status)).all())
        return {code: counts.get(code, 0) for code in STATUSES}
    from app.reports.cache import cached
    from app.reports.summary import summary_status_counts
    return cached("workbench.status_counts", unit, (area,), lambda: summary_status_counts(unit))


def workbench(user: User) -> Workbench:
    """Assemble the 工作台 of ``user`` from scoped queries."""
    # newest first in the ledger's own default order (登记日期, then number): the county,
    # township and village registration indexes give it backwards with no sort
    recent = list(session.scalars(scope_cases(user).options(joinedload(Case.village))  # the list names the village
                                  .order_by(Case.registered_on.desc(), Case.id.desc()).limit(8)))
    todos = [section for provider in TODO_PROVIDERS if (section := provider(user)) is not None]
    return Workbench(status_counts(user), recent, todos, org_path(user.org),
                     admin_summary() if user.can("admin") else None)


def org_path(unit) -> list[str]:
    """Names from the county down to ``unit`` (示范县 › 南湖镇 › 朱湖社区 › 第1网格)."""
    names = []
    ancestors = {i for i in (getattr(unit, "parent_id", None), getattr(unit, "township_id", None),
                             getattr(unit, "county_id", None)) if i}
    if ancestors:  # one query for the ancestors (then ``parent`` comes from the identity map)
        from app.orgs.models import OrgUnit
        list(session.scalars(select(OrgUnit).where(OrgUnit.id.in_(ancestors))))
    while unit is not None:
        names.append(unit.name)
        unit = unit.parent
    return names[::-1]


def admin_summary() -> AdminSummary:
    from app.audit.models import AuditLog
    from app.orgs.models import OrgUnit
    by_level = dict(session.execute(select(OrgUnit.level, func.count(OrgUnit.id)).group_by(OrgUnit.level)).all())
    by_state = dict(session.execute(select(User.active, func.count(User.id)).group_by(User.active)).all())
    audit_rows = list(session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(8)))
    return AdminSummary(by_level, by_state.get(True, 0), by_state.get(False, 0), audit_rows)
