"""Meta custom audiences (customer lists) and catalog product sets through the Graph API; also the mock."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from audiences.destinations.base import Adapter, Row, Sent
from audiences.destinations.config import Destination, MetaDestination
from audiences.destinations.http import Client, Outcome, PlatformError, required, token_from_env
from audiences.errors import ConfigError, FatalUploadError

#: Graph API: most rows one /users or /usersreplace call takes
META_MAX_ROWS = 10_000
#: error code: a product set with an identical filter exists in the catalog
SAME_FILTER = 10803


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _missing(error: PlatformError) -> bool:
    """Graph's answer for an id that no longer exists (or that this token cannot see)."""
    return error.outcome.status == 404 or error.outcome.code == 100


class MetaAdapter(Adapter):
    """Hashed customer-list audiences and product sets, for ``meta`` and ``mock`` destinations."""

    platform: ClassVar[str] = "meta"

    def __init__(self, name: str, config: Destination) -> None:
        if not isinstance(config, MetaDestination):
            raise ConfigError(
                f"destination {name}: the Meta adapter takes type meta or mock, not {config.type}"
            )
        super().__init__(name, config)
        self.settings = config
        # the config may ask for smaller calls than Graph allows; the sync batches by this attribute
        self.max_batch = min(META_MAX_ROWS, config.batch_size)
        self.account = config.ad_account_id.removeprefix("act_")
        self.base = f"{str(config.base_url).rstrip('/')}/{config.api_version}"
        token = token_from_env(name, config.token_env)
        self.http = Client(
            name,
            "meta",
            timeout=config.timeout,
            retry=config.retry,
            headers={"Authorization": f"Bearer {token}"},
            token_env=config.token_env,
        )

    def _where(self, operation: str) -> str:
        return f"destination {self.name}: {operation}"

    def _call(self, operation: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        outcome: Outcome = self.http.call(operation, method, f"{self.base}/{path}", **kwargs)
        body: dict[str, Any] = outcome.body
        return body

    def _pages(self, operation: str, path: str, fields: str) -> Iterator[dict[str, Any]]:
        """Every item of a Graph list, following ``paging.next`` (only back to the same host)."""
        url: str | None = f"{self.base}/{path}"
        params: dict[str, str] | None = {"fields": fields}
        origin = urlsplit(self.base)[:2]
        while url:
            if urlsplit(url)[:2] != origin:
                raise FatalUploadError(f"{self._where(operation)}: a paging link leads to another host")
            body = self.http.call(operation, "GET", url, params=params).body
            yield from (item for item in body.get("data") or [] if isinstance(item, dict))
            paging = body.get("paging")
            url, params = (paging.get("next") if isinstance(paging, dict) else None), None

    def ensure_audience(
        self, name: str, description: str, schema: Sequence[str], known_id: str | None
    ) -> str:
        """``known_id`` when it still exists, else the audience named ``name``, else a new one."""
        if known_id:
            try:
                self._call(f"look up audience {known_id}", "GET", known_id, params={"fields": "id,name"})
                return known_id
            except PlatformError as error:
                if not _missing(error):
                    raise
        path = f"act_{self.account}/customaudiences"
        for item in self._pages("find audience by name", path, "id,name"):
            if item.get("name") == name and item.get("id"):
                return str(item["id"])
        form = {
            "name": name,
            "subtype": "CUSTOM",
            "customer_file_source": self.settings.customer_file_source,
            "description": description,
        }
        return required(
            self._call("create audience", "POST", path, data=form, repeatable=False),
            "id",
            self._where("create audience"),
        )

    def _payload(self, schema: Sequence[str], rows: Sequence[Row]) -> str:
        if len(rows) > self.max_batch:
            raise ValueError(f"{len(rows)} rows in one call; the limit here is {self.max_batch}")
        if any(len(row) != len(schema) for row in rows):
            raise ValueError(f"every row needs {len(schema)} cells, one per schema key")
        return _json({"schema": list(schema), "data": [list(row) for row in rows], "is_raw": True})

    @staticmethod
    def _sent(body: dict[str, Any], audience_id: str) -> Sent:
        details = {"session_id": body["session_id"]} if "session_id" in body else {}
        return Sent(
            received=int(body.get("num_received") or 0),
            invalid=int(body.get("num_invalid_entries") or 0),
            audience_id=str(body.get("audience_id") or audience_id),
            details=details,
        )

    def _members(
        self, verb: str, method: str, audience_id: str, schema: Sequence[str], rows: Sequence[Row]
    ) -> Sent:
        payload = self._payload(schema, rows)
        if not rows:
            return Sent(audience_id=audience_id)
        body = self._call(
            f"{verb} audience {audience_id}", method, f"{audience_id}/users", data={"payload": payload}
        )
        return self._sent(body, audience_id)

    def add(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        """POST the rows to ``/{audience_id}/users``."""
        return self._members("add to", "POST", audience_id, schema, rows)

    def remove(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        """DELETE the rows from ``/{audience_id}/users``."""
        return self._members("remove from", "DELETE", audience_id, schema, rows)

    def replace(
        self,
        audience_id: str,
        name: str,
        schema: Sequence[str],
        batch: Sequence[Row],
        session: dict[str, Any],
    ) -> Sent:
        """One batch of ``/{audience_id}/usersreplace``; members change when the last batch arrives."""
        form = {"payload": self._payload(schema, batch), "session": _json(session)}
        operation = f"replace audience {audience_id} (batch {session.get('batch_seq')})"
        # a batch the platform may have taken before the timeout is refused when sent again (same
        # batch_seq): not repeated, the audience stops and the next --replace starts a new session
        body = self._call(operation, "POST", f"{audience_id}/usersreplace", data=form, repeatable=False)
        return self._sent(body, audience_id)

    def upsert_product_set(self, name: str, filter_: dict[str, Any], known_id: str | None) -> str | None:
        """Update set ``known_id``, else create one; a set that already has this filter is reused (10803)."""
        catalog = self.settings.catalog_id
        if not catalog:
            return None
        form = {"name": name, "filter": _json(filter_)}
        if known_id:
            try:
                self._call(f"update product set {known_id}", "POST", known_id, data=form)
                return known_id
            except PlatformError as error:
                if not _missing(error):
                    raise
        try:
            body = self._call("create product set", "POST", f"{catalog}/product_sets", data=form)
            return required(body, "id", self._where("create product set"))
        except PlatformError as error:
            found = self._same_filter(catalog, filter_) if error.outcome.code == SAME_FILTER else None
            if found is None:
                raise
        if found.get("name") != name:
            self._call(f"rename product set {found['id']}", "POST", str(found["id"]), data={"name": name})
        return str(found["id"])

    def _same_filter(self, catalog: str, filter_: dict[str, Any]) -> dict[str, Any] | None:
        """The catalog's product set whose filter equals ``filter_`` (compared as JSON values)."""
        for item in self._pages("find product set by filter", f"{catalog}/product_sets", "id,name,filter"):
            stored = item.get("filter")
            try:
                value = json.loads(stored) if isinstance(stored, str) else stored
            except ValueError:
                continue
            if value == filter_ and item.get("id"):
                return item
        return None

    def close(self) -> None:
        """Close the HTTP session."""
        self.http.close()
