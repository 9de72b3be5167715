"""Phone numbers to E.164 over whole columns, giving exactly what ``phonenumbers`` gives.

``phonenumbers.parse`` costs about 50 µs a number and customer phones are nearly all distinct, so
caching alone does not help. The fast path re-enacts the library's own steps (country calling code,
national prefix, possible lengths, number-type patterns, region choice for shared codes) from its
metadata, as RE2 regexes over the column, one group per region or calling code. Whatever is not
one of the plain forms it knows goes to the library itself, once per distinct (text, region).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneMetadata, PhoneNumberFormat

from feedgen.text import replace_rows

# Plain forms: "+" or "00", digits with spaces, dots, dashes, slashes and parentheses, and an
# optional "x"/"ext." extension of up to 6 digits, a strict subset of what the library strips.
_FAST = (
    r"^(?:(?P<intl>\+|00)[ ./\-]*)?(?P<body>[0-9(][0-9 ()./\-]*[0-9])"
    r"(?:[ ]*(?i:ext|x)[.:]?[ ]*[0-9]{1,6})?$"
)
# A text of the _FAST form that begins with "00" has it as its international prefix only when the rest
# is a whole body on its own (the optional group is tried first, then given up if the match fails).
_DOUBLE_ZERO = r"^00[ ./\-]*[0-9(][0-9 ()./\-]*[0-9](?:[ ]*(?i:ext|x)[.:]?[ ]*[0-9]{1,6})?$"
_MIN_NSN, _MAX_NSN = 2, 17
# Number types in the order the library tests them; only "matches any" matters for validity.
_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail")


class _Slow(Exception):
    """This group's metadata uses something the fast path does not re-enact."""


class _Rows:
    """Per-row results: the E.164 numbers found, by group of rows, and which rows are left to the library."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.slow = np.zeros(n, dtype=bool)
        self.found: list[tuple[np.ndarray, pa.Array]] = []

    def put(self, rows: np.ndarray, e164: pa.Array) -> None:
        """Record ``e164`` (null: not a valid number) for ``rows``; a later put for a row wins."""
        self.found.append((rows, e164))

    def column(self) -> pa.Array:
        """One value per row, null where nothing was found."""
        at = np.full(self.n, -1, dtype=np.int64)
        start = 0
        for rows, _ in self.found:
            at[rows] = np.arange(start, start + len(rows))
            start += len(rows)
        values = pa.concat_arrays([pa.array([], pa.string())] + [v.cast(pa.string()) for _, v in self.found])
        return values.take(pa.array(at, mask=at < 0))


def library_e164(text: str, region: str | None) -> str | None:
    """E.164 of one cleaned text by the library alone (None when not a valid number); "00" means "+"."""
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def clean_text(raw: pa.Array) -> pa.Array:
    """NFKC (full-width digits and "＋" become ASCII) and trimmed; whitespace-only becomes null."""
    text = pc.utf8_trim_whitespace(pc.utf8_normalize(raw, form="NFKC"))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def e164_column(raw: pa.Array, regions: pa.Array) -> pa.Array:
    """E.164 (with "+") per row; null where blank or not a valid number. ``regions``: alpha-2 or null."""
    text = clean_text(raw.cast(pa.string()))
    regions = pc.utf8_upper(regions.cast(pa.string()))
    res = _Rows(len(text))
    present = pc.is_valid(text).to_numpy(zero_copy_only=False)
    plain = pc.fill_null(pc.match_substring_regex(text, _FAST), False).to_numpy(zero_copy_only=False)
    res.slow[:] = present & ~plain
    fast = np.flatnonzero(plain)
    digits, intl = _split_plain(text.take(fast))
    # Very short numbers and "+0…" take the library's rarer error paths: leave them to it.
    zero_code = intl & pc.starts_with(digits, "0").to_numpy(zero_copy_only=False)
    short = (pc.utf8_length(digits).to_numpy() < 4) | zero_code
    res.slow[fast[short]] = True
    keep = ~short
    fast, digits, intl = fast[keep], digits.filter(pa.array(keep)), intl[keep]
    _international(fast[intl], digits.filter(pa.array(intl)), res)
    national = ~intl
    _national(fast[national], digits.filter(pa.array(national)), regions.take(fast[national]), res)
    _library_rows(text, regions, res)
    return res.column()


def _split_plain(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The body's digits of texts in the ``_FAST`` form, and whether each began with "+" or "00".

    Same answer as the regex's groups, without its costly extraction: the extension starts at the
    first letter; "00" is the international prefix when the rest still has the ``_FAST`` form.
    """
    letters = np.flatnonzero(_bools(pc.match_substring(texts, "x", ignore_case=True)))
    letters = np.union1d(letters, np.flatnonzero(_bools(pc.match_substring(texts, "e", ignore_case=True))))
    if len(letters):
        cut = pc.replace_substring_regex(texts.take(letters), r"(?i)[ ]*(?:ext|x).*$", "", max_replacements=1)
        texts = replace_rows(texts, letters, cut)
    digits = digits_only(texts)
    intl = _bools(pc.starts_with(texts, "+"))
    zeros = np.flatnonzero(_bools(pc.starts_with(texts, "00")))
    if len(zeros):
        prefixed = zeros[_bools(pc.match_substring_regex(texts.take(zeros), _DOUBLE_ZERO))]
        intl[prefixed] = True
        without = pc.utf8_slice_codeunits(digits.take(prefixed), 2)
        digits = replace_rows(digits, prefixed, without)
    return digits, intl


