"""Platform upload frames: headers, row order, hashed and plain columns, counts, errors."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences import errors, exports
from audiences.exports import (
    HASHED_COLUMNS,
    NORMALIZATION_SPEC_VERSION,
    PLAIN_COLUMNS,
    export_frame,
)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
HEX64 = re.compile(r"[0-9a-f]{64}")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def customers() -> pd.DataFrame:
    """Three messy customers, every logical column, a shuffled index and a column no platform uses."""
    return pd.DataFrame(
        {
            "customer_id": ["c3", "c1", "c2"],
            "email": [" John.Doe@Gmail.com ", "", "hanako@example.jp"],
            "phone": ["(650) 555-1234", None, "090-1234-5678"],
            "first_name": ["José", "  ", "花子"],
            "last_name": ["O'Brien", None, "山田"],
            "city": ["São Paulo", None, "東京"],
            "state": ["California", None, "東京都"],
            "zip": ["94107-1234", None, "100-0001"],
            "country": ["United States", None, "日本"],
            "gender": ["male", None, "女性"],
            "birth_date": ["1985-03-07", None, "1990年12月1日"],
            "madid": ["6D92078A-8246-4BA4-AE5B-76104861E7DC", None, None],
            "extern_id": ["C-3", None, "C-2"],
        },
        index=[30, 10, 20],
    )


def test_meta_header_row_order_and_values(customers: pd.DataFrame) -> None:
    result = export_frame(customers, "meta", "JP")
    frame = result.frame
    assert list(frame.columns) == [
        "email", "phone", "fn", "ln", "fi", "ct", "st", "zip", "country",
        "doby", "dobm", "dobd", "gen", "madid", "extern_id",
    ]  # fmt: skip
    assert frame.index.tolist() == [30, 10, 20]
    first = frame.loc[30]
    assert first["email"] == _sha("john.doe@gmail.com")
    assert first["phone"] == _sha("16505551234")
    assert (first["fn"], first["fi"], first["ln"]) == (_sha("josé"), _sha("j"), _sha("obrien"))
    assert (first["ct"], first["st"], first["zip"]) == (_sha("saopaulo"), _sha("ca"), _sha("94107"))
    assert (first["country"], first["gen"]) == (_sha("us"), _sha("m"))
    assert (first["doby"], first["dobm"], first["dobd"]) == (_sha("1985"), _sha("03"), _sha("07"))
    assert (first["madid"], first["extern_id"]) == ("6d92078a-8246-4ba4-ae5b-76104861e7dc", "C-3")
    third = frame.loc[20]
    assert third["phone"] == _sha("819012345678")
    assert (third["ct"], third["st"], third["zip"]) == (_sha("東京"), _sha("東京都"), _sha("1000001"))
    assert (third["dobm"], third["dobd"], third["gen"]) == (_sha("12"), _sha("01"), _sha("f"))
    # the blank customer keeps its row, all blank: with no address, the default country is not written
    assert frame.loc[10].tolist() == [""] * 15
    assert result.empty_rows.tolist() == [False, True, False]
    assert result.spec_version == NORMALIZATION_SPEC_VERSION == "2026.11-1"


def test_google_header_plain_country_and_zip(customers: pd.DataFrame) -> None:
    result = export_frame(customers, "google", "JP")
    frame = result.frame
    assert list(frame.columns) == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
    assert frame["Email"].tolist() == [_sha("johndoe@gmail.com"), "", _sha("hanako@example.jp")]
    assert frame["Phone"].tolist() == [_sha("+16505551234"), "", _sha("+819012345678")]
    assert frame["First Name"].tolist() == [_sha("josé"), "", _sha("花子")]
    assert frame["Last Name"].tolist() == [_sha("o'brien"), "", _sha("山田")]
    assert frame["Country"].tolist() == ["US", "", "JP"]
    assert frame["Zip"].tolist() == ["94107", "", "100-0001"]
    assert result.hashed_columns == ("Email", "Phone", "First Name", "Last Name")
    assert result.plain_columns == ("Country", "Zip")


def test_tiktok_header_and_phone_format(customers: pd.DataFrame) -> None:
    e164 = export_frame(customers, "tiktok", "JP")
    assert list(e164.frame.columns) == ["EMAIL_SHA256", "PHONE_SHA256"]
    assert e164.frame["PHONE_SHA256"].tolist() == [_sha("+16505551234"), "", _sha("+819012345678")]
    digits = export_frame(customers, "tiktok", "JP", tiktok_phone_format="digits")
    assert digits.frame["PHONE_SHA256"].tolist() == [_sha("16505551234"), "", _sha("819012345678")]
    assert e164.empty_rows.tolist() == [False, True, False]


def test_only_columns_with_an_input_are_written() -> None:
    df = pd.DataFrame({"phone": ["+44 20 7946 0958"], "first_name": ["Ann"]})
    assert list(export_frame(df, "meta", None).frame.columns) == ["phone", "fn", "fi"]
    assert list(export_frame(df, "google", None).frame.columns) == ["Phone", "First Name"]
    assert list(export_frame(df, "tiktok", None).frame.columns) == ["PHONE_SHA256"]


def test_counts_per_column_add_up_to_the_rows(customers: pd.DataFrame) -> None:
    customers.loc[10, "email"] = "not-an-address"
    result = export_frame(customers, "meta", None)
    assert result.counts["email"] == {"valid": 2, "blank": 0, "invalid": 1}
    assert result.counts["country"] == {"valid": 2, "blank": 1, "invalid": 0}
    assert result.counts["fi"] == {"valid": 2, "blank": 1, "invalid": 0}
    for counts in result.counts.values():
        assert sum(counts.values()) == len(customers)


def test_platform_rules_for_hashed_and_plain_columns() -> None:
    assert PLAIN_COLUMNS["meta"] == ("madid", "extern_id")
    assert PLAIN_COLUMNS["google"] == ("Country", "Zip")
    assert PLAIN_COLUMNS["tiktok"] == ()
    assert HASHED_COLUMNS["tiktok"] == ("EMAIL_SHA256", "PHONE_SHA256")
    assert "gen" in HASHED_COLUMNS["meta"] and "madid" not in HASHED_COLUMNS["meta"]


def test_nfc_and_nfd_jose_hash_the_same() -> None:
    df = pd.DataFrame(
        {"first_name": [unicodedata.normalize("NFC", "José"), unicodedata.normalize("NFD", "José")]}
    )
    for platform, column in (("meta", "fn"), ("google", "First Name")):
        cells = export_frame(df, platform, None).frame[column].tolist()
        assert cells[0] == cells[1] == _sha("josé")


def test_already_hashed_input_passes_through() -> None:
    digest = _sha("john.doe@example.com")
    df = pd.DataFrame({"email": [digest.upper()], "phone": [_sha("16505551234")]})
    frame = export_frame(df, "meta", "US").frame
    assert frame.iloc[0].tolist() == [digest, _sha("16505551234")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"platform": "linkedin"}, "platform 'linkedin'"),
        ({"default_country": "Japan"}, "default country 'Japan'"),
        ({"default_country": "XX"}, "default country 'XX'"),
        ({"tiktok_phone_format": "raw"}, "tiktok_phone_format 'raw'"),
    ],
)
def test_config_errors_name_the_setting(kwargs: dict[str, str], message: str) -> None:
    args = {"platform": "tiktok", "default_country": "JP", **kwargs}
    with pytest.raises(errors.ConfigError, match=re.escape(message)) as caught:
        export_frame(pd.DataFrame({"email": ["a@b.co"]}), **args)
    assert caught.value.exit_code == 2


def test_no_identifier_column_is_a_config_error_without_personal_data() -> None:
    with pytest.raises(errors.ConfigError, match="no identifier column for google") as caught:
        export_frame(pd.DataFrame({"customer_id": ["john.doe@example.com"], "gender": ["f"]}), "google", "US")
    assert "john" not in str(caught.value)


def test_error_families_share_one_root() -> None:
    families = (errors.ConfigError, errors.DataError, errors.RetriableUploadError, errors.FatalUploadError)
    assert all(issubclass(cls, errors.AudiencesError) for cls in (*families, errors.GuardError))
    assert errors.AudiencesError.exit_code == 1 and errors.ConfigError.exit_code == 2
    assert errors.GuardError.exit_code == errors.DataError.exit_code == 1


MESSY = st.one_of(
    st.none(), st.text(max_size=20), st.sampled_from(["  ", "\u00a0", "", "a@b.co", "+1 650 555 1234"])
)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(MESSY, MESSY, MESSY, MESSY, MESSY), min_size=1, max_size=15))
def test_hashed_cells_are_blank_or_hex_and_never_the_empty_digest(rows: list[tuple[str | None, ...]]) -> None:
    df = pd.DataFrame(rows, columns=["email", "phone", "first_name", "city", "country"], dtype="str")
    for platform in ("meta", "google", "tiktok"):
        result = export_frame(df, platform, "US")
        assert len(result.frame) == len(df)
        for column in result.hashed_columns:
            cells = result.frame[column].tolist()
            assert all(cell == "" or HEX64.fullmatch(cell) for cell in cells)
            assert EMPTY_SHA256 not in cells
        assert export_frame(df, platform, "US").frame.equals(result.frame)


def test_default_country_fills_blank_country_only_for_rows_with_an_address() -> None:
    people = pd.DataFrame(
        {"email": ["a@b.example", "c@d.example", ""], "zip": ["100-0001", "", ""], "country": ["", "", ""]},
        dtype="str",
    )
    google = export_frame(people, "google", "JP")
    assert google.frame["Country"].tolist() == ["JP", "", ""]
    assert google.counts["Country"] == {"valid": 1, "blank": 2, "invalid": 0}
    meta = export_frame(people, "meta", "JP")
    assert meta.frame["country"].tolist() == [_sha("jp"), "", ""]
    assert export_frame(people, "meta", None).frame["country"].tolist() == ["", "", ""]


def _repetitive(n: int) -> pd.DataFrame:
    """``n`` rows drawn from a few messy values per column, countries mixed, so every key repeats."""
    rng = np.random.default_rng(3)
    pick = {
        "email": ["a@x.com", " B@Gmail.com", "", "bad@", "c.d@gmail.com"],
        "phone": ["(650) 555-1234", "+44 20 7946 0000", "090-1234-5678", "020 7946 0000", "", "12", None],
        "first_name": ["José", " Zoë ", "", "花子", "Ö'Neil"],
        "last_name": ["O'Brien", None, "山田"],
        "city": ["São Paulo", "", "Köln"],
        "state": ["California", "ca", "NRW", "", "Nowhere"],
        "zip": ["94107-1234", "SW1A 1AA", "100-0001", "2134", ""],
        "country": ["US", "United Kingdom", "JP", "", "Atlantis", "de"],
        "gender": ["male", "F", "", "x"],
        "birth_date": ["1985-03-07", "07/03/1985", "", "31/02/1990"],
        "madid": ["6D92078A-8246-4BA4-AE5B-76104861E7DC", ""],
        "extern_id": ["c1", "a@b.com", ""],
    }
    return pd.DataFrame(
        {
            key: pd.Series(rng.choice(np.array(values, dtype=object), n), dtype="str")
            for key, values in pick.items()
        }
    )


@pytest.mark.parametrize("platform", ["meta", "google", "tiktok"])
def test_per_distinct_rows_give_the_per_row_answer(platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Normalizing each distinct (value, country) once and spreading it is the same as every row alone."""
    df = _repetitive(6000)
    assert exports.distinct_rows(df["country"]) is not None  # the distinct path really runs
    fast = export_frame(df, platform, "US")
    monkeypatch.setattr(exports, "distinct_rows", lambda *columns: None)
    slow = export_frame(df, platform, "US")
    pd.testing.assert_frame_equal(fast.frame, slow.frame)
    assert fast.counts == slow.counts
    assert fast.empty_rows.tolist() == slow.empty_rows.tolist()
    assert fast.empty_rows.tolist() == (fast.frame == "").all(axis=1).tolist()


def test_distinct_rows_skips_columns_that_do_not_repeat() -> None:
    distinct = pd.Series([f"user{i}@example.com" for i in range(10_000)], dtype="str")
    assert exports.distinct_rows(distinct) is None
    first, codes = exports.distinct_rows(pd.Series(["a", None, "a", "b", None], dtype="str")) or ((), ())
    assert list(first) == [0, 1, 3]
    assert list(codes) == [0, 1, 0, 2, 1]
