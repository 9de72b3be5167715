"""Column-wise text cleaning: NFC, XML-forbidden characters, HTML entities and tags, whitespace.

``clean_text`` runs one compiled pass (``_speedups.clean``) over a column's UTF-8 bytes for the rows it
covers exactly, and the general path for the rest. The general path (``clean_text_general``) works on
whole pyarrow string arrays; Python runs only html.unescape, once per distinct entity (so decoding is
exact by construction). Each of its steps first finds, cheaply and often on the raw UTF-8 bytes, the
rows it may change, and leaves the others alone.
"""

from __future__ import annotations

import functools
import html
import threading
import unicodedata
import weakref
from collections.abc import Callable
from html.entities import html5

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feedgen import _speedups

# XML 1.0 forbids C0 controls except tab, LF, CR; C1 controls and DEL are junk in a feed too.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{fffe}\x{ffff}]"
#: the one-byte characters of _CONTROL, as a lookup table indexed by byte
_CONTROL_BYTE = np.isin(np.arange(256), [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
#: a character outside these ranges may change under NFC; the ranges hold only characters that NFC
#: keeps and never combines with a neighbour (quick check "yes", combining class 0; see the tests)
_NFC_MAYBE = r"[^\x00-\x{2ff}\x{400}-\x{482}\x{2002}-\x{2064}\x{20a0}-\x{20bf}\x{2100}-\x{2125}]"
# A tag needs a letter right after "<" (so "a < b" is text), optional attributes, optional "/".
# Tag names are matched case-insensitively by explicit classes: RE2 runs "(?i)" a fifth slower, and
# none of these letters has a case fold outside ASCII (unlike "k" and "s").
_BLOCK_TAG = (
    r"<\s*([bB][rR]|/[pP]|/[dD][iI][vV]|/[hH][1-6]|/[tT][rR]|/[uU][lL]|/[oO][lL]|/[tT][aA][bB][lL][eE]"
    r"|[pP]|[dD][iI][vV]|[lL][iI]|[hH][1-6])(\s[^<>]*)?/?>"
)
_ANY_TAG = r"</?[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?>"
_COMMENT = r"<!--.*?-->"
#: whitespace runs that collapsing to one space changes: two or more, or one that is not " "
#: (RE2's \s is [\t\n\f\r ]; [^\PZ ] is a space separator other than " ")
_SPACES_KEEP_LINES = r"[\pZ\t\r\f\v]{2,}|[^\PZ ]|[\t\r\f\v]"
_SPACES_ONE_LINE = r"[\s\pZ]{2,}|[^\PZ ]|[\t\n\f\r]"
#: the text between "&" and ";" of a reference html.unescape decodes (named ones have <= 32 characters)
_REFERENCE = r"^(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]{0,31})$"
#: the start of the text after "&" of a reference html.unescape may decode without a ";"
_LEGACY_NAMES = "|".join(sorted(name for name in html5 if not name.endswith(";")))
_UNTERMINATED = rf"^(?:#[0-9]|#[xX][0-9a-fA-F]|{_LEGACY_NAMES})"
#: entities common enough in shop texts to decode by a byte pass, as html.unescape decodes them
_COMMON = tuple(
    (name.encode(), html.unescape(name).encode())
    for name in (
        "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#039;", "&#x27;", "&apos;", "&nbsp;", "&middot;",
        "&ndash;", "&mdash;", "&#8211;", "&#8212;", "&lsquo;", "&rsquo;", "&ldquo;", "&rdquo;", "&#8216;",
        "&#8217;", "&#8220;", "&#8221;", "&hellip;", "&#8230;", "&bull;", "&#8226;", "&copy;", "&reg;",
        "&trade;", "&#8482;", "&deg;", "&times;", "&euro;", "&yen;", "&pound;", "&frac12;",
    )
)  # fmt: skip
#: each entity's bytes (at most 8, up to its ";") as a little-endian integer, sorted, and its index
_COMMON_KEYS, _COMMON_ORDER = (
    np.array(column)
    for column in zip(
        *sorted((int.from_bytes(name.ljust(8, b"\0"), "little"), k) for k, (name, _) in enumerate(_COMMON)),
        strict=True,
    )
)
_COMMON_KEYS = _COMMON_KEYS.astype("<u8")
#: bytes that, right after "&", mean no reference starts there (html.unescape's names exclude them)
_NO_REFERENCE_AFTER = np.isin(np.arange(256), list(b"\t\n\f <&;"))
#: the entity tables of the compiled pass: _NO_REFERENCE_AFTER, then _COMMON as names (padded to 8
#: bytes) and their lengths, characters (padded to 4) and their lengths
_ENTITY_TABLES = (
    _NO_REFERENCE_AFTER,
    np.array([list(name.ljust(8, b"\0")) for name, _ in _COMMON], dtype=np.uint8),
    np.array([len(name) for name, _ in _COMMON], dtype=np.int64),
    np.array([list(char.ljust(4, b"\0")) for _, char in _COMMON], dtype=np.uint8),
    np.array([len(char) for _, char in _COMMON], dtype=np.int64),
)


#: an absolute http(s) URL with a dotted host (RE2: ``\s`` is ASCII whitespace); ``urls`` matches it
URL = r"^https?://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?$"

#: pandas' default string dtype ("str": Arrow-backed, NaN for missing), as an object: comparing with it
#: or converting to it costs less than spelling it "str" each time
STR = pd.Series([], dtype="str").dtype


def to_arrow(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A pyarrow string array for a pandas string Series (no copy for pyarrow-backed strings)."""
    if isinstance(values, pd.Series):
        if values.dtype == object:
            return pa.array(values.to_numpy(dtype=object), type=pa.string())
        array = values.array  # an Arrow-backed array hands over its data as it is (pa.array checks more)
        values = array.__arrow_array__() if values.dtype == STR else pa.array(values)
    # one contiguous array: every step then runs once per column, not once per block the reader made
    if isinstance(values, pa.ChunkedArray):
        return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values


def to_series(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A pandas string Series from a pyarrow string array, its values placed by position on ``index``.

    The Arrow data is wrapped as pandas' string array first: a third of the time of handing the
    array to ``pd.Series`` with the dtype to infer it from (18.8 µs a call instead of 30.4 µs), and
    this runs dozens of times per chunk, holding the GIL."""
    chunked = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    # pandas 3 takes the dtype here (pandas-stubs do not know it yet); without it the Series is "string"
    array = pd.arrays.ArrowStringArray(chunked, dtype=STR)  # type: ignore[call-arg]
    return pd.Series(array, index=index, copy=False)


def by_value(values: pd.Series, fn: Callable[[str], str]) -> pd.Series:
    """``fn`` of each value (a missing one taken as ""), called once per distinct value: columns such
    as availability hold a handful; a column of distinct junk costs one call per row, still linear."""
    arrow = to_arrow(values)
    encoded = pc.dictionary_encode(arrow, null_encoding="encode")
    distinct = encoded.dictionary.to_pylist()
    mapped = [fn(value or "") for value in distinct]
    if mapped == distinct and arrow.type == pa.large_string():  # (a None never equals fn's text)
        return to_series(arrow, values.index)  # every value kept as it is: no copy of the column
    return to_series(pa.array(mapped, pa.large_string()).take(encoded.indices), values.index)


def blanks(index: pd.Index) -> pd.Series:
    """A string Series of "" on ``index`` (a quarter of the time ``pd.Series("", dtype="str")`` takes)."""
    return to_series(pa.repeat(pa.scalar("", pa.large_string()), len(index)), index)


def as_str(values: pd.Series) -> pd.Series:
    """The Series with pandas' ``str`` dtype; itself when it has it already (no conversion to pay for)."""
    return values if values.dtype == STR else values.astype(STR)


def nfc(values: pa.Array) -> pa.Array:
    """Unicode NFC, so composed and decomposed spellings compare (and hash) alike."""
    return _by_chunk(_nfc, values)


def _nfc(values: pa.Array) -> pa.Array:
    if data_bytes(values).max(initial=0) < 0x80:  # all ASCII
        return values
    rows = np.flatnonzero(~_bools(pc.string_is_ascii(values), missing=True))
    if len(rows):
        rows = rows[_bools(pc.match_substring_regex(values.take(rows), _NFC_MAYBE))]
    return _on_rows(values, rows, lambda some: pc.utf8_normalize(some, form="NFC"))


def strip_controls(values: pa.Array) -> pa.Array:
    """Remove characters XML 1.0 forbids (and C1 controls, DEL)."""
    return _by_chunk(_strip_controls, values)


def _strip_controls(values: pa.Array) -> pa.Array:
    rows = _rows_of(values, _controls_at(data_bytes(values)))
    return _on_rows(values, rows, lambda some: pc.replace_substring_regex(some, _CONTROL, ""))


def unescape(values: pa.Array) -> pa.Array:
    """Decode HTML entities exactly as ``html.unescape`` does."""
    return _by_chunk(_unescape, values)


def _unescape(values: pa.Array) -> pa.Array:
    return _unescape_rows(values)[0]


def _unescape_rows(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``unescape``, and the rows it decoded by the general path (the only ones that may have gained
    a control character: none of the common entities decodes to one)."""
    none = np.zeros(0, dtype=np.int64)
    data = data_bytes(values)
    amp = np.flatnonzero(data == ord("&"))
    # an "&" followed by a space, "<", "&", ";" (or nothing) starts no reference: "Sakura & Co." stays
    amp = amp[amp + 1 < len(data)]
    amp = amp[~_NO_REFERENCE_AFTER[data[amp + 1]]]
    if not len(amp):
        return values, none
    # Rows whose every reference is one of the common entities are decoded by a byte pass; the rest
    # (numeric forms, rarer names, "&" that starts nothing) go through the exact, general path.
    kind = _common_entity_at(values, amp)
    general = _rows_of(values, amp[kind < 0])
    if not len(general):
        return _decode_known(values, amp, kind), none
    common = np.setdiff1d(_rows_of(values, amp), general, assume_unique=True)
    return _on_rows(_on_rows(values, common, _decode_common), general, _decode), general


def _common_entity_at(values: pa.Array, amp: np.ndarray) -> np.ndarray:
    """For each "&" position of ``data_bytes(values)``, the index of the ``_COMMON`` entity spelled
    from there within its row, or -1."""
    data, offsets = data_bytes(values), value_offsets(values)
    starts = offsets - offsets[0]
    room = starts[np.searchsorted(starts, amp, side="right")] - amp  # bytes left in the row
    window = np.zeros((len(amp), 8), dtype=np.uint8)  # the 8 bytes from each "&" on, zeros past the end
    whole = amp + 8 <= len(data)
    if whole.any():
        window[whole] = np.lib.stride_tricks.sliding_window_view(data, 8)[amp[whole]]
    for j in np.flatnonzero(~whole):
        tail = data[amp[j] :]
        window[j, : len(tail)] = tail
    window[np.arange(8) >= room[:, None]] = 0  # never read into the next row
    return _entity_index(window)


def _entity_index(window: np.ndarray) -> np.ndarray:
    """Rows of up to 8 bytes starting with "&": the ``_COMMON`` entity they start with, or -1."""
    semicolon = window == ord(";")
    has = semicolon.any(axis=1)
    end = np.where(has, semicolon.argmax(axis=1), 7)
    name = np.where(np.arange(8) <= end[:, None], window, 0)  # the bytes up to the first ";"
    keys = np.ascontiguousarray(name).view("<u8").ravel()
    at = np.minimum(np.searchsorted(_COMMON_KEYS, keys), len(_COMMON_KEYS) - 1)
    return np.where(has & (_COMMON_KEYS[at] == keys), _COMMON_ORDER[at], -1)


def _decode_common(values: pa.Array) -> pa.Array:
    """Decode the ``_COMMON`` entities of values whose every reference is one of them (a byte pass)."""
    data = data_bytes(values)
    amp = np.flatnonzero(data == ord("&"))
    return _decode_known(values, amp, _common_entity_at(values, amp))


def _decode_known(values: pa.Array, amp: np.ndarray, kind: np.ndarray) -> pa.Array:
    """Replace the entity of ``_COMMON`` index ``kind`` at each position ``amp`` of the values' bytes."""
    data = data_bytes(values)
    offsets = value_offsets(values)
    out, keep = data.copy(), np.ones(len(data), dtype=bool)
    shrink = np.zeros(len(amp), dtype=np.int64)  # bytes each reference gives up
    for k, (name, char) in enumerate(_COMMON):
        hit = kind == k
        at = amp[hit]
        for i, byte in enumerate(char):
            out[at + i] = byte
        for i in range(len(char), len(name)):
            keep[at + i] = False
        shrink[hit] = len(name) - len(char)
    row = np.searchsorted(offsets - offsets[0], amp, side="right") - 1
    lost = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, weights=shrink, minlength=len(values)).astype(np.int64), out=lost[1:])
    new_offsets = (offsets - offsets[0] - lost).astype(offsets.dtype)
    validity = pc.is_valid(values).buffers()[1] if values.null_count else None
    return pa.Array.from_buffers(
        values.type,
        len(values),
        [validity, pa.py_buffer(new_offsets), pa.py_buffer(out[keep])],
        values.null_count,
    )


def _decode(values: pa.Array) -> pa.Array:
    # html.unescape reads each "&" on its own, from the text after it up to the next "&" (a
    # reference never holds one) and never past the first ";". So split at each "&", split each
    # piece at its first ";", and decode "&" + the text before that ";" + ";" where it may change.
    parts = pc.split_pattern(values, "&")
    offsets = parts.offsets.to_numpy()
    after_amp = np.ones(len(parts.values), dtype=bool)
    after_amp[offsets[:-1][np.diff(offsets) > 0]] = False  # a row's first piece
    halves = pc.split_pattern(parts.values, ";", max_splits=1)
    bounds = halves.offsets.to_numpy()
    semicolon = np.diff(bounds) == 2
    # the pieces whose text before ";" gets rebuilt as "&" + text + ";" (as far as they have them)
    todo = np.flatnonzero(after_amp | semicolon)
    heads = halves.values.take(bounds[todo])
    amp, semicolon = after_amp[todo], semicolon[todo]
    change = amp & semicolon & _bools(pc.match_substring_regex(heads, _REFERENCE))
    unended = np.flatnonzero(amp & ~change)  # "&amp", "&copy 2024", "&#38" without ";" (rare)
    change[unended[_bools(pc.match_substring_regex(heads.take(unended), _UNTERMINATED))]] = True
    text = pc.binary_join_element_wise(
        pc.if_else(amp, pa.scalar("&", values.type), pa.scalar("", values.type)),
        heads,
        pc.if_else(semicolon, pa.scalar(";", values.type), pa.scalar("", values.type)),
        pa.scalar("", values.type),
    )
    text = _on_rows(text, np.flatnonzero(change), _unescape_each)
    pieces = replace_rows(halves.values, bounds[todo], text)
    joined = type(parts).from_arrays(pa.array(bounds[offsets]), pieces, mask=parts.is_null())
    return pc.binary_join(joined, pa.scalar("", values.type))


def _unescape_each(values: pa.Array) -> pa.Array:
    """html.unescape per value, called once per distinct value."""
    distinct = pc.unique(values)
    decoded = pa.array([html.unescape(v) for v in distinct.to_pylist()], type=values.type)
    return decoded.take(pc.index_in(values, value_set=distinct))


def strip_tags(values: pa.Array) -> pa.Array:
    """Plain text from HTML: block tags become line breaks, other tags and comments go."""
    return _by_chunk(_strip_tags, values)


def _strip_tags(values: pa.Array) -> pa.Array:
    if not pc.any(pc.match_substring(values, "<")).as_py():
        return values
    # comments are rare: find the rows with "<!--" from the (rare) "!" bytes, and run that pass there only
    data = data_bytes(values)
    bang = np.flatnonzero(data == ord("!"))
    bang = bang[(bang >= 1) & (bang + 2 < len(data))]
    bang = bang[(data[bang - 1] == ord("<")) & (data[bang + 1] == ord("-")) & (data[bang + 2] == ord("-"))]
    out = _on_rows(
        values, _rows_of(values, bang), lambda some: pc.replace_substring_regex(some, _COMMENT, "")
    )
    out = pc.replace_substring_regex(out, _BLOCK_TAG, "\n")
    return pc.replace_substring_regex(out, _ANY_TAG, "")


def collapse_spaces(values: pa.Array, keep_lines: bool) -> pa.Array:
    """Collapse runs of whitespace; with ``keep_lines`` keep at most one blank line between paragraphs."""
    # the patterns match only where replacing changes something (a lone " " stays as it is). The
    # first runs on every row: finding the rows that need it by a byte scan costs more than RE2
    # itself, as spaces are everywhere in descriptions; line breaks are fewer (see _line_breaks).
    if keep_lines:
        out = pc.replace_substring_regex(values, _SPACES_KEEP_LINES, " ")
        # no two spaces touch now: 3+ line breaks with their spaces make one blank line, then
        # spaces next to the remaining line breaks go
        out = _by_chunk(_line_breaks, out)
    else:
        out = pc.replace_substring_regex(values, _SPACES_ONE_LINE, " ")
    return pc.utf8_trim_whitespace(out)


def _line_breaks(values: pa.Array) -> pa.Array:
    """The line-break passes of ``collapse_spaces`` (no two spaces touch in ``values``)."""
    # Runs of 3+ breaks are in few rows: find them from the positions of the breaks (far fewer than
    # spaces). A break "links" to the next when one space or nothing lies between, and three breaks
    # linked in a row make a run (a superset: links may cross from row to row). Spaces beside a break
    # are in most rows: that pass runs on all of them.
    data = data_bytes(values)
    breaks = np.flatnonzero(data == ord("\n"))
    gap = np.diff(breaks)
    linked = (gap == 1) | ((gap == 2) & (data[breaks[:-1] + 1] == ord(" ")))
    runs = _rows_of(values, breaks[:-2][linked[:-1] & linked[1:]])
    out = _on_rows(values, runs, lambda some: pc.replace_substring_regex(some, r"(?: ?\n){3,} ?", "\n\n"))
    return pc.replace_substring_regex(out, r" \n ?|\n ", "\n") if len(breaks) else out


def clean_text(values: pa.Array, html_allowed: bool = False, keep_lines: bool = False) -> pa.Array:
    """The full cleaning of one text column: controls out, HTML entities decoded, tags out (with
    ``html_allowed``; block tags become line breaks), NFC, whitespace collapsed (with ``keep_lines``,
    keeping line breaks and at most one blank line).

    Most rows take one compiled pass (``_speedups.c``); the rows it does not cover exactly take the
    general path (``clean_text_general``), which defines the result.
    """
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([clean_text(c, html_allowed, keep_lines) for c in values.chunks], values.type)
    if not len(values):
        return values
    if not html_allowed:  # text such as titles and brands: most rows have nothing to clean
        return on_rows_with_work(
            values, functools.partial(_clean_all, html_allowed=False, keep_lines=keep_lines)
        )
    return _clean_all(values, html_allowed, keep_lines)


def on_rows_with_work(values: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``fn`` applied only to the rows the compiled work scan marks (``_work``): for a step that leaves
    alone any row without a control, a non-ASCII character, "&", "<" or whitespace at its ends or
    doubled (XML-forbidden characters out, entities decoded, the ends trimmed)."""
    return _on_rows(values, np.flatnonzero(_work(values)), fn)


def _work(values: pa.Array) -> np.ndarray:
    """True for the rows ``clean_text`` without HTML may change (``_speedups.work``)."""
    return _each_value(_speedups.work, values, np.uint8).view(bool)


def _clean_all(values: pa.Array, html_allowed: bool, keep_lines: bool) -> pa.Array:
    """``clean_text`` of every row of one array, by the compiled pass and the general path."""
    offsets = offsets_from_zero(values)
    is_valid = pc.is_valid(values) if values.null_count else None
    valid = np.ones(len(values), dtype=bool) if is_valid is None else _bools(is_valid)
    data = data_bytes(values)
    out = np.empty(max(len(data), 1), dtype=np.uint8)
    out_offsets = np.empty(len(values) + 1, dtype=np.int64)
    general = np.empty(len(values), dtype=bool)
    unnormalized = np.empty(len(values), dtype=bool)
    size = _speedups.clean(
        data,
        offsets,
        valid,
        html_allowed,
        keep_lines,
        *_ENTITY_TABLES,
        _nfc_safe(),
        out,
        out_offsets,
        general,
        unnormalized,
    )
    validity = None if is_valid is None else is_valid.buffers()[1]
    kind = np.int64 if values.type == pa.large_string() else np.int32
    buffers = [validity, pa.py_buffer(out_offsets.astype(kind, copy=False)), pa.py_buffer(out[:size])]
    cleaned = pa.Array.from_buffers(values.type, len(values), buffers, values.null_count)
    cleaned = _on_rows(cleaned, np.flatnonzero(unnormalized), nfc)
    rows = np.flatnonzero(general)  # left empty by the compiled pass: cleaned from the input
    if not len(rows):
        return cleaned
    return replace_rows(cleaned, rows, clean_text_general(values.take(rows), html_allowed, keep_lines))


@functools.cache
def _nfc_safe() -> np.ndarray:
    """For each BMP code point: a text made only of such characters is NFC already (the character is
    NFC_Quick_Check=Yes and has combining class 0; Unicode's quick check then answers "yes")."""
    chars = [chr(code) for code in range(0x10000)]
    safe = np.array(
        [not unicodedata.combining(c) and unicodedata.is_normalized("NFC", c) for c in chars], dtype=bool
    )
    # "Maybe" characters: the second of a pair that composes (a mark or vowel sign after its base;
    # Hangul vowels and final consonants compose by rule, not by the decomposition table). Pairs that
    # compose beyond the BMP have their second character there too, off the fast path anyway.
    for c in chars:
        parts = unicodedata.decomposition(c).split()
        if len(parts) == 2 and not parts[0].startswith("<") and unicodedata.is_normalized("NFC", c):
            safe[int(parts[1], 16)] = False
    safe[0x1161:0x1176] = False
    safe[0x11A8:0x11C3] = False
    safe[0xD800:0xE000] = False  # surrogates never reach here; keep them off the fast path anyway
    return safe


def clean_text_general(values: pa.Array, html_allowed: bool = False, keep_lines: bool = False) -> pa.Array:
    """``clean_text`` by whole-column Arrow and RE2 passes, in the order that keeps every step exact:
    the reference the compiled pass is held to, and the path of the rows it leaves."""
    if isinstance(values, pa.ChunkedArray):
        chunks = [clean_text_general(c, html_allowed, keep_lines) for c in values.chunks]
        return pa.chunked_array(chunks, values.type)
    out, general = _unescape_rows(strip_controls(values))
    if html_allowed:
        out = strip_tags(out)
    # numeric references may decode to control characters ("&#12;", "&#x81;"); the common entities never do
    out = _on_rows(out, general, strip_controls)
    # NFC last: a decoded entity or a removed tag may have put a base character and a combining
    # mark side by side ("&lt;" before U+0338 composes to U+226E)
    return collapse_spaces(nfc(out), keep_lines)


def value_offsets(values: pa.Array) -> np.ndarray:
    """Where each value of a (large_)string array starts in its data buffer, and where the last ends."""
    kind = {pa.string(): np.int32, pa.large_string(): np.int64}[values.type]
    if len(values) == 0:
        return np.zeros(1, dtype=kind)
    return np.frombuffer(values.buffers()[1], dtype=kind)[values.offset : values.offset + len(values) + 1]


def offsets_from_zero(values: pa.Array) -> np.ndarray:
    """``value_offsets`` as int64 counted from the first value's start: the offsets the compiled
    passes (``_speedups``) take beside ``data_bytes``. Not to be written to: when they start at 0, as
    most do, they are a large_string array's own offsets, not a copy."""
    offsets = value_offsets(values)
    if offsets.dtype == np.int64 and offsets[0] == 0:
        return offsets
    offsets = offsets.astype(np.int64)
    offsets -= offsets[0]
    return offsets


def heap_buffer(size: int) -> pa.Buffer:
    """A mutable buffer of ``size`` bytes from the C heap (numpy's allocator), for a chunk's large
    outputs: a feed chunk's rows, a read chunk's description column.

    Arrow's jemalloc pool (``pipeline.lean_memory``) gets every allocation of 8 MB or more fresh from
    the system and gives it back when freed, so each chunk's buffer is faulted in page by page again
    (about 2 us a 4 KB page on this VM: 11 ms for 20 MB). The C heap keeps such a buffer, once freed,
    for the next one (glibc raises its mmap threshold to the size freed, up to 32 MB); a buffer larger
    than that is mapped afresh each time, so ``SpareBuffers`` keeps such ones."""
    return pa.py_buffer(np.empty(size, dtype=np.uint8))


class SpareBuffers:
    """``heap_buffer`` for buffers made again and again on the same threads (a chunk's feed rows): each
    thread's last buffer is given again once nothing refers to it, when it is large enough.

    A chunk's rows take more than 32 MB, which glibc maps afresh for each chunk and the kernel zeroes
    a huge page at a time: 8% of a ``meta-csv`` build's CPU went to that. One spare per thread, held
    as long as this object: a build makes one and drops it at its end.
    """

    def __init__(self) -> None:
        """No spare yet on any thread."""
        self._local = threading.local()

    def __call__(self, size: int) -> pa.Buffer:
        """A writable buffer of ``size`` bytes: this thread's spare when it is free and large enough,
        else a new one (with an eighth more room, as the next chunk's rows may take a little more)."""
        local = self._local
        spare: np.ndarray | None = getattr(local, "spare", None)
        given: weakref.ref[np.ndarray] | None = getattr(local, "given", None)
        if spare is None or len(spare) < size or (given is not None and given() is not None):
            spare = np.empty(size + size // 8, dtype=np.uint8)
            local.spare = spare
        view = spare[:size]  # alive as long as the buffer given (or a slice of it) is
        local.given = weakref.ref(view)
        return pa.py_buffer(view)


def data_bytes(values: pa.Array) -> np.ndarray:
    """The UTF-8 bytes the values of a (large_)string array span: a view, respecting slices (null
    slots may span bytes too)."""
    offsets, data = value_offsets(values), values.buffers()[2]
    return np.frombuffer(data or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]


def urls(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where a value is an absolute http(s) URL with a dotted host (``_speedups.urls``, exactly
    as RE2 matches ``URL``)."""
    return _each_value(_speedups.urls, to_arrow(values), np.uint8).view(bool)


def url_lists(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where an ASCII value is http(s) URLs joined by single commas, each with a dotted host, and
    no separator or whitespace besides (``_speedups.url_lists``, as ``catalog``'s plain-list pattern
    matches it); False for anything else and for any value with a non-ASCII character."""
    return _each_value(_speedups.url_lists, to_arrow(values), np.uint8, null=0).view(bool)


def commas(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """How many commas each value holds (int64; ``_speedups.commas``); a null holds none."""
    return _each_value(_speedups.commas, to_arrow(values), np.int64, null=0)


def flags(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numpy bool array from an Arrow one, null as False."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def blank(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where a value is "" (read from the offsets: no string compared); a null is not blank."""
    values = to_arrow(values)
    empty = np.diff(value_offsets(values)) == 0
    return empty & _bools(pc.is_valid(values)) if values.null_count else empty


#: ``gtins``' verdicts: a check digit that does not match (or a digit string of another length), a
#: valid GTIN or a blank, and a value holding something other than ASCII digits
GTIN_BAD, GTIN_OK, GTIN_OTHER = 0, 1, 2


def gtins(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per value, ``GTIN_OK`` for a blank or 8, 12, 13 or 14 ASCII digits with the GS1 check digit,
    ``GTIN_BAD`` for other digit strings, ``GTIN_OTHER`` for the rest (``_speedups.gtins``); a null
    is ``GTIN_OTHER``."""
    return _each_value(_speedups.gtins, to_arrow(values), np.uint8, null=GTIN_OTHER)


def hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of each value (uint64; ``_speedups.hash64``, without the GIL): to tell values
    apart in memory, not to store. A null hashes as ""."""
    return _each_value(_speedups.hash64, to_arrow(values), np.uint64)


def _each_value(
    compiled: Callable[[np.ndarray, np.ndarray, np.ndarray], None],
    values: pa.Array,
    dtype: type[np.generic],
    null: int | None = None,
) -> np.ndarray:
    """One item per value of a (large_)string array from a compiled per-value pass of ``_speedups``
    (``data, offsets, out``); with ``null``, that item for the missing values (a null's slot may
    still span bytes)."""
    out = np.empty(len(values), dtype=dtype)
    compiled(data_bytes(values), offsets_from_zero(values), out)
    if null is not None and values.null_count:
        out[~flags(pc.is_valid(values))] = null
    return out


def _rows_of(values: pa.Array, positions: np.ndarray) -> np.ndarray:
    """The rows that hold the given positions of ``data_bytes(values)``."""
    offsets = value_offsets(values)
    hit = np.zeros(len(values), dtype=bool)
    hit[np.searchsorted(offsets - offsets[0], positions, side="right") - 1] = True
    return np.flatnonzero(hit)


def _controls_at(data: np.ndarray) -> np.ndarray:
    """Positions of the characters of _CONTROL in UTF-8 bytes (C0 but tab/LF/CR, DEL, C1, U+FFFE/F)."""
    low = np.flatnonzero(data < 0x20)  # tabs and line breaks are common, the rest is rare
    found = [low[_CONTROL_BYTE[data[low]]]]
    top = data.max(initial=0)
    if top >= 0x7F:
        found.append(np.flatnonzero(data == 0x7F))
    if top >= 0xC2:  # U+0080..U+009F are C2 80..C2 9F
        lead = np.flatnonzero(data[:-1] == 0xC2)
        found.append(lead[data[lead + 1] < 0xA0])
    if top >= 0xEF:  # U+FFFE, U+FFFF are EF BF BE, EF BF BF
        lead = np.flatnonzero(data[:-2] == 0xEF)
        found.append(lead[(data[lead + 1] == 0xBF) & (data[lead + 2] >= 0xBE)])
    return np.concatenate(found)


def on_rows_with(values: pa.Array, marked: np.ndarray, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``fn`` applied only to the rows holding a byte that ``marked`` (256 booleans, by byte) marks;
    for a step that leaves every other row as it is, such as removing those bytes' characters."""
    return _on_rows(values, _rows_of(values, np.flatnonzero(marked[data_bytes(values)])), fn)


def _on_rows(values: pa.Array, rows: np.ndarray, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``fn`` applied to the given rows only (sorted, distinct); the other rows stay as they are."""
    if not len(rows):
        return values
    return fn(values) if len(rows) == len(values) else replace_rows(values, rows, fn(values.take(rows)))


def replace_rows(values: pa.Array, rows: np.ndarray, replacements: pa.Array) -> pa.Array:
    """``values`` with the given rows (sorted, distinct) replaced by ``replacements``, in order.

    Large strings without nulls (every column of a chunk) by one compiled pass (``_speedups.splice``)
    without the GIL; anything else by Arrow's ``replace_with_mask``, which took about 0.8 ms a call
    on a 40,000-row chunk, five calls a chunk."""
    if (
        isinstance(values, pa.Array)
        and isinstance(replacements, pa.Array)
        and values.type == pa.large_string()
        and replacements.type == pa.large_string()
        and not values.null_count
        and not replacements.null_count
    ):
        offsets = offsets_from_zero(values)
        new_offsets = offsets_from_zero(replacements)
        out = np.empty(max(int(offsets[-1] + new_offsets[-1]), 1), dtype=np.uint8)
        out_offsets = np.empty(len(values) + 1, dtype=np.int64)
        at = np.ascontiguousarray(rows, dtype=np.int64)
        size = _speedups.splice(
            data_bytes(values), offsets, at, data_bytes(replacements), new_offsets, out, out_offsets
        )
        buffers = [None, pa.py_buffer(out_offsets), pa.py_buffer(out[:size])]
        return pa.Array.from_buffers(pa.large_string(), len(values), buffers)
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), replacements)


def _by_chunk(
    fn: Callable[[pa.Array], pa.Array], values: pa.Array | pa.ChunkedArray
) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([fn(chunk) for chunk in values.chunks], type=values.type)
    return fn(values)


def _bools(mask: pa.Array, missing: bool = False) -> np.ndarray:
    return pc.fill_null(mask, missing).to_numpy(zero_copy_only=False)
