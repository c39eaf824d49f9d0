"""The shortcuts that make the case page, the ledger and the 工作台 cheap at a million cases
(issue 10) give exactly what the plain queries give:

- ``has_related``: one EXISTS statement tells which record tables hold a case's rows; it is
  forgotten at the next flush or Core write, so a page never hides a row just written;
- settings read once per transaction, still seeing a setting changed in it;
- the planner hints (``rare``, ``common``, ``unindexed``) are plain SQL on PostgreSQL;
- the ledger's ``ListRow``s show what the ``Case`` objects showed;
- the to-do lists come most urgent first; the judicial-confirmation to-do's bisected window is
  the full list's, cut at its last day;
- the 工作台's counts by status, kept in the report cache, change with the next committed write.
"""
from __future__ import annotations

from datetime import timedelta

from jinja2 import Environment
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.cases.models import Attachment, Case, FollowUp, Party, RiskGrading
from app.cases.queries import RELATED_TABLES, CaseFilters, has_related, page_of_cases, related_tables
from app.db import common, is_sqlite, rare, unindexed
from app.settings.models import Setting
from app.settings.services import get_setting, set_setting
from app.templating import today_local
from tests.helpers import count_queries
from tests.workflow_factories import make_case, user


def test_related_tables_match_the_rows_and_forget_at_each_write(db):
    case = make_case("in_mediation", "township")
    assert related_tables(case) == frozenset()
    db.add(RiskGrading(case_id=case.id, level="medium", suggested_level="medium", factors=[]))
    db.flush()  # the flush forgets what the page knew
    assert related_tables(case) == {"risk_grading"}
    db.execute(FollowUp.__table__.insert().values(case_id=case.id, visited_on=today_local()))  # Core, no flush
    assert has_related(case, "follow_up") and has_related(case, "risk_grading")
    db.add(Attachment(case_id=case.id, filename="a.pdf", content_type="application/pdf", size=1,
                      storage_key="k"))
    db.flush()
    assert related_tables(case) == {"risk_grading", "follow_up", "attachment"}
    assert set(RELATED_TABLES) >= related_tables(case)


def test_case_page_lists_what_the_tables_hold(db, client, auth):
    auth.login("township_mediator")
    case = make_case("in_mediation", "township", risk_level="medium")
    db.add(RiskGrading(case_id=case.id, level="medium", suggested_level="low", factors=["多次调解未果"],
                       reason="生成的定级理由"))
    db.add(FollowUp(case_id=case.id, visited_on=today_local(), notes="回访记录甲"))
    db.flush()
    html = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert "生成的定级理由" in html and "回访记录甲" in html
    other = make_case("in_mediation", "township")
    html = client.get(f"/cases/{other.number}").get_data(as_text=True)
    assert other.number in html and "生成的定级理由" not in html and "尚未定级" in html


def test_settings_are_read_once_and_see_changes_in_the_transaction(db):
    before = get_setting("cluster.threshold")
    set_setting("cluster.threshold", 9)
    assert get_setting("cluster.threshold") == 9
    db.execute(update(Setting).where(Setting.key == "cluster.threshold").values(value=11))  # Core
    assert get_setting("cluster.threshold") == 11
    assert before == 3  # the default, read before the change


def test_settings_memo_forgets_a_rolled_back_savepoint(db):
    """A row added in a savepoint that is rolled back is gone; the memo must not keep it."""
    assert get_setting("cluster.threshold") == 3  # the default: no row yet, the memo is filled
    savepoint = db.begin_nested()
    set_setting("cluster.threshold", 8)
    assert get_setting("cluster.threshold") == 8
    savepoint.rollback()
    assert db.get(Setting, "cluster.threshold") is None
    assert get_setting("cluster.threshold") == 3


