"""我的待办 sections of joint mediation: judicial confirmation about to run out (the 30 days
after an agreement), registered in ``app.home.services.TODO_PROVIDERS`` on import."""
from __future__ import annotations

from datetime import timedelta
from typing import Optional

from flask import url_for

from app.accounts.models import User
from app.cases import workflow
from app.home.services import TODO_PROVIDERS, TodoItem, TodoSection
from app.mediation.queries import confirmations_due
from app.templating import today_local
from app.workflow.deadlines import CARD_BADGES, deadline_state, warn_days


def judicial_confirmation_todo(user: User) -> Optional[TodoSection]:
    """Agreements whose 30-day window for 司法确认 ends within the warning window."""
    if not workflow.ACTIONS["judicial_confirmation"].roles.get(user.role):
        return None
    today = today_local()
    rows = confirmations_due(user, today, until=today + timedelta(days=max(warn_days(), 7)), limit=10)
    if not rows:
        return None
    items = [TodoItem(title=f"{c.number} {c.dispute_type}",
                      url=url_for("mediation.confirmation", number=c.number),
                      detail=f"协议日期 {agreed_on} · 司法确认申请截止 {last}",
                      badge=CARD_BADGES[deadline_state(last, today)] or "warning") for c, agreed_on, last in rows[:10]]
    return TodoSection("司法确认申请即将到期", items)


if judicial_confirmation_todo not in TODO_PROVIDERS:
    TODO_PROVIDERS.append(judicial_confirmation_todo)
