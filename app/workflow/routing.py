"""Routing suggestions (分流建议): dispute type → the kind of department usually responsible.

Stored in the Setting ``routing.type_department`` ({type name: department kind}); the
admin edits it on ``workflow.routing``.  Triage shows the suggestion; a person decides.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select

from app.db import session
from app.orgs.models import OrgUnit
from app.settings.services import check_settings_version, get_setting, set_setting, settings_version

SETTING_KEY = "routing.type_department"
DEFAULT_ROUTING = {"劳动争议": "人社", "拖欠农民工工资": "人社", "其他劳动争议": "人社",
                   "道路交通事故": "派出所", "山林土地": "自然资源所", "房屋宅基地": "自然资源所",
                   "征地拆迁": "住建", "物业": "住建", "婚姻家庭": "司法所", "邻里": "司法所"}


def routing_table() -> dict[str, str]:
    value = get_setting(SETTING_KEY)
    return dict(DEFAULT_ROUTING if value is None else value)


def routing_version() -> int:
    """The version the routing form carries (a save over a newer one is the 409 conflict page)."""
    return settings_version([SETTING_KEY])


def save_routing(table: dict[str, str], expected_version=None) -> None:
    """Store the admin's mapping (empty kinds dropped), unless another admin saved since the
    form was loaded (``expected_version``; ``None`` = not checked, for scripts)."""
    if expected_version is not None:
        current = routing_table()
        check_settings_version([SETTING_KEY], expected_version,
                               current={k: current.get(k, "") for k in table},
                               submitted=dict(table))
    set_setting(SETTING_KEY, {k: v for k, v in table.items() if v})


def suggested_kind(dispute_type: str, category: Optional[str] = None) -> Optional[str]:
    table = routing_table()
    return table.get(dispute_type) or (table.get(category) if category else None)


def department_kinds() -> list[str]:
    """The department kinds present in the org tree (for the admin's picker)."""
    return sorted(k for k in session.scalars(select(OrgUnit.department_kind).where(
        OrgUnit.level == "department", OrgUnit.department_kind.is_not(None)).distinct()) if k)