def test_planner_hints_are_plain_sql_on_postgresql():
    stmt = select(Case.id).where(rare(Case.status == "pending_triage"), common(Case.outcome == "success"),
                                 unindexed(Case.county_id) == 3)
    lite = str(stmt.compile(dialect=sqlite.dialect()))
    pg = str(stmt.compile(dialect=postgresql.dialect()))
    assert "unlikely(dispute_case.status = ?)" in lite and "likely(dispute_case.outcome = ?)" in lite
    assert "+dispute_case.county_id = ?" in lite
    assert "likely" not in pg and "+dispute_case" not in pg and "= 1" not in lite
    assert "dispute_case.county_id = %(param_1)s" in pg


def test_ledger_rows_show_what_the_cases_show(db):
    me = user("township_mediator")
    long = "两户因排水沟堵塞发生争执，" * 8
    case = make_case("in_mediation", "township", summary=long, registered_on=today_local() + timedelta(days=1))
    db.add_all([Party(case_id=case.id, position=0, kind="person", name="甲某", role="applicant"),
                Party(case_id=case.id, position=1, kind="person", name="乙某", role="respondent")])
    db.flush()
    brief = page_of_cases(me, CaseFilters(), brief=True)
    full = page_of_cases(me, CaseFilters())
    assert [r.number for r in brief.items] == [c.number for c in full.items]
    assert brief.next_cursor == full.next_cursor
    row, obj = brief.items[0], full.items[0]
    assert row.number == case.number == obj.number
    assert row.party_names == "、".join(p.name for p in obj.parties) == "甲某、乙某"
    assert row.village_name == obj.village.name and row.township_name == obj.township.name
    assert row.summary_short == Environment().from_string("{{ s|truncate(60) }}").render(s=long)
    assert (row.status, row.deadline_on, row.risk_level) == (obj.status, obj.deadline_on, obj.risk_level)


def _todo(username: str, title: str) -> list[str]:
    from flask import current_app
    from app.home.services import workbench
    with current_app.test_request_context():
        for s in workbench(user(username)).todos:
            if s.title == title:
                return [i.title.split()[0] for i in s.items]
    return []


def test_deadline_and_follow_up_to_dos_come_most_urgent_first(db):
    today = today_local()
    # registered newest first, due oldest first: the list follows the due day, not the registration
    later_due = make_case("in_mediation", "county", registered_on=today - timedelta(days=40),
                          deadline_on=today + timedelta(days=1))
    most_overdue = make_case("in_mediation", "county", registered_on=today - timedelta(days=2),
                             deadline_on=today - timedelta(days=9))
    make_case("in_mediation", "county", deadline_on=today + timedelta(days=60))  # not near
    assert _todo("county_supervisor", "临近或超过办理期限")[:2] == [most_overdue.number, later_due.number]
    closed = dict(status="closed", outcome="success", closed_on=today - timedelta(days=40))
    a = make_case(**closed, level="county", registered_on=today - timedelta(days=60),
                  follow_up_due_on=today - timedelta(days=1))
    b = make_case(**closed, level="county", registered_on=today - timedelta(days=50),
                  follow_up_due_on=today - timedelta(days=8))
    make_case(**closed, level="county", follow_up_due_on=today - timedelta(days=8),
              followed_up_on=today - timedelta(days=3))  # followed up since the close: not to do
    assert _todo("county_supervisor", "待回访") == [b.number, a.number]


def test_confirmation_window_matches_the_full_list(db):
    from app.mediation.queries import confirmations_due
    me = user("township_mediator")
    today = today_local()
    for days in (0, 5, 20, 23, 24, 28, 29, 30, 31, 45):
        make_case("closed", "township", outcome="success", closed_on=today - timedelta(days=days))
    everything = confirmations_due(me, today)
    assert everything and all(today <= last for _c, _a, last in everything)
    for ahead in (0, 3, 7, 30):
        until = today + timedelta(days=ahead)
        assert [(c.id, last) for c, _a, last in confirmations_due(me, today, until=until)] == \
            [(c.id, last) for c, _a, last in everything if last <= until]
    set_setting("deadline.judicial_confirmation", {"days": 30, "unit": "working"})
    everything = confirmations_due(me, today)
    until = today + timedelta(days=7)
    assert [c.id for c, _a, _l in confirmations_due(me, today, until=until)] == \
        [c.id for c, _a, last in everything if last <= until]


