"""Pages of cases: the ledger list (台账) with search and export, registration (登记纠纷) with
duplicate hints, and the case page with unmasking and attachments.  Every read goes through
``app.cases.queries`` (``scope_cases``)."""
from __future__ import annotations

import dataclasses
from io import BytesIO

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.models import User, users_by_id
from app.accounts.roles import UNMASK_ROLES
from app.audit.services import audit
from app.cases import vocab
from app.cases.attachments import READ_ONLY_ROLES, add_attachment, open_attachment
from app.cases.export import export_cases
from app.cases.forms import AttachmentForm, CaseEditForm, IntakeForm, PartyForm, choices_after_blank
from app.cases.intake import possible_duplicates, prepare_intake, register_case
from app.cases.queries import (SORTS, CaseFilters, attachments_of, case_detail, get_visible_case, grids_of,
                               list_filter_choices, page_of_cases, timeline_of, villages_in_jurisdiction)
from app.db import session
from app.cases.services import can_edit_case, case_field_values, update_case_details
from app.errors import PermissionDenied, ValidationFailed
from app.i18n import N_
from app.security import clean_log_text, open_search, seal_search
from app.settings.services import active_sources, active_types
from app.templating import today_local

bp = Blueprint("cases", __name__, url_prefix="/cases")

TIMELINE_LABELS = {
    "register": N_("登记"), "accept": N_("受理"), "answer_directly": N_("直接答复"), "decline": N_("不予受理"),
    "transfer": N_("转办"), "department_feedback": N_("部门反馈"), "escalate": N_("上报"),
    "accept_escalation": N_("接收上报"), "return_escalation": N_("退回上报"), "grade_risk": N_("定级"),
    "sign_off": N_("签批"), "log_session": N_("调解记录"), "invite_department": N_("邀请联调"), "agree": N_("达成协议"),
    "terminate": N_("调解终止"), "withdraw": N_("撤回"), "follow_up": N_("回访"), "judicial_confirmation": N_("司法确认"),
    "reopen": N_("重新办理"), "hand_up": N_("上交"), "archive": N_("归档"), "supervise": N_("督办"),
    "answer_supervision": N_("督办回复"), "attachment": N_("上传附件"), "import": N_("台账导入"), "mediator_change": N_("调解员变更"),
    "edit": N_("修改信息"),
}


def _require(capability: str) -> None:
    if not current_user.can(capability):
        abort(403)


def _filter_choices(user: User) -> dict:
    return {"statuses": vocab.STATUSES, "choices": list_filter_choices(user),
            "sorts": {k: v[0] for k, v in SORTS.items()}}


def _list_filters(args) -> tuple[CaseFilters | None, str | None]:
    """The list's filters from ``args``, the search term opened from the ``s`` token (never a
    plain ``q`` in a web URL); ``(None, None)`` when the token is bad or expired."""
    filters = CaseFilters.from_args(args)
    token = (args.get("s") or "").strip() or None
    if token:
        term = open_search(token)
        if term is None:
            return None, None
        filters = dataclasses.replace(filters, q=term.strip() or None)
    return filters, token


def _link_args(filters: CaseFilters, token: str | None = None) -> dict[str, str]:
    """Filters as query-string arguments with the search term as a token (``s``), not ``q``."""
    args = filters.as_args()
    if args.pop("q", None):
        args["s"] = token or seal_search(filters.q)
    return args


def _expired_search(args):
    flash(_("搜索条件已过期，请重新输入搜索内容。"), "warning")
    kept = {k: v for k, v in args.items() if k not in ("s", "q", "cursor", "csrf_token", "full")}
    return redirect(url_for("cases.index", **kept))


@bp.get("/")
def index():
    _require("cases.view")
    if request.args.get("q"):
        # Old links and bookmarks with ?q=: served once, through the token form (the term
        # leaves the address bar and history at once).
        filters = CaseFilters.from_args(request.args)
        cursor = request.args.get("cursor")
        return redirect(url_for("cases.index", **_link_args(filters), **({"cursor": cursor} if cursor else {})))
    filters, token = _list_filters(request.args)
    if filters is None:
        return _expired_search(request.args)
    page = page_of_cases(current_user, filters, request.args.get("cursor") or None, brief=True)
    return render_template("cases/index.html", page=page, filters=filters, args=_link_args(filters, token),
                           first_page=not request.args.get("cursor"), today=today_local(),
                           can_unmask_export=current_user.role in UNMASK_ROLES, **_filter_choices(current_user))


