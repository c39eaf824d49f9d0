"""Admin forms (input shape only; the rules live in ``app.accounts.services``)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.accounts.roles import ROLES


def role_choices():
    from flask_babel import gettext
    return [SelectChoice(code, gettext(label)) for code, label in ROLES.items()]


class UserForm(FlaskForm):
    """Create (with username and password) or edit a user."""
    username = StringField(_l("用户名"), validators=[DataRequired(_l("请输入用户名")), Length(max=64)])
    display_name = StringField(_l("姓名"), validators=[DataRequired(_l("请填写姓名")), Length(max=64)])
    role = SelectField(_l("角色"), validate_choice=False)
    org_code = StringField(_l("所属单位代码"), validators=[DataRequired(_l("请填写所属单位代码")), Length(max=32)],
                           render_kw={"list": "org-list", "autocomplete": "off"})
    phone = StringField(_l("联系电话"), validators=[Optional(), Length(max=32)])
    password = PasswordField(_l("初始密码"), validators=[DataRequired(_l("请输入初始密码")), Length(max=256)])
    version = HiddenField()  # the edited fields' fingerprint when the form was loaded (no lost updates)

    def __init__(self, *args, creating: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = role_choices()
        if not creating:
            del self.username
            del self.password


class ResetPasswordForm(FlaskForm):
    new_password = PasswordField(_l("新密码"), validators=[DataRequired(_l("请输入新密码")), Length(max=256)])
