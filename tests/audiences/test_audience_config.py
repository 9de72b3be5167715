"""audiences.config: the whole file's model with the audience rules, and errors that name the audience."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiences.cli import main
from audiences.config import PipelineConfig, load_config
from audiences.errors import AudiencesError, ConfigError

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo"

SHOP = "shop: {name: Demo, currency: JPY}\n"
SECTIONS = {
    "catalog": "catalog: {source: {path: catalog.csv}}\n",
    "customers": "customers: {source: {path: customers.csv}}\n",
    "orders": "orders: {source: {path: orders.csv}}\n",
    "satisfaction": "satisfaction: {source: {path: satisfaction.csv}}\n",
    "complaints": "complaints: {source: {path: complaints.csv}}\n",
    "prospects": "prospects: {source: {path: prospects.csv}}\n",
    "views": "views: {source: {path: views.csv}}\n",
}
UPSELL = (
    "{name: drink-upsell, who: purchasers, purchased: {line: health-drink, within_days: 90},"
    " pairing: {strategy: upsell}, destinations: [meta]}"
)
DOWNSELL = (
    "{name: drink-downsell, who: prospects, viewed: {line: health-drink, within_days: 60},"
    " pairing: {strategy: downsell}, destinations: [meta]}"
)

WriteRules = Callable[..., Path]


def rule(body: str, name: str = "a") -> str:
    """One audience in YAML flow style, going to meta."""
    return f"{{name: {name}, {body}, destinations: [meta]}}"


BUYERS = "who: purchasers, purchased: {within_days: 9}"


@pytest.fixture
def write_rules(tmp_path: Path) -> WriteRules:
    """Write a config with the shop, the named sections (all by default) and these audiences (YAML flow)."""

    def write(*audiences: str, without: tuple[str, ...] = (), extra: str = "") -> Path:
        text = SHOP + "".join(v for k, v in SECTIONS.items() if k not in without) + extra
        text += "audiences:\n" + "".join(f"  - {item}\n" for item in audiences) if audiences else ""
        path = tmp_path / "conf" / "retarget.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def error_lines(path: Path) -> list[str]:
    """The error lines of a failed load (header dropped), after checking the header and exit code."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == 2
    header, *lines = str(info.value).splitlines()
    assert header == f"{path}: {len(lines)} config error(s):"
    return [line.removeprefix("  ") for line in lines]


def test_demo_config_loads_with_its_three_audiences() -> None:
    config = load_config(DEMO / "retarget.yaml")

    by_name = {a.name: a for a in config.audiences}
    assert list(by_name) == ["drink-upsell", "camera-cross-sell", "drink-downsell"]
    upsell, cross, down = by_name.values()
    assert upsell.pairing and cross.pairing and down.pairing
    assert (upsell.who, upsell.pairing.strategy, upsell.pairing.max_price_increase) == (
        "purchasers",
        "upsell",
        0.25,
    )
    assert (upsell.exclude.refunded_within_days, upsell.exclude.complaint_within_days) == (90, 60)
    assert upsell.exclude.satisfaction_below == 7
    assert cross.pairing.strategy == "cross_sell" and cross.pairing.co_purchase is not None
    assert cross.pairing.related == {
        "camera": ["camera-case", "memory-card", "lens-filter", "camera-strap", "tripod"]
    }
    assert (down.who, down.pairing.strategy, down.pairing.min_price_decrease) == (
        "prospects",
        "downsell",
        0.1,
    )
    assert all(a.destinations == ["meta", "google", "tiktok"] for a in config.audiences)
    for name in ("customers", "orders", "satisfaction", "complaints", "prospects", "views", "suppression"):
        table = getattr(config, name)
        assert table is not None and table.source.path == DEMO / f"{name}.csv", name
    assert config.consent.column == "ads_consent"


def test_demo_related_lines_exist_in_the_catalog() -> None:
    with open(DEMO / "catalog.csv", encoding="utf-8", newline="") as fh:
        lines = {row["line"] for row in csv.DictReader(fh)}
    config = load_config(DEMO / "retarget.yaml")
    for item in config.audiences:
        assert item.pairing is not None
        for key, related in item.pairing.related.items():
            assert {key, *related} <= lines, item.name
        for selector in (item.purchased, item.viewed):
            assert selector is None or selector.line in lines


