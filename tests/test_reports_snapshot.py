"""The whole §10 JSON of ``monthly_report`` on the hand-built fixture (tests/reports_factories),
for the county (with by_township) and for 南湖镇, against literal values worked by hand (see
tests/test_reports_fixture.py for the cases).  The suite runs on SQLite and on PostgreSQL
(TEST_DATABASE_URL), so passing on both proves they give the same JSON — to the character,
key order included — and the CLI and the API give the same object."""
from __future__ import annotations

import json

from app.orgs.services import find_by_code
from app.reports.queries import monthly_report
from tests.intake_helpers import api_token
from tests.reports_factories import build_fixture

AGEING = {"le30": 4, "d31_90": 1, "gt90": 1}
ZERO = {"accepted": 0, "accepted_resolved": 0, "resolution_rate": None}
TOWNSHIPS = [("429960001", "东岭镇"), ("429960002", "南湖镇"), ("429960003", "西坪镇"), ("429960004", "北岗镇"),
             ("429960005", "中和镇"), ("429960006", "上林乡"), ("429960007", "下湾乡"), ("429960008", "长乐镇"),
             ("429960009", "永安镇"), ("429960010", "太平乡"), ("429960011", "新桥镇"), ("429960012", "凤凰镇")]
BY_TOWNSHIP = {"429960002": {"accepted": 7, "accepted_resolved": 2, "resolution_rate": 28.6},
               "429960003": {"accepted": 1, "accepted_resolved": 1, "resolution_rate": 100.0}}

COUNTY_JUNE = {
    "org": {"code": "429960", "name": "示范县", "level": "county"},
    "period": {"from": "2026-06-01", "to": "2026-06-30"},
    "registered": 9, "accepted": 8, "accepted_resolved": 3, "resolution_rate": 37.5,
    "closed": 6, "resolved": 4, "mediated": 4, "mediation_success": 3, "mediation_success_rate": 75.0,
    "timely_closed": 3, "timely_rate": 50.0,
    "backlog": 6, "backlog_ageing": AGEING,
    "level_shares": {"village": 75.0, "township_or_below": 100.0, "within_county": 80.0},
    "visitors": 12, "direct_answers": 3, "screening_coverage": 2.1,
    "follow_up_rate": 33.3, "satisfaction_rate": 50.0, "performance_rate": 50.0,
    "high_risk": {"accepted": 2, "open_at_end": 3, "signed_off_24h_rate": 50.0},
    "criminal_turned": 1, "criminal_prevented": 1,
    "by_type": {"劳动争议": {"accepted": 1, "accepted_resolved": 1}, "邻里": {"accepted": 7, "accepted_resolved": 2}},
    "by_source": {"来电(12345热线)": {"accepted": 1, "accepted_resolved": 1},
                  "群众来访": {"accepted": 7, "accepted_resolved": 2}},
    "by_township": [{"code": code, "name": name, **BY_TOWNSHIP.get(code, ZERO)} for code, name in TOWNSHIPS],
    "ytd": {
        "period": {"from": "2026-01-01", "to": "2026-06-30"},
        "registered": 13, "accepted": 12, "accepted_resolved": 4, "resolution_rate": 33.3,
        "closed": 6, "resolved": 4, "mediated": 4, "mediation_success": 3, "mediation_success_rate": 75.0,
        "timely_closed": 3, "timely_rate": 50.0,
        "backlog": 6, "backlog_ageing": AGEING,
        "level_shares": {"village": 75.0, "township_or_below": 100.0, "within_county": 80.0},
        "visitors": 13, "direct_answers": 3, "screening_coverage": 2.9,   # 4 of 140 villages
        "follow_up_rate": 33.3, "satisfaction_rate": 50.0, "performance_rate": 50.0,
        "high_risk": {"accepted": 3, "open_at_end": 3, "signed_off_24h_rate": 33.3},
        "criminal_turned": 1, "criminal_prevented": 2,
    },
}

TOWNSHIP_JUNE = {
    "org": {"code": "429960002", "name": "南湖镇", "level": "township"},
    "period": {"from": "2026-06-01", "to": "2026-06-30"},
    "registered": 8, "accepted": 7, "accepted_resolved": 2, "resolution_rate": 28.6,
    "closed": 5, "resolved": 3, "mediated": 3, "mediation_success": 2, "mediation_success_rate": 66.7,
    "timely_closed": 3, "timely_rate": 60.0,
    "backlog": 6, "backlog_ageing": AGEING,
    "level_shares": {"village": 66.7, "township_or_below": 100.0, "within_county": 75.0},
    "visitors": 8, "direct_answers": 2, "screening_coverage": 16.7,
    "follow_up_rate": 50.0, "satisfaction_rate": 50.0, "performance_rate": 50.0,
    "high_risk": {"accepted": 2, "open_at_end": 3, "signed_off_24h_rate": 50.0},
    "criminal_turned": 1, "criminal_prevented": 1,
    "by_type": {"劳动争议": {"accepted": 1, "accepted_resolved": 1}, "邻里": {"accepted": 6, "accepted_resolved": 1}},
    "by_source": {"来电(12345热线)": {"accepted": 1, "accepted_resolved": 1},
                  "群众来访": {"accepted": 6, "accepted_resolved": 1}},
    "by_township": [],
    "ytd": {
        "period": {"from": "2026-01-01", "to": "2026-06-30"},
        "registered": 12, "accepted": 11, "accepted_resolved": 3, "resolution_rate": 27.3,
        "closed": 5, "resolved": 3, "mediated": 3, "mediation_success": 2, "mediation_success_rate": 66.7,
        "timely_closed": 3, "timely_rate": 60.0,
        "backlog": 6, "backlog_ageing": AGEING,
        "level_shares": {"village": 66.7, "township_or_below": 100.0, "within_county": 75.0},
        "visitors": 9, "direct_answers": 2, "screening_coverage": 25.0,
        "follow_up_rate": 50.0, "satisfaction_rate": 50.0, "performance_rate": 50.0,
        "high_risk": {"accepted": 3, "open_at_end": 3, "signed_off_24h_rate": 33.3},
        "criminal_turned": 1, "criminal_prevented": 2,
    },
}


def _text(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def test_county_monthly_json_snapshot(db):
    build_fixture()
    report = monthly_report(find_by_code("429960"), 2026, 6)
    assert report == COUNTY_JUNE
    assert _text(report) == _text(COUNTY_JUNE)  # key order too: the CLI prints it as it is


def test_township_monthly_json_snapshot(db):
    build_fixture()
    report = monthly_report(find_by_code("429960002"), 2026, 6)
    assert report == TOWNSHIP_JUNE
    assert _text(report) == _text(TOWNSHIP_JUNE)


def test_cli_and_api_give_the_snapshot(app, client, db):
    build_fixture()
    result = app.test_cli_runner().invoke(args=["report", "monthly", "--org", "429960", "--month", "2026-06",
                                                "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == COUNTY_JUNE
    assert result.output.strip() == json.dumps(COUNTY_JUNE, ensure_ascii=False, indent=1)
    resp = client.get("/api/v1/reports/monthly?org=429960002&month=2026-06",
                      headers={"Authorization": f"Bearer {api_token('township_mediator')}"})
    assert resp.status_code == 200 and resp.get_json() == TOWNSHIP_JUNE
