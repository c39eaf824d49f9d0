"""Domain errors and their one mapping to HTTP responses (Chinese pages, JSON under /api/)."""
from __future__ import annotations

from typing import Any, Optional

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from app.db import session
from app.i18n import N_


class DomainError(Exception):
    """Base of the errors services raise; ``status`` is the HTTP status they map to."""

    status = 400
    default_message = N_("请求无法处理。")

    def __init__(self, message: Optional[str] = None, errors: Optional[dict[str, str]] = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.errors = errors or {}


class PermissionDenied(DomainError):
    status = 403
    default_message = N_("您没有权限进行此操作。")


class NotFound(DomainError):
    status = 404
    default_message = N_("找不到该记录，或不在您的管辖范围内。")


class InvalidTransition(DomainError):
    status = 409
    default_message = N_("当前状态下不能进行此操作。")


class StaleRecord(DomainError):
    """Saving over a newer version (optimistic locking).  The conflict page and the API's 409
    show what the user submitted next to what is stored now, so nothing typed is lost:
    ``current`` maps a Chinese label to the stored value, ``submitted`` the user's (``None``:
    the posted form), ``current_version`` is the version to re-apply onto."""

    status = 409
    default_message = N_("该记录已被他人修改，请刷新后再试。")

    def __init__(self, message: Optional[str] = None, errors: Optional[dict[str, str]] = None, *,
                 current_version: Optional[int] = None, submitted_version: Any = None,
                 current: Optional[dict[str, Any]] = None, submitted: Optional[dict[str, Any]] = None,
                 record: Optional[str] = None, record_url: Optional[str] = None):
        super().__init__(message, errors)
        self.current_version = current_version
        self.submitted_version = submitted_version
        self.current = current or {}
        self.submitted = submitted
        self.record = record
        self.record_url = record_url


def fingerprint(values: dict[str, Any]) -> str:
    """A version for a record without a version column (a user, an org unit): a short hash of
    the fields its form edits.  The form carries it; a save over different stored values is a
    conflict.  Used where a version column would also bump on unrelated writes (a login)."""
    import hashlib
    import json
    data = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def check_fingerprint(expected: Optional[str], current: dict[str, Any], submitted: dict[str, Any],
                      record: Optional[str] = None, record_url: Optional[str] = None) -> None:
    """Raise ``StaleRecord`` when the fields (``current``, label → stored value) changed since the
    form was loaded with fingerprint ``expected``; ``None`` (no version posted) is not checked."""
    if expected in (None, ""):
        return
    now = fingerprint(current)
    if expected.strip() != now:
        raise StaleRecord(current_version=now, submitted_version=expected.strip(), current=current,
                          submitted=submitted, record=record, record_url=record_url)


class ValidationFailed(DomainError):
    """Bad input: ``errors`` maps a field name to its Chinese message."""

    status = 422
    default_message = N_("提交的内容有误，请检查后重试。")


ERROR_TITLES = {400: N_("请求有误"), 401: N_("请先登录"), 403: N_("没有权限"), 404: N_("页面不存在"),
                405: N_("不支持的请求方式"), 409: N_("操作冲突"), 413: N_("文件过大"), 422: N_("输入有误"),
                429: N_("请求过于频繁"), 500: N_("系统出错")}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str, errors: Optional[dict[str, str]] = None):
    """Render an error as JSON (API) or as the Chinese error page."""
    if wants_json():
        body = {"error": ERROR_TITLES.get(status, "错误"), "message": message}
        if errors:
            body["errors"] = errors
        return jsonify(body), status
    from flask_babel import gettext
    # Pages speak the visitor's language; a message not in the catalogue stays as it is.
    return render_template("errors/error.html", status=status,
                           title=gettext(ERROR_TITLES.get(status, N_("错误"))), message=gettext(message)), status


