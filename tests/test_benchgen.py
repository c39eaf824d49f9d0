"""The benchmark data generator: plausible distributions and referential integrity on a small N."""
from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from app.benchgen import generate_cases
from app.cases.models import (Case, CaseNumberCounter, DepartmentTask, FollowUp, Party, RiskGrading, SignOff,
                              SupervisionOrder, TimelineEntry)
from app.orgs.models import OrgUnit
from app.orgs.services import find_by_code


def test_generator_distributions_and_integrity(db):
    county = find_by_code("429960")
    n = generate_cases(county, 2000, years=3, seed=7, today=date(2026, 10, 31), echo=None)
    assert n == 2000
    cases = db.scalars(select(Case)).all()
    assert len(cases) == 2000
    assert len({c.number for c in cases}) == 2000
    statuses = Counter(c.status for c in cases)
    assert 0.80 < statuses["closed"] / n < 0.98  # most cases are closed
    # the backlog is mostly recent, with a thinning tail of old cases (not a flat share of every year)
    today = date(2026, 10, 31)

    def open_share(low: int, high: int) -> float:
        aged = [c for c in cases if low <= (today - c.registered_on).days < high]
        return sum(c.closed_on is None and c.status != "declined" for c in aged) / len(aged)
    assert open_share(20, 90) > open_share(365, 730) > open_share(730, 1100) > 0
    assert open_share(730, 1100) < 0.02
    outcomes = Counter(c.outcome for c in cases if c.status == "closed")
    assert outcomes.most_common(1)[0][0] == "success"
    assert all(c.closed_on is not None and c.closed_on >= c.registered_on for c in cases if c.status == "closed")
    assert all(c.closed_on is None for c in cases if c.status != "closed")
    assert {c.type_category for c in cases if c.dispute_type == "拖欠农民工工资"} <= {"劳动争议"}
    risk = Counter(c.risk_level for c in cases)
    assert risk["low"] > risk["medium"] > risk["high"] > 0
    # referential integrity: every village belongs to the case's township and county
    villages = {o.id: o for o in db.scalars(select(OrgUnit).where(OrgUnit.level == "village"))}
    assert all(villages[c.village_id].township_id == c.township_id for c in cases)
    assert db.scalar(select(func.count(Party.id))) == 2 * n
    assert db.scalar(select(func.count(TimelineEntry.id)).where(TimelineEntry.action == "register")) == n
    followed = [c for c in cases if c.followed_up_on is not None]
    assert db.scalar(select(func.count(FollowUp.id))) == len(followed) > 0
    assert all(c.outcome == "success" for c in followed)
    # the workflow records a county has: every medium/high case graded, every high one signed off,
    # 部门化解 closes answered transfers, open transfers on 已转办 cases, the newest waiting for triage
    graded = db.scalars(select(RiskGrading.case_id)).all()
    assert sorted(graded) == sorted(c.id for c in cases if c.risk_level in ("medium", "high"))
    assert sorted(db.scalars(select(SignOff.case_id))) == sorted(c.id for c in cases if c.risk_level == "high")
    tasks = db.scalars(select(DepartmentTask)).all()
    by_id = {c.id: c for c in cases}
    transfers = [t for t in tasks if t.kind == "transfer"]
    assert {t.case_id for t in transfers if t.answered_at} == \
        {c.id for c in cases if c.outcome == "department_resolved"}
    assert {t.case_id for t in transfers if t.answered_at is None} == {c.id for c in cases if c.status == "transferred"}
    assert all(by_id[t.case_id].outcome == "success" and t.answered_at for t in tasks if t.kind == "invite")
    departments = {o.id: o for o in db.scalars(select(OrgUnit).where(OrgUnit.level == "department"))}
    assert all(departments[t.department_id].county_id == by_id[t.case_id].county_id for t in tasks)
    assert statuses["pending_triage"] > 0 and statuses["escalated"] > 0 and statuses["transferred"] > 0
    assert all(c.deadline_on is None for c in cases if c.status == "pending_triage")
    assert all(c.escalation_due_on is not None for c in cases if c.status == "escalated")
    assert all(by_id[o.case_id].closed_on is None for o in db.scalars(select(SupervisionOrder)))
    assert all((c.follow_up_due_on is not None) == (c.outcome == "success") for c in cases)
    # the numbering counters continue after the generated numbers
    for year in {c.registered_on.year for c in cases}:
        last = db.scalar(select(CaseNumberCounter.last).where(CaseNumberCounter.year == year))
        assert last == sum(1 for c in cases if c.registered_on.year == year)


