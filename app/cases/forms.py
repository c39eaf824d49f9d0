"""Forms of the registration page and the case page: input shape only.  Every rule (ID
checksum, phones, dates, jurisdiction) is checked by ``app.cases.intake.prepare_intake`` and
its per-field messages are put back on these fields (``apply_errors``)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import FieldList, Form, FormField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from app.cases import vocab

MIN_PARTY_ROWS = 2


def _choices(vocabulary: dict[str, str], blank: str | None = None) -> list[SelectChoice]:
    """Select choices with labels translated when the form is shown (lazy: built at import)."""
    out = [SelectChoice("", _l(blank))] if blank is not None else []
    return out + [SelectChoice(code, _l(text)) for code, text in vocabulary.items()]


def choices_after_blank(blank: str, items) -> list[SelectChoice]:
    """A select's choices filled at request time: an empty first option labelled ``blank``
    (请选择, （不指定）), then ``items``, each a value (its own label) or a (value, label) pair."""
    return [SelectChoice("", blank)] + [SelectChoice(*item) if isinstance(item, tuple) else SelectChoice(item)
                                        for item in items]


class PartyForm(Form):
    """One party row (当事人)."""

    kind = SelectField(_l("类别"), choices=_choices(vocab.PARTY_KINDS), default="person", validate_choice=False)
    role = SelectField(_l("角色"), choices=_choices(vocab.PARTY_ROLES, "请选择"), validate_choice=False)
    name = StringField(_l("姓名/单位名称"))
    gender = SelectField(_l("性别"), choices=_choices(vocab.GENDERS, "—"), validate_choice=False)
    id_type = SelectField(_l("证件类型"), choices=_choices(vocab.ID_TYPES), default="resident_id", validate_choice=False)
    id_number = StringField(_l("证件号码"))
    phone = StringField(_l("联系电话"))
    address = StringField(_l("住址"))
    agent = StringField(_l("代理人"))


class IntakeForm(FlaskForm):
    """The registration form (登记纠纷); choices are filled from settings and jurisdiction."""

    source = SelectField(_l("纠纷来源"), choices=[], validate_choice=False)
    type = SelectField(_l("纠纷类型"), choices=[], validate_choice=False)
    village = SelectField(_l("发生地（村/社区）"), choices=[], validate_choice=False)
    grid = SelectField(_l("网格"), choices=[], validate_choice=False)
    occurred_on = StringField(_l("纠纷发生日期"))
    people_involved = StringField(_l("涉及人数"))
    amount = StringField(_l("涉及金额（元）"))
    summary = TextAreaField(_l("纠纷简要情况"))
    claims = TextAreaField(_l("主要诉求"))
    parties = FieldList(FormField(PartyForm), min_entries=MIN_PARTY_ROWS, max_entries=50)
    reception = HiddenField()
    confirm_duplicates = HiddenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("source", "type", "village", "summary"):  # the asterisk; the service checks
            self[name].flags.required = True
        self.amount.render_kw = {"inputmode": "decimal", "placeholder": "0"}
        self.people_involved.render_kw = {"min": "1"}

    def intake_data(self) -> dict:
        """The body ``prepare_intake`` takes (the API's intake shape)."""
        return {
            "source": self.source.data, "type": self.type.data, "village": self.village.data,
            "grid": self.grid.data, "summary": self.summary.data, "claims": self.claims.data,
            "people_involved": self.people_involved.data, "amount": self.amount.data,
            "occurred_on": self.occurred_on.data,
            "parties": [entry.form.data for entry in self.parties.entries],
        }

    def apply_errors(self, errors: dict[str, str]) -> dict[str, str]:
        """Put the service's per-field messages on the fields; returns those without a field."""
        rest = {}
        for key, message in errors.items():
            parts = key.split(".")
            target = None
            if parts[0] == "parties" and len(parts) == 3 and parts[1].isdigit():
                n = int(parts[1])
                if n < len(self.parties.entries):
                    target = getattr(self.parties.entries[n].form, parts[2], None)
            elif len(parts) == 1:
                target = getattr(self, key, None)
            if target is not None and hasattr(target, "errors"):
                target.errors = list(target.errors or []) + [message]
            else:
                rest[key] = message
        return rest


class AttachmentForm(FlaskForm):
    file = FileField(_l("选择文件"))


class CaseEditForm(FlaskForm):
    """修改案件信息: the case's own fields, and the version the form was loaded with (a save over a
    newer version gets the conflict page, never a silent overwrite)."""

    source = SelectField(_l("纠纷来源"), choices=[], validate_choice=False)
    type = SelectField(_l("纠纷类型"), choices=[], validate_choice=False)
    occurred_on = StringField(_l("纠纷发生日期"), render_kw={"type": "date"})
    people_involved = StringField(_l("涉及人数"), render_kw={"inputmode": "numeric"})
    amount = StringField(_l("涉及金额（元）"), render_kw={"inputmode": "decimal", "placeholder": "0"})
    summary = TextAreaField(_l("纠纷简要情况"))
    claims = TextAreaField(_l("主要诉求"))
    version = HiddenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("source", "type", "summary"):
            self[name].flags.required = True

    def values(self) -> dict:
        return {name: self[name].data for name in ("source", "type", "occurred_on", "people_involved", "amount",
                                                    "summary", "claims")}

    def apply_errors(self, errors: dict[str, str]) -> dict[str, str]:
        rest = {}
        for key, message in errors.items():
            target = getattr(self, key, None) if key != "version" else None
            if target is not None and hasattr(target, "errors"):
                target.errors = list(target.errors or []) + [message]
            else:
                rest[key] = message
        return rest
