"""Case routes of the JSON API (PRODUCT.md §10): intake, the scoped list with a keyset cursor,
and one case with masked parties and its timeline.  Request bodies and query strings are
validated by pydantic models, which also generate the OpenAPI schemas; the domain rules
(ID checksum, phones, jurisdiction) are the registration service's, as on the web page."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Optional

from flask import g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.openapi import (build_document, json_body, json_response, query_parameters,
                             register_operation, schema_ref)
from app.api.routes import bp, token_required
from app.api.schemas_common import ErrorOut, chinese_errors
from app.cases import vocab
from app.cases.intake import possible_duplicates, prepare_intake, register_case
from app.cases.services import case_field_values, update_case_details
from app.cases.queries import PAGE_SIZE, SORTS, CaseFilters, case_detail, page_of_cases
from app.db import session
from app.errors import ValidationFailed
from app.templating import mask_id_number, mask_phone

# ---------------------------------------------------------------------------------------------
# Models


class PartyIn(BaseModel):
    """A party of the intake body; Chinese values as in §3 (codes are accepted too)."""

    model_config = ConfigDict(str_strip_whitespace=True)
    kind: Literal["person", "organisation", "个人", "单位"] = "person"
    name: str = Field(min_length=1, max_length=100)
    role: Literal["申请人", "被申请人", "第三人", "applicant", "respondent", "third_party"]
    gender: Optional[Literal["男", "女", "male", "female"]] = None
    id_type: Optional[Literal["居民身份证", "其他证件", "resident_id", "other"]] = Field(
        None, description="默认：个人为居民身份证（校验 GB 11643 校验位；15位旧号码不接受），单位为其他证件")
    id_number: Optional[str] = Field(None, max_length=32)
    phone: Optional[str] = Field(None, max_length=32, description="手机 11 位或固话 区号-号码")
    address: Optional[str] = Field(None, max_length=200)
    agent: Optional[str] = Field(None, max_length=100)


class CaseIn(BaseModel):
    """The intake body of §10: ``source``, ``type``, ``village``, ``summary`` and at least one
    party with ``name`` and ``role`` are required."""

    model_config = ConfigDict(str_strip_whitespace=True)
    source: str = Field(min_length=1, max_length=40, description="§3 来源，如 网格上报")
    type: str = Field(min_length=1, max_length=40, description="§3 纠纷类型，如 邻里（可带“纠纷”）")
    village: str = Field(min_length=1, max_length=32, description="村（社区）的组织代码")
    grid: Optional[str] = Field(None, max_length=32, description="网格的组织代码")
    summary: str = Field(min_length=1, max_length=4000)
    claims: Optional[str] = Field(None, max_length=2000)
    people_involved: Optional[int] = Field(None, ge=1)
    amount: Optional[Decimal] = Field(None, ge=0, description="元")
    occurred_on: Optional[date] = None
    parties: list[PartyIn] = Field(min_length=1, max_length=50)


class CaseCreatedOut(BaseModel):
    number: str
    status: str
    possible_duplicates: list[str] = Field(default_factory=list,
                                           description="可能重复的已有案件编号（同证件号/电话，或同村同类型90天内）")


class OrgRef(BaseModel):
    code: str
    name: str


class PartyOut(BaseModel):
    kind: str
    name: str
    role: str
    gender: Optional[str] = None
    id_type: Optional[str] = None
    id_number: Optional[str] = Field(None, description="脱敏，如 420222********1234")
    phone: Optional[str] = Field(None, description="脱敏，如 138****5678")
    address: Optional[str] = None
    agent: Optional[str] = None


class CaseOut(BaseModel):
    number: str
    status: str
    status_label: str
    source: str
    type: str
    type_category: str
    township: OrgRef
    village: OrgRef
    grid: Optional[OrgRef] = None
    handling_level: str
    risk_level: Optional[str] = None
    summary: str
    people_involved: Optional[int] = None
    amount: Optional[Decimal] = None
    occurred_on: Optional[date] = None
    registered_on: date
    deadline_on: Optional[date] = None
    closed_on: Optional[date] = None
    outcome: Optional[str] = None
    version: int = Field(description="记录版本：修改或办理时带上（version 或 If-Match），过期则 409")
    parties: list[PartyOut]


class TimelineOut(BaseModel):
    at: datetime
    action: str
    from_status: Optional[str] = None
    to_status: Optional[str] = None
    actor: Optional[str] = None
    note: Optional[str] = None


class CaseDetailOut(CaseOut):
    claims: Optional[str] = None
    outcome_note: Optional[str] = None
    timeline: list[TimelineOut]


class CaseListOut(BaseModel):
    items: list[CaseOut]
    next_cursor: Optional[str] = Field(None, description="下一页的 cursor；最后一页为 null")


class CaseListQuery(BaseModel):
    """Filters of ``GET /cases`` (the ledger list's filters)."""

    status: Optional[str] = Field(None, description="状态代码（pending_triage…），或 open = 未办结")
    type: Optional[str] = Field(None, description="纠纷类型（含其子类型）")
    source: Optional[str] = None
    risk: Optional[Literal["high", "medium", "low", "none"]] = None
    township: Optional[str] = Field(None, description="乡镇组织代码")
    village: Optional[str] = Field(None, description="村（社区）组织代码")
    from_: Optional[date] = Field(None, alias="from", description="登记日期起（含）")
    to: Optional[date] = Field(None, description="登记日期止（含）")
    overdue: bool = Field(False, description="仅未办结且已过办理期限")
    q: Optional[str] = Field(None, max_length=100, description="搜索编号、当事人姓名、简要情况（中文子串）")
    sort: Literal[tuple(SORTS)] = "-registered"  # type: ignore[valid-type]
    cursor: Optional[str] = Field(None, description="上一页返回的 next_cursor")
    limit: int = Field(PAGE_SIZE, ge=1, le=200)


# ---------------------------------------------------------------------------------------------
# Serialisation


def _case_out(case, detail: bool = False) -> dict:
    # ID numbers and phones are masked for every role: the API has no unmask, the logged
    # 显示完整信息 of the case page is the one way to see them (PRODUCT.md §9).
    data = {
        "number": case.number, "status": case.status, "status_label": vocab.label(vocab.STATUSES, case.status),
        "source": case.source, "type": case.dispute_type, "type_category": case.type_category,
        "township": {"code": case.township.code, "name": case.township.name},
        "village": {"code": case.village.code, "name": case.village.name},
        "grid": {"code": case.grid.code, "name": case.grid.name} if case.grid_id and case.grid else None,
        "handling_level": case.handling_level, "risk_level": case.risk_level, "summary": case.summary,
        "people_involved": case.people_involved, "amount": case.amount, "occurred_on": case.occurred_on,
        "registered_on": case.registered_on, "deadline_on": case.deadline_on, "closed_on": case.closed_on,
        "outcome": case.outcome, "version": case.version,
        "parties": [{"kind": p.kind, "name": p.name, "role": vocab.label(vocab.PARTY_ROLES, p.role),
                     "gender": vocab.label(vocab.GENDERS, p.gender) or None,
                     "id_type": vocab.label(vocab.ID_TYPES, p.id_type) or None,
                     "id_number": mask_id_number(p.id_number) or None, "phone": mask_phone(p.phone) or None,
                     "address": p.address, "agent": p.agent} for p in case.parties],
    }
    if detail:
        data.update(claims=case.claims, outcome_note=case.outcome_note,
                    timeline=[{"at": t.at, "action": t.action, "from_status": t.from_status,
                               "to_status": t.to_status, "actor": t.actor_name, "note": t.note}
                              for t in case.timeline])
        return CaseDetailOut.model_validate(data).model_dump(mode="json")
    return CaseOut.model_validate(data).model_dump(mode="json")


def _validate(model: type[BaseModel], payload):
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(errors=chinese_errors(exc)) from None


# ---------------------------------------------------------------------------------------------
# Routes


@bp.post("/cases")
@token_required
def create_case():
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ValidationFailed(errors={"_body": "请求体应为 JSON 对象（Content-Type: application/json）。"})
    body = _validate(CaseIn, payload)
    user = g.api_user
    intake = prepare_intake(user, body.model_dump(mode="json"))
    duplicates = [c.number for c in possible_duplicates(user, intake)]
    case = register_case(user, intake)
    session.commit()
    out = CaseCreatedOut(number=case.number, status=case.status, possible_duplicates=duplicates)
    resp = jsonify(out.model_dump(mode="json"))
    resp.status_code = 201
    resp.headers["Location"] = f"/api/v1/cases/{case.number}"
    return resp


@bp.get("/cases")
@token_required
def list_cases():
    query = _validate(CaseListQuery, request.args.to_dict())
    filters = CaseFilters(status=query.status, type=query.type, source=query.source, risk=query.risk,
                          township=query.township, village=query.village, date_from=query.from_,
                          date_to=query.to, overdue=query.overdue, q=query.q, sort=query.sort)
    page = page_of_cases(g.api_user, filters, query.cursor, limit=query.limit)
    return jsonify({"items": [_case_out(c) for c in page.items], "next_cursor": page.next_cursor})


class CasePatchIn(BaseModel):
    """修改案件信息: the fields to change (the others keep their stored value) and the version
    the client read (``version`` here or the ``If-Match`` header, as ``GET`` returns it in
    ``version`` and ``ETag``).  A stale version is refused with 409 and the current version."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    version: Optional[int] = Field(None, description="读取时的版本；也可用 If-Match 头")
    source: Optional[str] = Field(None, max_length=40)
    type: Optional[str] = Field(None, max_length=40)
    occurred_on: Optional[date] = None
    people_involved: Optional[int] = Field(None, ge=1)
    amount: Optional[Decimal] = Field(None, ge=0)
    summary: Optional[str] = Field(None, max_length=4000)
    claims: Optional[str] = Field(None, max_length=2000)


def request_version(body_version=None):
    """The version a write is based on: the body's ``version``, else the ``If-Match`` header."""
    if body_version not in (None, ""):
        return body_version
    header = request.headers.get("If-Match", "").strip()
    return header or None


def _with_etag(resp, case):
    resp.headers["ETag"] = f'"{case.version}"'
    return resp


@bp.get("/cases/<number>")
@token_required
def get_case(number: str):
    case = case_detail(g.api_user, number)
    return _with_etag(jsonify(_case_out(case, detail=True)), case)


@bp.patch("/cases/<number>")
@token_required
def patch_case(number: str):
    """Change a case's own fields; requires the version read (409 when someone saved since)."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ValidationFailed(errors={"_body": "请求体应为 JSON 对象（Content-Type: application/json）。"})
    body = _validate(CasePatchIn, payload)
    user = g.api_user
    case = case_detail(user, number)
    data = case_field_values(case)
    data.update({k: ("" if v is None else str(v)) for k, v in body.model_dump(exclude_unset=True, mode="json").items()
                 if k != "version"})
    update_case_details(user, case, data, request_version(body.version))
    session.commit()
    return _with_etag(jsonify(_case_out(case, detail=True)), case)


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(build_document())


_ERRORS = {"401": json_response(ErrorOut, "缺少或无效的访问令牌"),
           "404": json_response(ErrorOut, "不存在或不在管辖范围内"),
           "422": json_response(ErrorOut, "输入有误，errors 中逐字段说明")}
register_operation("/cases", "post", {
    "summary": "登记纠纷（其他渠道接入）", "operationId": "createCase", "tags": ["cases"],
    "requestBody": json_body(CaseIn),
    "responses": {"201": json_response(CaseCreatedOut, "已登记，状态 pending_triage"),
                  "403": json_response(ErrorOut, "角色不能登记"), **_ERRORS}})
register_operation("/cases", "get", {
    "summary": "纠纷列表（管辖范围内，键集分页）", "operationId": "listCases", "tags": ["cases"],
    "parameters": query_parameters(CaseListQuery),
    "responses": {"200": json_response(CaseListOut, "一页纠纷"), **_ERRORS}})
register_operation("/cases/{number}", "get", {
    "summary": "纠纷详情（当事人脱敏，含办理过程）", "operationId": "getCase", "tags": ["cases"],
    "parameters": [{"name": "number", "in": "path", "required": True, "schema": {"type": "string"},
                    "example": "QH-2026-000123"}],
    "responses": {"200": json_response(CaseDetailOut, "纠纷详情"), **_ERRORS}})
register_operation("/cases/{number}", "patch", {
    "summary": "修改案件信息（须带读取时的版本）", "operationId": "patchCase", "tags": ["cases"],
    "parameters": [{"name": "number", "in": "path", "required": True, "schema": {"type": "string"}},
                   {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                    "description": "读取时的 ETag（版本号），与请求体中的 version 二选一"}],
    "requestBody": json_body(CasePatchIn),
    "responses": {"200": json_response(CaseDetailOut, "已保存：新的内容与版本"),
                  "403": json_response(ErrorOut, "不能修改（角色或已归档）"),
                  "409": json_response(ErrorOut, "记录已被他人修改：current_version 为当前版本"), **_ERRORS}})
register_operation("/openapi.json", "get", {
    "summary": "本文档", "operationId": "openapi", "tags": ["meta"], "security": [],
    "responses": {"200": {"description": "OpenAPI 3.1 文档"}}})
schema_ref(CaseListOut, "serialization")


# ---------------------------------------------------------------------------------------------
# Search in a body: personal data (names, phones, ID numbers) kept out of URLs (ASVS 8.2.1/8.3.1)


class CaseSearchIn(CaseListQuery):
    """The filters of ``GET /cases`` in a JSON body (``from`` or ``from_`` for the start date).
    Prefer this to ``GET /cases?q=`` whenever ``q`` holds a name, phone or ID number: query
    strings end up in proxy and server access logs."""

    model_config = ConfigDict(str_strip_whitespace=True, populate_by_name=True, extra="forbid")


@bp.post("/cases/search")
@token_required
def search_cases():
    payload = request.get_json(silent=True)
    if payload is None and not request.get_data():
        payload = {}
    if not isinstance(payload, dict):
        raise ValidationFailed(errors={"_body": "请求体应为 JSON 对象（Content-Type: application/json）。"})
    query = _validate(CaseSearchIn, payload)
    filters = CaseFilters(status=query.status, type=query.type, source=query.source, risk=query.risk,
                          township=query.township, village=query.village, date_from=query.from_,
                          date_to=query.to, overdue=query.overdue, q=query.q or None, sort=query.sort)
    page = page_of_cases(g.api_user, filters, query.cursor, limit=query.limit)
    return jsonify({"items": [_case_out(c) for c in page.items], "next_cursor": page.next_cursor})


register_operation("/cases/search", "post", {
    "summary": "纠纷检索（条件放在请求体中；按姓名、电话、证件号检索时请用本接口而非 GET /cases?q=）",
    "description": "与 GET /cases 的筛选条件相同，但放在 JSON 请求体中，个人信息不会出现在 URL、"
                   "代理和服务器的访问日志里。下一页：把返回的 next_cursor 放进请求体的 cursor 再次提交。",
    "operationId": "searchCases", "tags": ["cases"],
    "requestBody": json_body(CaseSearchIn),
    "responses": {"200": json_response(CaseListOut, "一页纠纷"), **_ERRORS}})
# The GET list stays (§10 contract); its description points clients with personal data here.
from app.api.openapi import PATHS as _PATHS  # noqa: E402
_PATHS["/cases"]["get"].setdefault(
    "description", "q 若含姓名、电话或证件号，请改用 POST /cases/search（条件在请求体中，不进访问日志）。")