def test_valid_minimal_rules(write_rules: WriteRules) -> None:
    config = load_config(write_rules(UPSELL, DOWNSELL))
    assert [a.name for a in config.audiences] == ["drink-upsell", "drink-downsell"]
    assert load_config(write_rules()).audiences == []


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            "{name: a, who: purchasers, destinations: [meta]}",
            "audiences[a].purchased: who: purchasers needs `purchased` (the qualifying order lines)",
        ),
        (
            rule(BUYERS + ", viewed: {within_days: 9}"),
            "audiences[a].viewed: only for who: prospects; purchasers are selected by `purchased`",
        ),
        (
            "{name: a, who: prospects, purchased: {within_days: 9}, destinations: [meta]}",
            "audiences[a].purchased: only for who: purchasers; prospects never bought "
            "(select them by `viewed`)",
        ),
        (
            "{name: a, who: prospects, pairing: {strategy: downsell}, destinations: [meta]}",
            "audiences[a].viewed: strategy downsell needs `viewed`: a cheaper product of a line viewed",
        ),
        (
            rule("who: prospects, viewed: {within_days: 9}, pairing: {strategy: upsell}"),
            "audiences[a].pairing.strategy: upsell is for who: purchasers; prospects get downsell",
        ),
        (
            rule(BUYERS + ", pairing: {strategy: downsell}"),
            "audiences[a].pairing.strategy: downsell is for who: prospects; purchasers get upsell, "
            "cross_sell",
        ),
        (
            rule(BUYERS + ", pairing: {strategy: cross_sell}"),
            "audiences[a].pairing: strategy cross_sell needs `related` (complementary categories) or "
            "`co_purchase` (frequently bought together), or both",
        ),
        (
            "{name: drink-upsell, who: purchasers, purchased: {within_days: 9},"
            " pairing: {strategy: downsell, max_price_increase: 0.3}, destinations: [meta]}",
            "audiences[drink-upsell].pairing.max_price_increase: only for strategy upsell, and this pairing "
            "is downsell; remove it",
        ),
        (
            rule(BUYERS + ", pairing: {strategy: upsell, min_price_decrease: 0.1}"),
            "audiences[a].pairing.min_price_decrease: only for strategy downsell, and this pairing is "
            "upsell; remove it",
        ),
        (
            "{name: a, who: prospects, exclude: {complaint_within_days: 9}, destinations: [meta]}",
            "audiences[a].exclude.complaint_within_days: only for who: purchasers (prospects have no orders, "
            "complaints or scores)",
        ),
        (
            "{name: a, who: purchasers, purchased: {within_days: 9, min_price: 10, max_price: 5},"
            " destinations: [meta]}",
            "audiences[a].purchased.min_price: 10 is above max_price 5; min_price must be at most max_price",
        ),
        (
            "{name: a--b, who: purchasers, purchased: {within_days: 9}, destinations: [meta]}",
            "audiences[a--b].name: 'a--b' contains '--', which joins an audience to its sub-audiences "
            "(<audience>--<key>); use a single '-'",
        ),
        (
            "{name: Drink Upsell, who: purchasers, purchased: {within_days: 9}, destinations: [meta]}",
            "audiences[Drink Upsell].name: 'Drink Upsell' is not a slug: use 1-63 lowercase letters, digits "
            "and '-', starting with a letter or digit (it names output files)",
        ),
        (
            "{who: purchasers, purchased: {within_days: 9}, destinations: [meta]}",
            "audiences.0.name: Field required",
        ),
        (
            "{name: a, who: buyers, destinations: [meta]}",
            "audiences[a].who: Input should be 'purchasers' or 'prospects'",
        ),
        (
            "{name: a, who: purchasers, purchased: {within_days: 9}, destinations: []}",
            "audiences[a].destinations: list at least one destination (meta, google, tiktok or a "
            "`destinations` key)",
        ),
    ],
)
def test_each_rule_names_the_audience_and_field(write_rules: WriteRules, item: str, expected: str) -> None:
    assert error_lines(write_rules(item)) == [expected]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            rule(BUYERS + ", pairing: {stratgy: upsell}"),
            "audiences[a].pairing.stratgy: unknown key; allowed here: strategy, max_price_increase, "
            "min_price_decrease, related, co_purchase, max_products",
        ),
        (
            rule(BUYERS + ", exclude: {purchased: {colour: red}}"),
            "audiences[a].exclude.purchased.colour: unknown key; allowed here: product_ids, category, line, "
            "tier, brand, min_price, max_price",
        ),
        (
            "{name: a, who: purchasers, purchased: {within_days: 9, min_order: 2}, destinations: [meta]}",
            "audiences[a].purchased.min_order: unknown key; allowed here: product_ids, category, line, tier, "
            "brand, min_price, max_price, within_days, min_orders, min_spend",
        ),
        (
            rule(BUYERS + ", strategy: upsell"),
            "audiences[a].strategy: unknown key; allowed here: name, description, who, purchased, viewed, "
            "exclude, pairing, destinations",
        ),
    ],
)
def test_unknown_keys_list_the_allowed_ones(write_rules: WriteRules, item: str, expected: str) -> None:
    lines = error_lines(write_rules(item))
    if "stratgy" in item:  # the misspelt key is unknown, and the real one is then missing
        assert lines == ["audiences[a].pairing.strategy: Field required", expected]
    else:
        assert lines == [expected]


