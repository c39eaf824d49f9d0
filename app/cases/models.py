"""The dispute case (矛盾纠纷) and what hangs off it: parties, timeline, follow-ups, department
tasks, risk gradings, supervision orders, attachments and the case-number counter."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import (JSON, CheckConstraint, Date, ForeignKey, ForeignKeyConstraint, Index, Numeric, String, Text,
                        UniqueConstraint, event, select, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.cases.vocab import OPEN_STATUSES
from app.crypto import EncryptedString, hash_column, keep_hash
from app.db import Base, utcnow
from app.orgs.models import OrgUnit


# The WHERE clauses of the to-do partial indexes (``Case.follow_up_pending`` /
# ``Case.deadline_pending`` give the same terms to queries).
FOLLOW_UP_PENDING = "follow_up_due_on IS NOT NULL AND (followed_up_on IS NULL OR followed_up_on < closed_on)"
DEADLINE_PENDING = "deadline_on IS NOT NULL AND closed_on IS NULL"


class Case(Base):
    """One dispute, numbered once and never renumbered (一案一码).

    Location is denormalised (county, township, village, grid) so jurisdiction scoping and
    report aggregates are indexed equalities.  ``handling_level`` moves up on escalation;
    at close it is the level the case was resolved at (层级化解).  The latest follow-up's
    performance and satisfaction are copied onto the case so §6 rates are plain aggregates;
    the full history is in ``FollowUp``.
    """

    __tablename__ = "dispute_case"
    __table_args__ = (
        CheckConstraint("status IN ('pending_triage','in_mediation','escalated','transferred',"
                        "'closed','archived','declined')", name="status"),
        CheckConstraint("handling_level IN ('village','township','county')", name="handling_level"),
        CheckConstraint("risk_level IS NULL OR risk_level IN ('high','medium','low')", name="risk_level"),
        CheckConstraint("outcome IS NULL OR outcome IN ('success','failed','direct_answer',"
                        "'department_resolved','withdrawn','declined','handed_up')", name="outcome"),
        CheckConstraint("status NOT IN ('closed','archived') OR (closed_on IS NOT NULL AND outcome IS NOT NULL"
                        " AND outcome <> 'declined')", name="closed_has_outcome"),
        CheckConstraint("status <> 'declined' OR outcome = 'declined'", name="declined_outcome"),
        CheckConstraint("people_involved IS NULL OR people_involved >= 1", name="people_involved"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount"),
        # The county's report reads four index ranges (app/reports/queries.py FIGURE_DOMAINS):
        # registered in P, closed in P, never closed, closed after P.  The county indexes carry
        # every column those figures test, so the report never touches the table (index-only
        # scans; on PostgreSQL once VACUUM has set the visibility map).  Township
        # reports (the same ranges per township) likewise; villages hold few enough rows for
        # the plain pairs.
        Index("ix_case_county_registered", "county_id", "registered_on", "status", "outcome", "closed_on",
              "high_risk_at", "signed_off_at"),
        Index("ix_case_township_registered", "township_id", "registered_on", "status", "outcome", "closed_on",
              "high_risk_at", "signed_off_at"),
        Index("ix_case_village_registered", "village_id", "registered_on"),
        # the case page's 同村同类 (same village and type within the window, app.screening):
        # read in order from the index, not every case of the village in the window filtered
        # by type (5.4 → 0.2 ms at 1,000,000 cases on PostgreSQL)
        Index("ix_case_village_type_registered", "village_id", "dispute_type", "registered_on"),
        Index("ix_case_county_closed", "county_id", "closed_on", "status", "registered_on", "risk_level",
              "outcome", "handling_level", "deadline_on", "followed_up_on", "satisfaction", "performance"),
        Index("ix_case_township_closed", "township_id", "closed_on", "status", "registered_on", "risk_level",
              "outcome", "handling_level", "deadline_on", "followed_up_on", "satisfaction", "performance"),
        Index("ix_case_village_closed", "village_id", "closed_on"),
        # a village's cases by id; unique (trivially: id is the key) so that a party's (village,
        # case) can reference it and follow a case moved to another village (``Party.village_id``)
        Index("ix_case_village_id", "village_id", "id", unique=True),
        Index("ix_case_status", "status"),
        # the dashboard's open, overdue and high-risk counts of a county: index-only
        Index("ix_case_county_status", "county_id", "status", "risk_level", "deadline_on", "signed_off_at"),
        # The 工作台's to-do lists (app/workflow/todos.py), most urgent first: agreements still
        # waiting for their follow-up by due day, and open cases by deadline.  Partial, so they
        # hold only the few rows still to act on, not ten years of closed cases; the queries
        # repeat these WHERE terms word for word so both databases prove the index usable.
        Index("ix_case_follow_up_due", "follow_up_due_on", "id",
              sqlite_where=text(FOLLOW_UP_PENDING), postgresql_where=text(FOLLOW_UP_PENDING)),
        Index("ix_case_open_deadline", "deadline_on", "id",
              sqlite_where=text(DEADLINE_PENDING), postgresql_where=text(DEADLINE_PENDING)),
        # 民转刑 flags are rare: partial indexes keep the report's two flag counts off the table.
        Index("ix_case_criminal_turned", "criminal_turned_on",
              sqlite_where=text("criminal_turned_on IS NOT NULL"),
              postgresql_where=text("criminal_turned_on IS NOT NULL")),
        Index("ix_case_criminal_prevented", "criminal_prevented_on",
              sqlite_where=text("criminal_prevented_on IS NOT NULL"),
              postgresql_where=text("criminal_prevented_on IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    external_number: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(40))
    dispute_type: Mapped[str] = mapped_column(String(40))
    type_category: Mapped[str] = mapped_column(String(40))  # parent type for reports
    county_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    township_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    village_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    grid_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"))
    handling_level: Mapped[str] = mapped_column(String(16), default="village")
    status: Mapped[str] = mapped_column(String(20), default="pending_triage")
    summary: Mapped[str] = mapped_column(Text)
    claims: Mapped[Optional[str]] = mapped_column(Text)
    people_involved: Mapped[Optional[int]]
    amount: Mapped[Optional[Decimal]] = mapped_column(Numeric(14, 2))
    occurred_on: Mapped[Optional[date]] = mapped_column(Date)
    registered_on: Mapped[date] = mapped_column(Date)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    registered_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    risk_level: Mapped[Optional[str]] = mapped_column(String(8))
    risk_factors: Mapped[Optional[list[str]]] = mapped_column(JSON)
    high_risk_at: Mapped[Optional[datetime]]  # first graded 高 (for the 24 h sign-off rate)
    signed_off_at: Mapped[Optional[datetime]]
    lead_mediator_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    responsible_name: Mapped[Optional[str]] = mapped_column(String(64))  # free text (ledger 责任人)
    responsible_org_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"))
    deadline_on: Mapped[Optional[date]] = mapped_column(Date)
    deadline_extended: Mapped[bool] = mapped_column(default=False)
    closed_on: Mapped[Optional[date]] = mapped_column(Date)
    closed_at: Mapped[Optional[datetime]]
    outcome: Mapped[Optional[str]] = mapped_column(String(24))
    outcome_note: Mapped[Optional[str]] = mapped_column(Text)
    agreement_form: Mapped[Optional[str]] = mapped_column(String(8))
    followed_up_on: Mapped[Optional[date]] = mapped_column(Date)
    performance: Mapped[Optional[str]] = mapped_column(String(16))
    satisfaction: Mapped[Optional[str]] = mapped_column(String(16))
    criminal_turned_on: Mapped[Optional[date]] = mapped_column(Date)
    criminal_case_ref: Mapped[Optional[str]] = mapped_column(String(64))
    criminal_prevented_on: Mapped[Optional[date]] = mapped_column(Date)
    recurrence_count: Mapped[int] = mapped_column(default=0)
    notes: Mapped[Optional[str]] = mapped_column(Text)
    # Workflow (issue 4): assignment, 包案领导, escalation, the deadline clock, follow-up due.
    co_mediator_ids: Mapped[Optional[list[int]]] = mapped_column(JSON)
    leader_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))  # 包案领导
    escalated_at: Mapped[Optional[datetime]]
    escalation_due_on: Mapped[Optional[date]] = mapped_column(Date)
    extension_reason: Mapped[Optional[str]] = mapped_column(Text)
    paused_since: Mapped[Optional[date]] = mapped_column(Date)  # 中止: the clock is stopped
    paused_days: Mapped[int] = mapped_column(default=0)
    pause_reason: Mapped[Optional[str]] = mapped_column(Text)
    follow_up_due_on: Mapped[Optional[date]] = mapped_column(Date)
    last_activity_at: Mapped[Optional[datetime]]
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}

    county: Mapped[OrgUnit] = relationship(foreign_keys=[county_id])
    township: Mapped[OrgUnit] = relationship(foreign_keys=[township_id])
    village: Mapped[OrgUnit] = relationship(foreign_keys=[village_id])
    grid: Mapped[Optional[OrgUnit]] = relationship(foreign_keys=[grid_id])
    parties: Mapped[list["Party"]] = relationship(back_populates="case", order_by="Party.position",
                                                  cascade="all, delete-orphan", foreign_keys="Party.case_id")
    timeline: Mapped[list["TimelineEntry"]] = relationship(back_populates="case",
                                                           order_by="TimelineEntry.id",
                                                           cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Party(Base):
    """A party (当事人) to a case: a person or an organisation, on one side (role)."""

    __tablename__ = "party"
    __table_args__ = (
        CheckConstraint("kind IN ('person','organisation')", name="kind"),
        CheckConstraint("role IN ('applicant','respondent','third_party')", name="role"),
        # a name's cases without reading the party rows (the case page's 同村同名 repeats: the
        # name in one village, the search's exact names)
        Index("ix_party_name", "name", "kind", "village_id", "case_id"),
        # the case's village, kept equal to it by the database: a party row cannot name another
        # village than its case's, and a case moved to another village moves its parties along
        ForeignKeyConstraint(["village_id", "case_id"], ["dispute_case.village_id", "dispute_case.id"],
                             ondelete="CASCADE", onupdate="CASCADE"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    # The case's village, copied so that 同村同名 (the same name in the same village: the case
    # page's repeat check) is one index range: joined through the case, a common name's few
    # hundred parties in the county each cost a probe of the case index (1.3 ms of the ~3 ms the
    # database spent on a case page at 1,000,000 cases).  Set from the case when a party is
    # added (``_party_village``) and held equal by the composite key above.
    village_id: Mapped[int] = mapped_column()
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(16), default="person")
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    gender: Mapped[Optional[str]] = mapped_column(String(8))
    id_type: Mapped[Optional[str]] = mapped_column(String(16))
    # Encrypted at rest (app/crypto.py); equality lookups use the keyed hashes beside them.
    id_number: Mapped[Optional[str]] = mapped_column(EncryptedString(255))
    phone: Mapped[Optional[str]] = mapped_column(EncryptedString(255))
    id_number_hash: Mapped[Optional[str]] = hash_column("id", "id_number")
    phone_hash: Mapped[Optional[str]] = hash_column("phone", "phone")
    address: Mapped[Optional[str]] = mapped_column(String(200))
    agent: Mapped[Optional[str]] = mapped_column(String(100))

    case: Mapped[Case] = relationship(back_populates="parties", foreign_keys=[case_id])


@event.listens_for(Party, "before_insert")
def _party_village(_mapper, connection, party: Party) -> None:
    """A new party's village is its case's: the case object's when the party was added through
    ``case.parties``, else read by ``case_id``."""
    if party.village_id is None:
        case = party.case
        party.village_id = case.village_id if case is not None else connection.scalar(
            select(Case.village_id).where(Case.id == party.case_id))


keep_hash(Party.id_number, "id_number_hash", "id")
keep_hash(Party.phone, "phone_hash", "phone")


class TimelineEntry(Base):
    """One thing that happened to a case: who, when, which action, from and to which state."""

    __tablename__ = "timeline_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    actor_name: Mapped[Optional[str]] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[Optional[str]] = mapped_column(String(20))
    to_status: Mapped[Optional[str]] = mapped_column(String(20))
    note: Mapped[Optional[str]] = mapped_column(Text)
    data: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)

    case: Mapped[Case] = relationship(back_populates="timeline")


class FollowUp(Base):
    """A follow-up visit (回访) after close: performance, satisfaction, new risks."""

    __tablename__ = "follow_up"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    visited_on: Mapped[date] = mapped_column(Date)
    visitor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    visitor_name: Mapped[Optional[str]] = mapped_column(String(64))
    performance: Mapped[Optional[str]] = mapped_column(String(16))
    satisfaction: Mapped[Optional[str]] = mapped_column(String(16))
    new_risks: Mapped[Optional[str]] = mapped_column(Text)
    notes: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DepartmentTask(Base):
    """A transfer (转办) or invitation to joint mediation (邀请联调) sent to a department,
    answered by its liaison (部门小闭环).  A liaison sees exactly the cases with a task for
    their department."""

    __tablename__ = "department_task"
    __table_args__ = (CheckConstraint("kind IN ('transfer','invite')", name="kind"),
                      Index("ix_department_task_dept_open", "department_id", "answered_at"),
                      # unanswered tasks by due day: the overdue-transfer to-do reads only these
                      Index("ix_department_task_open_due", "due_on", "id",
                            sqlite_where=text("answered_at IS NULL"), postgresql_where=text("answered_at IS NULL")))

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    kind: Mapped[str] = mapped_column(String(16))
    request: Mapped[Optional[str]] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    due_on: Mapped[Optional[date]] = mapped_column(Date)
    answered_at: Mapped[Optional[datetime]]
    answered_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    answer: Mapped[Optional[str]] = mapped_column(Text)
    resolved: Mapped[Optional[bool]]

    department: Mapped[OrgUnit] = relationship()


class RiskGrading(Base):
    """A dated risk grade with its factors (升级/降级/销号 history)."""

    __tablename__ = "risk_grading"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    level: Mapped[Optional[str]] = mapped_column(String(8))  # None = 销号
    suggested_level: Mapped[Optional[str]] = mapped_column(String(8))
    factors: Mapped[Optional[list[str]]] = mapped_column(JSON)
    reason: Mapped[Optional[str]] = mapped_column(Text)
    graded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    graded_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupervisionOrder(Base):
    """A 督办 order on an open case: requirement, deadline, and the responsible unit's answer."""

    __tablename__ = "supervision_order"
    # the dashboard's and to-do lists' "open orders": few rows, so the count starts from them
    # (not from the county's cases)
    __table_args__ = (Index("ix_supervision_order_open", "due_on", "case_id",
                            sqlite_where=text("answered_at IS NULL"), postgresql_where=text("answered_at IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    issued_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    issuing_org_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    responsible_org_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    requirement: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[Optional[datetime]]
    answered_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    answer: Mapped[Optional[str]] = mapped_column(Text)


class Attachment(Base):
    """A photo or scan kept outside ``static/`` and served only to users who may see the case."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    uploaded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseNumberCounter(Base):
    """Last sequence used per prefix and year; incremented inside the registering transaction
    so numbers are unique and never reused, also under concurrent registration."""

    __tablename__ = "case_number_counter"
    __table_args__ = (UniqueConstraint("prefix", "year", name="prefix_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16))
    year: Mapped[int]
    last: Mapped[int] = mapped_column(default=0)


class SignOff(Base):
    """A 签批 of a high-risk case by the township party secretary (the county leader for a
    county-level case): the plan (化解方案), the 包案领导 and the task force (工作专班)."""

    __tablename__ = "sign_off"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id", ondelete="CASCADE"), index=True)
    signed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    plan: Mapped[str] = mapped_column(Text)
    leader_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    # {"users": [ids], "departments": [org ids], "invited": ["姓名（身份）", ...]}
    task_force: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
