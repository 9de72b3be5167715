from __future__ import annotations

import math
import random
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _reference(prices: list[str], currencies: list[str]) -> pd.DataFrame:
    """The per-value path alone, row by row: what ``parse_column`` must give on any input."""
    rows = [money._parse_with_currency(p, c) for p, c in zip(prices, currencies, strict=True)]
    return pd.DataFrame(rows, columns=["amount", "text", "value", "error"])


def _assert_same(prices: list[str], currencies: list[str], index: list[int] | None = None) -> None:
    got = money.parse_column(pd.Series(prices, index=index, dtype="str"), pd.Series(currencies, dtype="str"))
    want = _reference(prices, currencies)
    assert list(got.columns) == ["amount", "text", "value", "error"]
    assert list(got.index) == (index if index is not None else list(range(len(prices))))
    assert got["text"].dtype == "str" and got["error"].dtype == "str" and got["value"].dtype == "float64"
    assert list(got["text"]) == list(want["text"])
    assert list(got["error"]) == list(want["error"])
    assert np.array_equal(got["value"].to_numpy(), want["value"].to_numpy(dtype=float), equal_nan=True)
    for mine, theirs in zip(got["amount"], want["amount"], strict=True):
        assert type(mine) is type(theirs) and str(mine) == str(theirs)


_ODD = (
    *("", " ", "abc", "¥1,980", "15 USD", "$1,234.50", "1.980,00", "-5", " 12 ", "1,98", ".5", "5."),
    *("１２", "١٢٣", "9.99 EUR", "1e3", "12\n", "1,980 JPY", "1 980", "0x10", "€0.10"),
    # grouping and fraction spellings next to the everyday ones
    *("1234,567", "12,3456", "1,234,56", ",123", "1,", "1,234.", "1.2.3", "1,234,567.891", "0,000"),
    *("000,123", "1,234,567,890,123,456", "123456789012345.5", "12345678901234.5", "99999999999999.5"),
)


def _digits(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(low, high)))


def _price_text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.25:
        return _digits(rng, 1, 9)
    if kind < 0.35:
        return f"{int(_digits(rng, 4, 12)):,}"
    if kind < 0.6:
        return f"{_digits(rng, 1, 7)}.{_digits(rng, 1, 7)}"
    if kind < 0.65:
        return f"{int(_digits(rng, 4, 9)):,}.{_digits(rng, 1, 5)}"
    if kind < 0.7:
        return _digits(rng, 11, 20) + rng.choice(["", f".{_digits(rng, 1, 5)}"])
    if kind < 0.8:
        return rng.choice(
            ["0", "000", "0.0", "0.004", "0.005", "0.49", "0.5", "9.995", "99.99995", "0.00005"]
        )
    return rng.choice(_ODD)


def test_fast_path_matches_per_value_parse_on_a_varied_column() -> None:
    rng = random.Random(20240601)
    currencies = ["JPY", "jpy", "USD", "usd", "KWD", "CLF", "EUR", "XYZ", ""]
    prices = [_price_text(rng) for _ in range(20_000)]
    rows = [rng.choice(currencies) for _ in prices]
    _assert_same(prices, rows)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"\A[0-9]{1,18}(\.[0-9]{1,8})?\Z")
            | st.from_regex(r"\A[0-9]{1,3}(,[0-9]{3}){1,5}(\.[0-9]{1,6})?\Z")
            | st.text(st.sampled_from(list("0123456789.,- $¥JPYusd")), max_size=12),
            st.sampled_from(["JPY", "USD", "usd", "KWD", "CLF", "BHD", "", "XXX"]),
        ),
        max_size=30,
    )
)
def test_parse_column_equals_per_value_parse(pairs: list[tuple[str, str]]) -> None:
    _assert_same([p for p, _ in pairs], [c for _, c in pairs])


def test_mixed_rows_keep_a_non_default_index() -> None:
    _assert_same(
        ["1980", "¥2,480", "", "15.005", "x"], ["JPY", "JPY", "JPY", "USD", "JPY"], index=[5, 3, 9, 1, 2]
    )


def test_parse_column_without_amounts() -> None:
    parsed = money.parse_column(pd.Series(["1,980", "¥5"]), pd.Series(["JPY", "JPY"]), amounts=False)
    assert list(parsed.columns) == ["text", "value", "error"]
    assert list(parsed["text"]) == ["1980 JPY", "5 JPY"]


def test_parse_column_of_nothing() -> None:
    parsed = money.parse_column(pd.Series([], dtype="str"), pd.Series([], dtype="str"))
    assert len(parsed) == 0 and list(parsed.columns) == ["amount", "text", "value", "error"]


@pytest.mark.parametrize(
    ("price", "currency", "text", "value"),
    [
        ("9.995", "USD", "10.00 USD", 10.0),
        ("0.5", "JPY", "1 JPY", 1.0),
        ("0.005", "USD", "0.01 USD", 0.01),
        ("1,234,567.8949", "KWD", "1234567.895 KWD", 1234567.895),
        ("0012.30", "EUR", "12.30 EUR", 12.3),
        ("99999999999.99995", "CLF", "100000000000.0000 CLF", 1e11),
    ],
)
def test_half_up_rounding_on_the_fast_path(price: str, currency: str, text: str, value: float) -> None:
    parsed = money.parse_column(pd.Series([price]), pd.Series([currency]))
    assert parsed["text"].iloc[0] == text
    assert math.isclose(parsed["value"].iloc[0], value, rel_tol=0, abs_tol=0)
    assert str(parsed["amount"].iloc[0]) == text.split()[0]
