"""audiences.destinations.meta: the Graph API requests, audience lookup, member calls and product sets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses
from responses import matchers

from audiences.destinations.base import Sent, adapter_for
from audiences.destinations.config import MetaDestination, MockDestination, TikTokDestination
from audiences.destinations.meta import MetaAdapter
from audiences.destinations.tiktok import TikTokAdapter
from audiences.errors import ConfigError, FatalUploadError

TOKEN = "EAAB-meta-secret"
BASE = "https://graph.test/v21.0"
LIST = f"{BASE}/act_42/customaudiences"
H1, H2 = "1" * 64, "2" * 64
FILTER = {"retailer_id": {"is_any": ["A-1", "A-2"]}}


def meta_config(**changes: Any) -> MetaDestination:
    settings = {
        "type": "meta",
        "base_url": "https://graph.test",
        "token_env": "META_TOKEN",
        "ad_account_id": "act_42",
        "catalog_id": "77",
        "retry": {"attempts": 3, "initial_wait": 0, "max_wait": 0},
        **changes,
    }
    return MetaDestination.model_validate(settings)


@pytest.fixture
def build(monkeypatch: pytest.MonkeyPatch, adapters: Any) -> Callable[..., MetaAdapter]:
    monkeypatch.setenv("META_TOKEN", TOKEN)
    return lambda **changes: adapters(MetaAdapter("meta-main", meta_config(**changes)))


@pytest.fixture
def adapter(build: Any) -> MetaAdapter:
    made: MetaAdapter = build()
    return made


def form(call: Any) -> dict[str, str]:
    """The form-encoded fields of a recorded request."""
    body = call.request.body
    return dict(parse_qsl(body.decode() if isinstance(body, bytes) else body, keep_blank_values=True))


def graph_error(code: int, subcode: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": "echo",
        "type": "GraphMethodException",
        "code": code,
        "fbtrace_id": "T",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


# --- building the adapter ----------------------------------------------------------------------------


def test_the_token_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_TOKEN", "")
    with pytest.raises(ConfigError, match="set the environment variable META_TOKEN") as caught:
        MetaAdapter("meta-main", meta_config())
    monkeypatch.delenv("META_TOKEN")
    with pytest.raises(ConfigError, match="META_TOKEN"):
        MetaAdapter("meta-main", meta_config())
    assert TOKEN not in str(caught.value)


def test_limits_follow_the_config(build: Any) -> None:
    assert build().max_batch == 10_000
    assert build(batch_size=500).max_batch == 500
    assert MetaAdapter.max_batch == 10_000  # the class default is untouched


@pytest.mark.parametrize(
    ("type_", "cls"), [("meta", MetaAdapter), ("mock", MetaAdapter), ("tiktok", TikTokAdapter)]
)
def test_the_registry_builds_the_adapter_of_each_type(
    monkeypatch: pytest.MonkeyPatch, type_: str, cls: type
) -> None:
    for variable in ("META_TOKEN", "MOCK_TOKEN", "TT_TOKEN"):
        monkeypatch.setenv(variable, "x")
    settings: Any = {
        "meta": meta_config(),
        "mock": MockDestination.model_validate({"type": "mock", "base_url": "http://127.0.0.1:8765"}),
        "tiktok": TikTokDestination.model_validate(
            {"type": "tiktok", "base_url": "https://tt.test", "token_env": "TT_TOKEN", "advertiser_id": "7"}
        ),
    }[type_]
    adapter = adapter_for("somewhere", settings)
    assert type(adapter) is cls and adapter.name == "somewhere"
    adapter.close()


def test_the_mock_is_spoken_to_as_meta(monkeypatch: pytest.MonkeyPatch, rsps: responses.RequestsMock) -> None:
    monkeypatch.setenv("MOCK_TOKEN", "anything")
    adapter = MetaAdapter(
        "mock", MockDestination.model_validate({"type": "mock", "base_url": "http://127.0.0.1:8765"})
    )
    rsps.get("http://127.0.0.1:8765/v21.0/act_1/customaudiences", json={"data": []})
    rsps.post("http://127.0.0.1:8765/v21.0/act_1/customaudiences", json={"id": "5"})
    assert adapter.platform == "meta"
    assert adapter.ensure_audience("a", "d", ["EMAIL"], None) == "5"
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer anything"
    adapter.close()


def test_another_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TT_TOKEN", "x")
    settings = TikTokDestination.model_validate(
        {"type": "tiktok", "base_url": "https://tt.test", "token_env": "TT_TOKEN", "advertiser_id": "7"}
    )
    with pytest.raises(ConfigError, match="takes type meta or mock, not tiktok"):
        MetaAdapter("x", settings)


# --- ensure_audience ---------------------------------------------------------------------------------


def test_a_known_audience_that_exists_is_kept(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{BASE}/555",
        json={"id": "555", "name": "a"},
        match=[
            matchers.query_param_matcher({"fields": "id,name"}),
            matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"}),
        ],
    )
    assert adapter.ensure_audience("a", "desc", ["EMAIL"], "555") == "555"
    assert len(rsps.calls) == 1


def test_a_gone_audience_is_found_by_name_across_pages(
    adapter: MetaAdapter, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/555", status=400, json=graph_error(100, 33))
    rsps.get(
        LIST,
        match=[matchers.query_param_matcher({"fields": "id,name"})],
        json={"data": [{"id": "1", "name": "a-old"}], "paging": {"next": f"{LIST}?fields=id,name&after=XYZ"}},
    )
    rsps.get(
        LIST,
        match=[matchers.query_param_matcher({"fields": "id,name", "after": "XYZ"})],
        json={"data": [{"id": "2", "name": "b"}, {"id": "3", "name": "a"}], "paging": {}},
    )
    assert adapter.ensure_audience("a", "desc", ["EMAIL"], "555") == "3"
    assert len(rsps.calls) == 3


@pytest.mark.parametrize("account", ["act_42", "42"])
def test_a_missing_audience_is_created(build: Any, rsps: responses.RequestsMock, account: str) -> None:
    rsps.get(LIST, json={"data": [{"id": "1", "name": "A"}]})
    rsps.post(LIST, json={"id": "901"})
    adapter = build(ad_account_id=account, customer_file_source="BOTH_USER_AND_PARTNER_PROVIDED")
    assert adapter.ensure_audience("a", "buyers of drinks", ["EMAIL"], None) == "901"
    create = rsps.calls[1]
    assert create.request.method == "POST" and create.request.url == LIST
    assert create.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert form(create) == {
        "name": "a",
        "subtype": "CUSTOM",
        "customer_file_source": "BOTH_USER_AND_PARTNER_PROVIDED",
        "description": "buyers of drinks",
    }


def test_a_token_error_on_lookup_is_not_taken_for_a_missing_audience(
    adapter: MetaAdapter, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/555", status=400, json=graph_error(190))
    with pytest.raises(FatalUploadError, match=r"meta error 190: .* renew it in \$META_TOKEN"):
        adapter.ensure_audience("a", "desc", ["EMAIL"], "555")
    assert len(rsps.calls) == 1


def test_a_paging_link_to_another_host_is_refused(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.get(LIST, json={"data": [], "paging": {"next": "https://evil.test/v21.0/act_42/customaudiences"}})
    with pytest.raises(FatalUploadError, match="a paging link leads to another host"):
        adapter.ensure_audience("a", "desc", ["EMAIL"], None)


# --- members -----------------------------------------------------------------------------------------

ROWS = [(H1, ""), ("", H2)]
ANSWER = {
    "audience_id": "555",
    "session_id": 9,
    "num_received": 2,
    "num_invalid_entries": 1,
    "invalid_entry_samples": {},
}


def test_add_posts_the_payload(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/555/users", json=ANSWER)
    sent = adapter.add("555", "a", ["EMAIL", "PHONE"], ROWS)
    assert sent == Sent(received=2, invalid=1, audience_id="555", details={"session_id": 9})
    call = rsps.calls[0]
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert set(form(call)) == {"payload"}
    assert json.loads(form(call)["payload"]) == {
        "schema": ["EMAIL", "PHONE"],
        "data": [[H1, ""], ["", H2]],
        "is_raw": True,
    }


def test_remove_sends_delete_with_the_same_body(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.delete(f"{BASE}/555/users", json={**ANSWER, "num_invalid_entries": 0})
    sent = adapter.remove("555", "a", ["EMAIL", "PHONE"], ROWS)
    assert (sent.received, sent.invalid) == (2, 0)
    assert json.loads(form(rsps.calls[0])["payload"])["data"] == [[H1, ""], ["", H2]]


def test_an_upload_right_after_create_is_retried_on_803(
    adapter: MetaAdapter, rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    rsps.post(f"{BASE}/555/users", status=400, json=graph_error(803))
    rsps.post(f"{BASE}/555/users", json=ANSWER)
    assert adapter.add("555", "a", ["EMAIL", "PHONE"], ROWS).received == 2
    assert sleeps == [0]


def test_a_wrong_schema_is_fatal(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/555/users", status=400, json=graph_error(2650))
    with pytest.raises(FatalUploadError, match="meta error 2650: the upload's schema differs"):
        adapter.add("555", "a", ["EMAIL", "PHONE"], ROWS)


def test_a_batch_over_the_limit_is_refused(build: Any, rsps: responses.RequestsMock) -> None:
    small = build(batch_size=3)
    with pytest.raises(ValueError, match="4 rows in one call; the limit here is 3"):
        small.add("555", "a", ["EMAIL"], [(H1,)] * 4)
    with pytest.raises(ValueError, match="10001 rows"):
        build().remove("555", "a", ["EMAIL"], [(H1,)] * 10_001)
    assert len(rsps.calls) == 0


def test_rows_must_match_the_schema(adapter: MetaAdapter) -> None:
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        adapter.add("555", "a", ["EMAIL", "PHONE"], [(H1,)])


def test_no_rows_no_call(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    assert adapter.add("555", "a", ["EMAIL"], []) == Sent(audience_id="555")
    assert len(rsps.calls) == 0


def test_replace_sends_the_session(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/555/usersreplace", json=ANSWER)
    session = {"session_id": 9, "batch_seq": 1, "last_batch_flag": True, "estimated_num_total": 2}
    sent = adapter.replace("555", "a", ["EMAIL", "PHONE"], ROWS, session)
    assert (sent.received, sent.invalid, sent.audience_id) == (2, 1, "555")
    fields = form(rsps.calls[0])
    assert json.loads(fields["session"]) == session
    assert json.loads(fields["payload"])["schema"] == ["EMAIL", "PHONE"]


# --- product sets ------------------------------------------------------------------------------------


def test_no_catalog_no_product_set(build: Any, rsps: responses.RequestsMock) -> None:
    assert build(catalog_id=None).upsert_product_set("a", FILTER, None) is None
    assert len(rsps.calls) == 0


def test_a_known_product_set_is_updated(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/300", json={"success": True})
    assert adapter.upsert_product_set("a", FILTER, "300") == "300"
    fields = form(rsps.calls[0])
    assert fields["name"] == "a" and json.loads(fields["filter"]) == FILTER


def test_a_new_product_set_is_created(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/77/product_sets", json={"id": "301"})
    assert adapter.upsert_product_set("a", FILTER, None) == "301"
    assert json.loads(form(rsps.calls[0])["filter"]) == FILTER


def test_a_gone_product_set_is_created_again(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/300", status=400, json=graph_error(100, 33))
    rsps.post(f"{BASE}/77/product_sets", json={"id": "302"})
    assert adapter.upsert_product_set("a", FILTER, "300") == "302"


def sets_list(name: str) -> dict[str, Any]:
    other = {"retailer_id": {"is_any": ["B-1"]}}
    return {
        "data": [
            {"id": "400", "name": "b", "filter": json.dumps(other)},
            # the same filter written differently: equal as JSON
            {
                "id": "401",
                "name": name,
                "filter": json.dumps({"retailer_id": {"is_any": ["A-1", "A-2"]}}, indent=1),
            },
        ]
    }


def test_same_filter_reuses_the_set_and_renames_it(
    adapter: MetaAdapter, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{BASE}/77/product_sets", status=400, json=graph_error(10803))
    rsps.get(
        f"{BASE}/77/product_sets",
        match=[matchers.query_param_matcher({"fields": "id,name,filter"})],
        json=sets_list("old name"),
    )
    rsps.post(f"{BASE}/401", json={"success": True})
    assert adapter.upsert_product_set("a", FILTER, None) == "401"
    assert form(rsps.calls[2]) == {"name": "a"}


def test_same_filter_and_name_needs_no_rename(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/77/product_sets", status=400, json=graph_error(10803))
    rsps.get(f"{BASE}/77/product_sets", json=sets_list("a"))
    assert adapter.upsert_product_set("a", FILTER, None) == "401"
    assert len(rsps.calls) == 2


def test_same_filter_not_found_raises(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/77/product_sets", status=400, json=graph_error(10803))
    rsps.get(f"{BASE}/77/product_sets", json={"data": []})
    with pytest.raises(FatalUploadError, match="meta error 10803"):
        adapter.upsert_product_set("a", FILTER, None)


def test_an_answer_without_the_new_id_is_fatal(adapter: MetaAdapter, rsps: responses.RequestsMock) -> None:
    rsps.get(LIST, json={"data": []})
    rsps.post(LIST, json={"success": True})
    with pytest.raises(FatalUploadError, match="create audience: the platform's answer has no id"):
        adapter.ensure_audience("a", "desc", ["EMAIL"], None)
