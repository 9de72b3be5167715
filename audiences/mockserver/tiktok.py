"""The mock TikTok Marketing API: customer-file uploads and custom audiences built from them.

Handlers take a parsed ``Call`` (run under the state lock) and return the ``data`` of a ``code: 0`` answer, or
raise ``TikTokError``: like the real API, a non-zero ``code`` usually comes with HTTP 200. Member rows are a
file's data rows as tuples in the order of its header.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from audiences.mockserver.state import Fault, Row, TikTokAudience, TikTokFile

if TYPE_CHECKING:
    from audiences.mockserver.app import Call

CALCULATE_TYPES = frozenset({"EMAIL_SHA256", "PHONE_SHA256", "MULTIPLE_TYPES"})
COLUMNS = frozenset({"EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256", "GAID_SHA256"})
ACTIONS = frozenset({"APPEND", "DELETE", "REPLACE"})
BAD_PARAMETER, RATE_LIMITED, TOKEN_INVALID, INTERNAL_ERROR = 40002, 40100, 40105, 50000

_HEX64 = re.compile(r"[0-9a-f]{64}")
Handler = Callable[["Call"], dict[str, Any]]


class TikTokError(Exception):
    """A TikTok error answer: a non-zero ``code``, with HTTP 200 unless ``status`` says otherwise."""

    def __init__(self, code: int, message: str, *, status: int = 200, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.headers = code, message, status, headers or {}

    def body(self) -> dict[str, Any]:
        """The error envelope."""
        return envelope(self.code, self.message, {})


def envelope(code: int, message: str, data: dict[str, Any]) -> dict[str, Any]:
    """``{"code", "message", "data", "request_id"}``, the shape of every TikTok answer."""
    request_id = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()
    return {"code": code, "message": message, "data": data, "request_id": request_id}


def bad_request(message: str) -> TikTokError:
    """Code 40002: a parameter is missing or wrong."""
    return TikTokError(BAD_PARAMETER, message)


def token_error() -> TikTokError:
    """Code 40105 (with HTTP 200): no token, or not the one the server was started with."""
    return TikTokError(TOKEN_INVALID, "The access token is invalid or has expired.")


def fault_error(fault: Fault) -> TikTokError:
    """The answer a switched-on ``rate_limit``, ``server_error`` or ``token_expired`` fault stands for."""
    if fault.kind == "rate_limit":
        retry_after = fault.options["retry_after"]
        seconds = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        message = "Too many requests. Please retry in some time."
        return TikTokError(RATE_LIMITED, message, headers={"Retry-After": seconds})
    if fault.kind == "server_error":
        return TikTokError(INTERNAL_ERROR, "Internal error. Please retry.", status=500)
    return token_error()


def route(method: str, path: str) -> Handler:
    """The handler of a path without its ``/open_api/vN.N`` prefix (the trailing slash is optional)."""
    handler = _ROUTES.get((method, path.rstrip("/")))
    if handler is None:
        raise TikTokError(BAD_PARAMETER, f"No endpoint {method} {path}", status=404)
    return handler


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if _is_int(value):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{name}: this field is required")
    return value.strip()


def _choice(params: Mapping[str, Any], name: str, choices: frozenset[str]) -> str:
    value = params.get(name)
    if not isinstance(value, str) or value not in choices:
        raise bad_request(f"{name}: must be one of {', '.join(sorted(choices))}")
    return value


def _number(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    number = int(value) if isinstance(value, str) and value.isdigit() else value
    if not _is_int(number) or not low <= number <= high:
        raise bad_request(f"{name}: must be a whole number from {low} to {high}")
    return number


def _upload(call: Call) -> dict[str, Any]:
    """Keep the file's valid rows under a new path; rows with a bad cell (or none) are counted, not kept.

    A pending ``partial_invalid`` fault makes the first rows invalid; ``num_invalid`` reports them.
    """
    advertiser = _text(call.params, "advertiser_id")
    calculate_type = _choice(call.params, "calculate_type", CALCULATE_TYPES)
    content = call.files.get("file")
    if content is None:
        raise bad_request("file: a CSV file part is required")
    signature = _text(call.params, "file_signature")
    if signature.lower() != hashlib.md5(content, usedforsecurity=False).hexdigest():
        raise bad_request("file_signature: does not match the MD5 of the file")
    columns, lines = _read_csv(content, calculate_type)
    forced = call.fault("partial_invalid")
    skip = int(forced.options["invalid"]) if forced else 0
    rows = [row for index, line in enumerate(lines) if index >= skip and (row := _row(columns, line))]
    path = f"dmp/{advertiser}/{call.state.new_id()}.csv"
    call.state.tiktok_files[path] = TikTokFile(path, advertiser, calculate_type, columns, rows)
    invalid = len(lines) - len(rows)
    return {"file_path": path, "num_invalid": invalid} if invalid else {"file_path": path}


def _read_csv(content: bytes, calculate_type: str) -> tuple[tuple[str, ...], list[list[str]]]:
    """The header (id types) and the data lines of a customer file; blank lines skipped."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad_request("file: must be UTF-8 text") from None
    lines = [line for line in csv.reader(io.StringIO(text, newline="")) if line]
    if not lines:
        raise bad_request("file: empty; it needs a header row naming the id types")
    columns = tuple(cell.strip() for cell in lines[0])
    if not set(columns) <= COLUMNS or len(set(columns)) != len(columns):
        raise bad_request(f"file: the header must name distinct id types from {', '.join(sorted(COLUMNS))}")
    if calculate_type != "MULTIPLE_TYPES" and columns != (calculate_type,):
        raise bad_request(
            f"calculate_type: {calculate_type} needs a file with the single column {calculate_type}"
        )
    return columns, lines[1:]


