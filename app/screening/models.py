"""Screening sweeps (排查): one record per village per period, with cases found or a 零报告."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Date, ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Sweep(Base):
    """A village's sweep for one period; ``nil_report`` is the explicit 零报告 when nothing was found."""

    __tablename__ = "sweep"
    __table_args__ = (UniqueConstraint("village_id", "period_start", name="village_period"),
                      Index("ix_sweep_township_period", "township_id", "period_start"))

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    township_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    county_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    swept_on: Mapped[date] = mapped_column(Date)
    nil_report: Mapped[bool] = mapped_column(default=False)
    households_visited: Mapped[Optional[int]]
    participants: Mapped[Optional[str]] = mapped_column(Text)
    notes: Mapped[Optional[str]] = mapped_column(Text)
    filed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SweepFinding(Base):
    """Links a case registered from a sweep (source 排查发现) to that sweep."""

    __tablename__ = "sweep_finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweep.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), unique=True)
