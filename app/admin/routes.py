"""Admin pages (role ``admin`` only): users and the settings hub.  Every change is audited
by the service it calls; each route commits once."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select

from app.accounts import services as accounts
from app.accounts.models import User
from app.accounts.roles import ROLES
from app.admin import services
from app.admin.forms import ResetPasswordForm, UserForm
from app.db import session
from app.errors import NotFound, ValidationFailed, check_fingerprint, fingerprint
from app.i18n import N_
from app.orgs.models import OrgUnit
from app.orgs.services import find_by_code

bp = Blueprint("admin", __name__, url_prefix="/admin")
USERS_PAGE_SIZE = 200
# Sub-pages other features may add; linked from the hub only when this build has them.
SETTINGS_LINKS = [("workflow.calendar", N_("节假日日历"), N_("按工作日计算期限时使用的法定节假日与调休"), "bi-calendar3"),
                  ("workflow.routing", N_("分流建议"), N_("纠纷类型到承办部门的默认分流"), "bi-signpost-split"),
                  ("audit.index", N_("审计日志"), N_("登录、修改与导出的全部记录"), "bi-shield-check")]


@bp.before_request
def _admin_only():
    if not current_user.can("admin"):
        abort(403)


def _user_or_404(user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    return user


def _org_units():
    """Every unit except grids, for the org picker (grids are typed by code)."""
    return list(session.scalars(select(OrgUnit).where(OrgUnit.level != "grid").order_by(OrgUnit.code)))


# ---- users ---------------------------------------------------------------------------------

@bp.get("/users")
def users():
    q = request.args.get("q", "").strip()
    role = request.args.get("role", "")
    org_code = request.args.get("org", "").strip()
    state = request.args.get("state", "active")
    stmt = select(User).join(User.org)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(User.username.ilike(like), User.display_name.ilike(like), User.phone.ilike(like)))
    if role in ROLES:
        stmt = stmt.where(User.role == role)
    if org_code:
        org = find_by_code(org_code)
        stmt = stmt.where(or_(OrgUnit.code == org_code, OrgUnit.parent_id == (org.id if org else -1),
                              OrgUnit.township_id == (org.id if org and org.level == "township" else -1)))
    if state in ("active", "inactive"):
        stmt = stmt.where(User.active.is_(state == "active"))
    rows = list(session.scalars(stmt.order_by(OrgUnit.code, User.username).limit(USERS_PAGE_SIZE + 1)))
    return render_template("admin/users.html", users=rows[:USERS_PAGE_SIZE], more=len(rows) > USERS_PAGE_SIZE,
                           roles=ROLES, filters={"q": q, "role": role, "org": org_code, "state": state},
                           org_units=_org_units())


@bp.route("/users/new", methods=["GET", "POST"])
def new_user():
    form = UserForm(creating=True)
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            user = accounts.create_user(form.username.data.strip(), form.display_name.data, form.role.data,
                                        find_by_code(form.org_code.data.strip()), form.password.data,
                                        (form.phone.data or "").strip() or None)
        except ValidationFailed as exc:
            session.rollback()
            errors = exc.errors
        else:
            session.commit()
            flash(_("已创建用户 %(name)s。", name=user.username), "success")
            return redirect(url_for("admin.edit_user", user_id=user.id))
    status = 422 if errors or form.errors else 200
    return render_template("admin/user_form.html", form=form, errors=errors, user=None,
                           org_units=_org_units()), status


def _user_fields(display_name, role, org_code, phone) -> dict:
    """The fields of the user form, labelled, as the conflict check and page compare them."""
    return {N_("姓名"): (display_name or "").strip(), N_("角色"): ROLES.get(role, role or ""),
            N_("所属单位代码"): (org_code or "").strip(), N_("联系电话"): (phone or "").strip()}


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def edit_user(user_id: int):
    user = _user_or_404(user_id)
    form = UserForm(creating=False, obj=user, data=None if request.method == "POST" else {"org_code": user.org.code})
    if request.method == "GET":
        form.version.data = fingerprint(_user_fields(user.display_name, user.role, user.org.code, user.phone))
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        # Two admins editing the same user: a save over changed values is the 409 conflict page.
        check_fingerprint(form.version.data, _user_fields(user.display_name, user.role, user.org.code, user.phone),
                          _user_fields(form.display_name.data, form.role.data, form.org_code.data, form.phone.data),
                          record=user.username, record_url=url_for("admin.edit_user", user_id=user.id))
        try:
            accounts.update_user(user, form.display_name.data, form.role.data,
                                 find_by_code(form.org_code.data.strip()), (form.phone.data or "").strip() or None,
                                 user.active)
        except ValidationFailed as exc:
            session.rollback()
            errors = exc.errors
        else:
            session.commit()
            flash(_("已保存。"), "success")
            return redirect(url_for("admin.edit_user", user_id=user.id))
    status = 422 if errors or form.errors else 200
    return render_template("admin/user_form.html", form=form, errors=errors, user=user,
                           reset_form=ResetPasswordForm(formdata=None), org_units=_org_units(),
                           tokens=accounts.tokens_of(user)), status


@bp.post("/users/<int:user_id>/active")
def set_user_active(user_id: int):
    user = _user_or_404(user_id)
    active = request.form.get("active") == "1"
    if not active and user.id == current_user.id:
        flash(_("不能停用自己的账号。"), "danger")
        return redirect(url_for("admin.edit_user", user_id=user.id))
    accounts.set_active(user, active)
    session.commit()
    flash(_("账号已启用。") if active else _("账号已停用，其登录已全部失效。"), "success")
    return redirect(url_for("admin.edit_user", user_id=user.id))


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id: int):
    user = _user_or_404(user_id)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.set_password(user, form.new_password.data, by_admin=True)
        except ValidationFailed as exc:
            session.rollback()
            flash(exc.errors["password"], "danger")
        else:
            session.commit()
            flash(_("密码已重置，用户下次登录后须修改密码。"), "success")
    else:
        flash(_("请输入新密码。"), "danger")
    return redirect(url_for("admin.edit_user", user_id=user.id))


@bp.post("/users/<int:user_id>/sessions")
def end_sessions(user_id: int):
    user = _user_or_404(user_id)
    accounts.end_sessions(user)
    session.commit()
    flash(_("已结束该用户的全部登录会话。"), "success")
    return redirect(url_for("admin.edit_user", user_id=user.id))


@bp.post("/users/<int:user_id>/tokens/<int:token_id>/revoke")
def revoke_token(user_id: int, token_id: int):
    user = _user_or_404(user_id)
    if accounts.revoke_token(token_id, user):
        session.commit()
        flash(_("令牌已吊销，使用它的接口调用将被拒绝。"), "success")
    else:
        flash(_("该令牌不存在或已吊销。"), "warning")
    return redirect(url_for("admin.edit_user", user_id=user.id, _anchor="tokens"))


# ---- settings ------------------------------------------------------------------------------

@bp.get("/settings")
def settings():
    return _settings_page()


def _settings_page(errors: dict[str, str] | None = None, status: int = 200):
    lists = {kind: services.vocabulary(kind) for kind in services.VOCABULARIES}
    links = [link for link in SETTINGS_LINKS if link[0] in current_app.view_functions]
    return render_template("admin/settings.html", lists=lists, titles=services.VOCABULARY_TITLES,
                           suggests=services.RISK_SUGGESTS, deadlines=services.DEADLINE_SETTINGS,
                           numbers=services.NUMBER_SETTINGS, units=services.DAY_UNITS,
                           values=services.deadline_values(), links=links, errors=errors or {},
                           deadlines_version=(request.form.get("version") if request.endpoint == "admin.deadlines" else None)
                           or services.deadlines_version()), status


@bp.post("/settings/<kind>")
def add_entry(kind: str):
    try:
        services.add_vocabulary_entry(kind, request.form.get("name"), request.form.get("parent_id", type=int),
                                      request.form.get("suggests"))
    except ValidationFailed as exc:
        session.rollback()
        return _settings_page({f"{kind}.{k}": v for k, v in exc.errors.items()}, 422)
    session.commit()
    flash(_("已添加。"), "success")
    return redirect(url_for("admin.settings", _anchor=kind))


@bp.post("/settings/<kind>/<int:entry_id>")
def change_entry(kind: str, entry_id: int):
    try:
        version = request.form.get("version")  # a stale one is the 409 conflict page
        if "active" in request.form:
            services.set_vocabulary_active(kind, entry_id, request.form["active"] == "1", version)
        else:
            services.rename_vocabulary_entry(kind, entry_id, request.form.get("name"), version)
    except ValidationFailed as exc:
        session.rollback()
        return _settings_page({f"{kind}.{k}": v for k, v in exc.errors.items()}, 422)
    session.commit()
    flash(_("已保存。"), "success")
    return redirect(url_for("admin.settings", _anchor=kind))


@bp.post("/settings/deadlines")
def deadlines():
    try:
        changed = services.update_deadlines(request.form)
    except ValidationFailed as exc:
        session.rollback()
        return _settings_page(exc.errors, 422)
    session.commit()
    flash(_("期限设置已保存。") if changed else _("期限设置没有变化。"), "success")
    return redirect(url_for("admin.settings", _anchor="deadlines"))
