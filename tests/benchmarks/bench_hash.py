"""Benchmark: Meta multi-key hashing against the official SDK and the hashlib floor (issue 3).

Usage: python tests/benchmarks/bench_hash.py [--rows 1000000] [--sdk-rows 200000] [--file-rows 10000000]

Generates messy customers at run time (nothing committed), then measures on the same rows:
1. this project: ``export_frame`` (one process, keys on two threads), the same with every key normalized
   row by row (as if no value repeated: the worst case), and ``audiences hash`` on a CSV, 8 Meta keys;
2. the official facebook-business SDK: ``CustomAudience.format_params(schema, users, is_raw=True)``;
3. the floor: ``hashlib.sha256(value).hexdigest()`` in a plain loop over the already-normalized values.
With ``--file-rows`` it also runs ``audiences hash`` over a file of that many rows in a child process and
reports its peak memory (target: under 1 GB for 10,000,000 rows).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from audiences.exports import export_frame

KEYS = ["email", "phone", "first_name", "last_name", "city", "state", "zip", "country"]
SCHEMA = ["EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY"]
META_COLUMNS = ["email", "phone", "fn", "ln", "ct", "st", "zip", "country"]

FIRST = ["José", "Zoë", "Renée", "John", "Mary", "山田", "太郎", "Hans", "Élodie", "Aoife", "Søren", "Maria"]
LAST = ["O'Brien", "Müller", "García", "Smith", "佐藤", "Dupont", "Núñez", "Lee", "van der Berg", "Schröder"]
PLACES = {  # country code, country spellings, cities, states, zips, phone formats
    "US": (
        ["US", "United States", "usa", " us "],
        ["San Francisco", "New York", "Boston"],
        ["California", "CA", "ny", "Massachusetts"],
        ["94107", "94107-1234", "2134", "10001"],
        ["(650) 555-{a:04d}", "+1 650-555-{a:04d}", "650.555.{a:04d}", "001 650 555 {a:04d}"],
    ),
    "GB": (
        ["GB", "United Kingdom", "UK"],
        ["London", "Manchester"],
        ["England", ""],
        ["M1 1AE", "SW1A 1AA"],
        ["020 7946 {a:04d}", "+44 (0)20 7946 {a:04d}", "0044 20 7946 {a:04d}"],
    ),
    "JP": (
        ["JP", "Japan", "日本"],
        ["東京", "Osaka", "京都市"],
        ["東京都", "Osaka"],
        ["100-0001", "530-0001"],
        ["090-1234-{a:04d}", "+81 90 1234 {a:04d}", "03-5010-{a:04d}"],
    ),
    "DE": (
        ["DE", "Deutschland", "Germany"],
        ["Köln", "Berlin"],
        ["", "NRW"],
        ["50667", "10115"],
        ["030 1234{a:04d}", "+49 30 1234{a:04d}", "0221 123{a:04d}"],
    ),
    "FR": (
        ["FR", "France"],
        ["Paris", "Île-de-France"],
        ["", "Île-de-France"],
        ["75001", "69001"],
        ["01 23 45 {a2:02d} {b2:02d}", "+33 1 23 45 {a2:02d} {b2:02d}"],
    ),
}


def generate(n: int, seed: int = 7) -> pd.DataFrame:
    """``n`` messy customers; vectorised over a few thousand templates so generation is quick."""
    rng = np.random.default_rng(seed)
    countries = rng.choice(list(PLACES), size=n, p=[0.3, 0.15, 0.35, 0.1, 0.1])
    frame = {key: np.empty(n, dtype=object) for key in KEYS}
    for code, (names, cities, states, zips, phones) in PLACES.items():
        idx = np.flatnonzero(countries == code)
        k = len(idx)
        a = rng.integers(0, 10_000, size=k)
        fmt = rng.integers(0, len(phones), size=k)
        frame["phone"][idx] = [
            phones[f].format(a=v, a2=v % 100, b2=(v // 100) % 100) for f, v in zip(fmt, a, strict=True)
        ]
        frame["country"][idx] = rng.choice(names, size=k)
        frame["city"][idx] = rng.choice(cities, size=k)
        frame["state"][idx] = rng.choice(states, size=k)
        frame["zip"][idx] = rng.choice(zips, size=k)
    first = rng.choice(FIRST, size=n)
    last = rng.choice(LAST, size=n)
    serial = np.arange(n)
    frame["first_name"] = np.char.add(np.where(rng.random(n) < 0.2, " ", ""), first.astype(str)).astype(
        object
    )
    frame["last_name"] = last.astype(object)
    domains = rng.choice(["Example.com", "gmail.com", "example.jp", "example.de "], size=n)
    local = np.char.add(np.char.lower(first.astype(str)), serial.astype(str))
    frame["email"] = np.char.add(np.char.add(np.where(rng.random(n) < 0.1, " ", ""), local), "@")
    frame["email"] = np.char.add(frame["email"].astype(str), domains.astype(str)).astype(object)
    blank = rng.random(n) < 0.05
    frame["phone"][blank] = ""
    return pd.DataFrame({key: pd.Series(values, dtype="str") for key, values in frame.items()})


def time_ours(df: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    result = export_frame(df, "meta", "US")
    return time.perf_counter() - start, result.frame


def time_ours_per_row(df: pd.DataFrame) -> float:
    """``export_frame`` as if no value repeated: every key normalized row by row (the worst case)."""
    from audiences import exports

    found = exports.distinct_rows
    exports.distinct_rows = lambda *columns: None  # type: ignore[assignment]
    try:
        return time_ours(df)[0]
    finally:
        exports.distinct_rows = found


def time_floor(normalized: pd.DataFrame) -> float:
    columns = [normalized[c].tolist() for c in normalized.columns]
    sha256 = hashlib.sha256
    start = time.perf_counter()
    for values in columns:
        for value in values:
            if value:
                sha256(value.encode()).hexdigest()
    return time.perf_counter() - start


def time_sdk(df: pd.DataFrame) -> float | None:
    try:
        from facebook_business.adobjects.customaudience import CustomAudience
    except ImportError:
        print("facebook-business is not installed (make bench installs it); SDK column skipped")
        return None
    users = df[KEYS].values.tolist()
    start = time.perf_counter()
    CustomAudience.format_params(SCHEMA, users, is_raw=True)
    return time.perf_counter() - start


def normalized_values(df: pd.DataFrame) -> pd.DataFrame:
    """The project's normalized values before hashing: what the floor hands to hashlib."""
    from audiences import exports

    keys = exports._Keys(df, "meta", "US", "e164")  # the normalized stage, before hashing
    return pd.DataFrame(
        {col: keys.get(col, key).values for col, key in exports.TEMPLATES["meta"] if key in df}
    )


