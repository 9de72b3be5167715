"""What the mock platforms store, in memory, shared by the request threads under one lock.

Kept so that a test can read back what a sync did: Meta custom audiences with their hashed member rows and
product sets, TikTok customer files and audiences, the pending faults, and a log of the requests seen. The log
holds method, path, status and fault kind only: never bodies, query strings, tokens or hashes.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

Row = tuple[str, ...]

#: fault kind -> its options with their defaults (docs: /tmp/protocol.md, "Faults")
FAULT_KINDS: dict[str, dict[str, float]] = {
    "rate_limit": {"retry_after": 0, "code": 613},
    "server_error": {},
    "timeout": {"delay": 2.0},
    "token_expired": {},
    "partial_invalid": {"invalid": 1},
    "not_ready": {},
}
#: options that must be whole numbers
_INTEGER_OPTIONS = {"code", "invalid"}
#: the request log keeps the newest entries only, so a long demo run cannot grow it without bound
_LOG_SIZE = 10_000
_FIRST_ID = 1001


@dataclass
class Fault:
    """A fault switched on for the next ``count`` calls it applies to."""

    kind: str
    count: int
    options: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The fault as the admin endpoint shows it (``count`` is what is left)."""
        return {"kind": self.kind, "count": self.count, **self.options}


@dataclass
class ReplaceSession:
    """One ``usersreplace`` session: the rows of its batches so far, kept apart until the last batch."""

    next_seq: int = 1
    rows: set[Row] = field(default_factory=set)
    done: bool = False


@dataclass
class MetaAudience:
    """A Meta custom audience; ``schema`` is fixed by its first upload."""

    id: str
    ad_account_id: str
    name: str
    description: str
    schema: tuple[str, ...] | None = None
    members: set[Row] = field(default_factory=set)
    sessions: dict[int, ReplaceSession] = field(default_factory=dict)


@dataclass
class ProductSet:
    """A Meta catalog product set; ``filter`` is the parsed JSON filter."""

    id: str
    catalog_id: str
    name: str
    filter: Any


@dataclass
class TikTokFile:
    """An uploaded TikTok customer file: its valid data rows, in the order of ``columns`` (the header)."""

    path: str
    advertiser_id: str
    calculate_type: str
    columns: tuple[str, ...]
    rows: list[Row]


@dataclass
class TikTokAudience:
    """A TikTok custom audience built from uploaded files."""

    id: str
    advertiser_id: str
    name: str
    calculate_type: str
    members: set[Row] = field(default_factory=set)


@dataclass(frozen=True)
class RequestRecord:
    """One API call as logged: no body, no query string, no token."""

    method: str
    path: str
    status: int
    fault: str | None


class MockState:
    """Everything both mock platforms hold. Callers take ``lock`` around read-modify-write sequences."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # ids keep counting across resets so that an id from before a reset never names a new object
        self._ids = itertools.count(_FIRST_ID)
        self.meta_audiences: dict[str, MetaAudience] = {}
        self.product_sets: dict[str, ProductSet] = {}
        self.tiktok_files: dict[str, TikTokFile] = {}
        self.tiktok_audiences: dict[str, TikTokAudience] = {}
        self.requests: deque[RequestRecord] = deque(maxlen=_LOG_SIZE)
        self.faults: list[Fault] = []

    def clear(self) -> None:
        """Forget every object, request and fault (ids are not reused)."""
        with self.lock:
            self.meta_audiences.clear()
            self.product_sets.clear()
            self.tiktok_files.clear()
            self.tiktok_audiences.clear()
            self.requests.clear()
            self.faults.clear()

    def new_id(self) -> str:
        """A fresh numeric id, as both platforms use."""
        with self.lock:
            return str(next(self._ids))

    def add_fault(self, kind: str, count: int = 1, **options: Any) -> Fault:
        """Switch on ``kind`` for the next ``count`` calls it applies to.

        Raises:
            ValueError: an unknown kind, a count below 1, or an option the kind does not take.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known kinds: {', '.join(FAULT_KINDS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"fault count must be a whole number of at least 1, not {count!r}")
        defaults = FAULT_KINDS[kind]
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            known = ", ".join(defaults) or "none"
            raise ValueError(f"fault {kind!r} takes no option {', '.join(unknown)}; its options: {known}")
        values = dict(defaults)
        for name, value in options.items():
            whole = name in _INTEGER_OPTIONS
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or value < 0:
                kind_of = "a whole number" if whole else "a number"
                raise ValueError(f"fault option {name} must be {kind_of} of at least 0, not {value!r}")
            values[name] = value
        fault = Fault(kind, count, values)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, kinds: Collection[str]) -> Fault | None:
        """Use up one call of the oldest pending fault among ``kinds``; a copy of it, or None."""
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return Fault(fault.kind, 1, dict(fault.options))
        return None

    def pending_faults(self) -> list[dict[str, Any]]:
        """The faults still switched on, oldest first."""
        with self.lock:
            return [fault.as_dict() for fault in self.faults]

    def record(self, method: str, path: str, status: int, fault: str | None) -> None:
        """Log one API call (the caller passes the path without its query string)."""
        with self.lock:
            self.requests.append(RequestRecord(method, path, status, fault))

    def snapshot(self) -> dict[str, Any]:
        """Everything, as plain JSON-ready data (the ``GET /__mock__/state`` answer)."""
        with self.lock:
            return {
                "meta": {
                    "audiences": {key: _meta_audience(item) for key, item in self.meta_audiences.items()},
                    "product_sets": {
                        key: {
                            "catalog_id": item.catalog_id,
                            "name": item.name,
                            "filter": copy.deepcopy(item.filter),
                        }
                        for key, item in self.product_sets.items()
                    },
                },
                "tiktok": {
                    "files": {
                        key: {
                            "advertiser_id": item.advertiser_id,
                            "calculate_type": item.calculate_type,
                            "columns": list(item.columns),
                            "rows": [list(row) for row in item.rows],
                        }
                        for key, item in self.tiktok_files.items()
                    },
                    "audiences": {
                        key: {
                            "advertiser_id": item.advertiser_id,
                            "name": item.name,
                            "calculate_type": item.calculate_type,
                            "member_count": len(item.members),
                            "members": _sorted_rows(item.members),
                        }
                        for key, item in self.tiktok_audiences.items()
                    },
                },
                "requests": [
                    {"method": r.method, "path": r.path, "status": r.status, "fault": r.fault}
                    for r in self.requests
                ],
                "faults": self.pending_faults(),
            }


def _meta_audience(audience: MetaAudience) -> dict[str, Any]:
    return {
        "name": audience.name,
        "description": audience.description,
        "ad_account_id": audience.ad_account_id,
        "schema": list(audience.schema) if audience.schema is not None else None,
        "member_count": len(audience.members),
        "members": _sorted_rows(audience.members),
    }


def _sorted_rows(rows: Collection[Row]) -> list[list[str]]:
    return [list(row) for row in sorted(rows)]
