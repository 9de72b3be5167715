"""Google Customer Match upload files, for manual or scheduled pickup (the Ads API is closed to new users).

Per audience a folder under the destination's ``dir`` with the full list and this sync's changes:
``<audience>/members.consent-granted.csv`` (replace the list with it), ``adds.consent-granted.csv`` and
``removes.consent-granted.csv`` (or apply these). The build only exports people who granted both of
Google's consent signals, so every file is of that one consent group and says so in its name: consented
and unconsented people never share a file. Files are replaced atomically and readable by the owner only.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import ClassVar

from audiences.destinations.base import Adapter, Row, Sent
from audiences.destinations.config import GoogleFileDestination
from audiences.errors import FatalUploadError

CONSENT_GROUP = "consent-granted"


class GoogleFileAdapter(Adapter):
    """Writes files instead of calling an API; ``add``/``remove`` collect rows, ``finish`` writes them."""

    platform: ClassVar[str] = "google"
    max_batch: int = 1_000_000

    def __init__(self, name: str, config: GoogleFileDestination) -> None:
        super().__init__(name, config)
        self.dir = config.dir

    def ensure_audience(
        self, name: str, description: str, schema: Sequence[str], known_id: str | None
    ) -> str:
        return f"{name}/"

    def add(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        self._write(name, f"adds.{CONSENT_GROUP}.csv", schema, rows)
        return Sent(received=len(rows), audience_id=audience_id)

    def remove(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        self._write(name, f"removes.{CONSENT_GROUP}.csv", schema, rows)
        return Sent(received=len(rows), audience_id=audience_id)

    def write_members(self, name: str, schema: Sequence[str], rows: Sequence[Row]) -> None:
        """The audience's whole list (and empty change files when nothing changed)."""
        self._write(name, f"members.{CONSENT_GROUP}.csv", schema, rows)

    def reset_changes(self, name: str, schema: Sequence[str]) -> None:
        """Empty change files, so a pickup never applies an old sync's changes twice."""
        for kind in ("adds", "removes"):
            self._write(name, f"{kind}.{CONSENT_GROUP}.csv", schema, [])

    def _write(self, name: str, filename: str, schema: Sequence[str], rows: Sequence[Row]) -> None:
        folder = self.dir / name
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(",".join(schema) + "\n")
                fh.writelines(",".join(_cell(c) for c in row) + "\n" for row in rows)
            os.chmod(temp, 0o600)
            os.replace(temp, folder / filename)
        except OSError as exc:
            raise FatalUploadError(
                f"destination {self.name}: cannot write {folder} ({exc.strerror or exc})"
            ) from None


def _cell(value: str) -> str:
    """Quote a plain value (Country, Zip) only when it needs it; hashes never do."""
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value
