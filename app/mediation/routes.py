"""Pages of joint mediation (联调清仓): the roster, session / agreement / close-out / follow-up /
judicial-confirmation / mediator forms of a case, archive, the printable documents (§8), the
follow-up due list and the 清仓 backlog.  Routes stay thin: load through ``get_visible_case``,
call one service, commit once; a refusal rolls back and re-renders with the messages."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.models import User
from app.accounts.roles import UNMASK_ROLES
from app.audit.services import audit
from app.cases.models import Case
from app.cases.queries import get_visible_case, townships_in_jurisdiction
from app.cases.services import MEDIATOR_ROLES, check_version, departments_for, users_for_picker
from app.cases.vocab import LEVELS, RISK_LEVELS
from app.db import session
from app.errors import DomainError, InvalidTransition, PermissionDenied, StaleRecord, ValidationFailed
from app.mediation import documents, queries, services
from app.mediation import todos  # noqa: F401  (registers the 司法确认 reminder)
from app.mediation.models import CHANGE_KINDS, CONFIRMATION_RESULTS, ROSTER_KINDS, RosterMember
from app.templating import case_link, today_local

bp = Blueprint("mediation", __name__, url_prefix="/mediation")

MULTI = ("user_ids", "department_ids", "roster_ids", "party_ids", "referral_paths")


def _require(capability: str) -> None:
    if not current_user.can(capability):
        raise PermissionDenied()


def _data() -> dict:
    data = {k: v for k, v in request.form.items() if k != "csrf_token"}
    for name in MULTI:
        if name in request.form:
            data[name] = [v for v in request.form.getlist(name) if v]
    return data


@bp.app_context_processor
def _section_helpers():
    return {"mediation_case_context": case_section_context, "mediation_full_forms": full_form_links}


def full_form_links(case: Case) -> list[tuple[str, str]]:
    """(action, url) of the full mediation forms the current user may open on ``case``: the
    workflow panel links to them instead of offering a bare quick form."""
    return [(name, case_link(endpoint, case.number))
            for name, endpoint in services.full_form_actions(current_user, case)]


def case_section_context(case: Case) -> dict:
    """What templates/mediation/_case_section.html shows on the case page."""
    ctx = queries.case_records(case)
    lead = session.get(User, case.lead_mediator_id) if case.lead_mediator_id else None
    ctx["lead_conflict"] = (services.conflict_reason(case, lead.display_name, lead.phone)
                            if lead is not None and case.is_open else None)
    ctx["lead"] = lead
    agreement = ctx["agreement"]
    writable = case.status != "archived" and current_user.role in MEDIATOR_ROLES | {"grid_worker"}
    is_mediator = current_user.role in MEDIATOR_ROLES
    # the roster suggestions are shown only to a mediator who may write here: not read for others
    # (a supervisor's or a leader's case page runs one statement fewer)
    can_write = writable and is_mediator
    suggest = can_write and case.status in ("pending_triage", "in_mediation")
    ctx.update(missing=services.completeness(case, ctx) if case.status == "closed" else [],
               confirmation_deadline=queries.confirmation_deadline(
                   case, (agreement.agreed_on if agreement is not None else None) or case.closed_on),
               suggestions=queries.suggestions(case, 5) if suggest else [],
               writable=writable, is_mediator=is_mediator, can_write=can_write, doc_kinds=documents.KINDS,
               change_kinds=CHANGE_KINDS, confirmation_results=CONFIRMATION_RESULTS)
    return ctx


def _picker_context(case: Case) -> dict:
    return {"mediators": users_for_picker(case, sorted(MEDIATOR_ROLES)), "departments": departments_for(case),
            "roster": queries.roster_for_case(case), "suggestions": queries.suggestions(case),
            "roster_kinds": ROSTER_KINDS}


def _form_page(number: str, template: str, service, success: str, extra=None):
    """GET shows the form; POST runs ``service`` and goes back to the case, or re-renders (422/409)."""
    _require("cases.view")
    case = get_visible_case(current_user, number)
    values, errors, status = {}, {}, 200
    if request.method == "POST":
        values = _data()
        # A save over a newer version is a conflict before anything else (409 page with both
        # versions); so a form re-rendered for bad input still carries the version it was loaded with.
        check_version(case, values.get("version"))
        try:
            service(current_user, case, values)
        except ValidationFailed as exc:
            session.rollback()
            errors, status = exc.errors or {"_": exc.message}, 422
        except InvalidTransition as exc:  # StaleRecord goes on to the 409 conflict page
            session.rollback()
            errors, status = {"_": exc.message}, 409
        else:
            session.commit()
            flash(success, "success")
            return redirect(url_for("cases.detail", number=case.number, _anchor="mediation"))
        case = get_visible_case(current_user, number)
    ctx = {"case": case, "values": values, "errors": errors, "today": today_local()}
    if extra:
        ctx.update(extra(case))
    return render_template(template, **ctx), status


@bp.route("/cases/<number>/session", methods=["GET", "POST"])
def session_form(number):
    return _form_page(number, "mediation/session_form.html", services.record_session, _("调解记录已保存。"),
                      _picker_context)


@bp.route("/cases/<number>/invite", methods=["GET", "POST"])
def invite(number):
    return _form_page(number, "mediation/invite_form.html", services.invite_department,
                      _("已邀请部门参加联调，部门联络员将在待办中看到。"), _picker_context)


@bp.route("/cases/<number>/agreement", methods=["GET", "POST"])
def agreement_form(number):
    return _form_page(number, "mediation/agreement_form.html", services.agree, _("已登记调解协议，案件办结。"),
                      lambda c: {"rows": range(5)})


@bp.route("/cases/<number>/terminate", methods=["GET", "POST"])
def terminate(number):
    return _form_page(number, "mediation/terminate_form.html", services.terminate, _("已终止调解并记录告知途径。"))


@bp.route("/cases/<number>/withdraw", methods=["GET", "POST"])
def withdraw(number):
    return _form_page(number, "mediation/withdraw_form.html", services.withdraw, _("已登记撤回。"))


@bp.route("/cases/<number>/mediator", methods=["GET", "POST"])
def mediator(number):
    return _form_page(number, "mediation/mediator_form.html", services.change_mediator, _("已登记调解员变更。"),
                      _picker_context)


@bp.route("/cases/<number>/follow-up", methods=["GET", "POST"])
def follow_up(number):
    return _form_page(number, "mediation/follow_up_form.html", services.follow_up, _("回访已记录。"))


@bp.route("/cases/<number>/confirmation", methods=["GET", "POST"])
def confirmation(number):
    return _form_page(number, "mediation/confirmation_form.html", services.confirm_judicially,
                      _("司法确认情况已记录。"),
                      lambda c: {"deadline": queries.confirmation_deadline(c), "results": CONFIRMATION_RESULTS,
                                 "recorded": queries.recorded_confirmation(c)})


@bp.post("/cases/<number>/archive")
def archive(number):
    _require("cases.view")
    case = get_visible_case(current_user, number)
    try:
        services.archive(current_user, case, _data())
    except (StaleRecord, PermissionDenied):
        raise  # the 409 conflict page; a role that may not archive is refused (403)
    except DomainError as exc:
        session.rollback()
        flash(exc.errors.get("archive") if exc.errors.get("archive") else exc.message, "danger")
        return redirect(url_for("cases.detail", number=number, _anchor="mediation"))
    session.commit()
    flash(_("已归档，案件只读。"), "success")
    return redirect(url_for("cases.detail", number=number, _anchor="mediation"))


# ---------------------------------------------------------------------------------------------
# Documents

@bp.get("/cases/<number>/documents/<kind>")
def document(number, kind):
    _require("cases.view")
    case = get_visible_case(current_user, number)
    if kind not in documents.KINDS:
        abort(404)
    unmasked = current_user.role in UNMASK_ROLES
    ctx = documents.context(case, kind, unmasked=unmasked, session_id=request.args.get("session", type=int))
    audit("case.document", "case", case.number, {"kind": kind, "unmasked": unmasked})
    session.commit()
    return render_template(f"mediation/doc_{kind}.html", **ctx)


# ---------------------------------------------------------------------------------------------
# Lists

@bp.get("/follow-ups")
def follow_ups():
    _require("cases.view")
    return render_template("mediation/follow_ups.html", cases=queries.follow_ups_due(current_user),
                           confirmations=queries.confirmations_due(current_user), today=today_local())


@bp.get("/backlog")
def backlog():
    _require("cases.view")
    as_of = today_local()
    if request.args.get("as_of"):
        try:
            as_of = date.fromisoformat(request.args["as_of"])
        except ValueError:
            flash(_("日期格式应为 YYYY-MM-DD"), "danger")
    filters = {k: request.args.get(k, "") for k in ("township", "level", "risk", "bucket", "overdue")}
    if filters["township"] and not filters["township"].isdigit():
        filters["township"] = ""
    data = queries.backlog(current_user, as_of, filters)
    return render_template("mediation/backlog.html", b=data, filters=filters, buckets=queries.BUCKETS,
                           levels=LEVELS, risks=RISK_LEVELS, townships=townships_in_jurisdiction(current_user),
                           today=today_local())


# ---------------------------------------------------------------------------------------------
# Roster

@bp.route("/roster", methods=["GET", "POST"])
def roster():
    _require("cases.view")
    orgs = queries.roster_orgs(current_user)
    values, errors, status = {}, {}, 200
    can_edit = current_user.can("roster") or current_user.role == "village_mediator"
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied()
        values = _data()
        try:
            services.add_roster_member(current_user, values, orgs)
        except ValidationFailed as exc:
            session.rollback()
            errors, status = exc.errors, 422
        else:
            session.commit()
            flash(_("已加入调解力量库。"), "success")
            return redirect(url_for("mediation.roster"))
    org_id = request.args.get("org", type=int)
    return render_template("mediation/roster.html", rows=queries.roster(current_user, org_id), orgs=orgs,
                           org_id=org_id, kinds=ROSTER_KINDS, values=values, errors=errors,
                           can_edit=can_edit), status


@bp.post("/roster/<int:member_id>/deactivate")
def roster_deactivate(member_id):
    _require("cases.view")
    if not (current_user.can("roster") or current_user.role == "village_mediator"):
        raise PermissionDenied()
    member = session.get(RosterMember, member_id)
    if member is None or member.org_id not in {o.id for o in queries.roster_orgs(current_user)}:
        abort(404)
    services.deactivate_roster_member(current_user, member)
    session.commit()
    flash(_("已移出调解力量库。"), "success")
    return redirect(url_for("mediation.roster"))
