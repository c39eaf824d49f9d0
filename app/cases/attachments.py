"""Attachments (photos and scans) of a case: images and PDF only, size-limited, the content
checked by its magic bytes (not the browser's claim), stored under ``UPLOAD_DIR`` (outside
``static/``) with a random key, and read back only through ``open_attachment``, which goes
through the jurisdiction scope."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from app.accounts.models import User
from app.audit.services import audit
from app.cases.models import Attachment, Case, TimelineEntry
from app.cases.queries import get_visible_case
from app.db import session
from app.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed

MAX_BYTES_DEFAULT = 10 * 1024 * 1024
READ_ONLY_ROLES = frozenset({"county_leader", "admin"})

# (magic prefix, content type, extension)
SIGNATURES = [
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"%PDF-", "application/pdf", ".pdf"),
]


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the first bytes, or None for anything not allowed."""
    for magic, ctype, ext in SIGNATURES:
        if head.startswith(magic):
            return ctype, ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", ".webp"
    return None


def upload_dir() -> Path:
    path = Path(current_app.config["UPLOAD_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe_filename(name: str) -> str:
    name = os.path.basename((name or "").replace("\\", "/")).strip() or "附件"
    return "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*')[:200] or "附件"


def add_attachment(user: User, case: Case, stream, filename: str) -> Attachment:
    """Store an uploaded file for a case the user may see and act on (not an archived one:
    read-only); flushes."""
    if user.role in READ_ONLY_ROLES:
        raise PermissionDenied("您的角色不能上传附件。")
    if case.status == "archived":
        raise InvalidTransition("案件已归档，只能查阅，不能上传附件。")
    limit = current_app.config.get("ATTACHMENT_MAX_BYTES", MAX_BYTES_DEFAULT)
    data = stream.read(limit + 1)
    if not data:
        raise ValidationFailed(errors={"file": "请选择要上传的文件。"})
    if len(data) > limit:
        raise ValidationFailed(errors={"file": f"文件过大：最大 {limit // (1024 * 1024)} MB。"})
    kind = sniff(data[:16])
    if kind is None:
        raise ValidationFailed(errors={"file": "只能上传图片（JPG、PNG、GIF、WEBP）或 PDF 文件。"})
    ctype, ext = kind
    key = secrets.token_hex(16) + ext
    (upload_dir() / key).write_bytes(data)
    att = Attachment(case_id=case.id, filename=_safe_filename(filename), content_type=ctype, size=len(data),
                     storage_key=key, uploaded_by_id=user.id)
    session.add(att)
    session.add(TimelineEntry(case_id=case.id, actor_id=user.id, actor_name=user.display_name,
                              action="attachment", note=f"上传附件：{att.filename}"))
    session.flush()
    audit("case.attachment.add", "case", case.number, {"attachment": att.id, "filename": att.filename}, user=user)
    return att


def open_attachment(user: User, number: str, attachment_id: int) -> tuple[Attachment, Path]:
    """The attachment and its file path, if the user may see the case; ``NotFound`` otherwise."""
    case = get_visible_case(user, number)
    att = session.scalar(select(Attachment).where(Attachment.id == attachment_id, Attachment.case_id == case.id))
    if att is None:
        raise NotFound()
    path = upload_dir() / att.storage_key
    if not path.is_file():
        raise NotFound("附件文件已丢失，请联系管理员。")
    # Every download is audited (issue 9: reads of personal data leave a trace).
    audit("case.attachment.download", "case", case.number, {"attachment": att.id, "filename": att.filename},
          user=user)
    session.commit()
    return att, path
