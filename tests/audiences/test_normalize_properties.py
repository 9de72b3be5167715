"""Properties of the normalizers: idempotent, status consistent, NFC-insensitive."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences import normalize as nz

TEXT = st.lists(st.one_of(st.none(), st.text(max_size=24)), min_size=1, max_size=30)
EMAILISH = st.lists(
    st.from_regex(r"\A\s?[A-Za-zÀ-ÿ0-9.+_-]{1,12}@[A-Za-z0-9-]{1,10}(\.[A-Za-z]{2,4}){1,2}\s?\Z")
)
PHONEISH = st.lists(st.from_regex(r"\A(\+|00)?[0-9 ().-]{6,16}\Z", fullmatch=True), min_size=1, max_size=20)

Normalizer = Callable[[pd.Series], nz.Normalized]
TEXT_KEYS: dict[str, Normalizer] = {
    "email-meta": lambda s: nz.normalize_email(s, "meta"),
    "email-google": lambda s: nz.normalize_email(s, "google"),
    "name-meta": lambda s: nz.normalize_name(s, "meta"),
    "name-google": lambda s: nz.normalize_name(s, "google"),
    "city": nz.normalize_city,
    "state-us": lambda s: nz.normalize_state(s, "us"),
    "state-fr": lambda s: nz.normalize_state(s, "fr"),
    "zip-us-meta": lambda s: nz.normalize_zip(s, "us", "meta"),
    "zip-gb-meta": lambda s: nz.normalize_zip(s, "gb", "meta"),
    "zip-jp-google": lambda s: nz.normalize_zip(s, "jp", "google"),
    "country-meta": lambda s: nz.normalize_country(s, None, "meta"),
    "country-google": lambda s: nz.normalize_country(s, None, "google"),
    "gender": nz.normalize_gender,
    "madid": nz.normalize_madid,
    "extern_id": nz.normalize_extern_id,
}


def _is_blank(value: str | None) -> bool:
    """Missing, or nothing but whitespace, separators, controls and invisible format characters."""
    return value is None or all(
        c.isspace() or unicodedata.category(c) in ("Zs", "Zl", "Zp", "Cc", "Cf") for c in value
    )


def _check_idempotent_and_consistent(normalize: Normalizer, values: Sequence[str | None]) -> None:
    s = pd.Series(values, dtype="str")
    once = normalize(s)
    assert normalize(once.values).values.tolist() == once.values.tolist()
    blank = pd.Series([_is_blank(v) for v in values], index=s.index)
    status = once.status.astype(str)
    assert ((status == "valid") == (once.values != "")).all()
    assert (status[blank & (status != "valid")] == "blank").all()
    assert (status[~blank] != "blank").all()


@pytest.mark.parametrize("key", list(TEXT_KEYS))
@settings(max_examples=40, deadline=None)
@given(values=TEXT)
def test_text_keys_are_idempotent_with_consistent_status(key: str, values: list[str | None]) -> None:
    _check_idempotent_and_consistent(TEXT_KEYS[key], values)


@settings(max_examples=40, deadline=None)
@given(values=EMAILISH)
def test_emails_are_idempotent(values: list[str]) -> None:
    for platform in ("meta", "google", "tiktok"):
        _check_idempotent_and_consistent(lambda s, p=platform: nz.normalize_email(s, p), values or [None])


@settings(max_examples=30, deadline=None)
@given(values=PHONEISH, country=st.sampled_from(["us", "gb", "jp", "de", "fr", "br", "ca"]))
def test_e164_phones_are_idempotent(values: list[str], country: str) -> None:
    _check_idempotent_and_consistent(lambda s: nz.normalize_phone(s, country, "google"), values)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.text(max_size=16), min_size=1, max_size=20))
def test_nfc_and_nfd_spellings_normalize_alike(values: list[str]) -> None:
    nfc = pd.Series([unicodedata.normalize("NFC", v) for v in values], dtype="str")
    nfd = pd.Series([unicodedata.normalize("NFD", v) for v in values], dtype="str")
    for normalize in (TEXT_KEYS["name-meta"], TEXT_KEYS["name-google"], nz.normalize_city):
        assert normalize(nfc).values.tolist() == normalize(nfd).values.tolist()


def test_country_default_fills_blanks_only_when_asked() -> None:
    s = pd.Series(["", "Narnia", "France"], dtype="str")
    assert nz.normalize_country(s, None, "meta").values.tolist() == ["", "", "fr"]
    filled = nz.normalize_country(s, "JP", "google")
    assert filled.values.tolist() == ["JP", "", "FR"]
    assert filled.status.tolist() == ["valid", "invalid", "valid"]


def test_counts_add_up() -> None:
    result = nz.normalize_email(pd.Series(["a@b.co", "", None, "nope"], dtype="str"), "meta")
    assert result.counts() == {"valid": 1, "blank": 2, "invalid": 1}


def test_numeric_columns_are_read_as_text() -> None:
    assert nz.normalize_zip(pd.Series([2134.0, None, 94107.0]), "us", "meta").values.tolist() == [
        "02134",
        "",
        "94107",
    ]
    assert nz.normalize_phone(pd.Series([6505551234]), "us", "meta").values.tolist() == ["16505551234"]