def test_confirmations_due_equal_a_case_by_case_reading(db):
    """``confirmations_due`` reads the cases without an agreement by their close date and those
    with one by their latest agreement's date, each part cut at the limit: the same rows, in the
    same order, as working out every closed case's window one by one (several agreements, the
    latest counting; applications; other statuses and outcomes; the limit cutting a list)."""
    import random

    from app.mediation.models import Agreement, JudicialConfirmation
    from app.mediation.queries import confirmation_deadline, confirmations_due
    from app.workflow import deadlines
    rng = random.Random(11)
    me = user("township_mediator")
    today = today_local()
    cases = []
    for i in range(70):
        closed_on = today - timedelta(days=rng.randint(0, 50))
        case = make_case("closed" if i % 9 else "archived", "township", outcome="success" if i % 7 else "failed",
                         closed_on=closed_on, registered_on=closed_on - timedelta(days=3))
        for _ in range(rng.choice([0, 0, 1, 1, 2])):  # the latest (highest id) counts, whatever its date
            db.add(Agreement(case_id=case.id, form="written", content="协议内容",
                             agreed_on=closed_on - timedelta(days=rng.randint(0, 40))))
        if rng.random() < 0.1:
            db.add(JudicialConfirmation(case_id=case.id, applied_on=today, court="南湖人民法庭"))
        cases.append(case)
    db.flush()

    def reference(until, limit):
        applied = set(db.scalars(select(JudicialConfirmation.case_id)))
        rows = []
        for case in cases:
            if case.status != "closed" or case.outcome != "success" or case.id in applied:
                continue
            latest = db.scalar(select(Agreement.agreed_on).where(Agreement.case_id == case.id)
                               .order_by(Agreement.id.desc()).limit(1))
            start = latest or case.closed_on
            last = deadlines.add_days(start, "judicial_confirmation")
            if today <= last and (until is None or last <= until):
                rows.append((start, case.id, last))
        rows.sort()
        rows = rows[:limit]  # the statement's order (agreement date, id) and limit
        return sorted(((cid, start, last) for start, cid, last in rows), key=lambda r: (r[2], r[0]))

    for unit in ("calendar", "working"):
        set_setting("deadline.judicial_confirmation", {"days": 30, "unit": unit})
        for until, limit in ((None, 500), (today + timedelta(days=7), 500), (today + timedelta(days=7), 3),
                             (None, 5), (today, 500)):
            got = [(c.id, start, last) for c, start, last in confirmations_due(me, today, until=until, limit=limit)]
            assert got == reference(until, limit), (unit, until, limit)
            assert all(last == confirmation_deadline(db.get(Case, cid), start) for cid, start, last in got)
    assert reference(None, 500)  # the data puts some cases in their window


def test_workbench_counts_follow_each_commit(app, db):
    from app.home.services import status_counts
    me = user("township_mediator")

    def counted() -> dict[str, int]:
        with app.test_request_context():
            return status_counts(me)

    def live() -> dict[str, int]:
        return dict(db.execute(select(Case.status, func.count()).where(Case.township_id == me.org.township_id)
                               .group_by(Case.status)).all())
    before = counted()
    assert counted() == before  # the second read is the cached one
    make_case("pending_triage", "township")
    db.commit()  # the write counters are bumped in the committing transaction
    after = counted()
    assert after["pending_triage"] == before["pending_triage"] + 1 == live()["pending_triage"]


