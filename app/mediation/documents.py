"""The documents of PRODUCT.md §8, generated from the record and printed on A4 from the
browser (static/css/print.css).  Personal data is masked unless the viewer's role may unmask
(``UNMASK_ROLES``; each print is audited with whether it was unmasked).

The case-file cover lists the 卷内目录 in the 13-item order of DOMAIN-NOTES §2, marking which
items this case's record holds."""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select

from app.accounts.models import User
from app.cases.models import Attachment, Case, SupervisionOrder
from app.db import session
from app.mediation import queries
from app.orgs.models import OrgUnit
from app.templating import mask_id_number, mask_phone

KINDS = {
    "register": "受理登记表",
    "rights": "当事人权利义务告知书",
    "sessions": "调解记录",
    "agreement": "调解协议书",
    "oral": "口头协议登记",
    "follow_up": "回访记录",
    "supervision": "督办单",
    "cover": "卷宗封面及卷内目录",
}

# 卷内目录 (DOMAIN-NOTES §2): (title, required)
FILE_INDEX = [
    ("申请书或受理登记表", True), ("当事人权利义务告知书", True), ("身份证明", True), ("授权委托书", False),
    ("调查记录", False), ("证据材料", False), ("调解记录", True), ("调解协议书", True), ("履行凭证", False),
    ("回访记录", False), ("司法确认材料", False), ("卷宗情况说明", False), ("封底", True),
]


class PartyView:
    """A party as printed: ID number and phone masked unless ``unmasked``."""

    def __init__(self, party, unmasked: bool):
        self.p = party
        self.id_number = (party.id_number if unmasked else mask_id_number(party.id_number)) if party.id_number else ""
        self.phone = (party.phone if unmasked else mask_phone(party.phone)) if party.phone else ""

    def __getattr__(self, name):
        return getattr(self.p, name)


def _committee(case: Case) -> str:
    """The committee named on documents: the handling level's 人民调解委员会."""
    org = {"village": case.village, "township": case.township, "county": case.county}[case.handling_level]
    return f"{org.name}人民调解委员会"


def context(case: Case, kind: str, unmasked: bool = False, session_id: Optional[int] = None) -> dict[str, Any]:
    rec = queries.case_records(case)
    lead = session.get(User, case.lead_mediator_id) if case.lead_mediator_id else None
    registrar = session.get(User, case.registered_by_id) if case.registered_by_id else None
    sessions = rec["sessions"]
    if session_id:
        sessions = [s for s in sessions if s.id == session_id]
    orders = list(session.scalars(select(SupervisionOrder).where(SupervisionOrder.case_id == case.id)
                                  .order_by(SupervisionOrder.id)))
    org_ids = {x.issuing_org_id for x in orders} | {x.responsible_org_id for x in orders}
    order_orgs = {i: session.get(OrgUnit, i) for i in org_ids}
    agreement = rec["agreement"]
    has = {
        "申请书或受理登记表": True, "当事人权利义务告知书": True,
        "身份证明": any(p.id_number for p in case.parties),
        "授权委托书": any(p.agent for p in case.parties),
        "证据材料": bool(session.scalar(select(Attachment.id).where(Attachment.case_id == case.id).limit(1))),
        "调解记录": bool(rec["sessions"]),
        "调解协议书": agreement is not None,
        "回访记录": bool(rec["follow_ups"]),
        "司法确认材料": bool(rec["confirmations"]),
        "封底": True,
    }
    index = [(i + 1, title, required, has.get(title, False)) for i, (title, required) in enumerate(FILE_INDEX)]
    return {"case": case, "kind": kind, "title": KINDS[kind], "parties": [PartyView(p, unmasked) for p in case.parties],
            "unmasked": unmasked, "lead": lead, "registrar": registrar, "committee": _committee(case),
            "sessions": sessions, "agreement": agreement, "follow_ups": rec["follow_ups"],
            "confirmations": rec["confirmations"], "closures": rec["closures"], "invites": rec["invites"],
            "orders": orders, "order_orgs": order_orgs, "file_index": index, "kinds": KINDS,
            "confirmation_deadline": queries.confirmation_deadline(case)}
