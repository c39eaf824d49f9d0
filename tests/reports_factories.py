"""A small hand-built report fixture: cases, reception entries and sweeps inserted directly in
南湖镇 (429960002, 12 villages) for June 2026, with a few rows elsewhere in the county (140
villages) and in 新桥镇 (429960011, 8 villages).  Type and source keys are the canonical names of
PRODUCT.md §3 (邻里, not 邻里纠纷)."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from app.cases.models import Case
from app.db import session
from app.orgs.services import find_by_code
from app.reception.models import ReceptionEntry
from app.screening.models import Sweep

VILLAGE = "429960002001"
OTHER_VILLAGE = "429960003010"   # another township, same county
XINQIAO = "429960011"            # 新桥镇: 8 villages
XINQIAO_VILLAGE = "429960011002"


def add_case(registered_on: date, village: str = VILLAGE, **fields) -> Case:
    v = find_by_code(village)
    values = dict(number=f"RP-{uuid.uuid4().hex[:10]}", source="群众来访", dispute_type="邻里",
                  type_category="邻里", county_id=v.county_id, township_id=v.township_id, village_id=v.id,
                  summary="测试纠纷", registered_on=registered_on, status="in_mediation", handling_level="village")
    values.update(fields)
    case = Case(**values)
    session.add(case)
    session.flush()
    return case


def closed(on: date, outcome: str, **fields) -> dict:
    return dict(status="closed", closed_on=on, closed_at=datetime(on.year, on.month, on.day, 8), outcome=outcome,
                **fields)


def add_reception(received_on: date, headcount: int = 1, handling: str = "direct_answer",
                  village: str | None = VILLAGE, township: str | None = None) -> ReceptionEntry:
    """A reception-log entry at a village centre (``village``) or a township centre (``township``)."""
    org = find_by_code(village or township)
    entry = ReceptionEntry(centre_id=org.id, county_id=org.county_id,
                           township_id=org.township_id if village else org.id,
                           village_id=org.id if village else None, received_on=received_on,
                           received_at=datetime(received_on.year, received_on.month, received_on.day, 2),
                           visitor_names="来访群众", headcount=headcount, matter="咨询", handling=handling)
    session.add(entry)
    session.flush()
    return entry


def add_sweep(village: str, start: date, end: date, nil_report: bool = True) -> Sweep:
    v = find_by_code(village)
    sweep = Sweep(village_id=v.id, township_id=v.township_id, county_id=v.county_id, period_start=start,
                  period_end=end, swept_on=start, nil_report=nil_report, participants="网格员")
    session.add(sweep)
    session.flush()
    return sweep


def build_fixture() -> None:
    """June 2026 in 南湖镇 (see tests/test_reports_fixture.py for every figure worked by hand)."""
    d = date
    # 1. registered in June, resolved in June at village level, on time, followed up, satisfied, performed
    add_case(d(2026, 6, 2), deadline_on=d(2026, 6, 30), **closed(d(2026, 6, 10), "success", followed_up_on=d(2026, 7, 5),
             satisfaction="satisfied", performance="performed"))
    # 2. registered in June, closed 7 月 1 日 (the day after P) as success: accepted, NOT accepted_resolved
    add_case(d(2026, 6, 20), deadline_on=d(2026, 7, 20), **closed(d(2026, 7, 1), "success"))
    # 3. registered in June, declined: registered, not accepted, never closed
    add_case(d(2026, 6, 5), status="declined", outcome="declined")
    # 4. registered in May, closed in June as success at township level, late (deadline 6-1): flow only
    #    (and flagged 防止民转刑 on 5-20: in the year to date, not in June)
    add_case(d(2026, 5, 10), deadline_on=d(2026, 6, 1), handling_level="township", criminal_prevented_on=d(2026, 5, 20),
             **closed(d(2026, 6, 3), "success", satisfaction="dissatisfied", performance="not_performed"))
    # 5. registered in June, sub-type 拖欠农民工工资 under 劳动争议, resolved by direct answer in June
    add_case(d(2026, 6, 8), dispute_type="拖欠农民工工资", type_category="劳动争议", source="来电(12345热线)",
             deadline_on=d(2026, 6, 30), **closed(d(2026, 6, 8), "direct_answer"))
    # 6. registered in June, mediation failed in June (mediated, not resolved), flagged 防止民转刑 6-26
    add_case(d(2026, 6, 12), deadline_on=d(2026, 6, 30), criminal_prevented_on=d(2026, 6, 26),
             **closed(d(2026, 6, 25), "failed"))
    # 7. registered in June, still open, graded 高 and signed off within 24 h
    add_case(d(2026, 6, 15), risk_level="high", high_risk_at=datetime(2026, 6, 15, 2),
             signed_off_at=datetime(2026, 6, 15, 20))
    # 8. registered in March, still open (backlog > 90 days at 6-30), turned criminal in June;
    #    graded 高 in March and never signed off (open 高 at the end of June, not accepted in June)
    add_case(d(2026, 3, 1), criminal_turned_on=d(2026, 6, 18), criminal_case_ref="A4299-2026-018",
             risk_level="high", high_risk_at=datetime(2026, 3, 2, 1))
    # 9. registered in June, handed up (上报县级以上) in June
    add_case(d(2026, 6, 16), **closed(d(2026, 6, 28), "handed_up"))
    # 10. another township: outside 南湖镇, inside the county
    add_case(d(2026, 6, 9), village=OTHER_VILLAGE, **closed(d(2026, 6, 9), "success"))
    # 11. registered 5-30, still open: 31 days old at 6-30 (the first day of the 31–90 bucket)
    add_case(d(2026, 5, 30))
    # 12. registered 5-31, still open: 30 days old at 6-30 (the last day of the ≤30 bucket)
    add_case(d(2026, 5, 31))
    # 13. registered in June, still open, graded 高 6-22 08:00 (Beijing 16:00) and signed off
    #     25 hours later: not within 24 h
    add_case(d(2026, 6, 22), risk_level="high", high_risk_at=datetime(2026, 6, 22, 8),
             signed_off_at=datetime(2026, 6, 23, 9))

    # Reception log (接待人次 sums head-counts; 直接答复 counts entries answered on the spot).
    add_reception(d(2026, 6, 3), headcount=5)                                  # a group visit of 5, answered
    add_reception(d(2026, 6, 11), headcount=1, village=None, township="429960002")  # township centre, answered
    add_reception(d(2026, 6, 30), headcount=2, handling="registered")          # last day of P, registered
    add_reception(d(2026, 7, 1), headcount=3)                                  # the day after P
    add_reception(d(2026, 5, 20), headcount=1, handling="guided")              # May: year to date only
    add_reception(d(2026, 6, 9), headcount=4, village=OTHER_VILLAGE)           # another township

    # Sweeps (排查覆盖率: villages with a sweep whose period overlaps P ÷ villages).
    add_sweep(VILLAGE, d(2026, 6, 1), d(2026, 6, 30))                          # monthly 零报告, June
    add_sweep("429960002003", d(2026, 6, 29), d(2026, 7, 5), nil_report=False)  # a week overlapping 6-30
    add_sweep("429960002002", d(2026, 5, 25), d(2026, 5, 31))                  # May only: year to date
    add_sweep(XINQIAO_VILLAGE, d(2026, 6, 1), d(2026, 6, 30))                  # 1 of 新桥镇's 8 villages
