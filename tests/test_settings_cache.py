"""The system settings are kept per process while the global write counter stays the same
(``app.reports.cache.cached_global``), the counter being read with the logged-in user
(``load_user_from_cookie``): a page costs no statement for them, and a committed change is
seen by the next request; a transaction's own change is seen at once."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app import db as app_db
from app.accounts.models import User
from app.accounts.services import load_user_from_cookie
from app.reports import cache as report_cache
from app.settings.services import get_setting, set_setting
from tests.helpers import count_queries

KEY = "cluster.window_days"


def _settings_reads(seen: list[str]) -> int:
    return sum(1 for sql in seen if "FROM setting" in sql)


def _new_request(user: User) -> None:
    """What a request of a logged-in user starts with: a new transaction, the user's statement."""
    app_db.session.commit()
    assert load_user_from_cookie(f"{user.id}:{user.session_version}") is not None


def _change_in_a_new_request(user: User, delta: int) -> int:
    """Read the setting in one request, add ``delta`` to it in the next (left uncommitted);
    the value before."""
    _new_request(user)
    before = get_setting(KEY)
    _new_request(user)
    set_setting(KEY, before + delta)
    return before


def _supervisor() -> User:
    return app_db.session.scalar(select(User).where(User.username == "county_supervisor"))


def test_settings_are_read_once_per_counter(app, db):
    user = _supervisor()
    with app.test_request_context("/"):
        _new_request(user)
        with count_queries(app) as seen:
            first = get_setting(KEY)
        assert _settings_reads(seen) == 1  # not cached yet
        _new_request(user)
        with count_queries(app) as seen:
            assert get_setting(KEY) == first
            assert get_setting("cluster.threshold") is not None
        assert _settings_reads(seen) == 0  # from this process's cache


def test_a_committed_change_is_seen_by_the_next_request(app, db):
    user = _supervisor()
    with app.test_request_context("/"):
        before = _change_in_a_new_request(user, 7)
        assert get_setting(KEY) == before + 7  # this transaction's own change
        _new_request(user)  # the commit bumped the global counter
        with count_queries(app) as seen:
            assert get_setting(KEY) == before + 7
        assert _settings_reads(seen) == 1
        # the value kept under the old counter was not changed in place
        key = ("settings", report_cache.GLOBAL)
        kept = [v for k, v in report_cache._cache.items.items() if k[:2] == key]
        assert sorted(v[KEY] for v in kept if KEY in v) in ([before, before + 7], [before + 7])


def test_a_transaction_that_wrote_a_setting_bypasses_the_cache(app, db):
    user = _supervisor()
    with app.test_request_context("/"):
        before = _change_in_a_new_request(user, 1)
        app_db.session.info.pop("qy_settings", None)  # as a Core write in the transaction would forget it
        with count_queries(app) as seen:
            assert get_setting(KEY) == before + 1
        assert _settings_reads(seen) == 1
        app_db.session.rollback()
        _new_request(user)
        assert get_setting(KEY) == before


def test_without_a_logged_in_user_settings_are_read_from_the_database(app, db):
    with app.test_request_context("/"):
        app_db.session.commit()
        get_setting(KEY)
        for _ in range(2):
            app_db.session.commit()
            with count_queries(app) as seen:
                get_setting(KEY)
            assert _settings_reads(seen) == 1  # no counter noted: no cache (CLI, API tokens)


def test_the_counters_read_with_the_user_are_the_ones_the_report_cache_reads(app, db):
    from tests.screening_factories import make_case
    user = _supervisor()
    county_id = user.org.id if user.org.level == "county" else user.org.county_id
    case = make_case()
    with app.test_request_context("/"):
        _new_request(user)
        with count_queries(app) as seen:
            noted = report_cache._generation(county_id)
        assert seen == [] and noted is not None  # read with the user: no statement of its own
        app_db.session.info.pop("generation_read")
        assert report_cache._generation(county_id) == noted  # what reading them now gives
        # a committed write in the county changes the county's counter for the next request
        case.notes = (case.notes or "") + "。"
        _new_request(user)
        after = report_cache._generation(county_id)
        assert after[:2] == noted[:2] and after[2] == noted[2] + 1 and after[3] == noted[3]


def test_a_logged_in_report_page_reads_no_counter_of_its_own(app, db, client, auth):
    from tests.intake_helpers import login
    login(auth, "county_supervisor")
    client.get("/reports/")
    with count_queries(app) as seen:
        assert client.get("/reports/").status_code == 200
    assert not [sql for sql in seen if sql.lstrip().startswith("SELECT data_generation")]
    assert len(seen) == 1  # the user's statement, with the counters; the figures from the cache


