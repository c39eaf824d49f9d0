"""``GET /api/v1/reports/monthly`` and ``GET /api/v1/reports/period`` (PRODUCT.md §10): the same
JSON as ``flask report … --json``, for org units within the token user's jurisdiction."""
from __future__ import annotations

from flask import g, jsonify, request

from app.api.routes import bp, token_required
from app.cases.queries import org_in_jurisdiction
from app.errors import PermissionDenied, ValidationFailed
from app.orgs.services import find_by_code
from app.reports.params import ReportParamError, parse_month, parse_period_dates
from app.reports.queries import Period, monthly_report, period_report


def _org_param():
    code = (request.args.get("org") or "").strip()
    org = find_by_code(code) if code else None
    if org is None or org.level not in ("county", "township", "village"):
        raise ValidationFailed(errors={"org": f"单位代码 \"{code}\" 不存在，或不是县、乡镇、村"})
    if not g.api_user.can("reports.view") or not org_in_jurisdiction(g.api_user, org):
        raise PermissionDenied("该单位不在您的管辖范围内，不能查看其报表。")
    return org


@bp.get("/reports/monthly")
@token_required
def report_monthly():
    org = _org_param()
    try:
        year, month = parse_month(request.args.get("month"))
    except ReportParamError as exc:
        raise ValidationFailed(errors={exc.field: str(exc)})
    return jsonify(monthly_report(org, year, month))


@bp.get("/reports/period")
@token_required
def report_period():
    org = _org_param()
    try:
        start, end = parse_period_dates(request.args.get("from"), request.args.get("to"))
    except ReportParamError as exc:
        raise ValidationFailed(errors={exc.field: str(exc)})
    return jsonify(period_report(org, Period(start, end)))
