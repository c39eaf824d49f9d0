"""Read-side queries of cases.  ``scope_cases`` is the ONE jurisdiction filter every read of
cases goes through: pages, search, exports, reports' drill-downs, the API and attachments.

Who sees what (PRODUCT.md §1, issue 3):
- county roles (admin, county supervisor, county leader): every case of their county;
- township roles: their township's cases;
- village mediator: their village; grid worker: the village their grid lies in;
- department liaison: only cases transferred or invited to their department.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections import namedtuple
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Optional

from markupsafe import Markup
from sqlalchemy import Select, and_, bindparam, exists, false, func, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import aliased, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts.models import User
from app.accounts.roles import COUNTY_ROLES, TOWNSHIP_ROLES
from app.cases.models import Attachment, Case, DepartmentTask, Party, TimelineEntry
from app.cases.vocab import OPEN_STATUSES
from app.crypto import lookup_hash
from app.db import (ChildRows, child_rows_column, column_keys, entities_with_parent, entity_columns, persistent_from_row,
                    prepared, select_rows, session, transaction_memo, unindexed)
from app.errors import NotFound, ValidationFailed
from app.i18n import N_
from app.orgs.models import OrgUnit
from app.templating import option_tags


def jurisdiction(user: User) -> tuple[str, Optional[int]]:
    """What ``user`` may see, as (kind, org id): ``county``, ``township`` or ``village`` and the
    unit's id, ``department`` and the department's id, or ``none``."""
    org = user.org
    if org is None:
        return "none", None
    if user.role in COUNTY_ROLES:
        return "county", org.county_id or org.id
    if user.role in TOWNSHIP_ROLES:
        return "township", org.township_id
    if user.role == "village_mediator":
        return "village", org.id
    if user.role == "grid_worker":
        return "village", org.village_id
    if user.role == "dept_liaison":
        return "department", org.id
    return "none", None


def area_clause(kind: str, value, model=Case, county_indexed: bool = True):
    """The WHERE clause of ``jurisdiction`` (kind, value) on ``model`` (``Case`` or an alias of
    it); ``value`` may be a ``bindparam`` (``prepared`` statements) or a plain id."""
    if kind == "county":
        return (model.county_id if county_indexed else unindexed(model.county_id)) == value
    if kind == "township":
        return model.township_id == value
    if kind == "village":
        return model.village_id == value
    if kind == "department":
        return model.id.in_(select(DepartmentTask.case_id).where(DepartmentTask.department_id == value))
    return false()


def jurisdiction_clause(user: User, model=Case, county_indexed: bool = True):
    """The WHERE clause limiting ``Case`` rows (or those of ``model``, an alias of it) to what
    ``user`` may see.  ``county_indexed=False``: a county user's clause keeps SQLite off the
    county indexes (``app.db.unindexed``), for a query a partial index answers in order."""
    kind, value = jurisdiction(user)
    return area_clause(kind, value, model, county_indexed)


def scope_cases(user: User, stmt: Optional[Select] = None, county_indexed: bool = True) -> Select:
    """``stmt`` (default ``select(Case)``) limited to the cases ``user`` may see
    (``county_indexed``: see ``jurisdiction_clause``)."""
    if stmt is None:
        stmt = select(Case)
    return stmt.where(jurisdiction_clause(user, county_indexed=county_indexed))


def scoped_prepared(user: User, name, build, server_prepare: bool = False,
                    keep: bool = True) -> tuple[Select, dict]:
    """A statement of the cases ``user`` may see, built once per process and kind of area
    (``app.db.prepared``): ``build(area)`` gets the area's WHERE clause with its id as the
    bound parameter ``area``; returns the statement and the parameters to run it with (add the
    statement's own).  For the pages opened most (the case page), where building the same
    statement again on every request cost more than running it.  ``server_prepare``: see
    ``app.db.prepared``.  ``keep=False``: built for this call only (an unusual shape not worth
    a place among the kept statements), with the same parameters."""
    kind, value = jurisdiction(user)

    def built():
        return build(area_clause(kind, bindparam("area")))
    stmt = prepared((name, kind), built, server_prepare) if keep else built()
    return stmt, ({"area": value} if kind != "none" else {})


def get_visible_case(user: User, number: str) -> Case:
    """The case numbered ``number`` if ``user`` may see it; otherwise ``NotFound`` (404), so
    a case outside the jurisdiction is indistinguishable from one that does not exist."""
    case = session.scalar(scope_cases(user).where(Case.number == number))
    if case is None:
        raise NotFound()
    return case


def get_visible_case_by_id(user: User, case_id: int) -> Case:
    case = session.scalar(scope_cases(user).where(Case.id == case_id))
    if case is None:
        raise NotFound()
    return case


def org_in_jurisdiction(user: User, org: OrgUnit) -> bool:
    """Whether ``org`` lies within what ``user`` may see (for reports and org pickers)."""
    mine = user.org
    if user.role in COUNTY_ROLES:
        return (org.county_id or org.id) == (mine.county_id or mine.id)
    if user.role in TOWNSHIP_ROLES:
        return org.township_id is not None and org.township_id == mine.township_id
    if user.role == "village_mediator":
        return org.id == mine.id or org.parent_id == mine.id
    if user.role == "grid_worker":
        return org.id in (mine.id, mine.village_id)
    return False


def _units_in_jurisdiction(user: User, level: str) -> Optional[Select]:
    """SELECT of active org units of ``level`` within the user's jurisdiction (None: none)."""
    stmt = select(OrgUnit).where(OrgUnit.level == level, OrgUnit.active)
    mine = user.org
    if user.role in COUNTY_ROLES:
        return stmt.where(OrgUnit.county_id == (mine.county_id or mine.id))
    if user.role in TOWNSHIP_ROLES:
        return stmt.where(OrgUnit.township_id == mine.township_id)
    if user.role in ("village_mediator", "grid_worker"):
        village_id = mine.id if mine.level == "village" else mine.village_id
        if level == "village":
            return stmt.where(OrgUnit.id == village_id)
        if level == "township":
            return stmt.where(OrgUnit.id == mine.township_id)
        if level == "grid":
            return stmt.where(OrgUnit.parent_id == village_id)
    return None


def villages_in_jurisdiction(user: User) -> list[OrgUnit]:
    """Villages a user may register cases in, by code."""
    stmt = _units_in_jurisdiction(user, "village")
    return [] if stmt is None else list(session.scalars(stmt.order_by(OrgUnit.code)))


def village_names_in_jurisdiction(user: User) -> list:
    """(code, name, township_id) rows of ``villages_in_jurisdiction``, by code: the ledger's
    village filter lists a county's 140 villages on every page, plain rows cost a fifth of
    ORM objects."""
    stmt = _units_in_jurisdiction(user, "village")
    return [] if stmt is None else session.execute(
        stmt.with_only_columns(OrgUnit.code, OrgUnit.name, OrgUnit.township_id).order_by(OrgUnit.code)).all()


def townships_in_jurisdiction(user: User) -> list[OrgUnit]:
    """Townships a user's lists may be filtered by, by code."""
    stmt = _units_in_jurisdiction(user, "township")
    return [] if stmt is None else list(session.scalars(stmt.order_by(OrgUnit.code)))


@dataclass(frozen=True)
class TypeOption:
    name: str
    parent_id: Optional[int]


@dataclass(frozen=True)
class TownshipOption:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class ListChoices:
    """What the ledger's filter bar offers: types, sources, townships and villages (code,
    label) of the user's jurisdiction; and the days before a deadline its rows turn amber
    (a setting: settings are ``REPORT_TABLES`` too)."""
    types: tuple[TypeOption, ...]
    sources: tuple[str, ...]
    townships: tuple[TownshipOption, ...]
    village_options: tuple[tuple[str, str], ...]
    warn_days: int
    # ``options()``'s finished tags, per (filter, selected value): derived from the fields above
    # only, so sharing these choices between requests (the report cache serves them uncopied)
    # shares nothing a request could change.
    _tags: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def _values(self, kind: str) -> tuple[tuple[str, str], ...]:
        if kind == "type":
            return tuple((t.name, ("　" if t.parent_id else "") + t.name) for t in self.types)
        if kind == "source":
            return tuple((s, s) for s in self.sources)
        if kind == "township":
            return tuple((t.code, t.name) for t in self.townships)
        if kind == "village":
            return self.village_options
        raise ValueError(kind)

    def options(self, kind: str, selected: Optional[str]) -> Markup:
        """The ``<option>`` tags of the ``kind`` filter (``type``, ``source``, ``township``,
        ``village``), ``selected`` marked (``app.templating.option_tags``).  Made once per choice
        and kept with these choices: a county's 140 villages cost the template about a
        millisecond on every list page.  A ``selected`` that is none of the values marks nothing
        and is not kept (a URL cannot grow the memo)."""
        tags = self._tags.get((kind, selected))
        if tags is None:
            values = self._values(kind)
            if selected is not None and all(value != selected for value, _label in values):
                selected = None
            tags = self._tags.get((kind, selected))
            if tags is None:
                tags = self._tags[(kind, selected)] = option_tags(values, selected)
        return tags


def list_filter_choices(user: User) -> ListChoices:
    """The filter bar's choices, kept in the report cache (``app.reports.cache.cached``).

    Why: they are four queries and some hundred rows (a county's 140 villages) on every list
    page, yet change only when an administrator edits the org structure, a dispute type or a
    source.  Those tables are ``REPORT_TABLES``: a committed write to any of them changes the
    cache key (a village's row its county's counter; types, sources and county rows the global
    one), so a stale choice is never served.  Case writes bump the county counter too, which
    costs a recomputation now and then, never a wrong answer."""
    from app.settings.services import active_sources, active_types
    from app.workflow.deadlines import warn_days

    def compute() -> ListChoices:
        townships = townships_in_jurisdiction(user)
        names = {t.id: t.name for t in townships}
        several = len(townships) > 1
        return ListChoices(
            types=tuple(TypeOption(t.name, t.parent_id) for t in active_types()),
            sources=tuple(active_sources()),
            townships=tuple(TownshipOption(t.id, t.code, t.name) for t in townships),
            # labels made here: a county's 140 villages would otherwise cost the template an
            # attribute walk (and a parent lookup) per option
            village_options=tuple((code, f"{name}（{names.get(township_id, '')}）" if several else name)
                                  for code, name, township_id in village_names_in_jurisdiction(user)),
            warn_days=warn_days())
    area, _unit = jurisdiction(user)
    if area in ("department", "none"):
        return compute()
    from app.reports.cache import cached
    return cached("cases.list_filter_choices", user.org, (area,), compute, frozen=True)


def village_in_jurisdiction(user: User, code: str) -> Optional[OrgUnit]:
    """The village with ``code`` if the user may register cases there, else None."""
    stmt = _units_in_jurisdiction(user, "village")
    return None if stmt is None or not code else session.scalar(stmt.where(OrgUnit.code == code.strip()))


def grids_of(village_ids: list[int]) -> list[OrgUnit]:
    """Active grids of the given villages (for the registration form's grid picker)."""
    if not village_ids:
        return []
    return list(session.scalars(select(OrgUnit).where(OrgUnit.level == "grid", OrgUnit.active,
                                                      OrgUnit.parent_id.in_(village_ids))
                                .order_by(OrgUnit.code)))


# ---------------------------------------------------------------------------------------------
# The ledger list (台账): filters, search, sorting and keyset pagination (no OFFSET).

SORTS = {
    # key: (label, column expression, descending)
    "-registered": (N_("登记日期（新→旧）"), Case.registered_on, True),
    "registered": (N_("登记日期（旧→新）"), Case.registered_on, False),
    "deadline": (N_("办理期限（近→远）"), func.coalesce(Case.deadline_on, date(9999, 12, 31)), False),
    "-amount": (N_("涉及金额（大→小）"), func.coalesce(Case.amount, -1), True),
    "number": (N_("编号"), Case.number, False),
}
DEFAULT_SORT = "-registered"
PAGE_SIZE = 50


@dataclass
class CaseFilters:
    """The ledger list's filters, shared by the page, the export and the API."""

    status: Optional[str] = None  # a status code, or "open"
    type: Optional[str] = None  # a type name: matches the type or its category
    source: Optional[str] = None
    risk: Optional[str] = None  # high/medium/low, or "none"
    township: Optional[str] = None  # org code
    village: Optional[str] = None  # org code
    date_from: Optional[date] = None
    date_to: Optional[date] = None
    overdue: bool = False
    q: Optional[str] = None
    sort: str = DEFAULT_SORT

    @classmethod
    def from_args(cls, args) -> "CaseFilters":
        """Filters from query-string arguments; malformed values are ignored, not errors."""
        def get(name):
            value = (args.get(name) or "").strip()
            return value or None

        def get_date(name):
            try:
                return date.fromisoformat(get(name)) if get(name) else None
            except ValueError:
                return None

        sort = get("sort") or DEFAULT_SORT
        return cls(status=get("status"), type=get("type"), source=get("source"), risk=get("risk"),
                   township=get("township"), village=get("village"), date_from=get_date("from"),
                   date_to=get_date("to"), overdue=(args.get("overdue") or "") in ("1", "true", "on"),
                   q=get("q"), sort=sort if sort in SORTS else DEFAULT_SORT)

    def as_args(self) -> dict[str, str]:
        """The non-empty filters as query-string arguments (for links and the export)."""
        out = {"status": self.status, "type": self.type, "source": self.source, "risk": self.risk,
               "township": self.township, "village": self.village,
               "from": self.date_from.isoformat() if self.date_from else None,
               "to": self.date_to.isoformat() if self.date_to else None,
               "overdue": "1" if self.overdue else None, "q": self.q,
               "sort": self.sort if self.sort != DEFAULT_SORT else None}
        return {k: v for k, v in out.items() if v}


def filtered_cases(user: User, filters: CaseFilters, today: Optional[date] = None,
                   stmt: Optional[Select] = None) -> Select:
    """``stmt`` (default ``select(Case)``; any select whose FROM is ``dispute_case``) scoped to
    the user and narrowed by ``filters`` (unsorted)."""
    from app.cases.search import search_clause

    stmt = scope_cases(user, stmt)
    if filters.status == "open":
        stmt = stmt.where(Case.status.in_(OPEN_STATUSES))
    elif filters.status:
        stmt = stmt.where(Case.status == filters.status)
    if filters.type:
        stmt = stmt.where(or_(Case.dispute_type == filters.type, Case.type_category == filters.type))
    if filters.source:
        stmt = stmt.where(Case.source == filters.source)
    if filters.risk == "none":
        stmt = stmt.where(Case.risk_level.is_(None))
    elif filters.risk:
        stmt = stmt.where(Case.risk_level == filters.risk)
    if filters.township:
        stmt = stmt.where(Case.township_id == select(OrgUnit.id).where(OrgUnit.code == filters.township)
                          .scalar_subquery())
    if filters.village:
        stmt = stmt.where(Case.village_id == select(OrgUnit.id).where(OrgUnit.code == filters.village)
                          .scalar_subquery())
    if filters.date_from:
        stmt = stmt.where(Case.registered_on >= filters.date_from)
    if filters.date_to:
        stmt = stmt.where(Case.registered_on <= filters.date_to)
    if filters.overdue:
        stmt = stmt.where(Case.status.in_(OPEN_STATUSES), Case.deadline_on < (today or _today()))
    clause = search_clause(filters.q, session.get_bind().dialect.name,
                           within=lambda model: jurisdiction_clause(user, model))
    if clause is not None:
        stmt = stmt.where(clause)
    return stmt


def _today() -> date:
    from app.templating import today_local
    return today_local()


def encode_cursor(sort: str, value, case_id: int) -> str:
    """An opaque cursor: the sort key and the last row's sort value and id."""
    if isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    raw = json.dumps([sort, value, case_id], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str):
    """(value, id) from a cursor made for ``sort``; ``ValidationFailed`` when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, value, case_id = json.loads(raw)
        if got_sort != sort or not isinstance(case_id, int):
            raise ValueError
        if sort in ("-registered", "registered", "deadline"):
            value = date.fromisoformat(value)
        elif sort == "-amount":
            value = Decimal(value)
        elif not isinstance(value, str):
            raise ValueError
    except (ValueError, TypeError, json.JSONDecodeError, binascii.Error):
        raise ValidationFailed(errors={"cursor": "翻页参数无效，请从第一页重新开始。"}) from None
    return value, case_id


@dataclass
class CasePage:
    items: list  # Case objects, or ListRow ones for the ledger page (page_of_cases(brief=True))
    next_cursor: Optional[str]


SEARCH_WINDOW = 2000
"""How many rows of the list a search page looks through before it falls back to the indexed
search (see ``page_of_cases``).  Measured at 1,000,000 cases: larger windows, tried one after
another for 1–2-character terms, made a rare 2-character name twice as slow on both databases
(the per-row party test costs more over 200,000 rows than the fallback's scan)."""


@dataclass(slots=True)
class ListRow:
    """One row of the ledger page: what it shows, its cursor and its deadline badge need
    (``app.workflow.deadlines.case_deadline_state`` reads status, paused_since, deadline_on).
    Read as plain columns, not as ``Case`` objects with their 60 columns and every party's
    encrypted ID number and phone: building and decrypting those was half the page's time."""
    id: int
    number: str
    registered_on: date
    dispute_type: str
    summary: str
    risk_level: Optional[str]
    status: str
    deadline_on: Optional[date]
    paused_since: Optional[date]
    amount: Optional[Decimal]
    village_name: str
    township_name: str
    party_names: str = ""

    @property
    def summary_short(self) -> str:
        """The summary cut as Jinja's ``truncate(60)`` cuts it (60 characters, 5 of leeway)."""
        text = self.summary or ""
        return text if len(text) <= 65 else text[:57].rsplit(" ", 1)[0] + "..."


LIST_ROW_COLUMNS = ("id", "number", "registered_on", "dispute_type", "summary", "risk_level", "status", "deadline_on",
                    "paused_since", "amount")


def _list_select() -> Select:
    """The ``ListRow`` columns with the village's and township's names (built once per process)."""
    def build():
        village, township = aliased(OrgUnit), aliased(OrgUnit)
        return (select(*[getattr(Case, c) for c in LIST_ROW_COLUMNS], village.name, township.name)
                .select_from(Case).outerjoin(village, village.id == Case.village_id)
                .outerjoin(township, township.id == Case.township_id))
    return prepared("list.rows", build)


def _list_rows(stmt: Select) -> list[ListRow]:
    """The rows of ``stmt`` (``_list_select`` narrowed, sorted and limited) as ``ListRow``s,
    with their parties' names from a second query."""
    rows = [ListRow(*r) for r in session.execute(stmt)]
    if rows:
        names: dict[int, list[str]] = {}
        for case_id, name in session.execute(
                prepared("list.party_names", lambda: select(Party.case_id, Party.name)
                         .where(Party.case_id.in_(bindparam("ids", expanding=True)))
                         .order_by(Party.case_id, Party.position)), {"ids": [r.id for r in rows]}):
            names.setdefault(case_id, []).append(name)
        for r in rows:
            r.party_names = "、".join(names.get(r.id, ()))
    return rows


def page_of_cases(user: User, filters: CaseFilters, cursor: Optional[str] = None,
                  limit: int = PAGE_SIZE, brief: bool = False) -> CasePage:
    """One keyset page of the filtered list: rows after ``cursor`` in the chosen order, with the
    cursor of the next page (None on the last page).  Ties on the sort value break on id.

    A search first looks through the next ``SEARCH_WINDOW`` rows of the list without the
    search (an index range in list order), testing each row (``search_clause(per_row=True)``):
    a common term (排水沟 in one case of ten) fills the page from a few hundred rows, where
    the indexed search would fetch and sort every one of its 100,000 matches.  When the window
    is full and yields less than a page, a query with a 3+-character term runs the indexed
    search (a rare term: few matches to sort; 1–2-character terms, which no index answers,
    scan the list in order).  Both give exactly the same rows: the window is the head of the
    same order, and the fallback restarts from the same cursor.

    ``brief``: the rows as ``ListRow``s (what the ledger page shows), not ``Case`` objects."""
    _label, col, desc = SORTS[filters.sort]
    order = (col.desc(), Case.id.desc()) if desc else (col.asc(), Case.id.asc())
    after = _after_cursor(filters, col, desc, cursor)

    def fetch(stmt) -> list:
        stmt = stmt.order_by(*order).limit(limit + 1)
        if brief:
            return _list_rows(stmt)
        return list(session.scalars(stmt.options(selectinload(Case.parties), joinedload(Case.village),
                                                 joinedload(Case.township))))

    def base() -> Select:
        return _list_select() if brief else select(Case)

    from app.cases.search import search_clause, search_terms
    rows: Optional[list] = None
    if search_terms(filters.q):
        per_row = search_clause(filters.q, session.get_bind().dialect.name, per_row=True)
        window = (filtered_cases(user, replace(filters, q=None), stmt=select(Case.id)).where(*after)
                  .order_by(*order).limit(SEARCH_WINDOW).subquery())
        rows = fetch(base().join(window, window.c.id == Case.id).where(per_row))
        if len(rows) <= limit and session.scalar(select(func.count()).select_from(window)) >= SEARCH_WINDOW:
            rows = None  # the window ran out before the page filled: the indexed search
    if rows is None:
        rows = fetch(filtered_cases(user, filters, stmt=base()).where(*after))
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(filters.sort, sort_value(last, filters.sort), last.id)
    return CasePage(items, next_cursor)


def _after_cursor(filters: CaseFilters, col, desc: bool, cursor: Optional[str]) -> list:
    """The keyset conditions of the rows after ``cursor`` (none on the first page)."""
    if not cursor:
        return []
    value, last_id = decode_cursor(cursor, filters.sort)
    # The plain bound (col <= value) is redundant but sargable: PostgreSQL does not turn the
    # OR into an index range, and without it a deep page scans every newer row (bench/).
    if desc:
        return [col <= value, or_(col < value, and_(col == value, Case.id < last_id))]
    return [col >= value, or_(col > value, and_(col == value, Case.id > last_id))]


def sort_value(case: Case, sort: str):
    """The value of ``case`` under ``sort`` as the SQL expression computes it."""
    if sort in ("-registered", "registered"):
        return case.registered_on
    if sort == "deadline":
        return case.deadline_on or date(9999, 12, 31)
    if sort == "-amount":
        return case.amount if case.amount is not None else Decimal(-1)
    return case.number


def iter_filtered_cases(user: User, filters: CaseFilters, batch: int = 500, cap: int = 50000):
    """Every case of the filtered list in order, fetched page by page (exports)."""
    cursor, seen = None, 0
    while True:
        page = page_of_cases(user, filters, cursor, limit=batch)
        for case in page.items:
            yield case
            seen += 1
            if seen >= cap:
                return
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def find_possible_duplicates(user: User, village_id: int, dispute_type: str, id_numbers: list[str],
                             phones: list[str], today: date, window_days: int = 90,
                             limit: int = 10) -> list[Case]:
    """Visible cases that may be the same dispute: a party with the same ID number or phone, or
    the same village and type registered within ``window_days`` (newest first)."""
    conditions = [and_(Case.village_id == village_id, Case.dispute_type == dispute_type,
                       Case.registered_on >= today - timedelta(days=window_days))]
    # ID numbers and phones are encrypted: match their keyed hashes (app/crypto.py).
    id_hashes = sorted({h for h in (lookup_hash("id", v) for v in id_numbers) if h})
    phone_hashes = sorted({h for h in (lookup_hash("phone", v) for v in phones) if h})
    if id_hashes:
        conditions.append(exists().where(Party.case_id == Case.id, Party.id_number_hash.in_(id_hashes)))
    if phone_hashes:
        conditions.append(exists().where(Party.case_id == Case.id, Party.phone_hash.in_(phone_hashes)))
    stmt = scope_cases(user).where(or_(*conditions)).order_by(Case.registered_on.desc(), Case.id.desc())
    return list(session.scalars(stmt.limit(limit).options(selectinload(Case.parties),
                                                          joinedload(Case.village))))


def case_detail(user: User, number: str) -> Case:
    """A visible case with what its page shows loaded (its township, village and grid, its
    parties, on PostgreSQL its timeline).  The same statement tells which record tables hold
    rows of the case (``related_tables``, one correlated EXISTS per table), so the page's
    sections need no statement of their own to find out.

    The case and its three places come as one row (``select_rows``: straight on
    the driver), made the session's instances by ``persistent_from_row``; they are then
    persistent as if queried (changes flushed, with the case's version check; relationships
    not set load when first read).  Why: the ORM's query machinery for an entity with three
    joined ones cost about as much as everything else of this statement, on the page opened
    most.  On PostgreSQL the row also carries the case's parties and timeline as JSON arrays
    (``app.db.child_rows_column``): one round trip instead of three; SQLite reads them with
    statements of their own (in-process, a statement costs no round trip there)."""
    dialect = session.get_bind().dialect
    with_children = dialect.name == "postgresql"
    stmt, params = scoped_prepared(user, ("case_detail.row", with_children),
                                   lambda area: _case_detail_statement(area, with_children), server_prepare=True)
    rows = select_rows(stmt, params | {"number": number})
    if not rows:
        raise NotFound()
    row, width, place_width = rows[0], len(_CASE_KEYS), len(_PLACE_KEYS)
    case = persistent_from_row(Case, _CASE_KEYS, row[:width])
    flags = width + len(_CASE_PLACES) * place_width
    transaction_memo(RELATED_MEMO)[case.id] = frozenset(
        name for name, present in zip(RELATED_TABLES, row[flags:flags + len(RELATED_TABLES)]) if present)
    unloaded = sa_inspect(case).unloaded  # all but the columns, unless the session held the case
    for i, place in enumerate(_CASE_PLACES):
        if place in unloaded:
            start = width + i * place_width
            set_committed_value(case, place, persistent_from_row(OrgUnit, _PLACE_KEYS, row[start:start + place_width]))
    if with_children:
        party_json, timeline_json = row[-2:]
        if "parties" in unloaded:
            decode = _child_decoder("parties", _PARTY_COLUMNS, dialect)
            set_committed_value(case, "parties", [persistent_from_row(Party, _PARTY_KEYS, values)
                                                  for values in decode(party_json)])
        if "timeline" in unloaded:
            decode = _child_decoder("timeline", _TIMELINE_COLUMNS, dialect)
            transaction_memo(TIMELINE_MEMO)[case.id] = [_TimelineRow._make(values) for values in decode(timeline_json)]
    else:
        _load_collections(case)
    return case


_CASE_KEYS, _PARTY_KEYS, _PLACE_KEYS = column_keys(Case), column_keys(Party), column_keys(OrgUnit)
_CASE_PLACES = ("township", "village", "grid")
_PARTY_COLUMNS = [getattr(Party, key) for key in _PARTY_KEYS]
_PARTY_ORDER = [Party.position, Party.id]  # the ``parties`` relationship's order
# what the case page's timeline shows (``timeline_of``)
_TIMELINE_COLUMNS = [TimelineEntry.id, TimelineEntry.at, TimelineEntry.actor_id, TimelineEntry.actor_name,
                     TimelineEntry.action, TimelineEntry.from_status, TimelineEntry.to_status, TimelineEntry.note]
_TimelineRow = namedtuple("_TimelineRow", [c.key for c in _TIMELINE_COLUMNS])
TIMELINE_MEMO = "qy_case_timeline"  # case id → its timeline rows read with the case, for the transaction
_DECODERS: dict = {}


def _child_decoder(name: str, columns: list, dialect):
    decoder = _DECODERS.get(name)
    if decoder is None:
        decoder = _DECODERS[name] = ChildRows(columns, dialect).decode
    return decoder


def _case_detail_statement(area, with_children: bool = False):
    """The case numbered ``:number`` in ``area``: its columns, each place's columns (outer
    joins: no grid is a row of NULLs) and the related-table EXISTS flags, as one row; with
    ``with_children`` (PostgreSQL) then its parties and its timeline as JSON arrays."""
    places = [aliased(OrgUnit, name=f"qy_case_{place}") for place in _CASE_PLACES]
    source = Case.__table__
    for place, alias in zip(_CASE_PLACES, places):
        source = source.outerjoin(alias, alias.id == getattr(Case, f"{place}_id"))
    children = [
        child_rows_column(_PARTY_COLUMNS, Party.case_id == Case.id, _PARTY_ORDER, "qy_parties"),
        child_rows_column(_TIMELINE_COLUMNS, TimelineEntry.case_id == Case.id, [TimelineEntry.id], "qy_timeline"),
    ] if with_children else []
    return (select(*entity_columns(Case), *(column for alias in places for column in entity_columns(alias)),
                   *_related_exists(Case.id), *children)
            .select_from(source).where(area, Case.number == bindparam("number")))


def _load_collections(case: Case) -> None:
    """The case's parties, read as rows by a statement built once per process and made the
    session's instances, set as the loaded collection (in the relationship's order) unless
    already loaded."""
    if "parties" in sa_inspect(case).unloaded:
        stmt = prepared("case.party_rows", lambda: select(*_PARTY_COLUMNS)
                        .where(Party.case_id == bindparam("case_id")).order_by(*_PARTY_ORDER),
                        server_prepare=True)
        set_committed_value(case, "parties", [persistent_from_row(Party, _PARTY_KEYS, r)
                                              for r in select_rows(stmt, {"case_id": case.id})])


def timeline_of(case: Case) -> list:
    """The case's timeline as its page shows it, oldest first: rows with the entries' ``id``,
    ``at``, ``actor_id``, ``actor_name``, ``action``, ``from_status``, ``to_status`` and
    ``note``.  Only shown, never changed there, so read as rows rather than entities (a
    tenth of the page's statements' Python); the loaded collection when a write of this
    request has loaded it already (it holds that write's entry); the rows ``case_detail`` read
    with the case when no write came since (``transaction_memo`` forgets them at a flush)."""
    if "timeline" not in sa_inspect(case).unloaded:
        return list(case.timeline)
    read = transaction_memo(TIMELINE_MEMO).get(case.id)
    if read is not None:
        return read
    stmt = prepared("case.timeline_rows", lambda: select(*_TIMELINE_COLUMNS)
                    .where(TimelineEntry.case_id == bindparam("case_id")).order_by(TimelineEntry.id),
                    server_prepare=True)
    return select_rows(stmt, {"case_id": case.id})


def department_tasks_of(case: Case) -> list[DepartmentTask]:
    """The case's department tasks (transfers and invitations), oldest first, each with its
    department.  The workflow panel lists them all and the mediation section the invitations:
    one statement serves both, remembered until the session's next write
    (``app.db.transaction_memo``).  Read as rows — the task's columns and its department's —
    made the session's instances (``persistent_from_row``, as ``case_detail`` does): the ORM's
    joined-load query cost ~3 % of a case page's Python where a case has tasks."""
    if not has_related(case, "department_task"):
        return []
    memo = transaction_memo("qy_case_tasks")
    tasks = memo.get(case.id)
    if tasks is None:
        department = aliased(OrgUnit, name="qy_task_department")
        stmt = prepared("case.department_task_rows", lambda: select(
            *entity_columns(DepartmentTask), *entity_columns(department))
            .join(department, department.id == DepartmentTask.department_id)
            .where(DepartmentTask.case_id == bindparam("case_id")).order_by(DepartmentTask.id),
            server_prepare=True)
        tasks = entities_with_parent(select_rows(stmt, {"case_id": case.id}), DepartmentTask, "department", OrgUnit)
        memo[case.id] = tasks
    return tasks



def attachments_of(case: Case) -> list[Attachment]:
    if not has_related(case, "attachment"):
        return []
    return list(session.scalars(select(Attachment).where(Attachment.case_id == case.id)
                                .order_by(Attachment.id)))


# ---------------------------------------------------------------------------------------------
# Which record tables hold rows for a case: one statement instead of one per table.

# Tables whose rows belong to one case (``case_id``) and that the case page lists.  Most cases
# have rows in two or three of them (parties and timeline are loaded with the case), so the page
# asks once which of these are not empty and skips the queries of the empty ones: at 1,000,000
# cases that was a dozen statements per page, each costing more in the ORM than in the database.
RELATED_TABLES = ("attachment", "risk_grading", "sign_off", "department_task", "supervision_order",
                  "mediation_session", "mediation_agreement", "case_closure", "follow_up",
                  "judicial_confirmation", "mediator_change")
RELATED_MEMO = "qy_case_related"  # case id → the RELATED_TABLES holding its rows, for the transaction


def _related_exists(case_id) -> list:
    """``EXISTS(...) AS attachment, EXISTS(...) AS risk_grading, …`` for the case ``case_id``
    (a bound parameter, or ``Case.id`` correlated to an enclosing query); the tables'
    ``case_id`` indexes answer each EXISTS."""
    from app.db import Base
    tables = Base.metadata.tables
    return [exists().where(tables[name].c.case_id == case_id).label(name) for name in RELATED_TABLES]


def _related_stmt():
    """``SELECT EXISTS(...) AS attachment, …`` for ``:case_id``, built once per process."""
    return prepared("case.related_tables", lambda: select(*_related_exists(bindparam("case_id"))),
                    server_prepare=True)


def related_tables(case: Case) -> frozenset[str]:
    """The names in ``RELATED_TABLES`` that hold at least one row of ``case``.  Remembered until
    the session's next write or the end of its transaction (``app.db.transaction_memo``), so the
    sections of one page share one statement and a write is never hidden."""
    memo = transaction_memo(RELATED_MEMO)
    found = memo.get(case.id)
    if found is None:
        row = session.execute(_related_stmt(), {"case_id": case.id}).one()
        found = memo[case.id] = frozenset(name for name, present in zip(RELATED_TABLES, row) if present)
    return found


def has_related(case: Case, table: str) -> bool:
    """Whether ``case`` has rows in ``table`` (one of ``RELATED_TABLES``); a case not yet
    flushed (no id) has none."""
    if case.id is None:
        return False
    return table in related_tables(case)
