"""Column-wise text cleaning: NFC, XML-forbidden characters, HTML entities and tags, whitespace.

Everything works on whole pyarrow string arrays; Python runs per value only for the rare
entities that the vectorised replacements do not cover (then once per distinct value).
"""

from __future__ import annotations

import html

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# XML 1.0 forbids C0 controls except tab, LF, CR; C1 controls and DEL are junk in a feed too.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{fffe}\x{ffff}]"
# A tag needs a letter right after "<" (so "a < b" is text), optional attributes, optional "/".
_BLOCK_TAG = r"(?i)<\s*(br|/p|/div|/h[1-6]|/tr|/ul|/ol|/table|p|div|li|h[1-6])(\s[^<>]*)?/?>"
_ANY_TAG = r"</?[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?>"
_COMMENT = r"<!--.*?-->"
#: entities replaced column-wise; "&amp;" goes last so "&amp;lt;" becomes "&lt;", as html.unescape does
_SIMPLE_ENTITIES = (
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", '"'),
    ("&#39;", "'"),
    ("&apos;", "'"),
    ("&nbsp;", "\u00a0"),
    ("&amp;", "&"),
)
_SIMPLE_RE = "|".join(name for name, _ in _SIMPLE_ENTITIES)


def to_arrow(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A pyarrow string array for a pandas string Series (no copy for pyarrow-backed strings)."""
    if isinstance(values, pd.Series):
        return (
            pa.array(values.to_numpy(dtype=object), type=pa.string())
            if values.dtype == object
            else pa.array(values)
        )
    return values


def to_series(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A pandas string Series from a pyarrow string array."""
    return pd.Series(values.to_pandas(), index=index, dtype="str")


def nfc(values: pa.Array) -> pa.Array:
    """Unicode NFC, so composed and decomposed spellings compare (and hash) alike."""
    return pc.utf8_normalize(values, form="NFC")


def strip_controls(values: pa.Array) -> pa.Array:
    """Remove characters XML 1.0 forbids (and C1 controls, DEL)."""
    return pc.replace_substring_regex(values, _CONTROL, "")


def unescape(values: pa.Array) -> pa.Array:
    """Decode HTML entities exactly as ``html.unescape`` does."""
    amps = pc.count_substring(values, "&")
    if not pc.any(pc.greater(amps, 0)).as_py():
        return values
    simple = pc.count_substring_regex(values, _SIMPLE_RE)
    out = values
    for name, char in _SIMPLE_ENTITIES:
        out = pc.replace_substring(out, name, char)
    hard = pc.and_(pc.greater(amps, 0), pc.not_equal(amps, simple))
    if pc.any(hard).as_py():
        # other entities (&#8211;, &eacute;, "&amp" with no ";"): html.unescape per distinct value
        originals = pc.filter(values, hard)
        uniques = pc.unique(originals)
        decoded = pa.array([html.unescape(v) for v in uniques.to_pylist()], type=uniques.type)
        replaced = pc.take(decoded, pc.index_in(originals, value_set=uniques))
        out = pc.replace_with_mask(_flat(out), _flat(hard), _flat(replaced))
    return out


def strip_tags(values: pa.Array) -> pa.Array:
    """Plain text from HTML: block tags become line breaks, other tags and comments go."""
    if not pc.any(pc.match_substring(values, "<")).as_py():
        return values
    out = pc.replace_substring_regex(values, _COMMENT, "")
    out = pc.replace_substring_regex(out, _BLOCK_TAG, "\n")
    return pc.replace_substring_regex(out, _ANY_TAG, "")


def collapse_spaces(values: pa.Array, keep_lines: bool) -> pa.Array:
    """Collapse runs of whitespace; with ``keep_lines`` keep at most one blank line between paragraphs."""
    if keep_lines:
        out = pc.replace_substring_regex(values, r"[\pZ\t\r\f\v]+", " ")
        out = pc.replace_substring_regex(out, r" ?\n ?", "\n")
        out = pc.replace_substring_regex(out, r"\n{3,}", "\n\n")
    else:
        out = pc.replace_substring_regex(values, r"[\s\pZ]+", " ")
    return pc.utf8_trim_whitespace(out)


def clean_text(values: pa.Array, html_allowed: bool = False, keep_lines: bool = False) -> pa.Array:
    """The full cleaning of one text column, in the order that keeps every step exact."""
    out = nfc(strip_controls(values))
    out = unescape(out)
    if html_allowed:
        out = strip_tags(out)
    out = strip_controls(out)  # entities may have decoded to control characters
    return collapse_spaces(out, keep_lines)


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