# Chinese labels of the posted field names of the case, workflow and mediation forms, so the
# conflict page shows "理由" rather than "reason"; an unknown name is shown as it is.
FIELD_LABELS = {
    "reason": N_("理由"), "note": N_("备注"), "answer": N_("答复内容"), "agreement_form": N_("协议形式"),
    "satisfaction": N_("满意度"), "result": N_("结果"), "resolved": N_("是否化解"), "requested_by": N_("申请人"),
    "performance": N_("履行情况"), "level": N_("风险等级"), "leader": N_("包案领导"), "due_on": N_("期限"),
    "department": N_("部门"), "visited_on": N_("回访日期"), "user_ids": N_("调解员"), "to": N_("上交单位"),
    "terms": N_("协议内容"), "roster_ids": N_("调解力量"), "requirement": N_("督办要求"), "request": N_("事项"),
    "reopen": N_("重新办理"), "referral_paths": N_("告知途径"), "referral_path": N_("告知途径"),
    "record": N_("调解记录"), "plan": N_("化解方案"), "place": N_("地点"), "party_ids": N_("到场当事人"),
    "participants": N_("参加人员"), "notes": N_("情况"), "new_risks": N_("新的风险"),
    "new_mediator": N_("新调解员"), "members": N_("工作专班"), "lead_mediator": N_("主办调解员"),
    "invited": N_("邀请人员"), "held_on": N_("调解日期"), "handling_level": N_("办理层级"),
    "guidance": N_("引导途径"), "factors": N_("风险因素"), "departments": N_("部门"),
    "department_ids": N_("部门"), "court": N_("受理法院"), "co_mediators": N_("协办调解员"),
    "applied_on": N_("申请日期"), "content": N_("协议内容"), "facts": N_("纠纷主要事实"),
    "disputes": N_("争议事项"), "agreed_on": N_("协议日期"), "told_on": N_("告知日期"),
    "summary": N_("纠纷简要情况"), "claims": N_("主要诉求"), "source": N_("纠纷来源"), "type": N_("纠纷类型"),
    "occurred_on": N_("纠纷发生日期"), "people_involved": N_("涉及人数"), "amount": N_("涉及金额（元）"),
}

# Posted fields that are plumbing, not the user's input (never shown or re-posted as input).
_PLUMBING = frozenset({"csrf_token", "version", "next"})


def submitted_fields() -> list[tuple[str, list[str]]]:
    """The posted form fields (multi-valued kept) without the plumbing, in posting order."""
    return [(k, [v for v in vs]) for k, vs in request.form.lists() if k not in _PLUMBING]


def conflict_response(exc: StaleRecord):
    """409 for a stale save.  The API gets the current version and values as JSON; a page
    gets the conflict page with both versions side by side, the user's input kept (one click
    re-applies it onto the newest version, or copy it) and never an overwrite by itself."""
    from flask_babel import gettext
    message = gettext(exc.message)
    if wants_json():
        body: dict[str, Any] = {"error": gettext(ERROR_TITLES[409]), "message": message,
                                "current_version": exc.current_version}
        if exc.submitted_version not in (None, ""):
            body["your_version"] = exc.submitted_version
        if exc.current:
            body["current"] = {k: _plain(v) for k, v in exc.current.items()}
        if exc.submitted:
            body["submitted"] = {k: _plain(v) for k, v in exc.submitted.items()}
        resp = jsonify(body)
        if exc.current_version is not None:
            resp.headers["ETag"] = f'"{exc.current_version}"'
        return resp, 409
    fields = submitted_fields() if request.method == "POST" else []
    submitted = exc.submitted if exc.submitted is not None else \
        {FIELD_LABELS.get(k, k): "、".join(v) for k, v in fields}
    text = "\n".join(f"{k}：{_plain(v)}" for k, v in submitted.items() if _plain(v) not in ("", None))
    return render_template("errors/409_conflict.html", exc=exc, message=message, title=gettext(ERROR_TITLES[409]),
                           submitted=submitted, current=exc.current, fields=fields,
                           copy_text=text, retry_url=request.path if request.method == "POST" else None), 409


def _plain(value: Any) -> Any:
    """A value as JSON and the page show it (dates as ISO text, lists joined)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return "、".join(str(_plain(v)) for v in value)
    return str(value)


def register_error_handlers(app) -> None:
    from sqlalchemy.orm.exc import StaleDataError

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        session.rollback()
        if isinstance(exc, StaleRecord):
            return conflict_response(exc)
        return error_response(exc.status, exc.message, exc.errors)

    @app.errorhandler(StaleDataError)
    def _stale_data(exc: StaleDataError):
        """A versioned UPDATE matched no row: another request committed first (the race the
        form's version check cannot see).  Same 409 conflict handling as ``StaleRecord``."""
        session.rollback()
        return conflict_response(StaleRecord())

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        messages = {400: N_("请求有误或表单已过期（CSRF 校验失败），请返回刷新后重试。"),
                    403: N_("您没有权限访问此页面。"), 404: N_("您访问的页面不存在，或不在您的管辖范围内。"),
                    405: N_("不支持该请求方式。"), 413: N_("上传的文件超过大小限制。"),
                    429: N_("操作过于频繁，请稍后再试。")}
        return error_response(exc.code or 500, messages.get(exc.code, exc.description or ""))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # pragma: no cover - exercised by the 500 page test
        session.rollback()
        app.logger.exception("unhandled error")
        return error_response(500, N_("系统出错，已记录。请稍后重试或联系管理员。"))
