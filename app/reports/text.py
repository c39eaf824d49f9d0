"""A readable Chinese table of a report, for the CLI without --json."""
from __future__ import annotations

from typing import Any

ROWS = [("registered", "登记数"), ("accepted", "受理数"), ("accepted_resolved", "受理且化解数"),
        ("resolution_rate", "化解率"), ("closed", "办结数"), ("resolved", "化解数"), ("mediated", "调解数"),
        ("mediation_success", "调解成功数"), ("mediation_success_rate", "调解成功率"),
        ("timely_closed", "及时办结数"), ("timely_rate", "及时办结率"), ("backlog", "存量"),
        ("visitors", "接待人次"), ("direct_answers", "直接答复"), ("screening_coverage", "排查覆盖率"),
        ("follow_up_rate", "回访率"), ("satisfaction_rate", "满意率"), ("performance_rate", "履行率"),
        ("criminal_turned", "民转刑"), ("criminal_prevented", "防止民转刑")]


def _fmt(key: str, value: Any) -> str:
    if key.endswith("rate") or key == "screening_coverage":
        return "—" if value is None else f"{value:.1f}%"
    return str(value)


def render_text(report: dict[str, Any]) -> str:
    org, period = report["org"], report["period"]
    lines = [f"{org['name']}（{org['code']}） {period['from']} 至 {period['to']}"]
    ytd = report.get("ytd")
    for key, label in ROWS:
        line = f"  {label:　<8}{_fmt(key, report[key]):>10}"
        if ytd is not None:
            line += f"    本年累计 {_fmt(key, ytd[key]):>10}"
        lines.append(line)
    return "\n".join(lines)