def test_list_filter_choices_follow_each_commit(app, db):
    """The ledger's filter bar is kept in the report cache; a new type, a renamed village, a
    deactivated source or a changed warning setting shows on the next page after the commit (and inside the writing
    transaction, which bypasses the cache)."""
    from app.cases.queries import list_filter_choices
    from app.orgs.models import OrgUnit
    from app.reports.cache import stats
    from app.settings.models import CaseSource, DisputeType
    me = user("county_supervisor")

    def choices():
        with app.test_request_context():
            return list_filter_choices(me)
    first = choices()
    hits = stats()["hits"]
    assert choices() is first and stats()["hits"] == hits + 1  # served as is: frozen, not copied
    assert len(first.townships) > 1 and all("（" in label for _code, label in first.village_options)
    village = db.scalar(select(OrgUnit).where(OrgUnit.level == "village").order_by(OrgUnit.code))
    village.name = "新改名村"
    db.add(DisputeType(name="新增测试类型", position=999, active=True))
    source = db.scalar(select(CaseSource).where(CaseSource.active).order_by(CaseSource.position))
    source.active = False
    set_setting("deadline.warn_days", first.warn_days + 4)
    db.flush()
    inside = choices()  # uncommitted writes: computed afresh
    assert "新增测试类型" in [t.name for t in inside.types] and source.name not in inside.sources
    db.commit()
    after = choices()
    assert after is not first
    assert any(label.startswith("新改名村（") for code, label in after.village_options if code == village.code)
    assert "新增测试类型" in [t.name for t in after.types] and source.name not in after.sources
    assert [t.code for t in after.townships] == [t.code for t in first.townships]
    assert after.warn_days == first.warn_days + 4


def test_filter_bar_option_tags_mark_the_choice_escape_and_stay_bounded(app, db, client, auth):
    """The filter bar's ``<option>`` tags come from ``ListChoices.options`` (made once per
    choice): the filtered village is the one selected, a value from the URL that is none of the
    choices marks nothing and is not remembered, labels are escaped, and the page shows them."""
    from app.cases.queries import ListChoices, TypeOption, list_filter_choices
    me = user("county_supervisor")
    with app.test_request_context():
        choices = list_filter_choices(me)
    code, label = choices.village_options[3]
    tags = str(choices.options("village", code))
    assert tags.count(" selected") == 1 and f'<option value="{code}" selected>{label}</option>' in tags
    assert tags.count("<option") == len(choices.village_options)
    assert choices.options("village", code) is choices.options("village", code)  # kept
    assert " selected" not in str(choices.options("village", "no-such-code"))
    remembered = set(choices._tags)
    for i in range(20):
        assert choices.options("village", f"junk{i}") == choices.options("village", None)
    assert set(choices._tags) == remembered and ("village", None) in remembered
    odd = ListChoices(types=(TypeOption("<b>甲</b>", None), TypeOption("乙&丙", 7)), sources=(), townships=(),
                      village_options=(), warn_days=3)
    html = str(odd.options("type", "乙&丙"))
    assert html == ('<option value="&lt;b&gt;甲&lt;/b&gt;">&lt;b&gt;甲&lt;/b&gt;</option>'
                    '<option value="乙&amp;丙" selected>　乙&amp;丙</option>')
    auth.login("county_supervisor")
    page = client.get(f"/cases/?village={code}").get_data(as_text=True)
    village_select = page[page.index('id="village"'):]
    village_select = village_select[:village_select.index("</select>")]
    assert f'<option value="{code}" selected>' in village_select and village_select.count(" selected") == 1


def test_case_page_reads_department_tasks_once_for_panel_and_mediation(db, client, auth, app):
    """The workflow panel (every task) and the mediation section (the invitations) share one
    read of the case's department tasks."""
    from app.cases.models import DepartmentTask
    from app.orgs.models import OrgUnit
    auth.login("township_mediator")
    case = make_case("in_mediation", "township")
    dept = db.scalar(select(OrgUnit).where(OrgUnit.level == "department").order_by(OrgUnit.id))
    db.add_all([DepartmentTask(case_id=case.id, department_id=dept.id, kind="transfer", request="转办请求甲"),
                DepartmentTask(case_id=case.id, department_id=dept.id, kind="invite", request="联调邀请乙")])
    db.flush()
    with count_queries(app) as seen:
        html = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert "转办请求甲" in html and "联调邀请乙" in html
    invites = html[html.index('data-testid="invites"'):]
    assert "联调邀请乙" in invites[:invites.index("</ul>")] and "转办请求甲" not in invites[:invites.index("</ul>")]
    assert sum(1 for s in seen if s.lstrip().startswith("SELECT department_task.id")) == 1


