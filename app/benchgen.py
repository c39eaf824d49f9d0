"""``flask bench seed --cases N [--townships T] [--years Y]``: a realistic data generator for
benchmarks and demos.

Cases follow plausible distributions (types and sources as in the sample county, ~90 % closed,
mostly 调解成功, a few 高风险, follow-ups for most agreements, a backlog that is mostly recent
with a thinning tail of old cases: ``_still_open``) with parties, timelines and
follow-ups, and the workflow records a real county has: risk gradings of every medium and high
case, sign-offs of the high ones, department transfers (answered for 部门化解 closes, some still
open and overdue), invitations to joint mediation, a few 督办 orders, cases waiting for triage
or escalated, and the follow-up due date of every agreement (so the 工作台's to-do lists and the
case page's panels are measured on data that has them).  Rows go in 5,000 cases at a time through ``app.bulk`` (COPY on
PostgreSQL, ``executemany`` on SQLite; no ORM objects), so a million cases take minutes on a
2-core machine.  Deterministic for a given ``--seed``.
"""
from __future__ import annotations

import math
import random
import time
from datetime import date, datetime, timedelta, timezone

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.cases.models import (Case, DepartmentTask, FollowUp, Party, RiskGrading, SignOff, SupervisionOrder,
                              TimelineEntry)
from app.cases.numbering import case_number_prefix
from app.cases.search import search_index_deferred
from app.cases.models import CaseNumberCounter
from app.bulk import bulk_insert, large_load
from app.db import session
from app.orgs.models import OrgUnit
from app.orgs.services import add_unit

TYPES = [("婚姻家庭", 9), ("邻里", 12), ("房屋宅基地", 9), ("合同", 8), ("生产经营", 6), ("损害赔偿", 8),
         ("山林土地", 8), ("征地拆迁", 6), ("环境污染", 5), ("拖欠农民工工资", 5), ("其他劳动争议", 3),
         ("医疗", 3), ("道路交通事故", 7), ("物业", 4), ("电子商务", 1), ("其他消费", 1), ("其他", 5)]
PARENT = {"拖欠农民工工资": "劳动争议", "其他劳动争议": "劳动争议", "电子商务": "消费", "其他消费": "消费"}
SOURCES = [("群众来访", 20), ("来电(12345热线)", 15), ("网格上报", 20), ("排查发现", 15), ("部门移交", 8),
           ("法院委派", 6), ("公安移交(110非警务)", 6), ("信访转来", 5), ("上级交办", 2), ("线上申请", 2), ("其他", 1)]
OUTCOMES = [("success", 70), ("failed", 3), ("direct_answer", 13), ("department_resolved", 6),
            ("withdrawn", 2), ("declined", 2), ("handed_up", 0.5), (None, 3.5)]
CLOSING_OUTCOMES = [pair for pair in OUTCOMES if pair[0] is not None]
# The backlog (存量): 3.5 % of the cases of the last three months are still open; of older ones
# fewer and fewer (half as many every ~8 months), so a county's ten years leave a tail of old
# 疑难 cases, not a third of a year's intake open for years (which the first generator did:
# 35,000 open cases at 1,000,000, every open-case to-do and count reading them).
BACKLOG_FLAT_DAYS = 90
BACKLOG_DECAY_DAYS = 365


def _still_open(age: int) -> float:
    """Of the cases drawn open, the share still open at ``age`` days (past ``BACKLOG_FLAT_DAYS``)."""
    return math.exp(-(age - BACKLOG_FLAT_DAYS) / BACKLOG_DECAY_DAYS)


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅建国志文斌海燕春晓宇浩然子涵"
SUMMARIES = ["因宅基地边界发生争执", "因排水沟堵塞引发邻里矛盾", "因拖欠工资多次讨要未果", "因家庭赡养问题产生纠纷",
             "因交通事故赔偿金额协商不成", "因土地承包经营权流转产生争议", "因房屋漏水影响楼下住户",
             "因噪音扰民多次发生口角", "因山林界址不清引发纠纷", "因征地补偿款分配不均产生矛盾"]


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights)[0]


def _id_number(rng: random.Random, birth: date) -> str:
    body = f"4299{rng.randint(10, 99)}{birth:%Y%m%d}{rng.randint(0, 999):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    return body + check


