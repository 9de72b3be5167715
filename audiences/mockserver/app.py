"""Answers one request to the mock platforms: parse it, check the token, apply faults, pass it on.

``handle`` takes the raw method, target, headers and body and returns ``(status, headers, JSON body)``; the
socket side lives in ``server.py``, the platforms' own rules in ``meta.py`` and ``tiktok.py``. Meta requests
come under any ``/vNN.N/`` prefix (or none), TikTok ones under ``/open_api/vN.N/``, admin ones under
``/__mock__/``. Faults apply to API calls only, after the token check, in the order they were switched on.
"""

from __future__ import annotations

import email.message
import email.parser
import email.utils
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from audiences.mockserver import meta, tiktok
from audiences.mockserver.state import FAULT_KINDS, Fault, MockState

_META_PREFIX = re.compile(r"^/v\d+(?:\.\d+)?(?=/|$)")
_TIKTOK_PREFIX = re.compile(r"^/open_api/v\d+(?:\.\d+)?(?=/|$)")
_ADMIN = "/__mock__"
#: faults that replace the answer; ``not_ready`` joins them on Meta member calls
_ANSWER_FAULTS = ("rate_limit", "server_error", "token_expired")
_LOG = logging.getLogger(__name__)


class Response(NamedTuple):
    """What the server sends back: status, extra headers, and the body to encode as JSON."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Call:
    """One API request being answered: its parameters, uploaded files and the faults it used up."""

    state: MockState
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)

    def fault(self, *kinds: str) -> Fault | None:
        """Use up the oldest pending fault among ``kinds`` for this call, if any."""
        found = self.state.take_fault(kinds)
        if found is not None:
            self.faults.append(found.kind)
        return found


def handle(
    state: MockState,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    token: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Response:
    """Answer one request. ``headers`` has lower-case names; ``token``, when set, is the only one accepted."""
    split = urlsplit(target)
    path = split.path
    if path == _ADMIN or path.startswith(_ADMIN + "/"):
        return _admin(state, method, path, body)
    call = Call(state, method, path)
    prefix = _TIKTOK_PREFIX.match(path)
    try:
        if prefix:
            call.path = path[prefix.end() :]
            response = _tiktok(call, split.query, headers, body, token, sleep)
        else:
            call.path = _META_PREFIX.sub("", path)
            response = _meta(call, split.query, headers, body, token, sleep)
    except Exception:  # a bug in the mock: a 500 the test will see, and the traceback in the log
        _LOG.exception("mock server failed on %s %s", method, path)
        response = Response(500, {}, {"error": {"message": "mock server bug; see its log", "code": 1}})
    # logged without the query string: it may hold the token or a payload of hashes
    state.record(method, path, response.status, "+".join(call.faults) or None)
    return response


def _meta(
    call: Call,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    token: str | None,
    sleep: Callable[[float], None],
) -> Response:
    try:
        try:
            _parse_into(call, query, headers, body, meta.JSON_PARAMS)
        except ValueError as exc:
            raise meta.bad_request(str(exc)) from None
        given = meta.token_of(call.params, headers)
        if not _token_ok(given, token):
            raise meta.token_error(missing=not given)
        handler, args, member_call = meta.route(call.method, call.path)
        _delay(call, sleep)
        fault = call.fault(*_ANSWER_FAULTS, "not_ready") if member_call else call.fault(*_ANSWER_FAULTS)
        if fault is not None:
            raise meta.fault_error(fault)
        with call.state.lock:
            return Response(200, {}, handler(call, *args))
    except meta.MetaError as error:
        return Response(error.status, error.headers, error.body())


def _tiktok(
    call: Call,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    token: str | None,
    sleep: Callable[[float], None],
) -> Response:
    try:
        try:
            _parse_into(call, query, headers, body, ())
        except ValueError as exc:
            raise tiktok.bad_request(str(exc)) from None
        if not _token_ok(headers.get("access-token", "").strip(), token):
            raise tiktok.token_error()
        handler = tiktok.route(call.method, call.path)
        _delay(call, sleep)
        fault = call.fault(*_ANSWER_FAULTS)
        if fault is not None:
            raise tiktok.fault_error(fault)
        with call.state.lock:
            return Response(200, {}, tiktok.envelope(0, "OK", handler(call)))
    except tiktok.TikTokError as error:
        return Response(error.status, error.headers, error.body())


def _token_ok(given: str, expected: str | None) -> bool:
    if not given:
        return False
    return expected is None or hmac.compare_digest(given.encode(), expected.encode())


def _delay(call: Call, sleep: Callable[[float], None]) -> None:
    """A ``timeout`` fault: answer late (after the client gave up), then act as usual."""
    fault = call.fault("timeout")
    if fault is not None:
        sleep(fault.options["delay"])


def _parse_into(
    call: Call, query: str, headers: Mapping[str, str], body: bytes, json_params: tuple[str, ...]
) -> None:
    """Merge query-string and body parameters into ``call`` (the body wins) and decode JSON-valued ones.

    Raises:
        ValueError: a body or a JSON-valued parameter that cannot be read.
    """
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if body:
        media, boundary = _content_type(headers.get("content-type", ""))
        if media == "application/json":
            loaded = json.loads(body)
            if not isinstance(loaded, dict):
                raise ValueError("a JSON body must be an object")
            params.update(loaded)
        elif media == "multipart/form-data":
            fields, files = _multipart(body, boundary)
            params.update(fields)
            call.files.update(files)
        else:  # form-encoded, also when the client named no type
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for name in json_params:
        if isinstance(params.get(name), str):
            try:
                params[name] = json.loads(params[name])
            except ValueError:
                raise ValueError(f"parameter {name} must be JSON") from None
    call.params = params


def _content_type(value: str) -> tuple[str, str | None]:
    """The media type and the multipart boundary, if any."""
    message = email.message.Message()
    message["content-type"] = value
    boundary = message.get_param("boundary")
    return message.get_content_type(), None if boundary is None else email.utils.collapse_rfc2231_value(
        boundary
    )


def _multipart(body: bytes, boundary: str | None) -> tuple[dict[str, str], dict[str, bytes]]:
    """Fields and files of a ``multipart/form-data`` body; parts with a filename are files, kept as sent.

    A small hand parser (``cgi`` is gone in Python 3.13); part headers are read by the ``email`` package.
    """
    if not boundary:
        raise ValueError("a multipart body needs a boundary")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for chunk in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            return fields, files
        head, found, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not found:
            raise ValueError("a multipart part has no blank line after its headers")
        part = email.parser.BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if name is None:
            raise ValueError("a multipart part has no name")
        content = content.removesuffix(b"\r\n")
        if part.get_filename() is None:
            fields[email.utils.collapse_rfc2231_value(name)] = content.decode("utf-8")
        else:
            files[email.utils.collapse_rfc2231_value(name)] = content
    raise ValueError("the multipart body has no closing boundary")


def _admin(state: MockState, method: str, path: str, body: bytes) -> Response:
    """``GET state``, ``POST faults``, ``POST reset``: not logged, and faults never apply to them."""
    route = path.rstrip("/")
    if method == "GET" and route == f"{_ADMIN}/state":
        return Response(200, {}, state.snapshot())
    if method == "POST" and route == f"{_ADMIN}/reset":
        state.clear()
        return Response(200, {}, {"ok": True})
    if method == "POST" and route == f"{_ADMIN}/faults":
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
                raise ValueError('the body must be a JSON object like {"kind": "rate_limit", "count": 2}')
            options = {key: value for key, value in spec.items() if key not in ("kind", "count")}
            state.add_fault(spec["kind"], spec.get("count", 1), **options)
        except ValueError as exc:
            return Response(400, {}, {"error": str(exc), "kinds": list(FAULT_KINDS)})
        return Response(200, {}, {"ok": True, "faults": state.pending_faults()})
    endpoints = ["GET /__mock__/state", "POST /__mock__/faults", "POST /__mock__/reset"]
    return Response(404, {}, {"error": f"no admin endpoint {method} {route}", "endpoints": endpoints})
