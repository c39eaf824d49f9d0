"""The reception log (来访登记) of a centre: every visit, with head-count and handling."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.crypto import EncryptedString, hash_column, keep_hash
from app.db import Base, utcnow


class ReceptionEntry(Base):
    """One visit to a centre (county, township or village).  A group visit counts every
    person (``headcount``); 直接答复 entries are the §6 direct answers."""

    __tablename__ = "reception_entry"
    __table_args__ = (
        CheckConstraint("handling IN ('direct_answer','registered','transferred','guided')", name="handling"),
        CheckConstraint("headcount >= 1", name="headcount"),
        Index("ix_reception_county_on", "county_id", "received_on"),
        Index("ix_reception_township_on", "township_id", "received_on"),
        Index("ix_reception_village_on", "village_id", "received_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    county_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    township_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"))
    village_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_on: Mapped[date] = mapped_column(Date)
    visitor_names: Mapped[str] = mapped_column(String(200))
    headcount: Mapped[int] = mapped_column(default=1)
    phone: Mapped[Optional[str]] = mapped_column(EncryptedString(255))  # encrypted (app/crypto.py)
    phone_hash: Mapped[Optional[str]] = hash_column("phone", "phone")
    matter: Mapped[str] = mapped_column(Text)
    handling: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"))
    case_id: Mapped[Optional[int]] = mapped_column(ForeignKey("dispute_case.id"))
    notes: Mapped[Optional[str]] = mapped_column(Text)
    recorded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    import_key: Mapped[Optional[str]] = mapped_column(String(64), unique=True)  # ledger re-import


keep_hash(ReceptionEntry.phone, "phone_hash", "phone")
