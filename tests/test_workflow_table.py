"""The state machine as data (no database): every (state, action) pair, the role × level
matrix against §4, risk suggestion and change kinds."""
from __future__ import annotations

import pytest

from app.accounts.roles import ROLES
from app.cases import workflow
from app.cases.vocab import STATUSES

# §4's table written out by hand: action → the states it may be taken from.
SPEC_SOURCES = {
    "register": set(),
    "accept": {"pending_triage"},
    "answer_directly": {"pending_triage"},
    "decline": {"pending_triage"},
    "transfer": {"pending_triage", "in_mediation"},
    "department_feedback": {"transferred", "in_mediation"},  # in_mediation: answering an invitation
    "escalate": {"pending_triage", "in_mediation"},
    "accept_escalation": {"escalated"},
    "return_escalation": {"escalated"},
    "grade_risk": {"pending_triage", "in_mediation", "escalated", "transferred"},
    "sign_off": {"pending_triage", "in_mediation", "escalated", "transferred"},
    "log_session": {"in_mediation"},
    "invite_department": {"in_mediation"},
    "agree": {"in_mediation"},
    "terminate": {"in_mediation"},
    "withdraw": {"pending_triage", "in_mediation"},
    "follow_up": {"closed"},
    "judicial_confirmation": {"closed"},
    "reopen": {"closed"},
    "hand_up": {"in_mediation"},
    "archive": {"closed"},
    "supervise": {"pending_triage", "in_mediation", "escalated", "transferred"},
    "answer_supervision": {"pending_triage", "in_mediation", "escalated", "transferred", "closed"},
    # §4 Deadlines: "extendable once, with a reason"; 中止 stops the clock and resumes it.
    "extend_deadline": {"in_mediation"},
    "pause": {"in_mediation"},
    "resume": {"in_mediation"},
}
SPEC_TARGETS = {
    "accept": {"in_mediation"}, "answer_directly": {"closed"}, "decline": {"declined"},
    "transfer": {"transferred"}, "department_feedback": {"closed", "in_mediation"}, "escalate": {"escalated"},
    "accept_escalation": {"in_mediation"}, "return_escalation": {"in_mediation"}, "agree": {"closed"},
    "terminate": {"closed"}, "withdraw": {"closed"}, "reopen": {"in_mediation"}, "hand_up": {"closed"},
    "archive": {"archived"},
}

PAIRS = [(s, a) for s in STATUSES for a in workflow.ACTIONS]


def test_reference_lists_every_action_of_the_table():
    assert set(SPEC_SOURCES) == set(workflow.ACTIONS)


def test_table_covers_every_spec_action_and_state():
    assert set(workflow.SPEC_ACTIONS) <= set(workflow.ACTIONS)
    assert len(workflow.SPEC_ACTIONS) == 23
    assert set(workflow.STATES) == {"pending_triage", "in_mediation", "escalated", "transferred", "closed",
                                    "archived", "declined"}


@pytest.mark.parametrize("state,action", PAIRS)
def test_every_state_action_pair(state, action):
    allowed = workflow.transition_allowed(state, action)
    if action in SPEC_SOURCES:
        assert allowed == (state in SPEC_SOURCES[action])
    if allowed:
        targets = set(workflow.TRANSITIONS[(state, action)])
        assert targets == SPEC_TARGETS.get(action, {state}) or \
            (action == "department_feedback" and targets == {"closed", "in_mediation"})
    else:
        assert "不能进行" in workflow.refusal_message(state, action)


@pytest.mark.parametrize("state", ["archived", "declined"])
def test_terminal_states_allow_nothing(state):
    assert [a for a in workflow.ACTIONS if workflow.transition_allowed(state, a)] == []


