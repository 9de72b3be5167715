"""feedgen.config: loading the catalog side of the pipeline's YAML file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from feedgen.config import AUDIENCE_SECTIONS, load_config
from feedgen.errors import ConfigError, FeedgenError
from feedgen.writers import FORMATS

WriteConfig = Callable[..., Path]

VALID = """\
shop: {name: Demo Shop, currency: jpy, default_country: jp}
catalog:
  source: {path: data/catalog.csv, chunk_size: 500}
  columns: {id: sku, title: name}
feeds:
  out: out/feeds
  formats: [meta-csv, google-xml, meta-csv]
  labels: {custom_label_0: line, custom_label_1: price_band}
  price_bands: [1000, 5000.5]
  guard: {max_shrink: 0.3}
customers: {source: {path: customers.csv}}
orders: {source: {url: "sqlite:///orders.db", table: orders}}
consent: {column: ads_consent}
audiences: [{name: upsell, strategy: upsell}]
destinations: {meta: {token_env: META_TOKEN}}
state: {url: "sqlite:///out/state.db"}
"""

SHOP = "shop: {name: Demo, currency: JPY}\n"
CATALOG = "catalog: {source: {path: catalog.csv}}\n"


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == 2
    return info.value


def test_valid_config_resolves_paths_against_its_folder(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(VALID)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(path)

    folder = path.parent.resolve()
    assert config.catalog.source.path == folder / "data" / "catalog.csv"
    assert config.feeds.out == folder / "out" / "feeds"
    assert config.catalog.source.chunk_size == 500
    assert config.catalog.columns == {"id": "sku", "title": "name"}
    assert config.shop.currency == "JPY"
    assert config.shop.default_country == "JP"
    assert config.feeds.formats == ["meta-csv", "google-xml"]  # duplicates dropped, order kept
    assert config.feeds.labels == {"custom_label_0": "line", "custom_label_1": "price_band"}
    assert config.feeds.price_bands == [1000.0, 5000.5]
    assert config.feeds.guard.max_shrink == 0.3


def test_relative_config_path_resolves_against_the_config_folder_not_the_cwd(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(SHOP + CATALOG, folder="site/conf")
    monkeypatch.chdir(tmp_path / "site")

    config = load_config("conf/retarget.yaml")

    assert config.catalog.source.path == tmp_path.resolve() / "site" / "conf" / "catalog.csv"
    assert config.feeds.out == tmp_path.resolve() / "site" / "conf" / "out" / "feeds"


def test_defaults_when_feeds_section_is_left_out(write_config: WriteConfig) -> None:
    config = load_config(write_config(SHOP + CATALOG))

    assert config.feeds.formats == list(FORMATS)
    assert config.feeds.guard.max_shrink == 0.2
    assert config.feeds.out == config.base_dir / "out" / "feeds"
    assert config.shop.default_country == "US"


def test_absolute_paths_are_kept(write_config: WriteConfig, tmp_path: Path) -> None:
    catalog = tmp_path / "abs" / "catalog.parquet"
    out = tmp_path / "abs-out"
    path = write_config(SHOP + f"catalog: {{source: {{path: '{catalog}'}}}}\nfeeds: {{out: '{out}'}}\n")

    config = load_config(path)

    assert config.catalog.source.path == catalog
    assert config.feeds.out == out


def test_sqlite_url_resolves_against_the_config_folder(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(SHOP + "catalog: {source: {url: 'sqlite:///data/rel.db', table: products}}\n")
    monkeypatch.chdir(tmp_path)

    config = load_config(path)

    assert config.catalog.source.url == f"sqlite:///{path.parent.resolve() / 'data' / 'rel.db'}"
    assert config.catalog.source.table == "products"


@pytest.mark.parametrize("url", ["sqlite:////srv/shop/abs.db", "sqlite:///:memory:", "sqlite://"])
def test_absolute_and_memory_sqlite_urls_are_kept(write_config: WriteConfig, url: str) -> None:
    config = load_config(write_config(SHOP + f"catalog: {{source: {{url: '{url}', table: t}}}}\n"))

    assert config.catalog.source.url == url


def test_env_variable_is_filled_into_the_url(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PG_PASSWORD", "pw-from-env")
    url = "postgresql+psycopg://app:${PG_PASSWORD}@db.internal:5432/shop"
    config = load_config(write_config(SHOP + f"catalog: {{source: {{url: '{url}', query: 'select 1'}}}}\n"))

    assert config.catalog.source.url == "postgresql+psycopg://app:pw-from-env@db.internal:5432/shop"
    assert config.catalog.source.describe() == "SQL query"


def test_missing_env_variable_is_a_config_error_naming_it(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDGEN_TEST_UNSET_PASSWORD", raising=False)
    url = "postgresql+psycopg://app:${FEEDGEN_TEST_UNSET_PASSWORD}@db/shop"
    path = write_config(SHOP + f"catalog: {{source: {{url: '{url}', table: products}}}}\n")

    error = _error(path)

    assert "FEEDGEN_TEST_UNSET_PASSWORD" in str(error)
    assert "not set" in str(error)


def test_unknown_top_level_sections_are_all_listed(write_config: WriteConfig) -> None:
    error = _error(write_config(SHOP + CATALOG + "feed: {}\nextras: 1\n"))

    message = str(error)
    assert "unknown top-level section(s) extras, feed" in message
    assert "allowed:" in message


def test_audience_sections_are_accepted_and_ignored(write_config: WriteConfig) -> None:
    sections = "".join(f"{name}: {{anything: [1, 2, 3], nested: {{x: y}}}}\n" for name in AUDIENCE_SECTIONS)

    config = load_config(write_config(SHOP + CATALOG + sections))

    assert config.catalog.source.path is not None
    assert config.catalog.source.path.name == "catalog.csv"


@pytest.mark.parametrize(
    ("text", "location", "allowed"),
    [
        (SHOP + "catalog: {source: {pathh: catalog.csv}}\n", "catalog.source.pathh", "path, url, table"),
        (SHOP + CATALOG + "feeds: {guard: {max_shrinkk: 0.5}}\n", "feeds.guard.max_shrinkk", "max_shrink"),
        ("shop: {name: Demo, currency: JPY, nmae: x}\n" + CATALOG, "shop.nmae", "name, currency"),
        (
            SHOP + "catalog: {source: {path: catalog.csv}, colums: {id: sku}}\n",
            "catalog.colums",
            "source, columns",
        ),
        (SHOP + CATALOG + "feeds: {label: {custom_label_0: line}}\n", "feeds.label", "out, formats, labels"),
    ],
)
def test_unknown_key_inside_a_section_names_its_location(
    write_config: WriteConfig, text: str, location: str, allowed: str
) -> None:
    error = _error(write_config(text))

    assert f"  {location}: unknown key; allowed here: {allowed}" in str(error)


@pytest.mark.parametrize(
    ("text", "location", "detail"),
    [
        ("shop: {name: Demo, currency: XYZ}\n" + CATALOG, "shop.currency", "'XYZ'"),
        (
            "shop: {name: Demo, currency: JPY, default_country: XX}\n" + CATALOG,
            "shop.default_country",
            "'XX'",
        ),
        ("shop: {currency: JPY}\n" + CATALOG, "shop.name", "Field required"),
        (SHOP, "catalog", "Field required"),
        (SHOP + CATALOG + "feeds: {formats: [meta-csv, meta-json]}\n", "feeds.formats", "['meta-json']"),
        (SHOP + CATALOG + "feeds: {formats: []}\n", "feeds.formats", "at least one format"),
        (SHOP + CATALOG + "feeds: {labels: {custom_label_9: line}}\n", "feeds.labels", "'custom_label_9'"),
        (SHOP + CATALOG + "feeds: {labels: {custom_label_0: colour}}\n", "feeds.labels", "'colour'"),
        (SHOP + CATALOG + "feeds: {price_bands: [5000, 1000]}\n", "feeds.price_bands", "strictly ascending"),
        (SHOP + CATALOG + "feeds: {price_bands: [1000, 1000]}\n", "feeds.price_bands", "strictly ascending"),
        (SHOP + CATALOG + "feeds: {guard: {max_shrink: 1.5}}\n", "feeds.guard.max_shrink", "1"),
        (
            SHOP + "catalog: {source: {path: c.csv, url: 'sqlite:///c.db', table: t}}\n",
            "catalog.source",
            "exactly one of `path`",
        ),
        (SHOP + "catalog: {source: {}}\n", "catalog.source", "exactly one of `path`"),
        (SHOP + "catalog: {source: {url: 'sqlite:///c.db'}}\n", "catalog.source", "`table` or `query`"),
        (
            SHOP + "catalog: {source: {url: 'sqlite:///c.db', table: t, query: 'select 1'}}\n",
            "catalog.source",
            "`table` or `query`",
        ),
        (SHOP + "catalog: {source: {path: c.csv, table: t}}\n", "catalog.source", "go with `url`"),
        (SHOP + "catalog: {source: {path: c.csv, format: xlsx}}\n", "catalog.source.format", "csv"),
        (SHOP + "catalog: {source: {path: c.csv, chunk_size: 0}}\n", "catalog.source.chunk_size", "0"),
        (SHOP + "catalog: {source: {path: c.csv}, columns: {sku: id}}\n", "catalog.columns", "['sku']"),
    ],
)
def test_bad_values_name_their_location(
    write_config: WriteConfig, text: str, location: str, detail: str
) -> None:
    error = _error(write_config(text))

    line = next((ln for ln in str(error).splitlines() if ln.startswith(f"  {location}: ")), None)
    assert line is not None, str(error)
    assert detail in line


def test_several_errors_are_listed_at_once(write_config: WriteConfig) -> None:
    path = write_config(
        "shop: {name: Demo, currency: XYZ}\n"
        "catalog: {source: {pathh: c.csv}}\n"
        "feeds: {formats: [bogus], labels: {custom_label_9: line}, guard: {max_shrinkk: 1}}\n"
    )

    message = str(_error(path))

    lines = message.splitlines()
    assert lines[0] == f"{path}: 5 config error(s):"
    locations = [line.split(":", 1)[0].strip() for line in lines[1:]]
    assert locations == [
        "shop.currency",
        "catalog.source.pathh",
        "feeds.formats",
        "feeds.labels",
        "feeds.guard.max_shrinkk",
    ]


def test_malformed_yaml_names_the_line(write_config: WriteConfig) -> None:
    path = write_config("shop: {name: Demo, currency: JPY}\ncatalog:\n  source: path: catalog.csv\n")

    message = str(_error(path))

    assert message.startswith(f"{path}: line 3 not valid YAML")
    assert "mapping values are not allowed here" in message


@pytest.mark.parametrize("text", ["", "- shop\n- catalog\n", "just a string\n"])
def test_top_level_must_be_a_mapping(write_config: WriteConfig, text: str) -> None:
    assert "expected a mapping of sections" in str(_error(write_config(text)))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "retarget.yaml"

    error = _error(path)

    assert str(error) == f"{path}: config file not found"
    assert isinstance(error, FeedgenError)


def test_config_is_frozen(write_config: WriteConfig) -> None:
    config = load_config(write_config(SHOP + CATALOG))

    with pytest.raises(ValueError, match="frozen"):
        config.shop.currency = "USD"  # type: ignore[misc]
