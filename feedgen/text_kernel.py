"""One compiled pass over a string column's UTF-8 bytes for the common case of ``text.clean_text``.

Each row is copied once, then cleaned in place by four short loops in the order ``clean_text`` gives:
controls out, the common entities decoded, tags out (block tags become a line break), whitespace
runs collapsed and the ends trimmed. Every loop writes at or before where it reads, so the row never
needs more room than it had. A row the loops do not cover exactly (a reference other than the common
entities, an HTML comment) is flagged, and ``text`` cleans it by the general path. NFC is left to
``text.nfc`` afterwards: no step here can put two characters side by side that NFC would combine.

Compiled by numba on first use (and cached next to this file); the loops release the GIL, so two
threads clean two chunks at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_TAB, _LF, _FF, _CR, _SP = 0x09, 0x0A, 0x0C, 0x0D, 0x20
_LT, _GT, _AMP, _SLASH = 0x3C, 0x3E, 0x26, 0x2F


#: bytes the first pass must look at: C0 controls but tab/LF/CR, DEL, the leads of C1 controls (C2)
#: and of U+FFFE/U+FFFF (EF), and "&", "<"; every other byte is copied as it is
_SPECIAL = np.zeros(256, dtype=np.bool_)
_SPECIAL[[*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0xC2, 0xEF, _AMP, _LT]] = True
#: whitespace in one byte: RE2's \s and VT; the leads of the Unicode space separators
_SPACE_BYTE = np.zeros(256, dtype=np.bool_)
_SPACE_BYTE[[_SP, _TAB, _LF, _CR, _FF, 0x0B]] = True
#: RE2's \s: tab, LF, FF, CR, space (no VT)
_RE2_SPACE = _SPACE_BYTE.copy()
_RE2_SPACE[0x0B] = False


@njit(nogil=True, cache=True)
def clean(data, offsets, valid, html, keep_lines, no_reference, names, name_len, chars, char_len, nfc_safe):
    """Clean every valid row of a string array given as ``data`` bytes and ``offsets``.

    ``no_reference[b]`` tells that no reference starts at an "&" before byte b; ``names`` (padded),
    ``name_len``, ``chars`` (padded) and ``char_len`` spell the common entities and what they decode
    to; ``nfc_safe[c]`` tells, for each BMP code point, that a text of such characters is already NFC.
    Returns ``(out, out_offsets, general, unnormalized)``: the cleaned bytes, their offsets (the
    input's dtype), the rows this pass does not cover (their bytes in ``out`` are empty) and the rows
    NFC may change.
    """
    n = len(offsets) - 1
    base = offsets[0]
    out = np.empty(max(offsets[n] - base, 1), dtype=np.uint8)
    out_offsets = np.empty(n + 1, dtype=offsets.dtype)
    general = np.zeros(n, dtype=np.bool_)
    unnormalized = np.zeros(n, dtype=np.bool_)
    pos = 0
    out_offsets[0] = 0
    for i in range(n):
        if valid[i]:
            start, stop = offsets[i] - base, offsets[i + 1] - base
            end, lt = _controls_and_entities(
                data, start, stop, out, pos, no_reference, names, name_len, chars, char_len
            )
            if end >= 0 and html and lt:
                end = _strip_tags(out, pos, end)
            if end < 0:
                general[i] = True
            else:
                pos, unnormalized[i] = _collapse_spaces(out, pos, end, keep_lines, nfc_safe)
        out_offsets[i + 1] = pos
    return out, out_offsets, general, unnormalized


@njit(nogil=True, cache=True, inline="always")
def _controls_and_entities(data, start, end, out, pos, no_reference, names, name_len, chars, char_len):
    """Copy data[start:end] to out[pos:] without C0 controls (but tab, LF, CR), DEL, C1 controls and
    U+FFFE/U+FFFF, decoding the common entities. Returns the end of the copy (-1 when the row holds
    another reference, or a control inside one) and whether it holds a "<"."""
    r, w = start, pos
    lt = False
    while r < end:
        b = data[r]
        if not _SPECIAL[b]:
            out[w] = b
            w += 1
            r += 1
        elif b == _AMP:
            nxt = data[r + 1] if r + 1 < end else _SP
            if no_reference[nxt]:
                out[w] = b  # "&" that starts nothing, as in "Sakura & Co."
                w += 1
                r += 1
                continue
            # a name spelled in the raw bytes is spelled the same once controls are out (names are
            # printable ASCII); anything else, a control inside a reference included, goes general
            found = _entity_at(data, r, end, names, name_len)
            if found < 0:
                return -1, lt
            for j in range(char_len[found]):
                out[w + j] = chars[found, j]
            lt = lt or chars[found, 0] == _LT
            w += char_len[found]
            r += name_len[found]
        elif b == _LT:
            lt = True
            out[w] = b
            w += 1
            r += 1
        elif b == 0xC2:
            if r + 1 < end and data[r + 1] < 0xA0:  # U+0080..U+009F
                r += 2
            else:
                out[w] = b
                w += 1
                r += 1
        elif b == 0xEF:
            if r + 2 < end and data[r + 1] == 0xBF and data[r + 2] >= 0xBE:  # U+FFFE, U+FFFF
                r += 3
            else:
                out[w] = b
                w += 1
                r += 1
        else:  # a control byte
            r += 1
    return w, lt


@njit(nogil=True, cache=True, inline="always")
def _entity_at(data, r, end, names, name_len):
    """The index of the common entity spelled at data[r:end], or -1."""
    for k in range(len(name_len)):
        size = name_len[k]
        if r + size <= end:
            same = True
            for j in range(1, size):
                if data[r + j] != names[k, j]:
                    same = False
                    break
            if same:
                return k
    return -1


@njit(nogil=True, cache=True, inline="always")
def _is_space(b):
    """RE2's \\s: tab, LF, FF, CR, space."""
    return _RE2_SPACE[b]


@njit(nogil=True, cache=True, inline="always")
def _lower(b):
    return b | 0x20 if 0x41 <= b <= 0x5A else b


@njit(nogil=True, cache=True, inline="always")
def _tag_end(buf, k, end):
    """Where a tag whose name ends at k ends: ``(\\s[^<>]*)?/?>`` matched from k; -1 if it does not."""
    if k >= end:
        return -1
    b = buf[k]
    if b == _GT:
        return k + 1
    if b == _SLASH:
        return k + 2 if k + 1 < end and buf[k + 1] == _GT else -1
    if not _is_space(b):
        return -1
    k += 1
    while k < end and buf[k] != _LT and buf[k] != _GT:
        k += 1
    return k + 1 if k < end and buf[k] == _GT else -1


@njit(nogil=True, cache=True, inline="always")
def _block_name_end(buf, k, end):
    """The end of a block tag's name (br, p, div, li, h1-h6, and /p, /div, /h1-/h6, /tr, /ul, /ol,
    /table) starting at k, or -1."""
    closing = k < end and buf[k] == _SLASH
    if closing:
        k += 1
    if k >= end:
        return -1
    c = _lower(buf[k])
    c2 = _lower(buf[k + 1]) if k + 1 < end else 0
    if c == 0x70:  # p
        return k + 1
    if c == 0x68 and 0x31 <= c2 <= 0x36:  # h1-h6
        return k + 2
    if c == 0x64 and c2 == 0x69 and k + 2 < end and _lower(buf[k + 2]) == 0x76:  # div
        return k + 3
    if closing:
        if c == 0x74 and c2 == 0x72:  # /tr
            return k + 2
        if (c == 0x75 or c == 0x6F) and c2 == 0x6C:  # /ul, /ol
            return k + 2
        table = c == 0x74 and k + 4 < end and c2 == 0x61 and _lower(buf[k + 2]) == 0x62
        if table and _lower(buf[k + 3]) == 0x6C and _lower(buf[k + 4]) == 0x65:  # /table
            return k + 5
        return -1
    if c == 0x62 and c2 == 0x72:  # br
        return k + 2
    if c == 0x6C and c2 == 0x69:  # li
        return k + 2
    return -1


@njit(nogil=True, cache=True, inline="always")
def _is_name_byte(b):
    return (0x41 <= b <= 0x5A) or (0x61 <= b <= 0x7A) or (0x30 <= b <= 0x39) or b == 0x3A or b == 0x2D


@njit(nogil=True, cache=True, inline="always")
def _strip_tags(buf, start, end):
    """Block tags to "\\n", then (a second pass, as the two regexes run one after the other) every
    other tag out; -1 when the row holds "<!--" (comments take the general path)."""
    for r in range(start, end - 3):
        if buf[r] == _LT and buf[r + 1] == 0x21 and buf[r + 2] == 0x2D and buf[r + 3] == 0x2D:
            return -1
    r, w = start, start
    while r < end:
        if buf[r] == _LT:
            k = r + 1
            while k < end and _is_space(buf[k]):
                k += 1
            k = _block_name_end(buf, k, end)
            stop = _tag_end(buf, k, end) if k >= 0 else -1
            if stop >= 0:
                buf[w] = _LF
                w += 1
                r = stop
                continue
        buf[w] = buf[r]
        w += 1
        r += 1
    end, r, w = w, start, start
    while r < end:
        if buf[r] == _LT:
            k = r + 1
            if k < end and buf[k] == _SLASH:
                k += 1
            if k < end and ((0x41 <= buf[k] <= 0x5A) or (0x61 <= buf[k] <= 0x7A)):
                k += 1
                while k < end and _is_name_byte(buf[k]):
                    k += 1
                stop = _tag_end(buf, k, end)
                if stop >= 0:
                    r = stop
                    continue
        buf[w] = buf[r]
        w += 1
        r += 1
    return w


@njit(nogil=True, cache=True, inline="always")
def _space_width(buf, r, end):
    """The byte length of the whitespace character at r (tab, LF, FF, CR, VT, a Unicode space
    separator), or 0 when there is none."""
    b = buf[r]
    if _SPACE_BYTE[b]:
        return 1
    if b < 0xC2:
        return 0
    b1 = buf[r + 1] if r + 1 < end else 0
    if b == 0xC2:
        return 2 if b1 == 0xA0 else 0  # U+00A0
    b2 = buf[r + 2] if r + 2 < end else 0
    if b == 0xE1:
        return 3 if b1 == 0x9A and b2 == 0x80 else 0  # U+1680
    if b == 0xE2:
        if b1 == 0x80 and (b2 <= 0x8A or b2 == 0xA8 or b2 == 0xA9 or b2 == 0xAF):
            return 3  # U+2000..U+200A, U+2028, U+2029, U+202F
        return 3 if b1 == 0x81 and b2 == 0x9F else 0  # U+205F
    if b == 0xE3:
        return 3 if b1 == 0x80 and b2 == 0x80 else 0  # U+3000
    return 0


@njit(nogil=True, cache=True, inline="always")
def _collapse_spaces(buf, start, end, keep_lines, nfc_safe):
    """Each whitespace run to one space; with ``keep_lines``, to one line break if it holds one and to
    two (a blank line) if it holds more. Runs at either end go. Returns the row's new end, and
    whether it holds a character outside ``nfc_safe``."""
    r, w = start, start
    unnormalized = False
    while r < end:
        b = buf[r]
        if b < 0x80 and not _SPACE_BYTE[b]:
            buf[w] = b
            w += 1
            r += 1
            continue
        if b == _SP and w != start and r + 1 < end and buf[r + 1] < 0x80 and not _SPACE_BYTE[buf[r + 1]]:
            buf[w] = b  # a lone space between words
            w += 1
            r += 1
            continue
        width = _space_width(buf, r, end)
        if width == 0:  # a character of 2 to 4 bytes
            width = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            if width == 4:
                unnormalized = True
            else:
                code = (b & 0x1F) << 6 | (buf[r + 1] & 0x3F)
                if width == 3:
                    code = (code & 0x3FF) << 6 | (buf[r + 2] & 0x3F)
                unnormalized = unnormalized or not nfc_safe[code]
            for j in range(width):
                buf[w + j] = buf[r + j]
            w += width
            r += width
            continue
        breaks = 0
        while width:
            if buf[r] == _LF:
                breaks += 1
            r += width
            width = _space_width(buf, r, end) if r < end else 0
        if w == start or r == end:
            continue  # leading or trailing run: trimmed
        if not keep_lines or breaks == 0:
            buf[w] = _SP
            w += 1
        else:
            buf[w] = _LF
            w += 1
            if breaks > 1:
                buf[w] = _LF
                w += 1
    return w, unnormalized