def test_generator_is_deterministic(db):
    county = find_by_code("429960")
    generate_cases(county, 50, years=1, seed=11, today=date(2026, 1, 1), echo=None)
    first = [(c.number, c.dispute_type, c.outcome) for c in db.scalars(select(Case).order_by(Case.id))]
    db.rollback()
    generate_cases(county, 50, years=1, seed=11, today=date(2026, 1, 1), echo=None)
    second = [(c.number, c.dispute_type, c.outcome) for c in db.scalars(select(Case).order_by(Case.id))]
    assert first == second


def test_province_scale_spreads_cases_over_generated_counties(db):
    """``--counties``: the demo county and generated ones, townships spread evenly, every case
    in its village's county (ids consistent down the tree)."""
    from app.benchgen import ensure_counties
    county = find_by_code("429960")
    counties = ensure_counties(county, 3, 36)
    assert [c.level for c in counties] == ["county"] * 3 and len({c.id for c in counties}) == 3
    for c in counties:
        assert db.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.level == "township",
                                                                          OrgUnit.county_id == c.id)) >= 12
    generate_cases(county, 600, years=2, seed=3, today=date(2026, 10, 31), echo=None, counties=counties)
    per_county = dict(db.execute(select(Case.county_id, func.count()).group_by(Case.county_id)).all())
    assert set(per_county) == {c.id for c in counties} and min(per_county.values()) > 100
    village = OrgUnit.__table__.alias("v")
    mismatched = db.scalar(select(func.count()).select_from(Case).join(village, village.c.id == Case.village_id)
                           .where((village.c.county_id != Case.county_id) | (village.c.township_id != Case.township_id)))
    assert mismatched == 0


def test_generated_cases_are_searchable_like_any_other(db):
    """SQLite: the load indexes its new cases in one go (``search_index_deferred``); afterwards the
    search table holds every case with its parties' names, the row triggers are back, and a
    case registered after the load is indexed by them as usual."""
    from sqlalchemy import text

    from app.cases.search import SQLITE_ROW_TRIGGERS
    from tests.workflow_factories import make_case
    generate_cases(find_by_code("429960"), 120, years=1, seed=5, today=date(2026, 10, 31), echo=None)
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("PostgreSQL searches the tables themselves through GIN indexes")
    indexed = dict(db.execute(text("SELECT rowid, names FROM case_search")).all())
    names = dict(db.execute(text("SELECT case_id, group_concat(name, ' ') FROM party GROUP BY case_id")).all())
    case_ids = set(db.scalars(select(Case.id)))
    assert set(indexed) == case_ids
    assert all(indexed[i] == names.get(i, "") for i in case_ids)
    triggers = set(db.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    assert set(SQLITE_ROW_TRIGGERS) <= triggers
    later = make_case()
    assert db.scalar(text("SELECT count(*) FROM case_search WHERE rowid = :i"), {"i": later.id}) == 1


def test_a_failed_load_keeps_the_search_triggers(db):
    from sqlalchemy import text

    from app.cases.search import SQLITE_ROW_TRIGGERS, search_index_deferred
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite's search table only")
    savepoint = db.begin_nested()
    try:
        with search_index_deferred(db.connection()):
            assert not set(SQLITE_ROW_TRIGGERS) & set(db.scalars(text("SELECT name FROM sqlite_master")))
            raise RuntimeError("the load failed")
    except RuntimeError:
        savepoint.rollback()
    assert set(SQLITE_ROW_TRIGGERS) <= set(db.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
