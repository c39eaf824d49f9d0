"""Roles of PRODUCT.md §1 and what each may use.

A role is a plain string on the user; the capabilities below drive navigation and the
coarse route checks.  Finer rules (which case, which action) live in the workflow table and
in ``app.cases.queries.scope_cases``.
"""
from __future__ import annotations

from app.i18n import N_

ROLES: dict[str, str] = {
    "admin": N_("系统管理员"),
    "county_supervisor": N_("县综治中心督办员"),
    "county_leader": N_("县领导"),
    "township_director": N_("乡镇综治中心主任"),
    "township_secretary": N_("乡镇党委书记"),
    "township_mediator": N_("乡镇调解员"),
    "village_mediator": N_("村调解员"),
    "grid_worker": N_("网格员"),
    "dept_liaison": N_("部门联络员"),
}

# The org level a user of each role must belong to.
ROLE_ORG_LEVEL: dict[str, tuple[str, ...]] = {
    "admin": ("county",),
    "county_supervisor": ("county",),
    "county_leader": ("county",),
    "township_director": ("township",),
    "township_secretary": ("township",),
    "township_mediator": ("township",),
    "village_mediator": ("village",),
    "grid_worker": ("grid", "village"),
    "dept_liaison": ("department",),
}

COUNTY_ROLES = frozenset({"admin", "county_supervisor", "county_leader"})
TOWNSHIP_ROLES = frozenset({"township_director", "township_secretary", "township_mediator"})
VILLAGE_ROLES = frozenset({"village_mediator", "grid_worker"})

# Capabilities: what a role may use.  Navigation shows only these.
CAPABILITIES: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "cases.view", "reports.view", "audit.view", "ledger.import", "ledger.export"}),
    "county_supervisor": frozenset({"cases.view", "cases.register", "reception", "reports.view",
                                    "supervise", "high_risk_board", "ledger.export", "ledger.import",
                                    "screening.view", "dashboard"}),
    "county_leader": frozenset({"cases.view", "reports.view", "high_risk_board", "dashboard",
                                "screening.view"}),
    "township_director": frozenset({"cases.view", "cases.register", "reception", "reports.view",
                                    "supervise", "ledger.export", "ledger.import", "screening.view",
                                    "roster"}),
    "township_secretary": frozenset({"cases.view", "reports.view", "sign_off", "screening.view"}),
    "township_mediator": frozenset({"cases.view", "cases.register", "reception", "reports.view",
                                    "ledger.export", "screening.view", "roster"}),
    "village_mediator": frozenset({"cases.view", "cases.register", "reception", "reports.view",
                                   "screening.file", "screening.view"}),
    "grid_worker": frozenset({"cases.view", "cases.register", "screening.file"}),
    "dept_liaison": frozenset({"cases.view", "dept_queue"}),
}

# Roles allowed to see unmasked ID numbers and phones (PRODUCT.md §9), each unmasking logged.
UNMASK_ROLES = frozenset({"township_director", "township_mediator", "village_mediator",
                          "county_supervisor"})


def can(role: str, capability: str) -> bool:
    """Whether ``role`` has ``capability``."""
    return capability in CAPABILITIES.get(role, frozenset())
