"""The case workflow of PRODUCT.md §4 as data: states, actions, the transition table and who
may take each action at which handling level.  Pure Python, no database: the service in
``app.cases.services`` applies it, the pages and the API ask it what a user may do.

Permissions are "role × handling level": ``Action.roles[role]`` is the set of handling
levels (village/township/county) of the case at which that role may take the action.  The
handling level is where the case sits now; while a case is escalated it still sits at the
lower level, so the upper level's rights to ``accept_escalation`` are written against the
lower level.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from app.cases.vocab import OPEN_STATUSES, STATUSES

STATES: tuple[str, ...] = tuple(STATUSES)
OPEN: frozenset[str] = frozenset(OPEN_STATUSES)
LEVEL_ORDER: tuple[str, ...] = ("village", "township", "county")
ALL_LEVELS: frozenset[str] = frozenset(LEVEL_ORDER)

# The 综治中心 at each level: who triages, mediates and closes there.
CENTRE: dict[str, frozenset[str]] = {
    "village_mediator": frozenset({"village"}),
    "township_director": frozenset({"township"}),
    "township_mediator": frozenset({"township"}),
    "county_supervisor": frozenset({"county"}),
}
# The role's own tier (the level of the org it belongs to).
ROLE_TIER: dict[str, str] = {
    "village_mediator": "village", "grid_worker": "village",
    "township_director": "township", "township_secretary": "township", "township_mediator": "township",
    "county_supervisor": "county", "county_leader": "county", "admin": "county",
}


@dataclass(frozen=True)
class Action:
    """One workflow action: the states it may be taken from, where it leads (``targets``;
    empty = the case stays in its state) and ``roles`` → handling levels."""

    name: str
    label: str
    sources: frozenset[str]
    targets: tuple[str, ...]
    roles: dict[str, frozenset[str]] = field(default_factory=dict)
    closes: bool = False  # sets closed_on / closed_at / outcome
    outcome: Optional[str] = None
    in_panel: bool = True  # offered as a form on the case page

    def target_for(self, state: str, choice: Optional[str] = None) -> str:
        """The state the case ends in; ``choice`` picks among several targets (department_feedback)."""
        if not self.targets:
            return state
        if choice is not None and choice in self.targets:
            return choice
        return self.targets[0]


def _roles(*pairs: tuple[str, frozenset[str] | set[str]]) -> dict[str, frozenset[str]]:
    return {role: frozenset(levels) for role, levels in pairs}


_C = dict(CENTRE)
_FS = frozenset
ANY_OPEN = OPEN
_escalation_upper = _roles(("township_director", {"village"}), ("county_supervisor", {"township"}))

ACTIONS: dict[str, Action] = {a.name: a for a in [
    Action("register", "登记", _FS(), ("pending_triage",),
           _roles(*[(r, ALL_LEVELS) for r in ("village_mediator", "grid_worker", "township_director",
                                              "township_mediator", "county_supervisor")]), in_panel=False),
    Action("accept", "受理", _FS({"pending_triage"}), ("in_mediation",), _C),
    Action("answer_directly", "直接答复", _FS({"pending_triage"}), ("closed",), _C,
           closes=True, outcome="direct_answer"),
    Action("decline", "不予受理", _FS({"pending_triage"}), ("declined",), _C, outcome="declined"),
    Action("transfer", "转办", _FS({"pending_triage", "in_mediation"}), ("transferred",), _C),
    Action("department_feedback", "部门反馈", _FS({"transferred", "in_mediation"}),
           ("closed", "in_mediation"), _roles(("dept_liaison", ALL_LEVELS)),
           closes=True, outcome="department_resolved"),
    Action("escalate", "上报", _FS({"pending_triage", "in_mediation"}), ("escalated",),
           _roles(("village_mediator", {"village"}), ("township_director", {"township"}),
                  ("township_mediator", {"township"}))),
    Action("accept_escalation", "接收上报", _FS({"escalated"}), ("in_mediation",), _escalation_upper),
    Action("return_escalation", "退回上报", _FS({"escalated"}), ("in_mediation",), _escalation_upper),
    Action("grade_risk", "风险定级", ANY_OPEN, (), _C),
    Action("sign_off", "签批", ANY_OPEN, (),
           _roles(("township_secretary", {"village", "township"}), ("county_leader", {"county"}))),
    # in_panel=False: taken only through the full mediation forms (app.mediation.services).
    Action("log_session", "调解记录", _FS({"in_mediation"}), (), _C, in_panel=False),
    Action("invite_department", "邀请联调", _FS({"in_mediation"}), (), _C),
    Action("agree", "达成协议", _FS({"in_mediation"}), ("closed",), _C, closes=True, outcome="success",
           in_panel=False),
    Action("terminate", "调解终止", _FS({"in_mediation"}), ("closed",), _C, closes=True, outcome="failed",
           in_panel=False),
    Action("withdraw", "撤回", _FS({"pending_triage", "in_mediation"}), ("closed",), _C,
           closes=True, outcome="withdrawn", in_panel=False),
    Action("follow_up", "回访", _FS({"closed"}), (),
           {**_C, "grid_worker": _FS({"village"})}, in_panel=False),
    Action("judicial_confirmation", "司法确认", _FS({"closed"}), (), _C, in_panel=False),
    Action("reopen", "重新办理", _FS({"closed"}), ("in_mediation",), _C),
    Action("hand_up", "上交", _FS({"in_mediation"}), ("closed",), _roles(("county_supervisor", {"county"})),
           closes=True, outcome="handed_up"),
    Action("archive", "归档", _FS({"closed"}), ("archived",), _C),
    Action("supervise", "督办", ANY_OPEN, (),
           _roles(("county_supervisor", ALL_LEVELS), ("township_director", {"village"}))),
    Action("answer_supervision", "答复督办", ANY_OPEN | {"closed"}, (), _C),
    # Deadline handling (§4 "extendable once, with a reason"; 中止 stops the clock).
    Action("extend_deadline", "延长期限", _FS({"in_mediation"}), (), _C),
    Action("pause", "中止计时", _FS({"in_mediation"}), (), _C),
    Action("resume", "恢复计时", _FS({"in_mediation"}), (), _C),
]}

# The 22 actions of §4 plus the unit's reply to a 督办 order (the contract of the API).
SPEC_ACTIONS: tuple[str, ...] = (
    "register", "accept", "answer_directly", "decline", "transfer", "department_feedback", "escalate",
    "accept_escalation", "return_escalation", "grade_risk", "sign_off", "log_session",
    "invite_department", "agree", "terminate", "withdraw", "follow_up", "judicial_confirmation",
    "reopen", "hand_up", "archive", "supervise", "answer_supervision")

# (state, action) → the states it may lead to; a pair not here is refused.
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    (state, a.name): (a.targets or (state,)) for a in ACTIONS.values() for state in a.sources
}


def get_action(name: str) -> Optional[Action]:
    return ACTIONS.get(name)


def transition_allowed(state: str, action: str) -> bool:
    """Whether the table has ``action`` from ``state``."""
    return (state, action) in TRANSITIONS


def role_allowed(role: str, action: str, level: str) -> bool:
    """Whether ``role`` may take ``action`` on a case handled at ``level``."""
    a = ACTIONS.get(action)
    return a is not None and level in a.roles.get(role, frozenset())


def refusal_message(state: str, action: str) -> str:
    """The Chinese message for a transition the table refuses."""
    a = ACTIONS.get(action)
    name = a.label if a else action
    return f"案件当前状态为「{STATUSES.get(state, state)}」，不能进行「{name}」操作。"


def available_actions(role: str, state: str, level: str) -> list[Action]:
    """Actions ``role`` may take now on a case in ``state`` at ``level`` (table + matrix only;
    the service still checks the action's own conditions)."""
    return [a for a in ACTIONS.values()
            if transition_allowed(state, a.name) and role_allowed(role, a.name, level)]


def next_level_up(level: str) -> Optional[str]:
    i = LEVEL_ORDER.index(level)
    return LEVEL_ORDER[i + 1] if i + 1 < len(LEVEL_ORDER) else None


def suggest_risk_level(suggestions: list[str]) -> Optional[str]:
    """The level suggested by the checked factors: the highest of their admin-set ``suggests``;
    no factor checked suggests 低."""
    if "high" in suggestions:
        return "high"
    if "medium" in suggestions:
        return "medium"
    return "low"


RISK_ORDER = {None: 0, "low": 1, "medium": 2, "high": 3}


def risk_change_kind(old: Optional[str], new: Optional[str]) -> str:
    """定级 (first grade) / 升级 / 降级 / 销号 / 复核 (same level)."""
    if new is None:
        return "销号"
    if old is None:
        return "定级"
    if RISK_ORDER[new] > RISK_ORDER[old]:
        return "升级"
    if RISK_ORDER[new] < RISK_ORDER[old]:
        return "降级"
    return "复核"
