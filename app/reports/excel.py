"""The official 月报表 as an .xlsx (openpyxl): title, 填报单位, period, 制表人, 制表日期, the
figures (本月 / 本年累计) and the breakdowns; A4, fit to width, borders, frozen header."""
from __future__ import annotations

from datetime import date
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

from app.orgs.models import OrgUnit
from app.spreadsheets import neutralise
from app.templating import format_rate

THIN = Side(style="thin", color="000000")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD_FILL = PatternFill("solid", fgColor="DDE6F0")

# (label, path in the report dict, is_rate)
FIGURE_ROWS = [
    ("登记数", ("registered",), False), ("受理数", ("accepted",), False),
    ("受理且化解数", ("accepted_resolved",), False), ("化解率", ("resolution_rate",), True),
    ("办结数", ("closed",), False), ("化解数", ("resolved",), False), ("调解数", ("mediated",), False),
    ("调解成功数", ("mediation_success",), False), ("调解成功率", ("mediation_success_rate",), True),
    ("及时办结数", ("timely_closed",), False), ("及时办结率", ("timely_rate",), True),
    ("存量", ("backlog",), False), ("存量（≤30天）", ("backlog_ageing", "le30"), False),
    ("存量（31–90天）", ("backlog_ageing", "d31_90"), False), ("存量（>90天）", ("backlog_ageing", "gt90"), False),
    ("小事不出村", ("level_shares", "village"), True), ("大事不出镇", ("level_shares", "township_or_below"), True),
    ("矛盾不上交", ("level_shares", "within_county"), True),
    ("接待人次", ("visitors",), False), ("直接答复数", ("direct_answers",), False),
    ("排查覆盖率", ("screening_coverage",), True), ("回访率", ("follow_up_rate",), True),
    ("满意率", ("satisfaction_rate",), True), ("履行率", ("performance_rate",), True),
    ("高风险受理数", ("high_risk", "accepted"), False), ("期末未办结高风险数", ("high_risk", "open_at_end"), False),
    ("高风险24小时内签批率", ("high_risk", "signed_off_24h_rate"), True),
    ("民转刑数", ("criminal_turned",), False), ("防止民转刑数", ("criminal_prevented",), False),
]


safe = neutralise  # the shared defence (app/spreadsheets.py)


def pick(report: dict, path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _cell(ws, row: int, col: int, value: Any, bold: bool = False, fill=None, align="center"):
    c = ws.cell(row=row, column=col, value=safe(value))
    c.border = BORDER
    c.alignment = Alignment(horizontal=align, vertical="center", wrap_text=True)
    if bold:
        c.font = Font(bold=True)
    if fill:
        c.fill = fill
    return c


def _table(ws, row: int, title: str, header: list[str], rows: list[list[Any]]) -> int:
    ws.cell(row=row, column=1, value=title).font = Font(bold=True, size=12)
    row += 1
    for i, h in enumerate(header, 1):
        _cell(ws, row, i, h, bold=True, fill=HEAD_FILL)
    for r in rows:
        row += 1
        for i, v in enumerate(r, 1):
            _cell(ws, row, i, v, align="left" if i == 1 else "center")
    return row + 2


def monthly_workbook(org: OrgUnit, year: int, month: int, report: dict, ytd: dict,
                     townships: list[dict], author: str, today: date) -> Workbook:
    wb = Workbook()
    ws = wb.active
    ws.title = "月报表"
    ws.merge_cells("A1:D1")
    t = ws.cell(row=1, column=1, value=safe(f"{org.name}矛盾纠纷排查化解工作月报表"))
    t.font = Font(bold=True, size=16)
    t.alignment = Alignment(horizontal="center")
    ws.cell(row=2, column=1, value="填报单位")
    ws.cell(row=2, column=2, value=safe(f"{org.name}（{org.code}）"))
    ws.cell(row=3, column=1, value="统计期间")
    ws.cell(row=3, column=2, value=f"{year}年{month}月（{report['period']['from']} 至 {report['period']['to']}）")
    ws.cell(row=4, column=1, value="制表人")
    ws.cell(row=4, column=2, value=safe(author))
    ws.cell(row=4, column=3, value="制表日期")
    ws.cell(row=4, column=4, value=today.isoformat())
    header_row = 6
    for i, h in enumerate(["统计项", "本月", "本年累计"], 1):
        _cell(ws, header_row, i, h, bold=True, fill=HEAD_FILL)
    row = header_row
    for label, path, is_rate in FIGURE_ROWS:
        row += 1
        m, y = pick(report, path), pick(ytd, path)
        _cell(ws, row, 1, label, align="left")
        _cell(ws, row, 2, format_rate(m) if is_rate else m)
        _cell(ws, row, 3, format_rate(y) if is_rate else y)
    row += 2

    def br(data: dict, label_of=lambda k: k):
        return [[label_of(k), v["accepted"], v["accepted_resolved"],
                 format_rate(_rate(v["accepted_resolved"], v["accepted"]))]
                for k, v in sorted(data.items(), key=lambda kv: -kv[1]["accepted"])]
    head = ["", "受理数", "受理且化解数", "化解率"]
    row = _table(ws, row, "按类型", ["类型"] + head[1:], br(report.get("by_type", {})))
    row = _table(ws, row, "按来源", ["来源"] + head[1:], br(report.get("by_source", {})))
    if townships:
        row = _table(ws, row, "各乡镇化解率排名", ["乡镇", "受理数", "受理且化解数", "化解率"],
                     [[t["name"], t["accepted"], t["accepted_resolved"], format_rate(t["resolution_rate"])]
                      for t in townships])
    ws.column_dimensions["A"].width = 26
    for col in "BCD":
        ws.column_dimensions[col].width = 16
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    return wb


def _rate(n: int, d: int):
    from app.reports.queries import rate
    return rate(n, d)
