"""audiences.destinations.http: one classifier, retries only on retriable answers, safe messages."""

from __future__ import annotations

import email.utils
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from audiences.destinations.config import RetryConfig
from audiences.destinations.http import Client, Outcome, PlatformError, classify, token_from_env
from audiences.errors import ConfigError, FatalUploadError, RetriableUploadError

TOKEN = "EAAB-secret-token-value"
URL = "https://graph.test/v21.0/123/users"
URL2 = "https://graph.test/v21.0/456/users"
TT_URL = "https://tiktok.test/open_api/v1.3/dmp/custom_audience/update/"
HASH = "a" * 63 + "f"
ECHO = "SECRET-ECHO-of-submitted-data"
META_RETRIABLE = [1, 2, 4, 17, 32, 613, 80003, 80004, 803]
META_FATAL = [190, 200, 10, 100, 2650]


class FakeTime:
    """Sleeps are recorded and advance a fake clock: no test really waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def make_client(fake: FakeTime, platform: str = "meta", **retry: float) -> Client:
    settings = {"attempts": 4, "max_seconds": 300, "initial_wait": 1, "max_wait": 60, **retry}
    header = {"Authorization": f"Bearer {TOKEN}"} if platform == "meta" else {"Access-Token": TOKEN}
    client = Client(
        "meta-main" if platform == "meta" else "tt",
        platform,
        timeout=5,
        retry=RetryConfig(**settings),
        headers=header,
        token_env="META_TOKEN" if platform == "meta" else "TIKTOK_TOKEN",
    )
    client.sleep, client.clock = fake.sleep, fake.clock
    return client


def meta_error(code: int, subcode: int | None = None) -> dict[str, object]:
    """A Graph error body whose message echoes data, as real ones can."""
    error: dict[str, object] = {
        "message": f"{ECHO} {HASH}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbC123xyz",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def tiktok(code: int, data: object = None) -> dict[str, object]:
    message = "OK" if code == 0 else f"{ECHO} {HASH}"
    return {"code": code, "message": message, "data": data or {}, "request_id": "req-42"}


OK = {"audience_id": "123", "num_received": 1, "num_invalid_entries": 0}


def add(client: Client) -> Outcome:
    return client.call("add to audience 123", "POST", URL, data={"payload": f'{{"data": [["{HASH}"]]}}'})


# --- success and retriable answers -------------------------------------------------------------------


def test_success_returns_the_parsed_body(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, json=OK)
    outcome = make_client(fake).call("add", "POST", URL, data={"payload": "{}"})
    assert outcome.kind == "success" and outcome.body == OK
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert fake.sleeps == []


def test_429_waits_as_long_as_retry_after_says(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, status=429, json=meta_error(613), headers={"Retry-After": "7"})
    rsps.post(URL, status=429, json=meta_error(613), headers={"Retry-After": "2.5"})
    rsps.post(URL, json=OK)
    assert add(make_client(fake)).kind == "success"
    assert fake.sleeps == [7.0, 2.5]
    assert len(rsps.calls) == 3


def test_retry_after_is_capped_at_max_wait(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, status=429, headers={"Retry-After": "3600"})
    rsps.post(URL, json=OK)
    add(make_client(fake, max_wait=60))
    assert fake.sleeps == [60]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried(rsps: responses.RequestsMock, fake: FakeTime, status: int) -> None:
    rsps.post(URL, status=status, body="<html>bad gateway</html>")
    rsps.post(URL, json=OK)
    add(make_client(fake))
    assert len(rsps.calls) == 2 and len(fake.sleeps) == 1
    assert 1 <= fake.sleeps[0] <= 2  # initial_wait plus up to initial_wait of jitter


def test_backoff_doubles_with_jitter(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    for _ in range(3):
        rsps.post(URL, status=503)
    rsps.post(URL, json=OK)
    add(make_client(fake, attempts=4, initial_wait=1, max_wait=3))
    first, second, third = fake.sleeps
    assert 1 <= first <= 2 and 2 <= second <= 3 and third == 3


@pytest.mark.parametrize(
    "error", [requests.ConnectionError("refused"), requests.ReadTimeout("slow"), requests.ConnectTimeout("x")]
)
def test_connection_errors_and_timeouts_are_retried(
    rsps: responses.RequestsMock, fake: FakeTime, error: Exception
) -> None:
    rsps.post(URL, body=error)
    rsps.post(URL, json=OK)
    assert add(make_client(fake)).kind == "success"
    assert len(rsps.calls) == 2 and len(fake.sleeps) == 1


@pytest.mark.parametrize("error", [requests.ReadTimeout("slow"), requests.ConnectionError("reset")])
def test_a_create_that_may_have_landed_is_not_sent_again(
    rsps: responses.RequestsMock, fake: FakeTime, error: Exception
) -> None:
    rsps.post(URL, body=error)
    with pytest.raises(RetriableUploadError, match="not sent again"):
        make_client(fake).call("create audience", "POST", URL, repeatable=False, data={"name": "a"})
    assert len(rsps.calls) == 1 and fake.sleeps == []


def test_a_create_is_still_retried_when_it_never_left_or_was_refused(
    rsps: responses.RequestsMock, fake: FakeTime
) -> None:
    rsps.post(URL, body=requests.ConnectTimeout("no connection"))
    rsps.post(URL, status=429, headers={"Retry-After": "2"}, json=meta_error(613))
    rsps.post(URL, json={"id": "9"})
    outcome = make_client(fake).call("create audience", "POST", URL, repeatable=False, data={"name": "a"})
    assert outcome.kind == "success" and len(rsps.calls) == 3


@pytest.mark.parametrize("code", META_RETRIABLE)
def test_each_retriable_meta_code_is_retried(rsps: responses.RequestsMock, fake: FakeTime, code: int) -> None:
    rsps.post(URL, status=400, json=meta_error(code))
    rsps.post(URL, json=OK)
    assert add(make_client(fake)).kind == "success"
    assert len(rsps.calls) == 2 and len(fake.sleeps) == 1


# --- fatal answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", META_FATAL)
def test_each_fatal_meta_code_raises_at_once(rsps: responses.RequestsMock, fake: FakeTime, code: int) -> None:
    rsps.post(URL, status=400, json=meta_error(code))
    with pytest.raises(PlatformError) as caught:
        add(make_client(fake))
    assert isinstance(caught.value, FatalUploadError)
    assert caught.value.outcome.code == code
    assert f"meta error {code}" in str(caught.value)
    assert len(rsps.calls) == 1 and fake.sleeps == []


def test_plain_404_is_fatal(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.get(URL, status=404, body="Not Found")
    with pytest.raises(FatalUploadError, match=r"HTTP 404: request refused"):
        make_client(fake).call("look up", "GET", URL)
    assert len(rsps.calls) == 1 and fake.sleeps == []


def test_token_error_tells_where_to_renew(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, status=400, json=meta_error(190))
    with pytest.raises(FatalUploadError) as caught:
        add(make_client(fake))
    assert str(caught.value) == (
        "destination meta-main: add to audience 123: HTTP 400, meta error 190: "
        "the access token is invalid or expired; renew it in $META_TOKEN (fbtrace_id AbC123xyz)"
    )


def test_a_redirect_is_not_followed(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, status=302, headers={"Location": "https://elsewhere.test/"})
    with pytest.raises(FatalUploadError, match="HTTP 302"):
        add(make_client(fake))
    assert len(rsps.calls) == 1


def test_a_success_that_is_not_json_is_fatal(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, body="<html>login</html>")
    with pytest.raises(FatalUploadError, match="not the JSON object"):
        add(make_client(fake))


def test_other_request_errors_are_fatal(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, body=requests.TooManyRedirects(f"{URL}?access_token={TOKEN}"))
    with pytest.raises(FatalUploadError) as caught:
        add(make_client(fake))
    assert (
        str(caught.value) == "destination meta-main: add to audience 123: request failed (TooManyRedirects)"
    )


# --- the retry budget --------------------------------------------------------------------------------


def test_attempts_exhausted_raise_retriable(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, status=500, json=meta_error(2))
    with pytest.raises(RetriableUploadError) as caught:
        add(make_client(fake, attempts=3, initial_wait=0))
    assert len(rsps.calls) == 3 and len(fake.sleeps) == 2
    assert str(caught.value) == (
        "destination meta-main: add to audience 123: gave up after 3 tries in 0.0s: "
        "HTTP 500, meta error 2: temporary platform error (fbtrace_id AbC123xyz)"
    )


def test_max_seconds_exhausted_raise_retriable(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, status=429, json=meta_error(80004), headers={"Retry-After": "4"})
    with pytest.raises(RetriableUploadError, match=r"gave up after 3 tries in 8\.0s"):
        add(make_client(fake, attempts=50, max_seconds=10))
    # a third wait would end past 10 s: stop instead of sleeping into the budget's end
    assert fake.sleeps == [4, 4] and len(rsps.calls) == 3


def test_timeouts_exhausted_say_so(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(RetriableUploadError, match=r"no response within 5s \(ReadTimeout\)"):
        add(make_client(fake, attempts=2))


def test_one_attempt_means_no_retry(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(URL, body=requests.ConnectionError("refused"))
    with pytest.raises(RetriableUploadError, match=r"connection failed \(ConnectionError\)"):
        add(make_client(fake, attempts=1))
    assert fake.sleeps == []


# --- TikTok ------------------------------------------------------------------------------------------


def test_tiktok_nonzero_code_with_http_200_is_an_error(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(TT_URL, json=tiktok(40002))
    with pytest.raises(PlatformError, match="HTTP 200, tiktok error 40002: invalid parameter"):
        make_client(fake, "tiktok").call("update", "POST", TT_URL, json={})
    assert len(rsps.calls) == 1


def test_tiktok_rate_limit_is_retried_after_retry_after(rsps: responses.RequestsMock, fake: FakeTime) -> None:
    rsps.post(TT_URL, json=tiktok(40100), headers={"Retry-After": "3"})
    rsps.post(TT_URL, json=tiktok(0, {"ok": 1}))
    outcome = make_client(fake, "tiktok").call("update", "POST", TT_URL, json={})
    assert outcome.body["data"] == {"ok": 1}
    assert fake.sleeps == [3]


@pytest.mark.parametrize(("status", "code"), [(500, 50000), (200, 50002), (503, None)])
def test_tiktok_server_errors_are_retried(
    rsps: responses.RequestsMock, fake: FakeTime, status: int, code: int | None
) -> None:
    rsps.post(TT_URL, status=status, json=tiktok(code) if code else None)
    rsps.post(TT_URL, json=tiktok(0))
    make_client(fake, "tiktok").call("update", "POST", TT_URL, json={})
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("code", [40105, 40104])
def test_tiktok_token_errors_are_fatal(rsps: responses.RequestsMock, fake: FakeTime, code: int) -> None:
    rsps.post(TT_URL, json=tiktok(code))
    with pytest.raises(FatalUploadError) as caught:
        make_client(fake, "tiktok").call("APPEND audience 9", "POST", TT_URL, json={})
    assert str(caught.value) == (
        f"destination tt: APPEND audience 9: HTTP 200, tiktok error {code}: "
        "the access token is invalid or expired; renew it in $TIKTOK_TOKEN (request_id req-42)"
    )
    assert len(rsps.calls) == 1 and fake.sleeps == []


# --- nothing secret in messages or logs --------------------------------------------------------------


def test_messages_and_logs_hold_no_token_hash_or_platform_text(
    rsps: responses.RequestsMock, fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.post(URL, status=429, json=meta_error(613), headers={"Retry-After": "1"})
    rsps.post(URL, body=requests.ConnectionError(f"{URL} {HASH}"))
    rsps.post(URL, status=400, json=meta_error(2650))
    with pytest.raises(FatalUploadError) as caught:
        add(make_client(fake))
    rsps.delete(URL2, status=500, json=meta_error(1))
    with pytest.raises(RetriableUploadError) as exhausted:
        make_client(fake, attempts=2).call("remove", "DELETE", URL2, data={"payload": HASH})
    retries = [r for r in caplog.records if r.name == "audiences.destinations.http"]
    assert len(retries) == 3 and all(r.levelno == logging.WARNING for r in retries)
    assert retries[0].getMessage() == (
        "destination meta-main: add to audience 123: HTTP 429, meta error 613: rate limit reached"
        " (fbtrace_id AbC123xyz); try 2 of 4 in 1.0s"
    )
    assert "connection failed (ConnectionError); try 3 of 4" in retries[1].getMessage()
    texts = [str(caught.value), str(exhausted.value), caplog.text]
    for text in texts:
        for secret in (TOKEN, HASH, ECHO, "OAuthException"):
            assert secret not in text


def test_tiktok_messages_hold_no_platform_text(
    rsps: responses.RequestsMock, fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.post(TT_URL, json=tiktok(40100))
    rsps.post(TT_URL, json=tiktok(40105))
    with pytest.raises(FatalUploadError) as caught:
        make_client(fake, "tiktok").call("update", "POST", TT_URL, data={"file": HASH})
    for text in (str(caught.value), caplog.text):
        assert TOKEN not in text and HASH not in text and ECHO not in text


# --- classify and the token ----------------------------------------------------------------------------


def response(
    status: int, json_body: object = None, headers: dict[str, str] | None = None
) -> requests.Response:
    result = requests.Response()
    result.status_code = status
    result.headers.update(headers or {})
    result._content = b"" if json_body is None else json.dumps(json_body).encode()
    return result


@pytest.mark.parametrize(
    ("platform", "status", "body", "kind"),
    [
        ("meta", 200, {"id": "1"}, "success"),
        ("meta", 200, meta_error(613), "retriable"),
        ("meta", 400, meta_error(803), "retriable"),
        ("meta", 400, meta_error(10803), "fatal"),
        ("meta", 403, None, "fatal"),
        ("meta", 429, None, "retriable"),
        ("meta", 500, meta_error(190), "retriable"),
        ("tiktok", 200, tiktok(0), "success"),
        ("tiktok", 200, {"data": {}}, "fatal"),
        ("tiktok", 200, tiktok(40100), "retriable"),
        ("tiktok", 200, tiktok(40001), "fatal"),
        ("tiktok", 500, tiktok(50000), "retriable"),
        ("tiktok", 401, tiktok(40105), "fatal"),
    ],
)
def test_classify_table(platform: str, status: int, body: object, kind: str) -> None:
    assert classify(platform, response(status, body)).kind == kind


def test_classify_reads_the_subcode_and_retry_after() -> None:
    outcome = classify("meta", response(400, meta_error(100, 33), {"Retry-After": "12"}))
    assert (outcome.kind, outcome.code, outcome.subcode, outcome.retry_after) == ("fatal", 100, 33, 12.0)
    assert outcome.describe() == (
        "HTTP 400, meta error 100/33: invalid parameter, or the object does not exist (fbtrace_id AbC123xyz)"
    )
    assert outcome.body is None  # error bodies are not kept


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    retry_after = classify("meta", response(429, None, {"Retry-After": when})).retry_after
    assert retry_after is not None and 25 <= retry_after <= 31


def test_an_odd_request_id_is_left_out() -> None:
    body = meta_error(2)
    body["error"]["fbtrace_id"] = f"<{ECHO}>"  # type: ignore[index]
    assert classify("meta", response(500, body)).trace_id is None


def test_classify_knows_only_its_platforms() -> None:
    with pytest.raises(ValueError, match="no classifier"):
        classify("google", response(200, {}))


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_token_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("SOME_TOKEN", raising=False)
    else:
        monkeypatch.setenv("SOME_TOKEN", value)
    with pytest.raises(ConfigError, match="set the environment variable SOME_TOKEN"):
        token_from_env("meta-main", "SOME_TOKEN")


def test_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_TOKEN", TOKEN)
    assert token_from_env("meta-main", "SOME_TOKEN") == TOKEN