def test_duplicate_names(write_rules: WriteRules) -> None:
    assert error_lines(write_rules(UPSELL, DOWNSELL, UPSELL)) == [
        "audiences[drink-upsell].name: audiences 1 and 3 are both named 'drink-upsell'; names must be unique "
        "(they name output files)"
    ]


def _purchasers(name: str, *excluded: str) -> str:
    return (
        f"{{name: {name}, who: purchasers, purchased: {{within_days: 9}},"
        f" exclude: {{audiences: [{', '.join(excluded)}]}}, destinations: [meta]}}"
    )


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (
            [_purchasers("a", "vip-list"), _purchasers("b")],
            ["audiences[a].exclude.audiences: 'vip-list' is not an audience in this file; others here: b"],
        ),
        (
            [_purchasers("a", "a")],
            [
                "audiences[a].exclude.audiences: 'a' is this audience itself; list other audiences whose "
                "members to leave out"
            ],
        ),
        (
            [_purchasers("a", "b"), _purchasers("b", "c"), _purchasers("c", "a")],
            [
                "audiences[a].exclude.audiences: exclusions loop (a -> b -> c -> a); an audience cannot "
                "exclude itself through others"
            ],
        ),
    ],
)
def test_excluded_audiences(write_rules: WriteRules, items: list[str], expected: list[str]) -> None:
    assert error_lines(write_rules(*items)) == expected


@pytest.mark.parametrize(
    ("item", "without", "expected"),
    [
        (
            UPSELL,
            ("orders",),
            "audiences[drink-upsell].who: purchasers are read from the `customers` and `orders` sections; "
            "add `orders`",
        ),
        (
            UPSELL,
            ("customers", "orders"),
            "audiences[drink-upsell].who: purchasers are read from the `customers` and `orders` sections; "
            "add `customers` and `orders`",
        ),
        (
            DOWNSELL,
            ("prospects",),
            "audiences[drink-downsell].who: prospects are read from the `prospects` section; add it",
        ),
        (
            DOWNSELL,
            ("views",),
            "audiences[drink-downsell].viewed: needs the `views` section (prospect_id, product_id, "
            "viewed_at); add it",
        ),
        (
            rule(BUYERS + ", exclude: {satisfaction_below: 7}"),
            ("satisfaction",),
            "audiences[a].exclude.satisfaction_below: needs the `satisfaction` section (customer_id, score, "
            "surveyed_at); add it or drop the exclusion",
        ),
        (
            rule(BUYERS + ", exclude: {complaint_within_days: 60}"),
            ("complaints",),
            "audiences[a].exclude.complaint_within_days: needs the `complaints` section (customer_id, "
            "opened_at, status); add it or drop the exclusion",
        ),
        (
            rule(
                "who: purchasers, purchased: {within_days: 9, product_ids: [X1]}, pairing: {strategy: upsell}"
            ),
            ("catalog",),
            "audiences[a].pairing: needs the `catalog` section (the products to pair with); add it",
        ),
        (
            rule("who: purchasers, purchased: {within_days: 9, line: camera, tier: 2}"),
            ("catalog",),
            "audiences[a].purchased: selecting by line, tier needs the `catalog` section; add it or use "
            "product_ids",
        ),
    ],
)
def test_rules_need_their_sections(
    write_rules: WriteRules, item: str, without: tuple[str, ...], expected: str
) -> None:
    assert error_lines(write_rules(item, without=without)) == [expected]


def test_sections_are_optional_when_no_rule_needs_them(write_rules: WriteRules) -> None:
    only_product_ids = (
        "{name: a, who: purchasers, purchased: {within_days: 9, product_ids: [X1]}, destinations: [meta]}"
    )
    config = load_config(
        write_rules(only_product_ids, without=("catalog", "satisfaction", "complaints", "prospects", "views"))
    )
    assert config.catalog is None and config.audiences[0].name == "a"


def test_destinations_are_builtin_names_without_a_destinations_section(write_rules: WriteRules) -> None:
    item = "{name: a, who: purchasers, purchased: {within_days: 9}, destinations: [meta, facebook, tiktok]}"
    assert error_lines(write_rules(item)) == [
        "audiences[a].destinations: unknown destination 'facebook'; allowed (no `destinations` section, so "
        "built-in names): meta, google, tiktok"
    ]


def test_destinations_are_keys_of_the_destinations_section(write_rules: WriteRules) -> None:
    section = (
        "destinations: {mock: {type: mock, base_url: 'http://127.0.0.1:8765'},"
        " meta-main: {type: meta, base_url: 'https://graph.facebook.com', token_env: META_TOKEN,"
        " ad_account_id: '1'}}\n"
    )
    item = "{name: a, who: purchasers, purchased: {within_days: 9}, destinations: [meta, mock]}"
    assert error_lines(write_rules(item, extra=section)) == [
        "audiences[a].destinations: unknown destination 'meta'; allowed (keys of the `destinations` "
        "section): meta-main, mock"
    ]
    good = "{name: a, who: purchasers, purchased: {within_days: 9}, destinations: [meta-main, mock]}"
    assert load_config(write_rules(good, extra=section)).audiences[0].destinations == ["meta-main", "mock"]


