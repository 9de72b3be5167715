"""The mock Graph API: custom audiences from customer lists and catalog product sets.

Handlers take a parsed ``Call`` (run under the state lock) and return the JSON body of a 200 answer, or raise
``MetaError`` with the code the real Graph API gives for the same mistake: 100 for a bad parameter or an
unknown object, 2650 for a schema other than the audience's, 10803 for a duplicate product-set filter.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from audiences.mockserver.state import Fault, MetaAudience, MockState, ProductSet, ReplaceSession, Row

if TYPE_CHECKING:
    from audiences.mockserver.app import Call

MAX_ROWS = 10_000
#: multi-key schema names; all but the plain ones carry SHA-256 digests
PLAIN_KEYS = frozenset({"MADID", "EXTERN_ID"})
_CONTACT_KEYS = frozenset({"EMAIL", "PHONE", "FN", "LN", "FI", "CT", "ST", "ZIP", "COUNTRY"})
HASHED_KEYS = _CONTACT_KEYS | {"DOBY", "DOBM", "DOBD", "GEN"}
KEYS = HASHED_KEYS | PLAIN_KEYS
#: the single-key form: ``{"schema": "EMAIL_SHA256", "data": ["<hash>", ...]}``
SINGLE_KEYS = frozenset({"EMAIL_SHA256", "PHONE_SHA256"})
SOURCES = frozenset({"USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"})
#: parameters the Graph API takes as JSON strings inside form fields or the query string
JSON_PARAMS = ("payload", "session", "filter", "schedule")

_HEX64 = re.compile(r"[0-9a-f]{64}")
Handler = Callable[..., dict[str, Any]]


class MetaError(Exception):
    """A Graph API error answer: ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: int = 400,
        kind: str = "OAuthException",
        subcode: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.kind, self.subcode = code, message, kind, subcode
        self.status, self.headers = status, headers or {}

    def body(self) -> dict[str, Any]:
        """The error body, with a fresh trace id as the Graph API sends."""
        error = {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "error_subcode": self.subcode,
            "fbtrace_id": "A" + secrets.token_hex(10),
        }
        return {"error": error}


def token_of(params: dict[str, Any], headers: Mapping[str, str]) -> str:
    """The token of ``Authorization: Bearer`` or the ``access_token`` parameter (popped from ``params``)."""
    given = params.pop("access_token", "")
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return given if isinstance(given, str) else ""


def token_error(missing: bool) -> MetaError:
    """Error 190: no token, or not the one the server was started with."""
    if missing:
        return MetaError(190, "An active access token must be used to query this endpoint.")
    return MetaError(190, "Invalid OAuth access token - Cannot parse access token")


def fault_error(fault: Fault) -> MetaError:
    """The answer a switched-on fault stands for (``timeout`` and ``partial_invalid`` are not answers)."""
    if fault.kind == "rate_limit":
        code, retry_after = int(fault.options["code"]), fault.options["retry_after"]
        seconds = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        message = f"(#{code}) Calls to this api have exceeded the rate limit."
        return MetaError(code, message, status=429, headers={"Retry-After": seconds})
    if fault.kind == "server_error":
        return MetaError(2, "An unexpected error has occurred. Please retry your request later.", status=500)
    if fault.kind == "token_expired":
        return MetaError(190, "Error validating access token: Session has expired.", subcode=463)
    return MetaError(803, "(#803) The audience is not ready yet right after its creation; retry shortly.")


def bad_request(message: str) -> MetaError:
    """Error 100, the Graph API's answer to a bad parameter."""
    return MetaError(100, message if message.startswith("(#100)") else f"(#100) {message}")


def unsupported(method: str, node: str) -> MetaError:
    """Error 100/33: no such object, or it does not take this call."""
    return MetaError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        kind="GraphMethodException",
        subcode=33,
    )


