from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from feedgen import money


@pytest.mark.parametrize(
    ("code", "digits"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("KRW", 0), ("CLF", 4)]
)
def test_exponent(code: str, digits: int) -> None:
    assert money.exponent(code) == digits


@pytest.mark.parametrize(
    ("price", "currency", "text", "error"),
    [
        ("1980", "JPY", "1980 JPY", ""),
        ("1,980", "JPY", "1980 JPY", ""),
        ("¥2,480", "JPY", "2480 JPY", ""),
        ("3980 JPY", "JPY", "3980 JPY", ""),
        ("1980.5", "JPY", "1981 JPY", ""),
        ("15", "USD", "15.00 USD", ""),
        ("15.005", "USD", "15.01 USD", ""),
        ("15.004", "USD", "15.00 USD", ""),
        ("$1,234.50", "USD", "1234.50 USD", ""),
        ("9.99 EUR", "", "9.99 EUR", ""),
        ("1.2345", "KWD", "1.235 KWD", ""),
        ("0.1", "USD", "0.10 USD", ""),
        ("0.001", "USD", "", "not_positive"),
        ("-500", "JPY", "", "not_positive"),
        ("0", "JPY", "", "not_positive"),
        ("", "JPY", "", "missing"),
        ("abc", "JPY", "", "unparseable"),
        ("1.980,00", "EUR", "", "unparseable"),
        ("15 USD", "JPY", "", "currency_mismatch"),
        ("15", "", "", "missing_currency"),
    ],
)
def test_parse_column(price: str, currency: str, text: str, error: str) -> None:
    parsed = money.parse_column(pd.Series([price]), pd.Series([currency]))
    assert parsed["text"].iloc[0] == text
    assert parsed["error"].iloc[0] == error


def test_amounts_are_decimals_not_floats() -> None:
    parsed = money.parse_column(pd.Series(["0.1", "0.2"]), pd.Series(["USD", "USD"]))
    total = parsed["amount"].iloc[0] + parsed["amount"].iloc[1]
    assert isinstance(total, Decimal)
    assert total == Decimal("0.30")


def test_parse_column_keeps_index_and_order() -> None:
    prices = pd.Series(["100", "200", "100"], index=[7, 8, 9])
    parsed = money.parse_column(prices, pd.Series(["JPY"] * 3, index=[7, 8, 9]))
    assert list(parsed.index) == [7, 8, 9]
    assert list(parsed["text"]) == ["100 JPY", "200 JPY", "100 JPY"]
