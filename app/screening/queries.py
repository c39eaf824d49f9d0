"""Read side of screening and prevention (联防清源): coverage of a period, the sweep list,
repeat parties, clusters, hot spots and the early-warning board.  Every read of cases goes
through ``app.cases.queries.scope_cases``."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional

from sqlalchemy import Integer, and_, bindparam, cast, func, literal, null, select, union, union_all
from sqlalchemy import case as sql_case

from app.accounts.models import User
from app.cases.models import Case, Party, TimelineEntry
from app.cases.queries import scope_cases, scoped_prepared
from app.cases.vocab import OPEN_STATUSES
from app.db import select_rows, session
from app.orgs.models import OrgUnit
from app.screening.models import Sweep, SweepFinding
from app.screening.services import home_org, villages_in
from app.settings.services import get_setting
from app.templating import today_local

RISK_ORDER = {"high": 3, "medium": 2, "low": 1}

# How many rows one early-warning rule puts on the board at most, and how many repeat groups and
# clusters it reads; when a rule finds more, the board says it shows only the first ones.
WARNING_RULE_LIMIT = 500
REPEAT_GROUP_LIMIT = 200
CLUSTER_LIMIT = 200


# ---------------------------------------------------------------- coverage and sweeps

@dataclass
class VillageCoverage:
    village: OrgUnit
    sweep: Optional[Sweep]
    findings: int = 0


@dataclass
class TownshipCoverage:
    township: OrgUnit
    villages: list[VillageCoverage] = field(default_factory=list)

    @property
    def covered(self) -> int:
        return sum(1 for v in self.villages if v.sweep is not None)

    @property
    def total(self) -> int:
        return len(self.villages)

    @property
    def missing(self) -> list[VillageCoverage]:
        return [v for v in self.villages if v.sweep is None]


def coverage_table(org: OrgUnit, start: date, end: date) -> list[TownshipCoverage]:
    """Every village of ``org`` grouped by township, with its sweep for the period (or None)."""
    villages = list(session.scalars(villages_in(org).order_by(OrgUnit.code)))
    ids = [v.id for v in villages]
    sweeps = {s.village_id: s for s in session.scalars(
        select(Sweep).where(Sweep.village_id.in_(ids), Sweep.period_start <= end, Sweep.period_end >= start)
        .order_by(Sweep.period_start))} if ids else {}
    counts = dict(session.execute(
        select(SweepFinding.sweep_id, func.count()).where(
            SweepFinding.sweep_id.in_([s.id for s in sweeps.values()])).group_by(SweepFinding.sweep_id)).all()) \
        if sweeps else {}
    townships = {t.id: t for t in session.scalars(
        select(OrgUnit).where(OrgUnit.id.in_({v.township_id for v in villages})))} if villages else {}
    groups: dict[int, TownshipCoverage] = {}
    for v in villages:
        group = groups.setdefault(v.township_id, TownshipCoverage(townships[v.township_id]))
        s = sweeps.get(v.id)
        group.villages.append(VillageCoverage(v, s, counts.get(s.id, 0) if s else 0))
    return sorted(groups.values(), key=lambda g: g.township.code)


def recent_sweeps(org: OrgUnit, limit: int = 50) -> list[tuple[Sweep, OrgUnit, int]]:
    """The newest sweeps in ``org`` with their village and number of cases found."""
    villages = villages_in(org).subquery()
    found = (select(SweepFinding.sweep_id, func.count().label("n")).group_by(SweepFinding.sweep_id)
             .subquery())
    rows = session.execute(
        select(Sweep, OrgUnit, func.coalesce(found.c.n, 0))
        .join(OrgUnit, OrgUnit.id == Sweep.village_id)
        .outerjoin(found, found.c.sweep_id == Sweep.id)
        .where(Sweep.village_id.in_(select(villages.c.id)))
        .order_by(Sweep.period_start.desc(), Sweep.swept_on.desc(), Sweep.id.desc()).limit(limit)).all()
    return [tuple(r) for r in rows]


def sweep_cases(user: User, sweep: Sweep) -> list[Case]:
    """The cases a sweep found that ``user`` may see."""
    return list(session.scalars(scope_cases(user).join(SweepFinding, SweepFinding.case_id == Case.id)
                                .where(SweepFinding.sweep_id == sweep.id).order_by(Case.id)))


# ---------------------------------------------------------------- repeat parties

@dataclass
class RepeatGroup:
    """One person seen in several cases, and how they were matched."""
    basis: str  # "id_number" / "phone" / "name_village"
    key: str  # the lookup hash for id_number / phone (never the value), the name for name_village
    name: str
    cases: list[Case]

    @property
    def basis_label(self) -> str:
        return {"id_number": "身份证号相同", "phone": "电话相同", "name_village": "同村同名"}[self.basis]


def _repeat_keys(user: User, limit: int) -> list[tuple[str, tuple]]:
    scoped_ids = scope_cases(user, select(Case.id)).subquery()
    base = Party.case_id.in_(select(scoped_ids.c.id))
    keys: list[tuple[str, tuple]] = []
    for basis, cols, extra in (
            # Encrypted values are grouped by their keyed hashes (app/crypto.py).
            ("id_number", (Party.id_number_hash,), Party.id_number_hash.isnot(None)),
            ("phone", (Party.phone_hash,), Party.phone_hash.isnot(None)),
            ("name_village", (Party.name, Case.village_id), Party.kind == "person")):
        stmt = select(*cols).where(base, extra)
        if basis == "name_village":
            stmt = stmt.join(Case, Case.id == Party.case_id)
        stmt = stmt.group_by(*cols).having(func.count(Party.case_id.distinct()) >= 2).limit(limit)
        keys += [(basis, tuple(row)) for row in session.execute(stmt).all()]
    return keys


def repeat_groups(user: User, limit: int = 100) -> list[RepeatGroup]:
    """People who appear in two or more visible cases: same ID number, or same phone, or same
    name within the same village.  A person matched by ID number is not listed again by phone
    or name for the same set of cases."""
    keys = _repeat_keys(user, limit)
    # One query per basis for every group's cases (not one per group), grouped here.
    rows_by_key: dict[tuple[str, tuple], list] = defaultdict(list)
    for basis in ("id_number", "phone", "name_village"):
        wanted = [key for b, key in keys if b == basis]
        if not wanted:
            continue
        if basis == "id_number":
            cols, where = (Party.id_number_hash,), Party.id_number_hash.in_([k[0] for k in wanted])
        elif basis == "phone":
            cols, where = (Party.phone_hash,), Party.phone_hash.in_([k[0] for k in wanted])
        else:
            cols = (Party.name, Case.village_id)
            where = and_(Party.name.in_({k[0] for k in wanted}), Case.village_id.in_({k[1] for k in wanted}),
                         Party.kind == "person")
        wanted_set = set(wanted)
        for case, name, *key in session.execute(
                scope_cases(user, select(Case, Party.name, *cols)).join(Party, Party.case_id == Case.id)
                .where(where).order_by(Case.registered_on.desc(), Case.id.desc())).all():
            if tuple(key) in wanted_set:
                rows_by_key[(basis, tuple(key))].append((case, name))
    groups: list[RepeatGroup] = []
    seen: set[frozenset[int]] = set()
    for basis, key in keys:
        rows = rows_by_key.get((basis, key), [])
        cases = list({c.id: c for c, _ in rows}.values())
        ids = frozenset(c.id for c in cases)
        if len(cases) < 2 or ids in seen:
            continue
        seen.add(ids)
        groups.append(RepeatGroup(basis, key[0], rows[0][1], cases))
    groups.sort(key=lambda g: (-len(g.cases), g.name))
    return groups[:limit]


REPEAT_CANDIDATES = 5000  # party rows read for one case's repeats (a name shared that often is no signal)


# What the case page shows of another case (a number to link, its type, date and status): read
# as plain rows, not whole cases with their 60 columns and encrypted fields.
CASE_BRIEF = (Case.id, Case.number, Case.dispute_type, Case.registered_on, Case.status)


REPEAT_REASONS = {"id": "身份证号相同：", "phone": "电话相同：", "name": "同村同名："}


def _repeat_pairs(kinds: tuple[str, ...]):
    """The (case, condition) pairs of the repeat conditions ``kinds`` (``id``/``phone``/``name``,
    one per party and basis), as one UNION with a SELECT per condition (not one OR): each is
    then one index range (the ID and phone hashes; the name within the village on ix_party_name,
    the party row carrying its case's village), and the condition's number rides along, so the
    reasons need no second pass."""
    branches = []
    for i, kind in enumerate(kinds):
        value = bindparam(f"v{i}")
        pair = select(Party.case_id, literal(i).label("condition"))
        if kind == "name":
            branches.append(pair.where(Party.name == value, Party.kind == "person",
                                       Party.village_id == bindparam("village")))
        else:
            branches.append(pair.where(Party.id_number_hash == value if kind == "id" else Party.phone_hash == value))
    return union(*branches).limit(REPEAT_CANDIDATES)


def _repeat_select(area, kinds: tuple[str, ...]):
    """The visible cases among the repeat pairs of ``kinds``, each row a brief case
    (``CASE_BRIEF``), a NULL ``total`` (the 同村同类 rows' column, so both read as one result)
    and the number of the condition it matched (a case matching several conditions comes once
    per condition): the pairs are a subquery joined to the cases on their key, with the user's
    area.  One statement instead of the pairs and then the cases."""
    pairs = _repeat_pairs(kinds).subquery("pairs")
    return (select(*CASE_BRIEF, cast(null(), Integer).label("total"), pairs.c.condition)
            .join(pairs, pairs.c.case_id == Case.id)
            .where(area, Case.id != bindparam("self")).order_by(Case.id, pairs.c.condition))


def _repeat_conditions(case: Case) -> list[tuple[str, str, str]]:
    """(kind, value, party name) of each repeat condition of ``case``: its parties' ID numbers
    and phones (their keyed hashes) and a person's name within the village."""
    conditions: list[tuple[str, str, str]] = []
    for p in case.parties:
        if p.id_number_hash:
            conditions.append(("id", p.id_number_hash, p.name))
        if p.phone_hash:
            conditions.append(("phone", p.phone_hash, p.name))
        if p.kind == "person":
            conditions.append(("name", p.name, p.name))
    return conditions


def _repeat_params(case: Case, conditions: list[tuple[str, str, str]]) -> dict:
    return {f"v{i}": value for i, (_, value, _) in enumerate(conditions)} | {"village": case.village_id,
                                                                           "self": case.id}


def _repeats_from_rows(rows: list, conditions: list[tuple[str, str, str]]) -> list[tuple]:
    """``repeats_for_case``'s answer from the repeat rows (in case id, condition order)."""
    found: dict[int, tuple] = {}  # case id → (brief row, reasons), in id order
    for row in rows:
        entry = found.get(row.id)
        if entry is None:
            if len(found) == 50 * len(conditions):
                break
            entry = found[row.id] = (row, [])
        kind, _, name = conditions[row.condition]
        reason = REPEAT_REASONS[kind] + name
        if reason not in entry[1]:
            entry[1].append(reason)
    return sorted(found.values(), key=lambda e: e[0].registered_on, reverse=True)


def repeats_for_case(user: User, case: Case) -> list[tuple]:
    """Other visible cases sharing a party with ``case`` (ID number, phone or name in the same
    village), each with the reasons it matched: ``[(brief row, [reason, …]), …]``, newest first
    (a brief row has ``id``, ``number``, ``dispute_type``, ``registered_on`` and ``status``);
    at most 50 cases per condition (those with the lowest ids).  The case page reads these
    together with its 同村同类 cases (``prevention_for_case``)."""
    conditions = _repeat_conditions(case)
    if not conditions:
        return []
    kinds = tuple(kind for kind, _, _ in conditions)
    # a case of more than a few parties: built for the one call, not kept
    stmt, area = scoped_prepared(user, ("repeats", kinds), lambda clause: _repeat_select(clause, kinds),
                                 server_prepare=True, keep=len(kinds) <= 8)
    return _repeats_from_rows(select_rows(stmt, area | _repeat_params(case, conditions)), conditions)


# ---------------------------------------------------------------- clusters

@dataclass
class Cluster:
    """The same village and dispute type several times within the window (同村同类多发)."""
    village: OrgUnit
    dispute_type: str
    count: int
    cases: list[Case]


def cluster_settings() -> tuple[int, int]:
    return int(get_setting("cluster.window_days") or 90), int(get_setting("cluster.threshold") or 3)


def window_start(today: date, window_days: int) -> date:
    """First day of the window ending today: the window is ``window_days`` days, today included."""
    return today - timedelta(days=window_days - 1)


def clusters(user: User, today: Optional[date] = None, limit: Optional[int] = None) -> list[Cluster]:
    """Village × type pairs with at least ``cluster.threshold`` visible cases registered within
    the last ``cluster.window_days`` days (today included), the biggest first, at most ``limit``
    (default ``CLUSTER_LIMIT``)."""
    today = today or today_local()
    limit = CLUSTER_LIMIT if limit is None else limit
    window, threshold = cluster_settings()
    since = window_start(today, window)
    stmt = scope_cases(user, select(Case.village_id, Case.dispute_type, func.count(Case.id))).where(
        Case.registered_on >= since, Case.registered_on <= today).group_by(Case.village_id, Case.dispute_type) \
        .having(func.count(Case.id) >= threshold).order_by(func.count(Case.id).desc(), Case.village_id,
                                                           Case.dispute_type)
    pairs = session.execute(stmt.limit(limit)).all()
    if not pairs:
        return []
    # The cases and villages of every cluster in two queries (not two per cluster).
    villages = {o.id: o for o in session.scalars(select(OrgUnit).where(OrgUnit.id.in_({v for v, _, _ in pairs})))}
    by_pair: dict[tuple[int, str], list[Case]] = defaultdict(list)
    for c in session.scalars(scope_cases(user).where(
            Case.village_id.in_({v for v, _, _ in pairs}), Case.dispute_type.in_({d for _, d, _ in pairs}),
            Case.registered_on >= since, Case.registered_on <= today).order_by(Case.registered_on.desc())):
        by_pair[(c.village_id, c.dispute_type)].append(c)
    return [Cluster(villages[village_id], dtype, n, by_pair[(village_id, dtype)]) for village_id, dtype, n in pairs]


# The case page names at most this many of the 同村同类 cases (the newest) and links to the
# ledger for the rest: at 1,000,000 cases in one county a village's same-type cases within
# ±90 days are ~26 on average (up to ~60), a row of numbers nobody reads, and building it was a
# good part of the page's time.
CLUSTER_SHOWN = 10


@dataclass(frozen=True)
class CaseCluster:
    """The 同村同类 cases of one case: how many there are (``total``), the newest ``cases``
    (brief rows, ``CASE_BRIEF``, at most ``CLUSTER_SHOWN``), the window's first and last
    registration days (both inclusive, for the ledger link) and the settings it was judged by."""
    total: int
    cases: list
    first_day: date
    last_day: date
    window: int
    threshold: int

    @property
    def reaches_threshold(self) -> bool:
        """多发: this case and the others make at least ``cluster.threshold`` cases (the rule
        ``clusters`` applies to the warning board)."""
        return self.total + 1 >= self.threshold


def _cluster_select(area):
    """Other visible cases of the village ``:village`` and type ``:type`` registered strictly
    between ``:since`` and ``:until``, not ``:id``: the newest ``:shown`` as brief rows, each
    with their number (``total``, a window count over the same rows) and a NULL ``condition``
    (the repeat rows' column)."""
    return (select(*CASE_BRIEF, func.count().over().label("total"), cast(null(), Integer).label("condition"))
            .where(area, Case.village_id == bindparam("village"), Case.dispute_type == bindparam("type"),
                   Case.id != bindparam("id"), Case.registered_on > bindparam("since"),
                   Case.registered_on < bindparam("until"))
            .order_by(Case.registered_on.desc(), Case.id.desc()).limit(bindparam("shown")))


def _cluster_params(case: Case, window: int, shown: int) -> dict:
    return {"village": case.village_id, "type": case.dispute_type, "id": case.id,
            "since": case.registered_on - timedelta(days=window),
            "until": case.registered_on + timedelta(days=window), "shown": shown}


def _cluster_from_rows(rows: list, params: dict, window: int, threshold: int) -> CaseCluster:
    return CaseCluster(total=rows[0].total if rows else 0, cases=rows,
                       first_day=params["since"] + timedelta(days=1), last_day=params["until"] - timedelta(days=1),
                       window=window, threshold=threshold)


def cluster_for_case(user: User, case: Case, shown: int = CLUSTER_SHOWN) -> CaseCluster:
    """Other visible cases of the same village and type registered within the window of this
    case's registration date (either side): their number and the newest ``shown`` of them, in
    one statement (the total is a window count over the same rows).  The case page reads these
    together with its repeat parties (``prevention_for_case``)."""
    window, threshold = cluster_settings()
    stmt, area = scoped_prepared(user, "cluster_for_case", _cluster_select, server_prepare=True)
    params = _cluster_params(case, window, shown)
    return _cluster_from_rows(select_rows(stmt, area | params), params, window, threshold)


def prevention_for_case(user: User, case: Case, shown: int = CLUSTER_SHOWN) -> tuple[list[tuple], CaseCluster]:
    """``(repeats_for_case(user, case), cluster_for_case(user, case, shown))`` in one statement:
    the two SELECTs as the branches of a UNION ALL, told apart by which of ``total`` and
    ``condition`` is NULL, each branch keeping its own order and limit (a subquery).  Why: the
    case page asked them one after the other, two round trips where one does; built once per
    shape of the repeat conditions and kind of area, like ``repeats_for_case``'s own."""
    conditions = _repeat_conditions(case)
    if not conditions:
        return [], cluster_for_case(user, case, shown)
    window, threshold = cluster_settings()
    kinds = tuple(kind for kind, _, _ in conditions)

    def build(area):
        cluster = _cluster_select(area).subquery("qy_cluster")
        repeats = _repeat_select(area, kinds).subquery("qy_repeats")
        return union_all(select(*cluster.c), select(*repeats.c))
    stmt, area = scoped_prepared(user, ("prevention", kinds), build, server_prepare=True, keep=len(kinds) <= 8)
    cluster_params = _cluster_params(case, window, shown)
    rows = select_rows(stmt, area | cluster_params | _repeat_params(case, conditions))
    cluster_rows = sorted((r for r in rows if r.condition is None),
                          key=lambda r: (r.registered_on, r.id), reverse=True)
    repeat_rows = sorted((r for r in rows if r.condition is not None), key=lambda r: (r.id, r.condition))
    return (_repeats_from_rows(repeat_rows, conditions),
            _cluster_from_rows(cluster_rows, cluster_params, window, threshold))


# ---------------------------------------------------------------- hot spots

@dataclass
class HotSpots:
    months: list[str]
    rows: list[dict]  # {"village", "township", "type", "counts": [..], "total"}
    by_type_month: dict[str, list[int]]
    tiles: list[dict]  # {"village", "township", "open", "risk", "high", "medium"}


def month_list(end: date, count: int = 12) -> list[str]:
    months = []
    y, m = end.year, end.month
    for _ in range(count):
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return months[::-1]


def hot_spots(user: User, org: OrgUnit, end: Optional[date] = None, months: int = 12) -> HotSpots:
    """Type × village × month counts of cases registered in the ``months`` months ending with
    ``end``'s month, for ``org`` (township or county) within what ``user`` sees; and the open
    risk of each village for the schematic view (the highest risk level of its open cases)."""
    end = end or today_local()
    labels = month_list(end, months)
    first = date.fromisoformat(labels[0] + "-01")
    last_y, last_m = int(labels[-1][:4]), int(labels[-1][5:])
    after = date(last_y + (last_m == 12), last_m % 12 + 1, 1)
    villages = {v.id: v for v in session.scalars(villages_in(org).order_by(OrgUnit.code))}
    townships = {t.id: t for t in session.scalars(select(OrgUnit).where(
        OrgUnit.id.in_({v.township_id for v in villages.values()})))} if villages else {}
    # Grouped by day (portable SQL, at most villages × types × days rows), folded into months here.
    rows = session.execute(scope_cases(user, select(Case.village_id, Case.dispute_type, Case.registered_on,
                                                    func.count(Case.id)))
                           .where(Case.village_id.in_(list(villages)), Case.registered_on >= first,
                                  Case.registered_on < after)
                           .group_by(Case.village_id, Case.dispute_type, Case.registered_on)).all() \
        if villages else []
    table: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * len(labels))
    by_type: dict[str, list[int]] = defaultdict(lambda: [0] * len(labels))
    index = {label: i for i, label in enumerate(labels)}
    for village_id, dtype, registered_on, n in rows:
        i = index[f"{registered_on.year:04d}-{registered_on.month:02d}"]
        table[(village_id, dtype)][i] += n
        by_type[dtype][i] += n
    out_rows = [{"village": villages[vid].name, "village_code": villages[vid].code,
                 "township": townships[villages[vid].township_id].name, "type": dtype,
                 "counts": counts, "total": sum(counts)}
                for (vid, dtype), counts in table.items()]
    out_rows.sort(key=lambda r: (-r["total"], r["village_code"], r["type"]))
    risk = session.execute(scope_cases(user, select(Case.village_id, Case.risk_level, func.count(Case.id)))
                           .where(Case.village_id.in_(list(villages)), Case.status.in_(OPEN_STATUSES))
                           .group_by(Case.village_id, Case.risk_level)).all() if villages else []
    per_village: dict[int, dict] = {vid: {"open": 0, "high": 0, "medium": 0, "low": 0} for vid in villages}
    for vid, level, n in risk:
        per_village[vid]["open"] += n
        if level in RISK_ORDER:
            per_village[vid][level] += n
    tiles = []
    for vid, v in villages.items():
        c = per_village[vid]
        level = "high" if c["high"] else "medium" if c["medium"] else "low" if c["low"] else ("none" if not c["open"] else "ungraded")
        tiles.append({"village": v.name, "code": v.code, "township": townships[v.township_id].name,
                      "township_code": townships[v.township_id].code, "risk": level, **c})
    return HotSpots(labels, out_rows, dict(sorted(by_type.items())), tiles)


# ---------------------------------------------------------------- early warning

@dataclass
class WarningRow:
    case: Case
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (rule code, why in Chinese)


def inactive_days() -> int:
    return int(get_setting("warning.inactive_days") or 14)


@dataclass
class WarningBoard:
    """The early-warning board: its rows, the clusters over the threshold, and the rules that
    found more than they may show (rule code → the number shown, "仅显示前 N 条")."""
    rows: list[WarningRow]
    clusters: list[Cluster]
    cut: dict[str, int] = field(default_factory=dict)


# Rule codes in the order the board explains them.
WARNING_RULES = ("risk", "overdue", "not_performed", "repeat", "cluster", "inactive")


def warning_board(user: User, today: Optional[date] = None) -> WarningBoard:
    """The early-warning board (预警): visible cases on it with every reason, and the clusters
    over the threshold.  Rules: open 高/中 risk; overdue (open, deadline passed); open with a
    repeat party; agreement not performed; in a cluster; open 高 without a timeline entry in
    ``warning.inactive_days`` days.  Each case rule reads at most ``WARNING_RULE_LIMIT`` cases,
    the most pressing first (高 before 中, the longest overdue, the oldest); repeat parties at
    most ``REPEAT_GROUP_LIMIT`` groups and clusters at most ``CLUSTER_LIMIT``: a rule that found
    more is listed in ``cut``."""
    today = today or today_local()
    rows: dict[int, WarningRow] = {}
    cut: dict[str, int] = {}

    def add(case: Case, code: str, reason: str) -> None:
        rows.setdefault(case.id, WarningRow(case)).reasons.append((code, reason))

    def capped(code: str, stmt, limit: int) -> list:
        found = list(session.scalars(stmt.limit(limit + 1)))
        if len(found) > limit:
            cut[code] = limit
        return found[:limit]

    limit = WARNING_RULE_LIMIT
    open_ = Case.status.in_(OPEN_STATUSES)
    high_first = sql_case((Case.risk_level == "high", 0), else_=1)
    for c in capped("risk", scope_cases(user).where(open_, Case.risk_level.in_(("high", "medium")))
                    .order_by(high_first, Case.registered_on, Case.id), limit):
        add(c, "risk", "未办结的高风险纠纷" if c.risk_level == "high" else "未办结的中风险纠纷")
    for c in capped("overdue", scope_cases(user).where(open_, Case.deadline_on < today)
                    .order_by(Case.deadline_on, Case.id), limit):
        add(c, "overdue", f"已超过办理期限 {(today - c.deadline_on).days} 天（期限 {c.deadline_on.isoformat()}）")
    for c in capped("not_performed", scope_cases(user).where(Case.performance == "not_performed")
                    .order_by(Case.closed_on.desc(), Case.id.desc()), limit):
        add(c, "not_performed", "调解协议未履行")
    groups = repeat_groups(user, limit=REPEAT_GROUP_LIMIT + 1)
    if len(groups) > REPEAT_GROUP_LIMIT:
        cut["repeat"] = REPEAT_GROUP_LIMIT
    for group in groups[:REPEAT_GROUP_LIMIT]:
        for c in group.cases:
            if c.is_open:
                add(c, "repeat", f"当事人{group.name}重复出现（{group.basis_label}，共{len(group.cases)}件）")
    window, threshold = cluster_settings()
    found_clusters = clusters(user, today, limit=CLUSTER_LIMIT + 1)
    if len(found_clusters) > CLUSTER_LIMIT:
        cut["cluster"] = CLUSTER_LIMIT
    found_clusters = found_clusters[:CLUSTER_LIMIT]
    for cl in found_clusters:
        for c in cl.cases:
            if c.is_open:
                add(c, "cluster", f"{cl.village.name}{window}天内{cl.dispute_type}纠纷{cl.count}件（阈值{threshold}）")
    days = inactive_days()
    cutoff = datetime.combine(today - timedelta(days=days), datetime.min.time())
    recent = select(TimelineEntry.case_id).where(TimelineEntry.at >= cutoff)
    for c in capped("inactive", scope_cases(user).where(open_, Case.risk_level == "high", Case.id.not_in(recent))
                    .order_by(Case.registered_on, Case.id), limit):
        add(c, "inactive", f"高风险纠纷 {days} 天内无任何办理记录")
    ordered = sorted(rows.values(), key=lambda r: (-RISK_ORDER.get(r.case.risk_level or "", 0),
                                                   -len(r.reasons), r.case.registered_on))
    for r in ordered:
        # One reason per rule and case, even when several repeat groups match.
        seen: set[str] = set()
        r.reasons = [x for x in r.reasons if not (x[1] in seen or seen.add(x[1]))]
    return WarningBoard(ordered, found_clusters, {code: cut[code] for code in WARNING_RULES if code in cut})


def warnings(user: User, today: Optional[date] = None) -> tuple[list[WarningRow], list[Cluster]]:
    """The board's rows and clusters (``warning_board`` without what was cut off)."""
    board = warning_board(user, today)
    return board.rows, board.clusters


def unreported_villages(user: User, today: Optional[date] = None) -> tuple[list[OrgUnit], tuple[date, date]]:
    """Villages in the user's township or county without a sweep in the current period."""
    from app.screening.services import period_of
    org = home_org(user)
    period = period_of(today or today_local())
    if org is None:
        return [], period
    reported = select(Sweep.village_id).where(Sweep.period_start <= period[1], Sweep.period_end >= period[0])
    return list(session.scalars(villages_in(org).where(OrgUnit.id.not_in(reported)).order_by(OrgUnit.code))), period
