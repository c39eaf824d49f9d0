"""``flask seed-demo``: the fictional 示范县 with its townships, villages, grids, departments,
one demo user per role and (when the ledger importer is present) three years of disputes.

Idempotent: running it again changes nothing that exists.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from app.accounts.models import User
from app.accounts.services import create_user
from app.db import session
from app.orgs.models import OrgUnit
from app.orgs.services import add_unit, find_by_code, import_orgs_csv
from app.settings.services import seed_vocabularies

DEMO_DIR = Path(__file__).resolve().parent
DEMO_PASSWORD = "Qingyuan@2026"  # nosec B105 # the documented demo password of the demo users only
COUNTY_CODE = "429960"
DEMO_TOWNSHIP = "429960002"  # 南湖镇
DEMO_VILLAGE = "429960002001"
COUNTY_DEPARTMENTS = ["县司法局", "县公安局", "县自然资源局", "县住建局", "县信访局", "县人社局", "县人民法院", "县妇联"]
TOWNSHIP_DEPARTMENTS = [("司法所", "司法所"), ("派出所", "派出所"), ("自然资源所", "自然资源所"),
                        ("城建办", "住建"), ("信访办", "信访办"), ("人社所", "人社"), ("人民法庭", "人民法庭")]

# username, display name, role, org code (None: resolved below)
DEMO_USERS = [
    ("admin", "系统管理员", "admin", COUNTY_CODE),
    ("county_supervisor", "周督办", "county_supervisor", COUNTY_CODE),
    ("county_leader", "吴县长", "county_leader", COUNTY_CODE),
    ("township_director", "郑主任", "township_director", DEMO_TOWNSHIP),
    ("township_secretary", "王书记", "township_secretary", DEMO_TOWNSHIP),
    ("township_mediator", "李调解", "township_mediator", DEMO_TOWNSHIP),
    ("village_mediator", "张调解", "village_mediator", DEMO_VILLAGE),
    ("grid_worker", "陈网格", "grid_worker", DEMO_VILLAGE + "01"),
    ("dept_liaison", "刘所长", "dept_liaison", None),  # 南湖镇司法所
]


def seed_demo(with_cases: bool = True, echo=print) -> None:
    """Create the demo county; each step skips what already exists."""
    seed_vocabularies()
    with open(DEMO_DIR / "orgs.csv", encoding="utf-8") as fh:
        if find_by_code(COUNTY_CODE) is None:
            result = import_orgs_csv(fh.read())
            echo(f"组织机构：新增 {result.created} 个单位")
    _add_grids()
    _add_departments()
    _add_users(echo)
    session.flush()
    if with_cases:
        _import_demo_ledger(echo)
        _add_demo_sweeps(echo)


def _add_grids() -> None:
    villages = session.scalars(select(OrgUnit).where(OrgUnit.level == "village").order_by(OrgUnit.code)).all()
    have = {code for code in session.scalars(select(OrgUnit.code).where(OrgUnit.level == "grid"))}
    for village in villages:
        for n in (1, 2):
            code = f"{village.code}{n:02d}"
            if code not in have:
                add_unit(f"第{n}网格", "grid", village, code=code)


def _add_departments() -> None:
    county = find_by_code(COUNTY_CODE)
    existing = {(d.parent_id, d.name) for d in session.scalars(select(OrgUnit).where(OrgUnit.level == "department"))}
    for i, name in enumerate(COUNTY_DEPARTMENTS, start=1):
        if (county.id, name) not in existing:
            add_unit(name, "department", county, code=f"{county.code}D{i:03d}", department_kind=name[1:])
    townships = session.scalars(select(OrgUnit).where(OrgUnit.level == "township").order_by(OrgUnit.code))
    for township in townships:
        for i, (suffix, kind) in enumerate(TOWNSHIP_DEPARTMENTS, start=1):
            name = township.name + suffix
            if (township.id, name) not in existing:
                add_unit(name, "department", township, code=f"{township.code}D{i:03d}", department_kind=kind)


def _add_users(echo) -> None:
    for username, display_name, role, org_code in DEMO_USERS:
        if session.scalar(select(User.id).where(User.username == username)):
            continue
        org = find_by_code(org_code or f"{DEMO_TOWNSHIP}D001")
        create_user(username, display_name, role, org, DEMO_PASSWORD)
        echo(f"用户 {username}（{display_name}）")


def _import_demo_ledger(echo) -> None:
    from app.cases.models import Case
    if session.scalar(select(func.count(Case.id))):
        return
    try:
        from app.ledger.importer import import_ledger
    except ImportError:  # the ledger importer is not part of this build
        return
    with open(DEMO_DIR / "ledger.xlsx", "rb") as fh:
        report = import_ledger(fh, filename="示范县台账.xlsx")
    echo(f"示范台账：{report.summary()}")


def _add_demo_sweeps(echo, months: int = 12) -> None:
    """零报告 sweeps for the demo villages over the last ``months`` monthly periods, so the
    排查覆盖率 and the "villages not yet reported" to-dos show something real: every village
    reported in most past months (a deterministic few missed one), and about two thirds have
    reported in the current period."""
    import calendar
    import random
    from datetime import timedelta

    from app.screening.models import Sweep
    from app.templating import today_local

    if session.scalar(select(func.count(Sweep.id))):
        return
    rng = random.Random(429960)  # nosec B311 # reproducible demo data, not security
    villages = session.scalars(select(OrgUnit).where(OrgUnit.level == "village").order_by(OrgUnit.code)).all()
    start = today_local().replace(day=1)
    periods = []
    for _ in range(months):
        end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
        periods.append((start, end))
        start = (start - timedelta(days=1)).replace(day=1)
    count = 0
    for n, (p_start, p_end) in enumerate(periods):
        current = n == 0
        for village in villages:
            if rng.random() > (0.65 if current else 0.95):
                continue
            swept_on = min(p_start + timedelta(days=rng.randint(0, 20)), today_local())
            session.add(Sweep(village_id=village.id, township_id=village.township_id,
                              county_id=village.county_id, period_start=p_start, period_end=p_end,
                              swept_on=swept_on, nil_report=True, households_visited=rng.randint(15, 80),
                              participants="网格员、村调委会委员"))
            count += 1
    session.flush()
    echo(f"示范排查：{count} 条零报告")
