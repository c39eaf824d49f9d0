"""Fixed vocabularies of the case record (PRODUCT.md §3–§5): code → the Chinese word users speak.

Codes are stored; labels are shown and written in ledgers.  The labels are marked with ``N_``:
they stay Chinese here (exports, ledgers, the API and imports use them as they are) and are
translated with ``_()`` where a page shows them (``app.templating``: the ``*_label`` filters and
``vocab.label`` in templates).  Dispute types and sources are
not here: they are admin-editable settings (``app.settings.models``) seeded with §3.
"""
from __future__ import annotations

from app.i18n import N_

STATUSES = {
    "pending_triage": N_("待研判"),
    "in_mediation": N_("调解中"),
    "escalated": N_("已上报"),
    "transferred": N_("已转办"),
    "closed": N_("已办结"),
    "archived": N_("已归档"),
    "declined": N_("不予受理"),
}
OPEN_STATUSES = ("pending_triage", "in_mediation", "escalated", "transferred")

OUTCOMES = {
    "success": N_("调解成功"),
    "failed": N_("调解不成"),
    "direct_answer": N_("直接答复化解"),
    "department_resolved": N_("部门处理化解"),
    "withdrawn": N_("撤回"),
    "declined": N_("不予受理"),
    "handed_up": N_("上报县级以上"),
}
RESOLVED_OUTCOMES = ("success", "direct_answer", "department_resolved")
MEDIATED_OUTCOMES = ("success", "failed")

LEVELS = {"village": N_("村级"), "township": N_("乡镇级"), "county": N_("县级")}
RISK_LEVELS = {"high": N_("高"), "medium": N_("中"), "low": N_("低")}
RISK_COLOURS = {"high": N_("红"), "medium": N_("黄"), "low": N_("绿")}
AGREEMENT_FORMS = {"written": N_("书面"), "oral": N_("口头")}
PERFORMANCE = {"performed": N_("已履行"), "partly": N_("部分履行"), "not_performed": N_("未履行")}
SATISFACTION = {"satisfied": N_("满意"), "basically": N_("基本满意"), "dissatisfied": N_("不满意")}
PARTY_ROLES = {"applicant": N_("申请人"), "respondent": N_("被申请人"), "third_party": N_("第三人")}
PARTY_KINDS = {"person": N_("个人"), "organisation": N_("单位")}
GENDERS = {"male": N_("男"), "female": N_("女")}
ID_TYPES = {"resident_id": N_("居民身份证"), "other": N_("其他证件")}
RECEPTION_HANDLING = {"direct_answer": N_("直接答复"), "registered": N_("登记为纠纷"),
                      "transferred": N_("转办"), "guided": N_("引导")}
REFERRAL_PATHS = {"litigation": N_("诉讼"), "arbitration": N_("仲裁"), "administrative": N_("行政处理"),
                  "petition": N_("信访")}

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


def shown(vocab: dict[str, str], code: str | None) -> str:
    """The label of ``code`` in the page's language (``label`` translated; for display only).
    Through the request's translations object (``app.templating.fast_translations``), as
    Flask-Babel's ``gettext`` would with no variables, without its per-call lookup of the
    context, domain and locale: a ledger page shows a status label and a type on every row."""
    text = label(vocab, code)
    if not text:
        return text
    global _fast_translations
    if _fast_translations is None:  # app.templating imports this module: bound at the first use
        from app.templating import fast_translations as _fast_translations
    return _fast_translations().ugettext(text)


_fast_translations = None


def code_for(vocab: dict[str, str], text: str | None) -> str | None:
    """Reverse lookup: the code whose label is ``text`` (None when unknown)."""
    if text is None:
        return None
    for code, lab in vocab.items():
        if lab == text:
            return code
    return None
