"""Parsing report parameters (CLI and API share these and their Chinese messages)."""
from __future__ import annotations

import re
from datetime import date


class ReportParamError(ValueError):
    """A bad report parameter; the message is Chinese and names the parameter."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def parse_month(value: str | None) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{4})-(\d{2})", (value or "").strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ReportParamError(f"月份 \"{value or ''}\" 格式应为 YYYY-MM", "month")
    return int(m.group(1)), int(m.group(2))


def parse_date(value: str | None, field: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        label = {"from": "开始日期", "to": "结束日期"}.get(field, field)
        raise ReportParamError(f"{label} \"{value or ''}\" 格式应为 YYYY-MM-DD", field)


def parse_period_dates(date_from: str | None, date_to: str | None) -> tuple[date, date]:
    start = parse_date(date_from, "from")
    end = parse_date(date_to, "to")
    if end < start:
        raise ReportParamError("结束日期不能早于开始日期", "to")
    return start, end
