"""Every §6 figure worked by hand on a small fixture (tests/reports_factories.build_fixture):
南湖镇, June 2026.  Runs on SQLite and on PostgreSQL (TEST_DATABASE_URL) with the same result.

Cases of 南湖镇 (P = 2026-06-01..06-30; type 邻里 and source 群众来访 unless said):
 1 reg 6-02 success 6-10 village, deadline 6-30, followed up, 满意, 已履行
 2 reg 6-20 success 7-01 (the day after P)          3 reg 6-05 declined
 4 reg 5-10 success 6-03 township, deadline 6-01 (late), 不满意, 未履行, 防止民转刑 5-20
 5 reg 6-08 拖欠农民工工资 (劳动争议) 来电(12345热线) direct answer 6-08
 6 reg 6-12 failed 6-25, 防止民转刑 6-26
 7 reg 6-15 open, 高, signed off after 18 h          8 reg 3-01 open, 高 since 3-02 (never signed), 民转刑 6-18
 9 reg 6-16 handed up 6-28                           11 reg 5-30 open (31 days at 6-30)
12 reg 5-31 open (30 days at 6-30)                   13 reg 6-22 open, 高, signed off after 25 h
Elsewhere: 10 西坪镇 reg 6-09 success 6-09.
Reception (南湖镇): 6-03 group of 5 answered; 6-11 township centre 1 answered; 6-30 2 registered;
  7-01 3 answered (after P); 5-20 1 guided (ytd only).  西坪镇: 6-09 4 answered.
Sweeps: 朱湖社区 June 零报告; 杨树村 week 6-29..7-05 (overlaps P); 张湾村 week 5-25..5-31 (ytd only);
  新桥镇 张湾村 June (1 of 新桥镇's 8 villages).  南湖镇 has 12 villages, the county 140.
"""
from __future__ import annotations

from datetime import date

from app.orgs.models import OrgUnit
from app.orgs.services import find_by_code
from app.reports.queries import Period, case_counts, figures, month_period, rate
from tests.reports_factories import build_fixture

JUNE = month_period(2026, 6)

EXPECTED_JUNE = {
    "registered": 8,            # 1 2 3 5 6 7 9 13
    "accepted": 7,              # minus the declined 3
    "accepted_resolved": 2,     # 1 5 (2 closed the day after P; 4 registered before P)
    "resolution_rate": 28.6,    # 2/7
    "closed": 5,                # 1 4 5 6 9 (flow: 4 was registered in May)
    "resolved": 3,              # 1 4 5
    "mediated": 3,              # 1 4 6
    "mediation_success": 2,     # 1 4
    "mediation_success_rate": 66.7,   # 2/3
    "timely_closed": 3,         # 1 5 6 (4 late, 9 without deadline)
    "timely_rate": 60.0,
    "backlog": 6,               # 2 (closed after P) 7 8 11 12 13
    "backlog_ageing": {"le30": 4,      # 2 7 13, and 12 at exactly 30 days
                       "d31_90": 1,    # 11 at 31 days
                       "gt90": 1},     # 8
    "level_shares": {"village": 66.7, "township_or_below": 100.0, "within_county": 75.0},
    "visitors": 8,              # 5 (a group visit counts every person) + 1 + 2; not 7-01's 3 nor 西坪镇's 4
    "direct_answers": 2,        # the group visit and the township centre's answer
    "screening_coverage": 16.7,  # 朱湖社区 and 杨树村 of 12 villages (张湾村's sweep is May's)
    "follow_up_rate": 50.0, "satisfaction_rate": 50.0, "performance_rate": 50.0,
    "high_risk": {"accepted": 2,               # 7 13 (8 was registered in March)
                  "open_at_end": 3,            # 7 8 13
                  "signed_off_24h_rate": 50.0},  # 7 (18 h) of 7 and 13 (25 h)
    "criminal_turned": 1,       # 8
    "criminal_prevented": 1,    # 6 (4's flag is dated in May)
    "by_type": {"邻里": {"accepted": 6, "accepted_resolved": 1}, "劳动争议": {"accepted": 1, "accepted_resolved": 1}},
    "by_source": {"群众来访": {"accepted": 6, "accepted_resolved": 1},
                  "来电(12345热线)": {"accepted": 1, "accepted_resolved": 1}},
}


def test_township_june_by_hand(db):
    build_fixture()
    report = figures(find_by_code("429960002"), JUNE)
    got = {k: report[k] for k in EXPECTED_JUNE}
    assert got == EXPECTED_JUNE
    assert report["by_township"] == []  # a township has no township breakdown


def test_screening_coverage_one_of_eight_villages(db):
    build_fixture()
    assert figures(find_by_code("429960011"), JUNE)["screening_coverage"] == 12.5   # 1/8
    assert figures(find_by_code("429960011"), month_period(2026, 5))["screening_coverage"] == 0.0
    assert figures(find_by_code("429960011002"), JUNE)["screening_coverage"] == 100.0
    assert figures(find_by_code("429960002002"), JUNE)["screening_coverage"] == 0.0  # swept in May only


def test_year_to_date_and_county(db):
    build_fixture()
    ytd = figures(find_by_code("429960002"), Period(date(2026, 1, 1), JUNE.end), breakdowns=False)
    # registered 1-9 and 11-13; accepted minus 3; resolved by 6-30: 1 4 5
    assert (ytd["registered"], ytd["accepted"], ytd["accepted_resolved"], ytd["resolution_rate"]) == (12, 11, 3, 27.3)
    assert (ytd["visitors"], ytd["direct_answers"], ytd["screening_coverage"]) == (9, 2, 25.0)  # + May's guided 1; 3/12
    # 7 8 13 accepted this year graded 高, all open; only 7 signed off within 24 h
    assert ytd["high_risk"] == {"accepted": 3, "open_at_end": 3, "signed_off_24h_rate": 33.3}
    assert (ytd["criminal_turned"], ytd["criminal_prevented"]) == (1, 2)
    county = figures(db.get(OrgUnit, find_by_code("429960002").county_id), JUNE)
    assert (county["accepted"], county["accepted_resolved"]) == (8, 3)
    assert (county["visitors"], county["direct_answers"]) == (12, 3)
    assert county["screening_coverage"] == 2.1   # 3 of 140 villages (2.14)
    rows = {t["code"]: t for t in county["by_township"]}
    assert rows["429960002"]["resolution_rate"] == 28.6
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
    assert (c["high_risk_accepted"], c["high_risk_signed_off_24h"]) == (2, 1)
    assert (c["backlog_le30"], c["backlog_d31_90"], c["backlog_gt90"]) == (4, 1, 1)
