"""The column-wise phone fast path gives exactly what the phonenumbers library gives."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat as Fmt
from phonenumbers import PhoneNumberType as Type

from audiences import phones

MAIN = ("US", "GB", "JP", "DE", "FR", "BR", "CA")
# Shared calling codes, leading-zero and carrier-code countries, and prefix transforms.
OTHERS = ("IT", "GG", "JE", "IM", "AU", "AR", "MX", "IN", "RU", "KZ", "CN", "KR", "SM", "BM", "CC")
TYPES = (Type.FIXED_LINE, Type.MOBILE, Type.TOLL_FREE, Type.PREMIUM_RATE, Type.VOIP, Type.UAN)


def reference(raw: str | None, region: str | None) -> str | None:
    """The pure-library path, one row at a time."""
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    return phones.library_e164(text, region) if text else None


def _forms(rng: random.Random, cc: int, nsn: str, prefix: str) -> list[str]:
    """The ways people write one number: plain, international, trunk prefix, (0), dots, extensions…"""
    num = phonenumbers.parse(f"+{cc}{nsn}", None)
    head, mid, tail = nsn[:3], nsn[3:6], nsn[6:]
    return [
        phonenumbers.format_number(num, Fmt.E164),
        phonenumbers.format_number(num, Fmt.INTERNATIONAL),
        phonenumbers.format_number(num, Fmt.NATIONAL),
        phonenumbers.format_number(num, Fmt.RFC3966),
        f"00{cc} {nsn}",
        f"+{cc} (0){nsn}",
        f"{cc}{nsn}",
        f"{cc}-{nsn}",
        f"{prefix}{nsn}",
        f"0{nsn}",
        f"1{nsn}",
        nsn,
        f"{head}.{mid}.{tail}",
        f"({head}) {mid}-{tail}",
        f"0{head}/{mid}{tail}",
        phonenumbers.format_number(num, Fmt.NATIONAL) + f" x{rng.randint(1, 9999)}",
        phonenumbers.format_number(num, Fmt.INTERNATIONAL) + f" ext. {rng.randint(1, 999)}",
        f"+{cc}{nsn}ext{rng.randint(1, 99)}",
        f"011 {cc} {nsn}",
        f"+0{nsn}",
        f"＋{cc} {nsn}",
        f"tel: 0{nsn}",
        nsn[:3],
    ]


def _generate(seed: int, regions: tuple[str, ...], per_region: int) -> list[tuple[str, str | None]]:
    """Example numbers of each type, with digits changed (some valid, some not), in every form."""
    rng = random.Random(seed)
    readers = [*MAIN, None, "ZZ", "IT", "GG", "AR", "RU", "AU"]
    rows = []
    for region in regions:
        prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
        for numtype in TYPES:
            example = phonenumbers.example_number_for_type(region, numtype)
            if example is None:
                continue
            digits = phonenumbers.national_significant_number(example)
            for _ in range(per_region):
                d = list(digits)
                for _ in range(rng.randint(0, 3)):
                    d[rng.randrange(max(0, len(d) - 6), len(d))] = str(rng.randint(0, 9))
                if rng.random() < 0.15:
                    d.pop()
                elif rng.random() < 0.15:
                    d.append(str(rng.randint(0, 9)))
                try:
                    forms = _forms(rng, example.country_code, "".join(d), prefix)
                except phonenumbers.NumberParseException:
                    continue
                rows += [(form, rng.choice([region, region, region, *readers])) for form in forms]
    return rows


def _compare(rows: Sequence[tuple[str | None, str | None]]) -> None:
    raw = pa.array([r[0] for r in rows], pa.string())
    regions = pa.array([r[1] for r in rows], pa.string())
    got = phones.e164_column(raw, regions).to_pylist()
    expected = [reference(text, region) for text, region in rows]
    wrong = [(row, g, e) for row, g, e in zip(rows, got, expected, strict=True) if g != e]
    assert wrong == []


def test_fast_path_matches_library_on_main_countries() -> None:
    rows = _generate(1, MAIN, 25)
    assert len(rows) > 20_000
    valid = sum(reference(text, region) is not None for text, region in rows)
    assert 0.2 < valid / len(rows) < 0.8  # both outcomes well represented
    _compare(rows)


def test_fast_path_matches_library_on_shared_codes_and_prefix_rules() -> None:
    _compare(_generate(2, OTHERS, 3))


def test_fast_path_matches_library_in_every_region() -> None:
    _compare(_generate(3, tuple(sorted(phonenumbers.SUPPORTED_REGIONS)), 1))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(
                r"\A(\+|00|\(|0)?[0-9 ().\-/]{0,18}([ ]?(x|ext\.?) ?[0-9]{1,4})?\Z", fullmatch=True
            ),
            st.sampled_from([*MAIN, None, "IT", "AR", "MX"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_fast_path_matches_library_on_random_strings(rows: list[tuple[str, str | None]]) -> None:
    _compare(rows)


def test_plain_forms_never_reach_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(phones, "library_e164", lambda text, region: calls.append(text))
    raw = pa.array(
        ["(650) 555-1234", "+44 20 7946 0958", "090-1234-5678", "+49 (0)30 123456", "01 23 45 67 89"]
    )
    regions = pa.array(["US", "US", "JP", "DE", "FR"])
    assert phones.e164_column(raw, regions).to_pylist() == [
        "+16505551234",
        "+442079460958",
        "+819012345678",
        "+4930123456",
        "+33123456789",
    ]
    assert calls == []


def test_the_library_runs_once_per_distinct_value_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str | None]] = []
    real = phones.library_e164

    def spy(text: str, region: str | None) -> str | None:
        calls.append((text, region))
        return real(text, region)

    monkeypatch.setattr(phones, "library_e164", spy)
    raw = pa.array(["tel: 650-555-1234"] * 500 + ["Phone 020 7946 0958"] * 500)
    regions = pa.array(["US"] * 250 + ["CA"] * 250 + ["GB"] * 500)
    out = phones.e164_column(raw, regions).to_pylist()
    assert sorted(calls) == [
        ("Phone 020 7946 0958", "GB"),
        ("tel: 650-555-1234", "CA"),
        ("tel: 650-555-1234", "US"),
    ]
    assert out == ["+16505551234"] * 500 + ["+442079460958"] * 500  # +1 numbers are valid whatever the reader


def test_blank_and_null_give_null() -> None:
    out = phones.e164_column(pa.array([None, "", "   ", "\u3000"], pa.string()), pa.array(["US"] * 4))
    assert out.to_pylist() == [None] * 4


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("00 44 20 7946 0958", "US", "+442079460958"),  # a space after the international "00"
        ("+ 44 20 7946 0958", "JP", "+442079460958"),
        ("00/27 81000", "US", "+2781000"),  # found by hypothesis: "00" then a separator
        ("00 1 650 555 1234", "GB", "+16505551234"),
    ],
)
def test_separator_after_international_prefix(text: str, region: str, expected: str) -> None:
    got = phones.e164_column(pa.array([text]), pa.array([region])).to_pylist()
    assert got == [expected] == [reference(text, region)]


_FORM = st.text(alphabet="0123456789 +()./-xXeEtT:", min_size=1, max_size=24)


@settings(max_examples=400, deadline=None)
@given(st.lists(_FORM, min_size=1, max_size=40))
def test_split_plain_gives_the_fast_regexs_groups(texts: list[str]) -> None:
    """The byte-pass split equals the ``_FAST`` regex's own groups on every text of that form."""
    plain = [t for t in texts if pc.match_substring_regex(pa.array([t]), phones._FAST)[0].as_py()]
    if not plain:
        return
    parts = pc.extract_regex(pa.array(plain), phones._FAST)
    want_digits = [
        "".join(c for c in body if c.isdigit()) for body in pc.struct_field(parts, "body").to_pylist()
    ]
    want_intl = [intl != "" for intl in pc.struct_field(parts, "intl").to_pylist()]
    digits, intl = phones._split_plain(pa.array(plain))
    assert digits.to_pylist() == want_digits
    assert intl.tolist() == want_intl


@pytest.mark.parametrize(
    ("text", "digits", "intl"),
    [
        ("001", "001", False),  # too short for a body after "00": national
        ("0012", "12", True),
        ("00 (44) 20 7946 0000 ext. 12", "442079460000", True),
        ("+1 650-555-0100 x 99", "16505550100", True),
        ("(650) 555.0100", "6505550100", False),
    ],
)
def test_split_plain_examples(text: str, digits: str, intl: bool) -> None:
    got_digits, got_intl = phones._split_plain(pa.array([text, "5551234"]).slice(0, 1))
    assert got_digits.to_pylist() == [digits]
    assert got_intl.tolist() == [intl]


def test_digits_only_keeps_nulls_and_slices() -> None:
    values = pa.array(["a1-2", None, "+44 (0)20", "", "９9"]).slice(1)
    assert phones.digits_only(values).to_pylist() == [None, "44020", "", "9"]
