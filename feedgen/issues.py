"""Rejects and warnings as rows of one frame: which row, which platform, which field, why."""

from __future__ import annotations

import pandas as pd

from feedgen.sources import ROW

COLUMNS = ("row", "id", "platform", "field", "severity", "reason", "detail")
ERROR = "error"
WARNING = "warning"
ALL = "all"


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
    """All issue frames as one, in row order; stable so a row's issues keep the order they were found."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    out = pd.concat(parts, ignore_index=True)
    out["row"] = out["row"].astype("int64")
    return out.sort_values("row", kind="stable", ignore_index=True)
