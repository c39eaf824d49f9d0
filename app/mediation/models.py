"""Joint mediation records (联调清仓, issue 5): the mediation roster (调解力量库), sessions
(调解记录) with their participants, agreements (调解协议) with their obligations, the record of
a close without agreement or a withdrawal, judicial confirmation (司法确认) and mediator
changes (选择/更换/回避, 人民调解法 Arts. 19, 23)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.crypto import EncryptedString
from app.db import Base, utcnow
from app.orgs.models import OrgUnit

ROSTER_KINDS = {"mediator": "调解员", "wulao": "五老", "xiangxian": "乡贤", "neighbour": "好邻居",
                "legal_adviser": "一村一法律顾问", "studio": "调解工作室", "other": "其他"}
PARTICIPANT_KINDS = {"user": "调解员", "department": "部门", "roster": "特邀人员", "party": "当事人",
                     "other": "其他人员"}
CHANGE_KINDS = {"party_choice": "当事人选择", "replacement": "当事人申请更换", "recusal": "回避"}
CONFIRMATION_RESULTS = {"pending": "待裁定", "confirmed": "确认有效", "rejected": "驳回申请/确认无效"}


class RosterMember(Base):
    """One person (or named studio) in an org unit's 调解力量库; ``user_id`` when they have a login."""

    __tablename__ = "roster_member"
    __table_args__ = (CheckConstraint("kind IN ('mediator','wulao','xiangxian','neighbour','legal_adviser',"
                                      "'studio','other')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)  # village or township
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    specialty: Mapped[Optional[str]] = mapped_column(String(200))
    phone: Mapped[Optional[str]] = mapped_column(EncryptedString(255))  # encrypted (app/crypto.py)
    notes: Mapped[Optional[str]] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    org: Mapped[OrgUnit] = relationship()


class MediationSession(Base):
    """One mediation session (调解记录): date, place, what was said and agreed, next steps."""

    __tablename__ = "mediation_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    held_on: Mapped[date] = mapped_column(Date)
    place: Mapped[Optional[str]] = mapped_column(String(200))
    record: Mapped[str] = mapped_column(Text)
    agreed: Mapped[Optional[str]] = mapped_column(Text)
    next_steps: Mapped[Optional[str]] = mapped_column(Text)
    recorded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    recorded_by_name: Mapped[Optional[str]] = mapped_column(String(64))
    timeline_entry_id: Mapped[Optional[int]] = mapped_column(ForeignKey("timeline_entry.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    participants: Mapped[list["SessionParticipant"]] = relationship(
        back_populates="session", order_by="SessionParticipant.id", cascade="all, delete-orphan")


class SessionParticipant(Base):
    """Who took part in a session: a user, a department, a roster person, a party, or someone else."""

    __tablename__ = "session_participant"
    __table_args__ = (CheckConstraint("kind IN ('user','department','roster','party','other')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("mediation_session.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), index=True)
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"))
    roster_id: Mapped[Optional[int]] = mapped_column(ForeignKey("roster_member.id"), index=True)
    party_id: Mapped[Optional[int]] = mapped_column(ForeignKey("party.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100))  # as shown on the record

    session: Mapped[MediationSession] = relationship(back_populates="participants")


class Agreement(Base):
    """A mediation agreement (调解协议, Arts. 28–29): written (协议书) or oral (口头协议登记)."""

    __tablename__ = "mediation_agreement"
    __table_args__ = (CheckConstraint("form IN ('written','oral')", name="form"),
                      # the 司法确认 to-do: the agreements of a range of dates (``confirmations_due``)
                      Index("ix_mediation_agreement_agreed_on", "agreed_on", "case_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    form: Mapped[str] = mapped_column(String(8))
    agreed_on: Mapped[date] = mapped_column(Date)
    facts: Mapped[Optional[str]] = mapped_column(Text)            # 主要事实
    disputes: Mapped[Optional[str]] = mapped_column(Text)         # 争议事项
    responsibilities: Mapped[Optional[str]] = mapped_column(Text)  # 各方责任
    content: Mapped[str] = mapped_column(Text)                    # agreed terms / oral content
    copies: Mapped[int] = mapped_column(default=3)
    mediator_name: Mapped[Optional[str]] = mapped_column(String(64))
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    obligations: Mapped[list["Obligation"]] = relationship(back_populates="agreement", order_by="Obligation.position",
                                                           cascade="all, delete-orphan")


class Obligation(Base):
    """One obligation of an agreement: who does what, in which manner, by when."""

    __tablename__ = "agreement_obligation"

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("mediation_agreement.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    obligor: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    manner: Mapped[str] = mapped_column(String(200))
    deadline: Mapped[date] = mapped_column(Date)

    agreement: Mapped[Agreement] = relationship(back_populates="obligations")


class CaseClosure(Base):
    """The record of 调解终止 (reason, routes told to the parties) or 撤回 (reason, by whom)."""

    __tablename__ = "case_closure"
    __table_args__ = (CheckConstraint("kind IN ('terminated','withdrawn')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    closed_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    referral_paths: Mapped[Optional[list[str]]] = mapped_column(JSON)
    told_on: Mapped[Optional[date]] = mapped_column(Date)
    requested_by: Mapped[Optional[str]] = mapped_column(String(100))
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JudicialConfirmation(Base):
    """司法确认 (Art. 33): applied within 30 days of the agreement, to a court, with its result."""

    __tablename__ = "judicial_confirmation"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    agreement_id: Mapped[Optional[int]] = mapped_column(ForeignKey("mediation_agreement.id"))
    applied_on: Mapped[date] = mapped_column(Date)
    court: Mapped[str] = mapped_column(String(100))
    result: Mapped[str] = mapped_column(String(16), default="pending")
    ruling_number: Mapped[Optional[str]] = mapped_column(String(64))  # 调确字
    decided_on: Mapped[Optional[date]] = mapped_column(Date)
    notes: Mapped[Optional[str]] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediatorChange(Base):
    """A party's choice of mediator, a replacement at a party's request, or a recusal (回避)."""

    __tablename__ = "mediator_change"
    __table_args__ = (CheckConstraint("kind IN ('party_choice','replacement','recusal')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    old_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    old_name: Mapped[Optional[str]] = mapped_column(String(100))
    new_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    new_roster_id: Mapped[Optional[int]] = mapped_column(ForeignKey("roster_member.id"))
    new_name: Mapped[str] = mapped_column(String(100))
    requested_by: Mapped[Optional[str]] = mapped_column(String(100))  # the party who chose/asked
    reason: Mapped[str] = mapped_column(Text)
    data: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
