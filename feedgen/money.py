"""Prices as ``decimal.Decimal`` in the currency's minor units; parsed once per distinct value.

ISO 4217 exponents: most currencies have 2 minor digits; the ones below differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pycountry

_EXPONENT = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}
_SYMBOLS = "¥￥$€£₩₹₫₽"
_CODE = re.compile(r"\b([A-Za-z]{3})\b")
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")
_PLAIN = re.compile(r"^\d+(\.\d+)?$")


def exponent(currency: str) -> int:
    """Minor-unit digits of an ISO 4217 currency (JPY 0, USD 2, KWD 3)."""
    return _EXPONENT.get(currency.upper(), 2)


def is_currency(code: str) -> bool:
    """True for a known ISO 4217 alphabetic code."""
    return len(code) == 3 and pycountry.currencies.get(alpha_3=code.upper()) is not None


@dataclass(frozen=True)
class Parsed:
    """One price text, parsed: an amount and the currency code written inside it, or an error."""

    amount: Decimal | None
    code: str
    error: str


def parse_price(text: str) -> Parsed:
    """Parse ``1980``, ``1,980``, ``¥1,980``, ``15.00 USD``; errors are reason names."""
    raw = text.strip()
    if not raw:
        return Parsed(None, "", "missing")
    codes = _CODE.findall(raw)
    code = codes[0].upper() if len(codes) == 1 else ""
    if len(codes) > 1:
        return Parsed(None, "", "unparseable")
    number = _CODE.sub("", raw).strip().strip(_SYMBOLS).strip().replace(" ", "")
    if number.startswith("-"):
        return Parsed(None, code, "not_positive")
    if _GROUPED.match(number):
        number = number.replace(",", "")
    if not _PLAIN.match(number):
        return Parsed(None, code, "unparseable")
    try:
        amount = Decimal(number)
    except InvalidOperation:
        return Parsed(None, code, "unparseable")
    if amount <= 0:
        return Parsed(None, code, "not_positive")
    return Parsed(amount, code, "")


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half up to the currency's minor units."""
    return amount.quantize(Decimal(1).scaleb(-exponent(currency)), rounding=ROUND_HALF_UP)


def format_price(amount: Decimal, currency: str) -> str:
    """``1980 JPY``, ``15.00 USD``: the amount in minor units, a space, the code."""
    return f"{quantize(amount, currency)} {currency.upper()}"


def parse_column(prices: pd.Series, currencies: pd.Series) -> pd.DataFrame:
    """Parse a price column against each row's currency; one parse per distinct (text, currency).

    Returns columns ``amount`` (Decimal or None), ``text`` (formatted or ""), ``value`` (float, for
    bands and comparisons only) and ``error`` (a reason name or "").
    """
    keys = pd.MultiIndex.from_arrays([prices.astype("str"), currencies.astype("str")])
    uniques = keys.unique()
    results = [_parse_with_currency(p, c) for p, c in uniques]
    take = uniques.get_indexer(keys)
    index = prices.index
    columns = list(zip(*results, strict=True)) if results else [(), (), (), ()]
    amount, text, value, error = (np.asarray(col, dtype=object) for col in columns)
    return pd.DataFrame(
        {
            "amount": pd.Series(amount[take] if len(amount) else [], index=index, dtype=object),
            "text": pd.Series(text[take] if len(text) else [], index=index, dtype="str"),
            "value": pd.Series(value[take] if len(value) else [], index=index, dtype="float64"),
            "error": pd.Series(error[take] if len(error) else [], index=index, dtype="str"),
        }
    )


def _parse_with_currency(text: str, currency: str) -> tuple[Decimal | None, str, float, str]:
    """(amount, formatted, float value, error) for one distinct (price text, row currency)."""
    parsed = parse_price(text)
    error = parsed.error
    if not error and parsed.code:
        if not is_currency(parsed.code):
            error = "unparseable"
        elif currency and parsed.code != currency:
            error = "currency_mismatch"
        currency = parsed.code
    if error or parsed.amount is None:
        return None, "", float("nan"), error or "missing"
    if not currency:
        return None, "", float("nan"), "missing_currency"
    amount = quantize(parsed.amount, currency)
    if amount <= 0:
        return None, "", float("nan"), "not_positive"
    return amount, format_price(amount, currency), float(amount), ""
