"""Configuration read from the environment.

Development needs nothing set: the database is an SQLite file under ``instance/`` and the
secret key is generated once into ``instance/secret_key`` and reused, and so are the personal-data
keys (``instance/data_key``, ``instance/hash_key``; see app/crypto.py).  Production
(``QY_ENV=production``) refuses to start without ``SECRET_KEY``, ``QY_DATA_KEYS`` and ``QY_HASH_KEY``.
"""
from __future__ import annotations

import base64
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


def _instance_fernet_key(name: str) -> str:
    """A Fernet key (urlsafe base64 of 32 random bytes) kept in ``instance/<name>`` (development)."""
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / name
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def _data_keys_from_env() -> list[str]:
    """``QY_DATA_KEYS``: comma-separated Fernet keys, the first encrypts; each is checked here so
    a typo stops the start instead of the first save."""
    keys = [k.strip() for k in os.environ.get("QY_DATA_KEYS", "").split(",") if k.strip()]
    for i, key in enumerate(keys, 1):
        try:
            ok = len(base64.urlsafe_b64decode(key.encode())) == 32
        except ValueError:
            ok = False
        if not ok:
            raise RuntimeError(f"QY_DATA_KEYS: key {i} is not a Fernet key (urlsafe base64 of 32 bytes); "
                               "make one with `python -m app.crypto`")
    return keys


KEYS_HELP = ("Generate them with `python -m app.crypto` (QY_DATA_KEYS: a Fernet key; QY_HASH_KEY: "
             "any long random string, kept apart from the data keys) and keep them safe, apart from the "
             "backups: without them the stored ID numbers and phones cannot be read.")


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
    # Login defences (app.security, app.accounts.throttle, app.accounts.totp).
    IDLE_TIMEOUT_MINUTES = int(os.environ.get("IDLE_TIMEOUT_MINUTES", "30"))  # ≤ 30 for ASVS L2
    SESSION_MAX_HOURS = int(os.environ.get("SESSION_MAX_HOURS", "12"))
    # The signed cookie's own lifetime is only an outer bound; app.security enforces the timeouts above.
    PERMANENT_SESSION_LIFETIME = SESSION_MAX_HOURS * 3600
    # Re-sign and re-send the session cookie only when the session changed (its idle stamp is
    # rewritten at most once a minute, app.security), not on every response: Flask's default
    # serialises, compresses and signs it again for each request (~0.1 ms, a tenth of a bare
    # route) only to move an outer expiry that the timeouts above enforce anyway.
    SESSION_REFRESH_EACH_REQUEST = False
    LOGIN_MAX_FAILURES = 5
    LOGIN_FAILURE_WINDOW_MINUTES = 15
    LOGIN_LOCKOUT_MINUTES = 15
    MFA_REQUIRED_ROLES = ("admin",)
    MFA_PENDING_MINUTES = 5  # between the password step and the code step
    PROXY_COUNT = int(os.environ.get("PROXY_COUNT", "0"))  # reverse proxies in front (X-Forwarded-For)
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024
    UPLOAD_DIR = os.environ.get("UPLOAD_DIR") or str(INSTANCE_DIR / "uploads")
    CASE_NUMBER_PREFIX = os.environ.get("CASE_NUMBER_PREFIX", "QH")
    # Werkzeug's scrypt: memory-hard, no extra dependency.
    PASSWORD_HASH_METHOD = "scrypt"
    # Computed report figures kept per process, keyed by the data's write counters
    # (app.reports.cache); 0 turns the cache off.
    REPORT_CACHE_SIZE = int(os.environ.get("REPORT_CACHE_SIZE", "512"))

    def __init__(self) -> None:
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or self._fallback_secret()
        # Personal data at rest (app/crypto.py): encryption keys and the lookup-hash key.
        self.DATA_KEYS = _data_keys_from_env() or self._fallback_data_keys()
        self.HASH_KEY = os.environ.get("QY_HASH_KEY", "").strip() or self._fallback_hash_key()

    def _fallback_secret(self) -> str:
        return _instance_secret("secret_key")

    def _fallback_data_keys(self) -> list[str]:
        return [_instance_fernet_key("data_key")]

    def _fallback_hash_key(self) -> str:
        return _instance_secret("hash_key")


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") == "1"

    def _fallback_secret(self) -> str:
        raise RuntimeError("SECRET_KEY must be set in production (QY_ENV=production)")

    def _fallback_data_keys(self) -> list[str]:
        raise RuntimeError("QY_DATA_KEYS must be set in production (QY_ENV=production). " + KEYS_HELP)

    def _fallback_hash_key(self) -> str:
        raise RuntimeError("QY_HASH_KEY must be set in production (QY_ENV=production). " + KEYS_HELP)


class TestConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    # Cheap hash so the suite stays fast; never used outside tests.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"

    def _fallback_secret(self) -> str:
        return "test-secret-key-not-for-production"

    def _fallback_data_keys(self) -> list[str]:
        return ["dGVzdC1kYXRhLWtleS1ub3QtZm9yLXByb2R1Y3Rpb24="]  # b"test-data-key-not-for-production"

    def _fallback_hash_key(self) -> str:
        return "test-hash-key-not-for-production"


def config_from_env() -> Config:
    """Pick the config class named by ``QY_ENV`` (development, production)."""
    name = os.environ.get("QY_ENV", "development")
    return ProductionConfig() if name == "production" else Config()
