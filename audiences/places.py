"""Place rules over whole columns: accent folding for CT/ST, countries, US states, postal codes.

Library look-ups (pycountry) build small dictionaries once; columns are mapped through them one
distinct value at a time, never row by row.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc
import pycountry

from audiences.hashing import per_distinct

# fmt: off
# Latin letters with no canonical decomposition, spelled in plain a–z as Meta recommends for CT/ST.
_LATIN_EXTRA = {
    "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ħ": "h",
}
# Common local and short names pycountry does not carry (keys are folded like any input).
COUNTRY_ALIASES = {
    "us": ("USA", "U.S.A.", "U.S.", "Estados Unidos", "États-Unis", "Vereinigte Staaten",
           "アメリカ", "アメリカ合衆国", "米国"),
    "gb": ("UK", "U.K.", "Great Britain", "Britain", "England", "Scotland", "Wales", "Northern Ireland",
           "Royaume-Uni", "Reino Unido", "Vereinigtes Königreich", "Großbritannien", "イギリス", "英国"),
    "de": ("Deutschland", "Allemagne", "Alemania", "Germania", "Alemanha", "ドイツ"),
    "jp": ("日本", "日本国", "にほん", "にっぽん", "Nippon", "Nihon", "Japon", "Japão", "Giappone"),
    "fr": ("Frankreich", "Francia", "França", "フランス"),
    "br": ("Brasil", "Brésil", "Brasilien", "ブラジル"),
    "ca": ("Kanada", "カナダ"),
    "es": ("España", "Spanien", "Espagne", "スペイン"),
    "it": ("Italia", "Italien", "Italie", "イタリア"),
    "nl": ("Nederland", "Holland", "The Netherlands", "Pays-Bas", "Niederlande"),
    "ch": ("Schweiz", "Suisse", "Svizzera", "スイス"),
    "at": ("Österreich", "Autriche"),
    "kr": ("Korea", "대한민국", "한국", "韓国"),
    "cn": ("中国", "中華人民共和国", "中华人民共和国"),
    "tw": ("台湾", "臺灣"),
    "ru": ("Russia", "Россия"),
    "tr": ("Turkey",),
}
# fmt: on
# Postal mark, spaces (any), invisible characters and dashes (any).
_ZIP_DROP = r"^〒|[\s\p{Z}\p{Cc}\p{Cf}\p{Pd}]+"
# Everything but letters, marks and digits: punctuation, symbols, separators (spaces), controls.
_NOT_WORD = r"[\p{P}\p{S}\p{Z}\p{C}]+"
# US ZIP codes also serve the US territories that have their own ISO codes.
ZIP_COUNTRIES = ("us", "pr", "vi", "gu", "as", "mp", "um")
_US_STATE_ALIASES = {
    "dc": ("Washington DC", "Washington, D.C."),
    "hi": ("Hawaiʻi",),
    "vi": ("US Virgin Islands",),
}


def fold_accents(text: pa.Array) -> pa.Array:
    """Remove accents from Latin letters (``São`` → ``Sao``); other scripts keep their marks (``ガ``)."""
    decomposed = pc.utf8_normalize(text, form="NFD")
    bare = pc.replace_substring_regex(decomposed, r"(\p{Latin})\p{Mn}+", r"\1")
    for letter, plain in _LATIN_EXTRA.items():
        bare = pc.replace_substring(bare, letter, plain)
        bare = pc.replace_substring(bare, letter.upper(), plain)
    return pc.utf8_normalize(bare, form="NFC")


def squash(text: pa.Array) -> pa.Array:
    """Drop punctuation, symbols, spaces and control characters; letters, marks and digits stay."""
    return pc.utf8_normalize(pc.replace_substring_regex(text, _NOT_WORD, ""), form="NFC")


def place_key(text: pa.Array) -> pa.Array:
    """The CT rule: lowercase, accents removed from Latin letters, no punctuation or spaces."""
    # Squash first: a mark left after removed punctuation would otherwise land on a letter next time.
    return fold_accents(squash(pc.utf8_lower(text)))


def lookup(
    text: pa.Array, table: dict[str, str], key: Callable[[pa.Array], pa.Array] | None = None
) -> pa.Array:
    """Map each distinct value (keyed by ``key``) through ``table``; unknown ones become null."""

    def mapped(uniques: pa.Array) -> pa.Array:
        keys = (key(uniques) if key else uniques).to_pylist()
        return pa.array([table.get(k) for k in keys], type=pa.string())

    return per_distinct(text, mapped, always=True)


def country_codes(text: pa.Array) -> pa.Array:
    """ISO 3166-1 alpha-2, lowercase, from codes, English names and common local names; null if unknown."""
    return lookup(text, _country_table(), place_key)


def us_state_codes(text: pa.Array) -> pa.Array:
    """Two-letter US state code, lowercase, from codes or names; null if unknown."""
    return lookup(text, _us_state_table(), place_key)


def postal_codes(text: pa.Array, countries: pa.Array, hashed: bool) -> pa.Array:
    """ZIP rule: US first 5 digits (lost zeros padded); elsewhere lowercase without spaces and dashes.

    Plain (Google) keeps a non-US code as written after trimming. Null where a US code is not one.
    """
    compact = pc.replace_substring_regex(pc.utf8_normalize(text, form="NFKC"), _ZIP_DROP, "")
    us = pc.is_in(countries, pa.array(ZIP_COUNTRIES)).to_numpy(zero_copy_only=False)
    parts = pc.extract_regex(compact, r"^(?:(?P<plus4>\d{4,5})\d{4}|(?P<zip>\d{3,5}))$")
    digits = pc.binary_join_element_wise(pc.struct_field(parts, "plus4"), pc.struct_field(parts, "zip"), "")
    zip5 = pc.utf8_lpad(digits, 5, "0")
    other = pc.utf8_lower(compact) if hashed else text
    return pc.if_else(pa.array(us), zip5, other)


@cache
def _country_table() -> dict[str, str]:
    """Place key → alpha-2; codes win over names, names over aliases, when two would share a key."""
    entries: list[tuple[str, str]] = []
    for country in pycountry.countries:
        code = country.alpha_2.lower()
        names = [country.alpha_2, country.alpha_3, country.name]
        names += [
            getattr(country, attr) for attr in ("official_name", "common_name") if hasattr(country, attr)
        ]
        entries += [(name, code) for name in names]
    entries += [(alias, code) for code, aliases in COUNTRY_ALIASES.items() for alias in aliases]
    return _table(entries)


@cache
def _us_state_table() -> dict[str, str]:
    """Place key of each US subdivision's code and name → its code."""
    entries: list[tuple[str, str]] = []
    for sub in pycountry.subdivisions.get(country_code="US"):
        code = sub.code.split("-")[1].lower()
        entries += [(code, code), (sub.name, code)]
    entries += [(alias, code) for code, aliases in _US_STATE_ALIASES.items() for alias in aliases]
    return _table(entries)


def _table(entries: list[tuple[str, str]]) -> dict[str, str]:
    """Key each name with ``place_key``; the first entry for a key wins."""
    keys = place_key(pa.array([name for name, _ in entries])).to_pylist()
    table: dict[str, str] = {}
    for key, (_, code) in zip(keys, entries, strict=True):
        if key:
            table.setdefault(key, code)
    return table
