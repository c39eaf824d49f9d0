"""The report cache (app.reports.cache) never serves a figure a committed write has changed:
random writes of every kind, each committed, interleaved with cached reads that must equal the
live computation; writes in another county leave a county's entries standing; a transaction's
own uncommitted writes bypass the cache; and the figures read no table outside REPORT_TABLES
(else a write there would leave a stale entry)."""
from __future__ import annotations

import random
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import insert, update

from app.cases.models import Case
from app.db import Base
from app.orgs.models import OrgUnit
from app.orgs.services import add_unit, find_by_code
from app.reports import cache
from app.reports import services as report_services
from app.reports.queries import (Period, _compute_figures_and_counts, figures_and_counts, month_period,
                                 monthly_report, period_report)
from app.reports.summary import rebuild_summary
from tests.reports_factories import add_reception, add_sweep
from tests.test_scale_summary import _orgs, _random_case, _step, _villages
from tests.helpers import count_queries

PERIODS = [month_period(2025, 6), month_period(2026, 3), Period(date(2025, 1, 1), date(2025, 12, 31)),
           Period(date(2026, 1, 1), date(2026, 3, 17)), Period(date(2025, 11, 5), date(2026, 2, 20))]


def _reads(orgs, rng) -> list:
    return [(org, rng.choice(PERIODS), rng.random() < 0.5) for org in rng.sample(orgs, 3)]


def _check(reads) -> None:
    """Cached reads, each equal to the live computation."""
    for org, p, breakdowns in reads:
        got = figures_and_counts(org, p, breakdowns=breakdowns)
        assert got == _compute_figures_and_counts(org, p, breakdowns, None), (org.code, p)


def _extra_step(db, rng, villages) -> None:
    """Writes the case steps of test_scale_summary do not make: the reception log, sweeps, a
    village's name and active flag, Core UPDATEs."""
    kind = rng.choice(["reception", "sweep", "rename", "deactivate", "core_update"])
    v = rng.choice(villages)
    if kind == "reception":
        add_reception(date(2025, 6, rng.randint(1, 30)), headcount=rng.randint(1, 4), village=v.code)
    elif kind == "sweep":
        start = date(2025, 6, 1) + timedelta(days=rng.randint(0, 3) * 7)
        add_sweep(v.code, start, start + timedelta(days=6))
    elif kind == "rename":
        v.name = v.name + "新"
        db.flush()
    elif kind == "deactivate":
        v.active = not v.active
        db.flush()
    else:
        db.execute(update(Case).where(Case.village_id == v.id).values(outcome="success", status="closed",
                                                                      closed_on=date(2025, 6, 20)))


@pytest.mark.parametrize("seed", [1, 2])
def test_cached_reports_equal_live_figures_after_every_committed_write(db, seed):
    rng = random.Random(seed)
    villages = _villages(db)
    orgs = _orgs(db, villages)
    rebuild_summary()
    db.commit()
    cases: list[Case] = []
    for _ in range(25):
        db.add(_random_case(rng, villages))
    db.commit()
    before = cache.stats()
    for i in range(60):
        if rng.random() < 0.75:
            _step(db, rng, villages, cases)
        else:
            _extra_step(db, rng, villages)
        if rng.random() < 0.2:
            # an uncommitted write: this transaction's own reads must see it (the cache is bypassed)
            _check(_reads(orgs, rng))
        db.commit()
        reads = _reads(orgs, rng)
        _check(reads)
        _check(reads)  # the same reads again: hits
    after = cache.stats()
    assert after["hits"] >= before["hits"] + 180  # the cache was really used
    assert after["misses"] > before["misses"]


def test_a_second_read_is_a_hit_and_a_copy(db):
    county = find_by_code("429960")
    db.add(_random_case(random.Random(3), _villages(db)))
    db.commit()
    first = monthly_report(county, 2025, 6)
    hits = cache.stats()["hits"]
    second = monthly_report(county, 2025, 6)
    assert cache.stats()["hits"] > hits
    assert second == first
    second["registered"] = -1  # callers may change what they got without touching the cache
    assert monthly_report(county, 2025, 6)["registered"] == first["registered"]


