"""``audiences sync`` end to end: the real adapters over HTTP against the mock platforms on 127.0.0.1.

One build of the demo shop (as of 2026-11-20) is shared by the module: every test copies its run folder
into a folder of its own, with its own state store and Google folder, and starts from an empty mock.
The mock's end state is compared exactly with the run's exports: Meta members with ``meta.csv``, TikTok
members with ``tiktok.csv``, one product set per (sub-)audience with the run's ``meta_filter``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner

from audiences.build import build
from audiences.cli import main
from audiences.config import PipelineConfig, load_config
from audiences.destinations.http import Client
from audiences.load import person_hashes
from audiences.mockserver.server import MockServer
from audiences.state import StateStore, ledger, members, remote
from audiences.sync import SyncReport, load_targets, row_digest, sync
from feedgen.clitools import DateParam

DEMO = Path(__file__).parents[2] / "fixtures" / "demo"
AS_OF = DateParam(end_of_day=True).convert("2026-11-20", None, None)
TOKEN = "t0ken"
RETRY = "{attempts: 4, initial_wait: 0, max_wait: 0.05, max_seconds: 10}"
HEX64 = re.compile(r"[0-9a-f]{64}")
#: requests that change members: Meta /users and /usersreplace, TikTok file upload, create and update
MEMBER_PATH = re.compile(r"/users$|/usersreplace$|/dmp/custom_audience/(?:file/upload|create|update)/?$")
#: the platforms whose adapters speak HTTP (Google is a folder of files)
HTTP_DESTINATIONS = ("meta", "tiktok")

Row = tuple[str, ...]


# --- set-up ---------------------------------------------------------------------------------------


def config_text(tmp: Path, base_url: str, customers: Path | None = None, meta_extra: str = "") -> str:
    """The demo config with its inputs in fixtures/demo (customers maybe elsewhere), output, state and
    Google folder under ``tmp``, and both HTTP destinations on ``base_url``."""
    text = (DEMO / "retarget.yaml").read_text(encoding="utf-8")
    text = text.replace("{path: ", f"{{path: {DEMO}/")
    if customers is not None:
        text = text.replace(f"{DEMO}/customers.csv", str(customers))
    text = text.replace("out: out/feeds", f"out: {tmp}/out/feeds")
    http = f"base_url: '{base_url}', token_env: MOCK_TOKEN, min_members: 100, timeout: 1.5, retry: {RETRY}"
    return text + (
        "destinations:\n"
        f"  meta: {{type: mock, {http}{meta_extra}}}\n"
        f"  tiktok: {{type: tiktok, {http}, advertiser_id: '7'}}\n"
        f"  google: {{type: google-file, dir: {tmp}/google, min_members: 100}}\n"
        f"state: {{url: 'sqlite:///{tmp}/state.db'}}\n"
    )


@dataclass(frozen=True)
class Shop:
    """One test's config (and its file), the run it syncs, and the mock it syncs to."""

    path: Path
    config: PipelineConfig
    run: Path
    server: MockServer

    @property
    def state_url(self) -> str:
        url = self.config.state.url
        assert url is not None
        return url

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(main, ["sync", "--config", str(self.path), *args])


def make_shop(
    tmp: Path, server: MockServer, run: Path, customers: Path | None = None, meta_extra: str = ""
) -> Shop:
    """A config under ``tmp`` whose output root holds a copy of ``run`` (built from the same inputs)."""
    path = tmp / "retarget.yaml"
    path.write_text(config_text(tmp, server.base_url, customers, meta_extra), encoding="utf-8")
    config = load_config(path)
    copy = config.feeds.out.parent / "runs" / run.name
    shutil.copytree(run, copy)
    return Shop(path, config, copy, server)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo shop built once for the module (no test changes this folder)."""
    tmp = tmp_path_factory.mktemp("demo-build")
    path = tmp / "retarget.yaml"
    path.write_text(config_text(tmp, "http://127.0.0.1:9"), encoding="utf-8")
    return build(load_config(path), path, AS_OF).run_dir


@pytest.fixture(scope="module")
def running() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture
def server(running: MockServer, monkeypatch: pytest.MonkeyPatch) -> MockServer:
    """The module's mock, emptied, with the token the config names in the environment."""
    monkeypatch.setenv("MOCK_TOKEN", TOKEN)
    running.reset()
    return running


