"""Accounts: creation from the CLI and the admin page with their bad inputs; login, logout,
wrong password, inactive user, the safe ``next`` redirect, CSRF refusal, sessions ended."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.audit.models import AuditLog
from tests.conftest import DEMO_PASSWORD
from tests.helpers import csrf_token

GOOD_PASSWORD = "Long-enough-2026"


def user(db, username):
    return db.scalar(select(User).where(User.username == username))


# ---- flask accounts create -------------------------------------------------------------------

def test_cli_creates_a_user(runner, db):
    result = runner.invoke(args=["accounts", "create", "wang_er", "--role", "village_mediator",
                                 "--org", "429960002001", "--password", GOOD_PASSWORD, "--name", "王二"])
    assert result.exit_code == 0, result.output
    created = user(db, "wang_er")
    assert created.display_name == "王二" and created.role == "village_mediator"
    assert created.org.code == "429960002001"
    assert created.password_hash != GOOD_PASSWORD and GOOD_PASSWORD not in created.password_hash


def test_cli_creates_a_liaison_in_a_named_department(runner, db):
    result = runner.invoke(args=["accounts", "create", "liaison2", "--role", "dept_liaison", "--org", "429960002",
                                 "--department", "南湖镇派出所", "--password", GOOD_PASSWORD])
    assert result.exit_code == 0, result.output
    assert user(db, "liaison2").org.name == "南湖镇派出所"


@pytest.mark.parametrize("args,message", [
    (["newbie", "--role", "emperor", "--org", "429960"], "角色 emperor 无效"),
    (["newbie", "--role", "county_leader", "--org", "000000"], "所属单位不存在"),
    (["township_mediator", "--role", "township_mediator", "--org", "429960002"], "已存在"),
    (["newbie", "--role", "village_mediator", "--org", "429960002"], "应属于村级单位"),
    (["newbie", "--role", "dept_liaison", "--org", "429960002", "--department", "不存在的所"], "没有名为"),
])
def test_cli_bad_inputs_exit_non_zero_with_a_clear_message(runner, db, args, message):
    result = runner.invoke(args=["accounts", "create", *args, "--password", GOOD_PASSWORD])
    assert result.exit_code != 0
    assert message in result.output
    assert user(db, "newbie") is None


def test_cli_short_password_refused(runner, db):
    result = runner.invoke(args=["accounts", "create", "newbie", "--role", "county_leader", "--org", "429960",
                                 "--password", "short"])
    assert result.exit_code != 0 and "密码至少 12 位" in result.output
    assert user(db, "newbie") is None


def test_cli_token(runner, db):
    result = runner.invoke(args=["accounts", "token", "township_mediator"])
    assert result.exit_code == 0 and result.output.strip().startswith("qy_")
    assert runner.invoke(args=["accounts", "token", "nobody"]).exit_code != 0


# ---- the admin page ------------------------------------------------------------------------

def post_new_user(client, **fields):
    data = {"username": "zhao_liu", "display_name": "赵六", "role": "grid_worker", "org_code": "42996000200102",
            "phone": "13800001111", "password": GOOD_PASSWORD}
    data.update(fields)
    data["csrf_token"] = csrf_token(client, "/admin/users/new")
    return client.post("/admin/users/new", data=data)


def test_admin_creates_a_user(client, auth, db):
    auth.login("admin")
    resp = post_new_user(client)
    assert resp.status_code == 302
    created = user(db, "zhao_liu")
    assert created.role == "grid_worker" and created.org.code == "42996000200102" and created.phone == "13800001111"
    assert db.scalar(select(AuditLog).where(AuditLog.action == "user.create", AuditLog.object_id == str(created.id)))
    listing = client.get("/admin/users?q=赵六").get_data(as_text=True)
    assert "zhao_liu" in listing and "李调解" not in listing


@pytest.mark.parametrize("fields,message", [
    ({"role": "emperor"}, "角色 emperor 无效"),
    ({"org_code": "000000"}, "所属单位不存在"),
    ({"username": "township_mediator"}, "用户名 township_mediator 已存在"),
    ({"password": "short"}, "密码至少 12 位"),
    ({"role": "county_leader"}, "应属于县级单位"),
    ({"username": "有 空格"}, "用户名为 2–64 位"),
])
def test_admin_create_bad_inputs(client, auth, db, fields, message):
    auth.login("admin")
    count = len(db.scalars(select(User.id)).all())
    resp = post_new_user(client, **fields)
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)
    assert len(db.scalars(select(User.id)).all()) == count


def test_user_pages_are_admin_only(client, auth):
    auth.login("county_supervisor")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/users/new").status_code == 403
    assert client.get("/admin/settings").status_code == 403


def test_admin_edits_role_org_and_phone(client, auth, db):
    auth.login("admin")
    target = user(db, "village_mediator")
    resp = client.post(f"/admin/users/{target.id}", data={
        "csrf_token": csrf_token(client, f"/admin/users/{target.id}"), "display_name": "张调解员",
        "role": "grid_worker", "org_code": "42996000200101", "phone": "13900002222"})
    assert resp.status_code == 302
    db.refresh(target)
    assert (target.display_name, target.role, target.org.code, target.phone) == \
        ("张调解员", "grid_worker", "42996000200101", "13900002222")
    entry = db.scalar(select(AuditLog).where(AuditLog.action == "user.update", AuditLog.object_id == str(target.id)))
    assert entry.detail["role"] == ["village_mediator", "grid_worker"]


def test_deactivated_user_cannot_log_in_and_loses_their_session(app, db):
    admin, victim = app.test_client(), app.test_client()
    from tests.conftest import AuthActions
    AuthActions(victim).login("grid_worker")
    assert victim.get("/").status_code == 200
    AuthActions(admin).login("admin")
    target = user(db, "grid_worker")
    resp = admin.post(f"/admin/users/{target.id}/active",
                      data={"csrf_token": csrf_token(admin, "/admin/users"), "active": "0"})
    assert resp.status_code == 302
    assert victim.get("/").status_code == 302  # the open session ended
    resp = AuthActions(victim).login("grid_worker")
    assert resp.status_code == 200 and "用户名或密码错误，或账号已停用" in resp.get_data(as_text=True)
    admin.post(f"/admin/users/{target.id}/active", data={"csrf_token": csrf_token(admin, "/admin/users"), "active": "1"})
    assert AuthActions(victim).login("grid_worker").status_code == 302


def test_admin_resets_a_password_and_the_user_must_change_it(app, db):
    from tests.conftest import AuthActions
    admin, other = app.test_client(), app.test_client()
    AuthActions(admin).login("admin")
    target = user(db, "county_leader")
    resp = admin.post(f"/admin/users/{target.id}/password",
                      data={"csrf_token": csrf_token(admin, "/admin/users"), "new_password": "short"})
    assert "密码至少 12 位" in admin.get(resp.headers["Location"]).get_data(as_text=True)
    admin.post(f"/admin/users/{target.id}/password",
               data={"csrf_token": csrf_token(admin, "/admin/users"), "new_password": GOOD_PASSWORD})
    assert AuthActions(other).login("county_leader").status_code == 200  # old password refused
    assert AuthActions(other).login("county_leader", GOOD_PASSWORD).status_code == 302
    resp = other.get("/")
    assert resp.status_code == 302 and "/account/password" in resp.headers["Location"]


def test_end_sessions(app, db):
    from tests.conftest import AuthActions
    admin, victim = app.test_client(), app.test_client()
    AuthActions(victim).login("township_secretary")
    assert victim.get("/").status_code == 200
    AuthActions(admin).login("admin")
    target = user(db, "township_secretary")
    admin.post(f"/admin/users/{target.id}/sessions", data={"csrf_token": csrf_token(admin, "/admin/users")})
    assert victim.get("/").status_code == 302
    assert target.active


# ---- login and logout ------------------------------------------------------------------------

def test_login_logout(client, auth, db):
    resp = auth.login("township_mediator")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    resp = auth.logout()
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert client.get("/").status_code == 302
    actions = set(db.scalars(select(AuditLog.action).where(AuditLog.username == "township_mediator")))
    assert {"login", "logout"} <= actions


def test_wrong_password(client, auth, db):
    resp = auth.login("township_mediator", "wrong-password")
    assert resp.status_code == 200
    assert "用户名或密码错误" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert db.scalar(select(AuditLog).where(AuditLog.action == "login.failed"))


def test_unknown_user(client, auth):
    resp = auth.login("nobody", DEMO_PASSWORD)
    assert resp.status_code == 200 and "用户名或密码错误" in resp.get_data(as_text=True)


def test_inactive_user_cannot_log_in(client, auth, db):
    user(db, "county_leader").active = False
    db.flush()
    resp = auth.login("county_leader")
    assert resp.status_code == 200 and "账号已停用" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302


def login_with_next(client, target):
    token = csrf_token(client, "/login")
    return client.post("/login", query_string={"next": target},
                       data={"username": "township_mediator", "password": DEMO_PASSWORD, "csrf_token": token})


@pytest.mark.parametrize("target", ["//evil.com", "https://evil.com", "/\\evil.com", "http:/evil.com", "/\t/evil.com",
                                    "evil.com", "\\\\evil.com", "javascript:alert(1)"])
def test_unsafe_next_goes_home(client, target):
    resp = login_with_next(client, target)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"


def test_safe_next_is_followed(client):
    resp = login_with_next(client, "/account/password?x=1")
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/password?x=1"


def test_login_wall_keeps_next(client):
    resp = client.get("/account/password")
    assert resp.status_code == 302
    assert "/login?next=/account/password" in resp.headers["Location"].replace("%2F", "/")


def test_post_without_csrf_token_is_refused(client, auth):
    resp = client.post("/login", data={"username": "township_mediator", "password": DEMO_PASSWORD})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)
    auth.login("township_mediator")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still logged in


def test_change_password(client, auth, db):
    auth.login("township_mediator")
    token = csrf_token(client, "/account/password")
    resp = client.post("/account/password", data={"csrf_token": token, "current_password": "bad",
                                                   "new_password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert "当前密码不正确" in resp.get_data(as_text=True)
    resp = client.post("/account/password", data={"csrf_token": token, "current_password": DEMO_PASSWORD,
                                                   "new_password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert resp.status_code == 302
    assert client.get("/").status_code == 302  # logged out
    assert auth.login("township_mediator", GOOD_PASSWORD).status_code == 302