def time_file(df: pd.DataFrame, rows: int, work: Path) -> tuple[float, float]:
    """``audiences hash`` over ``rows`` rows in a child process: (seconds, peak RSS in MB)."""
    reps = -(-rows // len(df))
    path = work / f"people-{rows}.csv"
    table = pa.Table.from_pandas(df, preserve_index=False)
    with pacsv.CSVWriter(str(path), table.schema) as writer:
        written = 0
        for _ in range(reps):
            take = min(len(df), rows - written)
            writer.write_table(table.slice(0, take))
            written += take
    # The child reports its own peak (VmHWM) plus its workers' peak (RUSAGE_CHILDREN, which also counts
    # pages shared with it at fork): an upper bound on the memory the command needs at once.
    code = (
        "import resource,sys,time;from pathlib import Path;"
        "from audiences.hashfile import HashOptions,hash_file;"
        "t=time.perf_counter();hash_file(Path(sys.argv[1]),Path(sys.argv[2]),HashOptions('meta','US'));"
        "s=time.perf_counter()-t;"
        "hwm=[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
        "print(s, hwm + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(work / "out.csv")],
        check=True,
        capture_output=True,
        text=True,
    )
    path.unlink()
    seconds, kib = out.stdout.split()
    return float(seconds), int(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sdk-rows", type=int, default=200_000)
    parser.add_argument(
        "--file-rows", type=int, default=10_000_000, help="also hash a file this long (0 to skip)"
    )
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, pandas {pd.__version__}, pyarrow {pa.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    df = generate(args.rows)
    print(f"generated {len(df):,} messy customers")

    ours_s, frame = time_ours(df)
    per_row_s = time_ours_per_row(df)
    normalized = normalized_values(df)
    floor_s = time_floor(normalized)
    sdk_s = time_sdk(df.head(args.sdk_rows))
    with tempfile.TemporaryDirectory() as tmp:
        file_s, _ = time_file(df, len(df), Path(tmp))
        big = time_file(df, args.file_rows, Path(tmp)) if args.file_rows else None

    rate = len(df) / ours_s
    rows = [
        ("this project, export_frame (1 process)", ours_s, rate),
        ("this project, export_frame, no repeated value exploited", per_row_s, len(df) / per_row_s),
        ("this project, audiences hash CSV→CSV (all cores)", file_s, len(df) / file_s),
        ("hashlib floor (normalized values, 1 thread)", floor_s, len(df) / floor_s),
    ]
    if sdk_s is not None:
        rows.append((f"facebook-business SDK ({args.sdk_rows:,} rows)", sdk_s, args.sdk_rows / sdk_s))
    print("\n| run | seconds | rows/s |\n| --- | ---: | ---: |")
    for name, seconds, per_s in rows:
        print(f"| {name} | {seconds:.2f} | {per_s:,.0f} |")
    best = max(rate, len(df) / file_s)
    missed = []
    vs_floor = len(df) / best / floor_s
    print(f"\nbest of ours vs floor time: {vs_floor:.2f}x (target <= 1.2x)")
    if vs_floor > 1.2:
        missed.append("floor")
    if sdk_s is not None:
        vs_sdk = best / (args.sdk_rows / sdk_s)
        print(f"ours vs SDK rows/s: {vs_sdk:.1f}x (target >= 5x)")
        if vs_sdk < 5:
            missed.append("sdk")
    if big:
        seconds, peak = big
        print(f"audiences hash, {args.file_rows:,} rows: {seconds:.1f} s, peak RSS {peak:.0f} MB (< 1024?)")
        if peak >= 1024:
            missed.append("memory")
    blanks = (frame == "").sum().to_dict()
    print(f"blank cells per column (sanity): {blanks}")
    if missed:
        print(f"targets missed: {', '.join(missed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
