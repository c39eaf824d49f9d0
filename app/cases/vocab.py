"""Fixed vocabularies of the case record (PRODUCT.md §3–§5): code → the Chinese word users speak.

Codes are stored; labels are shown and written in ledgers.  Dispute types and sources are
not here: they are admin-editable settings (``app.settings.models``) seeded with §3.
"""
from __future__ import annotations

STATUSES = {
    "pending_triage": "待研判",
    "in_mediation": "调解中",
    "escalated": "已上报",
    "transferred": "已转办",
    "closed": "已办结",
    "archived": "已归档",
    "declined": "不予受理",
}
OPEN_STATUSES = ("pending_triage", "in_mediation", "escalated", "transferred")

OUTCOMES = {
    "success": "调解成功",
    "failed": "调解不成",
    "direct_answer": "直接答复化解",
    "department_resolved": "部门处理化解",
    "withdrawn": "撤回",
    "declined": "不予受理",
    "handed_up": "上报县级以上",
}
RESOLVED_OUTCOMES = ("success", "direct_answer", "department_resolved")
MEDIATED_OUTCOMES = ("success", "failed")

LEVELS = {"village": "村级", "township": "乡镇级", "county": "县级"}
RISK_LEVELS = {"high": "高", "medium": "中", "low": "低"}
RISK_COLOURS = {"high": "红", "medium": "黄", "low": "绿"}
AGREEMENT_FORMS = {"written": "书面", "oral": "口头"}
PERFORMANCE = {"performed": "已履行", "partly": "部分履行", "not_performed": "未履行"}
SATISFACTION = {"satisfied": "满意", "basically": "基本满意", "dissatisfied": "不满意"}
PARTY_ROLES = {"applicant": "申请人", "respondent": "被申请人", "third_party": "第三人"}
PARTY_KINDS = {"person": "个人", "organisation": "单位"}
GENDERS = {"male": "男", "female": "女"}
ID_TYPES = {"resident_id": "居民身份证", "other": "其他证件"}
RECEPTION_HANDLING = {"direct_answer": "直接答复", "registered": "登记为纠纷",
                      "transferred": "转办", "guided": "引导"}
REFERRAL_PATHS = {"litigation": "诉讼", "arbitration": "仲裁", "administrative": "行政处理",
                  "petition": "信访"}

DEFAULT_SOURCES = ["群众来访", "来电(12345热线)", "网格上报", "排查发现", "部门移交", "法院委派",
                   "公安移交(110非警务)", "信访转来", "上级交办", "线上申请", "其他"]
# (name, parent) in the official 人民调解 statistics order; sub-types count under their parent.
DEFAULT_TYPES = [
    ("婚姻家庭", None), ("邻里", None), ("房屋宅基地", None), ("合同", None), ("生产经营", None),
    ("损害赔偿", None), ("山林土地", None), ("征地拆迁", None), ("环境污染", None),
    ("劳动争议", None), ("拖欠农民工工资", "劳动争议"), ("其他劳动争议", "劳动争议"),
    ("医疗", None), ("道路交通事故", None), ("物业", None),
    ("消费", None), ("旅游", "消费"), ("电子商务", "消费"), ("其他消费", "消费"),
    ("其他", None),
]


def label(vocab: dict[str, str], code: str | None) -> str:
    """The Chinese label of ``code`` (empty for None)."""
    return "" if code is None else vocab.get(code, code)


def code_for(vocab: dict[str, str], text: str | None) -> str | None:
    """Reverse lookup: the code whose label is ``text`` (None when unknown)."""
    if text is None:
        return None
    for code, lab in vocab.items():
        if lab == text:
            return code
    return None