# Spot checks of §1/§4's "who" column, independent of how the table is written.
EXPECTED = [
    ("village_mediator", "accept", "village", True),
    ("village_mediator", "accept", "township", False),
    ("township_mediator", "accept", "township", True),
    ("township_director", "accept", "village", False),
    ("grid_worker", "accept", "village", False),
    ("county_leader", "accept", "county", False),
    ("admin", "accept", "county", False),
    ("village_mediator", "escalate", "village", True),
    ("township_director", "escalate", "township", True),
    ("county_supervisor", "escalate", "county", False),
    ("township_director", "accept_escalation", "village", True),
    ("township_mediator", "accept_escalation", "village", False),
    ("county_supervisor", "accept_escalation", "township", True),
    ("county_supervisor", "accept_escalation", "village", False),
    ("township_director", "return_escalation", "village", True),
    ("county_supervisor", "hand_up", "county", True),
    ("township_director", "hand_up", "township", False),
    ("township_secretary", "sign_off", "township", True),
    ("township_secretary", "sign_off", "village", True),
    ("township_secretary", "sign_off", "county", False),
    ("county_leader", "sign_off", "county", True),
    ("county_leader", "sign_off", "township", False),
    ("township_mediator", "sign_off", "township", False),
    ("dept_liaison", "department_feedback", "village", True),
    ("dept_liaison", "department_feedback", "county", True),
    ("township_director", "department_feedback", "township", False),
    ("county_supervisor", "supervise", "village", True),
    ("county_supervisor", "supervise", "township", True),
    ("township_director", "supervise", "village", True),
    ("township_director", "supervise", "township", False),
    ("village_mediator", "supervise", "village", False),
    ("grid_worker", "follow_up", "village", True),
    ("grid_worker", "agree", "village", False),
    ("village_mediator", "answer_supervision", "village", True),
    ("dept_liaison", "grade_risk", "village", False),
    ("village_mediator", "extend_deadline", "village", True),
    ("township_mediator", "pause", "township", True),
    ("county_supervisor", "resume", "county", True),
    ("village_mediator", "pause", "township", False),
    ("township_secretary", "extend_deadline", "township", False),
    ("county_leader", "resume", "county", False),
    ("dept_liaison", "pause", "village", False),
]


@pytest.mark.parametrize("role,action,level,expected", EXPECTED)
def test_permission_spot_checks(role, action, level, expected):
    assert workflow.role_allowed(role, action, level) is expected


@pytest.mark.parametrize("role", list(ROLES))
def test_every_role_in_matrix_is_known(role):
    for action in workflow.ACTIONS.values():
        assert set(action.roles) <= set(ROLES)
        assert all(level in workflow.ALL_LEVELS for levels in action.roles.values() for level in levels)
    # county_leader and admin never change a case except the leader's county sign-off.
    if role in ("admin",):
        assert not any(workflow.role_allowed(role, a, lv) for a in workflow.ACTIONS for lv in workflow.LEVEL_ORDER)


def test_available_actions_for_a_village_mediator_on_a_pending_case():
    names = {a.name for a in workflow.available_actions("village_mediator", "pending_triage", "village")}
    assert {"accept", "answer_directly", "decline", "transfer", "escalate", "withdraw", "grade_risk"} <= names
    assert "accept_escalation" not in names and "agree" not in names


@pytest.mark.parametrize("suggests,expected", [
    ([], "low"), (["medium"], "medium"), (["medium", "medium"], "medium"), (["medium", "high"], "high"),
])
def test_suggested_risk_level(suggests, expected):
    assert workflow.suggest_risk_level(suggests) == expected


@pytest.mark.parametrize("old,new,kind", [
    (None, "low", "定级"), ("low", "high", "升级"), ("high", "medium", "降级"), ("medium", None, "销号"),
    ("medium", "medium", "复核"),
])
def test_risk_change_kind(old, new, kind):
    assert workflow.risk_change_kind(old, new) == kind


def test_next_level_up():
    assert workflow.next_level_up("village") == "township"
    assert workflow.next_level_up("township") == "county"
    assert workflow.next_level_up("county") is None
