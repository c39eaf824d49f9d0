"""The empty ledger template: §7 headers, drop-down lists for fixed-value columns, 填写说明."""
from __future__ import annotations

import io

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import select

from app.cases.vocab import (AGREEMENT_FORMS, LEVELS, OUTCOMES, PERFORMANCE, RECEPTION_HANDLING,
                             RISK_LEVELS, SATISFACTION)
from app.db import session
from app.ledger.exporter import CASE_HEADERS, RECEPTION_HEADERS
from app.ledger.importer import CASE_REQUIRED, CASE_SHEET, RECEPTION_REQUIRED, RECEPTION_SHEET
from app.settings.models import CaseSource, DisputeType
from app.spreadsheets import neutralise

ROWS = 2000
INSTRUCTIONS = [
    "填写说明",
    "1. 表头在第 1 行，每行一件纠纷；列的顺序可以调整，未知列会被忽略。",
    "2. 必填列：" + "、".join(CASE_REQUIRED) + "。",
    "3. 日期填写 Excel 日期或 YYYY-MM-DD。",
    "4. 当事人写作 姓名(角色)，多人用；分隔，如 张三(申请人)；李四(被申请人)；联系电话按同样顺序填写。",
    "5. 纠纷类型可写 邻里 或 邻里纠纷；风险等级 高/中/低（红/黄/绿 亦可）。",
    "6. 办理结果为空表示仍在办理；填写办理结果时（不予受理除外）必须填写结案日期。",
    "7. 编号相同的行再次导入时更新原纠纷，不会重复。",
    "8. 来访登记 表：必填 " + "、".join(RECEPTION_REQUIRED) + "。",
    "9. 整个文件先逐行校验，有任何错误则不写入任何数据。",
]


def _list_validation(ws, header_list, header, values):
    col = get_column_letter(header_list.index(header) + 1)
    formula = '"' + ",".join(values) + '"'
    if len(formula) > 255:  # Excel's limit for inline lists: use a hidden list sheet instead
        return None
    dv = DataValidation(type="list", formula1=formula, allow_blank=True, showDropDown=False)
    dv.add(f"{col}2:{col}{ROWS}")
    ws.add_data_validation(dv)
    return dv


def _sheet_list(ws, header_list, header, values, lists, index):
    col = get_column_letter(header_list.index(header) + 1)
    lcol = get_column_letter(index)
    for i, v in enumerate(values, start=1):
        lists[f"{lcol}{i}"] = neutralise(v)  # names are the admin's text: never a formula
    dv = DataValidation(type="list", formula1=f"'选项'!${lcol}$1:${lcol}${len(values)}", allow_blank=True)
    dv.add(f"{col}2:{col}{ROWS}")
    ws.add_data_validation(dv)


def build_template() -> io.BytesIO:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = CASE_SHEET
    ws.append(CASE_HEADERS)
    ws2 = wb.create_sheet(RECEPTION_SHEET)
    ws2.append(RECEPTION_HEADERS)
    lists = wb.create_sheet("选项")
    lists.sheet_state = "hidden"
    sources = list(session.scalars(select(CaseSource.name).where(CaseSource.active.is_(True))
                                   .order_by(CaseSource.position)))
    types = list(session.scalars(select(DisputeType.name).where(DisputeType.active.is_(True))
                                 .order_by(DisputeType.id)))
    for index, (header, values) in enumerate((("来源", sources), ("纠纷类型", types)), start=1):
        _sheet_list(ws, CASE_HEADERS, header, values, lists, index)
    for header, vocab in (("风险等级", RISK_LEVELS), ("化解层级", LEVELS), ("办理结果", OUTCOMES),
                          ("协议形式", AGREEMENT_FORMS), ("履行情况", PERFORMANCE), ("满意度", SATISFACTION)):
        _list_validation(ws, CASE_HEADERS, header, list(vocab.values()))
    _list_validation(ws2, RECEPTION_HEADERS, "处理方式", list(RECEPTION_HANDLING.values()))
    for sheet in (ws, ws2):
        for i in range(1, sheet.max_column + 1):
            sheet.column_dimensions[get_column_letter(i)].width = 14
    help_ws = wb.create_sheet("填写说明")
    for line in INSTRUCTIONS:
        help_ws.append([line])
    help_ws.column_dimensions["A"].width = 100
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf
