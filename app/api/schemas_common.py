"""Shared API pieces: the error body and turning pydantic errors into Chinese per-field messages."""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, Field, ValidationError

FIELD_LABELS = {
    "source": "来源", "type": "纠纷类型", "village": "村（社区）代码", "grid": "网格代码", "summary": "简要情况",
    "claims": "主要诉求", "people_involved": "涉及人数", "amount": "涉及金额", "occurred_on": "纠纷发生日期",
    "parties": "当事人", "kind": "当事人类别", "name": "姓名", "role": "角色", "gender": "性别",
    "id_type": "证件类型", "id_number": "证件号码", "phone": "联系电话", "address": "住址", "agent": "代理人",
    "status": "状态", "risk": "风险等级", "township": "乡镇代码", "from": "开始日期", "to": "结束日期",
    "overdue": "仅超期", "q": "搜索词", "sort": "排序", "cursor": "翻页参数", "limit": "每页条数",
}


class ErrorOut(BaseModel):
    """An error: a title, a message and, for 422, one Chinese message per field."""

    error: str
    message: str
    errors: Optional[dict[str, str]] = Field(None, description="字段 → 中文说明，如 parties.0.id_number")


def _message(err: dict) -> str:
    loc = [p for p in err.get("loc", ()) if isinstance(p, str)]
    label = FIELD_LABELS.get(loc[-1], loc[-1]) if loc else "请求体"
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    if kind == "missing":
        return f"缺少{label}。"
    if kind in ("string_type",):
        return f"{label}应为文本。"
    if kind == "string_too_short":
        return f"{label}不能为空。"
    if kind == "string_too_long":
        return f"{label}最多{ctx.get('max_length')}个字。"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{label}应为整数。"
    if kind in ("decimal_parsing", "decimal_type", "float_parsing", "float_type", "finite_number"):
        return f"{label}应为数字。"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{label}不能小于{ctx.get('ge', ctx.get('gt'))}。"
    if kind in ("less_than_equal", "less_than"):
        return f"{label}不能大于{ctx.get('le', ctx.get('lt'))}。"
    if kind.startswith("date") or kind.startswith("datetime"):
        return f"{label}应为日期，格式 YYYY-MM-DD。"
    if kind == "literal_error":
        return f"{label}取值无效，可选：{ctx.get('expected', '')}。"
    if kind == "too_short":
        return f"{label}至少需要{ctx.get('min_length')}项。"
    if kind == "too_long":
        return f"{label}最多{ctx.get('max_length')}项。"
    if kind == "list_type":
        return f"{label}应为数组。"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{label}应为对象。"
    if kind == "bool_parsing":
        return f"{label}应为 true 或 false。"
    if kind == "extra_forbidden":
        return f"不认识的字段“{label}”。"
    return f"{label}格式有误。"


def chinese_errors(exc: ValidationError) -> dict[str, str]:
    """pydantic errors as ``{"parties.0.name": "缺少姓名。"}`` (first message per field)."""
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        key = ".".join(str(p) for p in err.get("loc", ())) or "_body"
        out.setdefault(key, _message(err))
    return out
