"""The figure summary behind trends and reports always equals the live §6 figures: after
random sequences of registrations, workflow actions, closes, edits, deletes, Core bulk inserts
and ledger imports; through the refreshing path and the read-only (SQLite GET) merge path;
after a full rebuild; and for the sample county of expected.json."""
from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from app import db as app_db
from app.benchgen import generate_cases
from app.cases.models import Case
from app.cases.vocab import STATUSES
from app.cases.services import apply_action
from app.db import write_intent
from app.ledger.importer import import_ledger
from app.orgs.models import OrgUnit
from app.orgs.services import find_by_code
from app.reports import services
from app.reports.queries import case_counts, month_period, rate
from app.reports.summary import (CaseFigureSummary, SummaryDirty, live_monthly_counts, monthly_counts,
                                 rebuild_summary, refresh_summary, summary_status_counts)
from tests.ledger_helpers import good_row, workbook
from tests.test_reports_sample import EXPECTED, sample_app  # noqa: F401  (module fixture)
from tests.test_workflow_service import actor_for, valid_data
from tests.workflow_factories import user

FIRST, LAST = 202401, 202612
OUTCOMES = ["success", "failed", "direct_answer", "department_resolved", "withdrawn", "handed_up", None]
TYPES = [("邻里纠纷", "邻里纠纷"), ("婚姻家庭", "婚姻家庭"), ("拖欠农民工工资", "劳动争议")]


def _villages(db):
    """Three villages of 南湖镇 (where the demo township users work) and three of another township."""
    out = []
    for township in ("429960002", "429960001"):
        out += db.scalars(select(OrgUnit).where(OrgUnit.level == "village",
                                                OrgUnit.township_id == find_by_code(township).id)
                          .order_by(OrgUnit.code).limit(3))
    return out


def _random_case(rng: random.Random, villages) -> Case:
    v = rng.choice(villages)
    registered = date(2024, 1, 1) + timedelta(days=rng.randint(0, 1000))
    dtype, category = rng.choice(TYPES)
    values = dict(number=f"SM-{uuid.uuid4().hex[:10]}", source="群众来访", dispute_type=dtype, type_category=category,
                  county_id=v.county_id, township_id=v.township_id, village_id=v.id, summary="测试纠纷",
                  registered_on=registered, status="in_mediation", handling_level="village")
    roll = rng.random()
    if roll < 0.1:
        values.update(status="declined", outcome="declined")
    elif roll < 0.2:
        values.update(status="pending_triage")
    elif roll < 0.85:
        closed_on = registered + timedelta(days=rng.choice([0, 3, 15, 29, 40, 70]))
        values.update(status="closed", closed_on=closed_on, closed_at=datetime(closed_on.year, closed_on.month,
                                                                               closed_on.day, 8),
                      outcome=rng.choice(OUTCOMES[:-1]))
    return Case(**values)


def _orgs(db, villages):
    county = db.get(OrgUnit, villages[0].county_id)
    townships = {v.township_id for v in villages}
    return [county, *[db.get(OrgUnit, t) for t in sorted(townships)], villages[0], villages[-1]]


def _live_status_counts(db, org) -> dict[str, int]:
    column = {"county": Case.county_id, "township": Case.township_id, "village": Case.village_id}[org.level]
    counts = dict(db.execute(select(Case.status, func.count()).where(column == org.id).group_by(Case.status)).all())
    return {code: counts.get(code, 0) for code in STATUSES}


def _assert_summary_matches(db, orgs, read_only: bool = False):
    """The trend months and the counts by status (the 工作台's) of each org from the summary
    equal the live ones (``read_only``: as a SQLite GET reads, merging pending keys live)."""
    token = write_intent.set(False) if read_only else None
    try:
        for org in orgs:
            got = monthly_counts(org, FIRST, LAST)
            live = live_monthly_counts(org, FIRST, LAST)
            zero = {k: 0 for k in next(iter(live.values()))}
            for ym, counts in live.items():
                assert got.get(ym, zero) == counts, f"{org.code} {ym}"
            assert summary_status_counts(org) == _live_status_counts(db, org), org.code
    finally:
        if token is not None:
            write_intent.reset(token)


