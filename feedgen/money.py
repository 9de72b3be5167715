"""Prices as ``decimal.Decimal`` in the currency's minor units.

ISO 4217 exponents: most currencies have 2 minor digits; the ones below differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pycountry

from feedgen import _speedups, text

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
#: ``_speedups.prices``'s verdicts: parsed; another spelling (the per-value path); empty; zero once rounded
_PARSED, _GENERAL, _BLANK, _ZERO = 0, 1, 2, 3


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


def parse_column(prices: pd.Series, currencies: pd.Series, amounts: bool = True) -> pd.DataFrame:
    """Parse a price column against each row's currency.

    Returns columns ``text`` (formatted or ""), ``value`` (float, for bands and comparisons only),
    ``error`` (a reason name or "") and, unless ``amounts`` is False, ``amount`` (Decimal or None).
    The everyday spellings (``1980``, ``1,980``, ``15.00`` with the currency in its own column) are
    parsed column-wise; anything else once per distinct (text, currency), as ``parse_price`` says.
    """
    index = prices.index
    price_arr = text.to_arrow(text.as_str(prices))
    # each distinct currency once (a missing one is an entry of its own, None)
    encoded = pc.dictionary_encode(text.to_arrow(text.as_str(currencies)), null_encoding="encode")
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    names = encoded.dictionary.to_pylist()
    known = [isinstance(c, str) and c != "" for c in names]
    exps = np.asarray([exponent(c) if k else -1 for c, k in zip(names, known, strict=True)], dtype=np.int64)
    uppers = pa.array([c.upper() if k else "" for c, k in zip(names, known, strict=True)], pa.string())
    row_exp = exps[codes]

    n = len(prices)
    errors = [""]  # error names; per row, a position in this list
    error_code = np.zeros(n, dtype=np.int64)
    value = np.full(n, np.nan)
    amount_pieces: list[tuple[np.ndarray, np.ndarray]] = []

    minor, status = _fast_parse(price_arr, row_exp)
    error_code[status == _BLANK] = _code(errors, "missing")
    error_code[status == _ZERO] = _code(errors, "not_positive")
    slow = status == _GENERAL
    fast = status == _PARSED
    formatted = _texts(minor, row_exp, codes, fast, uppers)  # "" where not parsed here
    for exp in np.unique(row_exp[fast]).tolist():
        rows = np.flatnonzero(fast & (row_exp == exp))
        scale = 10**exp
        value[rows] = minor[rows] / scale  # both exact below 2**53, so the quotient is float(Decimal)
        if amounts:
            number = pc.cast(pa.array(minor[rows] // scale), pa.string())
            if exp:
                cents = pc.utf8_lpad(pc.cast(pa.array(minor[rows] % scale), pa.string()), exp, "0")
                number = pc.binary_join_element_wise(number, cents, ".")
            amount_pieces.append((rows, _decimals(number)))

    slow_rows = np.flatnonzero(slow)
    if len(slow_rows):  # a few rows in most catalogs: plain Python, once per distinct (text, currency)
        slow_prices = price_arr.take(pa.array(slow_rows)).to_pylist()
        first: dict[tuple[str, str], int] = {}  # each distinct pair and its place, in order of first sight
        keys = zip(slow_prices, [names[k] for k in codes[slow_rows]], strict=True)
        take = np.asarray([first.setdefault(key, len(first)) for key in keys], dtype=np.int64)
        results = [_parse_with_currency(p, c) for p, c in first]
        amount_u, text_u, value_u, error_u = (list(col) for col in zip(*results, strict=True))
        formatted = text.replace_rows(formatted, slow_rows, pa.array(text_u, pa.large_string()).take(take))
        value[slow_rows] = np.asarray(value_u, dtype=np.float64)[take]
        error_code[slow_rows] = np.asarray([_code(errors, e) for e in error_u], dtype=np.int64)[take]
        if amounts:
            amount_pieces.append((slow_rows, np.asarray(amount_u, dtype=object)[take]))

    out = {
        "text": text.to_series(formatted, index),
        "value": pd.Series(value, index=index, dtype="float64"),
        "error": text.to_series(pa.array(errors, pa.string()).take(pa.array(error_code)), index),
    }
    if amounts:
        amount = np.full(n, None, dtype=object)
        for rows, decimals in amount_pieces:
            amount[rows] = decimals
        out = {"amount": pd.Series(amount, index=index, dtype=object), **out}
    return pd.DataFrame(out)


def _fast_parse(prices: pa.Array, exps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(minor units, status) per row by the compiled pass (``_speedups.prices``): the everyday
    spellings parsed, the others marked for the per-value path."""
    offsets = text.offsets_from_zero(prices)
    minor = np.empty(len(prices), dtype=np.int64)
    status = np.empty(len(prices), dtype=np.uint8)
    _speedups.prices(
        text.data_bytes(prices), offsets, np.ascontiguousarray(exps, dtype=np.int64), minor, status
    )
    if prices.null_count:  # a missing value is no spelling the pass knows
        status[~text.flags(pc.is_valid(prices))] = _GENERAL
    return minor, status


def _code(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)


def _decimals(numbers: pa.Array) -> np.ndarray:
    """``Decimal`` per row, one per distinct number text."""
    encoded = pc.dictionary_encode(numbers)
    distinct = np.asarray([Decimal(v) for v in encoded.dictionary.to_pylist()], dtype=object)
    return distinct[encoded.indices.to_numpy()]


def _texts(
    minor: np.ndarray, exps: np.ndarray, codes: np.ndarray, parsed: np.ndarray, names: pa.Array
) -> pa.Array:
    """``1980 JPY``, ``15.00 USD`` for the parsed rows, "" for the others (``_speedups.price_texts``):
    ``names`` holds each currency code's spelling, ``codes`` each row's code among them."""
    names = names.cast(pa.large_string())
    longest = int(pc.max(pc.binary_length(names)).as_py() or 0)
    out = np.empty(max(len(minor) * (22 + longest), 1), dtype=np.uint8)
    out_offsets = np.empty(len(minor) + 1, dtype=np.int64)
    size = _speedups.price_texts(
        np.ascontiguousarray(minor, dtype=np.int64),
        np.ascontiguousarray(exps, dtype=np.int64),
        np.ascontiguousarray(codes, dtype=np.int64),
        np.ascontiguousarray(parsed, dtype=np.uint8),
        text.data_bytes(names),
        text.offsets_from_zero(names),
        out,
        out_offsets,
    )
    buffers = [None, pa.py_buffer(out_offsets), pa.py_buffer(out[:size])]
    return pa.Array.from_buffers(pa.large_string(), len(minor), buffers)


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
