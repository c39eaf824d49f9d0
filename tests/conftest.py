"""Test fixtures: one database per run (SQLite file, or PostgreSQL when TEST_DATABASE_URL is
set), created from the models and seeded with the demo county (no cases); each test
runs inside a transaction rolled back afterwards.

``make test`` runs the suite on SQLite and again on PostgreSQL (see Makefile).
"""
from __future__ import annotations

import os
import re
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from flask import g
from hypothesis import settings as hypothesis_settings
from flask.testing import FlaskClient

from app import create_app
from app import db as app_db
from app.reports import cache as report_cache

PG_URL = os.environ.get("TEST_DATABASE_URL")

# Property-based tests (tests/test_trust_hostile.py): few examples, no deadline, and derandomised
# so every run (and CI) tries the same inputs; HYPOTHESIS_PROFILE=explore searches wider.
hypothesis_settings.register_profile("qingyuan", max_examples=40, deadline=None, derandomize=True,
                                     database=None, print_blob=True)
hypothesis_settings.register_profile("explore", max_examples=500, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "qingyuan"))


def _create_pg_database(base_url: str) -> str:
    """A fresh database with a UTF-8 ctype (pg_trgm needs it for Chinese), dropped at exit."""
    url = make_url(base_url)
    name = f"qy_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                          f"LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
    admin.dispose()
    return url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def _drop_pg_database(db_url: str, base_url: str) -> None:
    name = make_url(db_url).database
    assert re.fullmatch(r"qy_test_[0-9a-f]{10}", name)
    admin = create_engine(make_url(base_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if PG_URL:
        url = _create_pg_database(PG_URL)
        yield url
        _drop_pg_database(url, PG_URL)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    from app.demo.seed import seed_demo

    application = create_app({"TESTING": True, "DATABASE_URL": database_url, 
                              "UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads"))})
    # every test client, not only the ``client`` fixture's: a test that makes its own clients
    # must not share one ``g`` (Flask-Login's user) between them when run on its own
    application.test_client_class = FreshContextClient
    with application.app_context():
        # The schema from the models (migrations are tested on their own in test_migrations.py).
        app_db.Base.metadata.create_all(app_db.get_engine(application))
        seed_demo(with_cases=False, echo=lambda *_: None)
        app_db.session.commit()
        app_db.session.remove()
    yield application


@pytest.fixture()
def db(app):
    """The scoped session bound to a connection whose transaction is rolled back after the test."""
    engine = app_db.get_engine(app)
    connection = engine.connect()
    outer = connection.begin()
    app_db.session.remove()
    app_db.session.configure(bind=connection, join_transaction_mode="create_savepoint")
    # the rolled-back transaction hands the next test the same write counters with other data
    report_cache.clear()
    ctx = app.app_context()
    ctx.push()
    try:
        yield app_db.session
    finally:
        ctx.pop()
        app_db.session.remove()
        if outer.is_active:
            outer.rollback()
        connection.close()
        app_db.session.configure(bind=engine, join_transaction_mode="conditional_savepoint")


class FreshContextClient(FlaskClient):
    """Each request gets its own app context (a fresh ``g``), as in production, while the
    test's session (bound to the rolled-back connection) carries over between requests."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            g.keep_db_session = True
            return super().open(*args, **kwargs)


@pytest.fixture()
def client(app, db):
    app.test_client_class = FreshContextClient
    return app.test_client()


@pytest.fixture()
def runner(app, db):
    return app.test_cli_runner()


DEMO_PASSWORD = "Qingyuan@2026"


def next_totp_code(user, secret=None) -> str:
    """A valid, not yet used code of ``user``'s second factor: the earliest time step inside the
    accepted window (now ± 1) after the last one used.  When a test has used them all (three
    logins within one 30-second step), the user's last-used step is moved back, a test-only
    shortcut instead of sleeping.  Flushes through ``app.db.session``."""
    import pyotp
    from app import db as app_db
    from app.accounts import totp
    secret = secret or user.totp_secret
    current = int(totp.now_ts() // 30)
    step = current - totp.VALID_WINDOW if user.totp_last_step is None else \
        max(current - totp.VALID_WINDOW, user.totp_last_step + 1)
    if step > current + totp.VALID_WINDOW:
        user.totp_last_step = current - totp.VALID_WINDOW - 1
        app_db.session.flush()
        step = current - totp.VALID_WINDOW
    return pyotp.TOTP(secret).generate_otp(step)


def complete_second_factor(client, username: str, resp):
    """After the password step: enrol (a role that requires it, first login) or type the code,
    reading the secret from the database as the user's authenticator would hold it."""
    from urllib.parse import urlsplit
    from sqlalchemy import select
    from app import db as app_db
    from app.accounts.models import User
    from tests.helpers import csrf_token
    path = urlsplit(resp.headers.get("Location", "")).path if resp.status_code == 302 else ""
    if path not in ("/login/totp-setup", "/login/code"):
        return resp
    token = csrf_token(client, path)  # the enrolment page stores the secret
    user = app_db.session.scalar(select(User).where(User.username == username))
    return client.post(path, data={"code": next_totp_code(user), "csrf_token": token})


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username: str = "township_mediator", password: str = DEMO_PASSWORD,
              second_factor: bool = True):
        """Log in through the form; with ``second_factor`` also through the code or enrolment
        step when the user has (or their role requires) one."""
        from tests.helpers import csrf_token
        token = csrf_token(self._client, "/login")
        resp = self._client.post("/login", data={"username": username, "password": password,
                                                 "csrf_token": token})
        return complete_second_factor(self._client, username, resp) if second_factor else resp

    def logout(self):
        from tests.helpers import csrf_token
        return self._client.post("/logout", data={"csrf_token": csrf_token(self._client)})


@pytest.fixture()
def auth(client):
    return AuthActions(client)