def test_uncommitted_writes_bypass_the_cache(db):
    villages = _villages(db)
    county = db.get(OrgUnit, villages[0].county_id)
    db.commit()
    p = month_period(2025, 6)
    before = figures_and_counts(county, p)[0]["registered"]
    case = _random_case(random.Random(5), villages)
    case.registered_on, case.status, case.outcome, case.closed_on, case.closed_at = \
        date(2025, 6, 10), "in_mediation", None, None, None
    db.add(case)
    db.flush()
    assert figures_and_counts(county, p)[0]["registered"] == before + 1
    db.rollback()
    assert figures_and_counts(county, p)[0]["registered"] == before


def test_a_write_in_another_county_keeps_this_countys_entries(db):
    county = find_by_code("429960")
    other = add_unit("测试县", "county", None, code="489999")
    township = add_unit("测试镇", "township", other, code="489999001")
    village = add_unit("测试村", "village", township, code="489999001001")
    db.add(_random_case(random.Random(6), _villages(db)))
    db.flush()
    rebuild_summary()  # built already (else the first case write builds it, bumping every county)
    db.commit()
    p = month_period(2025, 6)
    mine = figures_and_counts(county, p)
    theirs = figures_and_counts(other, p)
    assert theirs[0]["registered"] == 0
    db.add(Case(number="CACHE-OTHER-1", source="群众来访", dispute_type="邻里纠纷", type_category="邻里纠纷",
                county_id=other.id, township_id=township.id, village_id=village.id, summary="测试",
                registered_on=date(2025, 6, 3), status="in_mediation", handling_level="village"))
    db.commit()
    hits = cache.stats()["hits"]
    assert figures_and_counts(county, p) == mine
    assert cache.stats()["hits"] == hits + 1  # still cached: the write was in another county
    assert figures_and_counts(other, p)[0]["registered"] == 1  # recomputed: its county's counter moved
    # a Core bulk insert bumps the counties of its rows
    db.execute(insert(Case.__table__), [dict(number="CACHE-CORE-1", source="群众来访", dispute_type="邻里纠纷",
                                             type_category="邻里纠纷", county_id=county.id,
                                             township_id=find_by_code("429960002").id,
                                             village_id=find_by_code("429960002001").id, summary="测试",
                                             registered_on=date(2025, 6, 4), status="in_mediation",
                                             handling_level="village", deadline_extended=False, recurrence_count=0,
                                             paused_days=0, version=1)])
    db.commit()
    assert figures_and_counts(county, p)[0]["registered"] == mine[0]["registered"] + 1


def test_cache_off_computes_every_time(app, db):
    county = find_by_code("429960")
    db.add(_random_case(random.Random(4), _villages(db)))
    db.commit()
    app.config["REPORT_CACHE_SIZE"] = 0
    try:
        stats = cache.stats()
        monthly_report(county, 2025, 6)
        monthly_report(county, 2025, 6)
        assert cache.stats() == stats
    finally:
        app.config["REPORT_CACHE_SIZE"] = cache.DEFAULT_SIZE


def test_cached_computations_read_only_report_tables(app, db):
    """Every table the cached computations read is one whose writes bump the counters."""
    villages = _villages(db)
    rng = random.Random(8)
    for _ in range(30):
        db.add(_random_case(rng, villages))
    db.commit()
    app.config["REPORT_CACHE_SIZE"] = 0
    try:
        with count_queries(app) as statements:
            for org in _orgs(db, villages):
                monthly_report(org, 2025, 6)
                period_report(org, Period(date(2025, 2, 3), date(2025, 11, 20)))
                report_services.trend(org, 2026, 3, months=26)
    finally:
        app.config["REPORT_CACHE_SIZE"] = cache.DEFAULT_SIZE
    read = {name for name in Base.metadata.tables
            if any(re.search(rf"\b{name}\b", s) for s in statements)}
    assert "dispute_case" in read and "reception_entry" in read  # the capture saw the reports' SQL
    assert read <= cache.REPORT_TABLES | {"case_figure_summary", "summary_dirty", "data_generation"}, \
        read - cache.REPORT_TABLES


def test_the_counters_are_bumped_after_the_summary_refresh():
    """Lock order on PostgreSQL: the summary's advisory lock, then counter rows (no crosswise waits)."""
    from app.db import session
    from app.reports import summary
    fresh = session.session_factory()  # listeners on the scoped session land on every session it makes
    names = [getattr(fn, "__name__", "") for fn in fresh.dispatch.before_commit]
    fresh.close()
    assert summary._refresh_before_commit.__name__ in names and cache._bump_before_commit.__name__ in names
    assert names.index(summary._refresh_before_commit.__name__) < names.index(cache._bump_before_commit.__name__)
