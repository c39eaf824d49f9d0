"""Account forms (input shape only)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(_l("请输入用户名")), Length(max=64)],
                           render_kw={"autofocus": True, "autocomplete": "username"})
    password = PasswordField(_l("密码"), validators=[DataRequired(_l("请输入密码")), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("当前密码"), validators=[DataRequired(_l("请输入当前密码"))])
    new_password = PasswordField(_l("新密码"), validators=[DataRequired(_l("请输入新密码")), Length(max=256)])
    confirm = PasswordField(_l("确认新密码"), validators=[DataRequired(_l("请再次输入新密码")),
                                                   EqualTo("new_password", _l("两次输入的新密码不一致"))])


class CodeForm(FlaskForm):
    """A 6-digit code from the authenticator (login step two, enrolment)."""
    code = StringField(_l("验证码"), validators=[DataRequired(_l("请输入验证码")), Length(max=12)],
                       render_kw={"autofocus": True, "autocomplete": "one-time-code", "inputmode": "numeric",
                                  "pattern": r"[0-9 ]*"})


class DisableTotpForm(FlaskForm):
    password = PasswordField(_l("登录密码"), validators=[DataRequired(_l("请输入密码")), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})
    code = StringField(_l("验证码"), validators=[DataRequired(_l("请输入验证码")), Length(max=12)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