def ensure_townships(county: OrgUnit, townships: int) -> list[OrgUnit]:
    """Add generated townships (12 villages each, 2 grids per village) until there are ``townships``."""
    have = list(session.scalars(select(OrgUnit).where(OrgUnit.level == "township",
                                                      OrgUnit.county_id == county.id)))
    n = len(have)
    while n < townships:
        n += 1
        township = add_unit(f"生成乡镇{n:04d}", "township", county, code=f"{county.code}{n + 100:05d}")
        for v in range(1, 13):
            village = add_unit(f"{township.name}{v:02d}村", "village", township, code=f"{township.code}{v:03d}")
            for g in (1, 2):
                add_unit(f"第{g}网格", "grid", village, code=f"{village.code}{g:02d}")
    session.flush()
    return list(session.scalars(select(OrgUnit).where(OrgUnit.level == "village", OrgUnit.county_id == county.id)))


def ensure_counties(county: OrgUnit, counties: int, townships: int) -> list[OrgUnit]:
    """A province-sized deployment: ``county`` plus generated counties up to ``counties`` in
    all (codes 48NNNN), with ``townships`` townships in all spread evenly over them (each
    township 12 villages; the demo county keeps its own and gets generated ones up to its share).
    Returns every county."""
    from app.orgs.services import find_by_code
    per = max(1, -(-townships // counties))
    out = [county]
    ensure_townships(county, per)
    for n in range(1, counties):
        code = f"48{n:04d}"
        unit = find_by_code(code) or add_unit(f"生成县{n:03d}", "county", None, code=code)
        ensure_townships(unit, per)
        out.append(unit)
    session.flush()
    return out


def generate_cases(county: OrgUnit, count: int, years: int = 10, seed: int = 2026,
                   today: date | None = None, batch: int = 5000, echo=print,
                   counties: list[OrgUnit] | None = None) -> int:
    """Insert ``count`` cases spread over the last ``years`` years (over the villages of
    ``county``, or of every county of ``counties``); returns the number inserted."""
    rng = random.Random(seed)  # nosec B311 # reproducible benchmark data, not security
    today = today or date.today()
    county_ids = [c.id for c in counties] if counties else [county.id]
    villages = list(session.scalars(select(OrgUnit).where(OrgUnit.level == "village",
                                                          OrgUnit.county_id.in_(county_ids))
                                    .order_by(OrgUnit.id)))
    if not villages:
        raise click.ClickException("县下没有村，先运行 flask seed-demo 或指定 --townships")
    prefix = case_number_prefix()
    start = today - timedelta(days=365 * years)
    span = (today - start).days
    dates = sorted(start + timedelta(days=int(span * (rng.random() ** 0.8))) for _ in range(count))
    counters: dict[int, int] = {}
    for row in session.scalars(select(CaseNumberCounter).where(CaseNumberCounter.prefix == prefix)):
        counters[row.year] = row.last
    first_new_years = set()
    # departments a case can be transferred to: its township's, else its county's
    departments: dict[int, list[int]] = {}
    for dept_id, parent_id, dept_county in session.execute(
            select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.county_id)
            .where(OrgUnit.level == "department", OrgUnit.county_id.in_(county_ids)).order_by(OrgUnit.id)):
        departments.setdefault(parent_id, []).append(dept_id)
        if parent_id != dept_county:
            departments.setdefault(dept_county, []).append(dept_id)
    next_case_id = (session.scalar(select(Case.id).order_by(Case.id.desc()).limit(1)) or 0) + 1
    inserted = 0
    t0 = time.perf_counter()
    # SQLite: a page cache the indexes being written fit in, the search table filled once at the end
    with large_load(), search_index_deferred(session.connection()):
        for offset in range(0, count, batch):
            cases, parties, timeline, follow_ups = [], [], [], []
            gradings, sign_offs, tasks, orders = [], [], [], []
            for registered_on in dates[offset: offset + batch]:
                year = registered_on.year
                if year not in counters:
                    counters[year] = 0
                    first_new_years.add(year)
                counters[year] += 1
                village = rng.choice(villages)
                dtype = _weighted(rng, TYPES)
                outcome = _weighted(rng, OUTCOMES)
                age = (today - registered_on).days
                if outcome is None and age > BACKLOG_FLAT_DAYS and rng.random() > _still_open(age):
                    outcome = _weighted(rng, CLOSING_OUTCOMES)  # worked off since: the backlog is mostly recent
                if age < 20 and rng.random() < 0.6:
                    outcome = None
                risk = _weighted(rng, [("low", 70), ("medium", 25), ("high", 5)])
                level = _weighted(rng, [("village", 50), ("township", 44), ("county", 6)])
                registered_at = datetime.combine(registered_on, datetime.min.time(), tzinfo=timezone.utc) + \
                    timedelta(hours=rng.randint(0, 10))
                closed_on = None
                status = "in_mediation" if outcome is None else "closed"
                escalation_due_on = None
                if outcome == "declined":
                    status = "declined"
                elif outcome is not None:
                    closed_on = min(registered_on + timedelta(days=int(rng.gammavariate(2.0, 10)) + 1), today)
                else:  # open: the newest wait for triage; some were escalated or transferred
                    x = rng.random()
                    if age <= 3 and x < 0.5:
                        status = "pending_triage"
                    elif x < 0.06:
                        status, escalation_due_on = "escalated", registered_on + timedelta(days=3)
                        level = "township" if level == "village" else "county"
                    elif x < 0.14:
                        status = "transferred"
                case_id = next_case_id
                next_case_id += 1
                follow = outcome == "success" and closed_on and rng.random() < 0.7
                followed_up_on = min(closed_on + timedelta(days=rng.randint(3, 30)), today) if follow else None
                performance = _weighted(rng, [("performed", 85), ("partly", 10), ("not_performed", 5)]) if follow else None
                satisfaction = _weighted(rng, [("satisfied", 80), ("basically", 16), ("dissatisfied", 4)]) if follow else None
                cases.append(dict(
                    id=case_id, number=f"{prefix}-{year}-{counters[year]:06d}", source=_weighted(rng, SOURCES),
                    dispute_type=dtype, type_category=PARENT.get(dtype, dtype), county_id=village.county_id,
                    township_id=village.township_id, village_id=village.id, handling_level=level,
                    status=status, summary=f"{rng.choice(SURNAMES)}某与{rng.choice(SURNAMES)}某{rng.choice(SUMMARIES)}，请求调解。",
                    claims="请求依法调解", people_involved=rng.choice([1, 2, 2, 2, 3, 4, 6]),
                    amount=rng.choice([0, 0, 500, 2000, 8000, 30000]), occurred_on=registered_on - timedelta(days=rng.randint(0, 20)),
                    registered_on=registered_on, registered_at=registered_at, risk_level=risk,
                    high_risk_at=registered_at if risk == "high" else None,
                    signed_off_at=registered_at + timedelta(hours=rng.randint(1, 40)) if risk == "high" else None,
                    deadline_on=None if status == "pending_triage" else registered_on + timedelta(days=30),
                    deadline_extended=False, escalation_due_on=escalation_due_on,
                    follow_up_due_on=closed_on + timedelta(days=30) if outcome == "success" else None,
                    closed_on=closed_on,
                    closed_at=(datetime.combine(closed_on, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=8)) if closed_on else None,
                    outcome=outcome, agreement_form=(rng.choice(["written", "written", "oral"]) if outcome == "success" else None),
                    followed_up_on=followed_up_on, performance=performance, satisfaction=satisfaction,
                    recurrence_count=0, version=1, updated_at=registered_at))
                for position, role in enumerate(("applicant", "respondent")):
                    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
                    birth = date(rng.randint(1950, 2000), rng.randint(1, 12), rng.randint(1, 28))
                    parties.append(dict(case_id=case_id, village_id=village.id, position=position, kind="person",
                                        name=name, role=role,
                                        gender=rng.choice(["male", "female"]),
                                        id_type="resident_id" if rng.random() < 0.4 else None,
                                        id_number=_id_number(rng, birth) if rng.random() < 0.4 else None,
                                        phone=f"1{rng.choice('3578')}{rng.randint(0, 999999999):09d}"))
                timeline.append(dict(case_id=case_id, at=registered_at, action="register", from_status=None,
                                     to_status="pending_triage", note="生成数据"))
                if closed_on:
                    timeline.append(dict(case_id=case_id, at=registered_at + timedelta(days=(closed_on - registered_on).days),
                                         action={"success": "agree", "failed": "terminate", "direct_answer": "answer_directly",
                                                 "department_resolved": "department_feedback", "withdrawn": "withdraw",
                                                 "handed_up": "hand_up"}[outcome],
                                         from_status="in_mediation", to_status="closed", note=None))
                if follow:
                    follow_ups.append(dict(case_id=case_id, visited_on=followed_up_on, performance=performance,
                                           satisfaction=satisfaction, notes="生成数据"))
                if risk in ("medium", "high"):
                    gradings.append(dict(case_id=case_id, level=risk, suggested_level=risk, factors=["生成数据"],
                                         graded_at=registered_at + timedelta(hours=1)))
                if risk == "high":
                    sign_offs.append(dict(case_id=case_id, signed_at=cases[-1]["signed_off_at"],
                                          plan="生成数据：包案化解方案", task_force=None))
                depts = departments.get(village.township_id) or departments.get(village.county_id)
                if depts:
                    requested_at = registered_at + timedelta(hours=2)
                    if outcome == "department_resolved" or status == "transferred":
                        done = outcome == "department_resolved"
                        tasks.append(dict(case_id=case_id, department_id=rng.choice(depts), kind="transfer",
                                          request="生成数据：请依职责处理", requested_at=requested_at,
                                          due_on=registered_on + timedelta(days=7),
                                          answered_at=cases[-1]["closed_at"] if done else None,
                                          answer="已处理" if done else None, resolved=True if done else None))
                    elif outcome == "success" and rng.random() < 0.05:
                        tasks.append(dict(case_id=case_id, department_id=rng.choice(depts), kind="invite",
                                          request="生成数据：请参加联调", requested_at=requested_at,
                                          due_on=registered_on + timedelta(days=7), answered_at=requested_at + timedelta(days=2),
                                          answer="已参加联调", resolved=None))
                if outcome is None and status != "pending_triage" and rng.random() < 0.03:
                    orders.append(dict(case_id=case_id, issuing_org_id=village.county_id,
                                       responsible_org_id=village.township_id, requirement="生成数据：请按期化解并报告",
                                       due_on=registered_on + timedelta(days=15),
                                       issued_at=registered_at + timedelta(days=5)))
            for model, rows in ((Case, cases), (Party, parties), (TimelineEntry, timeline), (FollowUp, follow_ups),
                                (RiskGrading, gradings), (SignOff, sign_offs), (DepartmentTask, tasks),
                                (SupervisionOrder, orders)):
                bulk_insert(model.__table__, rows)
            inserted += len(cases)
            if echo and (offset // batch) % 20 == 0:
                echo(f"  {inserted:,} / {count:,} cases ({time.perf_counter() - t0:.0f} s)")
    for year, last in counters.items():
        row = session.scalar(select(CaseNumberCounter).where(CaseNumberCounter.prefix == prefix,
                                                             CaseNumberCounter.year == year))
        if row is None:
            session.add(CaseNumberCounter(prefix=prefix, year=year, last=last))
        else:
            row.last = last
    session.flush()
    _fix_sequences()
    # the rows went in beside the session's hooks (app.bulk): one grouped rebuild of the figure
    # summary, which also invalidates every cached report
    from app.reports.summary import rebuild_summary
    rebuild_summary()
    return inserted


def _fix_sequences() -> None:
    """After inserting explicit ids, move PostgreSQL's sequences past them."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from sqlalchemy import text
    session.execute(text("SELECT setval(pg_get_serial_sequence('dispute_case', 'id'), "
                         "COALESCE((SELECT MAX(id) FROM dispute_case), 1))"))


bench_cli = AppGroup("bench", help="基准测试数据")


@bench_cli.command("seed")
@click.option("--cases", "count", type=int, required=True, help="生成的案件数")
@click.option("--townships", type=int, default=0, help="把县扩充到这么多个乡镇（每乡镇 12 村）")
@click.option("--counties", type=int, default=1, help="省级规模：共这么多个县（--townships 为全部县的乡镇总数）")
@click.option("--years", type=int, default=10)
@click.option("--seed", type=int, default=2026)
def seed_command(count, townships, counties, years, seed):
    """Fill the demo county (or a larger generated one) with COUNT plausible cases."""
    from app.demo.seed import COUNTY_CODE, seed_demo
    from app.orgs.services import find_by_code
    if find_by_code(COUNTY_CODE) is None:
        seed_demo(with_cases=False, echo=click.echo)
    county = find_by_code(COUNTY_CODE)
    every = None
    if counties > 1:
        every = ensure_counties(county, counties, townships or 12 * counties)
    elif townships:
        ensure_townships(county, townships)
    t0 = time.perf_counter()
    n = generate_cases(county, count, years=years, seed=seed, echo=click.echo, counties=every)
    session.commit()
    click.echo(f"生成 {n:,} 件案件，用时 {time.perf_counter() - t0:.1f} 秒")


def register(app) -> None:
    app.cli.add_command(bench_cli)
