"""Factories for the intake tests (plain functions)."""
from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import User
from app.cases.validators import id_check_char
from app.db import session
from app.orgs.models import OrgUnit

DEMO_TOWNSHIP = "429960002"
DEMO_VILLAGE = "429960002001"
OTHER_VILLAGE_SAME_TOWNSHIP = "429960002004"  # 赵坪村, 南湖镇
OTHER_TOWNSHIP_VILLAGE = "429960001003"  # 何庙村, another township


def valid_id(body17: str = "42022219800101123") -> str:
    """A 居民身份证 number with the right check character."""
    return body17 + id_check_char(body17)


def user(username: str) -> User:
    return session.scalar(select(User).where(User.username == username))


def org(code: str) -> OrgUnit:
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def intake_body(**overrides) -> dict:
    body = {"source": "群众来访", "type": "邻里", "village": DEMO_VILLAGE,
            "summary": "两户因排水沟堵塞发生争执", "claims": "疏通排水沟", "people_involved": 2,
            "amount": "0", "occurred_on": "2026-11-01",
            "parties": [{"kind": "person", "name": "张三", "role": "申请人", "id_number": valid_id(),
                         "phone": "13800001111", "address": "南湖镇"},
                        {"kind": "organisation", "name": "某某建筑公司", "role": "被申请人"}]}
    body.update(overrides)
    return body


def make_case(username: str = "county_supervisor", **overrides):
    """Register a case through the service as ``username`` (county supervisor sees all villages)."""
    from app.cases.intake import register_case
    return register_case(user(username), intake_body(**overrides))


def api_token(username: str) -> str:
    from app.accounts.services import issue_token
    return issue_token(user(username))


def login(auth, username: str):
    """Log in, then forget what the shared app context's ``g`` cached from earlier requests.

    The ``db`` fixture keeps one app context pushed for the whole test, so test-client
    requests share ``g``: Flask-WTF's cached ``g.csrf_token`` (made before login cleared the
    session) and Flask-Login's ``g._login_user`` would otherwise leak between requests."""
    from flask import g
    with auth._client.session_transaction() as http_session:  # start from a logged-out session
        http_session.clear()
    for key in ("csrf_token", "_login_user"):
        g.pop(key, None)
    resp = auth.login(username)
    for key in ("csrf_token", "_login_user"):
        g.pop(key, None)
    return resp
