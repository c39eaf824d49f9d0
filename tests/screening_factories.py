"""Plain factories for the screening and prevention tests: cases inserted directly."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Optional

from sqlalchemy import select

from app.accounts.models import User
from app.cases.models import Case, Party, TimelineEntry
from app.db import session
from app.orgs.models import OrgUnit
from app.templating import today_local

VILLAGE = "429960002001"        # 朱湖社区, the demo village mediator's village (南湖镇)
VILLAGE_2 = "429960002002"      # 张湾村, same township
OTHER_TOWNSHIP_VILLAGE = "429960003010"
TOWNSHIP = "429960002"


def org(code: str) -> OrgUnit:
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def user(username: str) -> User:
    return session.scalar(select(User).where(User.username == username))


def make_case(village: str = VILLAGE, dispute_type: str = "邻里", registered_on: Optional[date] = None,
              status: str = "in_mediation", parties: tuple = (), **fields) -> Case:
    """A case row; ``parties`` are dicts of Party columns (name required)."""
    v = org(village)
    values = dict(number=f"SC-{uuid.uuid4().hex[:10]}", source="群众来访", dispute_type=dispute_type,
                  type_category=fields.pop("type_category", dispute_type), county_id=v.county_id,
                  township_id=v.township_id, village_id=v.id, summary="邻里之间因排水沟发生争执",
                  registered_on=registered_on or today_local() - timedelta(days=2), status=status)
    if status in ("closed", "archived"):
        values.update(closed_on=today_local(), outcome="success")
    values.update(fields)
    case = Case(**values)
    for n, p in enumerate(parties):
        case.parties.append(Party(position=n, kind=p.get("kind", "person"), name=p["name"],
                                  role=p.get("role", "applicant"), id_number=p.get("id_number"),
                                  phone=p.get("phone")))
    session.add(case)
    session.flush()
    return case


def add_activity(case: Case, days_ago: int) -> TimelineEntry:
    from datetime import datetime, timezone
    entry = TimelineEntry(case_id=case.id, action="note", note="走访",
                          at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days_ago))
    session.add(entry)
    session.flush()
    return entry
