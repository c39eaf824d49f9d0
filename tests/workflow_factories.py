"""Plain factory functions for the workflow tests: cases inserted directly, in any state."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Optional

from sqlalchemy import select

from app.accounts.models import User
from app.cases.models import Case, DepartmentTask, SupervisionOrder
from app.db import session, utcnow
from app.orgs.models import OrgUnit
from app.templating import today_local

VILLAGE = "429960002001"      # 南湖镇 first village (the demo village mediator's)
OTHER_TOWNSHIP_VILLAGE = "429960003010"
LIAISON_DEPT = "429960002D001"  # 南湖镇司法所


def org(code: str) -> OrgUnit:
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def user(username: str) -> User:
    return session.scalar(select(User).where(User.username == username))


def make_case(status: str = "pending_triage", level: str = "village", village: str = VILLAGE,
              registered_on: Optional[date] = None, **fields) -> Case:
    """A case row in ``status`` at handling ``level``; closed states get the columns they need."""
    v = org(village)
    today = today_local()
    values = dict(number=f"WF-{uuid.uuid4().hex[:10]}", source="群众来访", dispute_type="邻里",
                  type_category="邻里", county_id=v.county_id, township_id=v.township_id, village_id=v.id,
                  summary="两户因排水沟堵塞发生争执", registered_on=registered_on or today - timedelta(days=2),
                  status=status, handling_level=level)
    if status in ("closed", "archived"):
        values.update(closed_on=today, closed_at=utcnow(), outcome="failed")
    if status == "declined":
        values.update(outcome="declined")
    if status == "in_mediation":
        values.update(deadline_on=today + timedelta(days=20))
    values.update(fields)
    case = Case(**values)
    session.add(case)
    session.flush()
    return case


def add_task(case: Case, kind: str = "transfer", dept_code: str = LIAISON_DEPT,
             due_on: Optional[date] = None) -> DepartmentTask:
    task = DepartmentTask(case_id=case.id, department_id=org(dept_code).id, kind=kind, request="请协助处理",
                          due_on=due_on or today_local() + timedelta(days=7))
    session.add(task)
    session.flush()
    return task


def add_order(case: Case, responsible: OrgUnit, due_on: Optional[date] = None) -> SupervisionOrder:
    order = SupervisionOrder(case_id=case.id, issuing_org_id=case.county_id, responsible_org_id=responsible.id,
                             requirement="限期化解并报告", due_on=due_on or today_local() + timedelta(days=5))
    session.add(order)
    session.flush()
    return order


def org_at_level(case: Case, level: str) -> OrgUnit:
    return session.get(OrgUnit, {"village": case.village_id, "township": case.township_id,
                                 "county": case.county_id}[level])
