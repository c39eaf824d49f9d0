"""Domain errors and their one mapping to HTTP responses (Chinese pages, JSON under /api/)."""
from __future__ import annotations

from typing import Optional

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
    status = 409
    default_message = N_("该记录已被他人修改，请刷新后再试。")


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


def register_error_handlers(app) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        session.rollback()
        return error_response(exc.status, exc.message, exc.errors)

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
