"""The field checks of the intake: 居民身份证 (GB 11643), phones, dates, amounts."""
from datetime import date
from decimal import Decimal

import pytest

from app.cases.validators import (FieldError, clean_amount, clean_id_number, clean_past_date, clean_phone,
                                  id_check_char)

TODAY = date(2026, 11, 22)


def test_known_valid_id_number():
    # The GB 11643 worked example: 11010519491231002X.
    assert clean_id_number("11010519491231002X", TODAY) == "11010519491231002X"
    assert clean_id_number("11010519491231002x", TODAY) == "11010519491231002X"


def test_valid_id_with_digit_check():
    body = "42022219800101123"
    number = body + id_check_char(body)
    assert clean_id_number(number, TODAY) == number


def test_wrong_check_digit_refused():
    body = "42022219800101123"
    right = id_check_char(body)
    wrong = "0" if right != "0" else "1"
    with pytest.raises(FieldError, match="校验位"):
        clean_id_number(body + wrong, TODAY)


def test_x_in_wrong_place_refused():
    with pytest.raises(FieldError, match="17位数字"):
        clean_id_number("1101051949X231002X", TODAY)


def test_fifteen_digit_legacy_refused_with_guidance():
    with pytest.raises(FieldError, match="15位"):
        clean_id_number("110105491231002", TODAY)


@pytest.mark.parametrize("value", ["4202221980013", "42022219801301123X", "42022230000101123X"])
def test_bad_length_or_birth_date(value):
    with pytest.raises(FieldError):
        clean_id_number(value, TODAY)


@pytest.mark.parametrize("value,expected", [("13800001111", "13800001111"), ("+86 138 0000 1111", "13800001111"),
                                            ("0715-1234567", "0715-1234567"), ("010-12345678", "010-12345678"),
                                            ("07151234567", "07151234567")])
def test_phones_accepted(value, expected):
    assert clean_phone(value) == expected


@pytest.mark.parametrize("value", ["12800001111", "1380000111", "abc", "123-4567"])
def test_phones_refused(value):
    with pytest.raises(FieldError, match="电话"):
        clean_phone(value)


def test_future_date_refused():
    with pytest.raises(FieldError, match="不能晚于今天"):
        clean_past_date("2026-11-23", TODAY, "纠纷发生日期")
    assert clean_past_date("2026-11-22", TODAY) == TODAY


def test_amounts():
    assert clean_amount("1,200.5") == Decimal("1200.50")
    assert clean_amount("0") == Decimal("0.00")
    with pytest.raises(FieldError, match="负数"):
        clean_amount("-1")
    with pytest.raises(FieldError, match="数字"):
        clean_amount("十元")
