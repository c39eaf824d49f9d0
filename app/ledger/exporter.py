"""Exporting the ledger (台账, PRODUCT.md §7): the same two sheets the importer reads.

Dates are real Excel dates, codes are written as their Chinese labels, parties as
``姓名(角色)；…`` with phones in the same order.  Phones are masked unless ``unmasked``.
Every text cell starting with = + - @ tab or CR is neutralised with a leading apostrophe.
"""
from __future__ import annotations

from datetime import date
from typing import BinaryIO, Optional

import openpyxl
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.cases.models import Case
from app.cases.vocab import (AGREEMENT_FORMS, LEVELS, OUTCOMES, PARTY_ROLES, PERFORMANCE,
                             RECEPTION_HANDLING, RISK_LEVELS, SATISFACTION, label)
from app.db import session
from app.ledger.importer import CASE_SHEET, RECEPTION_SHEET
from app.orgs.models import OrgUnit
from app.reception.models import ReceptionEntry
from app.reports.queries import org_clause
from app.spreadsheets import neutralise
from app.templating import mask_phone

CASE_HEADERS = ["编号", "登记日期", "来源", "乡镇", "村(社区)", "纠纷类型", "简要情况", "当事人", "联系电话",
                "涉及人数", "涉及金额", "风险等级", "化解层级", "办理结果", "结案日期", "协议形式", "履行情况",
                "回访日期", "满意度", "责任人", "备注"]
RECEPTION_HEADERS = ["日期", "乡镇", "来访人", "人数", "事由", "处理方式", "备注"]
safe = neutralise  # the shared defence (app/spreadsheets.py)


def _lbl(vocab, code) -> Optional[str]:
    return label(vocab, code) if code else None


def export_ledger(out: BinaryIO, org: OrgUnit, date_from: Optional[date] = None,
                  date_to: Optional[date] = None, unmasked: bool = False) -> int:
    """Write the ledger of ``org`` (cases registered in the period) to ``out``; return the case count."""
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(CASE_SHEET)
    ws.append(CASE_HEADERS)
    names = dict(session.execute(select(OrgUnit.id, OrgUnit.name)).all())
    stmt = select(Case).where(org_clause(org)).options(selectinload(Case.parties)).order_by(Case.registered_on, Case.id)
    if date_from:
        stmt = stmt.where(Case.registered_on >= date_from)
    if date_to:
        stmt = stmt.where(Case.registered_on <= date_to)
    count = 0
    for case in session.scalars(stmt):
        parties = "；".join(f"{p.name}({PARTY_ROLES.get(p.role, p.role)})" for p in case.parties)
        phones = [p.phone or "" for p in case.parties]
        phones = [ph if unmasked else (mask_phone(ph) if ph else "") for ph in phones]
        phone_text = "；".join(phones) if any(phones) else None
        row = [case.external_number or case.number, case.registered_on, case.source,
               names.get(case.township_id), names.get(case.village_id), case.dispute_type, case.summary,
               parties, phone_text, case.people_involved,
               float(case.amount) if case.amount is not None else None,
               _lbl(RISK_LEVELS, case.risk_level), _lbl(LEVELS, case.handling_level),
               _lbl(OUTCOMES, case.outcome), case.closed_on, _lbl(AGREEMENT_FORMS, case.agreement_form),
               _lbl(PERFORMANCE, case.performance), case.followed_up_on,
               _lbl(SATISFACTION, case.satisfaction), case.responsible_name, case.notes]
        ws.append([safe(v) for v in row])
        count += 1
    ws2 = wb.create_sheet(RECEPTION_SHEET)
    ws2.append(RECEPTION_HEADERS)
    rstmt = select(ReceptionEntry).order_by(ReceptionEntry.received_on, ReceptionEntry.id)
    if org.level == "county":
        rstmt = rstmt.where(ReceptionEntry.county_id == org.id)
    elif org.level == "township":
        rstmt = rstmt.where(ReceptionEntry.township_id == org.id)
    else:
        rstmt = rstmt.where(ReceptionEntry.village_id == org.id)
    if date_from:
        rstmt = rstmt.where(ReceptionEntry.received_on >= date_from)
    if date_to:
        rstmt = rstmt.where(ReceptionEntry.received_on <= date_to)
    for e in session.scalars(rstmt):
        ws2.append([safe(v) for v in [e.received_on, names.get(e.township_id), e.visitor_names, e.headcount,
                                      e.matter, _lbl(RECEPTION_HANDLING, e.handling), e.notes]])
    wb.save(out)
    return count