def test_department_tasks_read_as_rows_equal_the_orms_joined_load(db, app):
    """``department_tasks_of`` reads the tasks and their departments as rows and makes them the
    session's instances: the values the ORM's joined load gives, in id order, each with its
    department, persistent (a change is flushed), a task the session holds kept as it is."""
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import joinedload

    from app.cases.models import DepartmentTask
    from app.cases.queries import case_detail, department_tasks_of
    from app.orgs.models import OrgUnit
    me = user("township_mediator")
    case = make_case("in_mediation", "township")
    depts = db.scalars(select(OrgUnit).where(OrgUnit.level == "department").order_by(OrgUnit.id).limit(2)).all()
    db.add_all([DepartmentTask(case_id=case.id, department_id=depts[i % 2].id, kind=kind, request=f"请求{i}",
                               due_on=today_local(), resolved=i == 1)
                for i, kind in enumerate(("transfer", "invite", "invite"))])
    db.flush()
    number = case.number
    columns = [a.key for a in sa_inspect(DepartmentTask).column_attrs]
    db.expunge_all()
    expected = [({k: getattr(t, k) for k in columns}, t.department.name) for t in db.scalars(
        select(DepartmentTask).where(DepartmentTask.case_id == case.id)
        .options(joinedload(DepartmentTask.department)).order_by(DepartmentTask.id))]
    db.expunge_all()
    loaded = case_detail(me, number)
    with count_queries(app) as seen:
        tasks = department_tasks_of(loaded)
    assert len(seen) == 1 and department_tasks_of(loaded) is tasks  # remembered
    assert [({k: getattr(t, k) for k in columns}, t.department.name) for t in tasks] == expected
    assert len(expected) == 3 and len({t.department_id for t in tasks}) == 2
    assert all(sa_inspect(t).persistent and sa_inspect(t.department).persistent for t in tasks)
    # persistent: a change is flushed (the flush forgets the remembered list); a task the
    # session holds (with a change not flushed) is the one read again
    tasks[0].answer = "已答复"
    db.flush()
    assert db.scalar(select(DepartmentTask.answer).where(DepartmentTask.id == tasks[0].id)) == "已答复"
    tasks[1].answer = "未保存"
    again = department_tasks_of(case_detail(me, number))
    assert again[1] is tasks[1] and again[1].answer == "未保存"


def test_case_detail_loads_parties_and_timeline_in_order_and_keeps_loaded_ones(db, app):
    """``case_detail`` reads the parties (by position) and the timeline (by id): on PostgreSQL
    inside the case's own statement (JSON arrays, ``app.db.child_rows_column``), on SQLite
    with a statement each; the same rows in the same order as the relationships give, and a
    collection the session already holds (with a change not yet flushed) is kept."""
    from app.cases.models import TimelineEntry
    from app.cases.queries import case_detail, timeline_of
    me = user("township_mediator")
    case = make_case("in_mediation", "township")
    db.add_all([Party(case_id=case.id, position=3, kind="person", name="丙", role="applicant"),
                Party(case_id=case.id, position=1, kind="person", name="甲", role="applicant"),
                Party(case_id=case.id, position=2, kind="organisation", name="乙公司", role="respondent")])
    db.add_all([TimelineEntry(case_id=case.id, action=f"step{i}", note=f"第{i}步") for i in range(3)])
    db.flush()
    number, case_id = case.number, case.id
    db.expire_all()
    with count_queries(app) as seen:
        loaded = case_detail(me, number)
        names = [p.name for p in loaded.parties]
        shown = timeline_of(loaded)
    queried = db.execute(select(TimelineEntry.id, TimelineEntry.at, TimelineEntry.actor_id, TimelineEntry.actor_name,
                                TimelineEntry.action, TimelineEntry.from_status, TimelineEntry.to_status,
                                TimelineEntry.note).where(TimelineEntry.case_id == case_id)
                         .order_by(TimelineEntry.id)).all()
    assert names == ["甲", "乙公司", "丙"]
    # the same values, of the same types (the timestamps back from JSON's text on PostgreSQL)
    assert [tuple(r) for r in shown] == [tuple(r) for r in queried] and len(shown) >= 3
    assert [type(v) for r in shown for v in r] == [type(v) for r in queried for v in r]
    assert [t.action for t in shown] == [t.action for t in loaded.timeline]
    # one statement for the case with its flags and (PostgreSQL) its children; on SQLite one each
    # for the parties and the timeline (the others refresh the user that expire_all expired)
    pg = not is_sqlite()
    assert [sum(1 for s in seen if s.lstrip().startswith(f"SELECT {t}.id")) for t in ("dispute_case", "party",
                                                                                    "timeline_entry")] \
        == ([1, 0, 0] if pg else [1, 1, 1])
    held = loaded.parties
    held[0].name = "甲改"  # not flushed
    again = case_detail(me, number)
    assert again.parties is held and again.parties[0].name == "甲改"


