"""Configuration read from the environment.

Development needs nothing set: the database is an SQLite file under ``instance/`` and the
secret key is generated once into ``instance/secret_key`` and reused.  Production
(``QY_ENV=production``) refuses to start without ``SECRET_KEY``.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("QY_INSTANCE_DIR", BASE_DIR / "instance"))


def _instance_secret(name: str, nbytes: int = 32) -> str:
    """Return a secret kept in ``instance/<name>``, creating it on first use (development only)."""
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "development"
    DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'qingyuan.db'}"
    SQL_ECHO = False
    TIMEZONE = "Asia/Shanghai"
    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh", "en")
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    PERMANENT_SESSION_LIFETIME = 30 * 60  # idle timeout, seconds
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024
    UPLOAD_DIR = os.environ.get("UPLOAD_DIR") or str(INSTANCE_DIR / "uploads")
    CASE_NUMBER_PREFIX = os.environ.get("CASE_NUMBER_PREFIX", "QH")
    # Werkzeug's scrypt: memory-hard, no extra dependency.
    PASSWORD_HASH_METHOD = "scrypt"

    def __init__(self) -> None:
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or self._fallback_secret()

    def _fallback_secret(self) -> str:
        return _instance_secret("secret_key")


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") == "1"

    def _fallback_secret(self) -> str:
        raise RuntimeError("SECRET_KEY must be set in production (QY_ENV=production)")


class TestConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    # Cheap hash so the suite stays fast; never used outside tests.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"

    def _fallback_secret(self) -> str:
        return "test-secret-key-not-for-production"


def config_from_env() -> Config:
    """Pick the config class named by ``QY_ENV`` (development, production)."""
    name = os.environ.get("QY_ENV", "development")
    return ProductionConfig() if name == "production" else Config()
