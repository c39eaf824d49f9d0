"""Every figure of PRODUCT.md §6 for an org unit (with everything under it) and an inclusive
period, computed with SQL aggregates identical on SQLite and PostgreSQL.

Each case figure is ONE predicate on ``Case`` (``case_predicates``): the report sums it, and
the drill-down lists the cases matching it, so a list's length always equals its figure.

Counting decisions (each reproduces the sample county's expected.json exactly):
- ``registered``: ``registered_on`` in P.  ``accepted``: registered in P and not declined
  (不予受理), whenever it was declined.
- ``closed`` is a flow: ``closed_on`` in P, whatever the outcome; declined cases have no
  ``closed_on``, so they are never closed.
- ``accepted_resolved`` is a cohort: accepted in P and closed as resolved (调解成功, 直接答复化解,
  部门处理化解) on or before the end of P — a case closed the day after P does not count.
- ``timely_closed``: closed in P with ``closed_on <= deadline_on``.
- ``backlog``: registered on or before the end of P, not declined, and not closed by the end
  of P; ageing is the days from registration to the end of P (≤30, 31–90, >90).
- level shares are among resolved in P, by the level the case was resolved at
  (``handling_level`` at close); ``within_county`` = resolved ÷ (resolved + closed in P with
  上报县级以上).
- follow-up, satisfaction and performance rates use the follow-up recorded on the case
  (``followed_up_on``, ``satisfaction``, ``performance``) whatever its date: a follow-up
  made after P still counts for an agreement closed in P.
- ``high_risk.signed_off_24h_rate``: graded 高 among accepted in P and signed off within 24
  hours of first being graded 高, ÷ graded 高 among accepted in P.
- visitors / direct answers come from the reception log (``received_on`` in P);
  ``screening_coverage`` = active villages in U with a sweep record (零报告 included) whose period
  overlaps P ÷ active villages in U — counted by ``app.screening.services.coverage``, the same
  count the screening coverage page shows (the figure links there, with P).
- by_type / by_source keys are the canonical names (sub-types under their parent), in code-point
  order so the JSON text is the same on SQLite and PostgreSQL.
- Rates are percentages rounded half-up to one decimal, ``None`` for a zero denominator.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Optional

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.cases.models import Case
from app.cases.vocab import MEDIATED_OUTCOMES, RESOLVED_OUTCOMES
from app.db import session
from app.orgs.models import OrgUnit
from app.reception.models import ReceptionEntry
from app.screening.services import coverage


@dataclass(frozen=True)
class Period:
    """An inclusive date range in the county's time zone."""

    start: date
    end: date

    def as_json(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def month_period(year: int, month: int) -> Period:
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return Period(first, nxt - timedelta(days=1))


def rate(numerator: int, denominator: int) -> Optional[float]:
    """Percentage rounded half-up to one decimal; None when the denominator is 0."""
    if not denominator:
        return None
    value = (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return float(value)


# ---------------------------------------------------------------- scope

def org_clause(org: OrgUnit, model=Case) -> ColumnElement[bool]:
    """Rows of ``model`` located in ``org`` or under it."""
    if org.level == "county":
        return model.county_id == org.id
    if org.level == "township":
        return model.township_id == org.id
    if org.level == "village":
        return model.village_id == org.id
    raise ValueError(f"reports are for a county, a township or a village, not {org.level}")


# ---------------------------------------------------------------- predicates

def _signed_off_within_24h() -> ColumnElement[bool]:
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        return func.julianday(Case.signed_off_at) - func.julianday(Case.high_risk_at) <= 1.0
    from sqlalchemy import text as sql_text
    return Case.signed_off_at - Case.high_risk_at <= sql_text("interval '24 hours'")


def case_predicates(p: Period) -> dict[str, ColumnElement[bool]]:
    """The WHERE clause of every case figure for period ``p`` (used by totals and drill-downs).
    Built once per (period, dialect) and shared: SQLAlchemy expressions are immutable, and a
    report builds the same ~25 expressions for each of its periods (a fresh dict each call)."""
    return dict(_predicates(p, session.get_bind().dialect.name))


@lru_cache(maxsize=256)
def _predicates(p: Period, _dialect: str) -> dict[str, ColumnElement[bool]]:
    registered = Case.registered_on.between(p.start, p.end)
    accepted = and_(registered, Case.status != "declined")
    closed = and_(Case.closed_on.between(p.start, p.end), Case.outcome != "declined")
    resolved = and_(closed, Case.outcome.in_(RESOLVED_OUTCOMES))
    accepted_resolved = and_(accepted, Case.outcome.in_(RESOLVED_OUTCOMES), Case.closed_on <= p.end)
    mediated = and_(closed, Case.outcome.in_(MEDIATED_OUTCOMES))
    success = and_(closed, Case.outcome == "success")
    backlog = and_(Case.registered_on <= p.end, Case.status != "declined",
                   or_(Case.closed_on.is_(None), Case.closed_on > p.end))
    age_30 = p.end - timedelta(days=30)
    age_90 = p.end - timedelta(days=90)
    rated = and_(closed, Case.satisfaction.is_not(None))
    perf_recorded = and_(success, Case.performance.is_not(None))
    high_accepted = and_(accepted, Case.high_risk_at.is_not(None))
    return {
        "registered": registered,
        "accepted": accepted,
        "accepted_resolved": accepted_resolved,
        "closed": closed,
        "resolved": resolved,
        "mediated": mediated,
        "mediation_success": success,
        "timely_closed": and_(closed, Case.deadline_on.is_not(None), Case.closed_on <= Case.deadline_on),
        "backlog": backlog,
        "backlog_le30": and_(backlog, Case.registered_on >= age_30),
        "backlog_d31_90": and_(backlog, Case.registered_on < age_30, Case.registered_on >= age_90),
        "backlog_gt90": and_(backlog, Case.registered_on < age_90),
        "resolved_village": and_(resolved, Case.handling_level == "village"),
        "resolved_township_or_below": and_(resolved, Case.handling_level.in_(("village", "township"))),
        "handed_up": and_(closed, Case.outcome == "handed_up"),
        "followed_up": and_(success, Case.followed_up_on.is_not(None)),
        "rated": rated,
        "satisfied": and_(rated, Case.satisfaction.in_(("satisfied", "basically"))),
        "performance_recorded": perf_recorded,
        "performed": and_(perf_recorded, Case.performance == "performed"),
        "high_risk_accepted": high_accepted,
        "high_risk_open_at_end": and_(backlog, Case.risk_level == "high"),
        "high_risk_signed_off_24h": and_(high_accepted, Case.signed_off_at.is_not(None), _signed_off_within_24h()),
        "criminal_turned": Case.criminal_turned_on.between(p.start, p.end),
        "criminal_prevented": Case.criminal_prevented_on.between(p.start, p.end),
    }


# Figures a drill-down can list, with the Chinese label shown above the list.
FIGURE_LABELS = {
    "registered": "登记数", "accepted": "受理数", "accepted_resolved": "受理且化解数", "closed": "办结数",
    "resolved": "化解数", "mediated": "调解数", "mediation_success": "调解成功数", "timely_closed": "及时办结数",
    "backlog": "存量", "backlog_le30": "存量（≤30天）", "backlog_d31_90": "存量（31–90天）",
    "backlog_gt90": "存量（>90天）", "resolved_village": "村级化解数", "resolved_township_or_below": "乡镇及以下化解数",
    "handed_up": "上报县级以上数", "followed_up": "已回访的协议数", "rated": "有满意度评价数",
    "satisfied": "满意和基本满意数", "performance_recorded": "有履行记录的协议数", "performed": "已履行数",
    "high_risk_accepted": "高风险受理数", "high_risk_open_at_end": "期末未办结高风险数",
    "high_risk_signed_off_24h": "24小时内签批数", "criminal_turned": "民转刑数", "criminal_prevented": "防止民转刑数",
}


def _sum(pred: ColumnElement[bool]):
    return func.coalesce(func.sum(case((pred, 1), else_=0)), 0)


# Which rows each figure can count.  Every predicate of ``case_predicates`` implies the WHERE
# of its domain, so a figure summed over its domain's rows equals the figure summed over all
# cases; but each domain is an index range (registered in P, closed in P, still open at the end
# of P, flagged in P) instead of the whole history registered before the end of P, which is
# what one query over ``registered_on <= end`` read (the "naive backlog" trap: it grows with
# every year the county has been on the system).
FIGURE_DOMAINS: dict[str, tuple[str, ...]] = {
    "registered": ("registered", "accepted", "accepted_resolved", "high_risk_accepted",
                   "high_risk_signed_off_24h"),
    "closed": ("closed", "resolved", "mediated", "mediation_success", "timely_closed",
               "resolved_village", "resolved_township_or_below", "handed_up", "followed_up", "rated",
               "satisfied", "performance_recorded", "performed"),
    "open_never_closed": ("backlog", "backlog_le30", "backlog_d31_90", "backlog_gt90",
                          "high_risk_open_at_end"),
    "closed_after": ("backlog", "backlog_le30", "backlog_d31_90", "backlog_gt90",
                     "high_risk_open_at_end"),
    "criminal_turned": ("criminal_turned",),
    "criminal_prevented": ("criminal_prevented",),
}


def _domain_clauses(p: Period) -> dict[str, ColumnElement[bool]]:
    """The WHERE of each domain.  The backlog is two disjoint ranges of the ``closed_on``
    index (never closed; closed after P), so neither reads the cases closed long ago."""
    return {
        "registered": Case.registered_on.between(p.start, p.end),
        "closed": Case.closed_on.between(p.start, p.end),
        # only the closed_on range here (the figures' own predicates test registered_on): a
        # registered_on bound would tempt the planner onto the registered index, i.e. the history
        "open_never_closed": Case.closed_on.is_(None),
        "closed_after": Case.closed_on > p.end,
        "criminal_turned": and_(Case.criminal_turned_on.between(p.start, p.end), Case.registered_on <= p.end),
        "criminal_prevented": and_(Case.criminal_prevented_on.between(p.start, p.end),
                                   Case.registered_on <= p.end),
    }


def case_counts(org: OrgUnit, p: Period) -> dict[str, int]:
    """Every case figure of ``case_predicates`` for ``org`` in ``p``, live: one aggregate query
    per domain (``FIGURE_DOMAINS``), the partial sums of the backlog's two domains added.  The
    reference every faster path (``report_counts``, the summary) is tested against."""
    counts = {name: 0 for name in case_predicates(p)}
    _add_domains(counts, org, p, FIGURE_DOMAINS)
    return counts


def _add_domains(counts: dict[str, int], org: OrgUnit, p: Period, domains: dict[str, tuple[str, ...]],
                 clauses: Optional[dict[str, ColumnElement[bool]]] = None,
                 preds: Optional[dict[str, ColumnElement[bool]]] = None) -> None:
    preds = preds or case_predicates(p)
    clauses = clauses or _domain_clauses(p)
    for domain, names in domains.items():
        columns = [_sum(preds[name]).label(name) for name in names]
        row = session.execute(select(*columns).where(org_clause(org), clauses[domain])).one()
        for name in names:
            counts[name] += int(getattr(row, name))


# The figures counted live whatever the period (not in the summary): the backlog at the end of
# P (day-precise ageing; it depends on the end date only, so a month and its year-to-date share
# it) and the 民转刑 flags.
BACKLOG_DOMAINS = {d: FIGURE_DOMAINS[d] for d in ("open_never_closed", "closed_after")}
BACKLOG_FIGURES = tuple(dict.fromkeys(n for names in BACKLOG_DOMAINS.values() for n in names))
FLAG_DOMAINS = {d: FIGURE_DOMAINS[d] for d in ("criminal_turned", "criminal_prevented")}


def split_period(p: Period) -> Optional[tuple[int, int, Optional[Period]]]:
    """``p`` as whole months (first and last ym) the summary answers, plus the partial last
    month (1st to ``p.end``) counted live; None when the summary cannot help (``p`` does not
    start on the 1st, or is all within one partial month)."""
    if p.start.day != 1 or p.end < p.start:
        return None
    first_ym = p.start.year * 100 + p.start.month
    if (p.end + timedelta(days=1)).day == 1:
        return first_ym, p.end.year * 100 + p.end.month, None
    tail = Period(p.end.replace(day=1), p.end)
    before = tail.start - timedelta(days=1)
    last_ym = before.year * 100 + before.month
    if last_ym < first_ym:
        return None
    return first_ym, last_ym, tail


def report_counts(org: OrgUnit, p: Period, backlog: Optional[dict[str, int]] = None) -> dict[str, int]:
    """The same figures as ``case_counts`` (equal, tests prove it), fast: the whole months of
    ``p`` from the figure summary (``app.reports.summary``), a partial last month live over its
    own registered / closed index ranges, and the backlog and 民转刑 flags live.  ``backlog``:
    the backlog figures (``backlog_part``) when the caller already has them for a period with
    the same end date (a month and its year-to-date: the same count)."""
    split = split_period(p)
    if split is None:
        return case_counts(org, p)
    from app.reports.summary import summary_counts
    first_ym, last_ym, tail = split
    preds = case_predicates(p)
    counts = {name: 0 for name in preds}
    for name, n in summary_counts(org, first_ym, last_ym).items():
        counts[name] += n
    if tail is not None:
        # registered in the tail: its registration figures; closed in the tail: its closing
        # figures, and the cohort's cases resolved in the tail (registered anywhere in P)
        tail_preds = dict(case_predicates(tail), accepted_resolved=preds["accepted_resolved"])
        tail_domains = {"registered": tuple(n for n in FIGURE_DOMAINS["registered"] if n != "accepted_resolved"),
                        "closed": FIGURE_DOMAINS["closed"] + ("accepted_resolved",)}
        _add_domains(counts, org, tail, tail_domains, preds=tail_preds)
    _add_domains(counts, org, p, FLAG_DOMAINS, preds=preds)
    if backlog is None:
        backlog = backlog_counts(org, p)
    for name in BACKLOG_FIGURES:
        counts[name] += backlog[name]
    return counts


def backlog_counts(org: OrgUnit, p: Period) -> dict[str, int]:
    """The backlog figures at the end of ``p`` (``BACKLOG_FIGURES``), equal to ``case_counts``'.

    At a month's end: the open cases by registration month from the summary
    (``summary_backlog``), each month in its ageing bucket whole, except the (at most two)
    months holding a cutoff (30 and 90 days before the end, not on a 1st), whose open cases are
    split by day live over their registered range.  Any other end date: live over the
    never-closed and closed-after ranges."""
    counts = {name: 0 for name in BACKLOG_FIGURES}
    preds = case_predicates(p)
    if (p.end + timedelta(days=1)).day != 1:
        _add_domains(counts, org, p, BACKLOG_DOMAINS, preds=preds)
        return counts
    from app.reports.summary import summary_backlog
    c30, c90 = p.end - timedelta(days=30), p.end - timedelta(days=90)
    boundary = {(c.year, c.month) for c in (c30, c90) if c.day != 1}
    for ym, (n, high) in summary_backlog(org, p.end.year * 100 + p.end.month).items():
        counts["backlog"] += n
        counts["high_risk_open_at_end"] += high
        first = date(ym // 100, ym % 100, 1)
        if (first.year, first.month) in boundary:
            continue
        # no cutoff inside this month: its first day is on the same side as all its days
        counts["backlog_le30" if first >= c30 else "backlog_d31_90" if first >= c90 else "backlog_gt90"] += n
    ageing = ("backlog_le30", "backlog_d31_90", "backlog_gt90")
    for year, month in sorted(boundary):
        m = month_period(year, month)
        row = session.execute(select(*[_sum(preds[name]).label(name) for name in ageing])
                              .where(org_clause(org), Case.registered_on.between(m.start, m.end))).one()
        for name in ageing:
            counts[name] += int(getattr(row, name))
    return counts


def backlog_part(counts: dict[str, int]) -> dict[str, int]:
    """The backlog figures of ``counts`` (to pass on as ``backlog`` for the same end date)."""
    return {name: counts[name] for name in BACKLOG_FIGURES}


def reception_counts(org: OrgUnit, p: Period) -> dict[str, int]:
    row = session.execute(select(func.coalesce(func.sum(ReceptionEntry.headcount), 0),
                                 _sum(ReceptionEntry.handling == "direct_answer"))
                          .where(org_clause(org, ReceptionEntry),
                                 ReceptionEntry.received_on.between(p.start, p.end))).one()
    return {"visitors": int(row[0]), "direct_answers": int(row[1])}


def screening_coverage(org: OrgUnit, p: Period) -> Optional[float]:
    """排查覆盖率 of ``org`` in ``p``: the one count of ``app.screening.services.coverage`` (the
    screening coverage page shows the same parts), as a §6 rate."""
    covered, total = coverage(org, p.start, p.end)
    return rate(covered, total)


def _breakdown(org: OrgUnit, p: Period, column) -> dict[str, dict[str, int]]:
    preds = case_predicates(p)
    rows = session.execute(
        select(column, _sum(preds["accepted"]), _sum(preds["accepted_resolved"]))
        .where(org_clause(org), preds["registered"]).group_by(column)).all()
    # Keys in code-point order (sorted here, not by the database's collation), so the JSON text
    # is the same on SQLite and PostgreSQL.
    return {key: {"accepted": int(a), "accepted_resolved": int(r)} for key, a, r in sorted(rows, key=lambda row: row[0])
            if a}


def township_counts(org: OrgUnit, p: Period) -> dict[int, tuple[int, int]]:
    """Accepted and accepted_resolved by township id of county ``org`` in ``p``: the whole
    months from the summary and a partial last month live when ``split_period`` allows,
    otherwise live over the registered range (equal either way; tests prove it)."""
    preds = case_predicates(p)
    split = split_period(p)
    if split is None:
        return {tid: (int(a), int(r)) for tid, a, r in session.execute(
            select(Case.township_id, _sum(preds["accepted"]), _sum(preds["accepted_resolved"]))
            .where(org_clause(org), preds["registered"]).group_by(Case.township_id)).all()}
    from app.reports.summary import summary_by_township
    first_ym, last_ym, tail = split
    counts = {tid: list(v) for tid, v in summary_by_township(org, first_ym, last_ym).items()}
    if tail is not None:
        for tid, a in session.execute(select(Case.township_id, _sum(case_predicates(tail)["accepted"]))
                                      .where(org_clause(org), Case.registered_on.between(tail.start, tail.end))
                                      .group_by(Case.township_id)):
            counts.setdefault(tid, [0, 0])[0] += int(a)
        for tid, r in session.execute(select(Case.township_id, _sum(preds["accepted_resolved"]))
                                      .where(org_clause(org), Case.closed_on.between(tail.start, tail.end))
                                      .group_by(Case.township_id)):
            counts.setdefault(tid, [0, 0])[1] += int(r)
    return {tid: (a, r) for tid, (a, r) in counts.items()}


def by_township(org: OrgUnit, p: Period) -> list[dict[str, Any]]:
    """Every township of a county with its accepted, accepted_resolved and rate, by code (from
    the report cache while no write could have changed them)."""
    if org.level != "county":
        return []
    from app.reports.cache import cached
    return cached("townships", org, (p.start, p.end), lambda: _compute_by_township(org, p))


def _compute_by_township(org: OrgUnit, p: Period) -> list[dict[str, Any]]:
    counts = township_counts(org, p)
    townships = session.scalars(select(OrgUnit).where(OrgUnit.level == "township", OrgUnit.county_id == org.id)
                                .order_by(OrgUnit.code))
    out = []
    for t in townships:
        a, r = counts.get(t.id, (0, 0))
        out.append({"code": t.code, "name": t.name, "accepted": a, "accepted_resolved": r,
                    "resolution_rate": rate(r, a)})
    return out


def figures(org: OrgUnit, p: Period, breakdowns: bool = True) -> dict[str, Any]:
    """The §10 report object for ``org`` and ``p`` (without ``ytd``)."""
    return figures_and_counts(org, p, breakdowns)[0]


def figures_and_counts(org: OrgUnit, p: Period, breakdowns: bool = True,
                       backlog: Optional[dict[str, int]] = None) -> tuple[dict[str, Any], dict[str, int]]:
    """``figures`` and the raw counts (``report_counts``) it was computed from (the report page
    shows some counts, e.g. resolved at village level, that the §10 object gives only as
    shares).  ``backlog``: as for ``report_counts`` (the same figures, so not in the cache key).
    Served from the report cache (``app.reports.cache``) while no write could have changed them."""
    from app.reports.cache import cached
    return cached("figures", org, (p.start, p.end, breakdowns),
                  lambda: _compute_figures_and_counts(org, p, breakdowns, backlog))


def _compute_figures_and_counts(org: OrgUnit, p: Period, breakdowns: bool,
                                backlog: Optional[dict[str, int]]) -> tuple[dict[str, Any], dict[str, int]]:
    c = report_counts(org, p, backlog)
    r = reception_counts(org, p)
    out: dict[str, Any] = {
        "org": {"code": org.code, "name": org.name, "level": org.level},
        "period": p.as_json(),
        "registered": c["registered"],
        "accepted": c["accepted"],
        "accepted_resolved": c["accepted_resolved"],
        "resolution_rate": rate(c["accepted_resolved"], c["accepted"]),
        "closed": c["closed"],
        "resolved": c["resolved"],
        "mediated": c["mediated"],
        "mediation_success": c["mediation_success"],
        "mediation_success_rate": rate(c["mediation_success"], c["mediated"]),
        "timely_closed": c["timely_closed"],
        "timely_rate": rate(c["timely_closed"], c["closed"]),
        "backlog": c["backlog"],
        "backlog_ageing": {"le30": c["backlog_le30"], "d31_90": c["backlog_d31_90"], "gt90": c["backlog_gt90"]},
        "level_shares": {
            "village": rate(c["resolved_village"], c["resolved"]),
            "township_or_below": rate(c["resolved_township_or_below"], c["resolved"]),
            "within_county": rate(c["resolved"], c["resolved"] + c["handed_up"]),
        },
        "visitors": r["visitors"],
        "direct_answers": r["direct_answers"],
        "screening_coverage": screening_coverage(org, p),
        "follow_up_rate": rate(c["followed_up"], c["mediation_success"]),
        "satisfaction_rate": rate(c["satisfied"], c["rated"]),
        "performance_rate": rate(c["performed"], c["performance_recorded"]),
        "high_risk": {
            "accepted": c["high_risk_accepted"],
            "open_at_end": c["high_risk_open_at_end"],
            "signed_off_24h_rate": rate(c["high_risk_signed_off_24h"], c["high_risk_accepted"]),
        },
        "criminal_turned": c["criminal_turned"],
        "criminal_prevented": c["criminal_prevented"],
    }
    if breakdowns:
        out["by_type"] = _breakdown(org, p, Case.type_category)
        out["by_source"] = _breakdown(org, p, Case.source)
        out["by_township"] = by_township(org, p)
    return out, c


def _strip(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if not k.startswith("by_") and k not in ("org",)}


def period_report(org: OrgUnit, p: Period) -> dict[str, Any]:
    """``flask report period`` / ``GET /api/v1/reports/period``."""
    return figures(org, p)


def monthly_report(org: OrgUnit, year: int, month: int) -> dict[str, Any]:
    """``flask report monthly`` / ``GET /api/v1/reports/monthly``: the month plus ``ytd``
    (1 January to the end of the month, without the by_ breakdowns)."""
    p = month_period(year, month)
    report, counts = figures_and_counts(org, p)
    report["ytd"] = ytd_figures(org, p, counts)
    return report


def ytd_figures(org: OrgUnit, p: Period, month_counts: dict[str, int]) -> dict[str, Any]:
    """The ``ytd`` object of a monthly report: 1 January to the end of month ``p``; its backlog
    figures are the month's (same end date: counted once)."""
    ytd, _ = figures_and_counts(org, Period(date(p.start.year, 1, 1), p.end), breakdowns=False,
                                backlog=backlog_part(month_counts))
    return _strip(ytd)


def drilldown_clause(figure: str, p: Period) -> Optional[ColumnElement[bool]]:
    """The predicate listing the cases behind ``figure`` (None for an unknown figure)."""
    return case_predicates(p).get(figure)

