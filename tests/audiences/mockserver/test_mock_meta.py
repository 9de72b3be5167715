"""The mock Graph API over a real socket: audiences, members, usersreplace, product sets, parameter styles."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import requests

from audiences.mockserver.server import MockServer

TOKEN = "meta-test-token-5e1f"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


A, B, C, D = sha("a@example.com"), sha("b@example.com"), sha("c@example.com"), sha("d@example.com")


def graph(
    http: requests.Session, server: MockServer, method: str, path: str, **kwargs: Any
) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return http.request(method, f"{server.base_url}/v21.0/{path}", timeout=5, **kwargs)


def create(http: requests.Session, server: MockServer, name: str = "buyers", account: str = "1") -> str:
    form = {
        "name": name,
        "subtype": "CUSTOM",
        "customer_file_source": "USER_PROVIDED_ONLY",
        "description": "d",
    }
    response = graph(http, server, "POST", f"act_{account}/customaudiences", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def payload(schema: list[str], rows: list[list[str]]) -> dict[str, str]:
    return {"payload": json.dumps({"schema": schema, "data": rows, "is_raw": True})}


def members(server: MockServer, audience_id: str) -> list[list[str]]:
    return list(server.state()["meta"]["audiences"][audience_id]["members"])


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "code", "error_subcode", "fbtrace_id"}
    return dict(body["error"])


def test_create_list_and_get_audiences(http: requests.Session, server: MockServer) -> None:
    first, second, elsewhere = (
        create(http, server, "one"),
        create(http, server, "two"),
        create(http, server, "x", "2"),
    )
    assert first.isdigit() and len({first, second, elsewhere}) == 3
    listed = graph(http, server, "GET", "act_1/customaudiences", params={"fields": "id,name"}).json()
    assert listed["data"] == [{"id": first, "name": "one"}, {"id": second, "name": "two"}]
    assert "next" not in listed["paging"]
    assert graph(http, server, "GET", first, params={"fields": "id,name"}).json() == {
        "id": first,
        "name": "one",
    }
    audience = server.state()["meta"]["audiences"][elsewhere]
    assert audience["ad_account_id"] == "2" and audience["description"] == "d" and audience["schema"] is None


def test_unknown_object_is_error_100_subcode_33(http: requests.Session, server: MockServer) -> None:
    response = graph(http, server, "GET", "999999", params={"fields": "id,name"})
    error = error_of(response)
    assert response.status_code == 400
    assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "GraphMethodException")
    assert error["message"].startswith("Unsupported get request")
    assert graph(http, server, "POST", "999999/users", data=payload(["EMAIL"], [[A]])).status_code == 400


def test_any_version_prefix(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    response = http.get(f"{server.base_url}/v26.0/{audience}", headers=AUTH, timeout=5)
    assert response.json()["id"] == audience


@pytest.mark.parametrize(
    "form",
    [
        {"subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"},
        {"name": "x", "customer_file_source": "USER_PROVIDED_ONLY"},
        {"name": "x", "subtype": "CUSTOM", "customer_file_source": "SOMEWHERE"},
    ],
    ids=["no-name", "no-subtype", "bad-source"],
)
def test_create_rejects_missing_or_wrong_parameters(
    http: requests.Session, server: MockServer, form: dict[str, str]
) -> None:
    response = graph(http, server, "POST", "act_1/customaudiences", data=form)
    assert response.status_code == 400 and error_of(response)["code"] == 100
    assert server.state()["meta"]["audiences"] == {}


def test_add_and_remove_members(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    schema = ["EMAIL", "PHONE", "EXTERN_ID"]
    added = graph(
        http, server, "POST", f"{audience}/users", data=payload(schema, [[A, "", "c1"], [B, C, ""]])
    )
    body = added.json()
    assert added.status_code == 200
    assert (body["audience_id"], body["num_received"], body["num_invalid_entries"]) == (audience, 2, 0)
    assert body["invalid_entry_samples"] == {} and isinstance(body["session_id"], int)
    graph(http, server, "POST", f"{audience}/users", data=payload(schema, [[A, "", "c1"], [D, "", ""]]))
    assert members(server, audience) == sorted([[A, "", "c1"], [B, C, ""], [D, "", ""]])
    removed = graph(
        http, server, "DELETE", f"{audience}/users", data=payload(schema, [[B, C, ""], [C, "", ""]])
    )
    assert removed.status_code == 200 and removed.json()["num_received"] == 2
    assert members(server, audience) == sorted([[A, "", "c1"], [D, "", ""]])
    state = server.state()["meta"]["audiences"][audience]
    assert state["schema"] == schema and state["member_count"] == 2


def test_single_key_form(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    form = {"payload": json.dumps({"schema": "EMAIL_SHA256", "data": [A, "nope"]})}
    body = graph(http, server, "POST", f"{audience}/users", data=form).json()
    assert body["num_invalid_entries"] == 1 and members(server, audience) == [[A]]


def test_invalid_rows_are_counted_and_not_stored(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    rows: list[list[Any]] = [
        [A, "", "madid-1"],  # valid; MADID is plain text
        [A.upper(), "", ""],  # hashes are lower-case hex
        [A[:63], "", ""],  # 63 characters
        ["a@example.com", "", ""],  # plaintext in a hashed column
        ["", "", ""],  # no value at all
        [A, B],  # wrong width
        [A, 5, ""],  # not text
        [None, B, ""],  # null means no value: valid
    ]
    body = graph(
        http, server, "POST", f"{audience}/users", data=payload(["EMAIL", "PHONE", "MADID"], rows)
    ).json()
    assert (body["num_received"], body["num_invalid_entries"]) == (8, 6)
    assert members(server, audience) == sorted([[A, "", "madid-1"], ["", B, ""]])


def test_more_than_10000_rows_is_error_100(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    too_many = graph(http, server, "POST", f"{audience}/users", data=payload(["EMAIL"], [[A]] * 10_001))
    assert too_many.status_code == 400 and error_of(too_many)["code"] == 100
    assert members(server, audience) == []
    just_enough = graph(http, server, "POST", f"{audience}/users", data=payload(["EMAIL"], [[A]] * 10_000))
    assert just_enough.status_code == 200 and just_enough.json()["num_received"] == 10_000


def test_schema_other_than_the_first_upload_is_error_2650(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    assert graph(http, server, "POST", f"{audience}/users", data=payload(["EMAIL", "PHONE"], [[A, B]])).ok
    for method in ("POST", "DELETE"):
        response = graph(http, server, method, f"{audience}/users", data=payload(["EMAIL"], [[A]]))
        assert response.status_code == 400 and error_of(response)["code"] == 2650
    swapped = graph(http, server, "POST", f"{audience}/users", data=payload(["PHONE", "EMAIL"], [[B, A]]))
    assert error_of(swapped)["code"] == 2650
    assert members(server, audience) == [[A, B]]


def test_unknown_schema_key_is_error_100(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    response = graph(
        http, server, "POST", f"{audience}/users", data=payload(["EMAIL", "SHOE_SIZE"], [[A, "4"]])
    )
    assert response.status_code == 400 and error_of(response)["code"] == 100


def replace(
    http: requests.Session, server: MockServer, audience: str, seq: int, last: bool, rows: list[list[str]]
) -> requests.Response:
    session = {"session_id": 77, "batch_seq": seq, "last_batch_flag": last, "estimated_num_total": 3}
    form = {**payload(["EMAIL"], rows), "session": json.dumps(session)}
    return graph(http, server, "POST", f"{audience}/usersreplace", data=form)


def test_usersreplace_swaps_members_at_the_last_batch(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    graph(http, server, "POST", f"{audience}/users", data=payload(["EMAIL"], [[A], [B]]))
    first = replace(http, server, audience, 1, False, [[C], ["bad"]])
    assert first.status_code == 200
    assert first.json()["session_id"] == 77 and first.json()["num_invalid_entries"] == 1
    assert members(server, audience) == sorted([[A], [B]])  # the old members stay until the last batch
    assert replace(http, server, audience, 2, True, [[D], [B]]).status_code == 200
    assert members(server, audience) == sorted([[B], [C], [D]])


def test_usersreplace_batches_out_of_order_are_error_100(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    skipped_first = replace(http, server, audience, 2, False, [[A]])
    assert skipped_first.status_code == 400 and error_of(skipped_first)["code"] == 100
    assert replace(http, server, audience, 1, False, [[A]]).ok
    assert error_of(replace(http, server, audience, 1, False, [[A]]))["code"] == 100  # a repeat
    assert error_of(replace(http, server, audience, 3, True, [[A]]))["code"] == 100  # a gap
    assert replace(http, server, audience, 2, True, [[B]]).ok
    assert error_of(replace(http, server, audience, 3, True, [[C]]))["code"] == 100  # after the last batch
    assert members(server, audience) == sorted([[A], [B]])


def test_product_sets(http: requests.Session, server: MockServer) -> None:
    shirts = {"retailer_id": {"is_any": ["s1", "s2"]}}
    created = graph(
        http, server, "POST", "55/product_sets", data={"name": "shirts", "filter": json.dumps(shirts)}
    )
    assert created.status_code == 200
    set_id = created.json()["id"]
    duplicate = graph(
        http, server, "POST", "55/product_sets", data={"name": "again", "filter": json.dumps(shirts)}
    )
    assert duplicate.status_code == 400 and error_of(duplicate)["code"] == 10803
    other_catalog = graph(
        http, server, "POST", "66/product_sets", data={"name": "s", "filter": json.dumps(shirts)}
    )
    assert other_catalog.status_code == 200
    hats = {"retailer_id": {"is_any": ["h1"]}}
    second = graph(http, server, "POST", "55/product_sets", json={"name": "hats", "filter": hats}).json()[
        "id"
    ]
    clash = graph(http, server, "POST", set_id, data={"filter": json.dumps(hats)})
    assert error_of(clash)["code"] == 10803
    updated = graph(
        http, server, "POST", set_id, data={"name": "shirts 2", "filter": json.dumps({"brand": "x"})}
    )
    assert updated.json() == {"success": True}
    listed = graph(http, server, "GET", "55/product_sets", params={"fields": "id,name,filter"}).json()["data"]
    assert [(item["id"], item["name"], json.loads(item["filter"])) for item in listed] == [
        (set_id, "shirts 2", {"brand": "x"}),
        (second, "hats", hats),
    ]
    assert server.state()["meta"]["product_sets"][set_id] == {
        "catalog_id": "55",
        "name": "shirts 2",
        "filter": {"brand": "x"},
    }


@pytest.mark.parametrize("style", ["form", "json-object", "json-string", "query"])
def test_every_parameter_style_adds_members(http: requests.Session, server: MockServer, style: str) -> None:
    audience = create(http, server)
    body: dict[str, Any] = {"schema": ["EMAIL"], "data": [[A], [B]]}
    styles: dict[str, dict[str, Any]] = {
        "form": {"data": {"payload": json.dumps(body)}},
        "json-object": {"json": {"payload": body}},
        "json-string": {"json": {"payload": json.dumps(body)}},
        "query": {"params": {"payload": json.dumps(body)}},
    }
    kwargs = styles[style]
    response = graph(http, server, "POST", f"{audience}/users", **kwargs)
    assert response.status_code == 200, response.text
    assert members(server, audience) == sorted([[A], [B]])


@pytest.mark.parametrize("where", ["query", "form", "json"])
def test_delete_takes_its_payload_anywhere(http: requests.Session, server: MockServer, where: str) -> None:
    audience = create(http, server)
    graph(http, server, "POST", f"{audience}/users", data=payload(["EMAIL"], [[A], [B]]))
    kwargs: dict[str, dict[str, Any]] = {
        "query": {"params": payload(["EMAIL"], [[A]])},
        "form": {"data": payload(["EMAIL"], [[A]])},
        "json": {"json": {"payload": {"schema": ["EMAIL"], "data": [[A]]}}},
    }
    assert graph(http, server, "DELETE", f"{audience}/users", **kwargs[where]).status_code == 200
    assert members(server, audience) == [[B]]


@pytest.mark.parametrize("where", ["bearer", "query", "form", "json"])
def test_token_as_header_or_parameter(http: requests.Session, server: MockServer, where: str) -> None:
    form = {"name": "n", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}
    kwargs: dict[str, Any] = {
        "bearer": {"data": form},
        "query": {"data": form, "params": {"access_token": TOKEN}},
        "form": {"data": {**form, "access_token": TOKEN}},
        "json": {"json": {**form, "access_token": TOKEN}},
    }[where]
    headers = AUTH if where == "bearer" else {}
    response = graph(http, server, "POST", "act_1/customaudiences", headers=headers, **kwargs)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}])
def test_missing_token_is_error_190(
    http: requests.Session, server: MockServer, headers: dict[str, str]
) -> None:
    response = graph(http, server, "GET", "act_1/customaudiences", headers=headers)
    error = error_of(response)
    assert response.status_code == 400 and (error["code"], error["type"]) == (190, "OAuthException")


def test_a_server_with_a_token_rejects_others(http: requests.Session) -> None:
    with MockServer(token=TOKEN) as server:
        wrong = graph(http, server, "GET", "act_1/customaudiences", headers={"Authorization": "Bearer other"})
        assert wrong.status_code == 400 and error_of(wrong)["code"] == 190
        assert graph(http, server, "GET", "act_1/customaudiences").status_code == 200