def _row(columns: tuple[str, ...], line: list[str]) -> Row | None:
    """The row as stored, or None when invalid: a cell not 64-lowercase-hex, all empty, or the wrong width."""
    if len(line) != len(columns) or not any(line):
        return None
    return tuple(line) if all(not cell or _HEX64.fullmatch(cell) for cell in line) else None


def _file_rows(call: Call, advertiser: str, calculate_type: str) -> set[Row]:
    """The union of the rows of ``file_paths``: 1–500 files uploaded for this advertiser with this type."""
    paths = call.params.get("file_paths")
    if not isinstance(paths, list) or not 1 <= len(paths) <= 500:
        raise bad_request("file_paths: a list of 1 to 500 uploaded file paths is required")
    rows: set[Row] = set()
    for path in paths:
        found = call.state.tiktok_files.get(path) if isinstance(path, str) else None
        if found is None or found.advertiser_id != advertiser:
            raise bad_request(f"file_paths: {path!r} is not a file uploaded for this advertiser")
        if found.calculate_type != calculate_type:
            raise bad_request(
                f"file_paths: {path!r} was uploaded as {found.calculate_type}, not {calculate_type}"
            )
        rows.update(found.rows)
    return rows


def _create(call: Call) -> dict[str, Any]:
    advertiser = _text(call.params, "advertiser_id")
    name = _text(call.params, "custom_audience_name")
    if len(name) > 128:
        raise bad_request("custom_audience_name: at most 128 characters")
    calculate_type = _choice(call.params, "calculate_type", CALCULATE_TYPES)
    if "retention_in_days" in call.params:
        _number(call.params, "retention_in_days", 0, 1, 365)
    members = _file_rows(call, advertiser, calculate_type)
    audience = TikTokAudience(call.state.new_id(), advertiser, name, calculate_type, members)
    call.state.tiktok_audiences[audience.id] = audience
    return {"custom_audience_id": audience.id}


def _update(call: Call) -> dict[str, Any]:
    """APPEND adds the files' rows, DELETE removes equal rows, REPLACE makes them the only members."""
    advertiser = _text(call.params, "advertiser_id")
    audience = call.state.tiktok_audiences.get(_text(call.params, "custom_audience_id"))
    if audience is None or audience.advertiser_id != advertiser:
        raise bad_request("custom_audience_id: no such audience for this advertiser")
    action = _choice(call.params, "action", ACTIONS)
    rows = _file_rows(call, advertiser, audience.calculate_type)
    if action == "APPEND":
        audience.members.update(rows)
    elif action == "DELETE":
        audience.members.difference_update(rows)
    else:
        audience.members = rows
    return {}


def _list(call: Call) -> dict[str, Any]:
    advertiser = _text(call.params, "advertiser_id")
    page = _number(call.params, "page", 1, 1, 1_000_000)
    size = _number(call.params, "page_size", 10, 1, 100)
    audiences = [a for a in call.state.tiktok_audiences.values() if a.advertiser_id == advertiser]
    shown = audiences[(page - 1) * size : page * size]
    total = len(audiences)
    return {
        "list": [{"custom_audience_id": a.id, "name": a.name} for a in shown],
        "page_info": {
            "page": page,
            "page_size": size,
            "total_number": total,
            "total_page": math.ceil(total / size),
        },
    }


_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/dmp/custom_audience/file/upload"): _upload,
    ("POST", "/dmp/custom_audience/create"): _create,
    ("POST", "/dmp/custom_audience/update"): _update,
    ("GET", "/dmp/custom_audience/list"): _list,
}
