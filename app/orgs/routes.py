"""The org tree page (role ``admin`` only): browse, add units and departments, rename, and
upload the CSV of PRODUCT.md §10."""
from __future__ import annotations

from collections import defaultdict

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.audit.services import audit
from app.db import session
from app.errors import NotFound, ValidationFailed, check_fingerprint, fingerprint
from app.i18n import N_
from app.orgs.models import LEVEL_LABELS, OrgUnit
from app.orgs.services import OrgImportError, add_unit, find_by_code, import_orgs_csv, rename_unit

bp = Blueprint("orgs", __name__, url_prefix="/admin/orgs")
# What may be added under a unit of each level (departments under a county or township).
CHILD_LEVELS = {"county": ("township", "department"), "township": ("village", "department"),
                "village": ("grid",), "grid": (), "department": ()}


@bp.before_request
def _admin_only():
    if not current_user.can("admin"):
        abort(403)


def _tree():
    """Every unit, and a parent id → children map (departments last, by code)."""
    units = list(session.scalars(select(OrgUnit).order_by(OrgUnit.level == "department", OrgUnit.code)))
    children = defaultdict(list)
    for unit in units:
        children[unit.parent_id].append(unit)
    return units, children


def _page(errors=None, problems=None, status=200):
    units, children = _tree()
    selected = find_by_code(request.values.get("unit", "")) if request.values.get("unit") else None
    if selected is None and children[None]:
        selected = children[None][0]
    open_ids = set()
    node = selected
    while node is not None:
        open_ids.add(node.id)
        node = node.parent
    counts = defaultdict(int)
    for unit in units:
        counts[unit.level] += 1
    return render_template("orgs/tree.html", roots=children[None], children=children, selected=selected,
                           open_ids=open_ids, child_levels=CHILD_LEVELS.get(selected.level, ()) if selected else (),
                           level_labels=LEVEL_LABELS, counts=counts, errors=errors or {},
                           problems=problems or []), status


@bp.get("/")
def tree():
    return _page()


@bp.post("/add")
def add():
    parent = find_by_code(request.form.get("parent", ""))
    if parent is None:
        raise NotFound(_("上级单位不存在。"))
    try:
        unit = add_unit(request.form.get("name", ""), request.form.get("level", ""), parent,
                        code=request.form.get("code", "").strip() or None,
                        department_kind=request.form.get("department_kind", "").strip() or None)
        audit("org.add", "org_unit", unit.id, {"code": unit.code, "name": unit.name, "level": unit.level,
                                               "parent": parent.code})
    except ValidationFailed as exc:
        session.rollback()
        return _page(errors=exc.errors, status=422)
    session.commit()
    flash(_("已添加 %(name)s（代码 %(code)s）。", name=unit.name, code=unit.code), "success")
    return redirect(url_for("orgs.tree", unit=unit.code))


@bp.app_context_processor
def _org_helpers():
    return {"org_fingerprint": lambda unit: fingerprint({N_("名称"): unit.name})}


@bp.post("/rename")
def rename():
    unit = find_by_code(request.form.get("unit", ""))
    if unit is None:
        raise NotFound(_("单位不存在。"))
    old = unit.name
    # Two admins renaming the same unit: a save over a changed name is the 409 conflict page.
    check_fingerprint(request.form.get("version"), {N_("名称"): unit.name}, {N_("名称"): request.form.get("name", "")},
                      record=unit.code, record_url=url_for("orgs.tree", unit=unit.code))
    try:
        rename_unit(unit, request.form.get("name", ""))
    except ValidationFailed as exc:
        session.rollback()
        return _page(errors=exc.errors, status=422)
    if old != unit.name:
        audit("org.rename", "org_unit", unit.id, {"code": unit.code, "from": old, "to": unit.name})
    session.commit()
    flash(_("已改名为 %(name)s。", name=unit.name), "success")
    return redirect(url_for("orgs.tree", unit=unit.code))


@bp.post("/import")
def import_csv():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(problems=[_("请选择要导入的 CSV 文件。")], status=422)
    try:
        text = upload.read().decode("utf-8")
    except UnicodeDecodeError:
        return _page(problems=[_("文件不是 UTF-8 编码。")], status=422)
    try:
        result = import_orgs_csv(text)
    except OrgImportError as exc:
        session.rollback()
        return _page(problems=exc.problems, status=422)
    audit("org.import", "org_unit", None, {"file": upload.filename[:100], "created": result.created,
                                           "updated": result.updated})
    session.commit()
    flash(_("导入完成：新增 %(c)s 个，更新 %(u)s 个。", c=result.created, u=result.updated), "success")
    return redirect(url_for("orgs.tree"))
