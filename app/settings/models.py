"""Admin-editable settings: dispute types, sources, risk factors, deadlines, the holiday calendar."""
from __future__ import annotations

from datetime import date
from typing import Any, Optional

from sqlalchemy import JSON, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base


class Setting(Base):
    """A named setting with a JSON value (deadline lengths, sweep period, thresholds …)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    # Optimistic locking: two admins saving the settings page at once must not overwrite
    # each other silently (``app.settings.services.check_settings_version``).
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class DisputeType(Base):
    """A dispute type of the official 人民调解 statistics list; a sub-type has a parent and
    counts under it in reports."""

    __tablename__ = "dispute_type"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("dispute_type.id"))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # renamed by two admins at once

    __mapper_args__ = {"version_id_col": version}

    parent: Mapped[Optional["DisputeType"]] = relationship(remote_side="DisputeType.id")

    @property
    def category(self) -> str:
        """The name reports count this type under."""
        return self.parent.name if self.parent else self.name


class CaseSource(Base):
    """A case source (来源) of PRODUCT.md §3."""

    __tablename__ = "case_source"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # renamed by two admins at once

    __mapper_args__ = {"version_id_col": version}


class RiskFactor(Base):
    """A risk factor of the §5 checklist; ``suggests`` is the level it alone points to."""

    __tablename__ = "risk_factor"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    suggests: Mapped[str] = mapped_column(String(8), default="medium")
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # renamed by two admins at once

    __mapper_args__ = {"version_id_col": version}


class CalendarDay(Base):
    """An exception to the weekday calendar: a public holiday, or a weekend made a working day (调休)."""

    __tablename__ = "calendar_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_working_day: Mapped[bool]
    name: Mapped[Optional[str]] = mapped_column(String(40))
