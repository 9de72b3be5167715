"""HTTP for the platform adapters: one session each, one classifier, one retry policy.

``classify`` turns a response into success, retriable or fatal (the table in the protocol contract);
``Client.call`` retries only the retriable ones and dropped connections with tenacity. Every message is
built from the status, the platform's error code and our own explanation: never the token, the payload or
the platform's message text (platforms echo submitted data in it).
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import requests
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type

from audiences.destinations.config import RetryConfig
from audiences.errors import ConfigError, FatalUploadError, RetriableUploadError

log = logging.getLogger(__name__)

Kind = Literal["success", "retriable", "fatal"]

META_RETRIABLE = frozenset({1, 2, 4, 17, 32, 613, 80003, 80004, 803})
TIKTOK_RETRIABLE = frozenset({40100, 50000, 50002})
TIKTOK_TOKEN = frozenset({40104, 40105})

_RENEW = "the access token is invalid or expired; renew it"
META_EXPLAIN = {
    1: "unknown temporary platform error",
    2: "temporary platform error",
    4: "application rate limit reached",
    17: "user rate limit reached",
    32: "page rate limit reached",
    613: "rate limit reached",
    80003: "ad account rate limit reached (custom audiences)",
    80004: "ad account rate limit reached",
    803: "the audience is not ready yet (just created)",
    190: _RENEW,
    200: "permission denied: the token's user lacks access or the custom audience terms are not accepted",
    10: "the app lacks a permission for this action, or the terms of service are not accepted",
    100: "invalid parameter, or the object does not exist",
    2650: "the upload's schema differs from the one this audience was created with",
    10803: "a product set with the same filter already exists in this catalog",
}
TIKTOK_EXPLAIN = {
    40100: "rate limit reached",
    50000: "internal platform error",
    50002: "temporary platform error",
    40104: _RENEW,
    40105: _RENEW,
    40002: "invalid parameter",
}
#: request ids worth quoting in a message (anything else is left out)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
#: dropped connections and timeouts: worth another try
CONNECTION_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class Outcome:
    """What one response means; ``body`` (the parsed JSON) is kept only on success."""

    kind: Kind
    status: int
    platform: str
    code: int | None = None
    subcode: int | None = None
    explanation: str = ""
    retry_after: float | None = None
    trace_id: str | None = None
    body: Any = None

    def describe(self) -> str:
        """A safe one-line account: HTTP status, platform code, our explanation, the request id."""
        text = f"HTTP {self.status}"
        if self.code is not None:
            sub = f"/{self.subcode}" if self.subcode is not None else ""
            text += f", {self.platform} error {self.code}{sub}"
        text += f": {self.explanation}"
        if self.trace_id:
            text += f" ({'fbtrace_id' if self.platform == 'meta' else 'request_id'} {self.trace_id})"
        return text


class PlatformError(FatalUploadError):
    """A fatal platform answer; ``outcome`` lets an adapter recover from a known code."""

    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class _Retry(Exception):
    """Internal: a retriable outcome, raised so tenacity tries again."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.describe())
        self.outcome = outcome


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None without one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_ids(platform: str, body: Any) -> tuple[int | None, int | None, str | None]:
    """The platform's error code, subcode and request id in ``body`` (None when it reports no error)."""
    if platform == "meta":
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return None, None, None
        # Graph sends error_subcode 0 (or none) when there is no subcode
        subcode = _int(error.get("error_subcode")) or None
        code, trace = _int(error.get("code")), error.get("fbtrace_id")
    elif platform == "tiktok":
        if not isinstance(body, dict):
            return None, None, None
        code, subcode, trace = _int(body.get("code")), None, body.get("request_id")
        code = None if code == 0 else code
    else:
        raise ValueError(f"no classifier for platform {platform!r}")
    return code, subcode, trace if isinstance(trace, str) and _SAFE_ID.match(trace) else None


def _explain(platform: str, status: int, code: int | None, token_env: str | None) -> str:
    if code is not None:
        meta = platform == "meta"
        text = (META_EXPLAIN if meta else TIKTOK_EXPLAIN).get(code, "platform error")
        token = code == 190 if meta else code in TIKTOK_TOKEN
        return f"{text} in ${token_env}" if token and token_env else text
    if status == 429:
        return "rate limited"
    if status >= 500:
        return "server error"
    return "request refused" if 400 <= status < 500 else "unexpected response"


def classify(platform: str, response: requests.Response, token_env: str | None = None) -> Outcome:
    """Success, retriable or fatal for a ``meta`` or ``tiktok`` response; ``token_env`` names the variable
    to renew in the explanation of a token error."""
    status, body = response.status_code, _json(response)
    code, subcode, trace = _error_ids(platform, body)
    retry_after = _retry_after(response)
    if code is None and 200 <= status < 300:
        if isinstance(body, dict) and (platform == "meta" or body.get("code") == 0):
            return Outcome("success", status, platform, retry_after=retry_after, trace_id=trace, body=body)
        text = "the response is not the JSON object the API documents"
        return Outcome("fatal", status, platform, explanation=text, trace_id=trace)
    retriable = META_RETRIABLE if platform == "meta" else TIKTOK_RETRIABLE
    kind: Kind = "retriable" if status == 429 or status >= 500 or code in retriable else "fatal"
    text = _explain(platform, status, code, token_env)
    return Outcome(kind, status, platform, code, subcode, text, retry_after, trace)


