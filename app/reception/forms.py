"""The reception-log entry form (来访登记): input shape only; rules in ``record_visit``."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from app.cases.vocab import RECEPTION_HANDLING


class ReceptionForm(FlaskForm):
    received_at = StringField(_l("来访时间"))
    visitor_names = StringField(_l("来访人"))
    headcount = StringField(_l("人数"), default="1")
    phone = StringField(_l("联系电话"))
    matter = TextAreaField(_l("来访事由"))
    handling = SelectField(_l("处理方式"), choices=[SelectChoice(k, v) for k, v in RECEPTION_HANDLING.items()], default="direct_answer",
                           validate_choice=False)
    department = SelectField(_l("转办部门"), choices=[], validate_choice=False)
    notes = TextAreaField(_l("备注"))

    def apply_errors(self, errors: dict[str, str]) -> dict[str, str]:
        rest = {}
        for key, message in errors.items():
            field = getattr(self, key, None)
            if field is not None and hasattr(field, "errors"):
                field.errors = list(field.errors or []) + [message]
            else:
                rest[key] = message
        return rest