def digits_only(values: pa.Array) -> pa.Array:
    """Each value with every byte but the ASCII digits removed (a byte pass, not a regex)."""
    values = pa.concat_arrays([values.cast(pa.string())])  # own buffers from offset 0
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[: len(values) + 1]
    data = np.frombuffer(values.buffers()[2] or b"\0", dtype=np.uint8)[: offsets[-1]]
    keep = (data >= 0x30) & (data <= 0x39)
    kept = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum(keep, dtype=np.int32, out=kept[1:])
    return pa.StringArray.from_buffers(
        len(values),
        pa.py_buffer(kept[offsets]),
        pa.py_buffer(data[keep].tobytes()),
        values.buffers()[0],
        values.null_count,
    )


def _bools(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _library_rows(text: pa.Array, regions: pa.Array, res: _Rows) -> None:
    """Rows the fast path left: one library call per distinct (text, region)."""
    rows = np.flatnonzero(res.slow)
    if not len(rows):
        return
    pairs = list(zip(text.take(rows).to_pylist(), regions.take(rows).to_pylist(), strict=True))
    done = {pair: library_e164(pair[0], pair[1]) for pair in set(pairs) if pair[0] is not None}
    res.put(rows, pa.array([done.get(pair) for pair in pairs], type=pa.string()))


def _international(rows: np.ndarray, digits: pa.Array, res: _Rows) -> None:
    """Numbers written with "+" or "00": calling code first, then the national part."""
    cc = np.zeros(len(rows), dtype=np.int64)
    for width in (3, 2, 1):  # the library takes the shortest known code: shorter ones overwrite
        head = pc.utf8_slice_codeunits(digits, 0, width)
        known = pc.is_in(head, _codes(width)).to_numpy(zero_copy_only=False)
        cc[known] = head.filter(known).cast(pa.int64()).to_numpy()
    res.slow[rows[cc == 0]] = True
    for code in np.unique(cc[cc != 0]):
        sel = np.flatnonzero(cc == code)
        nat = pc.utf8_slice_codeunits(digits.take(sel), len(str(code)))
        try:
            _finish(int(code), nat, _main_metadata(int(code)), rows[sel], res)
        except _Slow:
            res.slow[rows[sel]] = True


def _national(rows: np.ndarray, digits: pa.Array, regions: pa.Array, res: _Rows) -> None:
    """Numbers without "+"/"00", read with the row's region, as ``phonenumbers.parse`` would."""
    encoded = pc.dictionary_encode(pc.fill_null(regions, ""))
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    for i, region in enumerate(encoded.dictionary.to_pylist()):
        sel = np.flatnonzero(indices == i)
        try:
            if not region:
                raise _Slow("no region")
            _national_region(str(region), rows[sel], digits.take(sel), res)
        except _Slow:
            res.slow[rows[sel]] = True


def _national_region(region: str, rows: np.ndarray, digits: pa.Array, res: _Rows) -> None:
    """One region's national-form numbers: its IDD, its own calling code written without "+", trunk prefix."""
    meta: Any = PhoneMetadata.metadata_for_region(region, None)
    if meta is None:
        raise _Slow(region)
    idd = np.zeros(len(rows), dtype=bool)
    if meta.international_prefix:
        idd = _prefix_match(digits, meta.international_prefix)
    res.slow[rows[idd]] = True
    cc = str(meta.country_code)
    starts = ~idd & pc.starts_with(digits, cc).to_numpy(zero_copy_only=False)
    extracted = np.zeros(len(rows), dtype=bool)
    if starts.any():
        sel = np.flatnonzero(starts)
        whole = digits.take(sel)
        potential = _strip_national_prefix(pc.utf8_slice_codeunits(whole, len(cc)), meta)
        lengths = pc.utf8_length(whole).to_numpy()
        better = ~_general(whole, meta) & _general(potential, meta)
        too_long = lengths > meta.general_desc.possible_length[-1]
        too_long &= ~_has_length(lengths, meta.general_desc.possible_length_local_only)
        take = better | too_long
        extracted[sel[take]] = True
        main = phonenumbers.region_code_for_country_code(meta.country_code)
        other = meta if main == region else _main_metadata(meta.country_code)
        _finish(meta.country_code, potential.filter(pa.array(take)), other, rows[sel[take]], res)
    plain = np.flatnonzero(~idd & ~extracted)
    _finish(meta.country_code, digits.take(plain), meta, rows[plain], res)


def _finish(cc: int, nat: pa.Array, meta: Any, rows: np.ndarray, res: _Rows) -> None:
    """Strip the trunk prefix where the library would, check lengths and validity, write E.164."""
    if not len(rows):
        return
    too_short = pc.utf8_length(nat).to_numpy() < _MIN_NSN
    stripped = _strip_national_prefix(nat, meta)
    usable = _usable_length(pc.utf8_length(stripped).to_numpy(), meta)
    nat = pc.if_else(pa.array(usable), stripped, nat)
    lengths = pc.utf8_length(nat).to_numpy()
    valid = ~too_short & (lengths >= _MIN_NSN) & (lengths <= _MAX_NSN) & _valid(cc, nat)
    res.put(rows[valid], pc.binary_join_element_wise(f"+{cc}", nat.filter(pa.array(valid)), ""))


def _strip_national_prefix(nat: pa.Array, meta: Any) -> pa.Array:
    """``_maybe_strip_national_prefix_carrier_code`` over a column (the number it returns)."""
    prefix = meta.national_prefix_for_parsing
    if not prefix or not len(nat):
        return nat
    plain_re, last_re, last_may_be_empty = _prefix_patterns(prefix)
    matched = _regex(nat, plain_re) & (pc.utf8_length(nat).to_numpy() > 0)
    if not matched.any():
        return nat
    rule = meta.national_prefix_transform_rule
    candidate = pc.replace_substring_regex(nat, plain_re, "", max_replacements=1)
    if rule:
        if last_re is None or last_may_be_empty:
            raise _Slow(prefix)
        # RE2 gives "" for a group that took no part; the group cannot match "" (checked above).
        last = pc.fill_null(pc.not_equal(pc.struct_field(pc.extract_regex(nat, last_re), "last"), ""), False)
        transform = matched & last.to_numpy(zero_copy_only=False)
        transformed = pc.replace_substring_regex(nat, _anchored(prefix), rule, max_replacements=1)
        candidate = pc.if_else(pa.array(transform), transformed, candidate)
    keep = ~matched | (_general(nat, meta) & ~_general(candidate, meta))
    return pc.if_else(pa.array(keep), nat, candidate)


def _usable_length(lengths: np.ndarray, meta: Any) -> np.ndarray:
    """``_test_number_length`` is IS_POSSIBLE or TOO_LONG (the library keeps a stripped number then)."""
    possible = meta.general_desc.possible_length
    local = meta.general_desc.possible_length_local_only
    return ~_has_length(lengths, local) & (_has_length(lengths, possible) | (lengths > possible[-1]))


def _valid(cc: int, nat: pa.Array) -> np.ndarray:
    """``is_valid_number``: the region that claims the number (leading digits or a type match) accepts it."""
    regions = COUNTRY_CODE_TO_REGION_CODE[cc]
    if "001" in regions:
        raise _Slow(cc)
    if len(regions) == 1:
        return _typed(nat, PhoneMetadata.metadata_for_region(regions[0], None))
    valid = np.zeros(len(nat), dtype=bool)
    open_rows = np.arange(len(nat))
    for region in regions:
        meta = PhoneMetadata.metadata_for_region(region, None)
        if meta is None or not len(open_rows):
            continue
        sub = nat.take(open_rows)
        typed = _typed(sub, meta)
        claim = _prefix_match(sub, meta.leading_digits) if meta.leading_digits is not None else typed
        valid[open_rows[claim]] = typed[claim]
        open_rows = open_rows[~claim]
    return valid


def _typed(nat: pa.Array, meta: Any) -> np.ndarray:
    """``_number_type_helper(...) != UNKNOWN`` over a column."""
    lengths = pc.utf8_length(nat).to_numpy()
    ok = _desc_match(nat, lengths, meta.general_desc, np.ones(len(nat), dtype=bool))
    # With one shared pattern the library never tries "mobile" on its own (its lengths may differ).
    names = (*_TYPES, "fixed_line", *(() if meta.same_mobile_and_fixed_line_pattern else ("mobile",)))
    hit = np.zeros(len(nat), dtype=bool)
    for name in names:
        hit |= _desc_match(nat, lengths, getattr(meta, name), ok & ~hit)
    return ok & hit


def _desc_match(nat: pa.Array, lengths: np.ndarray, desc: Any, todo: np.ndarray) -> np.ndarray:
    """``_is_number_matching_desc`` for the rows in ``todo``: possible length, then full pattern match."""
    result = np.zeros(len(nat), dtype=bool)
    if desc is None or not desc.national_number_pattern:
        return result
    if desc.possible_length:
        todo = todo & _has_length(lengths, desc.possible_length)
    rows = np.flatnonzero(todo)
    if len(rows):
        result[rows] = _full(nat.take(rows), desc.national_number_pattern)
    return result


def _general(nat: pa.Array, meta: Any) -> np.ndarray:
    """``_match_national_number`` against the general description (pattern only, no lengths)."""
    pattern = meta.general_desc.national_number_pattern
    return _full(nat, pattern) if pattern else np.zeros(len(nat), dtype=bool)


def _full(values: pa.Array, pattern: str) -> np.ndarray:
    """Whole-string match, as the library's ``fullmatch``."""
    return _regex(values, f"^(?:{pattern})$")


def _prefix_match(values: pa.Array, pattern: str) -> np.ndarray:
    """Match at the start, as ``re.match``."""
    return _regex(values, _anchored(pattern))


def _regex(values: pa.Array, pattern: str) -> np.ndarray:
    """RE2 match as a boolean array; a pattern RE2 rejects sends the group to the library."""
    try:
        return pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as exc:
        raise _Slow(pattern) from exc


def _has_length(lengths: np.ndarray, allowed: tuple[int, ...] | None) -> np.ndarray:
    """``lengths`` in ``allowed`` (possible-length lists are short, lengths small)."""
    table = np.zeros(max(int(lengths.max(initial=0)), *(allowed or (0,))) + 2, dtype=bool)
    table[[n for n in allowed or () if n >= 0]] = True
    return table[lengths]


@cache
def _codes(width: int) -> pa.Array:
    return pa.array([str(c) for c in COUNTRY_CODE_TO_REGION_CODE if len(str(c)) == width])


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})"


