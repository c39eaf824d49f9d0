"""The admin's changes to settings: the dispute-type, source and risk-factor lists, and the
deadline settings of ``app.settings.services.DEFAULTS``.  Every change is audited."""
from __future__ import annotations

from typing import Any, Optional

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.audit.services import audit
from app.db import session
from app.i18n import N_
from app.errors import NotFound, ValidationFailed
from app.settings.models import CaseSource, DisputeType, RiskFactor
from app.settings.services import (check_entry_version, check_settings_version, get_setting, set_setting,
                                   settings_version)

# The editable lists: kind (URL word) → model.  Types, sources and risk factors share one shape.
VOCABULARIES: dict[str, type] = {"types": DisputeType, "sources": CaseSource, "risk_factors": RiskFactor}
VOCABULARY_TITLES = {"types": N_("纠纷类型"), "sources": N_("纠纷来源"), "risk_factors": N_("风险因素")}
NAME_LIMITS = {"types": 40, "sources": 40, "risk_factors": 60}
RISK_SUGGESTS = {"high": N_("高"), "medium": N_("中"), "low": N_("低")}

# Deadline settings shown on the settings page, in this order, with their Chinese labels.
DEADLINE_SETTINGS = [
    ("deadline.mediation", N_("调解期限")),
    ("deadline.escalation", N_("上报接收/退回期限")),
    ("deadline.department", N_("部门反馈期限")),
    ("deadline.follow_up", N_("协议后回访期限")),
    ("deadline.judicial_confirmation", N_("申请司法确认期限")),
]
NUMBER_SETTINGS = [
    ("deadline.sign_off_hours", N_("高风险签批时限（小时）"), 1, 720),
    ("deadline.warn_days", N_("黄牌提前天数"), 0, 60),
]
DAY_UNITS = {"calendar": N_("自然日"), "working": N_("工作日")}


def vocabulary_model(kind: str) -> type:
    try:
        return VOCABULARIES[kind]
    except KeyError:
        raise NotFound() from None


def vocabulary(kind: str) -> list:
    """Every entry of one list (active and inactive), in display order."""
    model = vocabulary_model(kind)
    return list(session.scalars(select(model).order_by(model.position, model.id)))


def _clean_name(kind: str, name: Optional[str], exclude_id: Optional[int] = None) -> str:
    model = vocabulary_model(kind)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(errors={"name": _("请填写名称")})
    if len(name) > NAME_LIMITS[kind]:
        raise ValidationFailed(errors={"name": _("名称不超过 %(n)s 个字", n=NAME_LIMITS[kind])})
    stmt = select(model.id).where(model.name == name)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if session.scalar(stmt) is not None:
        raise ValidationFailed(errors={"name": _("“%(name)s”已存在", name=name)})
    return name


def add_vocabulary_entry(kind: str, name: str, parent_id: Optional[int] = None,
                         suggests: Optional[str] = None):
    """Append an entry to a list (a dispute type may be a sub-type of another)."""
    model = vocabulary_model(kind)
    name = _clean_name(kind, name)
    entry = model(name=name, position=(session.scalar(select(func.max(model.position))) or 0) + 1)
    if kind == "types" and parent_id:
        # an id no row can have (ids are 32-bit on PostgreSQL; SQLite and psycopg overflow past
        # 64 bits) is refused here, not passed to the database
        parent = session.get(DisputeType, parent_id) if 0 < parent_id < 2**31 else None
        if parent is None or parent.parent_id is not None:
            raise ValidationFailed(errors={"parent": _("上级类型无效（只能有两级）")})
        entry.parent_id = parent.id
    if kind == "risk_factors":
        if suggests not in RISK_SUGGESTS:
            raise ValidationFailed(errors={"suggests": _("请选择提示的风险等级")})
        entry.suggests = suggests
    session.add(entry)
    session.flush()
    audit(f"settings.{kind}.add", kind, entry.id, {"name": name})
    return entry


def get_vocabulary_entry(kind: str, entry_id: int):
    entry = session.get(vocabulary_model(kind), entry_id)
    if entry is None:
        raise NotFound()
    return entry


