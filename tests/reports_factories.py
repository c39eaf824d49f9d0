"""A small hand-built report fixture: cases inserted directly in 南湖镇 (429960002) for June 2026."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from app.cases.models import Case
from app.db import session
from app.orgs.services import find_by_code

VILLAGE = "429960002001"
OTHER_VILLAGE = "429960003010"   # another township, same county


def add_case(registered_on: date, village: str = VILLAGE, **fields) -> Case:
    v = find_by_code(village)
    values = dict(number=f"RP-{uuid.uuid4().hex[:10]}", source="群众来访", dispute_type="邻里纠纷",
                  type_category="邻里纠纷", county_id=v.county_id, township_id=v.township_id, village_id=v.id,
                  summary="测试纠纷", registered_on=registered_on, status="in_mediation", handling_level="village")
    values.update(fields)
    case = Case(**values)
    session.add(case)
    session.flush()
    return case


def closed(on: date, outcome: str, **fields) -> dict:
    return dict(status="closed", closed_on=on, closed_at=datetime(on.year, on.month, on.day, 8), outcome=outcome,
                **fields)


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
    add_case(d(2026, 5, 10), deadline_on=d(2026, 6, 1), handling_level="township",
             **closed(d(2026, 6, 3), "success", satisfaction="dissatisfied", performance="not_performed"))
    # 5. registered in June, sub-type 拖欠农民工工资 under 劳动争议, resolved by direct answer in June
    add_case(d(2026, 6, 8), dispute_type="拖欠农民工工资", type_category="劳动争议", source="来电(12345热线)",
             deadline_on=d(2026, 6, 30), **closed(d(2026, 6, 8), "direct_answer"))
    # 6. registered in June, mediation failed in June (mediated, not resolved)
    add_case(d(2026, 6, 12), deadline_on=d(2026, 6, 30), **closed(d(2026, 6, 25), "failed"))
    # 7. registered in June, still open, graded 高 and signed off within 24 h
    add_case(d(2026, 6, 15), risk_level="high", high_risk_at=datetime(2026, 6, 15, 2),
             signed_off_at=datetime(2026, 6, 15, 20))
    # 8. registered in March, still open (backlog > 90 days at 6-30), turned criminal in June
    add_case(d(2026, 3, 1), criminal_turned_on=d(2026, 6, 18))
    # 9. registered in June, handed up (上报县级以上) in June
    add_case(d(2026, 6, 16), **closed(d(2026, 6, 28), "handed_up"))
    # 10. another township: outside 南湖镇, inside the county
    add_case(d(2026, 6, 9), village=OTHER_VILLAGE, **closed(d(2026, 6, 9), "success"))
