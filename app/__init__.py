"""清源 Qingyuan: the application factory.

``create_app`` wires configuration, the database session, extensions, blueprints, CLI
commands and error handlers.  It never touches data: migrations run through
``flask db upgrade`` and the demo county through ``flask seed-demo``.
"""
from __future__ import annotations

import importlib
from typing import Optional

from flask import Flask

from config import BASE_DIR, Config, TestConfig, config_from_env
from app import proxies
from app.sessions import VerifiedCookieSessionInterface

# Domain packages with a ``routes.bp`` blueprint and/or a ``cli.register(app)``.
BLUEPRINT_MODULES = ("accounts", "orgs", "home", "admin", "cases", "workflow", "reception", "reports",
                     "ledger", "screening", "audit", "api", "mediation")


def create_app(test_config: Optional[dict] = None, config: Optional[Config] = None) -> Flask:
    app = Flask(__name__, template_folder=str(BASE_DIR / "templates"),
                static_folder=str(BASE_DIR / "static"), instance_path=str(BASE_DIR / "instance"))
    _use_locale_templates(app)
    _configure(app, test_config, config)
    _init_logging(app)
    _init_database(app)
    _init_extensions(app)
    proxies.install()  # attribute reads through current_user, request, g … without an exception each
    app.session_interface = VerifiedCookieSessionInterface()  # each cookie value verified once per worker
    _register_blueprints(app)
    _register_cli(app)
    _register_template_helpers(app)
    from app.errors import register_error_handlers
    register_error_handlers(app)
    return app


def _use_locale_templates(app: Flask) -> None:
    """Templates compiled per language with their fixed strings translated (app.template_i18n);
    before anything builds ``app.jinja_env``."""
    from app.template_i18n import FoldTranslations, LocaleEnvironment
    app.jinja_environment = LocaleEnvironment
    app.jinja_options = {**app.jinja_options, "extensions": [FoldTranslations]}


def _configure(app: Flask, test_config: Optional[dict], config: Optional[Config]) -> None:
    if config is None:
        config = TestConfig() if test_config is not None and test_config.get("TESTING") else config_from_env()
    app.config.from_object(config)
    if test_config:
        app.config.update(test_config)


def _init_logging(app: Flask) -> None:
    """Log hygiene on the app's, werkzeug's and gunicorn's loggers (app.security): CR/LF
    escaped, ID numbers and mobiles masked, passwords dropped, access-log lines included."""
    from app.security import install_log_hygiene
    install_log_hygiene(app)


def _init_database(app: Flask) -> None:
    from app import db
    importlib.import_module("app.models")  # complete the metadata
    db.init_app(app)


def _init_extensions(app: Flask) -> None:
    from app import input_guard, security
    from app.extensions import babel, csrf, login_manager, select_locale
    from app.accounts.services import load_user_from_cookie

    input_guard.init_app(app)  # first: no handler sees text that cannot be stored
    login_manager.init_app(app)
    login_manager.user_loader(load_user_from_cookie)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(BASE_DIR / "app" / "translations"))
    security.init_app(app)


def _register_blueprints(app: Flask) -> None:
    for name in BLUEPRINT_MODULES:
        try:
            module = importlib.import_module(f"app.{name}.routes")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.{name}.routes":
                raise
            continue
        app.register_blueprint(module.bp)

    @app.get("/healthz")
    def health():
        return {"status": "ok"}


def _register_cli(app: Flask) -> None:
    from app import cli
    cli.register(app)
    for name in BLUEPRINT_MODULES:
        try:
            module = importlib.import_module(f"app.{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.{name}.cli":
                raise
            continue
        module.register(app)


def _register_template_helpers(app: Flask) -> None:
    from app import templating
    templating.init_app(app)
