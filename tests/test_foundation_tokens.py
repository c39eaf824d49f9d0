"""API token revocation: the admin user page lists a user's tokens and revokes one (POST with
CSRF, audited); ``flask accounts revoke`` does the same from the command line; a revoked token
gets 401 from the API while the user's other tokens keep working."""
from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import ApiToken
from app.accounts.services import _token_digest, issue_token
from app.audit.models import AuditLog
from tests.helpers import csrf_token
from tests.intake_helpers import user


def _issue(username="township_mediator", label=None):
    plain = issue_token(user(username), label)
    return plain, _row(plain)


def _row(plain):
    from app.db import session
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(plain)))


def _api(client, plain):
    return client.get("/api/v1/cases", headers={"Authorization": f"Bearer {plain}"}).status_code


def test_admin_page_lists_and_revokes_a_token(client, auth, db):
    plain, row = _issue(label="对接平台")
    other, _ = _issue(label="备用")
    db.commit()
    assert _api(client, plain) == 200
    auth.login("admin")
    target = user("township_mediator")
    page = client.get(f"/admin/users/{target.id}").get_data(as_text=True)
    assert 'data-testid="token-list"' in page and "对接平台" in page and "备用" in page
    action = f"/admin/users/{target.id}/tokens/{row.id}/revoke"
    assert action in page and "确定吊销该令牌" in page  # the confirmation on the form
    assert client.post(action).status_code == 400  # no CSRF token: refused
    assert row.revoked_at is None
    resp = client.post(action, data={"csrf_token": csrf_token(client, f"/admin/users/{target.id}")})
    assert resp.status_code == 302
    db.refresh(row)
    assert row.revoked_at is not None
    assert db.scalar(select(AuditLog).where(AuditLog.action == "token.revoke",
                                            AuditLog.object_id == str(row.id))).username == "admin"
    assert "已吊销" in client.get(f"/admin/users/{target.id}").get_data(as_text=True)
    auth.logout()
    assert _api(client, plain) == 401
    assert _api(client, other) == 200  # only the one token


def test_admin_cannot_revoke_another_users_token_through_this_user(client, auth, db):
    _, row = _issue("village_mediator")
    auth.login("admin")
    target = user("township_mediator")
    client.post(f"/admin/users/{target.id}/tokens/{row.id}/revoke",
                data={"csrf_token": csrf_token(client, f"/admin/users/{target.id}")})
    db.refresh(row)
    assert row.revoked_at is None


def test_revoke_page_is_admin_only(client, auth, db):
    _, row = _issue()
    auth.login("county_supervisor")
    target = user("township_mediator")
    resp = client.post(f"/admin/users/{target.id}/tokens/{row.id}/revoke",
                       data={"csrf_token": csrf_token(client, "/")})
    assert resp.status_code == 403
    db.refresh(row)
    assert row.revoked_at is None


def test_cli_revokes_one_token(runner, client, db):
    plain, row = _issue(label="甲")
    other, _ = _issue(label="乙")
    db.commit()
    listing = runner.invoke(args=["accounts", "revoke", "township_mediator"])
    assert listing.exit_code == 0 and f"{row.id}\t甲" in listing.output and "有效" in listing.output
    result = runner.invoke(args=["accounts", "revoke", "township_mediator", "--token-id", str(row.id)])
    assert result.exit_code == 0, result.output
    assert "已吊销" in result.output
    db.refresh(row)
    assert row.revoked_at is not None
    assert db.scalar(select(AuditLog).where(AuditLog.action == "token.revoke", AuditLog.object_id == str(row.id)))
    assert _api(client, plain) == 401 and _api(client, other) == 200
    again = runner.invoke(args=["accounts", "revoke", "township_mediator", "--token-id", str(row.id)])
    assert again.exit_code != 0 and "没有编号为" in again.output


def test_cli_revokes_all_tokens(runner, client, db):
    first, _ = _issue()
    second, _ = _issue()
    db.commit()
    result = runner.invoke(args=["accounts", "revoke", "township_mediator", "--all"])
    assert result.exit_code == 0 and "2 个" in result.output, result.output
    assert _api(client, first) == 401 and _api(client, second) == 401


def test_cli_revoke_bad_inputs(runner, db):
    _, row = _issue("village_mediator")
    db.commit()  # releases the test's savepoint only: the refusal's rollback must keep the token
    for args, message in [(["nobody", "--all"], "不存在"),
                          (["township_mediator", "--token-id", str(row.id)], "没有编号为"),
                          (["township_mediator", "--token-id", "1", "--all"], "只能选一个")]:
        result = runner.invoke(args=["accounts", "revoke", *args])
        assert result.exit_code != 0 and message in result.output, result.output
    db.refresh(row)
    assert row.revoked_at is None
