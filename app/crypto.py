"""Personal data at rest (PRODUCT.md §9): ID numbers and phones are stored Fernet-encrypted,
with a keyed hash beside them so equality lookups (duplicate hints, repeat parties, search by a
full number) still work without decrypting anything.

- ``QY_DATA_KEYS``: comma-separated Fernet keys; the first encrypts, every one decrypts
  (``MultiFernet``), so a new key can be prepended and old rows re-encrypted with
  ``flask keys rotate`` before the old key is dropped.
- ``QY_HASH_KEY``: the HMAC-SHA256 key of the lookup hashes.  It is separate so rotating the
  encryption key never changes a hash (and the indexes stay valid).

Fernet is randomised: the same phone encrypts differently each time, so SQL can never compare
an encrypted column.  ``EncryptedString`` therefore refuses ``==``, ``IN`` and ``LIKE`` on itself
(a query that tried would silently find nothing); compare the ``*_hash`` column with
``lookup_hash`` instead.  The hash columns are filled on every insert path: a Column
``default`` computed from the statement's own parameters covers Core inserts (bulk
``executemany`` included, as the ledger importer and benchgen use), and an attribute ``set``
listener keeps ORM objects' hashes in step on insert and update.  A Core ``UPDATE`` that
changes an encrypted value must set its hash too (none exists today).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from typing import Any, Callable, Optional

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app, has_app_context
from sqlalchemy import String, event
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

# Every Fernet token starts with the version byte 0x80 and a 32-bit timestamp: "gAAAAA" in base64.
TOKEN_PREFIX = "gAAAAA"  # nosec B105 # a format marker, not a secret
HASH_KINDS = ("id", "phone")


class DataKeyError(RuntimeError):
    """The data keys are missing, malformed, or cannot decrypt a stored value."""


# ---------------------------------------------------------------------------------------------
# Keys


@lru_cache(maxsize=1)
def _env_config():
    """Settings outside an app context (Alembic, scripts): the same rules as the app's."""
    from config import config_from_env
    return config_from_env()


def _settings() -> tuple[tuple[str, ...], str]:
    if has_app_context():
        cfg = current_app.config
        keys, hash_key = cfg.get("DATA_KEYS"), cfg.get("HASH_KEY")
    else:
        cfg = _env_config()
        keys, hash_key = getattr(cfg, "DATA_KEYS", None), getattr(cfg, "HASH_KEY", None)
    if not keys or not hash_key:
        raise DataKeyError("QY_DATA_KEYS and QY_HASH_KEY are not configured")
    return tuple(keys), hash_key


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise DataKeyError(f"QY_DATA_KEYS holds a key that is not a Fernet key: {exc}") from None


def fernet() -> MultiFernet:
    """The ``MultiFernet`` of the configured keys (first encrypts, all decrypt)."""
    return _fernet_for(_settings()[0])


def primary_fernet() -> Fernet:
    """The first configured key alone: what ``flask keys rotate`` re-encrypts with."""
    keys = _settings()[0]
    return Fernet(keys[0].encode())


def generate_key() -> str:
    """A new Fernet key for ``QY_DATA_KEYS``."""
    return Fernet.generate_key().decode()


# ---------------------------------------------------------------------------------------------
# Values


def encrypt(value: str) -> str:
    """The Fernet token of ``value`` under the first key."""
    return fernet().encrypt(value.encode("utf-8")).decode("ascii")


def is_token(stored: Optional[str]) -> bool:
    """Whether ``stored`` looks like a Fernet token (not a plaintext row written before
    encryption was introduced)."""
    return bool(stored) and stored.startswith(TOKEN_PREFIX)


def decrypt(token: str) -> str:
    """The plaintext of ``token``.  A value that is not a token at all is a row stored before
    encryption (``flask keys rotate`` encrypts those) and is returned as it is; a token no
    configured key opens is an error, never a silent blank."""
    if not is_token(token):
        return token
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise DataKeyError("a stored value cannot be decrypted: the key that encrypted it is not in "
                        "QY_DATA_KEYS") from None


