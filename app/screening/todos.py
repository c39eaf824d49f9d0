"""我的待办: villages of a township or county that have not filed this period's sweep
(not even a 零报告), registered in ``app.home.services.TODO_PROVIDERS`` on import."""
from __future__ import annotations

from typing import Optional

from flask import url_for

from app.accounts.models import User
from app.home.services import TODO_PROVIDERS, TodoItem, TodoSection
from app.screening.queries import unreported_villages


# The roles that chase sweeps (the centres' staff); leaders (党委书记, 县领导) read the coverage page.
CHASING_ROLES = frozenset({"township_director", "township_mediator", "county_supervisor"})


def unreported_sweeps_todo(user: User) -> Optional[TodoSection]:
    """Township and county centre staff: villages still missing this period's sweep."""
    if user.role not in CHASING_ROLES:
        return None
    villages, (start, end) = unreported_villages(user)
    if not villages:
        return None
    more = url_for("screening.index", period=start.isoformat())
    items = [TodoItem(title=v.name, url=more, detail=f"本期（{start}～{end}）尚未排查上报", badge="warning")
             for v in villages[:10]]
    return TodoSection(f"未报排查的村（{len(villages)}个）", items, more_url=more)


if unreported_sweeps_todo not in TODO_PROVIDERS:
    TODO_PROVIDERS.append(unreported_sweeps_todo)