def rename_vocabulary_entry(kind: str, entry_id: int, name: str, expected_version=None) -> None:
    """Rename an entry.  Cases keep the name they were registered with (stored as text)."""
    entry = get_vocabulary_entry(kind, entry_id)
    check_entry_version(entry, expected_version, current={N_("名称"): entry.name}, submitted={N_("名称"): name})
    name = _clean_name(kind, name, exclude_id=entry.id)
    if name != entry.name:
        audit(f"settings.{kind}.rename", kind, entry.id, {"from": entry.name, "to": name})
        entry.name = name
        session.flush()


def set_vocabulary_active(kind: str, entry_id: int, active: bool, expected_version=None) -> None:
    """Deactivate (no longer offered for new cases, still shown on old ones) or reactivate."""
    entry = get_vocabulary_entry(kind, entry_id)
    check_entry_version(entry, expected_version, current={N_("名称"): entry.name, N_("启用"): entry.active},
                        submitted={N_("名称"): entry.name, N_("启用"): active})
    if entry.active != active:
        entry.active = active
        session.flush()
        audit(f"settings.{kind}.{'activate' if active else 'deactivate'}", kind, entry.id, {"name": entry.name})


DEADLINE_KEYS = [k for k, _ in DEADLINE_SETTINGS] + [k for k, *_ in NUMBER_SETTINGS]


def deadlines_version() -> int:
    """The version the deadline form carries (``check_settings_version``)."""
    return settings_version(DEADLINE_KEYS)


def _posted_deadlines(form) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, _label in DEADLINE_SETTINGS:
        out[key] = {"days": form.get(f"{key}.days"), "unit": form.get(f"{key}.unit")}
    for key, *_rest in NUMBER_SETTINGS:
        out[key] = form.get(key)
    return out


def _deadline_labels(values: dict[str, Any]) -> dict[str, Any]:
    """Deadline values as the conflict page shows them: label → "30 自然日"."""
    labels = dict(DEADLINE_SETTINGS) | {k: label for k, label, *_ in NUMBER_SETTINGS}
    out = {}
    for key in DEADLINE_KEYS:
        v = values.get(key)
        if isinstance(v, dict):
            v = f"{v.get('days')} {_(DAY_UNITS.get(v.get('unit'), v.get('unit') or ''))}"
        out[labels[key]] = v
    return out


def deadline_values() -> dict[str, Any]:
    """The current value of every setting the settings page edits."""
    keys = [k for k, _ in DEADLINE_SETTINGS] + [k for k, *_ in NUMBER_SETTINGS]
    return {key: get_setting(key) for key in keys}


def update_deadlines(form: dict[str, str]) -> dict[str, Any]:
    """Validate and store the deadline settings from the page's form fields (``<key>.days``,
    ``<key>.unit``, ``<key>``); all or nothing.  Returns the changed settings."""
    check_settings_version(DEADLINE_KEYS, form.get("version"), current=_deadline_labels(deadline_values()),
                           submitted=_deadline_labels(_posted_deadlines(form)))
    errors: dict[str, str] = {}
    new: dict[str, Any] = {}
    for key, label in DEADLINE_SETTINGS:
        days = _int(form.get(f"{key}.days"))
        unit = form.get(f"{key}.unit")
        if days is None or not 1 <= days <= 365:
            errors[key] = _("%(label)s应为 1–365 之间的整数天数", label=_(label))
        elif unit not in DAY_UNITS:
            errors[key] = _("%(label)s的计算方式应为自然日或工作日", label=_(label))
        else:
            new[key] = {"days": days, "unit": unit}
    for key, label, low, high in NUMBER_SETTINGS:
        value = _int(form.get(key))
        if value is None or not low <= value <= high:
            errors[key] = _("%(label)s应为 %(low)s–%(high)s 之间的整数", label=_(label), low=low, high=high)
        else:
            new[key] = value
    if errors:
        raise ValidationFailed(errors=errors)
    changed = {}
    for key, value in new.items():
        old = get_setting(key)
        if old != value:
            set_setting(key, value)
            changed[key] = [old, value]
    if changed:
        audit("settings.deadlines", "setting", None, changed)
    return changed


def _int(value: Optional[str]) -> Optional[int]:
    try:
        return int((value or "").strip())
    except ValueError:
        return None

