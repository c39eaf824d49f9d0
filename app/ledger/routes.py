"""The ledger page: upload with preview and confirm, export, template download (PRODUCT.md §7)."""
from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.roles import UNMASK_ROLES
from app.cases.queries import org_in_jurisdiction
from app.db import session
from app.ledger.forms import ConfirmForm, ExportForm, UploadForm
from app.orgs.services import find_by_code

bp = Blueprint("ledger", __name__, url_prefix="/ledger")
MAX_BYTES = 20 * 1024 * 1024
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _require(capability: str) -> None:
    if not current_user.is_authenticated or not current_user.can(capability):
        abort(403)


PREVIEW_HOURS = 24  # an upload previewed but never confirmed is deleted after this


def _upload_dir() -> Path:
    """Previewed uploads wait here for their confirmation.  Under ``UPLOAD_DIR``, the path every
    app host shares (deploy/README.md), so the confirm may reach another host than the preview."""
    path = Path(current_app.config["UPLOAD_DIR"]) / "ledger_previews"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _drop_stale_previews() -> None:
    cutoff = time.time() - PREVIEW_HOURS * 3600
    for stale in _upload_dir().iterdir():
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
        except OSError:  # another host removed it first
            pass


def _stored(token: str) -> Path:
    if not TOKEN_RE.match(token or ""):
        abort(404)
    path = _upload_dir() / f"{token}.xlsx"
    if not path.is_file():
        abort(404)
    return path


def _page(upload=None, confirm=None, report=None, export=None, status=200):
    return render_template("ledger/index.html", upload=upload or UploadForm(), confirm=confirm, report=report,
                           export=export or _export_form(), can_export=current_user.can("ledger.export"),
                           can_unmask=current_user.role in UNMASK_ROLES), status


def _export_form():
    form = ExportForm()
    if not form.org.data and current_user.org is not None:
        form.org.data = current_user.org.code
    return form


@bp.get("/")
def index():
    _require("ledger.import")
    return _page()


@bp.post("/preview")
def preview():
    _require("ledger.import")
    form = UploadForm()
    if not form.validate_on_submit():
        return _page(upload=form, status=422)
    data = form.file.data.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        form.file.errors.append(_("文件超过 20 MB"))
        return _page(upload=form, status=422)
    if not data.startswith(b"PK\x03\x04") or not (form.file.data.filename or "").lower().endswith(".xlsx"):
        form.file.errors.append(_("只接受 .xlsx 格式的 Excel 文件"))
        return _page(upload=form, status=422)
    import io
    from app.ledger.importer import import_ledger
    filename = Path(form.file.data.filename).name
    try:
        report = import_ledger(io.BytesIO(data), filename, dry_run=True, user=current_user)
    except Exception:  # a damaged workbook
        session.rollback()
        form.file.errors.append(_("无法读取该文件，请确认是 Excel (.xlsx) 台账"))
        return _page(upload=form, status=422)
    session.rollback()
    confirm = None
    if report.ok:
        token = secrets.token_urlsafe(24)
        _drop_stale_previews()
        (_upload_dir() / f"{token}.xlsx").write_bytes(data)
        (_upload_dir() / f"{token}.name").write_text(filename, encoding="utf-8")
        confirm = ConfirmForm(token=token)
    return _page(report=report, confirm=confirm, status=200 if report.ok else 422)


@bp.post("/confirm")
def confirm():
    _require("ledger.import")
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    path = _stored(form.token.data)
    name_file = path.with_suffix(".name")
    filename = name_file.read_text(encoding="utf-8") if name_file.exists() else path.name
    from app.ledger.importer import import_ledger
    with open(path, "rb") as fh:
        report = import_ledger(fh, filename, user=current_user)
    if not report.ok:
        session.rollback()
        return _page(report=report, status=422)
    session.commit()  # the importer wrote its own ledger.import audit record
    path.unlink(missing_ok=True)
    name_file.unlink(missing_ok=True)
    flash(report.summary(), "success")
    return redirect(url_for("ledger.index"))


@bp.post("/export")
def export():
    _require("ledger.export")
    form = ExportForm()
    if not form.validate_on_submit():
        return _page(export=form, status=422)
    org = find_by_code(form.org.data.strip())
    if org is None or org.level not in ("county", "township", "village") or not org_in_jurisdiction(current_user, org):
        form.org.errors.append(_("单位不存在或不在您的管辖范围内"))
        return _page(export=form, status=422)
    unmasked = bool(form.unmasked.data)
    if unmasked and current_user.role not in UNMASK_ROLES:
        abort(403)
    import io
    from app.ledger.exporter import export_ledger
    buf = io.BytesIO()
    count = export_ledger(buf, org, form.date_from.data, form.date_to.data, unmasked=unmasked)
    from app.audit.services import audit
    audit("ledger.export_unmasked" if unmasked else "ledger.export", "org_unit", org.id,
          detail={"from": str(form.date_from.data or ""), "to": str(form.date_to.data or ""), "cases": count})
    session.commit()
    buf.seek(0)
    return send_file(buf, as_attachment=True, download_name=f"台账_{org.name}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.get("/template.xlsx")
def template():
    _require("ledger.import")
    from app.ledger.template import build_template
    return send_file(build_template(), as_attachment=True, download_name="台账模板.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