@pytest.fixture
def shop(tmp_path: Path, server: MockServer, demo_run: Path) -> Shop:
    return make_shop(tmp_path, server, demo_run)


# --- what the run says and what the mock holds ----------------------------------------------------


def export(run: Path, name: str, platform: str) -> tuple[list[str], list[Row]]:
    """Header and rows of ``audiences/<name>/<platform>.csv`` (read as plain CSV, every cell text)."""
    with (run / "audiences" / name / f"{platform}.csv").open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    assert len(set(map(tuple, rows))) == len(rows), f"{name}/{platform}.csv repeats a row"
    return header, [tuple(row) for row in rows]


def expected(run: Path, missing: dict[tuple[str, str], set[Row]] | None = None) -> dict[str, Any]:
    """What the mock must hold after syncing ``run``; ``missing`` rows (by platform and audience) left out."""
    gone = missing or {}
    meta, tiktok, sets = {}, {}, {}
    for target in load_targets(run):
        header, rows = export(run, target.name, "meta")
        kept = sorted(list(r) for r in rows if r not in gone.get(("meta", target.name), set()))
        meta[target.name] = {"ad_account_id": "1", "schema": [c.upper() for c in header], "members": kept}
        header, rows = export(run, target.name, "tiktok")
        kept = sorted(list(r) for r in rows if r not in gone.get(("tiktok", target.name), set()))
        kind = "MULTIPLE_TYPES" if len(header) > 1 else header[0]
        tiktok[target.name] = {"advertiser_id": "7", "calculate_type": kind, "members": kept}
        assert target.product_set is not None
        sets[target.name] = {"catalog_id": "1", "filter": target.product_set["meta_filter"]}
    return {"meta": meta, "tiktok": tiktok, "product_sets": sets}


def _by_name(items: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    names = [item["name"] for item in items.values()]
    assert len(names) == len(set(names)), f"two objects share a name: {sorted(names)}"
    return {item["name"]: {key: item[key] for key in keys} for item in items.values()}


def holdings(server: MockServer) -> dict[str, Any]:
    """The mock's audiences and product sets by name, in the shape of ``expected``."""
    state = server.state()
    return {
        "meta": _by_name(state["meta"]["audiences"], ("ad_account_id", "schema", "members")),
        "tiktok": _by_name(state["tiktok"]["audiences"], ("advertiser_id", "calculate_type", "members")),
        "product_sets": _by_name(state["meta"]["product_sets"], ("catalog_id", "filter")),
    }


def member_requests(server: MockServer) -> list[dict[str, Any]]:
    return [r for r in server.state()["requests"] if MEMBER_PATH.search(r["path"])]


def faulted(server: MockServer, kind: str) -> list[dict[str, Any]]:
    """Logged requests that used up a fault of ``kind`` (a request is logged once it was answered)."""
    return [r for r in server.state()["requests"] if kind in (r["fault"] or "").split("+")]


def settle(server: MockServer, kind: str, count: int) -> None:
    """Wait until ``count`` requests of fault ``kind`` were answered (late answers of a timeout fault)."""
    deadline = time.monotonic() + 10
    while len(faulted(server, kind)) < count:
        assert time.monotonic() < deadline, f"only {len(faulted(server, kind))} {kind} requests answered"
        time.sleep(0.02)


def statuses(report: SyncReport) -> dict[tuple[str, str], str]:
    return {(o.audience, o.destination): o.status for o in report.outcomes}


def http_pairs(report: SyncReport) -> list[tuple[str, str]]:
    """(audience, destination) of the outcomes that speak HTTP, in the order the sync went through them."""
    return [(o.audience, o.destination) for o in report.outcomes if o.destination in HTTP_DESTINATIONS]


def messages(report: SyncReport) -> str:
    return "\n".join(f"{o.audience} -> {o.destination}: {o.status}: {o.message}" for o in report.outcomes)


def sent_ledger(url: str) -> list[tuple[str, str, str, str]]:
    """(destination, audience, operation, batch_digest) of every batch the ledger holds as sent."""
    store = StateStore(url)
    try:
        query = sa.select(ledger.c.destination, ledger.c.audience, ledger.c.operation, ledger.c.batch_digest)
        with store.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query.where(ledger.c.status == "sent"))]
    finally:
        store.close()


