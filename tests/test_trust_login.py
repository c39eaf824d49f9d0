"""Login defences (issue 9; OWASP ASVS 4.0.3 level 2, 等保2.0): throttling and lockout per
username and per address, kept in the database; common passwords refused everywhere; a new
session at login; idle and absolute timeouts; sessions ended by a password change and by the
admin; the TOTP second factor (enrolment, code step, replay, required for admin); CSRF on
every new form.  Time moves by patching the clocks, never by sleeping."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import func, select, text

from app.accounts import services, throttle, totp
from app.accounts.models import LoginFailure, LoginLockout, User
from app.audit.models import AuditLog
from app.db import utcnow
from tests.conftest import DEMO_PASSWORD, PG_URL, AuthActions, next_totp_code
from tests.helpers import csrf_token

GOOD_PASSWORD = "Long-enough-2026"
LOCKED = "登录失败次数过多，已暂时锁定"
ROOT = Path(__file__).resolve().parents[1]


def user(db, username) -> User:
    return db.scalar(select(User).where(User.username == username))


def post_login(client, username, password, address="10.0.0.1", next_url=None):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       query_string={"next": next_url} if next_url else None,
                       environ_base={"REMOTE_ADDR": address})


def logged_in(client) -> bool:
    return client.get("/").status_code == 200


def actions(db, action) -> int:
    return db.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action))


@pytest.fixture()
def clock(monkeypatch):
    """Move the throttle's, the session timeouts' and the TOTP clocks together."""
    import app.security as security
    state = {"offset": 0.0}
    real_utcnow, real_ts = throttle.utcnow, totp.now_ts

    def advance(**delta):
        state["offset"] += timedelta(**delta).total_seconds()

    monkeypatch.setattr(throttle, "utcnow", lambda: real_utcnow() + timedelta(seconds=state["offset"]))
    monkeypatch.setattr(totp, "now_ts", lambda: real_ts() + state["offset"])
    monkeypatch.setattr(security, "now_ts", lambda: real_ts() + state["offset"])
    return advance


# ---- throttling and lockout ----------------------------------------------------------------

def test_five_failures_lock_the_username_even_with_the_right_password(client, db):
    for i in range(4):  # a different address each time: only the username counter can trip
        resp = post_login(client, "township_mediator", "wrong-password-x", address=f"10.1.0.{i}")
        assert resp.status_code == 200 and "用户名或密码错误" in resp.get_data(as_text=True)
    resp = post_login(client, "township_mediator", "wrong-password-x", address="10.1.0.9")
    assert resp.status_code == 429 and LOCKED in resp.get_data(as_text=True)
    resp = post_login(client, "township_mediator", DEMO_PASSWORD, address="10.1.1.1")
    assert resp.status_code == 429 and LOCKED in resp.get_data(as_text=True)
    assert not logged_in(client)
    assert actions(db, "login.failed") == 5 and actions(db, "login.lockout") == 1
    assert actions(db, "login.refused_locked") == 1
    # Another user is not affected.
    assert post_login(client, "grid_worker", DEMO_PASSWORD, address="10.1.1.2").status_code == 302


def test_the_lockout_message_does_not_reveal_whether_the_username_exists(client, db):
    pages = {}
    for name in ("township_mediator", "no_such_person"):
        for i in range(5):
            post_login(client, name, "wrong-password-x", address=f"10.2.{len(pages)}.{i}")
        resp = post_login(client, name, DEMO_PASSWORD, address="10.2.9.9")
        assert resp.status_code == 429
        html = resp.get_data(as_text=True)
        pages[name] = html[html.index('role="alert"'):html.index("</div>", html.index('role="alert"'))]
    assert pages["township_mediator"] == pages["no_such_person"] and LOCKED in pages["no_such_person"]


def test_five_failures_from_one_address_lock_it_across_usernames(client, db):
    for name in ("a_user", "b_user", "township_mediator", "c_user", "grid_worker"):
        post_login(client, name, "wrong-password-x", address="10.3.0.7")
    resp = post_login(client, "county_leader", DEMO_PASSWORD, address="10.3.0.7")
    assert resp.status_code == 429 and LOCKED in resp.get_data(as_text=True)
    assert not logged_in(client)
    entry = db.scalar(select(AuditLog).where(AuditLog.action == "login.lockout"))
    assert entry.detail["kind"] == "ip" and entry.detail["key"] == "10.3.0.7"
    # The same user from another address gets in: the address was locked, not the user.
    assert post_login(client, "county_leader", DEMO_PASSWORD, address="10.3.0.8").status_code == 302


def test_lockout_expires_after_fifteen_minutes(client, db, clock):
    for i in range(5):
        post_login(client, "township_mediator", "wrong-password-x", address=f"10.4.0.{i}")
    clock(minutes=14)
    assert post_login(client, "township_mediator", DEMO_PASSWORD).status_code == 429
    clock(minutes=1, seconds=1)
    assert post_login(client, "township_mediator", DEMO_PASSWORD).status_code == 302
    assert logged_in(client)


def test_failures_older_than_the_window_do_not_count(client, db, clock):
    for i in range(4):
        post_login(client, "township_mediator", "wrong-password-x", address=f"10.5.0.{i}")
    clock(minutes=16)
    resp = post_login(client, "township_mediator", "wrong-password-x", address="10.5.1.1")
    assert resp.status_code == 200 and LOCKED not in resp.get_data(as_text=True)
    assert post_login(client, "township_mediator", DEMO_PASSWORD, address="10.5.1.2").status_code == 302


def test_a_successful_login_clears_the_username_counter(client, db, auth):
    for i in range(4):
        post_login(client, "township_mediator", "wrong-password-x", address=f"10.6.0.{i}")
    assert post_login(client, "township_mediator", DEMO_PASSWORD, address="10.6.1.0").status_code == 302
    auth.logout()
    for i in range(4):
        resp = post_login(client, "township_mediator", "wrong-password-x", address=f"10.6.2.{i}")
        assert resp.status_code == 200  # four fresh failures: still below the limit
    assert post_login(client, "township_mediator", DEMO_PASSWORD, address="10.6.3.0").status_code == 302


def test_failures_and_lockouts_are_rows_in_the_database(client, db):
    for i in range(5):
        post_login(client, "Township_Mediator", "wrong-password-x", address=f"10.7.0.{i}")
    assert db.scalar(select(func.count()).select_from(LoginFailure)
                     .where(LoginFailure.username == "township_mediator")) == 5
    lock = db.scalar(select(LoginLockout).where(LoginLockout.kind == "username"))
    assert lock.key == "township_mediator"
    assert throttle.is_locked("township_mediator", "10.99.0.1")


def test_cli_unlock_lifts_a_lockout(client, db, runner):
    for i in range(5):
        post_login(client, "township_mediator", "wrong-password-x", address=f"10.8.0.{i}")
    assert post_login(client, "township_mediator", DEMO_PASSWORD, address="10.8.1.0").status_code == 429
    result = runner.invoke(args=["accounts", "unlock", "township_mediator"])
    assert result.exit_code == 0, result.output
    assert post_login(client, "township_mediator", DEMO_PASSWORD, address="10.8.1.1").status_code == 302
    assert actions(db, "login.unlock") == 1


# ---- the counters are shared by every process ----------------------------------------------

APP_PROCESS = textwrap.dedent('''
    import re, sys
    from app import create_app
    from app import db as app_db
    url, step = sys.argv[1], sys.argv[2]
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    client = app.test_client()
    def login(password, address):
        html = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        return client.post("/login", data={"username": "township_mediator", "password": password,
                                           "csrf_token": token}, environ_base={"REMOTE_ADDR": address})
    if step == "fail":
        from app.demo.seed import seed_demo
        with app.app_context():
            app_db.Base.metadata.create_all(app_db.get_engine(app))
            seed_demo(with_cases=False, echo=lambda *_: None)
            app_db.session.commit()
        print(login("Qingyuan@2026", "10.9.1.1").status_code)  # the right password works at first
        client.post("/logout", data={"csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                                                             client.get("/").get_data(as_text=True)).group(1)})
        for i in range(5):
            login("wrong-password-x", "10.9.0.%d" % i)
    else:
        print(login("Qingyuan@2026", "10.9.1.1").status_code)
''')


def test_a_second_app_process_sharing_the_database_sees_the_lockout(app, tmp_path):
    """Process A (its own app instance) records five failures; process B, another app
    instance with nothing in memory from A, refuses the right password: the counter lives in
    the database, not in a process."""
    from tests.conftest import _create_pg_database, _drop_pg_database
    url = _create_pg_database(PG_URL) if PG_URL else f"sqlite:///{tmp_path / 'shared.db'}"
    script = tmp_path / "app_process.py"
    script.write_text(APP_PROCESS)

    def run(step):
        done = subprocess.run([sys.executable, str(script), url, step], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    try:
        assert run("fail") == "302"
        assert run("try") == "429"
    finally:
        if PG_URL:
            _drop_pg_database(url, PG_URL)


# ---- common passwords ---------------------------------------------------------------------

COMMON = "Password1234"  # twelve characters, on the shipped list (compared case-insensitively)


def test_the_shipped_list_is_large_and_keeps_the_demo_password():
    assert len(services.common_passwords()) > 2000
    assert services.is_common_password(COMMON) and services.is_common_password("1qaz2wsx3edc")
    assert services.check_password_rules(DEMO_PASSWORD) is None
    assert services.check_password_rules(GOOD_PASSWORD) is None
    assert "常见" in services.check_password_rules("woaini1314520")


def test_common_password_refused_by_change_password(client, auth, db):
    auth.login("township_mediator")
    token = csrf_token(client, "/account/password")
    resp = client.post("/account/password", data={"csrf_token": token, "current_password": DEMO_PASSWORD,
                                                   "new_password": COMMON, "confirm": COMMON})
    assert resp.status_code == 200 and "过于常见" in resp.get_data(as_text=True)
    assert logged_in(client)
    auth.logout()
    assert auth.login("township_mediator", COMMON).status_code == 200  # the password did not change


def test_common_password_refused_by_admin_create_and_reset(client, auth, db):
    auth.login("admin")
    resp = client.post("/admin/users/new", data={
        "csrf_token": csrf_token(client, "/admin/users/new"), "username": "zhao_liu", "display_name": "赵六",
        "role": "grid_worker", "org_code": "42996000200102", "password": COMMON})
    assert resp.status_code == 422 and "过于常见" in resp.get_data(as_text=True)
    assert user(db, "zhao_liu") is None
    target = user(db, "county_leader")
    before = target.password_hash
    resp = client.post(f"/admin/users/{target.id}/password",
                       data={"csrf_token": csrf_token(client, "/admin/users"), "new_password": COMMON},
                       follow_redirects=True)
    assert "过于常见" in resp.get_data(as_text=True)
    db.refresh(target)
    assert target.password_hash == before and not target.must_change_password


def test_common_password_refused_by_cli_create(runner, db):
    result = runner.invoke(args=["accounts", "create", "newbie", "--role", "county_leader", "--org", "429960",
                                 "--password", COMMON])
    assert result.exit_code != 0 and "过于常见" in result.output
    assert user(db, "newbie") is None


# ---- a new session at login, timeouts -----------------------------------------------------

def test_the_session_is_emptied_at_login(client, auth):
    with client.session_transaction() as s:
        s["planted"] = "from-before-login"
    assert auth.login("township_mediator").status_code == 302
    with client.session_transaction() as s:
        assert "planted" not in s and s.get("_user_id")


def test_the_session_is_emptied_at_each_login_step_for_a_second_factor(client, auth):
    with client.session_transaction() as s:
        s["planted"] = "from-before-login"
    resp = auth.login("admin", second_factor=False)
    assert resp.headers["Location"].endswith("/login/totp-setup")
    with client.session_transaction() as s:
        assert "planted" not in s and "_user_id" not in s  # not logged in before the second factor
        s["planted"] = "between-the-steps"
    from tests.conftest import complete_second_factor
    assert complete_second_factor(client, "admin", resp).status_code == 302
    with client.session_transaction() as s:
        assert "planted" not in s and s.get("_user_id")


def test_idle_timeout_logs_out_with_a_message(client, auth, clock):
    auth.login("township_mediator")
    clock(minutes=20)
    assert logged_in(client)  # activity resets the idle clock
    clock(minutes=20)
    assert logged_in(client)
    clock(minutes=30, seconds=5)
    resp = client.get("/cases")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert "30 分钟未操作" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert not logged_in(client)


def test_idle_timeout_is_configurable(app, client, auth, clock, monkeypatch):
    monkeypatch.setitem(app.config, "IDLE_TIMEOUT_MINUTES", 5)
    auth.login("township_mediator")
    clock(minutes=4)
    assert logged_in(client)
    clock(minutes=5, seconds=1)
    assert not logged_in(client)


def test_absolute_session_lifetime(app, client, auth, clock, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_MAX_HOURS", 1)
    auth.login("township_mediator")
    for _ in range(3):
        clock(minutes=19)
        assert logged_in(client)
    clock(minutes=4)
    resp = client.get("/")
    assert resp.status_code == 302
    assert "已超过 1 小时" in client.get(resp.headers["Location"]).get_data(as_text=True)


# ---- sessions ended -------------------------------------------------------------------------

def test_a_password_change_ends_the_users_other_sessions(app, db, client):
    mine, other = app.test_client(), app.test_client()
    AuthActions(mine).login("township_mediator")
    AuthActions(other).login("township_mediator")
    assert logged_in(other)
    resp = mine.post("/account/password", data={
        "csrf_token": csrf_token(mine, "/account/password"), "current_password": DEMO_PASSWORD,
        "new_password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert resp.status_code == 302
    assert not logged_in(other)
    assert not logged_in(mine)  # decided: the changing user logs in again too
    assert AuthActions(mine).login("township_mediator", GOOD_PASSWORD).status_code == 302


def test_admin_ends_a_users_sessions_with_csrf_and_audit(app, db, client):
    admin, victim = app.test_client(), app.test_client()
    AuthActions(victim).login("township_secretary")
    AuthActions(admin).login("admin")
    target = user(db, "township_secretary")
    page = admin.get(f"/admin/users/{target.id}").get_data(as_text=True)
    assert f"/admin/users/{target.id}/sessions" in page
    assert admin.post(f"/admin/users/{target.id}/sessions").status_code == 400  # no CSRF token
    assert logged_in(victim)
    admin.post(f"/admin/users/{target.id}/sessions", data={"csrf_token": csrf_token(admin, "/admin/users")})
    assert not logged_in(victim)
    assert db.scalar(select(AuditLog).where(AuditLog.action == "user.end_sessions",
                                            AuditLog.object_id == str(target.id)))


# ---- the second factor --------------------------------------------------------------------

def enrol_from_account_page(client, db, username="township_mediator") -> str:
    page = client.get("/account/security").get_data(as_text=True)
    secret = user(db, username).totp_secret
    assert secret and secret in page and "otpauth://totp/" in page and "<svg" in page
    return secret


def test_totp_enrolment_needs_a_valid_code(client, auth, db):
    auth.login("township_mediator")
    secret = enrol_from_account_page(client, db)
    token = csrf_token(client, "/account/security")
    wrong = f"{(int(pyotp.TOTP(secret).now()) + 1) % 1000000:06d}"
    client.post("/account/totp/enable", data={"csrf_token": token, "code": wrong})
    assert not user(db, "township_mediator").totp_enabled
    client.post("/account/totp/enable", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    assert user(db, "township_mediator").totp_enabled
    assert actions(db, "user.totp_enable") == 1 and actions(db, "user.totp_enable_failed") == 1
    stored = db.execute(text("SELECT totp_secret FROM user_account WHERE username = 'township_mediator'")).scalar()
    assert stored and secret not in stored  # encrypted at rest (app.crypto)


def test_an_enrolled_user_needs_the_code_and_a_code_cannot_be_replayed(client, auth, db):
    auth.login("township_mediator")
    secret = enrol_from_account_page(client, db)
    code = pyotp.TOTP(secret).now()
    client.post("/account/totp/enable", data={"csrf_token": csrf_token(client, "/account/security"), "code": code})
    auth.logout()
    resp = auth.login("township_mediator", second_factor=False)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/code")
    assert not logged_in(client)  # the password alone does not log in
    token = csrf_token(client, "/login/code")
    resp = client.post("/login/code", data={"csrf_token": token, "code": code})  # already used at enrolment
    assert resp.status_code == 200 and "验证码不正确或已使用" in resp.get_data(as_text=True)
    assert not logged_in(client)
    fresh = next_totp_code(user(db, "township_mediator"))
    resp = client.post("/login/code", data={"csrf_token": token, "code": fresh})
    assert resp.status_code == 302 and logged_in(client)
    entry = db.scalars(select(AuditLog).where(AuditLog.action == "login").order_by(AuditLog.id.desc())).first()
    assert entry.detail == {"second_factor": True}
    auth.logout()
    auth.login("township_mediator", second_factor=False)
    resp = client.post("/login/code", data={"csrf_token": csrf_token(client, "/login/code"), "code": fresh})
    assert "验证码不正确或已使用" in resp.get_data(as_text=True) and not logged_in(client)


def test_wrong_codes_count_towards_the_lockout(client, auth, db):
    u = user(db, "township_mediator")
    u.totp_secret, u.totp_enabled = pyotp.random_base32(), True
    db.flush()
    auth.login("township_mediator", second_factor=False)
    token = csrf_token(client, "/login/code")
    for _ in range(4):
        resp = client.post("/login/code", data={"csrf_token": token, "code": "000000"})
        assert resp.status_code == 200
    resp = client.post("/login/code", data={"csrf_token": token, "code": "000000"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert LOCKED in client.get("/login").get_data(as_text=True)
    assert auth.login("township_mediator").status_code == 429
    assert actions(db, "login.code_failed") == 5


def test_the_code_step_expires(client, auth, db, clock):
    u = user(db, "township_mediator")
    u.totp_secret, u.totp_enabled = pyotp.random_base32(), True
    db.flush()
    auth.login("township_mediator", second_factor=False)
    token = csrf_token(client, "/login/code")
    clock(minutes=6)
    resp = client.post("/login/code", data={"csrf_token": token, "code": next_totp_code(u)})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert not logged_in(client)


def test_the_code_step_needs_the_password_step_first(client, db):
    resp = client.get("/login/code")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert client.get("/login/totp-setup").status_code == 302


def test_admin_must_enrol_before_reaching_any_page(client, auth, db):
    resp = auth.login("admin", second_factor=False)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/totp-setup")
    resp = client.get("/admin/users")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]  # not logged in
    page = client.get("/login/totp-setup").get_data(as_text=True)
    secret = user(db, "admin").totp_secret
    assert secret in page and "<svg" in page
    token = csrf_token(client, "/login/totp-setup")
    resp = client.post("/login/totp-setup", data={"csrf_token": token, "code": "123"})
    assert "验证码" in resp.get_data(as_text=True) and client.get("/admin/users").status_code == 302
    resp = client.post("/login/totp-setup", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    assert resp.status_code == 302
    assert client.get("/admin/users").status_code == 200
    assert user(db, "admin").totp_enabled


def test_an_admin_session_without_a_second_factor_is_held_at_enrolment(client, auth, db):
    """A session from before the requirement (simulated: the factor removed under a live session)."""
    auth.login("admin")
    admin = user(db, "admin")
    admin.totp_enabled, admin.totp_secret = False, None
    db.flush()
    resp = client.get("/admin/users")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/security")
    assert client.get("/cases").status_code == 302
    assert client.get("/account/security").status_code == 200


def test_admin_cannot_switch_the_second_factor_off(client, auth, db):
    auth.login("admin")
    admin = user(db, "admin")
    resp = client.post("/account/totp/disable", data={"csrf_token": csrf_token(client, "/account/security"),
                                                      "password": DEMO_PASSWORD, "code": next_totp_code(admin)},
                       follow_redirects=True)
    assert "不能关闭" in resp.get_data(as_text=True)
    assert user(db, "admin").totp_enabled


def test_a_user_switches_the_second_factor_off_with_password_and_code(client, auth, db):
    auth.login("township_mediator")
    secret = enrol_from_account_page(client, db)
    token = csrf_token(client, "/account/security")
    client.post("/account/totp/enable", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    u = user(db, "township_mediator")
    client.post("/account/totp/disable", data={"csrf_token": token, "password": "wrong-password-x",
                                               "code": next_totp_code(u)})
    assert user(db, "township_mediator").totp_enabled
    client.post("/account/totp/disable", data={"csrf_token": token, "password": DEMO_PASSWORD,
                                               "code": next_totp_code(u)})
    assert not user(db, "township_mediator").totp_enabled and user(db, "township_mediator").totp_secret is None
    assert actions(db, "user.totp_disable") == 1


def test_cli_reset_totp(runner, db, client, auth):
    auth.login("admin")
    assert user(db, "admin").totp_enabled
    result = runner.invoke(args=["accounts", "reset-totp", "admin"])
    assert result.exit_code == 0, result.output
    assert not user(db, "admin").totp_enabled
    assert not logged_in(client)  # the reset ends the sessions


def test_totp_codes_accept_one_step_of_drift_only():
    secret = pyotp.random_base32()
    t = pyotp.TOTP(secret)
    now = int(totp.now_ts() // 30)
    assert totp.matching_step(secret, t.generate_otp(now - 1), None) == now - 1
    assert totp.matching_step(secret, t.generate_otp(now + 1), None) == now + 1
    assert totp.matching_step(secret, t.generate_otp(now - 3), None) is None
    assert totp.matching_step(secret, t.generate_otp(now), now) is None  # replay
    assert totp.matching_step(secret, "12345a", None) is None


# ---- CSRF on every new form ---------------------------------------------------------------

def test_the_new_forms_refuse_a_post_without_csrf_token(client, auth, db):
    u = user(db, "township_mediator")
    u.totp_secret, u.totp_enabled = pyotp.random_base32(), True
    db.flush()
    auth.login("township_mediator", second_factor=False)
    resp = client.post("/login/code", data={"code": next_totp_code(u)})
    assert resp.status_code == 400 and not logged_in(client)
    AuthActions(client).login("township_mediator")
    assert logged_in(client)
    resp = client.post("/account/totp/disable", data={"password": DEMO_PASSWORD, "code": next_totp_code(u)})
    assert resp.status_code == 400 and user(db, "township_mediator").totp_enabled
    u.totp_enabled, u.totp_secret = False, None
    db.flush()
    secret = enrol_from_account_page(client, db)
    resp = client.post("/account/totp/enable", data={"code": pyotp.TOTP(secret).now()})
    assert resp.status_code == 400 and not user(db, "township_mediator").totp_enabled


def test_the_enrolment_step_refuses_a_post_without_csrf_token(client, auth, db):
    auth.login("admin", second_factor=False)
    client.get("/login/totp-setup")
    resp = client.post("/login/totp-setup", data={"code": pyotp.TOTP(user(db, "admin").totp_secret).now()})
    assert resp.status_code == 400 and not user(db, "admin").totp_enabled


def test_lockout_rows_use_the_database_clock_consistently(db):
    """is_locked compares in SQL, so naive (SQLite) and aware timestamps agree."""
    db.add(LoginLockout(kind="username", key="someone", locked_at=utcnow(), until=utcnow() + timedelta(minutes=1)))
    db.flush()
    assert throttle.is_locked("someone", "x")
    assert not throttle.is_locked("someone-else", "x")
