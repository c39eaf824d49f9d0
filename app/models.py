"""Imports every models module so ``Base.metadata`` is complete (Alembic, create_all)."""
from app.accounts.models import ApiToken, User  # noqa: F401
from app.audit.models import AuditLog  # noqa: F401
from app.cases.models import (Attachment, Case, CaseNumberCounter, DepartmentTask, FollowUp,  # noqa: F401
                              Party, RiskGrading, SignOff, SupervisionOrder, TimelineEntry)
from app.db import Base  # noqa: F401
from app.mediation.models import (Agreement, CaseClosure, JudicialConfirmation, MediationSession,  # noqa: F401
                                  MediatorChange, Obligation, RosterMember, SessionParticipant)
from app.orgs.models import OrgUnit  # noqa: F401
from app.reception.models import ReceptionEntry  # noqa: F401
from app.screening.models import Sweep, SweepFinding  # noqa: F401
from app.settings.models import CalendarDay, CaseSource, DisputeType, RiskFactor, Setting  # noqa: F401
import app.cases.search  # noqa: E402,F401  (installs the case search table/indexes on create_all)
from app.reports.summary import CaseFigureSummary, SummaryDirty  # noqa: E402,F401  (figure summary)
from app.reports.cache import DataGeneration  # noqa: E402,F401  (report cache counters)
