"""A tiny workbook builder for ledger tests."""
from __future__ import annotations

import io

import openpyxl

HEADERS = ["编号", "登记日期", "来源", "乡镇", "村(社区)", "纠纷类型", "简要情况", "当事人", "联系电话",
           "涉及人数", "涉及金额", "风险等级", "化解层级", "办理结果", "结案日期"]
FOLLOW_UP_HEADERS = HEADERS + ["履行情况", "回访日期", "满意度"]


def good_row(**over):
    row = {"编号": "T-1", "登记日期": "2025-03-01", "来源": "群众来访", "乡镇": "南湖镇", "村(社区)": "赵坪村",
           "纠纷类型": "邻里纠纷", "简要情况": "因排水沟发生争执", "当事人": "张三(申请人)；李四(被申请人)",
           "联系电话": "13800000001；13800000002", "涉及人数": 2, "涉及金额": 0, "风险等级": "低",
           "化解层级": "村级", "办理结果": "调解成功", "结案日期": "2025-03-10"}
    row.update(over)
    return row


def workbook(rows, reception=None, headers=HEADERS) -> io.BytesIO:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "矛盾纠纷台账"
    ws.append(headers)
    for row in rows:
        ws.append([row.get(h) for h in headers])
    if reception is not None:
        ws2 = wb.create_sheet("来访登记")
        ws2.append(["日期", "乡镇", "来访人", "人数", "事由", "处理方式", "备注"])
        for r in reception:
            ws2.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf
