"""Flask extensions, created unbound and ``init_app``-ed by the factory."""
from flask import has_request_context, request, session as http_session
from flask_babel import Babel, gettext
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = "请先登录。"
login_manager.localize_callback = gettext
login_manager.login_message_category = "warning"
login_manager.session_protection = "basic"

csrf = CSRFProtect()
babel = Babel()


def select_locale() -> str:
    """简体中文 by default; English when the user picked it (``?lang=en`` stored in the session)."""
    if not has_request_context():  # CLI commands speak Chinese
        return "zh"
    lang = request.args.get("lang")
    if lang in ("zh", "en"):
        http_session["lang"] = lang
    return http_session.get("lang", "zh")