def test_a_destination_names_its_type_and_only_that_type_s_settings(write_rules: WriteRules) -> None:
    item = "{name: a, who: purchasers, purchased: {within_days: 9}, destinations: [x]}"
    assert error_lines(write_rules(item, extra="destinations: {x: {dir: out}}\n")) == [
        "destinations.x: give `type`, one of: meta, tiktok, google-file, mock"
    ]
    wrong = "destinations: {x: {type: google-file, dir: out, token_env: T}}\n"
    assert error_lines(write_rules(item, extra=wrong))[0].startswith(
        "destinations.x.google-file.token_env: unknown key"
    )
    config = load_config(write_rules(item, extra="destinations: {x: {type: google-file, dir: out/google}}\n"))
    google = config.destinations["x"]
    assert google.minimum == 1000 and google.dir.is_absolute() and google.dir.parts[-2:] == ("out", "google")


def test_several_errors_are_listed_at_once(write_rules: WriteRules) -> None:
    bad_pairing = (
        "{name: drink-upsell, who: purchasers, purchased: {within_days: 90},"
        " pairing: {strategy: upsell, max_products: 80}, destinations: [meta]}"
    )
    bad_prospects = (
        "{name: drink-downsell, who: prospects, purchased: {within_days: 9}, destinations: [meta]}"
    )
    lines = error_lines(write_rules(bad_pairing, bad_prospects, extra="feeds: {formats: [csv]}\n"))
    assert lines == [
        "feeds.formats: unknown format(s) ['csv']; allowed: meta-csv, meta-xml, google-xml, google-tsv, "
        "tiktok-csv",
        "audiences[drink-upsell].pairing.max_products: Input should be less than or equal to 50",
        "audiences[drink-downsell].purchased: only for who: purchasers; prospects never bought (select them "
        "by `viewed`)",
    ]


def test_whole_file_checks_list_every_audience(write_rules: WriteRules) -> None:
    lines = error_lines(write_rules(UPSELL, DOWNSELL, without=("orders", "prospects", "views")))
    assert lines == [
        "audiences[drink-upsell].who: purchasers are read from the `customers` and `orders` sections; "
        "add `orders`",
        "audiences[drink-downsell].who: prospects are read from the `prospects` section; add it",
        "audiences[drink-downsell].viewed: needs the `views` section (prospect_id, product_id, viewed_at); "
        "add it",
    ]


def test_audiences_must_be_a_list(write_rules: WriteRules) -> None:
    path = write_rules(extra="audiences: {name: a}\n")
    assert error_lines(path) == ["audiences: Input should be a valid list"]


def test_config_error_is_the_config_family_with_exit_code_2() -> None:
    assert issubclass(ConfigError, AudiencesError)
    assert ConfigError.exit_code == 2


def test_model_validation_outside_the_loader_checks_the_whole_file() -> None:
    with pytest.raises(ValueError, match="purchasers are read from the `customers` and `orders` sections"):
        PipelineConfig.model_validate(
            {
                "shop": {"name": "Demo", "currency": "JPY"},
                "audiences": [
                    {
                        "name": "a",
                        "who": "purchasers",
                        "purchased": {"within_days": 9},
                        "destinations": ["meta"],
                    }
                ],
            }
        )


def test_cli_reports_rule_errors_with_exit_code_2(write_rules: WriteRules, tmp_path: Path) -> None:
    path = write_rules("{name: a, who: purchasers, destinations: [meta]}")
    people = tmp_path / "people.csv"
    people.write_text("email\nsomeone@example.com\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["hash", "--platform", "meta", str(people), str(tmp_path / "out.csv"), "--config", str(path)]
    )
    assert result.exit_code == 2
    assert (
        "audiences[a].purchased: who: purchasers needs `purchased` (the qualifying order lines)"
        in result.output
    )
    assert not (tmp_path / "out.csv").exists()


def test_prospect_columns_can_be_mapped(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "shop: {name: S, currency: JPY, default_country: JP}\n"
        "prospects: {source: {path: p.csv}, columns: {prospect_id: lead, signed_up_at: joined}}\n"
    )
    loaded = load_config(config)
    assert loaded.prospects is not None and loaded.prospects.columns["prospect_id"] == "lead"
    config.write_text(config.read_text().replace("prospect_id: lead", "customer_id: lead"))
    with pytest.raises(ConfigError, match="unknown logical column"):
        load_config(config)
