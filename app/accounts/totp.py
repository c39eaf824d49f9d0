"""The second factor: time-based one-time codes (TOTP, RFC 6238) through ``pyotp``.

Every user may enrol; roles in ``MFA_REQUIRED_ROLES`` (default: ``admin``) must (ASVS 4.0.3
2.2.x / 4.3.1).  Enrolment stores a new base32 secret, shows it with an ``otpauth://`` URI
and a QR code (SVG drawn server-side by ``segno``, no script, no CDN), and switches the
factor on only after the user types a valid code.  A code is accepted for the current
30-second step or one step either side (``valid_window=1``, clock drift), and only for a
step later than the last one accepted, so an observed code cannot be replayed.
"""
from __future__ import annotations

import re
import time
from typing import Optional

import pyotp
from flask import current_app
from markupsafe import Markup
from pyotp.utils import strings_equal

ISSUER = "Qingyuan"
VALID_WINDOW = 1
CODE_RE = re.compile(r"^\d{6}$")


def now_ts() -> float:
    """The clock (tests patch it)."""
    return time.time()


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters = 160 bits


def required_for(user) -> bool:
    """True when the user's role must use a second factor."""
    roles = current_app.config.get("MFA_REQUIRED_ROLES", ("admin",))
    return getattr(user, "role", None) in roles


def provisioning_uri(username: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> Optional[Markup]:
    """The URI as an inline SVG QR code, or None when segno is not installed."""
    try:
        import segno
    except ImportError:  # pragma: no cover - segno is a dependency; the text secret still works
        return None
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2, title="TOTP")
    return Markup(svg)  # nosec B704 # generated from our own URI, segno escapes its text


def matching_step(secret: str, code: Optional[str], last_step: Optional[int]) -> Optional[int]:
    """The time step ``code`` belongs to (current ± ``VALID_WINDOW``) if it is later than
    ``last_step``; None for a wrong, malformed or replayed code."""
    code = re.sub(r"\s", "", code or "")
    if not secret or not CODE_RE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now_ts() // totp.interval)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if strings_equal(totp.generate_otp(step), code):
            if last_step is not None and step <= last_step:
                return None  # replay: this step (or a later one) was already used
            return step
    return None
