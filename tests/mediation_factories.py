"""Plain factories for the mediation tests."""
from __future__ import annotations

from datetime import timedelta

from app.cases.models import Party
from app.db import session
from app.mediation.models import RosterMember
from app.templating import today_local
from tests.workflow_factories import VILLAGE, make_case, org, user  # noqa: F401


def mediation_case(status: str = "in_mediation", level: str = "township", **fields):
    """A case at township level in ``status`` with two parties (applicant and respondent)."""
    mediator = user("township_mediator")
    fields.setdefault("lead_mediator_id", mediator.id)
    case = make_case(status, level, summary="张大山与李小河因排水沟堵塞致农田受淹发生争执",
                     claims="赔偿损失并疏通排水沟", **fields)
    session.add_all([
        Party(case_id=case.id, position=0, name="张大山", role="applicant", gender="male",
              id_type="resident_id", id_number="420222198001011234", phone="13800001111", address="南湖镇一组"),
        Party(case_id=case.id, position=1, name="李小河", role="respondent", gender="male",
              phone="13900002222", address="南湖镇二组"),
    ])
    session.flush()
    session.refresh(case)
    return case


def roster_member(name="王五老", kind="wulao", village=VILLAGE, specialty="邻里纠纷、山林土地", phone="13700003333"):
    m = RosterMember(org_id=org(village).id, kind=kind, name=name, specialty=specialty, phone=phone)
    session.add(m)
    session.flush()
    return m


def written_agreement_data(case, **over):
    today = today_local()
    data = {"agreement_form": "written", "agreed_on": today.isoformat(),
            "facts": "李小河修建围墙堵塞排水沟，致张大山农田受淹", "disputes": "损失数额及排水沟疏通责任",
            "responsibilities": "李小河负主要责任", "content": "双方同意由李小河赔偿并疏通排水沟",
            "ob-0-obligor": "李小河", "ob-0-content": "赔偿张大山损失人民币2000元", "ob-0-manner": "一次性现金支付",
            "ob-0-deadline": (today + timedelta(days=10)).isoformat(),
            "ob-1-obligor": "李小河", "ob-1-content": "疏通排水沟", "ob-1-manner": "自行雇工疏通",
            "ob-1-deadline": (today + timedelta(days=20)).isoformat()}
    data.update(over)
    return data
