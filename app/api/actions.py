"""``POST /api/v1/cases/<number>/actions``: a workflow action of PRODUCT.md §4 by its English
name, with the same service and rules as the pages.  404 outside the jurisdiction, 422 for
bad input (per-field messages), 403 for a role that may not, 409 for a refused transition
or a stale ``version``; 200 with the case's number, status and the new timeline entry."""
from __future__ import annotations

from flask import g, jsonify, request

from app.api.cases import request_version
from app.api.routes import bp, token_required
from app.cases.queries import get_visible_case
from app.mediation.services import take_action
from app.db import session
from app.errors import ValidationFailed


def timeline_entry_json(entry) -> dict:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor_name, "action": entry.action,
            "from": entry.from_status, "to": entry.to_status, "note": entry.note, "data": entry.data}


@bp.post("/cases/<number>/actions")
@token_required
def case_action(number):
    user = g.api_user
    case = get_visible_case(user, number)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not str(body.get("action") or "").strip():
        raise ValidationFailed(errors={"action": "请求体须为 JSON 对象，并包含 action（操作名称）"})
    data = dict(body)
    action = str(data.pop("action")).strip()
    # Sessions, close-outs, follow-ups, 司法确认 and 归档 go through app.mediation.services (their
    # records and every required field, e.g. a written agreement's obligations); the rest as before.
    entry = take_action(user, case, action, data, expected_version=request_version(data.pop("version", None)))
    session.commit()
    resp = jsonify({"number": case.number, "status": case.status, "version": case.version,
                    "timeline_entry": timeline_entry_json(entry)})
    resp.headers["ETag"] = f'"{case.version}"'
    return resp


# --- OpenAPI (documentation only: the service validates, with per-field Chinese messages) -------
try:
    from typing import Any, Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field

    from app.api.openapi import json_body, json_response, register_operation
    from app.api.schemas_common import ErrorOut
    from app.cases.workflow import ACTIONS

    ActionName = Literal[tuple(n for n in ACTIONS if n != "register")]  # type: ignore[misc]

    class ActionIn(BaseModel):
        """A workflow action by its English name (PRODUCT.md §4) with the fields it needs, e.g.
        ``{"action": "decline", "reason": "...", "guidance": "..."}``.  The mediation actions
        (``log_session``, ``agree``, ``terminate``, ``withdraw``, ``follow_up``,
        ``judicial_confirmation``, ``archive``) take the fields of their full forms under
        ``/mediation/cases/<number>/…`` and are checked the same way (e.g. a written ``agree`` needs
        ``agreed_on``, ``facts``, ``disputes``, ``content`` and ``ob-0-obligor|content|manner|deadline``);
        ``version`` (optional, or the
        ``If-Match`` header) refuses the action with 409 and the current version when the case
        changed meanwhile."""

        model_config = ConfigDict(extra="allow")
        action: ActionName  # type: ignore[valid-type]
        version: Optional[int] = None

    class TimelineEntryOut(BaseModel):
        id: int
        at: str
        actor: Optional[str]
        action: str
        from_: Optional[str] = Field(None, alias="from")
        to: Optional[str]
        note: Optional[str]
        data: Optional[dict[str, Any]]

    class ActionOut(BaseModel):
        number: str
        status: str
        version: int
        timeline_entry: TimelineEntryOut

    register_operation("/cases/{number}/actions", "post", {
        "summary": "办理操作（受理、上报、转办、定级、签批、督办……）", "operationId": "caseAction",
        "tags": ["workflow"],
        "parameters": [{"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": json_body(ActionIn),
        "responses": {"200": json_response(ActionOut, "已办理：案件状态与新的办理记录"),
                      "401": json_response(ErrorOut, "缺少或无效的访问令牌"),
                      "403": json_response(ErrorOut, "该角色不能在此层级进行此操作"),
                      "404": json_response(ErrorOut, "不存在或不在管辖范围内"),
                      "409": json_response(ErrorOut, "当前状态不允许此操作，或记录已被他人修改"),
                      "422": json_response(ErrorOut, "输入有误，errors 中逐字段说明")}})
except ImportError:  # pragma: no cover - the OpenAPI registry is not part of this build
    pass
