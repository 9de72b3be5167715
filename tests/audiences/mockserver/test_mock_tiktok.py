"""The mock TikTok API over a real socket: uploads, create, update, list; error codes with HTTP 200."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import requests

from audiences.mockserver.server import MockServer

TOKEN = "tiktok-test-token-93ab"
ADVERTISER = "7001"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


A, B, C, D = sha("a@example.com"), sha("b@example.com"), sha("c@example.com"), sha("d@example.com")
P = sha("15551234567")


def call(
    http: requests.Session,
    server: MockServer,
    method: str,
    endpoint: str,
    token: str | None = TOKEN,
    **kwargs: Any,
) -> requests.Response:
    url = f"{server.base_url}/open_api/v1.3/dmp/custom_audience/{endpoint}/"
    headers = {} if token is None else {"Access-Token": token}
    return http.request(method, url, headers=headers, timeout=5, **kwargs)


def csv_bytes(header: str, rows: list[str]) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


def upload(
    http: requests.Session,
    server: MockServer,
    content: bytes,
    calculate_type: str = "EMAIL_SHA256",
    signature: str | None = None,
) -> requests.Response:
    fields = {
        "advertiser_id": ADVERTISER,
        "calculate_type": calculate_type,
        "file_signature": signature or hashlib.md5(content).hexdigest(),
    }
    return call(http, server, "POST", "file/upload", data=fields, files={"file": ("members.csv", content)})


def uploaded(
    http: requests.Session, server: MockServer, rows: list[str], header: str = "EMAIL_SHA256"
) -> str:
    calculate_type = header if "," not in header else "MULTIPLE_TYPES"
    response = upload(http, server, csv_bytes(header, rows), calculate_type)
    assert response.json()["code"] == 0, response.text
    return str(response.json()["data"]["file_path"])


def create(http: requests.Session, server: MockServer, name: str, paths: list[str]) -> str:
    body = {"advertiser_id": ADVERTISER, "custom_audience_name": name, "calculate_type": "EMAIL_SHA256"}
    response = call(
        http, server, "POST", "create", json={**body, "file_paths": paths, "retention_in_days": 180}
    )
    assert response.json()["code"] == 0, response.text
    return str(response.json()["data"]["custom_audience_id"])


def members(server: MockServer, audience_id: str) -> list[list[str]]:
    return list(server.state()["tiktok"]["audiences"][audience_id]["members"])


def test_upload_with_the_right_md5(http: requests.Session, server: MockServer) -> None:
    response = upload(http, server, csv_bytes("EMAIL_SHA256", [A, B]))
    body = response.json()
    assert response.status_code == 200 and body["code"] == 0 and body["message"] == "OK"
    assert set(body) == {"code", "message", "data", "request_id"} and body["request_id"]
    path = body["data"]["file_path"]
    assert body["data"] == {"file_path": path}
    stored = server.state()["tiktok"]["files"][path]
    assert stored["calculate_type"] == "EMAIL_SHA256" and stored["rows"] == [[A], [B]]


def test_upload_with_a_wrong_md5_is_code_40002_with_http_200(
    http: requests.Session, server: MockServer
) -> None:
    response = upload(http, server, csv_bytes("EMAIL_SHA256", [A]), signature="0" * 32)
    assert response.status_code == 200 and response.json()["code"] == 40002
    assert server.state()["tiktok"]["files"] == {}


def test_upload_counts_invalid_rows(http: requests.Session, server: MockServer) -> None:
    content = csv_bytes(
        "EMAIL_SHA256,PHONE_SHA256", [f"{A},{P}", f"{B},", "nope,", ",", f"{C}", f"{D.upper()},"]
    )
    body = upload(http, server, content, "MULTIPLE_TYPES").json()
    assert body["code"] == 0 and body["data"]["num_invalid"] == 4
    assert server.state()["tiktok"]["files"][body["data"]["file_path"]]["rows"] == [[A, P], [B, ""]]


@pytest.mark.parametrize(
    ("header", "calculate_type"),
    [
        ("PHONE_SHA256", "EMAIL_SHA256"),
        ("EMAIL_SHA256,PHONE_SHA256", "EMAIL_SHA256"),
        ("EMAIL", "MULTIPLE_TYPES"),
    ],
)
def test_upload_rejects_a_header_that_does_not_fit(
    http: requests.Session, server: MockServer, header: str, calculate_type: str
) -> None:
    response = upload(http, server, csv_bytes(header, []), calculate_type)
    assert response.status_code == 200 and response.json()["code"] == 40002


def test_create_and_list(http: requests.Session, server: MockServer) -> None:
    first, second = uploaded(http, server, [A, B]), uploaded(http, server, [B, C])
    audience = create(http, server, "buyers", [first, second])
    assert members(server, audience) == sorted([[A], [B], [C]])
    others = [create(http, server, f"audience {n}", [first]) for n in range(2)]
    page = call(
        http, server, "GET", "list", params={"advertiser_id": ADVERTISER, "page": 1, "page_size": 2}
    ).json()
    assert page["code"] == 0
    assert page["data"]["list"] == [
        {"custom_audience_id": audience, "name": "buyers"},
        {"custom_audience_id": others[0], "name": "audience 0"},
    ]
    assert page["data"]["page_info"] == {"page": 1, "page_size": 2, "total_number": 3, "total_page": 2}
    rest = call(http, server, "GET", "list", params={"advertiser_id": ADVERTISER, "page": 2, "page_size": 2})
    assert [item["custom_audience_id"] for item in rest.json()["data"]["list"]] == [others[1]]
    nobody = call(
        http, server, "GET", "list", params={"advertiser_id": "1", "page": 1, "page_size": 100}
    ).json()
    assert nobody["data"]["list"] == [] and nobody["data"]["page_info"]["total_page"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"custom_audience_name": "x" * 129},
        {"calculate_type": "NAME"},
        {"file_paths": ["dmp/7001/0.csv"]},
        {"file_paths": []},
        {"retention_in_days": 400},
        {"advertiser_id": "other"},
    ],
    ids=["long-name", "bad-type", "unknown-file", "no-files", "retention", "other-advertiser"],
)
def test_create_rejects_bad_parameters(
    http: requests.Session, server: MockServer, change: dict[str, Any]
) -> None:
    path = uploaded(http, server, [A])
    body = {"advertiser_id": ADVERTISER, "custom_audience_name": "n", "calculate_type": "EMAIL_SHA256"}
    response = call(http, server, "POST", "create", json={**body, "file_paths": [path], **change})
    assert response.status_code == 200 and response.json()["code"] == 40002
    assert server.state()["tiktok"]["audiences"] == {}


def test_update_append_delete_replace(http: requests.Session, server: MockServer) -> None:
    audience = create(http, server, "buyers", [uploaded(http, server, [A, B])])

    def update(action: str, rows: list[str]) -> None:
        body = {"advertiser_id": ADVERTISER, "custom_audience_id": audience, "action": action}
        response = call(
            http, server, "POST", "update", json={**body, "file_paths": [uploaded(http, server, rows)]}
        )
        assert response.json()["code"] == 0 and response.json()["data"] == {}

    update("APPEND", [C, A])
    assert members(server, audience) == sorted([[A], [B], [C]])
    update("DELETE", [B, D])
    assert members(server, audience) == sorted([[A], [C]])
    update("REPLACE", [D])
    assert members(server, audience) == [[D]]
    assert server.state()["tiktok"]["audiences"][audience]["member_count"] == 1


def test_update_of_an_unknown_audience_or_action(http: requests.Session, server: MockServer) -> None:
    path = uploaded(http, server, [A])
    audience = create(http, server, "buyers", [path])
    body = {"advertiser_id": ADVERTISER, "file_paths": [path]}
    unknown = call(
        http, server, "POST", "update", json={**body, "custom_audience_id": "1", "action": "APPEND"}
    )
    assert unknown.status_code == 200 and unknown.json()["code"] == 40002
    merge = call(
        http, server, "POST", "update", json={**body, "custom_audience_id": audience, "action": "MERGE"}
    )
    assert merge.json()["code"] == 40002


@pytest.mark.parametrize("token", ["", None], ids=["empty", "absent"])
def test_missing_token_is_code_40105_with_http_200(
    http: requests.Session, server: MockServer, token: str | None
) -> None:
    response = call(http, server, "GET", "list", token=token, params={"advertiser_id": ADVERTISER})
    assert response.status_code == 200 and response.json()["code"] == 40105


def test_a_server_with_a_token_rejects_others(http: requests.Session) -> None:
    with MockServer(token=TOKEN) as server:
        assert (
            call(http, server, "GET", "list", token="other", params={"advertiser_id": "1"}).json()["code"]
            == 40105
        )
        assert call(http, server, "GET", "list", params={"advertiser_id": "1"}).json()["code"] == 0


def test_unknown_endpoint(http: requests.Session, server: MockServer) -> None:
    response = call(http, server, "POST", "merge")
    assert response.status_code == 404 and response.json()["code"] == 40002
