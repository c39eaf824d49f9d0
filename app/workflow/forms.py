"""Forms of the workflow pages: input shape only (the rules live in the services)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional


class ActionForm(FlaskForm):
    """The CSRF token of the action forms on the case panel; the fields are read by the service."""


class CalendarDayForm(FlaskForm):
    """One exception to the weekday calendar: a public holiday or a 调休 working weekend day."""

    day = DateField(_l("日期"), validators=[DataRequired(message=_l("请填写日期"))])
    kind = SelectField(_l("类型"), choices=[SelectChoice("holiday", _l("法定节假日（休息）")),
                                           SelectChoice("working", _l("调休上班日"))])
    name = StringField(_l("名称"), validators=[Optional(), Length(max=40)])