def route(method: str, path: str) -> tuple[Handler, tuple[str, ...], bool]:
    """The handler of a path without its version prefix, its path arguments, and whether it is a member
    call (``/users``, ``/usersreplace``: the ``not_ready`` fault applies to those only)."""
    parts = tuple(part for part in path.split("/") if part)
    match method, parts:
        case "GET", (account, "customaudiences") if account.startswith("act_") and len(account) > 4:
            return _list_audiences, (account[4:],), False
        case "POST", (account, "customaudiences") if account.startswith("act_") and len(account) > 4:
            return _create_audience, (account[4:],), False
        case "POST", (node, "users"):
            return _add_users, (node,), True
        case "DELETE", (node, "users"):
            return _remove_users, (node,), True
        case "POST", (node, "usersreplace"):
            return _replace_users, (node,), True
        case "GET", (catalog, "product_sets"):
            return _list_product_sets, (catalog,), False
        case "POST", (catalog, "product_sets"):
            return _create_product_set, (catalog,), False
        case "GET", (node,):
            return _get_node, (node,), False
        case "POST", (node,):
            return _update_node, (node,), False
    raise unsupported(method, "/".join(parts))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(params: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = params.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad_request(
            f"The parameter {name} is required" if required else f"The parameter {name} is text"
        )
    return value


def _fields(call: Call, available: Mapping[str, Any], node_type: str) -> dict[str, Any]:
    """The ``fields`` asked for (id and name when none), ``id`` always included, like the Graph API."""
    asked = call.params.get("fields") or "id,name"
    if not isinstance(asked, str | list):
        raise bad_request("fields must be a comma-separated list of field names")
    names = asked.split(",") if isinstance(asked, str) else [str(name) for name in asked]
    chosen = {"id": available["id"]}
    for name in (name.strip() for name in names if name.strip()):
        if name not in available:
            raise bad_request(f"Tried accessing nonexisting field ({name}) on node type ({node_type})")
        chosen[name] = available[name]
    return chosen


def _page(data: list[dict[str, Any]]) -> dict[str, Any]:
    """All of it in one page: cursors but no ``paging.next``."""
    cursors = {"before": data[0]["id"], "after": data[-1]["id"]} if data else {"before": "", "after": ""}
    return {"data": data, "paging": {"cursors": cursors}}


def _audience_fields(audience: MetaAudience) -> dict[str, Any]:
    return {
        "id": audience.id,
        "name": audience.name,
        "description": audience.description,
        "account_id": audience.ad_account_id,
        "subtype": "CUSTOM",
    }


def _product_set_fields(product_set: ProductSet) -> dict[str, Any]:
    return {"id": product_set.id, "name": product_set.name, "filter": json.dumps(product_set.filter)}


def _list_audiences(call: Call, account: str) -> dict[str, Any]:
    audiences = [a for a in call.state.meta_audiences.values() if a.ad_account_id == account]
    return _page([_fields(call, _audience_fields(a), "CustomAudience") for a in audiences])


def _create_audience(call: Call, account: str) -> dict[str, Any]:
    name = _text(call.params, "name")
    description = _text(call.params, "description", required=False)
    if call.params.get("subtype") != "CUSTOM":
        raise bad_request("subtype must be CUSTOM for an audience from a customer list")
    if call.params.get("customer_file_source") not in SOURCES:
        raise bad_request(f"customer_file_source must be one of {', '.join(sorted(SOURCES))}")
    audience = MetaAudience(call.state.new_id(), account, name, description)
    call.state.meta_audiences[audience.id] = audience
    return {"id": audience.id}


def _get_node(call: Call, node: str) -> dict[str, Any]:
    if node in call.state.meta_audiences:
        return _fields(call, _audience_fields(call.state.meta_audiences[node]), "CustomAudience")
    if node in call.state.product_sets:
        return _fields(call, _product_set_fields(call.state.product_sets[node]), "ProductSet")
    raise unsupported("GET", node)


def _update_node(call: Call, node: str) -> dict[str, Any]:
    """Rename an audience, or change a product set's name and/or filter."""
    params = call.params
    audience = call.state.meta_audiences.get(node)
    if audience is not None:
        audience.name = _text(params, "name") if "name" in params else audience.name
        if "description" in params:
            audience.description = _text(params, "description", required=False)
        return {"success": True}
    product_set = call.state.product_sets.get(node)
    if product_set is None:
        raise unsupported("POST", node)
    if "name" not in params and "filter" not in params:
        raise bad_request("Nothing to update: give name and/or filter")
    name = _text(params, "name") if "name" in params else product_set.name
    filter_ = _filter(params) if "filter" in params else product_set.filter
    _check_unique_filter(call.state, product_set.catalog_id, filter_, product_set.id)
    product_set.name, product_set.filter = name, filter_
    return {"success": True}


def _filter(params: Mapping[str, Any]) -> dict[str, Any]:
    value = params.get("filter")
    if not isinstance(value, dict) or not value:
        raise bad_request(
            'The parameter filter is required: a JSON object like {"retailer_id": {"is_any": [..]}}'
        )
    return value


def _check_unique_filter(state: MockState, catalog: str, filter_: Any, own_id: str | None) -> None:
    for other in state.product_sets.values():
        if other.catalog_id == catalog and other.id != own_id and other.filter == filter_:
            raise MetaError(
                10803, f"(#10803) Product set {other.id} in this catalog already has this filter."
            )


def _list_product_sets(call: Call, catalog: str) -> dict[str, Any]:
    sets = [s for s in call.state.product_sets.values() if s.catalog_id == catalog]
    return _page([_fields(call, _product_set_fields(s), "ProductSet") for s in sets])


def _create_product_set(call: Call, catalog: str) -> dict[str, Any]:
    name, filter_ = _text(call.params, "name"), _filter(call.params)
    _check_unique_filter(call.state, catalog, filter_, None)
    product_set = ProductSet(call.state.new_id(), catalog, name, filter_)
    call.state.product_sets[product_set.id] = product_set
    return {"id": product_set.id}


def _audience(call: Call, node: str) -> MetaAudience:
    audience = call.state.meta_audiences.get(node)
    if audience is None:
        raise unsupported(call.method, node)
    return audience


def _payload(call: Call, audience: MetaAudience, *, upload: bool) -> tuple[tuple[str, ...], list[Row], int]:
    """Schema, valid rows and rows received of ``payload``; checks its keys, size and schema first.

    An upload (not a removal) uses up a pending ``partial_invalid`` fault: its first rows count as invalid.
    """
    payload = call.params.get("payload")
    if not isinstance(payload, dict):
        raise bad_request("The parameter payload is required: a JSON object with schema and data")
    schema, data = payload.get("schema"), payload.get("data")
    if isinstance(schema, str) and isinstance(data, list):  # the single-key form
        names: tuple[str, ...] = (schema,)
        known = SINGLE_KEYS | KEYS
        data = [[item] if isinstance(item, str) else item for item in data]
    elif isinstance(schema, list) and schema and all(isinstance(name, str) for name in schema):
        names, known = tuple(schema), KEYS
    else:
        raise bad_request('payload.schema must be a list of key names such as ["EMAIL", "PHONE"]')
    if any(name not in known for name in names) or len(set(names)) != len(names):
        raise bad_request(f"Invalid or repeated schema keys {list(names)}; known: {', '.join(sorted(known))}")
    if not isinstance(data, list):
        raise bad_request("payload.data must be a list of rows")
    if len(data) > MAX_ROWS:
        raise bad_request(f"Too many rows in payload.data: {len(data)}; at most {MAX_ROWS} per request")
    if audience.schema is not None and names != audience.schema:
        theirs = list(audience.schema)
        raise MetaError(
            2650, f"(#2650) The payload schema {list(names)} differs from the audience's {theirs}."
        )
    forced = call.fault("partial_invalid") if upload else None
    skip = int(forced.options["invalid"]) if forced else 0
    valid = [row for index, item in enumerate(data) if index >= skip and (row := _row(names, item))]
    return names, valid, len(data)


def _row(schema: tuple[str, ...], item: Any) -> Row | None:
    """The row as stored, or None when Meta counts it invalid (a hashed cell not 64-hex, or all empty)."""
    if not isinstance(item, list) or len(item) != len(schema):
        return None
    cells = ["" if cell is None else cell for cell in item]
    for name, cell in zip(schema, cells, strict=True):
        if not isinstance(cell, str) or (cell and name not in PLAIN_KEYS and not _HEX64.fullmatch(cell)):
            return None
    return tuple(cells) if any(cells) else None


def _users_answer(audience: MetaAudience, session_id: int, received: int, valid: int) -> dict[str, Any]:
    return {
        "audience_id": audience.id,
        "session_id": session_id,
        "num_received": received,
        "num_invalid_entries": received - valid,
        "invalid_entry_samples": {},
    }


def _add_users(call: Call, node: str) -> dict[str, Any]:
    audience = _audience(call, node)
    schema, rows, received = _payload(call, audience, upload=True)
    audience.schema = audience.schema or schema
    audience.members.update(rows)
    return _users_answer(audience, int(call.state.new_id()), received, len(rows))


def _remove_users(call: Call, node: str) -> dict[str, Any]:
    audience = _audience(call, node)
    _, rows, received = _payload(call, audience, upload=False)
    audience.members.difference_update(rows)
    return _users_answer(audience, int(call.state.new_id()), received, len(rows))


def _replace_users(call: Call, node: str) -> dict[str, Any]:
    """One batch of a replacement: kept apart until the last batch, which swaps the members at once."""
    audience = _audience(call, node)
    session = call.params.get("session")
    if not isinstance(session, dict):
        raise bad_request('The parameter session is required: {"session_id", "batch_seq", "last_batch_flag"}')
    session_id, seq = session.get("session_id"), session.get("batch_seq")
    last = session.get("last_batch_flag", False)
    if not _is_int(session_id) or not _is_int(seq) or seq < 1 or not isinstance(last, bool):
        raise bad_request(
            "session needs an integer session_id, a batch_seq from 1 and a boolean last_batch_flag"
        )
    current = audience.sessions.get(session_id)
    if current is not None and current.done:
        raise bad_request(f"usersreplace session {session_id} already ended with its last batch")
    expected = 1 if current is None else current.next_seq
    if seq != expected:
        raise bad_request(
            f"batch_seq {seq} is out of order in usersreplace session {session_id}: expected {expected}"
        )
    schema, rows, received = _payload(call, audience, upload=True)
    current = audience.sessions.setdefault(session_id, ReplaceSession())
    audience.schema = audience.schema or schema
    current.rows.update(rows)
    current.next_seq += 1
    if last:
        audience.members, current.rows, current.done = current.rows, set(), True
    return _users_answer(audience, session_id, received, len(rows))