@cache
def _main_metadata(cc: int) -> Any:
    """Metadata the library uses for numbers written with this calling code."""
    main = phonenumbers.region_code_for_country_code(cc)
    meta = PhoneMetadata.metadata_for_region_or_calling_code(cc, main)
    if meta is None or main == "001":
        raise _Slow(cc)
    return meta


@cache
def _prefix_patterns(prefix: str) -> tuple[str, str | None, bool]:
    """Prefix pattern without groups; with only its last group (named); whether that group can match ""."""
    groups = _capturing_groups(prefix)
    plain = list(prefix)
    for start, _ in groups:
        plain[start] = "(?:"
    if not groups:
        return _anchored(prefix), None, False
    named = list(plain)
    start, end = groups[-1]
    named[start] = "(?P<last>"
    may_be_empty = re.fullmatch(prefix[start + 1 : end], "") is not None
    return _anchored("".join(plain)), _anchored("".join(named)), may_be_empty


def _capturing_groups(pattern: str) -> list[tuple[int, int]]:
    """(open, close) positions of capturing groups, in the order the regex engine numbers them."""
    spans: list[tuple[int, int]] = []
    stack: list[tuple[int, bool]] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            stack.append((i, not pattern.startswith("?", i + 1)))
        elif char == ")":
            start, capturing = stack.pop()
            if capturing:
                spans.append((start, i))
        i += 1
    return sorted(spans)
