"""Rejects and warnings as rows of one frame: which row, which platform, which field, why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feedgen import text
from feedgen.sources import ROW

COLUMNS = ("row", "id", "platform", "field", "severity", "reason", "detail")
ERROR = "error"
WARNING = "warning"
ALL = "all"
#: an issue's detail: one text for all its rows, a Series over the rows, or one value per issue
Detail: TypeAlias = "pd.Series | pa.Array | pa.ChunkedArray | str"


_EMPTY = pd.DataFrame({c: pd.Series([], dtype="int64" if c == "row" else "str") for c in COLUMNS})


def empty() -> pd.DataFrame:
    """An issues frame with no rows (shared: callers never change it in place)."""
    return _EMPTY


def collect(
    frame: pd.DataFrame,
    mask: pd.Series,
    platform: str,
    field: str,
    reason: str,
    severity: str = ERROR,
    detail: pd.Series | str = "",
) -> pd.DataFrame:
    """The issues for the rows of ``frame`` where ``mask`` holds."""
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return empty()
    # only the two columns an issue names are taken, never the whole chunk
    return pd.DataFrame(
        {
            "row": frame[ROW][mask].astype("int64"),
            "id": frame["id"][mask].astype("str"),
            "platform": platform,
            "field": field,
            "severity": severity,
            "reason": reason,
            "detail": detail.loc[mask].astype("str") if isinstance(detail, pd.Series) else detail,
        }
    )


def concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """All issue frames as one, in row order; stable so a row's issues keep the order they were found.
    A single part already in that order is returned as it is (callers never change issue frames)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    if len(parts) == 1 and _in_order(parts[0]):  # the usual case: nothing to join or sort
        return parts[0]
    out = pd.concat(parts, ignore_index=True)
    out["row"] = out["row"].astype("int64")
    return out.sort_values("row", kind="stable", ignore_index=True)


def _in_order(found: pd.DataFrame) -> bool:
    """True for an issues frame as ``concat`` returns it: int64 rows, ascending, on a 0..n-1 index."""
    index = found.index
    return (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and found["row"].dtype == np.int64
        and bool(np.all(np.diff(found["row"].to_numpy()) >= 0))
    )


@dataclass
class Collector:
    """Issues of one frame, kept as row positions while rules run and made one frame at the end.

    ``frame()`` equals ``concat`` of one ``collect`` per ``add``, without building a frame per rule.
    """

    source: pd.DataFrame
    platform: str
    _parts: list[tuple[np.ndarray, str, str, str, Detail]] = field(default_factory=list)

    def add(
        self, mask: np.ndarray, field: str, reason: str, severity: str = ERROR, detail: Detail = ""
    ) -> None:
        """Record an issue for each row of ``source`` where the boolean array ``mask`` holds. ``detail``
        is one text for all, a Series over ``source``'s rows, or an Arrow array with one value per
        row ``mask`` holds (made for those rows only)."""
        at = np.flatnonzero(mask)
        if isinstance(detail, pa.Array | pa.ChunkedArray) and len(detail) != len(at):
            raise ValueError(f"{field}: {len(detail)} details for {len(at)} issues")
        if len(at):
            self._parts.append((at, field, reason, severity, detail))

    def frame(self) -> pd.DataFrame:
        """Every issue recorded, in row order (a row's issues in the order they were added)."""
        if not self._parts:
            return empty()
        at = np.concatenate([part[0] for part in self._parts])
        rows = self.source[ROW].to_numpy()
        order = np.argsort(rows[at], kind="stable")
        at = at[order]
        # each part's number, per issue: the columns a part holds once (field, severity, reason, a
        # fixed detail) are taken from a short array by it, with no Python object per issue
        part_of = np.repeat(np.arange(len(self._parts)), [len(part[0]) for part in self._parts])[order]

        def by_part(values: list[str]) -> pa.Array:
            return pa.array(values, _TEXT).take(pa.array(part_of))

        details = [_details(at, detail) for at, _, _, _, detail in self._parts]
        index = pd.RangeIndex(len(at))
        return pd.DataFrame(
            {
                "row": rows[at].astype("int64"),
                "id": text.to_series(_arrow_text(self.source["id"]).take(pa.array(at)), index),
                "platform": text.to_series(by_part([self.platform] * len(self._parts)), index),
                "field": text.to_series(by_part([part[1] for part in self._parts]), index),
                "severity": text.to_series(by_part([part[3] for part in self._parts]), index),
                "reason": text.to_series(by_part([part[2] for part in self._parts]), index),
                "detail": text.to_series(pa.concat_arrays(details).take(pa.array(order)), index),
            },
            index=index,
        )


_TEXT = pa.large_string()


def _details(at: np.ndarray, detail: Detail) -> pa.Array:
    """One detail text per issue at the row positions ``at``."""
    if isinstance(detail, pd.Series):
        return _arrow_text(detail).take(pa.array(at))
    if isinstance(detail, pa.ChunkedArray):
        detail = detail.combine_chunks()
    if isinstance(detail, pa.Array):
        return detail.cast(_TEXT)
    return pa.array([detail], _TEXT).take(pa.array(np.zeros(len(at), dtype=np.int64)))


#: what makes ``csv.writer`` (excel dialect, QUOTE_MINIMAL) quote a field: delimiter, quote, line break
_NEEDS_QUOTES = '[,"\r\n]'
#: the same bytes, as a table over byte values
_QUOTED_BYTES = np.isin(np.arange(256), [*b',"\r\n'])


def csv_text(found: pd.DataFrame) -> str:
    """Issue rows as CSV text, exactly as ``csv.writer(...).writerows`` writes them (CRLF ends)."""
    if not len(found):
        return ""
    fields = [_csv_field(_arrow_text(found[name])) for name in COLUMNS]
    rows = pc.binary_join_element_wise(*fields, pa.scalar(",", _TEXT))
    lines = pc.binary_join_element_wise(rows, pa.scalar("\r\n", _TEXT), pa.scalar("", _TEXT))
    whole = pc.binary_join(pa.LargeListArray.from_arrays([0, len(lines)], lines), pa.scalar("", _TEXT))
    return str(whole[0].as_py())


def _arrow_text(values: pd.Series) -> pa.Array:
    """A column as one Arrow string array (numbers written as ``str`` writes them); an Arrow-backed
    column without a copy of its values."""
    if values.dtype.kind in "iu":
        return pc.cast(pa.array(values.to_numpy()), _TEXT)
    if values.dtype == text.STR:
        return text.to_arrow(values).cast(_TEXT)
    return pa.array(values.to_numpy(dtype=object), type=_TEXT)


def _csv_field(values: pa.Array) -> pa.Array:
    """Values quoted (inner quotes doubled) where the CSV needs it, left bare elsewhere."""
    if not _QUOTED_BYTES[text.data_bytes(values)].any():  # most columns: no value needs quotes
        return values
    needs = pc.match_substring_regex(values, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return values
    quote = pa.scalar('"', _TEXT)
    quoted = pc.binary_join_element_wise(
        quote, pc.replace_substring(values, '"', '""'), quote, pa.scalar("", _TEXT)
    )
    return pc.if_else(needs, quoted, values)