def token_from_env(name: str, variable: str) -> str:
    """The token in environment variable ``variable``; ``ConfigError`` naming it when unset or empty."""
    token = os.environ.get(variable, "")
    if not token.strip():
        raise ConfigError(f"destination {name}: set the environment variable {variable} to the access token")
    return token.strip()


def required(body: Mapping[str, Any], key: str, where: str) -> str:
    """``body[key]`` as text; a ``FatalUploadError`` when a success answer lacks it."""
    value = body.get(key)
    if value is None or value == "":
        raise FatalUploadError(f"{where}: the platform's answer has no {key}")
    return str(value)


def _connection_text(error: BaseException, timeout: float) -> str:
    if isinstance(error, requests.Timeout):
        return f"no response within {timeout:g}s ({type(error).__name__})"
    return f"connection failed ({type(error).__name__})"


class Client:
    """One ``requests.Session`` for one destination; ``sleep`` and ``clock`` are attributes so tests can
    replace them."""

    def __init__(
        self,
        destination: str,
        platform: str,
        *,
        timeout: float,
        retry: RetryConfig,
        headers: Mapping[str, str],
        token_env: str | None = None,
    ) -> None:
        self.destination = destination
        self.platform = platform
        self.timeout = timeout
        self.retry = retry
        self.token_env = token_env
        self.session = requests.Session()
        self.session.headers.update(headers)
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic

    def call(
        self, operation: str, method: str, url: str, *, repeatable: bool = True, **kwargs: Any
    ) -> Outcome:
        """Send one request (``kwargs`` as for ``requests``) and return its success ``Outcome``.

        ``repeatable=False`` marks a call that must not reach the platform twice (a create): after a timeout
        or a dropped connection the platform may have acted on it, so it is not sent again (the next sync
        looks the object up by name first); answers that say to retry still are.

        Raises:
            FatalUploadError: (a ``PlatformError``) at once on a fatal answer.
            RetriableUploadError: when the retry budget is spent, or a call that is not repeatable got
                no answer.
        """
        where = f"destination {self.destination}: {operation}"
        start = self.clock()
        waits: dict[int, float] = {}

        # a redirect could carry the token header to another host; the APIs never redirect
        kwargs.setdefault("allow_redirects", False)

        def attempt() -> Outcome:
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except CONNECTION_ERRORS:
                raise
            except requests.RequestException as error:
                raise FatalUploadError(f"{where}: request failed ({type(error).__name__})") from None
            outcome = classify(self.platform, response, self.token_env)
            if outcome.kind == "success":
                return outcome
            if outcome.kind == "retriable":
                raise _Retry(outcome)
            raise PlatformError(f"{where}: {outcome.describe()}", outcome)

        def wait(state: RetryCallState) -> float:
            # stop and wait both ask; the first computes (jitter is random), the other reuses it
            if state.attempt_number not in waits:
                waits[state.attempt_number] = self._backoff(state)
            return waits[state.attempt_number]

        def stop(state: RetryCallState) -> bool:
            spent = self.clock() - start
            return state.attempt_number >= self.retry.attempts or spent + wait(state) > self.retry.max_seconds

        def before_sleep(state: RetryCallState) -> None:
            log.warning(
                "%s: %s; try %d of %d in %.1fs",
                where,
                self._failure(state.outcome.exception() if state.outcome else None),
                state.attempt_number + 1,
                self.retry.attempts,
                wait(state),
            )

        retrying = Retrying(
            sleep=self.sleep,
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(
                (_Retry, *CONNECTION_ERRORS) if repeatable else (_Retry, requests.ConnectTimeout)
            ),
            before_sleep=before_sleep,
        )
        try:
            result: Outcome = retrying(attempt)
        except RetryError as error:
            tries, spent = error.last_attempt.attempt_number, self.clock() - start
            last = self._failure(error.last_attempt.exception())
            raise RetriableUploadError(
                f"{where}: gave up after {tries} tries in {spent:.1f}s: {last}"
            ) from None
        except CONNECTION_ERRORS as error:  # only a call that is not repeatable gets here
            raise RetriableUploadError(
                f"{where}: {_connection_text(error, self.timeout)}; not sent again, as the platform may "
                "have acted on it (the next sync looks for it first)"
            ) from None
        return result

    def _failure(self, error: BaseException | None) -> str:
        if isinstance(error, _Retry):
            return error.outcome.describe()
        return _connection_text(error, self.timeout) if error else "unknown failure"

    def _backoff(self, state: RetryCallState) -> float:
        """``Retry-After`` when the platform sent one, else exponential with jitter; at most max_wait."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retry) and error.outcome.retry_after is not None:
            return min(error.outcome.retry_after, self.retry.max_wait)
        first = self.retry.initial_wait
        grown = first * 2 ** (state.attempt_number - 1) + random.uniform(0, first)
        return min(grown, self.retry.max_wait)

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()
