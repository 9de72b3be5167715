"""Mock faults (each hits exactly the next N calls), the admin endpoints, and the request log."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from audiences.mockserver.server import MockServer

TOKEN = "fault-test-token-77c2"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
A, B = hashlib.sha256(b"a@example.com").hexdigest(), hashlib.sha256(b"b@example.com").hexdigest()


def meta_list(http: requests.Session, server: MockServer, **kwargs: Any) -> requests.Response:
    return http.get(f"{server.base_url}/v21.0/act_1/customaudiences", headers=AUTH, timeout=5, **kwargs)


def tiktok_list(http: requests.Session, server: MockServer) -> requests.Response:
    url = f"{server.base_url}/open_api/v1.3/dmp/custom_audience/list/"
    return http.get(url, params={"advertiser_id": "1"}, headers={"Access-Token": TOKEN}, timeout=5)


def create(http: requests.Session, server: MockServer) -> str:
    form = {"name": "buyers", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}
    response = http.post(f"{server.base_url}/v21.0/act_1/customaudiences", data=form, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def add(
    http: requests.Session, server: MockServer, audience: str, rows: list[list[str]]
) -> requests.Response:
    form = {"payload": json.dumps({"schema": ["EMAIL"], "data": rows})}
    return http.post(f"{server.base_url}/v21.0/{audience}/users", data=form, headers=AUTH, timeout=5)


def meta_code(response: requests.Response) -> int:
    return int(response.json()["error"]["code"]) if "error" in response.json() else 0


def tiktok_code(response: requests.Response) -> int:
    return int(response.json()["code"])


def outcomes(
    calls: Callable[[], requests.Response], code: Callable[[requests.Response], int], n: int
) -> list[tuple[int, int]]:
    return [(response.status_code, code(response)) for response in (calls() for _ in range(n))]


@pytest.mark.parametrize(
    ("kind", "options", "status", "code"),
    [
        ("rate_limit", {"retry_after": 3}, 429, 613),
        ("rate_limit", {"code": 80004}, 429, 80004),
        ("server_error", {}, 500, 2),
        ("token_expired", {}, 400, 190),
    ],
)
def test_meta_faults_hit_exactly_the_next_n_calls(
    http: requests.Session, server: MockServer, kind: str, options: dict[str, Any], status: int, code: int
) -> None:
    server.add_fault(kind, count=2, **options)
    results = outcomes(lambda: meta_list(http, server), meta_code, 3)
    assert results == [(status, code), (status, code), (200, 0)]
    assert server.state()["faults"] == []


def test_meta_rate_limit_sends_retry_after(http: requests.Session, server: MockServer) -> None:
    server.add_fault("rate_limit", retry_after=3)
    limited = meta_list(http, server)
    assert limited.headers["Retry-After"] == "3" and limited.json()["error"]["type"] == "OAuthException"
    server.add_fault("rate_limit")
    assert meta_list(http, server).headers["Retry-After"] == "0"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("rate_limit", 200, 40100), ("server_error", 500, 50000), ("token_expired", 200, 40105)],
)
def test_tiktok_faults_hit_exactly_the_next_n_calls(
    http: requests.Session, server: MockServer, kind: str, status: int, code: int
) -> None:
    server.add_fault(kind, count=2)
    results = outcomes(lambda: tiktok_list(http, server), tiktok_code, 3)
    assert results == [(status, code), (status, code), (200, 0)]


def test_tiktok_rate_limit_sends_retry_after(http: requests.Session, server: MockServer) -> None:
    server.add_fault("rate_limit", retry_after=2)
    assert tiktok_list(http, server).headers["Retry-After"] == "2"


def test_not_ready_hits_member_calls_only(http: requests.Session, server: MockServer) -> None:
    server.add_fault("not_ready", count=2)
    audience = create(http, server)  # not a member call: the fault waits
    assert server.state()["faults"] == [{"kind": "not_ready", "count": 2}]
    results = outcomes(lambda: add(http, server, audience, [[A]]), meta_code, 3)
    assert results == [(400, 803), (400, 803), (200, 0)]
    assert server.state()["meta"]["audiences"][audience]["members"] == [[A]]


def test_partial_invalid_on_meta_uploads(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    server.add_fault("partial_invalid", count=1, invalid=2)
    gone = {"payload": json.dumps({"schema": ["EMAIL"], "data": [[A]]})}
    http.delete(
        f"{server.base_url}/v21.0/{audience}/users", data=gone, headers=AUTH, timeout=5
    )  # not an upload
    first = add(http, server, audience, [[A], [B], [B]])
    assert first.json()["num_invalid_entries"] == 2 and first.json()["num_received"] == 3
    assert server.state()["meta"]["audiences"][audience]["members"] == [[B]]
    assert add(http, server, audience, [[A]]).json()["num_invalid_entries"] == 0


def test_partial_invalid_on_tiktok_uploads(http: requests.Session, server: MockServer) -> None:
    server.add_fault("partial_invalid", count=2)
    content = f"EMAIL_SHA256\n{A}\n{B}\n".encode()
    fields = {
        "advertiser_id": "1",
        "calculate_type": "EMAIL_SHA256",
        "file_signature": hashlib.md5(content).hexdigest(),
    }
    url = f"{server.base_url}/open_api/v1.3/dmp/custom_audience/file/upload/"
    datas = [
        http.post(
            url, data=fields, files={"file": ("f.csv", content)}, headers={"Access-Token": TOKEN}, timeout=5
        ).json()["data"]
        for _ in range(3)
    ]
    assert [data.get("num_invalid", 0) for data in datas] == [1, 1, 0]
    assert server.state()["tiktok"]["files"][datas[0]["file_path"]]["rows"] == [[B]]


def test_timeout_answers_late_but_still_acts(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    server.add_fault("timeout", delay=0.3)
    form = {"payload": json.dumps({"schema": ["EMAIL"], "data": [[A]]})}
    with pytest.raises(requests.exceptions.Timeout):
        http.post(f"{server.base_url}/v21.0/{audience}/users", data=form, headers=AUTH, timeout=0.1)
    deadline = time.monotonic() + 3
    while not server.state()["meta"]["audiences"][audience]["members"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.state()["meta"]["audiences"][audience]["members"] == [[A]]
    started = time.monotonic()
    assert add(http, server, audience, [[B]]).status_code == 200  # the next call is not delayed
    assert time.monotonic() - started < 0.3


def test_faults_through_the_admin_endpoint(http: requests.Session, server: MockServer) -> None:
    response = http.post(
        f"{server.base_url}/__mock__/faults", json={"kind": "server_error", "count": 1}, timeout=5
    )
    assert response.status_code == 200 and response.json()["faults"] == [{"kind": "server_error", "count": 1}]
    assert http.get(f"{server.base_url}/__mock__/state", timeout=5).json()[
        "faults"
    ]  # admin calls use up none
    assert meta_list(http, server).status_code == 500
    assert meta_list(http, server).status_code == 200


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "meteor", "count": 1},
        {"count": 1},
        {"kind": "timeout", "count": 0},
        {"kind": "timeout", "wait": 1},
    ],
)
def test_bad_fault_specs_are_400(http: requests.Session, server: MockServer, spec: dict[str, Any]) -> None:
    response = http.post(f"{server.base_url}/__mock__/faults", json=spec, timeout=5)
    assert response.status_code == 400
    assert response.json()["kinds"] == [
        "rate_limit",
        "server_error",
        "timeout",
        "token_expired",
        "partial_invalid",
        "not_ready",
    ]
    assert server.state()["faults"] == []


def test_add_fault_rejects_an_unknown_kind(server: MockServer) -> None:
    with pytest.raises(ValueError, match="known kinds: rate_limit"):
        server.add_fault("meteor")


def test_reset_clears_everything(http: requests.Session, server: MockServer) -> None:
    add(http, server, create(http, server), [[A]])
    server.add_fault("timeout")
    assert http.post(f"{server.base_url}/__mock__/reset", timeout=5).json() == {"ok": True}
    state = server.state()
    assert state["meta"] == {"audiences": {}, "product_sets": {}}
    assert state["tiktok"] == {"files": {}, "audiences": {}}
    assert state["requests"] == [] and state["faults"] == []


def test_state_endpoint_shape(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server)
    add(http, server, audience, [[B], [A]])
    state = http.get(f"{server.base_url}/__mock__/state", timeout=5).json()
    assert state == server.state()
    assert set(state) == {"meta", "tiktok", "requests", "faults"}
    assert state["meta"]["audiences"][audience] == {
        "name": "buyers",
        "description": "",
        "ad_account_id": "1",
        "schema": ["EMAIL"],
        "member_count": 2,
        "members": [[A], [B]] if A < B else [[B], [A]],
    }
    assert state["requests"][-1] == {
        "method": "POST",
        "path": f"/v21.0/{audience}/users",
        "status": 200,
        "fault": None,
    }


def test_the_request_log_holds_no_token_or_hash(
    http: requests.Session, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="audiences.mockserver")
    audience = create(http, server)
    server.add_fault("rate_limit")
    query = {"access_token": TOKEN, "payload": json.dumps({"schema": ["EMAIL"], "data": [[A]]})}
    assert http.post(f"{server.base_url}/v21.0/{audience}/users", params=query, timeout=5).status_code == 429
    assert http.post(f"{server.base_url}/v21.0/{audience}/users", params=query, timeout=5).status_code == 200
    add(http, server, audience, [[B]])
    log = server.state()["requests"]
    assert [(entry["status"], entry["fault"]) for entry in log] == [
        (200, None),
        (429, "rate_limit"),
        (200, None),
        (200, None),
    ]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("audiences.mockserver"))
    for text in (json.dumps(log), ours):
        assert TOKEN not in text and A not in text and B not in text
    assert f"POST /v21.0/{audience}/users -> 429" in ours
