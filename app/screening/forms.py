"""Screening forms: input shape only; rules live in ``app.screening.services``.

Found disputes are repeated rows named ``findings-N-field`` (type, summary, party_name,
party_phone, party_id_number, other_party, people_involved), read by ``finding_rows``.
"""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional as Opt
from wtforms.widgets import CheckboxInput, ListWidget

from app.screening.services import PARTICIPANT_KINDS

FINDING_FIELDS = ("type", "summary", "party_name", "party_phone", "party_id_number", "other_party",
                  "people_involved")


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SweepForm(FlaskForm):
    swept_on = DateField(_l("排查日期"), validators=[Opt()])
    participants = MultiCheckboxField(_l("参加人员"), choices=[SelectChoice(p) for p in PARTICIPANT_KINDS],
                                      validate_choice=False)
    participants_other = StringField(_l("其他参加人员或部门"))
    households_visited = StringField(_l("走访户数"))
    nil_report = BooleanField(_l("零报告（本期未发现矛盾纠纷）"))
    notes = TextAreaField(_l("排查情况说明"))

    def apply_errors(self, errors: dict[str, str]) -> dict[str, str]:
        rest = {}
        for key, message in errors.items():
            field = getattr(self, key, None)
            if field is not None and hasattr(field, "errors"):
                field.errors = list(field.errors or []) + [message]
            else:
                rest[key] = message
        return rest


class CriminalFlagForm(FlaskForm):
    kind = HiddenField()
    on = DateField(_l("日期"), validators=[Opt()])
    ref = StringField(_l("公安机关案件编号"))
    note = StringField(_l("说明"))


def finding_rows(form_data) -> list[dict[str, str]]:
    """The ``findings-N-field`` rows of a submitted form, in N order, blank rows included."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in form_data.items():
        m = re.fullmatch(r"findings-(\d+)-(\w+)", key)
        if m and m.group(2) in FINDING_FIELDS and int(m.group(1)) < 50:
            rows.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return [rows[n] for n in sorted(rows)]
