"""Forms of the ledger page."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, HiddenField, StringField
from wtforms.validators import DataRequired, Optional


class UploadForm(FlaskForm):
    file = FileField(_l("台账文件（.xlsx）"), validators=[FileRequired(_l("请选择文件"))])


class ConfirmForm(FlaskForm):
    token = HiddenField(validators=[DataRequired()])


class ExportForm(FlaskForm):
    org = StringField(_l("单位代码"), validators=[DataRequired(_l("请填写单位代码"))])
    date_from = DateField(_l("登记日期自"), validators=[Optional()])
    date_to = DateField(_l("至"), validators=[Optional()])
    unmasked = BooleanField(_l("显示完整电话号码（将记入审计日志）"))