def test_the_panels_reference_lists_are_cached_under_the_counters(app, db):
    """The workflow panel's department and risk-factor lists: read once per counter, and a
    committed change (a new factor, a department closed) is in the next request's lists."""
    from app.orgs.models import OrgUnit
    from app.settings.models import RiskFactor
    from app.workflow.panel import department_choices, factor_choices
    from tests.screening_factories import make_case
    user = _supervisor()
    case = make_case()
    with app.test_request_context("/"):
        _new_request(user)
        with count_queries(app) as seen:
            factors, departments = factor_choices(), department_choices(case)
        assert any("FROM risk_factor" in sql for sql in seen) and any("FROM org_unit" in sql for sql in seen)
        assert factors and departments
        _new_request(user)
        with count_queries(app) as seen:
            assert factor_choices() == factors and department_choices(case) == departments
        assert seen == []
        app_db.session.add(RiskFactor(name="测试因素", suggests="high", position=999))
        app_db.session.get(OrgUnit, departments[0].id).active = False
        _new_request(user)
        assert "测试因素" in [f.name for f in factor_choices()]
        assert departments[0].id not in [d.id for d in department_choices(case)]


@pytest.mark.parametrize("status", ["pending_triage", "in_mediation"])
def test_the_panels_pickers_are_what_their_own_queries_give(app, db, status):
    """The three user pickers come from one statement: each is what ``users_for_picker`` gives
    for its roles, in the same order."""
    from flask_login import login_user

    from app.cases.services import users_for_picker
    from app.workflow.panel import LEADER_ROLES, MEDIATOR_ROLES, panel_context
    from tests.screening_factories import make_case
    mediator = app_db.session.scalar(select(User).where(User.username == "township_mediator"))
    case = make_case(status=status, handling_level="township", lead_mediator_id=mediator.id)
    case.responsible_org_id = case.township_id
    with app.test_request_context("/"):
        login_user(mediator)
        with count_queries(app) as seen:
            ctx = panel_context(case)
        assert "mediators" in ctx, "the township mediator should have a picker on this case"
        assert sum(1 for sql in seen if "FROM user_account JOIN org_unit" in sql) == 1
        assert ctx["mediators"] == users_for_picker(case, MEDIATOR_ROLES) and ctx["mediators"]
        assert ctx["leaders"] == users_for_picker(case, LEADER_ROLES) and ctx["leaders"]
        assert ctx["all_users"] == users_for_picker(case, MEDIATOR_ROLES + LEADER_ROLES + ("grid_worker", "dept_liaison"))


def test_users_for_picker_equals_the_orms_query(app, db):
    """``users_for_picker`` (a kept statement read as rows) gives the users the plain ORM query
    gives — active, of the roles asked, whose unit is the case's county, township or village or
    lies under its village — in (role, name) order, for cases in different townships; an
    inactive user and another township's are left out."""
    from sqlalchemy import or_

    from app.cases.services import users_for_picker
    from app.orgs.models import OrgUnit
    from app.workflow.panel import LEADER_ROLES, MEDIATOR_ROLES
    from tests.screening_factories import OTHER_TOWNSHIP_VILLAGE, make_case
    here, there = make_case(), make_case(village=OTHER_TOWNSHIP_VILLAGE)
    gone = app_db.session.scalar(select(User).where(User.username == "village_mediator"))
    gone.active = False
    app_db.session.flush()
    for case in (here, there):
        for roles in (MEDIATOR_ROLES, LEADER_ROLES, MEDIATOR_ROLES + LEADER_ROLES + ("grid_worker", "dept_liaison")):
            expected = list(app_db.session.scalars(
                select(User).join(OrgUnit, User.org_id == OrgUnit.id)
                .where(User.active, User.role.in_(list(roles)),
                       or_(OrgUnit.id == case.county_id, OrgUnit.id == case.township_id, OrgUnit.id == case.village_id,
                           OrgUnit.parent_id == case.village_id))
                .order_by(User.role, User.display_name)))
            with count_queries(app) as seen:
                got = users_for_picker(case, roles)
            assert got == expected and len(seen) == 1
        assert gone not in users_for_picker(case, MEDIATOR_ROLES)
    assert users_for_picker(here, MEDIATOR_ROLES) != users_for_picker(there, MEDIATOR_ROLES)
