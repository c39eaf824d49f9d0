"""Reading settings with their defaults, and seeding the §3 vocabularies."""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select

from app.cases.vocab import DEFAULT_SOURCES, DEFAULT_TYPES
from app.db import prepared, select_rows, session, transaction_memo
from app.settings.models import CaseSource, DisputeType, RiskFactor, Setting
from app.reports import cache as report_cache

# Deadlines of PRODUCT.md §4; "unit" is calendar or working days (admin setting per kind).
DEFAULTS: dict[str, Any] = {
    "deadline.mediation": {"days": 30, "unit": "calendar"},
    "deadline.escalation": {"days": 3, "unit": "calendar"},
    "deadline.sign_off_hours": 24,
    "deadline.department": {"days": 7, "unit": "calendar"},
    "deadline.follow_up": {"days": 30, "unit": "calendar"},
    "deadline.judicial_confirmation": {"days": 30, "unit": "calendar"},
    "deadline.warn_days": 3,  # 黄牌 this many days before the deadline
    "screening.period": "monthly",
    "cluster.window_days": 90,
    "cluster.threshold": 3,
    "warning.inactive_days": 14,  # 高风险 cases with no timeline activity for this long are flagged
    "county.prefix": None,  # case-number prefix; None = config CASE_NUMBER_PREFIX
}

DEFAULT_RISK_FACTORS = [
    ("涉及人数≥5（群体性）", "high"), ("过激言行或扬言报复（民转刑风险）", "high"),
    ("多次调解未果", "medium"), ("越级上访倾向", "high"),
    ("涉及特殊群体（老弱病残、精神障碍）", "medium"), ("涉及金额较大", "medium"),
    ("涉及征地拆迁或拖欠工资", "medium"),
]


def settings_version(keys) -> int:
    """One version number for a group of settings edited on one form: the sum of their rows'
    versions.  A row's version only grows and a new row adds 1, so any committed change to
    any of them raises the sum; the form carries it and a save over a higher one is a 409."""
    return sum(session.scalars(select(Setting.version).where(Setting.key.in_(list(keys)))))


def check_settings_version(keys, expected: Any, current: dict[str, Any], submitted: dict[str, Any]) -> None:
    """Refuse with ``StaleRecord`` (the conflict page, both versions shown) when the settings in
    ``keys`` changed since the form was loaded with version ``expected``; a version is required."""
    from app.errors import StaleRecord, ValidationFailed
    try:
        expected_n = int(str(expected).strip())
    except (TypeError, ValueError):
        raise ValidationFailed(errors={"version": "缺少版本号，请刷新页面后重新修改"}) from None
    now = settings_version(keys)
    if expected_n != now:
        raise StaleRecord(current_version=now, submitted_version=expected_n, current=current,
                          submitted=submitted, record="系统设置", record_url="/admin/settings")


def check_entry_version(entry, expected: Any, current: dict[str, Any], submitted: dict[str, Any]) -> None:
    """The same for one versioned settings row (a dispute type, source or risk factor); a form
    without a version (older clients) is not checked."""
    from app.errors import StaleRecord
    if expected in (None, ""):
        return
    try:
        expected_n = int(str(expected).strip())
    except ValueError:
        expected_n = -1
    if expected_n != entry.version:
        raise StaleRecord(current_version=entry.version, submitted_version=expected, current=current,
                          submitted=submitted, record="系统设置", record_url="/admin/settings")


def get_setting(key: str) -> Any:
    """The stored value of ``key``, or its default.  The first call in a transaction reads every
    setting row at once (a few dozen at most) and keeps them for the rest of it
    (``app.db.transaction_memo``; a flush keeps them: ``set_setting`` updates them, and a Core
    write or the transaction's end forgets them), so a page that needs several settings
    (deadlines, cluster window and threshold, sign-off hours) costs one query."""
    memo = transaction_memo("qy_settings", forget_at_flush=False)
    values = memo.get("values")
    if values is None:
        # read on nearly every page, changed almost never: kept per process while the global
        # write counter (which any committed change to a setting bumps) stays the same
        values = memo["values"] = report_cache.cached_global("settings", _all_settings)
    return values[key] if key in values else DEFAULTS.get(key)


def _all_settings() -> dict[str, Any]:
    return dict(select_rows(prepared("settings.all", lambda: select(Setting.key, Setting.value),
                                     server_prepare=True)))


def set_setting(key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        row = Setting(key=key, value=value)
        session.add(row)
    else:
        row.value = value
    memo = transaction_memo("qy_settings", forget_at_flush=False)
    if memo.get("values") is not None:
        memo["values"] = {**memo["values"], key: value}  # a new dict: the old one may be shared (cached_global)
    session.flush()


def seed_vocabularies() -> None:
    """Create the §3 types and sources and the §5 risk factors when missing (idempotent)."""
    have_types = {t.name: t for t in session.scalars(select(DisputeType))}
    for position, (name, parent) in enumerate(DEFAULT_TYPES):
        if name not in have_types:
            t = DisputeType(name=name, position=position,
                            parent=have_types.get(parent) if parent else None)
            session.add(t)
            have_types[name] = t
    have_sources = set(session.scalars(select(CaseSource.name)))
    for position, name in enumerate(DEFAULT_SOURCES):
        if name not in have_sources:
            session.add(CaseSource(name=name, position=position))
    have_factors = set(session.scalars(select(RiskFactor.name)))
    for position, (name, suggests) in enumerate(DEFAULT_RISK_FACTORS):
        if name not in have_factors:
            session.add(RiskFactor(name=name, suggests=suggests, position=position))
    session.flush()


def active_types() -> list[DisputeType]:
    return list(session.scalars(select(DisputeType).where(DisputeType.active).order_by(DisputeType.position)))


def active_sources() -> list[str]:
    return list(session.scalars(select(CaseSource.name).where(CaseSource.active).order_by(CaseSource.position)))


def resolve_type(text: Optional[str]) -> Optional[DisputeType]:
    """The type named ``text``, with or without the trailing 纠纷 (邻里 or 邻里纠纷)."""
    if not text:
        return None
    name = text.strip()
    found = session.scalar(select(DisputeType).where(DisputeType.name == name))
    if found is None and name.endswith("纠纷"):
        found = session.scalar(select(DisputeType).where(DisputeType.name == name[:-2]))
    return found
