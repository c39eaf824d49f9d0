"""Excel export of the filtered ledger list (台账), in the §7 column shape.  ID numbers and
phones are masked unless the exporter's role may unmask and chose to (logged by the route);
text that a spreadsheet would run as a formula (= + - @, tab, CR) is prefixed with ``'``."""
from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from app.accounts.models import User
from app.cases import vocab
from app.cases.queries import CaseFilters, iter_filtered_cases
from app.spreadsheets import neutralise
from app.templating import mask_id_number, mask_phone

HEADERS = ["编号", "登记日期", "来源", "乡镇", "村(社区)", "纠纷类型", "简要情况", "主要诉求", "当事人",
           "证件号码", "联系电话", "涉及人数", "涉及金额", "风险等级", "化解层级", "状态", "办理期限",
           "办理结果", "结案日期"]


def case_row(case, unmasked: bool = False) -> list:
    """One ledger row of ``case``."""
    if unmasked:
        ids = phones = (lambda v: v or "")
    else:
        ids, phones = mask_id_number, mask_phone
    parties = case.parties
    return [
        case.number, case.registered_on, case.source, case.township.name, case.village.name,
        case.dispute_type, case.summary, case.claims or "",
        "；".join(f"{p.name}({vocab.label(vocab.PARTY_ROLES, p.role)})" for p in parties),
        "；".join(ids(p.id_number) for p in parties if p.id_number),
        "；".join(phones(p.phone) for p in parties if p.phone),
        case.people_involved, float(case.amount) if case.amount is not None else None,
        vocab.label(vocab.RISK_LEVELS, case.risk_level), vocab.label(vocab.LEVELS, case.handling_level),
        vocab.label(vocab.STATUSES, case.status), case.deadline_on,
        vocab.label(vocab.OUTCOMES, case.outcome), case.closed_on,
    ]


def export_cases(user: User, filters: CaseFilters, unmasked: bool = False) -> bytes:
    """The workbook (sheet 矛盾纠纷台账) of every case of the filtered, scoped list."""
    wb = Workbook()
    ws = wb.active
    ws.title = "矛盾纠纷台账"
    ws.append(HEADERS)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for case in iter_filtered_cases(user, filters):
        ws.append([neutralise(v) for v in case_row(case, unmasked)])
    for col, width in zip("ABCDEFGHIJKLMNOPQRS", (16, 11, 12, 10, 12, 10, 40, 24, 24, 22, 16, 8, 10, 8, 8, 8, 11, 12, 11)):
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if cell.column_letter in ("B", "Q", "S") and cell.value:
                cell.number_format = "yyyy-mm-dd"
            if cell.column_letter in ("G", "H"):
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
