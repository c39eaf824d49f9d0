"""The reception desk (来访登记): the centre's log with its counts, and the new-entry form.
登记为纠纷 saves the visit and opens the registration form pre-filled; the case saved there is
linked back to the entry."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.cases.forms import choices_after_blank
from app.cases.models import Case
from app.cases.queries import scope_cases
from app.cases.vocab import RECEPTION_HANDLING
from app.db import session
from app.errors import ValidationFailed
from app.reception.forms import ReceptionForm
from app.reception.services import (ReceptionFilters, departments_for, list_entries, reception_counts,
                                    record_visit)
from app.templating import SHANGHAI, today_local

bp = Blueprint("reception", __name__, url_prefix="/reception")


def _form() -> ReceptionForm:
    form = ReceptionForm()
    form.department.choices = choices_after_blank(
        _("请选择"), [(str(d.id), d.name) for d in departments_for(current_user)])
    return form


def _page(form: ReceptionForm, errors: dict, status: int = 200):
    filters = ReceptionFilters.from_args(request.args)
    entries, next_before = list_entries(current_user, filters, request.args.get("before", type=int))
    # Only the linked cases the user may see get a number and a link (one scoping function).
    linked = [e.case_id for e in entries if e.case_id]
    case_numbers = dict(session.execute(scope_cases(current_user, select(Case.id, Case.number))
                                        .where(Case.id.in_(linked))).all()) if linked else {}
    departments = {int(c.value): c.label for c in form.department.choices if c.value}
    return render_template("reception/index.html", form=form, errors=errors, entries=entries,
                           next_before=next_before, filters=filters, args=filters.as_args(),
                           counts=reception_counts(current_user), handling_labels=RECEPTION_HANDLING,
                           case_numbers=case_numbers, departments=departments, today=today_local()), status


@bp.get("/")
def index():
    if not current_user.can("reception"):
        abort(403)
    form = _form()
    form.received_at.data = datetime.now(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
    return _page(form, {})


@bp.post("/")
def create():
    if not current_user.can("reception"):
        abort(403)
    form = _form()
    if not form.validate_on_submit():
        return _page(form, {"csrf": _("表单已过期，请重新提交。")}, 400)
    try:
        entry = record_visit(current_user, form.data)
    except ValidationFailed as exc:
        session.rollback()
        rest = form.apply_errors(exc.errors)
        return _page(form, rest or {"_": _("提交的内容有误，请检查标红的栏目。")}, 422)
    session.commit()
    if entry.handling == "registered":
        flash(_("来访已登记，请继续填写纠纷登记表。"), "info")
        return redirect(url_for("cases.new", reception=entry.id))
    flash(_("来访已登记。"), "success")
    return redirect(url_for("reception.index"))
