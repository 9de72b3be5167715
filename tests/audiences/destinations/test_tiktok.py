"""audiences.destinations.tiktok: customer files and their MD5, create on first add, APPEND/DELETE/REPLACE."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from email.message import Message
from email.parser import BytesParser
from typing import Any

import pytest
import responses
from responses import matchers

from audiences.destinations.config import TikTokDestination
from audiences.destinations.tiktok import TikTokAdapter, calculate_type, customer_file
from audiences.errors import ConfigError, FatalUploadError

TOKEN = "tt-secret-token"
BASE = "https://tt.test/open_api/v1.3"
UPLOAD = f"{BASE}/dmp/custom_audience/file/upload/"
CREATE = f"{BASE}/dmp/custom_audience/create/"
UPDATE = f"{BASE}/dmp/custom_audience/update/"
LIST = f"{BASE}/dmp/custom_audience/list/"
E1, E2, P1 = "e" * 64, "f" * 64, "0" * 64
SCHEMA = ["EMAIL_SHA256", "PHONE_SHA256"]
ROWS = [(E1, P1), (E2, "")]


def tiktok_config(**changes: Any) -> TikTokDestination:
    settings = {
        "type": "tiktok",
        "base_url": "https://tt.test/",
        "token_env": "TIKTOK_TOKEN",
        "advertiser_id": "7001",
        "retry": {"attempts": 3, "initial_wait": 0, "max_wait": 0},
        **changes,
    }
    return TikTokDestination.model_validate(settings)


def ok(data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": 0, "message": "OK", "data": data or {}, "request_id": "r1"}


def fail(code: int) -> dict[str, Any]:
    return {"code": code, "message": f"echo {E1}", "data": {}, "request_id": "r2"}


@pytest.fixture
def build(monkeypatch: pytest.MonkeyPatch, adapters: Any) -> Callable[..., TikTokAdapter]:
    monkeypatch.setenv("TIKTOK_TOKEN", TOKEN)
    return lambda **changes: adapters(TikTokAdapter("tt", tiktok_config(**changes)))


@pytest.fixture
def adapter(build: Any) -> TikTokAdapter:
    made: TikTokAdapter = build()
    return made


def multipart(call: Any) -> dict[str, Message]:
    """The parts of a recorded multipart request, by field name."""
    head = f"Content-Type: {call.request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser().parsebytes(head + call.request.body)
    parts: dict[str, Message] = {}
    for part in message.walk():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts[name] = part
    return parts


def sent_json(call: Any) -> Any:
    """The JSON body of a recorded request."""
    return json.loads(call.request.body)


def field(parts: dict[str, Message], name: str) -> bytes:
    payload = parts[name].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


# --- the customer file -------------------------------------------------------------------------------


def test_the_file_has_a_header_and_one_member_per_line() -> None:
    assert customer_file(SCHEMA, ROWS) == f"EMAIL_SHA256,PHONE_SHA256\n{E1},{P1}\n{E2},\n".encode()


def test_calculate_type() -> None:
    assert calculate_type(SCHEMA) == "MULTIPLE_TYPES"
    assert calculate_type(["PHONE_SHA256"]) == "PHONE_SHA256"


def test_a_missing_token_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOK_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="set the environment variable TIKTOK_TOKEN"):
        TikTokAdapter("tt", tiktok_config())


def test_limits(adapter: TikTokAdapter, rsps: responses.RequestsMock) -> None:
    assert adapter.max_batch == 50_000 and adapter.platform == "tiktok"
    with pytest.raises(ValueError, match="50001 rows"):
        adapter.add("9", "a", ["EMAIL_SHA256"], [(E1,)] * 50_001)
    assert len(rsps.calls) == 0


# --- ensure_audience ---------------------------------------------------------------------------------


def test_a_known_audience_is_kept_without_a_call(
    adapter: TikTokAdapter, rsps: responses.RequestsMock
) -> None:
    assert adapter.ensure_audience("a", "d", SCHEMA, "9") == "9"
    assert len(rsps.calls) == 0


def page(number: int, total_page: int, *names: tuple[str, str]) -> dict[str, Any]:
    listed = [{"custom_audience_id": id_, "name": name} for id_, name in names]
    info = {"page": number, "page_size": 100, "total_number": 150, "total_page": total_page}
    return ok({"list": listed, "page_info": info})


def test_an_audience_is_found_by_name_on_a_later_page(
    adapter: TikTokAdapter, rsps: responses.RequestsMock
) -> None:
    query = {"advertiser_id": "7001", "page_size": "100"}
    rsps.get(LIST, match=[matchers.query_param_matcher({**query, "page": "1"})], json=page(1, 2, ("1", "b")))
    rsps.get(LIST, match=[matchers.query_param_matcher({**query, "page": "2"})], json=page(2, 2, ("2", "a")))
    assert adapter.ensure_audience("a", "d", SCHEMA, None) == "2"
    assert rsps.calls[0].request.headers["Access-Token"] == TOKEN


def test_the_name_is_matched_as_created_cut_to_128(
    adapter: TikTokAdapter, rsps: responses.RequestsMock
) -> None:
    long = "x" * 200
    rsps.get(LIST, json=page(1, 1, ("3", long[:128])))
    assert adapter.ensure_audience(long, "d", SCHEMA, None) == "3"


def test_no_audience_yet_means_create_with_the_first_add(
    adapter: TikTokAdapter, rsps: responses.RequestsMock
) -> None:
    rsps.get(LIST, json=page(1, 1, ("1", "b")))
    assert adapter.ensure_audience("a", "d", SCHEMA, None) == ""
    assert len(rsps.calls) == 1


# --- add, remove, replace ----------------------------------------------------------------------------


def test_the_first_add_uploads_and_creates(build: Any, rsps: responses.RequestsMock) -> None:
    adapter = build(retention_in_days=180)
    rsps.post(UPLOAD, json=ok({"file_path": "fp-1", "num_invalid": 1}))
    rsps.post(CREATE, json=ok({"custom_audience_id": "900"}))
    name = "n" * 150
    sent = adapter.add("", name, SCHEMA, ROWS)
    assert (sent.received, sent.invalid, sent.audience_id) == (2, 1, "900")

    parts = multipart(rsps.calls[0])
    content = field(parts, "file")
    assert content == customer_file(SCHEMA, ROWS)
    assert field(parts, "file_signature").decode() == hashlib.md5(content).hexdigest()
    assert field(parts, "advertiser_id") == b"7001"
    assert field(parts, "calculate_type") == b"MULTIPLE_TYPES"
    assert rsps.calls[0].request.headers["Access-Token"] == TOKEN

    assert sent_json(rsps.calls[1]) == {
        "advertiser_id": "7001",
        "custom_audience_name": name[:128],
        "calculate_type": "MULTIPLE_TYPES",
        "file_paths": ["fp-1"],
        "retention_in_days": 180,
    }


def test_create_without_retention_leaves_it_out(adapter: TikTokAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(UPLOAD, json=ok({"file_path": "fp-1"}))
    rsps.post(CREATE, json=ok({"custom_audience_id": "900"}))
    sent = adapter.add("", "a", ["EMAIL_SHA256"], [(E1,)])
    assert sent.invalid == 0
    assert field(multipart(rsps.calls[0]), "calculate_type") == b"EMAIL_SHA256"
    body = sent_json(rsps.calls[1])
    assert "retention_in_days" not in body and body["calculate_type"] == "EMAIL_SHA256"


def test_a_later_add_appends(adapter: TikTokAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(UPLOAD, json=ok({"file_path": "fp-2"}))
    rsps.post(UPDATE, json=ok())
    sent = adapter.add("900", "a", SCHEMA, ROWS)
    assert sent.audience_id == "900"
    assert sent_json(rsps.calls[1]) == {
        "advertiser_id": "7001",
        "custom_audience_id": "900",
        "action": "APPEND",
        "file_paths": ["fp-2"],
    }


def test_remove_deletes(adapter: TikTokAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(UPLOAD, json=ok({"file_path": "fp-3"}))
    rsps.post(UPDATE, json=ok())
    assert adapter.remove("900", "a", SCHEMA, ROWS).received == 2
    assert sent_json(rsps.calls[1])["action"] == "DELETE"


def test_nothing_to_remove_before_the_audience_exists(
    adapter: TikTokAdapter, rsps: responses.RequestsMock
) -> None:
    assert adapter.remove("", "a", SCHEMA, ROWS).received == 0
    assert adapter.add("900", "a", SCHEMA, []).received == 0
    assert len(rsps.calls) == 0


def session(seq: int, last: bool) -> dict[str, Any]:
    return {"session_id": 5, "batch_seq": seq, "last_batch_flag": last, "estimated_num_total": 3}


def test_replace_uploads_each_batch_and_replaces_once(
    adapter: TikTokAdapter, rsps: responses.RequestsMock
) -> None:
    rsps.post(UPLOAD, json=ok({"file_path": "fp-a", "num_invalid": 1}))
    rsps.post(UPLOAD, json=ok({"file_path": "fp-b"}))
    rsps.post(UPDATE, json=ok())
    first = adapter.replace("900", "a", SCHEMA, ROWS, session(1, False))
    assert (first.received, first.invalid) == (2, 1)
    assert len(rsps.calls) == 1  # the old members stay until the last batch
    last = adapter.replace("900", "a", SCHEMA, [(E1, "")], session(2, True))
    assert (last.received, last.invalid, last.audience_id) == (1, 0, "900")
    body = sent_json(rsps.calls[2])
    assert body["action"] == "REPLACE" and body["file_paths"] == ["fp-a", "fp-b"]


def test_replace_creates_a_missing_audience(adapter: TikTokAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(UPLOAD, json=ok({"file_path": "fp-a"}))
    rsps.post(CREATE, json=ok({"custom_audience_id": "901"}))
    assert adapter.replace("", "a", SCHEMA, ROWS, session(1, True)).audience_id == "901"


def test_replace_with_nothing_is_refused(adapter: TikTokAdapter, rsps: responses.RequestsMock) -> None:
    with pytest.raises(FatalUploadError, match="cannot replace 'a' with an empty list"):
        adapter.replace("900", "a", SCHEMA, [], session(1, True))


# --- errors ------------------------------------------------------------------------------------------


def test_a_rate_limit_with_http_200_is_retried(
    adapter: TikTokAdapter, rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    rsps.post(UPLOAD, json=fail(40100), headers={"Retry-After": "0"})
    rsps.post(UPLOAD, json=ok({"file_path": "fp"}))
    rsps.post(UPDATE, json=ok())
    adapter.add("900", "a", SCHEMA, ROWS)
    assert sleeps == [0] and len(rsps.calls) == 3


def test_an_expired_token_is_fatal_and_not_leaked(
    adapter: TikTokAdapter, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.post(UPLOAD, status=500, json=fail(50000))
    rsps.post(UPLOAD, json=fail(40105))
    with pytest.raises(FatalUploadError) as caught:
        adapter.add("900", "a", SCHEMA, ROWS)
    assert "tiktok error 40105: the access token is invalid or expired; renew it in $TIKTOK_TOKEN" in str(
        caught.value
    )
    assert len(rsps.calls) == 2
    for text in (str(caught.value), caplog.text):
        assert TOKEN not in text and E1 not in text and P1 not in text and "echo" not in text


def test_a_bad_signature_is_fatal(adapter: TikTokAdapter, rsps: responses.RequestsMock) -> None:
    rsps.post(UPLOAD, json=fail(40002))
    with pytest.raises(FatalUploadError, match="tiktok error 40002: invalid parameter"):
        adapter.add("900", "a", SCHEMA, ROWS)
    assert len(rsps.calls) == 1


def test_an_upload_answer_without_a_file_path_is_fatal(
    adapter: TikTokAdapter, rsps: responses.RequestsMock
) -> None:
    rsps.post(UPLOAD, json=ok())
    with pytest.raises(
        FatalUploadError, match="upload customer file: the platform's answer has no file_path"
    ):
        adapter.add("900", "a", SCHEMA, ROWS)