def arm(
    monkeypatch: pytest.MonkeyPatch,
    server: MockServer,
    destination: str,
    operation: str,
    kind: str,
    count: int = 1,
    nth: int = 1,
    **options: Any,
) -> None:
    """Switch fault ``kind`` on right before the ``nth`` call of ``operation`` (a prefix of the adapter's
    operation text) by ``destination``, so that it is that very request the fault hits."""
    original = Client.call
    seen = 0

    def call(self: Client, what: str, method: str, url: str, **kwargs: Any) -> Any:
        nonlocal seen
        if self.destination == destination and what.startswith(operation):
            seen += 1
            if seen == nth:
                server.add_fault(kind, count, **options)
        return original(self, what, method, url, **kwargs)

    monkeypatch.setattr(Client, "call", call)


def first_sent(rows: list[Row], count: int) -> set[Row]:
    """The first ``count`` rows the sync sends of an audience (its batches go in order of row digest)."""
    return set(sorted(rows, key=row_digest)[:count])


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["function", "cli"])
def test_the_first_sync_makes_every_destination_hold_the_run(shop: Shop, via: str) -> None:
    if via == "cli":
        result = shop.cli()
        assert result.exit_code == 0, result.output
        store = StateStore(shop.state_url)
        assert store.history()[0]["outcome"] == "ok"
        store.close()
    else:
        report = sync(shop.config)
        assert report.ok, messages(report)
        assert report.run_dir == shop.run
        assert {o.status for o in report.outcomes} == {"ok"}
        assert all(o.invalid == 0 and o.removes == 0 and o.adds == o.rows for o in report.outcomes)
    assert holdings(shop.server) == expected(shop.run)
    google = shop.config.destinations["google"]
    assert google.type == "google-file"
    for target in load_targets(shop.run):
        _, rows = export(shop.run, target.name, "google")
        with (google.dir / target.name / "members.consent-granted.csv").open(newline="") as fh:
            written = [tuple(row) for row in list(csv.reader(fh))[1:]]
        assert sorted(written) == sorted(rows)


def test_a_second_sync_sends_nothing(shop: Shop) -> None:
    assert sync(shop.config).ok
    before = shop.server.state()["requests"]
    sent = len(member_requests(shop.server))
    again = sync(shop.config)
    assert set(statuses(again).values()) == {"unchanged"}
    assert len(member_requests(shop.server)) == sent
    assert shop.server.state()["requests"] == before  # not even a lookup
    assert holdings(shop.server) == expected(shop.run)