def _step(db, rng, villages, cases):
    """One random write through the ORM, the workflow service or a Core bulk insert."""
    kind = rng.choice(["register", "register", "action", "close", "edit", "move", "expired_edit", "delete",
                       "reopen", "bulk"])
    if kind == "register" or not cases:
        case = _random_case(rng, villages)
        db.add(case)
        db.flush()
        cases.append(case)
    elif kind == "action":
        pending = [c for c in cases if c.status == "pending_triage" and c.village_id in {v.id for v in villages[:3]}]
        if pending:
            case = rng.choice(pending)
            action = rng.choice(["answer_directly", "decline"])
            role, case.handling_level = actor_for(action)
            apply_action(user(role), case, action, valid_data(action))
    elif kind == "close":
        open_ = [c for c in cases if c.status in ("in_mediation", "pending_triage")]
        if open_:
            case = rng.choice(open_)
            case.status, case.outcome = "closed", rng.choice(OUTCOMES[:-1])
            case.closed_on = case.registered_on + timedelta(days=rng.randint(0, 60))
            db.flush()
    elif kind == "edit":
        case = rng.choice(cases)
        case.registered_on = case.registered_on + timedelta(days=rng.randint(-40, 40))
        dtype, case.type_category = rng.choice(TYPES)
        if case.closed_on and case.closed_on < case.registered_on:
            case.closed_on = case.registered_on
        db.flush()
    elif kind == "move":
        case, v = rng.choice(cases), rng.choice(villages)
        case.village_id, case.township_id, case.county_id = v.id, v.township_id, v.county_id
        db.flush()
    elif kind == "expired_edit":
        # the old values were never loaded: the hook must read them before the UPDATE
        case = rng.choice(cases)
        new_closed = case.registered_on + timedelta(days=35)
        db.expire(case, ["closed_on", "village_id", "township_id", "status", "outcome"])
        case.closed_on = new_closed
        case.status, case.outcome = "closed", "success"
        v = rng.choice(villages)
        case.village_id, case.township_id = v.id, v.township_id
        db.flush()
    elif kind == "reopen":
        closed = [c for c in cases if c.status == "closed"]
        if closed:
            case = rng.choice(closed)
            case.status, case.closed_on, case.closed_at, case.outcome = "in_mediation", None, None, None
            db.flush()
    elif kind == "delete":
        case = cases.pop(rng.randrange(len(cases)))
        db.delete(case)
        db.flush()
    elif kind == "bulk":
        rows = []
        for _ in range(rng.randint(1, 5)):
            c = _random_case(rng, villages)
            row = {k: getattr(c, k) for k in ("number", "source", "dispute_type", "type_category", "county_id",
                                              "township_id", "village_id", "summary", "registered_on", "status",
                                              "handling_level", "closed_on", "outcome")}
            rows.append(dict(row, registered_at=datetime(2026, 1, 1), deadline_extended=False,
                             recurrence_count=0, paused_days=0, version=1, updated_at=datetime(2026, 1, 1)))
        db.execute(insert(Case.__table__), rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_writes_keep_summary_equal_to_live_figures(db, seed):
    rng = random.Random(seed)
    villages = _villages(db)
    orgs = _orgs(db, villages)
    rebuild_summary()
    cases: list[Case] = []
    for i in range(90):
        _step(db, rng, villages, cases)
        if i % 15 == 14:
            if app_db.is_sqlite():
                _assert_summary_matches(db, orgs, read_only=True)  # merge path: nothing written
                assert db.scalar(select(func.count(SummaryDirty.id))) > 0
            _assert_summary_matches(db, orgs)
            assert db.scalar(select(func.count(SummaryDirty.id))) == 0  # the read refreshed every key
    # Core bulk insert of the benchmark generator and a ledger import (new rows, then an update)
    generate_cases(find_by_code("429960"), 40, years=2, seed=seed, today=date(2026, 10, 31), echo=None)
    report = import_ledger(workbook([good_row(**{"编号": f"S{seed}-1"}),
                                     good_row(**{"编号": f"S{seed}-2", "登记日期": "2025-12-30",
                                                 "结案日期": "2026-01-04"}),
                                     good_row(**{"编号": f"S{seed}-3", "办理结果": "", "结案日期": ""})]),
                           filename="t.xlsx")
    assert report.ok, report.problems
    _assert_summary_matches(db, orgs)
    report = import_ledger(workbook([good_row(**{"编号": f"S{seed}-3", "结案日期": "2025-04-02"}),
                                     good_row(**{"编号": f"S{seed}-1", "登记日期": "2025-02-27",
                                                 "办理结果": "调解不成"})]), filename="t2.xlsx")
    assert report.ok, report.problems
    if app_db.is_sqlite():
        _assert_summary_matches(db, orgs, read_only=True)
    _assert_summary_matches(db, orgs)
    # the incremental rows equal a full rebuild, row for row
    cols = [c for c in CaseFigureSummary.__table__.columns]
    incremental = sorted(tuple(r) for r in db.execute(select(*cols)))
    rebuild_summary()
    assert sorted(tuple(r) for r in db.execute(select(*cols))) == incremental
    assert incremental  # the summary is not trivially empty


def test_trend_reads_the_summary_and_equals_the_monthly_report(db):
    rng = random.Random(11)
    villages = _villages(db)
    for _ in range(60):
        db.add(_random_case(rng, villages))
    db.flush()
    county = db.get(OrgUnit, villages[0].county_id)
    data = services.trend(county, 2026, 3, months=26)  # cross-year: 2024-02 .. 2026-03
    assert data["months"][0] == "2024-02" and data["months"][-1] == "2026-03"
    for i, key in enumerate(data["months"]):
        c = case_counts(county, month_period(int(key[:4]), int(key[5:])))
        assert data["accepted"][i] == c["accepted"]
        assert data["resolved"][i] == c["resolved"]
        assert data["resolution_rate"][i] == rate(c["accepted_resolved"], c["accepted"])
    assert sum(data["accepted"]) > 0
    # the trend really comes from the summary table: a summary row changed by hand shows
    row = db.scalars(select(CaseFigureSummary).where(CaseFigureSummary.accepted > 0, CaseFigureSummary.reg_ym == 202505)
                     .limit(1)).first()
    if row is not None:
        row.accepted += 100
        db.flush()
        assert services.trend(county, 2026, 3, months=26)["accepted"][15] == data["accepted"][15] + 100


def test_markers_are_written_in_the_writing_transaction(db):
    villages = _villages(db)
    refresh_summary()
    nested = db.begin_nested()
    case = _random_case(random.Random(5), villages)
    db.add(case)
    db.flush()
    keys = set(db.execute(select(SummaryDirty.village_id, SummaryDirty.ym)).all())
    assert (case.village_id, case.registered_on.year * 100 + case.registered_on.month) in keys
    nested.rollback()
    assert db.scalar(select(func.count(SummaryDirty.id))) == 0  # rolled back with the case


def test_rebuild_summary_command(db, runner):
    rng = random.Random(3)
    villages = _villages(db)
    for _ in range(10):
        db.add(_random_case(rng, villages))
    db.flush()
    result = runner.invoke(args=["report", "rebuild-summary"])
    assert result.exit_code == 0, result.output
    assert "统计汇总表已重建" in result.output
    assert db.scalar(select(func.sum(CaseFigureSummary.registered))) == 10
    # --if-needed: nothing marked, nothing done; a summary emptied by a migration is built whole
    result = runner.invoke(args=["report", "rebuild-summary", "--if-needed"])
    assert result.exit_code == 0 and "无需更新" in result.output, result.output
    db.execute(CaseFigureSummary.__table__.delete())
    result = runner.invoke(args=["report", "rebuild-summary", "--if-needed"])
    assert result.exit_code == 0 and "已更新" in result.output, result.output
    assert db.scalar(select(func.sum(CaseFigureSummary.registered))) == 10
    assert db.scalar(select(func.sum(CaseFigureSummary.status_closed))) == \
        db.scalar(select(func.count(Case.id)).where(Case.status == "closed"))


def test_sample_county_trend_matches_expected(sample_app):  # noqa: F811
    with sample_app.app_context():
        try:
            for entry in [e for e in EXPECTED if e["kind"] == "monthly"]:
                org = find_by_code(entry["org"])
                year, month = int(entry["from"][:4]), int(entry["from"][5:7])
                data = services.trend(org, year, month, months=36)
                exp = entry["expected"]
                assert data["accepted"][-1] == exp["accepted"], entry["label"]
                assert data["resolved"][-1] == exp["resolved"], entry["label"]
                assert data["resolution_rate"][-1] == exp["resolution_rate"], entry["label"]
            county = find_by_code("429960")
            for org in [county, *app_db.session.scalars(select(OrgUnit).where(OrgUnit.level == "township",
                                                                              OrgUnit.county_id == county.id))]:
                assert monthly_counts(org, 202311, 202610) == live_monthly_counts(org, 202311, 202610), org.code
        finally:
            app_db.session.rollback()
            app_db.session.remove()


def test_a_summary_never_built_is_built_on_first_read(db):
    """The migration creating the tables on a database that already has cases leaves the
    summary empty with no markers: the first read builds it (or, read-only, computes live)."""
    rng = random.Random(9)
    villages = _villages(db)
    for _ in range(15):
        db.add(_random_case(rng, villages))
    db.flush()
    db.execute(SummaryDirty.__table__.delete())
    db.execute(CaseFigureSummary.__table__.delete())
    orgs = _orgs(db, villages)
    if app_db.is_sqlite():
        _assert_summary_matches(db, orgs, read_only=True)
        assert db.scalar(select(func.count()).select_from(CaseFigureSummary)) == 0
    _assert_summary_matches(db, orgs)
    assert db.scalar(select(func.count()).select_from(CaseFigureSummary)) > 0


def test_core_updates_mark_the_summary_only_when_they_touch_its_columns(db):
    from sqlalchemy import update
    villages = _villages(db)
    case = _random_case(random.Random(4), villages)
    db.add(case)
    db.flush()
    refresh_summary()
    db.execute(update(Case).where(Case.id == case.id).values(notes="备注"))
    assert db.scalar(select(func.count(SummaryDirty.id))) == 0
    db.execute(update(Case).where(Case.id == case.id).values(registered_on=date(2024, 2, 3)))
    assert set(db.execute(select(SummaryDirty.village_id, SummaryDirty.ym))) == {(0, 0)}
    _assert_summary_matches(db, _orgs(db, villages))


def _periods(rng: random.Random) -> list:
    """Whole months, a quarter, a year, years-to-date ending mid-month, a partial month and a
    period not starting on the 1st: every shape ``report_counts`` splits differently."""
    from app.reports.queries import Period
    out = [month_period(2025, 3), Period(date(2025, 1, 1), date(2025, 12, 31)),
           Period(date(2026, 4, 1), date(2026, 6, 30)), Period(date(2026, 1, 1), date(2026, 5, 17)),
           Period(date(2026, 5, 1), date(2026, 5, 17)), Period(date(2025, 2, 3), date(2025, 8, 31)),
           Period(date(2024, 1, 1), date(2026, 9, 30))]
    for _ in range(4):
        start = date(2024, rng.randint(1, 12), 1)
        out.append(Period(start, start + timedelta(days=rng.randint(0, 500))))
    return out


def _assert_report_counts_live(db, orgs, rng, read_only: bool = False):
    from app.reports.queries import by_township, report_counts, township_counts
    token = write_intent.set(False) if read_only else None
    try:
        for p in _periods(rng):
            for org in orgs:
                assert report_counts(org, p) == case_counts(org, p), f"{org.code} {p}"
            county = orgs[0]
            live = {tid: (a, r) for tid, (a, r) in township_counts(county, p).items() if a or r}
            assert live == _live_townships(db, county, p), p
            assert [t["accepted"] for t in by_township(county, p)] == \
                [case_counts(db.get(OrgUnit, t.id), p)["accepted"] for t in
                 db.scalars(select(OrgUnit).where(OrgUnit.level == "township", OrgUnit.county_id == county.id)
                            .order_by(OrgUnit.code))]
    finally:
        if token is not None:
            write_intent.reset(token)


def _live_townships(db, county, p):
    out = {}
    for t in db.scalars(select(OrgUnit).where(OrgUnit.level == "township", OrgUnit.county_id == county.id)):
        c = case_counts(t, p)
        if c["accepted"] or c["accepted_resolved"]:
            out[t.id] = (c["accepted"], c["accepted_resolved"])
    return out


def _enrich(db, rng, cases):
    """Give closed cases the attributes the summary's closing figures count."""
    for case in cases:
        if case.closed_on and rng.random() < 0.5:
            case.deadline_on = case.registered_on + timedelta(days=rng.choice([10, 30, 60]))
            case.followed_up_on = case.closed_on + timedelta(days=rng.randint(1, 40))
            case.satisfaction = rng.choice(["satisfied", "basically", "unsatisfied", None])
            case.performance = rng.choice(["performed", "partial", None])
            case.handling_level = rng.choice(["village", "township", "county"])
        if rng.random() < 0.2:
            case.risk_level = "high"
            case.high_risk_at = datetime(case.registered_on.year, case.registered_on.month,
                                         case.registered_on.day, 9)
            if rng.random() < 0.6:
                case.signed_off_at = case.high_risk_at + timedelta(hours=rng.choice([2, 20, 30]))
    db.flush()


@pytest.mark.parametrize("seed", [4, 5])
def test_report_counts_from_the_summary_equal_the_live_counts(db, seed):
    """Every §6 case figure through the summary (whole months, a live partial last month, the
    live backlog and flags) equals ``case_counts`` for periods of every shape, after random
    writes, on the refreshing path and on the read-only merge path."""
    rng = random.Random(seed)
    villages = _villages(db)
    orgs = _orgs(db, villages)
    rebuild_summary()
    cases: list[Case] = []
    for i in range(70):
        _step(db, rng, villages, cases)
        if i % 35 == 34:
            _enrich(db, rng, [c for c in cases if c in db])
            if app_db.is_sqlite():
                _assert_report_counts_live(db, orgs, rng, read_only=True)
            _assert_report_counts_live(db, orgs, rng)
    # the later edits of attributes the summary counts (a follow-up, a satisfaction) show at once
    closed = [c for c in cases if c in db and c.closed_on and c.outcome == "success"]
    for case in closed[:5]:
        case.followed_up_on, case.satisfaction, case.performance = None, None, None
    db.flush()
    _assert_report_counts_live(db, orgs, rng)


def test_a_commit_leaves_the_summary_in_step_and_no_markers(db):
    """The transaction writing a case refreshes the keys it marked before it commits."""
    from app.reports.queries import Period, report_counts
    villages = _villages(db)
    orgs = _orgs(db, villages)
    rebuild_summary()
    db.commit()
    rng = random.Random(8)
    cases = [_random_case(rng, villages) for _ in range(25)]
    db.add_all(cases)
    db.commit()
    assert db.scalar(select(func.count(SummaryDirty.id))) == 0
    cases[0].registered_on = date(2024, 2, 2)
    cases[1].village_id, cases[1].township_id = villages[-1].id, villages[-1].township_id
    db.delete(cases[2])
    db.commit()
    assert db.scalar(select(func.count(SummaryDirty.id))) == 0
    # read-only reads (which never refresh) now find nothing to merge and still agree
    token = write_intent.set(False)
    try:
        p = Period(date(2024, 1, 1), date(2026, 12, 31))
        for org in orgs:
            assert report_counts(org, p) == case_counts(org, p)
    finally:
        write_intent.reset(token)
    cols = list(CaseFigureSummary.__table__.columns)
    incremental = sorted(tuple(r) for r in db.execute(select(*cols)))
    rebuild_summary()
    assert sorted(tuple(r) for r in db.execute(select(*cols))) == incremental


def test_monthly_report_ytd_from_the_summary_equals_the_live_figures(db):
    from app.reports.queries import Period, figures, monthly_report
    rng = random.Random(12)
    villages = _villages(db)
    cases = [_random_case(rng, villages) for _ in range(80)]
    db.add_all(cases)
    db.flush()
    _enrich(db, rng, cases)
    county = db.get(OrgUnit, villages[0].county_id)
    for month in (3, 6, 11):
        report = monthly_report(county, 2025, month)
        p = month_period(2025, month)
        ytd = Period(date(2025, 1, 1), p.end)
        for key in ("accepted", "accepted_resolved", "resolved", "backlog", "timely_rate", "follow_up_rate",
                    "satisfaction_rate", "high_risk", "level_shares", "backlog_ageing", "criminal_prevented"):
            assert report["ytd"][key] == _live_figures(county, ytd)[key], (month, key)
            assert report[key] == _live_figures(county, p)[key], (month, key)
    assert figures(county, Period(date(2025, 1, 1), date(2025, 12, 31)))["accepted"] > 0


def _live_figures(org, p):
    """``figures`` computed with the live ``case_counts`` only."""
    from unittest import mock
    from app.reports import queries
    with mock.patch.object(queries, "report_counts", lambda o, per, backlog=None: queries.case_counts(o, per)):
        return queries.figures(org, p, breakdowns=False)


@pytest.mark.parametrize("end", [date(2026, 3, 31), date(2026, 4, 30), date(2026, 2, 28), date(2026, 6, 30),
                                 date(2026, 5, 17)])
def test_backlog_and_its_ageing_equal_the_live_counts_around_the_cutoffs(db, end):
    """Open cases registered on every day of the 130 before a month's end (some closed after
    it, some graded 高, some declined): the summary's backlog, split by month with the cutoff
    months counted live, equals the live count bucket for bucket."""
    from app.reports.queries import Period, backlog_counts
    villages = _villages(db)
    for i in range(130):
        v = villages[i % len(villages)]
        registered = end - timedelta(days=i)
        case = Case(number=f"BL-{uuid.uuid4().hex[:10]}", source="群众来访", dispute_type="邻里纠纷",
                    type_category="邻里纠纷", county_id=v.county_id, township_id=v.township_id, village_id=v.id,
                    summary="测试纠纷", registered_on=registered, status="in_mediation", handling_level="village")
        if i % 4 == 1:
            later = end + timedelta(days=3)
            case.status, case.outcome, case.closed_on = "closed", "success", later
            case.closed_at = datetime(later.year, later.month, later.day, 8)
        elif i % 4 == 2:
            case.status, case.outcome = "declined", "declined"
        if i % 3 == 0:
            case.risk_level = "high"
        db.add(case)
    db.flush()
    p = Period(date(end.year, 1, 1), end)
    for org in _orgs(db, villages):
        live = case_counts(org, p)
        got = backlog_counts(org, p)
        assert got == {k: live[k] for k in got}, org.code
    assert got["backlog_le30"] and got["backlog_d31_90"] and got["backlog_gt90"]