@bp.post("/search")
def search():
    """查询: the filter form posts here (CSRF-checked), so the search term goes into a token."""
    _require("cases.view")
    filters = CaseFilters.from_args(request.form)
    return redirect(url_for("cases.index", **_link_args(filters)), code=303)


@bp.route("/export.xlsx", methods=["GET", "POST"])
def export():
    """The filtered list as Excel; masked, or unmasked (POST, logged) for roles allowed to."""
    _require("cases.view")
    args = request.form if request.method == "POST" else request.args
    filters, _token = _list_filters(args)
    if filters is None:
        return _expired_search(args)
    unmasked = request.method == "POST" and args.get("full") == "1" and current_user.role in UNMASK_ROLES
    data = export_cases(current_user, filters, unmasked=unmasked)
    logged = filters.as_args() | ({"q": clean_log_text(filters.q)} if filters.q else {})  # masked
    audit("case.export", "case_list", None, {"filters": logged, "unmasked": unmasked})
    session.commit()
    name = f"矛盾纠纷台账-{today_local().isoformat()}.xlsx"
    return send_file(BytesIO(data), as_attachment=True, download_name=name,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _intake_choices(form: IntakeForm, user: User) -> dict:
    villages = villages_in_jurisdiction(user)
    form.source.choices = choices_after_blank(_("请选择"), active_sources())
    form.type.choices = choices_after_blank(_("请选择"), [t.name for t in active_types()])
    form.village.choices = choices_after_blank(_("请选择"), [(v.code, v.name) for v in villages])
    grids = grids_of([v.id for v in villages])
    form.grid.choices = choices_after_blank(_("（不指定）"), [(g.code, g.name) for g in grids])
    by_id = {v.id: v for v in villages}
    return {"villages": villages, "grids": [(g, by_id.get(g.parent_id)) for g in grids]}


def _prefill_from_reception(form: IntakeForm, entry) -> None:
    form.reception.data = str(entry.id)
    form.source.data = "群众来访"
    form.summary.data = entry.matter
    form.people_involved.data = str(entry.headcount) if entry.headcount else ""
    names = [n for n in entry.visitor_names.replace("，", ",").replace("、", ",").split(",") if n.strip()]
    while len(form.parties.entries) < min(len(names), 10):
        form.parties.append_entry()
    for i, name in enumerate(names[:len(form.parties.entries)]):
        row = form.parties.entries[i].form
        row.name.data = name.strip()
        row.role.data = "applicant"
        if i == 0 and entry.phone:
            row.phone.data = entry.phone
    if entry.village_id:
        from app.orgs.models import OrgUnit
        village = session.get(OrgUnit, entry.village_id)
        form.village.data = village.code if village else None


@bp.route("/new", methods=["GET", "POST"])
def new():
    _require("cases.register")
    from app.reception.services import get_visible_entry
    form = IntakeForm()
    ctx = _intake_choices(form, current_user)
    entry_id = request.args.get("reception") or form.reception.data
    entry = get_visible_entry(current_user, int(entry_id)) if entry_id and str(entry_id).isdigit() else None
    if request.method == "GET":
        for row, role in zip(form.parties.entries, ("applicant", "respondent")):
            row.form.role.data = row.form.role.data or role
        if current_user.role in ("village_mediator", "grid_worker") and len(ctx["villages"]) == 1:
            form.village.data = ctx["villages"][0].code
            if current_user.org.level == "grid":
                form.grid.data = current_user.org.code
        if entry is not None:
            _prefill_from_reception(form, entry)
    errors, duplicates, status = {}, [], 200
    if form.validate_on_submit():
        try:
            intake = prepare_intake(current_user, form.intake_data())
            if form.confirm_duplicates.data != "1":
                duplicates = possible_duplicates(current_user, intake)
            if not duplicates:
                case = register_case(current_user, intake, reception_entry=entry)
                session.commit()
                flash(_("已登记，编号 %(number)s。", number=case.number), "success")
                return redirect(url_for("cases.detail", number=case.number))
            form.confirm_duplicates.data = "1"
        except ValidationFailed as exc:
            session.rollback()
            errors, status = form.apply_errors(exc.errors), 422
            if not errors:
                errors = {"_": _("提交的内容有误，请检查标红的栏目。")}
    elif request.method == "POST":
        errors, status = {"csrf": _("表单已过期，请重新提交。")}, 400
    return render_template("cases/new.html", form=form, entry=entry, errors=errors, duplicates=duplicates,
                           blank_party=PartyForm(prefix="parties-__INDEX__"), **ctx), status


def _detail_context(case, show_full: bool = False) -> dict:
    # the registrar, the lead mediator and the timeline's actors in one query (the sections
    # that name them later find them in the session)
    timeline = timeline_of(case)
    ids = {case.registered_by_id, case.lead_mediator_id, *[t.actor_id for t in timeline]} - {None}
    users = {u.id: u for u in session.scalars(users_by_id(), {"ids": sorted(ids)})} if ids else {}
    return {"case": case, "timeline": timeline, "show_full": show_full, "attachments": attachments_of(case),
            "users": users, "timeline_labels": TIMELINE_LABELS, "today": today_local(),
            "can_unmask": current_user.role in UNMASK_ROLES, "can_edit": can_edit_case(current_user, case),
            "can_upload": current_user.role not in READ_ONLY_ROLES and case.status != "archived"}


@bp.get("/<number>")
def detail(number: str):
    _require("cases.view")
    return render_template("cases/detail.html", **_detail_context(case_detail(current_user, number)))


@bp.route("/<number>/edit", methods=["GET", "POST"])
def edit(number: str):
    """修改案件信息.  The form carries the version it was loaded with; saving over a newer one
    raises ``StaleRecord`` (the 409 conflict page with both versions and the input kept)."""
    _require("cases.view")
    case = get_visible_case(current_user, number)
    if not can_edit_case(current_user, case):
        raise PermissionDenied("您不能修改该案件的信息（已归档的案件只读）。")
    form = CaseEditForm(data=case_field_values(case) | {"version": case.version}
                        if request.method == "GET" else None)
    sources = active_sources()
    types = [t.name for t in active_types()]
    form.source.choices = choices_after_blank(_("请选择"), sources + ([case.source] if case.source not in sources else []))
    form.type.choices = choices_after_blank(
        _("请选择"), types + ([case.dispute_type] if case.dispute_type not in types else []))
    errors, status = {}, 200
    if form.validate_on_submit():
        try:
            changes = update_case_details(current_user, case, form.values(), form.version.data)
        except ValidationFailed as exc:
            session.rollback()
            errors, status = form.apply_errors(exc.errors), 422
            errors = errors or ({"_": exc.message} if not exc.errors else errors)
        else:
            session.commit()
            flash(_("案件信息已保存。") if changes else _("没有修改任何内容。"), "success")
            return redirect(url_for("cases.detail", number=case.number))
    elif request.method == "POST":
        errors, status = {"csrf": _("表单已过期，请重新提交。")}, 400
    return render_template("cases/edit.html", form=form, case=case, errors=errors), status


@bp.post("/<number>/unmask")
def unmask(number: str):
    """显示完整信息: the page with ID numbers and phones in full, for roles allowed to; logged."""
    _require("cases.view")
    case = case_detail(current_user, number)
    if current_user.role not in UNMASK_ROLES:
        abort(403)
    form = AttachmentForm()  # CSRF check only
    if not form.validate_on_submit() and form.csrf_token.errors:
        abort(400)
    audit("case.unmask", "case", case.number, {"parties": [p.id for p in case.parties]})
    session.commit()
    return render_template("cases/detail.html", **_detail_context(case, show_full=True))


@bp.post("/<number>/attachments")
def upload_attachment(number: str):
    _require("cases.view")
    case = get_visible_case(current_user, number)
    form = AttachmentForm()
    if not form.validate_on_submit():
        abort(400)
    upload = request.files.get("file")
    try:
        add_attachment(current_user, case, upload.stream if upload else BytesIO(), upload.filename if upload else "")
    except ValidationFailed as exc:
        session.rollback()
        flash(next(iter(exc.errors.values()), exc.message), "danger")
        return redirect(url_for("cases.detail", number=number, _anchor="attachments"))
    session.commit()
    flash(_("附件已上传。"), "success")
    return redirect(url_for("cases.detail", number=number, _anchor="attachments"))


@bp.get("/<number>/attachments/<int:attachment_id>")
def attachment(number: str, attachment_id: int):
    _require("cases.view")
    att, path = open_attachment(current_user, number, attachment_id)
    resp: Response = send_file(path, mimetype=att.content_type, download_name=att.filename,
                               as_attachment=att.content_type == "application/pdf" and request.args.get("dl") == "1")
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