def normalise(kind: str, value: Optional[str]) -> Optional[str]:
    """The form hashed: ID numbers without spaces and upper-cased (a trailing x is X); phones as
    digits only, a leading 86 country code dropped from mobiles."""
    if value is None:
        return None
    if kind == "id":
        v = re.sub(r"\s+", "", str(value)).upper()
    elif kind == "phone":
        v = re.sub(r"\D", "", str(value))
        if len(v) == 13 and v.startswith("861"):
            v = v[2:]
    else:
        raise ValueError(f"unknown lookup kind {kind!r}")
    return v or None


def lookup_hash(kind: str, value: Optional[str]) -> Optional[str]:
    """HMAC-SHA256 (hex) of the normalised value under ``QY_HASH_KEY``, or None for no value."""
    norm = normalise(kind, value)
    if norm is None:
        return None
    key = _settings()[1].encode("utf-8")
    return hmac.new(key, f"{kind}:{norm}".encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# SQLAlchemy


class EncryptedString(TypeDecorator):
    """A string column stored as a Fernet token; ORM and Core reads get the plaintext back.

    Comparing it in SQL is refused (see the module docstring); ``IS NULL`` is allowed."""

    impl = String
    cache_ok = True

    class comparator_factory(String.Comparator):  # noqa: N801 - SQLAlchemy's hook name
        def operate(self, op, *other, **kwargs):
            if op in (operators.is_, operators.is_not, operators.isnot, operators.asc_op,
                      operators.desc_op, operators.nulls_first_op, operators.nulls_last_op):
                return super().operate(op, *other, **kwargs)
            raise TypeError(f"{self.expr} is encrypted: compare its *_hash column with "
                            f"app.crypto.lookup_hash() instead of using {getattr(op, '__name__', op)}")

        def reverse_operate(self, op, other, **kwargs):
            raise TypeError(f"{self.expr} is encrypted and cannot be compared in SQL")

    def __init__(self, length: int = 255, **kw: Any) -> None:
        super().__init__(length, **kw)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return encrypt(str(value))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return decrypt(value)


def hash_default(kind: str, source: str) -> Callable:
    """A Column ``default`` that hashes the ``source`` value of the same INSERT's parameters:
    runs once per row of a Core ``executemany`` too, before the value is encrypted."""

    def _default(context) -> Optional[str]:
        return lookup_hash(kind, context.get_current_parameters().get(source))

    _default.__name__ = f"{source}_hash_default"
    return _default


def keep_hash(attribute, hash_attr: str, kind: str) -> None:
    """Keep ``hash_attr`` equal to ``lookup_hash(kind, attribute)`` whenever an ORM object's
    ``attribute`` is set (constructor, edits), so ORM inserts and updates carry the hash."""

    @event.listens_for(attribute, "set", propagate=True)
    def _set(target, value, _old, _initiator):
        setattr(target, hash_attr, lookup_hash(kind, value))


def encrypted_columns(metadata) -> list[tuple[Any, list[Any]]]:
    """Every table with ``EncryptedString`` columns, with those columns (for key rotation)."""
    found = []
    for table in metadata.sorted_tables:
        cols = [c for c in table.columns if isinstance(c.type, EncryptedString)]
        if cols:
            found.append((table, cols))
    return found


def hash_column_for(table, column) -> Optional[tuple[Any, str]]:
    """The ``(hash column, kind)`` that shadows an encrypted column, if it has one."""
    hcol = table.columns.get(f"{column.name}_hash")
    if hcol is None:
        return None
    kind = hcol.info.get("lookup_kind")
    return (hcol, kind) if kind in HASH_KINDS else None


def hash_column(kind: str, source: str):
    """The indexed lookup-hash column shadowing the encrypted column ``source``."""
    from sqlalchemy.orm import mapped_column
    return mapped_column(String(64), index=True, default=hash_default(kind, source),
                         info={"lookup_kind": kind})


if __name__ == "__main__":  # ``python -m app.crypto``: new keys, no app (production refuses to start without them)
    import secrets
    print(f"QY_DATA_KEYS={generate_key()}")
    print(f"QY_HASH_KEY={secrets.token_urlsafe(32)}")
