"""TikTok custom audiences from customer files: upload a CSV, then create or update the audience with it."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from typing import Any, ClassVar

from audiences.destinations.base import Adapter, Row, Sent
from audiences.destinations.config import Destination, TikTokDestination
from audiences.destinations.http import Client, required, token_from_env
from audiences.errors import ConfigError, FatalUploadError

#: TikTok's longest audience name
NAME_LIMIT = 128
#: audiences per page when listing
PAGE_SIZE = 100


def customer_file(schema: Sequence[str], rows: Sequence[Row]) -> bytes:
    """The CSV TikTok takes: a header naming the id types, then one member per line."""
    if any(len(row) != len(schema) for row in rows):
        raise ValueError(f"every row needs {len(schema)} cells, one per schema column")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(schema)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def calculate_type(schema: Sequence[str]) -> str:
    """``MULTIPLE_TYPES`` for several id columns, else the one column's type."""
    if not schema:
        raise ValueError("a customer file needs at least one id column")
    return "MULTIPLE_TYPES" if len(schema) > 1 else schema[0]


class TikTokAdapter(Adapter):
    """Customer-file audiences: the first upload creates the audience; later ones APPEND, DELETE, REPLACE."""

    platform: ClassVar[str] = "tiktok"
    max_batch: int = 50_000

    def __init__(self, name: str, config: Destination) -> None:
        if not isinstance(config, TikTokDestination):
            raise ConfigError(f"destination {name}: the TikTok adapter takes type tiktok, not {config.type}")
        super().__init__(name, config)
        self.settings = config
        self.base = f"{str(config.base_url).rstrip('/')}/open_api/v1.3"
        token = token_from_env(name, config.token_env)
        self.http = Client(
            name,
            "tiktok",
            timeout=config.timeout,
            retry=config.retry,
            headers={"Access-Token": token},
            token_env=config.token_env,
        )
        #: replace sessions in progress: session_id -> the files uploaded so far
        self._replacing: dict[Any, list[str]] = {}

    def _call(self, operation: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self.http.call(operation, method, f"{self.base}/{path}", **kwargs).body
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    def ensure_audience(
        self, name: str, description: str, schema: Sequence[str], known_id: str | None
    ) -> str:
        """``known_id``, else the audience with this name, else "" (the first ``add`` creates it)."""
        if known_id:
            return known_id
        wanted, page = name[:NAME_LIMIT], 1
        while True:
            params = {"advertiser_id": self.settings.advertiser_id, "page": page, "page_size": PAGE_SIZE}
            data = self._call("find audience by name", "GET", "dmp/custom_audience/list/", params=params)
            for item in data.get("list") or []:
                if isinstance(item, dict) and item.get("name") == wanted and item.get("custom_audience_id"):
                    return str(item["custom_audience_id"])
            info = data.get("page_info") or {}
            if not data.get("list") or page >= int(info.get("total_page") or 0):
                return ""
            page += 1

    def _upload(self, schema: Sequence[str], rows: Sequence[Row]) -> tuple[str, int]:
        """Upload one customer file; its ``file_path`` and the rows TikTok found invalid."""
        content = customer_file(schema, rows)
        form = {
            "advertiser_id": self.settings.advertiser_id,
            "file_signature": hashlib.md5(content, usedforsecurity=False).hexdigest(),
            "calculate_type": calculate_type(schema),
        }
        files = {"file": ("members.csv", content, "text/csv")}
        data = self._call(
            "upload customer file", "POST", "dmp/custom_audience/file/upload/", data=form, files=files
        )
        path = required(data, "file_path", f"destination {self.name}: upload customer file")
        return path, int(data.get("num_invalid") or 0)

    def _create(self, name: str, schema: Sequence[str], paths: list[str]) -> str:
        body: dict[str, Any] = {
            "advertiser_id": self.settings.advertiser_id,
            "custom_audience_name": name[:NAME_LIMIT],
            "calculate_type": calculate_type(schema),
            "file_paths": paths,
        }
        if self.settings.retention_in_days is not None:
            body["retention_in_days"] = self.settings.retention_in_days
        path = "dmp/custom_audience/create/"
        data = self._call("create audience", "POST", path, json=body, repeatable=False)
        return required(data, "custom_audience_id", f"destination {self.name}: create audience")

    def _update(self, audience_id: str, action: str, paths: list[str]) -> None:
        body = {
            "advertiser_id": self.settings.advertiser_id,
            "custom_audience_id": audience_id,
            "action": action,
            "file_paths": paths,
        }
        self._call(f"{action} audience {audience_id}", "POST", "dmp/custom_audience/update/", json=body)

    def _check(self, rows: Sequence[Row]) -> None:
        if len(rows) > self.max_batch:
            raise ValueError(f"{len(rows)} rows in one call; the limit here is {self.max_batch}")

    def add(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        """Upload the rows; create the audience with them when ``audience_id`` is "", else APPEND."""
        self._check(rows)
        if not rows:
            return Sent(audience_id=audience_id)
        path, invalid = self._upload(schema, rows)
        if audience_id:
            self._update(audience_id, "APPEND", [path])
        else:
            audience_id = self._create(name, schema, [path])
        return Sent(received=len(rows), invalid=invalid, audience_id=audience_id)

    def remove(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        """Upload the rows and DELETE them from the audience (nothing to do before it exists)."""
        self._check(rows)
        if not rows or not audience_id:
            return Sent(audience_id=audience_id)
        path, invalid = self._upload(schema, rows)
        self._update(audience_id, "DELETE", [path])
        return Sent(received=len(rows), invalid=invalid, audience_id=audience_id)

    def replace(
        self,
        audience_id: str,
        name: str,
        schema: Sequence[str],
        batch: Sequence[Row],
        session: dict[str, Any],
    ) -> Sent:
        """One batch of a replacement: each batch is uploaded as a file; the last batch REPLACEs the
        audience's members with all the session's files (or creates the audience with them)."""
        self._check(batch)
        key, invalid = session["session_id"], 0
        paths = self._replacing.pop(key, [])
        if batch:
            path, invalid = self._upload(schema, batch)
            paths.append(path)
        if not session.get("last_batch_flag"):
            self._replacing[key] = paths
        elif not paths:
            raise FatalUploadError(
                f"destination {self.name}: TikTok cannot replace {name!r} with an empty list"
            )
        elif audience_id:
            self._update(audience_id, "REPLACE", paths)
        else:
            audience_id = self._create(name, schema, paths)
        return Sent(received=len(batch), invalid=invalid, audience_id=audience_id)

    def close(self) -> None:
        """Close the HTTP session."""
        self.http.close()
