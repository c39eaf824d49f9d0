"""Field checks of the intake (PRODUCT.md §3): 居民身份证 numbers (GB 11643), phones, dates and
amounts.  Each check returns the normalised value or raises ``FieldError`` with the Chinese
message shown next to the field (forms, the API and the ledger importer share them).

15-digit legacy ID numbers (first-generation cards, invalid since 2013) are refused for the ID
type 居民身份证 with a message telling the registrar to enter the 18-digit number or choose
"其他证件"; they carry no check digit, so nothing could be verified.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")


class FieldError(ValueError):
    """A bad value; ``str(exc)`` is the Chinese message for the field."""


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS))
    return ID_CHECK_CHARS[total % 11]


def clean_id_number(value: str | None, today: date | None = None) -> str | None:
    """An 18-character 居民身份证 number, upper-cased, or ``FieldError``.

    Checks the length, the digits, the birth date (a real date, not in the future, not
    before 1900) and the ISO 7064 MOD 11-2 check character (X allowed, x accepted).
    """
    if value is None or not value.strip():
        return None
    v = value.strip().replace(" ", "").upper()
    if len(v) == 15 and v.isdigit():
        raise FieldError("15位旧身份证号已停用，请填写18位居民身份证号，或将证件类型改为“其他证件”。")
    if len(v) != 18:
        raise FieldError("居民身份证号应为18位。")
    if not v[:17].isdigit() or not (v[17].isdigit() or v[17] == "X"):
        raise FieldError("居民身份证号应为17位数字加1位数字或X。")
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise FieldError("居民身份证号中的出生日期无效。") from None
    if born > (today or date.today()) or born.year < 1900:
        raise FieldError("居民身份证号中的出生日期无效。")
    if id_check_char(v[:17]) != v[17]:
        raise FieldError("居民身份证号校验位不正确，请核对。")
    return v


def clean_phone(value: str | None) -> str | None:
    """A mobile (11 digits, 1[3-9]…, +86 allowed) or landline (0xx(x)-xxxxxxx(x), extension
    allowed) number, spaces removed; otherwise ``FieldError``."""
    if value is None or not value.strip():
        return None
    v = re.sub(r"[\s()（）]", "", value.strip())
    if v.startswith("+86"):
        v = v[3:].lstrip("-")
    if MOBILE_RE.match(v):
        return v
    if LANDLINE_RE.match(v):
        return v
    raise FieldError("电话号码格式不正确：手机号为11位（如13800001111），固话为区号-号码（如0715-1234567）。")


def clean_past_date(value, today: date, label: str = "日期") -> date | None:
    """A date not after ``today`` (accepts a date or ``YYYY-MM-DD``)."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise FieldError(f"{label}格式应为 YYYY-MM-DD。") from None
    if value > today:
        raise FieldError(f"{label}不能晚于今天。")
    return value


def clean_amount(value) -> Decimal | None:
    """An amount in yuan ≥ 0 with at most two decimals."""
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise FieldError("涉及金额应为数字（元）。") from None
    if not amount.is_finite():
        raise FieldError("涉及金额应为数字（元）。")
    if amount < 0:
        raise FieldError("涉及金额不能为负数。")
    if amount >= Decimal("1e12"):
        raise FieldError("涉及金额过大，请核对。")
    return amount.quantize(Decimal("0.01"))


def clean_people(value) -> int | None:
    """People involved: an integer ≥ 1."""
    if value in (None, ""):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise FieldError("涉及人数应为整数。") from None
    if n < 1:
        raise FieldError("涉及人数至少为1。")
    if n > 100000:
        raise FieldError("涉及人数过大，请核对。")
    return n
