"""``flask accounts create``, ``token``, ``revoke``, ``reset-totp`` and ``unlock``."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.accounts import services
from app.accounts.models import User
from app.db import session
from app.errors import ValidationFailed
from app.orgs.services import find_by_code

accounts_cli = AppGroup("accounts", help="用户账号管理")


@accounts_cli.command("create")
@click.argument("username")
@click.option("--role", required=True, help="角色代码，如 township_mediator")
@click.option("--org", "org_code", required=True, help="所属单位代码")
@click.option("--department", default=None, help="部门联络员所属部门名称（在 --org 指定的县或乡镇下）")
@click.option("--password", required=True)
@click.option("--name", "display_name", default=None, help="姓名（默认同用户名）")
@click.option("--phone", default=None)
def create(username, role, org_code, department, password, display_name, phone):
    """Create a user; bad role, unknown org or duplicate username exit non-zero."""
    org = find_by_code(org_code)
    if org is not None and department:
        from app.orgs.models import OrgUnit
        dept = session.scalar(select(OrgUnit).where(OrgUnit.parent_id == org.id, OrgUnit.level == "department",
                                                    OrgUnit.name == department))
        if dept is None:
            raise click.ClickException(f"单位 {org_code} 下没有名为 {department} 的部门")
        org = dept
    try:
        user = services.create_user(username, display_name or username, role, org, password, phone)
    except ValidationFailed as exc:
        session.rollback()
        raise click.ClickException("；".join(exc.errors.values()))
    session.commit()
    click.echo(f"已创建用户 {user.username}（{user.role_label}，{user.org.name}）")


@accounts_cli.command("token")
@click.argument("username")
@click.option("--label", default=None)
def token(username, label):
    """Issue an API bearer token for USERNAME and print it once."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"用户 {username} 不存在")
    if not user.active:
        raise click.ClickException(f"用户 {username} 已停用")
    plain = services.issue_token(user, label)
    session.commit()
    click.echo(plain)


@accounts_cli.command("revoke")
@click.argument("username")
@click.option("--token-id", type=int, default=None, help="要吊销的令牌编号")
@click.option("--all", "revoke_all", is_flag=True, help="吊销该用户的全部有效令牌")
def revoke(username, token_id, revoke_all):
    """Revoke one API token (--token-id N) or all (--all) of USERNAME; without either, list them."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"用户 {username} 不存在")
    if token_id is not None and revoke_all:
        raise click.ClickException("--token-id 与 --all 只能选一个")
    if token_id is not None:
        if not services.revoke_token(token_id, user):
            session.rollback()
            raise click.ClickException(f"用户 {username} 没有编号为 {token_id} 的有效令牌")
        session.commit()
        click.echo(f"已吊销用户 {username} 的令牌 {token_id}")
        return
    if revoke_all:
        count = services.revoke_all_tokens(user)
        session.commit()
        click.echo(f"已吊销用户 {username} 的全部有效令牌（{count} 个）")
        return
    rows = services.tokens_of(user)
    if not rows:
        click.echo(f"用户 {username} 没有令牌")
    from app.templating import local_datetime
    for row in rows:
        state = f"已吊销 {local_datetime(row.revoked_at)}" if row.revoked_at else "有效"
        used = f"最近使用 {local_datetime(row.last_used_at)}" if row.last_used_at else "从未使用"
        click.echo(f"{row.id}\t{row.label or '-'}\t创建 {local_datetime(row.created_at)}\t{used}\t{state}")
    if any(row.revoked_at is None for row in rows):
        click.echo("用 --token-id N 吊销其中一个，或 --all 全部吊销")


@accounts_cli.command("reset-totp")
@click.argument("username")
def reset_totp(username):
    """Remove USERNAME's second factor (lost phone) and end their sessions; audited."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"用户 {username} 不存在")
    services.reset_totp(user)
    session.commit()
    click.echo(f"已清除用户 {username} 的双因素认证，其下次登录时需重新绑定（管理员必须绑定）")


@accounts_cli.command("unlock")
@click.argument("username")
def unlock(username):
    """Lift a login lockout of USERNAME before it expires; audited."""
    from app.accounts import throttle
    removed = throttle.unlock_username(username)
    session.commit()
    click.echo(f"已解除用户名 {username} 的登录锁定（{removed} 条）")


def register(app) -> None:
    app.cli.add_command(accounts_cli)
