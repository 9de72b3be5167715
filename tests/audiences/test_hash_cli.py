"""``audiences hash``: headers and row order per platform, streaming, counts, and errors."""

from __future__ import annotations

import csv
import hashlib
import re
import stat
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from audiences.cli import main

DEMO = Path(__file__).parents[2] / "fixtures" / "demo"
HEX = re.compile(r"^[0-9a-f]{64}$")
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["hash", *args])
    return result.exit_code, result.output


def read(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(
        "email,phone,first_name,last_name,country,zip\n"
        " John.Doe@Example.COM ,(650) 555-1234,John,Doe,US,94107-1234\n"
        "j.o.e@gmail.com,020 7946 0958,José,O'Brien,United Kingdom,M1 1AE\n"
        ",,,,,\n"
        "not-an-address,12,山田,太郎,日本,100-0001\n",
        encoding="utf-8",
    )
    return path


def test_meta_header_order_and_values(tmp_path: Path, people: Path) -> None:
    out = tmp_path / "meta.csv"
    code, output = run("--platform", "meta", str(people), str(out), "--default-country", "US", "--jobs", "1")
    assert code == 0, output
    header, *rows = read(out)
    assert header == ["email", "phone", "fn", "ln", "fi", "zip", "country"]
    assert len(rows) == 4
    assert rows[0][0] == sha("john.doe@example.com") and rows[0][1] == sha("16505551234")
    assert rows[1][1] == sha("442079460958") and rows[1][2] == sha("josé") and rows[1][3] == sha("obrien")
    assert rows[1][4] == sha("j") and rows[1][5] == sha("m11ae") and rows[1][6] == sha("gb")
    assert rows[2] == [""] * 7
    assert rows[3][0] == "" and rows[3][1] == "" and rows[3][2] == sha("山田")
    assert rows[0][5] == sha("94107")


def test_google_header_plain_country_zip_and_gmail_dots(tmp_path: Path, people: Path) -> None:
    out = tmp_path / "google.csv"
    code, output = run("--platform", "google", str(people), str(out), "--default-country", "US")
    assert code == 0, output
    header, *rows = read(out)
    assert header == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
    assert rows[1][0] == sha("joe@gmail.com")
    assert rows[0][1] == sha("+16505551234")
    assert rows[0][4] == "US" and rows[1][4] == "GB"
    assert rows[0][5] == "94107"


def test_tiktok_header_and_phone_forms(tmp_path: Path, people: Path) -> None:
    out = tmp_path / "tiktok.csv"
    assert run("--platform", "tiktok", str(people), str(out), "--default-country", "US")[0] == 0
    header, *rows = read(out)
    assert header == ["EMAIL_SHA256", "PHONE_SHA256"]
    assert rows[0] == [sha("john.doe@example.com"), sha("+16505551234")]
    digits = tmp_path / "tiktok-digits.csv"
    assert (
        run(
            "--platform",
            "tiktok",
            str(people),
            str(digits),
            "--default-country",
            "US",
            "--tiktok-phone-format",
            "digits",
        )[0]
        == 0
    )
    assert read(digits)[1][1] == sha("16505551234")


def test_counts_printed_without_values(tmp_path: Path, people: Path) -> None:
    code, output = run("--platform", "meta", str(people), str(tmp_path / "o.csv"), "--default-country", "US")
    assert code == 0
    assert re.search(r"email\s*│\s*sha256\s*│\s*2\s*│\s*1\s*│\s*1", output), output
    assert "example.com" not in output.lower() and "650" not in output and "Doe" not in output


def test_output_is_owner_only(tmp_path: Path, people: Path) -> None:
    out = tmp_path / "o.csv"
    assert run("--platform", "tiktok", str(people), str(out), "--default-country", "US")[0] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("platform", ["meta", "google", "tiktok"])
def test_demo_customers_every_hashed_cell_is_hex_or_blank(tmp_path: Path, platform: str) -> None:
    out = tmp_path / f"{platform}.csv"
    code, output = run(
        "--platform",
        platform,
        str(DEMO / "customers.csv"),
        str(out),
        "--config",
        str(DEMO / "retarget.yaml"),
        "--chunk-size",
        "700",
        "--jobs",
        "2",
    )
    assert code == 0, output
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(frame) == 5000
    plain = {"Country", "Zip"}
    for column in frame.columns:
        if column in plain:
            continue
        values = frame[column][frame[column] != ""]
        assert values.str.fullmatch(HEX.pattern).all(), column
        assert not (values == EMPTY_SHA).any(), column


def test_chunking_and_jobs_do_not_change_output(tmp_path: Path) -> None:
    args = ["--platform", "meta", str(DEMO / "customers.csv")]
    one, many = tmp_path / "one.csv", tmp_path / "many.csv"
    assert run(*args, str(one), "--default-country", "JP", "--jobs", "1")[0] == 0
    assert run(*args, str(many), "--default-country", "JP", "--jobs", "2", "--chunk-size", "333")[0] == 0
    assert one.read_bytes() == many.read_bytes()


def test_parquet_input(tmp_path: Path, people: Path) -> None:
    parquet = tmp_path / "people.parquet"
    pd.read_csv(people, dtype=str, keep_default_na=False).to_parquet(parquet)
    csv_out, pq_out = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run("--platform", "meta", str(people), str(csv_out), "--default-country", "US")[0] == 0
    assert run("--platform", "meta", str(parquet), str(pq_out), "--default-country", "US")[0] == 0
    assert csv_out.read_bytes() == pq_out.read_bytes()


def test_mapped_columns_from_config(tmp_path: Path) -> None:
    (tmp_path / "shop.csv").write_text("Mail,Tel\nA@B.example,+1 650 555 1234\n", encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text(
        "shop: {name: S, currency: USD, default_country: US}\n"
        "customers: {source: {path: shop.csv}, columns: {email: Mail, phone: Tel}}\n"
    )
    out = tmp_path / "o.csv"
    code, output = run("--platform", "tiktok", str(tmp_path / "shop.csv"), str(out), "--config", str(config))
    assert code == 0, output
    assert read(out)[1] == [sha("a@b.example"), sha("+16505551234")]


def test_errors_exit_2_and_name_the_problem(tmp_path: Path) -> None:
    none = tmp_path / "none.csv"
    none.write_text("foo,bar\n1,2\n")
    code, output = run("--platform", "meta", str(none), str(tmp_path / "o.csv"))
    assert code == 2 and "no identifier column" in output
    code, output = run("--platform", "meta", str(tmp_path / "missing.csv"), str(tmp_path / "o.csv"))
    assert code == 2 and "missing.csv: file not found" in output
    code, output = run("--platform", "bing", str(none), str(tmp_path / "o.csv"))
    assert code == 2
