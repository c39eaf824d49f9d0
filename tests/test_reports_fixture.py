"""Every §6 figure worked by hand on a small fixture (tests/reports_factories.build_fixture):
南湖镇, June 2026.  Runs on SQLite and on PostgreSQL (TEST_DATABASE_URL) with the same result.

Cases of 南湖镇 (P = 2026-06-01..06-30):
 1 reg 6-02 success 6-10 village, deadline 6-30, followed up, 满意, 已履行
 2 reg 6-20 success 7-01 (the day after P)          3 reg 6-05 declined
 4 reg 5-10 success 6-03 township, deadline 6-01 (late), 不满意, 未履行
 5 reg 6-08 拖欠农民工工资 (劳动争议) direct answer 6-08   6 reg 6-12 failed 6-25
 7 reg 6-15 open, 高, signed off after 18 h          8 reg 3-01 open, 民转刑 6-18
 9 reg 6-16 handed up 6-28
"""
from __future__ import annotations

from datetime import date

from app.orgs.models import OrgUnit
from app.orgs.services import find_by_code
from app.reports.queries import Period, case_counts, figures, month_period, rate
from tests.reports_factories import build_fixture

JUNE = month_period(2026, 6)

EXPECTED_JUNE = {
    "registered": 7,            # 1 2 3 5 6 7 9
    "accepted": 6,              # minus the declined 3
    "accepted_resolved": 2,     # 1 5 (2 closed the day after P; 4 registered before P)
    "resolution_rate": 33.3,
    "closed": 5,                # 1 4 5 6 9 (flow: 4 was registered in May)
    "resolved": 3,              # 1 4 5
    "mediated": 3,              # 1 4 6
    "mediation_success": 2,     # 1 4
    "mediation_success_rate": 66.7,   # 2/3
    "timely_closed": 3,         # 1 5 6 (4 late, 9 without deadline)
    "timely_rate": 60.0,
    "backlog": 3,               # 2 (closed after P) 7 8
    "backlog_ageing": {"le30": 2, "d31_90": 0, "gt90": 1},
    "level_shares": {"village": 66.7, "township_or_below": 100.0, "within_county": 75.0},
    "visitors": 0, "direct_answers": 0,
    "follow_up_rate": 50.0, "satisfaction_rate": 50.0, "performance_rate": 50.0,
    "high_risk": {"accepted": 1, "open_at_end": 1, "signed_off_24h_rate": 100.0},
    "criminal_turned": 1, "criminal_prevented": 0,
    "by_type": {"邻里纠纷": {"accepted": 5, "accepted_resolved": 1}, "劳动争议": {"accepted": 1, "accepted_resolved": 1}},
    "by_source": {"群众来访": {"accepted": 5, "accepted_resolved": 1},
                  "来电(12345热线)": {"accepted": 1, "accepted_resolved": 1}},
}


def test_township_june_by_hand(db):
    build_fixture()
    report = figures(find_by_code("429960002"), JUNE)
    got = {k: report[k] for k in EXPECTED_JUNE}
    assert got == EXPECTED_JUNE
    assert report["screening_coverage"] == 0.0  # villages exist, none swept


def test_year_to_date_and_county(db):
    build_fixture()
    ytd = figures(find_by_code("429960002"), Period(date(2026, 1, 1), JUNE.end), breakdowns=False)
    assert (ytd["registered"], ytd["accepted"], ytd["accepted_resolved"], ytd["resolution_rate"]) == (9, 8, 3, 37.5)
    county = figures(db.get(OrgUnit, find_by_code("429960002").county_id), JUNE)
    assert (county["accepted"], county["accepted_resolved"]) == (7, 3)
    rows = {t["code"]: t for t in county["by_township"]}
    assert rows["429960002"]["resolution_rate"] == 33.3
    assert rows["429960003"]["resolution_rate"] == 100.0
    assert rows["429960001"]["resolution_rate"] is None


def test_zero_denominators_and_rounding(db):
    build_fixture()
    empty = figures(find_by_code("429960002"), month_period(2026, 1))
    assert empty["accepted"] == 0 and empty["resolution_rate"] is None and empty["timely_rate"] is None
    assert empty["level_shares"] == {"village": None, "township_or_below": None, "within_county": None}
    assert rate(2, 3) == 66.7 and rate(1, 8) == 12.5 and rate(0, 0) is None
    assert rate(1, 3) == 33.3 and rate(2, 8) == 25.0


def test_case_counts_match_figures(db):
    build_fixture()
    c = case_counts(find_by_code("429960002"), JUNE)
    assert c["accepted_resolved"] == 2 and c["resolved_village"] == 2 and c["handed_up"] == 1
