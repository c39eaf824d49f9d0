"""The logged-in user is read as one row (their columns, their unit's and the write counters)
and made the session's own instance without the ORM's query machinery
(``app.db.persistent_from_row``): it must behave exactly as a queried user — persistent, with
its unit loaded, relationships still loading, changes flushed — and when the session already
holds the user, that instance is kept while the row decides whether the cookie is still good."""
from __future__ import annotations

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, update

from app import db as app_db
from app.accounts.models import User
from app.accounts.services import load_user_from_cookie
from app.orgs.models import OrgUnit
from tests.helpers import count_queries


def _user_id(username: str) -> tuple[int, int]:
    row = app_db.session.execute(select(User.id, User.session_version).where(User.username == username)).one()
    app_db.session.expunge_all()
    return row.id, row.session_version


def _columns(obj) -> dict:
    return {attr.key: getattr(obj, attr.key) for attr in sa_inspect(type(obj)).column_attrs}


def test_the_loaded_user_is_persistent_with_its_unit(app, db):
    uid, version = _user_id("township_mediator")
    with app.test_request_context("/"):
        with count_queries(app) as seen:
            user = load_user_from_cookie(f"{uid}:{version}")
            assert user is not None and user.username == "township_mediator"
            assert sa_inspect(user).persistent and not sa_inspect(user).modified
            assert user.org is not None and user.org.id == user.org_id
            assert sa_inspect(user.org).persistent
        selects = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]
        assert len(selects) == 1  # the user, the unit and the counters: one statement
        # later statements get the same instances from the session's identity map
        assert app_db.session.get(User, uid) is user
        assert app_db.session.get(OrgUnit, user.org_id) is user.org
        assert not app_db.session.dirty and not app_db.session.new
        # a relationship the row did not carry loads when read (the township's county)
        assert user.org.parent is not None and user.org.parent.id == user.org.parent_id
        assert user.org.parent.level == "county"
        # still nothing pending after the lazy load: a read-only request can end with COMMIT
        assert not app_db.session.dirty and not app_db.session.new and not app_db.session.deleted


def test_the_loaded_user_equals_a_queried_one(app, db):
    uid, version = _user_id("county_supervisor")
    with app.test_request_context("/"):
        user = load_user_from_cookie(f"{uid}:{version}")
        loaded, org = _columns(user), _columns(user.org)
    app_db.session.expunge_all()
    queried = app_db.session.get(User, uid)
    assert loaded == _columns(queried)
    assert org == _columns(queried.org)


def test_changes_to_the_loaded_user_are_flushed(app, db):
    uid, version = _user_id("village_mediator")
    with app.test_request_context("/"):
        user = load_user_from_cookie(f"{uid}:{version}")
        user.display_name = "改名后的调解员"
        assert user in app_db.session.dirty
        app_db.session.flush()
    app_db.session.expunge_all()
    assert app_db.session.scalar(select(User.display_name).where(User.id == uid)) == "改名后的调解员"


def test_a_user_the_session_holds_is_kept_and_the_row_decides(app, db):
    uid, version = _user_id("township_mediator")
    with app.test_request_context("/"):
        held = app_db.session.get(User, uid)
        assert load_user_from_cookie(f"{uid}:{version}") is held
        # the version bumped behind the session's back (another request ended every session)
        app_db.session.connection().execute(
            update(User.__table__).where(User.__table__.c.id == uid).values(session_version=version + 1))
        assert held.session_version == version  # the held copy does not know
        assert load_user_from_cookie(f"{uid}:{version}") is None
        assert load_user_from_cookie(f"{uid}:{version + 1}") is held


def test_an_expired_user_the_session_holds_is_filled_from_the_row(app, db):
    uid, version = _user_id("township_mediator")
    with app.test_request_context("/"):
        held = app_db.session.get(User, uid)
        app_db.session.expire(held)  # as after a commit
        with count_queries(app) as seen:
            assert load_user_from_cookie(f"{uid}:{version}") is held
            assert held.username == "township_mediator" and held.session_version == version
        assert len([sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]) == 1  # no refresh


def test_a_wrong_cookie_or_an_inactive_user_loads_nobody(app, db):
    uid, version = _user_id("grid_worker")
    with app.test_request_context("/"):
        assert load_user_from_cookie(f"{uid}:{version + 1}") is None
        assert load_user_from_cookie("999999:0") is None
        assert load_user_from_cookie("not-a-cookie") is None
        assert load_user_from_cookie(f"{uid}:{version}") is not None
        app_db.session.execute(update(User).where(User.id == uid).values(active=False))
        app_db.session.expunge_all()
        assert load_user_from_cookie(f"{uid}:{version}") is None