def test_a_dry_run_reaches_no_platform_and_changes_no_state(shop: Shop) -> None:
    result = shop.cli("--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: nothing sent" in result.output
    assert shop.server.state()["requests"] == []
    store = StateStore(shop.state_url)
    try:
        with store.engine.connect() as conn:
            for table in (members, remote, ledger):
                assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
        assert [run["outcome"] for run in store.history()] == ["dry-run"]
    finally:
        store.close()
    google = shop.config.destinations["google"]
    assert google.type == "google-file" and not google.dir.exists()


FAULTS: dict[str, dict[str, Any]] = {
    "rate_limit": {"retry_after": 0},
    "server_error": {},
    "timeout": {"delay": 2.5},
    "not_ready": {},
    "partial_invalid": {},
}
LOOKUP = ("GET", "/v21.0/act_1/customaudiences")
USERS = ("POST", "/v21.0/<id>/users")
#: the requests each fault hits when switched on before a first sync (any call, member calls, uploads)
FAULTED = {
    "rate_limit": [LOOKUP, LOOKUP],
    "server_error": [LOOKUP, LOOKUP],
    "timeout": [LOOKUP, LOOKUP],
    "not_ready": [USERS, USERS],
    "partial_invalid": [USERS, ("POST", "/open_api/v1.3/dmp/custom_audience/file/upload/")],
}


@pytest.mark.parametrize("kind", list(FAULTS))
def test_a_fault_on_the_first_calls_loses_and_doubles_nothing(shop: Shop, kind: str) -> None:
    shop.server.add_fault(kind, 2, **FAULTS[kind])
    report = sync(shop.config)
    assert report.ok, messages(report)
    settle(shop.server, kind, 2)  # a timed-out request is answered (and acted on) after the client left
    assert shop.server.state()["faults"] == []
    hit = [(r["method"], re.sub(r"/\d+/", "/<id>/", r["path"])) for r in faulted(shop.server, kind)]
    assert hit == FAULTED[kind]
    missing: dict[tuple[str, str], set[Row]] = {}
    if kind == "partial_invalid":
        # the first upload to each platform reports its first row invalid: that member is lost, and said so
        first = load_targets(shop.run)[0].name
        invalid = {(o.destination, o.audience): o.invalid for o in report.outcomes if o.invalid}
        assert invalid == {("meta", first): 1, ("tiktok", first): 1}
        assert report.counts()["invalid"] == 2
        for platform in HTTP_DESTINATIONS:
            missing[platform, first] = first_sent(export(shop.run, first, platform)[1], 1)
    else:
        assert report.counts()["invalid"] == 0
    assert holdings(shop.server) == expected(shop.run, missing)


@pytest.mark.parametrize(
    ("destination", "operation"),
    [
        ("meta", "add to audience"),
        ("tiktok", "upload customer file"),
        ("meta", "create audience"),
        ("tiktok", "create audience"),
    ],
)
def test_a_request_acted_on_after_its_timeout_is_not_doubled(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, destination: str, operation: str
) -> None:
    arm(monkeypatch, shop.server, destination, operation, "timeout", delay=2.5)
    first = sync(shop.config)
    settle(shop.server, "timeout", 1)
    armed = (load_targets(shop.run)[0].name, destination)
    if operation == "create audience":
        # a create is not repeatable: it fails this time, and the next sync finds what it made by name
        assert {pair for pair, status in statuses(first).items() if status != "ok"} == {armed}
        failed = next(o for o in first.outcomes if (o.audience, o.destination) == armed)
        assert "no response within 1.5s" in failed.message, failed.message
        report = sync(shop.config)
        assert report.ok, messages(report)
        assert {pair for pair, status in statuses(report).items() if status != "unchanged"} == {armed}
    else:
        assert first.ok, messages(first)
    assert holdings(shop.server) == expected(shop.run)


def test_an_expired_token_fails_the_audiences_it_hits_and_says_to_renew_it(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shop.server.add_fault("token_expired", 5)  # more than the 4 tries: a token error is never retried
    report = sync(shop.config)
    assert not report.ok
    hit = http_pairs(report)[:5]
    assert [pair for pair, status in statuses(report).items() if status == "failed"] == hit
    assert {status for pair, status in statuses(report).items() if pair not in hit} == {"ok"}
    for outcome in report.outcomes:
        if outcome.status == "failed":
            assert "renew it in $MOCK_TOKEN" in outcome.message, outcome.message
            assert TOKEN not in outcome.message and not HEX64.search(outcome.message)
    assert shop.server.state()["faults"] == []

    shop.server.add_fault("token_expired", 5)  # the five that failed try again, and fail again
    result = shop.cli()
    assert result.exit_code == 1, result.output
    for audience, destination in hit:
        assert f"{audience} -> {destination}: failed: " in result.stderr
    assert result.stderr.count("renew it in $MOCK_TOKEN") == 5
    assert TOKEN not in result.output and not HEX64.search(result.output)
    assert TOKEN not in caplog.text and not HEX64.search(caplog.text)
    assert shop.server.state()["faults"] == []

    final = sync(shop.config)
    assert final.ok, messages(final)
    assert {pair for pair, status in statuses(final).items() if status == "ok"} == set(hit)
    assert holdings(shop.server) == expected(shop.run)


@pytest.mark.parametrize("where", ["first call", "third batch"])
def test_a_server_error_past_the_retries_fails_one_audience_and_a_rerun_completes(
    tmp_path: Path, server: MockServer, demo_run: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    batch = 50
    shop = make_shop(tmp_path, server, demo_run, meta_extra=f", batch_size: {batch}")
    first_target = load_targets(shop.run)[0].name
    _, rows = export(shop.run, first_target, "meta")
    assert len(rows) > 3 * batch
    if where == "first call":
        server.add_fault("server_error", 5)  # the 4 tries of the first call, then one more that is retried
    else:
        arm(monkeypatch, server, "meta", "add to audience", "server_error", count=5, nth=3)
    report = sync(shop.config)
    failed = [(o.audience, o.destination) for o in report.outcomes if o.status == "failed"]
    assert failed == [(first_target, "meta")]
    assert {o.status for o in report.outcomes if o.status != "failed"} == {"ok"}
    message = next(o.message for o in report.outcomes if o.status == "failed")
    assert "gave up after 4 tries" in message and "HTTP 500" in message, message
    assert server.state()["faults"] == []
    kept = first_sent(rows, 2 * batch) if where == "third batch" else set()
    held = holdings(server)["meta"].get(first_target, {}).get("members", [])
    assert sorted(map(tuple, held)) == sorted(kept)  # the two batches confirmed before the failure

    rerun = sync(shop.config)
    assert rerun.ok, messages(rerun)
    changed = [o for o in rerun.outcomes if o.status != "unchanged"]
    assert [(o.audience, o.destination) for o in changed] == [(first_target, "meta")]
    assert changed[0].adds == len(rows) - len(kept)
    assert holdings(server) == expected(shop.run)
    sent = sent_ledger(shop.state_url)
    assert [key for key, times in Counter(sent).items() if times > 1] == []
    meta_batches = [key for key in sent if key[:3] == ("meta", first_target, "add")]
    assert len(meta_batches) == -(-len(rows) // batch)  # every batch confirmed exactly once


def test_a_withdrawn_consent_removes_only_that_member(
    tmp_path: Path, server: MockServer, demo_run: Path
) -> None:
    customers = tmp_path / "customers.csv"
    shutil.copy(DEMO / "customers.csv", customers)
    shop = make_shop(tmp_path, server, demo_run, customers=customers)
    assert sync(shop.config).ok
    before = holdings(server)

    # the e-mail hash is the first cell of a Meta and of a TikTok row
    assert {a["schema"][0] for a in before["meta"].values()} == {"EMAIL"}
    assert {export(shop.run, n, "tiktok")[0][0] for n in before["tiktok"]} == {"EMAIL_SHA256"}
    frame = pd.read_csv(customers, dtype=str, keep_default_na=False)
    hashes = person_hashes(frame, "JP")["email_sha256"].tolist()  # "" for a blank e-mail
    exported = {row[0] for audience in before["meta"].values() for row in audience["members"]}
    times = Counter(hashes)
    who = next(i for i, h in enumerate(hashes) if h and times[h] == 1 and h in exported)
    email_hash = hashes[who]
    frame.loc[who, "ads_consent"] = "no"
    frame.to_csv(customers, index=False)
    run = build(load_config(shop.path), shop.path, AS_OF).run_dir

    report = sync(shop.config)
    assert report.ok, messages(report)
    assert report.run_dir == run
    after = holdings(server)
    assert after == expected(run)
    assert after["product_sets"] == before["product_sets"]
    for platform in HTTP_DESTINATIONS:
        for name, audience in before[platform].items():
            kept = [row for row in audience["members"] if row[0] != email_hash]
            assert after[platform][name]["members"] == kept, (platform, name)
    assert not any(
        email_hash in row for p in HTTP_DESTINATIONS for a in after[p].values() for row in a["members"]
    )
    changed = {(o.audience, o.destination): (o.adds, o.removes) for o in report.outcomes if o.status == "ok"}
    assert changed and set(changed.values()) == {(0, 1)}
    holders = {
        (n, p)
        for p in HTTP_DESTINATIONS
        for n, a in before[p].items()
        if any(r[0] == email_hash for r in a["members"])
    }
    assert holders and {pair for pair in changed if pair[1] in HTTP_DESTINATIONS} == holders


def test_replace_drops_a_member_added_out_of_band(shop: Shop) -> None:
    assert sync(shop.config).ok
    state = shop.server.state()
    name = load_targets(shop.run)[0].name
    audience_id, audience = next((k, a) for k, a in state["meta"]["audiences"].items() if a["name"] == name)
    stray = [hashlib.sha256(b"stray@example.com").hexdigest()] + [""] * (len(audience["schema"]) - 1)
    payload = json.dumps({"schema": audience["schema"], "data": [stray]})
    with requests.Session() as http:
        answer = http.post(
            f"{shop.server.base_url}/v21.0/{audience_id}/users",
            data={"payload": payload},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
    assert answer.status_code == 200 and answer.json()["num_invalid_entries"] == 0, answer.text
    assert stray in holdings(shop.server)["meta"][name]["members"]
    seen = len(shop.server.state()["requests"])

    report = sync(shop.config, replace=True)
    assert report.ok, messages(report)
    assert holdings(shop.server) == expected(shop.run)
    assert stray not in holdings(shop.server)["meta"][name]["members"]
    new = [r for r in shop.server.state()["requests"][seen:] if MEMBER_PATH.search(r["path"])]
    meta_paths = {r["path"].rsplit("/", 1)[-1] for r in new if r["path"].startswith("/v21.0/")}
    assert meta_paths == {"usersreplace"}