def test_case_detail_tells_the_related_tables_in_its_own_statement(db, app):
    """``case_detail`` reads the EXISTS flags with the case; they equal the plain probe's, and
    the page's sections then ask nothing more to find them."""
    from app.cases.queries import _related_stmt, case_detail
    me = user("township_mediator")
    case = make_case("in_mediation", "township")
    db.add(RiskGrading(case_id=case.id, level="medium", suggested_level="medium", factors=[]))
    db.add(FollowUp(case_id=case.id, visited_on=today_local()))
    db.flush()
    db.expire_all()
    with count_queries(app) as seen:
        loaded = case_detail(me, case.number)
        flags = related_tables(loaded)
    plain = db.execute(_related_stmt(), {"case_id": case.id}).one()
    assert flags == {name for name, found in zip(RELATED_TABLES, plain) if found} == {"risk_grading", "follow_up"}
    assert not any(s.lstrip().startswith("SELECT EXISTS") for s in seen)  # no separate probe


def test_same_village_same_type_cases_are_read_from_their_index(db, app):
    """The case page's 同村同类 statement (``cluster_for_case``) is answered by
    ``ix_case_village_type_registered`` (village, type, registered on), not by every case of
    the village in the window filtered by type (migration 7c3e9a1d2b40)."""
    from sqlalchemy import event, text

    from app import db as app_db
    from app.screening.queries import cluster_for_case
    from tests.screening_factories import make_case as make_village_case
    from tests.screening_factories import user as screening_user
    me = screening_user("county_supervisor")
    case = make_village_case(dispute_type="邻里")
    make_village_case(dispute_type="邻里")
    make_village_case(dispute_type="合同")
    db.flush()
    caught: list = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        caught.append((statement, parameters))
    engine = app_db.get_engine(app)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        others = cluster_for_case(me, case)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert [o.dispute_type for o in others.cases] == ["邻里"] and others.total == 1
    statement, params = caught[-1]
    # A test database holds a handful of rows, where any index leading with the village or the
    # county (registered on, closed on, …) costs about the same as the new one and may win the
    # tie, which one depending on the statistics earlier tests left: without them (every other
    # non-unique index of the table, dropped inside this test's transaction, which is rolled
    # back) and without table scans, the planner must show that the statement's terms fit the
    # new index.  At 1,000,000 cases both databases choose it by cost (bench/, README 性能与规模).
    from sqlalchemy import inspect as sa_inspect
    for index in sa_inspect(db.connection()).get_indexes("dispute_case"):
        if index["name"] != "ix_case_village_type_registered" and not index.get("unique"):
            db.execute(text(f"DROP INDEX {index['name']}"))
    raw = db.connection().connection.driver_connection
    cur = raw.cursor()
    if db.get_bind().dialect.name == "sqlite":
        cur.execute("EXPLAIN QUERY PLAN " + statement, params)
    else:
        db.execute(text("SET LOCAL enable_seqscan = off"))
        cur.execute("EXPLAIN " + statement, params)
    plan = " ".join(str(r) for r in cur.fetchall())
    assert "ix_case_village_type_registered" in plan, plan
