/* The compiled passes of feedgen: clean() for feedgen.text.clean_text, rows() for the feed writers.
 *
 * clean(): one pass over a string column's UTF-8 bytes for the common case of clean_text.
 *
 * Each row is copied once, then cleaned in place by short loops in the order clean_text gives:
 * controls out and the common entities decoded (one loop), tags out (block tags become a line
 * break), whitespace runs collapsed and the ends trimmed. Every loop writes at or before where it
 * reads, so a row never needs more room than it had. A row the loops do not cover exactly (a
 * reference other than the common entities, a control inside one, an HTML comment) is flagged, and
 * feedgen.text cleans it by the general path. NFC is left to feedgen.text too: the last loop flags
 * the rows holding a character outside the table of characters NFC keeps as they are.
 *
 * The loop runs without the GIL. feedgen/text.py holds the tables and the tests that hold this
 * pass to the general path row for row.
 *
 * rows(): every line of a feed chunk (RSS items, CSV and TSV rows), values escaped on the way, the
 * rows a platform rejects left out.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define TAB 0x09
#define LF 0x0A
#define FF 0x0C
#define CR 0x0D
#define SP 0x20
#define LT 0x3C
#define GT 0x3E
#define AMP 0x26
#define SLASH 0x2F

typedef struct {
    const uint8_t *no_reference; /* [256]: no reference starts at "&" before this byte */
    const uint8_t *names;        /* [count][8]: the common entities, "&" to ";" */
    const int64_t *name_len;
    const uint8_t *chars;        /* [count][4]: their UTF-8 */
    const int64_t *char_len;
    Py_ssize_t count;
    const uint8_t *nfc_safe;     /* [65536]: NFC keeps a text of such characters as it is */
} Tables;

static uint8_t special[256];  /* bytes the first loop must look at */
static uint8_t re2_space[256];  /* RE2's \s: tab, LF, FF, CR, space */
static uint8_t space_byte[256]; /* \s and VT */

static void init_bytes(void) {
    for (int b = 0; b < 0x20; b++)
        special[b] = (b != TAB && b != LF && b != CR);
    special[0x7F] = special[0xC2] = special[0xEF] = special[AMP] = 1;
    re2_space[SP] = re2_space[TAB] = re2_space[LF] = re2_space[FF] = re2_space[CR] = 1;
    memcpy(space_byte, re2_space, sizeof space_byte);
    space_byte[0x0B] = 1;
}

static inline uint8_t lower(uint8_t b) { return (b >= 0x41 && b <= 0x5A) ? (uint8_t)(b | 0x20) : b; }


#if defined(__SSE2__)
static inline __m128i load16(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline __m128i byte_is(__m128i x, uint8_t b) { return _mm_cmpeq_epi8(x, _mm_set1_epi8((char)b)); }
/* x <= limit, bytes taken unsigned */
static inline __m128i at_most(__m128i x, uint8_t limit) {
    return _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8((char)limit)), x);
}
#endif

/* The first byte at or after r that the first loop must look at (see special[]), or end. */
static inline Py_ssize_t next_special_byte(const uint8_t *data, Py_ssize_t r, Py_ssize_t end) {
#if defined(__SSE2__)
    for (; r + 16 <= end; r += 16) {
        __m128i x = load16(data + r);
        __m128i kept = _mm_or_si128(_mm_or_si128(byte_is(x, TAB), byte_is(x, LF)), byte_is(x, CR));
        __m128i hit = _mm_andnot_si128(kept, at_most(x, 0x1F));
        hit = _mm_or_si128(hit, _mm_or_si128(byte_is(x, 0x7F), byte_is(x, 0xC2)));
        hit = _mm_or_si128(hit, _mm_or_si128(byte_is(x, 0xEF), byte_is(x, AMP)));
        int mask = _mm_movemask_epi8(hit);
        if (mask)
            return r + __builtin_ctz((unsigned)mask);
    }
#endif
    while (r < end && !special[data[r]])
        r++;
    return r;
}

/* The first byte at or after r where collapsing whitespace has work, or end: a byte of a non-ASCII
 * character, a whitespace byte other than a space, or a space followed by either (or by the end). A
 * lone space between two ASCII characters stays as it is. */
static inline Py_ssize_t next_space_work(const uint8_t *buf, Py_ssize_t r, Py_ssize_t end) {
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    for (; r + 17 <= end; r += 16) {
        __m128i x = load16(buf + r), y = load16(buf + r + 1);
        __m128i ws_x = at_most(x, SP), space = byte_is(x, SP);
        __m128i after = _mm_or_si128(at_most(y, SP), _mm_cmplt_epi8(y, zero)); /* y: whitespace or >= 0x80 */
        __m128i hit = _mm_or_si128(_mm_andnot_si128(space, ws_x), _mm_cmplt_epi8(x, zero));
        hit = _mm_or_si128(hit, _mm_and_si128(space, after));
        int mask = _mm_movemask_epi8(hit);
        if (mask)
            return r + __builtin_ctz((unsigned)mask);
    }
#endif
    for (; r < end; r++) {
        uint8_t b = buf[r];
        if (b >= 0x80 || (b <= SP && (b != SP || r + 1 >= end || buf[r + 1] <= SP || buf[r + 1] >= 0x80)))
            return r;
    }
    return end;
}

/* The first byte at or after r, up to len (the column's end, not the row's), where clean() may have
 * work: a byte below 0x20, DEL, a byte of a non-ASCII character, "<", an "&" not followed by a space
 * or ";", or a space followed by whitespace, a non-ASCII byte or the column's end. A row with none of these inside it, and no space
 * at either end, is left exactly as it is by every loop below. */
static inline Py_ssize_t next_work(const uint8_t *data, Py_ssize_t r, Py_ssize_t len) {
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    for (; r + 17 <= len; r += 16) {
        __m128i x = load16(data + r), y = load16(data + r + 1);
        __m128i hit = _mm_or_si128(at_most(x, 0x1F), _mm_cmplt_epi8(x, zero)); /* x < 0x20 or >= 0x80 */
        /* an "&" before a space or ";" starts no reference ("Sakura & Co."): no work */
        __m128i amp = _mm_andnot_si128(_mm_or_si128(byte_is(y, SP), byte_is(y, ';')), byte_is(x, AMP));
        hit = _mm_or_si128(hit, _mm_or_si128(byte_is(x, 0x7F), _mm_or_si128(amp, byte_is(x, LT))));
        __m128i after = _mm_or_si128(at_most(y, SP), _mm_cmplt_epi8(y, zero));
        hit = _mm_or_si128(hit, _mm_and_si128(byte_is(x, SP), after));
        int mask = _mm_movemask_epi8(hit);
        if (mask)
            return r + __builtin_ctz((unsigned)mask);
    }
#endif
    for (; r < len; r++) {
        uint8_t b = data[r];
        if (b < SP || b >= 0x7F || b == LT)
            return r;
        if (b == AMP && !(r + 1 < len && (data[r + 1] == SP || data[r + 1] == ';')))
            return r;
        if (b == SP && (r + 1 >= len || data[r + 1] <= SP || data[r + 1] >= 0x80))
            return r;
    }
    return len;
}

/* Whether clean() may change data[start:stop], a row of a column of len bytes: a byte next_work finds
 * in it, or whitespace or a control at either end. *next keeps the scan's last find, so that a run
 * of rows costs one scan. */
static inline int row_has_work(const uint8_t *data, Py_ssize_t len, Py_ssize_t start, Py_ssize_t stop,
                               Py_ssize_t *next) {
    if (*next < start)
        *next = next_work(data, start, len);
    return stop > start && (data[start] <= SP || data[stop - 1] <= SP || *next < stop);
}

/* len_mask[s]: the first s bytes of an 8-byte word loaded by memcpy, whatever the byte order */
static uint64_t len_mask[9];

static void init_masks(void) {
    for (int s = 0; s <= 8; s++) {
        uint8_t bytes[8];
        for (int i = 0; i < 8; i++)
            bytes[i] = i < s ? 0xFF : 0;
        memcpy(&len_mask[s], bytes, 8);
    }
}

/* The index of the common entity spelled at data[r:end], or -1. With 8 bytes to read, one load
 * compared with each name under its length's mask (names are at most 8 bytes, in 8-byte slots);
 * memcmp calls took 3.6% of this pass before. */
static Py_ssize_t entity_at(const uint8_t *data, Py_ssize_t r, Py_ssize_t end, const Tables *t) {
    if (r + 8 <= end) {
        uint64_t word, name;
        memcpy(&word, data + r, 8);
        for (Py_ssize_t k = 0; k < t->count; k++) {
            memcpy(&name, t->names + 8 * k, 8);
            if (((word ^ name) & len_mask[t->name_len[k]]) == 0)
                return k;
        }
        return -1;
    }
    for (Py_ssize_t k = 0; k < t->count; k++) {
        Py_ssize_t size = t->name_len[k];
        /* the byte after "&" first: most names differ there, and no call is made for them */
        if (r + size <= end && (size < 2 || data[r + 1] == t->names[8 * k + 1]) &&
            memcmp(data + r, t->names + 8 * k, (size_t)size) == 0)
            return k;
    }
    return -1;
}

/* Copy data[start:end] to out[pos:] without C0 controls (but tab, LF, CR), DEL, C1 controls and
 * U+FFFE/U+FFFF, decoding the common entities. Returns the end of the copy, or -1 when the row
 * holds another reference. */
static Py_ssize_t controls_and_entities(const uint8_t *data, Py_ssize_t start, Py_ssize_t end,
                                        uint8_t *out, Py_ssize_t pos, const Tables *t) {
    Py_ssize_t r = start, w = pos;
    while (r < end) {
        Py_ssize_t next = next_special_byte(data, r, end);
        memcpy(out + w, data + r, (size_t)(next - r)); /* the bytes copied as they are */
        w += next - r;
        r = next;
        if (r >= end)
            break;
        uint8_t b = data[r];
        if (b == AMP) {
            uint8_t next = r + 1 < end ? data[r + 1] : SP;
            if (t->no_reference[next]) { /* "&" that starts nothing, as in "Sakura & Co." */
                out[w++] = b;
                r++;
                continue;
            }
            /* a name spelled in the raw bytes is spelled the same once controls are out (names
             * are printable ASCII); anything else, a control inside a reference too, goes general */
            Py_ssize_t k = entity_at(data, r, end, t);
            if (k < 0)
                return -1;
            memcpy(out + w, t->chars + 4 * k, (size_t)t->char_len[k]);
            w += t->char_len[k];
            r += t->name_len[k];
        } else if (b == 0xC2) {
            if (r + 1 < end && data[r + 1] < 0xA0) /* U+0080..U+009F */
                r += 2;
            else
                out[w++] = data[r++];
        } else if (b == 0xEF) {
            if (r + 2 < end && data[r + 1] == 0xBF && data[r + 2] >= 0xBE) /* U+FFFE, U+FFFF */
                r += 3;
            else
                out[w++] = data[r++];
        } else { /* a control byte */
            r++;
        }
    }
    return w;
}

/* Where a tag whose name ends at k ends: (\s[^<>]*)?/?> matched from k; -1 if it does not. */
static Py_ssize_t tag_end(const uint8_t *buf, Py_ssize_t k, Py_ssize_t end) {
    if (k >= end)
        return -1;
    uint8_t b = buf[k];
    if (b == GT)
        return k + 1;
    if (b == SLASH)
        return (k + 1 < end && buf[k + 1] == GT) ? k + 2 : -1;
    if (!re2_space[b])
        return -1;
    for (k++; k < end && buf[k] != LT && buf[k] != GT; k++)
        ;
    return (k < end && buf[k] == GT) ? k + 1 : -1;
}

/* The end of a block tag's name starting at k (br, p, div, li, h1-h6; /p, /div, /h1-/h6, /tr, /ul,
 * /ol, /table), or -1. */
static Py_ssize_t block_name_end(const uint8_t *buf, Py_ssize_t k, Py_ssize_t end) {
    int closing = k < end && buf[k] == SLASH;
    if (closing)
        k++;
    if (k >= end)
        return -1;
    uint8_t c = lower(buf[k]);
    uint8_t c2 = k + 1 < end ? lower(buf[k + 1]) : 0;
    if (c == 'p')
        return k + 1;
    if (c == 'h' && c2 >= '1' && c2 <= '6')
        return k + 2;
    if (c == 'd' && c2 == 'i' && k + 2 < end && lower(buf[k + 2]) == 'v')
        return k + 3;
    if (closing) {
        if (c == 't' && c2 == 'r')
            return k + 2;
        if ((c == 'u' || c == 'o') && c2 == 'l')
            return k + 2;
        if (c == 't' && c2 == 'a' && k + 4 < end && lower(buf[k + 2]) == 'b' && lower(buf[k + 3]) == 'l' &&
            lower(buf[k + 4]) == 'e')
            return k + 5;
        return -1;
    }
    if ((c == 'b' && c2 == 'r') || (c == 'l' && c2 == 'i'))
        return k + 2;
    return -1;
}

static inline int is_name_byte(uint8_t b) {
    return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == ':' || b == '-';
}

/* The end of the block tag that starts at buf[r] ("<"), or -1: <\s*NAME(\s[^<>]*)?/?> */
static Py_ssize_t block_tag_at(const uint8_t *buf, Py_ssize_t r, Py_ssize_t end) {
    Py_ssize_t k = r + 1;
    while (k < end && re2_space[buf[k]])
        k++;
    k = block_name_end(buf, k, end);
    return k >= 0 ? tag_end(buf, k, end) : -1;
}

/* The end of the tag that starts at buf[r] ("<"), or -1: </?[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?> */
static Py_ssize_t any_tag_at(const uint8_t *buf, Py_ssize_t r, Py_ssize_t end) {
    Py_ssize_t k = r + 1;
    if (k < end && buf[k] == SLASH)
        k++;
    if (!(k < end && ((buf[k] >= 'A' && buf[k] <= 'Z') || (buf[k] >= 'a' && buf[k] <= 'z'))))
        return -1;
    for (k++; k < end && is_name_byte(buf[k]); k++)
        ;
    return tag_end(buf, k, end);
}

/* One regex's pass over a row, in place: each block tag becomes "\n" (block) or each tag goes.
 * The block pass meets every "<" of the row (no tag it removes holds one) and returns -1 at a
 * "<!--": comments take the general path. *kept is where the first "<" left in place ends up, or -1
 * (the other pass has nothing to do before it). */
static Py_ssize_t tag_pass(uint8_t *buf, Py_ssize_t start, Py_ssize_t end, int block, Py_ssize_t *kept) {
    Py_ssize_t r = start, w = start;
    *kept = -1;
    while (r < end) {
        const uint8_t *lt = memchr(buf + r, LT, (size_t)(end - r));
        Py_ssize_t next = lt ? lt - buf : end;
        if (w != r)
            memmove(buf + w, buf + r, (size_t)(next - r));
        w += next - r;
        r = next;
        if (r >= end)
            break;
        if (block && r + 3 < end && buf[r + 1] == '!' && buf[r + 2] == '-' && buf[r + 3] == '-')
            return -1;
        Py_ssize_t stop = block ? block_tag_at(buf, r, end) : any_tag_at(buf, r, end);
        if (stop < 0) {
            if (*kept < 0)
                *kept = w;
            buf[w++] = buf[r++]; /* a "<" that starts no tag */
        } else {
            if (block)
                buf[w++] = LF;
            r = stop;
        }
    }
    return w;
}

/* Block tags to "\n", then (a second pass, as the two regexes run one after the other) every other
 * tag out. Returns the row's new end, or -1 when it holds "<!--" (comments take the general path). */
static Py_ssize_t strip_tags(uint8_t *buf, Py_ssize_t start, Py_ssize_t end) {
    Py_ssize_t kept, unused;
    Py_ssize_t blocks = tag_pass(buf, start, end, 1, &kept);
    /* no tag can start before the first "<" the block pass kept: the other pass starts there */
    return blocks < 0 || kept < 0 ? blocks : tag_pass(buf, kept, blocks, 0, &unused);
}

/* The byte length of the whitespace character at r (tab, LF, FF, CR, VT, a Unicode space
 * separator), or 0 when there is none. */
static inline int space_width(const uint8_t *buf, Py_ssize_t r, Py_ssize_t end) {
    uint8_t b = buf[r];
    if (space_byte[b])
        return 1;
    if (b < 0xC2)
        return 0;
    uint8_t b1 = r + 1 < end ? buf[r + 1] : 0;
    if (b == 0xC2)
        return b1 == 0xA0 ? 2 : 0; /* U+00A0 */
    uint8_t b2 = r + 2 < end ? buf[r + 2] : 0;
    if (b == 0xE1)
        return (b1 == 0x9A && b2 == 0x80) ? 3 : 0; /* U+1680 */
    if (b == 0xE2) {
        if (b1 == 0x80 && (b2 <= 0x8A || b2 == 0xA8 || b2 == 0xA9 || b2 == 0xAF))
            return 3; /* U+2000..U+200A, U+2028, U+2029, U+202F */
        return (b1 == 0x81 && b2 == 0x9F) ? 3 : 0; /* U+205F */
    }
    if (b == 0xE3)
        return (b1 == 0x80 && b2 == 0x80) ? 3 : 0; /* U+3000 */
    return 0;
}

/* Each whitespace run to one space; with keep_lines, to one line break if it holds one and to two
 * (a blank line) if it holds more. Runs at either end go. Returns the row's new end; *unnormalized
 * tells whether the row holds a character outside nfc_safe. */
static Py_ssize_t collapse_spaces(uint8_t *buf, Py_ssize_t start, Py_ssize_t end, int keep_lines,
                                  const uint8_t *nfc_safe, int *unnormalized) {
    Py_ssize_t r = start, w = start;
    *unnormalized = 0;
    while (r < end) {
        if (w != start) { /* (at the start even a lone space goes: it is a leading run) */
            Py_ssize_t next = next_space_work(buf, r, end);
            memmove(buf + w, buf + r, (size_t)(next - r));
            w += next - r;
            r = next;
            if (r >= end)
                break;
        }
        uint8_t b = buf[r];
        if (b < 0x80 && !space_byte[b]) {
            buf[w++] = buf[r++];
            continue;
        }
        if (b == SP && w != start && r + 1 < end && buf[r + 1] < 0x80 && !space_byte[buf[r + 1]]) {
            buf[w++] = buf[r++]; /* a lone space between words */
            continue;
        }
        int width = space_width(buf, r, end);
        if (width == 0) { /* a character of 2 to 4 bytes */
            width = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
            if (width == 4 || r + width > end) {
                *unnormalized = 1; /* beyond the BMP (or cut short): NFC decides */
                if (r + width > end)
                    width = (int)(end - r);
            } else {
                uint32_t code = width == 2 ? ((b & 0x1Fu) << 6 | (buf[r + 1] & 0x3Fu))
                                           : ((b & 0x0Fu) << 12 | (buf[r + 1] & 0x3Fu) << 6 | (buf[r + 2] & 0x3Fu));
                if (!nfc_safe[code])
                    *unnormalized = 1;
            }
            memmove(buf + w, buf + r, (size_t)width);
            w += width;
            r += width;
            continue;
        }
        int breaks = 0;
        while (width) {
            if (buf[r] == LF)
                breaks++;
            r += width;
            width = r < end ? space_width(buf, r, end) : 0;
        }
        if (w == start || r == end)
            continue; /* a leading or trailing run: trimmed */
        if (!keep_lines || breaks == 0) {
            buf[w++] = SP;
        } else {
            buf[w++] = LF;
            if (breaks > 1)
                buf[w++] = LF;
        }
    }
    return w;
}

/* What is wrong with n + 1 offsets into data_len bytes, or NULL when they start at 0, never decrease
 * and stay within the data. Needs no GIL: a pass checks a chunk's tens of thousands of offsets in its
 * GIL-free part, so the other threads run Python meanwhile (it was 1.2% of a build's samples, all with
 * the GIL held, and each worker thread waited about 0.4 s a build for the GIL). */
static const char *offsets_problem(const int64_t *off, Py_ssize_t n, Py_ssize_t data_len) {
    if (off[0] != 0 || off[n] > data_len)
        return "offsets point outside data (they start at 0)";
    for (Py_ssize_t i = 0; i < n; i++)
        if (off[i + 1] < off[i])
            return "offsets decrease";
    return NULL;
}

/* A pass's problem found without the GIL, raised as a ValueError once it is back: true when there
 * was one (the pass then stops). */
static int raised(const char *problem) {
    if (problem)
        PyErr_SetString(PyExc_ValueError, problem);
    return problem != NULL;
}

/* offsets_problem() for a short table, with the GIL: True when fine, else a ValueError is set. */
static int offsets_fit(const int64_t *off, Py_ssize_t n, Py_ssize_t data_len) {
    return !raised(offsets_problem(off, n, data_len));
}

static int need(Py_buffer *view, Py_ssize_t bytes, const char *what) {
    if (view->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, %zd needed", what, view->len, bytes);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(clean_doc,
    "clean(data, offsets, valid, html, keep_lines, no_reference, names, name_len, chars, char_len,\n"
    "      nfc_safe, out, out_offsets, general, unnormalized) -> int\n\n"
    "Clean the rows of a string column: ``data`` its UTF-8 bytes, ``offsets`` (int64, n + 1) where\n"
    "each row starts in them (from 0), ``valid`` (n bytes) its non-null rows. Writes the cleaned\n"
    "bytes to ``out`` (at least len(data) bytes) and their offsets to ``out_offsets`` (int64, n + 1),\n"
    "sets ``general[i]`` for the rows this pass leaves to the general path (their output is empty)\n"
    "and ``unnormalized[i]`` for those NFC may change. Returns the number of bytes written.");

static PyObject *clean(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data, offsets, valid, no_ref, names, name_len, chars, char_len, nfc_safe;
    Py_buffer out, out_offsets, general, unnormalized;
    int html, keep_lines;
    if (!PyArg_ParseTuple(args, "y*y*y*ppy*y*y*y*y*y*w*w*w*w*", &data, &offsets, &valid, &html, &keep_lines,
                          &no_ref, &names, &name_len, &chars, &char_len, &nfc_safe, &out, &out_offsets,
                          &general, &unnormalized))
        return NULL;
    Py_buffer *views[] = {&data, &offsets, &valid, &no_ref, &names, &name_len, &chars,
                          &char_len, &nfc_safe, &out, &out_offsets, &general, &unnormalized};
    PyObject *result = NULL;
    Py_ssize_t n = offsets.len / 8 - 1;
    Tables t = {no_ref.buf, names.buf, name_len.buf, chars.buf, char_len.buf, name_len.len / 8, nfc_safe.buf};
    const int64_t *off = offsets.buf;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "offsets: at least one needed");
        goto done;
    }
    if (!need(&valid, n, "valid") || !need(&no_ref, 256, "no_reference") ||
        !need(&names, 8 * t.count, "names") || !need(&chars, 4 * t.count, "chars") ||
        !need(&char_len, 8 * t.count, "char_len") || !need(&nfc_safe, 0x10000, "nfc_safe") ||
        !need(&out, data.len, "out") || !need(&out_offsets, 8 * (n + 1), "out_offsets") ||
        !need(&general, n, "general") || !need(&unnormalized, n, "unnormalized"))
        goto done;
    for (Py_ssize_t k = 0; k < t.count; k++) {
        /* the loops decode in place: an entity must never grow, nor spell more than its 8 bytes */
        if (t.name_len[k] < 1 || t.name_len[k] > 8 || t.char_len[k] < 1 || t.char_len[k] > 4 ||
            t.char_len[k] > t.name_len[k]) {
            PyErr_Format(PyExc_ValueError, "entity %zd: name of %lld bytes, text of %lld", k,
                         (long long)t.name_len[k], (long long)t.char_len[k]);
            goto done;
        }
    }
    Py_ssize_t pos = 0;
    const char *problem;
    Py_BEGIN_ALLOW_THREADS
    problem = offsets_problem(off, n, data.len);
    const uint8_t *src = data.buf, *ok = valid.buf;
    uint8_t *dst = out.buf, *gen = general.buf, *unnorm = unnormalized.buf;
    int64_t *dst_off = out_offsets.buf;
    dst_off[0] = 0;
    /* rows with no work (most of a single-line column) are copied as they are, a run of them at once */
    Py_ssize_t work = -1, run_from = 0, run_len = 0;
    for (Py_ssize_t i = 0; i < n && !problem; i++) {
        gen[i] = unnorm[i] = 0;
        Py_ssize_t start = off[i], stop = off[i + 1];
        if (ok[i]) {
            if (!row_has_work(src, data.len, start, stop, &work)) {
                if (run_from + run_len != start) {
                    memcpy(dst + pos - run_len, src + run_from, (size_t)run_len);
                    run_from = start, run_len = 0;
                }
                run_len += stop - start;
                pos += stop - start;
                dst_off[i + 1] = pos;
                continue;
            }
        }
        memcpy(dst + pos - run_len, src + run_from, (size_t)run_len); /* before this row's own copy */
        run_from = stop, run_len = 0;
        if (ok[i]) {
            int flag;
            Py_ssize_t end = controls_and_entities(src, off[i], off[i + 1], dst, pos, &t);
            if (end >= 0 && html)
                end = strip_tags(dst, pos, end);
            if (end < 0) {
                gen[i] = 1;
            } else {
                pos = collapse_spaces(dst, pos, end, keep_lines, t.nfc_safe, &flag);
                unnorm[i] = (uint8_t)flag;
            }
        }
        dst_off[i + 1] = pos;
    }
    if (!problem)
        memcpy(dst + pos - run_len, src + run_from, (size_t)run_len);
    Py_END_ALLOW_THREADS
    if (raised(problem))
        goto done;
    result = PyLong_FromSsize_t(pos);
done:
    for (size_t k = 0; k < sizeof views / sizeof views[0]; k++)
        PyBuffer_Release(views[k]);
    return result;
}

/* ---- rows ---------------------------------------------------------------------------------- */

/* A copy of up to SHORT bytes is one unaligned 16-byte load and store (or two) rather than a call
 * to memcpy: the output buffer has SHORT bytes of slack at its end, and the source must have SHORT
 * readable bytes from the copy's start (padded tags; a value not among its buffer's last bytes). */
#define SHORT 32

/* How a field's value is written: */
enum {
    XML_ELEMENT = 0, /* an element, none for an empty value; & < > CR escaped (a repeated field: a comma
                        closes the element and opens the next) */
    CSV_QUOTED = 1,  /* always; a quote doubled (the field's open and close strings hold the quotes) */
    TSV_FLAT = 2,    /* always; a tab, CR, LF or CRLF becomes one space */
};

typedef struct {
    Py_buffer data, offsets;
    const char *open, *close; /* written before and after the value */
    Py_ssize_t open_len, close_len;
    int kind, repeated;
    uint8_t special[5]; /* the bytes the value's kind changes (repeated to fill) */
    int specials;       /* how many of special[] a scan compares: 1 (CSV), 3 (TSV) or 5 (XML) */
    const uint8_t *data_end;
    uint8_t open_pad[SHORT], close_pad[SHORT]; /* open and close, zero-padded (when they fit) */
} Field;

/* the text that stands for a byte in XML element content (NULL for the bytes written as they are) */
static const char *xml_escape[256];
static uint8_t xml_escape_len[256];

static void init_xml(void) {
    xml_escape['&'] = "&amp;";
    xml_escape['<'] = "&lt;";
    xml_escape['>'] = "&gt;";
    xml_escape['\r'] = "&#13;"; /* a raw CR would reach a parser as LF */
    for (int b = 0; b < 256; b++)
        xml_escape_len[b] = xml_escape[b] ? (uint8_t)strlen(xml_escape[b]) : 0;
}

static void set_special(Field *f) {
    static const uint8_t xml[5] = {'&', '<', '>', '\r', '&'}, csv[5] = {'"', '"', '"', '"', '"'},
                         tsv[5] = {'\t', '\r', '\n', '\t', '\t'};
    memcpy(f->special, f->kind == XML_ELEMENT ? xml : f->kind == CSV_QUOTED ? csv : tsv, 5);
    f->specials = f->kind == XML_ELEMENT ? 5 : f->kind == CSV_QUOTED ? 1 : 3;
    if (f->kind == XML_ELEMENT && f->repeated)
        f->special[4] = ',';
}

static inline int is_special(const Field *f, uint8_t b) {
    return b == f->special[0] || b == f->special[1] || b == f->special[2] || b == f->special[3] ||
           b == f->special[4];
}

/* The first byte at or after r that the field's kind changes, or len. Sixteen bytes at a time where
 * SSE2 is there (every x86-64); most values hold none. */
static inline Py_ssize_t next_special(const Field *f, const uint8_t *v, Py_ssize_t r, Py_ssize_t len) {
#if defined(__SSE2__)
    /* only as many comparisons as the kind has special bytes (a value is often one round) */
    const int n = f->specials;
    const __m128i s0 = _mm_set1_epi8((char)f->special[0]);
    __m128i s1 = s0, s2 = s0, s3 = s0, s4 = s0;
    if (n > 1) {
        s1 = _mm_set1_epi8((char)f->special[1]);
        s2 = _mm_set1_epi8((char)f->special[2]);
    }
    if (n > 3) {
        s3 = _mm_set1_epi8((char)f->special[3]);
        s4 = _mm_set1_epi8((char)f->special[4]);
    }
    while (r < len) {
        Py_ssize_t left = len - r;
        if (left < 16 && v + r + 16 > f->data_end)
            break; /* the last bytes of the buffer: one at a time */
        __m128i x = _mm_loadu_si128((const __m128i *)(v + r));
        __m128i hit = _mm_cmpeq_epi8(x, s0);
        if (n > 1)
            hit = _mm_or_si128(hit, _mm_or_si128(_mm_cmpeq_epi8(x, s1), _mm_cmpeq_epi8(x, s2)));
        if (n > 3)
            hit = _mm_or_si128(hit, _mm_or_si128(_mm_cmpeq_epi8(x, s3), _mm_cmpeq_epi8(x, s4)));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (left < 16)
            mask &= (1u << left) - 1; /* the bytes past the value belong to the next one */
        if (mask)
            return r + __builtin_ctz(mask);
        r += 16;
    }
#endif
    for (; r < len; r++)
        if (is_special(f, v[r]))
            return r;
    return len;
}

/* How many of v[0:len] are bytes XML escapes (& < > CR), and commas when count_commas: sixteen bytes
 * at a time, counted in byte lanes (emptied every 255 rounds) and summed by _mm_sad_epu8, no branch
 * per byte. */
static void count_xml_specials(const uint8_t *v, Py_ssize_t len, int count_commas, Py_ssize_t *escaped,
                               Py_ssize_t *commas) {
    Py_ssize_t r = 0, e = 0, c = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    while (r + 16 <= len) {
        __m128i lanes_e = zero, lanes_c = zero;
        for (int round = 0; round < 255 && r + 16 <= len; round++, r += 16) {
            __m128i x = load16(v + r);
            __m128i hit = _mm_or_si128(_mm_or_si128(byte_is(x, AMP), byte_is(x, LT)),
                                       _mm_or_si128(byte_is(x, GT), byte_is(x, CR)));
            lanes_e = _mm_sub_epi8(lanes_e, hit); /* a hit is -1 in its lane */
            if (count_commas)
                lanes_c = _mm_sub_epi8(lanes_c, byte_is(x, ','));
        }
        __m128i se = _mm_sad_epu8(lanes_e, zero), sc = _mm_sad_epu8(lanes_c, zero);
        e += _mm_cvtsi128_si64(se) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(se, se));
        c += _mm_cvtsi128_si64(sc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sc, sc));
    }
#endif
    for (; r < len; r++) {
        uint8_t b = v[r];
        e += b == AMP || b == LT || b == GT || b == CR;
        c += count_commas && b == ',';
    }
    *escaped = e;
    *commas = c;
}

/* At least the bytes the field's values take in n rows, with their open and close strings: its data
 * scanned whole, not value by value (exact but for TSV, where a CRLF inside a value takes one byte
 * less, and which needs no scan). Most bytes are not special, so this costs a fraction of a pass
 * over the values. */
static Py_ssize_t field_bound(const Field *f, Py_ssize_t n) {
    const int64_t *off = f->offsets.buf;
    const uint8_t *v = f->data.buf;
    Py_ssize_t len = (Py_ssize_t)off[n], size = len, values = n;
    if (f->kind == XML_ELEMENT) /* an empty value has no element */
        for (Py_ssize_t i = 0; i < n; i++)
            values -= off[i + 1] == off[i];
    size += values * (f->open_len + f->close_len);
    if (f->kind == TSV_FLAT) /* a tab, CR or LF becomes one space, a CRLF too: never longer */
        return size;
    if (f->kind == CSV_QUOTED) { /* one more byte per quote: counted by memchr, far faster on sparse quotes */
        for (const uint8_t *p = v, *e = v + len; p < e && (p = memchr(p, '"', (size_t)(e - p))); p++)
            size++;
        return size;
    }
    /* XML: at most 4 more bytes per escaped byte (&amp; and &#13; add 4, &lt; and &gt; 3), and a comma
     * of a repeated field closes the element and opens the next */
    Py_ssize_t escaped = 0, commas = 0;
    count_xml_specials(v, len, f->repeated, &escaped, &commas);
    return size + 4 * escaped + commas * (f->close_len + f->open_len - 1);
}

static uint8_t *put(uint8_t *w, const void *src, Py_ssize_t len) {
    memcpy(w, src, (size_t)len);
    return w + len;
}

/* put(), for a source with SHORT readable bytes from src when len <= SHORT (see SHORT). */
static inline uint8_t *put_short(uint8_t *w, const uint8_t *src, Py_ssize_t len) {
#if defined(__SSE2__)
    if (len <= SHORT) {
        _mm_storeu_si128((__m128i *)w, _mm_loadu_si128((const __m128i *)src));
        if (len > 16)
            _mm_storeu_si128((__m128i *)(w + 16), _mm_loadu_si128((const __m128i *)(src + 16)));
        return w + len;
    }
#endif
    return put(w, src, len);
}

static inline uint8_t *put_open(const Field *f, uint8_t *w) {
    return f->open_len <= SHORT ? put_short(w, f->open_pad, f->open_len) : put(w, f->open, f->open_len);
}

static inline uint8_t *put_close(const Field *f, uint8_t *w) {
    return f->close_len <= SHORT ? put_short(w, f->close_pad, f->close_len) : put(w, f->close, f->close_len);
}

/* A run of a value's bytes: whole 16-byte loads where SHORT bytes can be read from it. */
static inline uint8_t *put_run(const Field *f, uint8_t *w, const uint8_t *src, Py_ssize_t len) {
    return (len <= SHORT && src + SHORT <= f->data_end) ? put_short(w, src, len) : put(w, src, len);
}

static uint8_t *write_value(const Field *f, const uint8_t *v, Py_ssize_t len, uint8_t *w) {
    if (len == 0 && f->kind == XML_ELEMENT)
        return w;
    w = put_open(f, w);
    Py_ssize_t plain = 0; /* start of the run of bytes written as they are */
    for (Py_ssize_t r = next_special(f, v, 0, len); r < len; r = next_special(f, v, r + 1, len)) {
        uint8_t b = v[r];
        w = put_run(f, w, v + plain, r - plain);
        plain = r + 1;
        if (f->kind == CSV_QUOTED) {
            *w++ = '"';
            *w++ = '"';
        } else if (f->kind == TSV_FLAT) {
            *w++ = ' ';
            if (b == '\r' && r + 1 < len && v[r + 1] == '\n')
                plain = ++r + 1;
        } else if (xml_escape_len[b]) {
            w = put(w, xml_escape[b], xml_escape_len[b]);
        } else { /* a comma in a repeated XML field */
            w = put_close(f, w);
            w = put_open(f, w);
        }
    }
    w = put_run(f, w, v + plain, len - plain);
    return put_close(f, w);
}

PyDoc_STRVAR(rows_doc,
    "rows(fields, row_open, row_close, lengths, allocate, keep=None) -> buffer\n\n"
    "Every row of a table as one line: ``row_open``, each field's value as its kind writes it, then\n"
    "``row_close``. ``fields`` holds (data, offsets, open, close, kind, repeated) per field: ``data``\n"
    "the UTF-8 bytes, ``offsets`` (int64, n + 1, from 0) where each row's value lies in them, ``open``\n"
    "and ``close`` the bytes around the value. Kinds: 0, an XML element (none for an empty value; & <\n"
    "> and CR escaped; in a ``repeated`` field a comma closes the element and opens another); 1, a CSV\n"
    "value (quotes doubled); 2, a TSV value (a tab, CR, LF or CRLF becomes a space). Writes each row's\n"
    "length to ``lengths`` (int64, n) and returns ``allocate(size)``, a writable buffer whose first\n"
    "``sum(lengths)`` bytes hold the rows (the rest, 32 bytes or more, is scratch room). With ``keep``\n"
    "(a byte per row), only the rows it marks are written; the others get a length of 0.");

/* how many rows ahead rows() asks for a field's offsets and its values (see there) */
enum { PREFETCH_OFFSETS = 128, PREFETCH_VALUES = 16 };

static PyObject *rows(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *fields_arg, *allocate, *keep_arg = Py_None, *seq = NULL, *result = NULL;
    Py_buffer row_open, row_close, lengths, out = {0}, keep = {0};
    if (!PyArg_ParseTuple(args, "Oy*y*w*O|O", &fields_arg, &row_open, &row_close, &lengths, &allocate,
                          &keep_arg))
        return NULL;
    Py_ssize_t n = lengths.len / 8, count = 0, held = 0; /* fields whose buffers are held */
    Field *fields = NULL;
    if (keep_arg != Py_None) {
        if (PyObject_GetBuffer(keep_arg, &keep, PyBUF_SIMPLE) < 0)
            goto done;
        if (keep.len != n) {
            PyErr_Format(PyExc_ValueError, "keep holds %zd bytes for %zd rows", keep.len, n);
            goto done;
        }
    }
    const uint8_t *kept = keep.obj ? keep.buf : NULL;
    if (!(seq = PySequence_Fast(fields_arg, "fields must be a sequence")))
        goto done;
    count = PySequence_Fast_GET_SIZE(seq);
    if (!(fields = PyMem_Calloc((size_t)(count ? count : 1), sizeof(Field)))) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        Field *f = &fields[k];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k),
                              "y*y*y#y#ip;a field is (data, offsets, open, close, kind, repeated)", &f->data,
                              &f->offsets, &f->open, &f->open_len, &f->close, &f->close_len, &f->kind,
                              &f->repeated))
            goto done;
        held = k + 1;
        if (f->kind < XML_ELEMENT || f->kind > TSV_FLAT) {
            PyErr_Format(PyExc_ValueError, "unknown field kind %d", f->kind);
            goto done;
        }
        if (f->offsets.len != 8 * (n + 1)) {
            PyErr_SetString(PyExc_ValueError, "field offsets do not match the rows");
            goto done;
        }
        set_special(f);
        f->data_end = (const uint8_t *)f->data.buf + f->data.len;
        if (f->open_len <= SHORT)
            memcpy(f->open_pad, f->open, (size_t)f->open_len);
        if (f->close_len <= SHORT)
            memcpy(f->close_pad, f->close, (size_t)f->close_len);
    }
    int64_t *len = lengths.buf;
    Py_ssize_t bound = n * (row_open.len + row_close.len);
    const char *problem = NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count && !problem; k++)
        problem = offsets_problem(fields[k].offsets.buf, n, fields[k].data.len);
    for (Py_ssize_t k = 0; k < count && !problem; k++)
        bound += field_bound(&fields[k], n);
    Py_END_ALLOW_THREADS
    if (raised(problem))
        goto done;
    PyObject *buffer = PyObject_CallFunction(allocate, "n", bound + SHORT);
    if (!buffer)
        goto done;
    if (PyObject_GetBuffer(buffer, &out, PyBUF_WRITABLE) < 0 || out.len < bound + SHORT) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "allocate() returned a buffer too small");
        Py_DECREF(buffer);
        goto done;
    }
    uint8_t *w = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (kept && !kept[i]) { /* a row left out: nothing written (its prefetches are wasted) */
            len[i] = 0;
            continue;
        }
        uint8_t *row = w;
        w = put(w, row_open.buf, row_open.len);
        for (Py_ssize_t k = 0; k < count; k++) {
            const int64_t *off = fields[k].offsets.buf;
            /* Each row reads one value of every field: a few dozen streams at once, more than the
             * hardware prefetchers follow, so the loads of offsets and values stalled (a third of this
             * loop's samples). Asking ahead for the offsets 128 rows on and the value 16 rows on made
             * it a fifth to a quarter faster. */
            if (i + PREFETCH_OFFSETS < n)
                __builtin_prefetch(off + i + PREFETCH_OFFSETS);
            if (i + PREFETCH_VALUES < n)
                __builtin_prefetch((const uint8_t *)fields[k].data.buf + off[i + PREFETCH_VALUES]);
            w = write_value(&fields[k], (const uint8_t *)fields[k].data.buf + off[i], off[i + 1] - off[i], w);
        }
        w = put(w, row_close.buf, row_close.len);
        len[i] = w - row;
    }
    Py_END_ALLOW_THREADS
    if (w > (uint8_t *)out.buf + bound) { /* past the bound: a bug here, never the input */
        PyErr_Format(PyExc_RuntimeError, "rows wrote %zd bytes, bound %zd", w - (uint8_t *)out.buf, bound);
        Py_DECREF(buffer);
        goto done;
    }
    result = buffer;
done:
    if (out.obj)
        PyBuffer_Release(&out);
    if (keep.obj)
        PyBuffer_Release(&keep);
    for (Py_ssize_t k = 0; k < held; k++) {
        PyBuffer_Release(&fields[k].data);
        PyBuffer_Release(&fields[k].offsets);
    }
    PyMem_Free(fields);
    Py_XDECREF(seq);
    PyBuffer_Release(&row_open);
    PyBuffer_Release(&row_close);
    PyBuffer_Release(&lengths);
    return result;
}

/* ---- splice -------------------------------------------------------------------------------- */

PyDoc_STRVAR(splice_doc,
    "splice(data, offsets, rows, new_data, new_offsets, out, out_offsets) -> int\n\n"
    "A column of n values (``data`` the bytes, ``offsets`` int64, n + 1, from 0) with the values at\n"
    "``rows`` (int64, ascending, distinct) replaced by the values of ``new_data`` / ``new_offsets``\n"
    "(as many, in order): the bytes into ``out`` and the n + 1 offsets into ``out_offsets``. The rows\n"
    "between two replaced ones are copied in one go. Returns the bytes written.");

static PyObject *splice(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data, offsets, rows, new_data, new_offsets, out, out_offsets;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*w*", &data, &offsets, &rows, &new_data, &new_offsets, &out,
                          &out_offsets))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = offsets.len / 8 - 1, m = rows.len / 8, size = 0;
    const int64_t *off = offsets.buf, *at = rows.buf, *noff = new_offsets.buf;
    const char *problem = NULL;
    if (n < 0 || new_offsets.len != 8 * (m + 1) || out_offsets.len < 8 * (n + 1)) {
        PyErr_SetString(PyExc_ValueError, "splice: offsets need n + 1 entries, new_offsets one per row and one");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    problem = offsets_problem(off, n, data.len);
    if (!problem)
        problem = offsets_problem(noff, m, new_data.len);
    for (Py_ssize_t k = 0; k < m && !problem; k++)
        if (at[k] < 0 || at[k] >= n || (k && at[k] <= at[k - 1]))
            problem = "splice: rows must ascend, each within the column";
    if (!problem) { /* the size first: out must hold it */
        size = off[n] + noff[m];
        for (Py_ssize_t k = 0; k < m; k++)
            size -= off[at[k] + 1] - off[at[k]];
        if (size > out.len)
            problem = "splice: out too small";
    }
    if (!problem) {
        const uint8_t *src = data.buf, *rep = new_data.buf;
        uint8_t *w = out.buf;
        int64_t *woff = out_offsets.buf, shift = 0; /* how much later a kept row's bytes land */
        Py_ssize_t from = 0; /* the first row of the run not yet copied */
        for (Py_ssize_t k = 0; k <= m; k++) {
            Py_ssize_t to = k < m ? at[k] : n; /* the run of kept rows: from .. to - 1 */
            memcpy(w + off[from] + shift, src + off[from], (size_t)(off[to] - off[from]));
            for (Py_ssize_t i = from; i < to; i++)
                woff[i] = off[i] + shift;
            if (k == m)
                break;
            int64_t len = noff[k + 1] - noff[k];
            woff[to] = off[to] + shift;
            memcpy(w + woff[to], rep + noff[k], (size_t)len);
            shift += len - (off[to + 1] - off[to]);
            from = to + 1;
        }
        woff[n] = off[n] + shift;
    }
    Py_END_ALLOW_THREADS
    if (raised(problem))
        goto done;
    result = PyLong_FromSsize_t(size);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&new_data);
    PyBuffer_Release(&new_offsets);
    PyBuffer_Release(&out);
    PyBuffer_Release(&out_offsets);
    return result;
}

/* ---- passes over each value ------------------------------------------------------------------ */

/* What a pass makes of one value: written to out, the i-th of items of a fixed size. */
typedef void (*ValueFn)(const uint8_t *v, Py_ssize_t len, uint8_t *out, Py_ssize_t i);
/* a pass over the whole column at once: data (len bytes), n + 1 offsets, out */
typedef void (*ColumnFn)(const uint8_t *data, Py_ssize_t len, const int64_t *off, Py_ssize_t n, uint8_t *out);

/* The frame of a pass (data, offsets, out) -> None that maps each value to one item of out: by fn,
 * value by value, or by column over all the values at once. */
static PyObject *each_value(PyObject *args, const char *name, Py_ssize_t item_size, ValueFn fn,
                            ColumnFn column) {
    Py_buffer data, offsets, out;
    if (!PyArg_ParseTuple(args, "y*y*w*", &data, &offsets, &out))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = offsets.len / 8 - 1;
    const int64_t *off = offsets.buf;
    if (n < 0 || out.len < item_size * n) {
        PyErr_Format(PyExc_ValueError, "%s: offsets need n + 1 entries and out room for n values", name);
        goto done;
    }
    const char *problem;
    Py_BEGIN_ALLOW_THREADS
    problem = offsets_problem(off, n, data.len);
    const uint8_t *src = data.buf;
    if (!problem && column)
        column(src, data.len, off, n, out.buf);
    else if (!problem)
        for (Py_ssize_t i = 0; i < n; i++)
            fn(src + off[i], off[i + 1] - off[i], out.buf, i);
    Py_END_ALLOW_THREADS
    if (raised(problem))
        goto done;
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    return result;
}

/* ---- prices -------------------------------------------------------------------------------- */

enum { PRICE_OK = 0, PRICE_GENERAL = 1, PRICE_BLANK = 2, PRICE_ZERO = 3 };
#define PRICE_DIGITS 15 /* whole + minor digits: below 2**53, so int64 and float64 stay exact */

static inline int is_digit(uint8_t b) { return b >= '0' && b <= '9'; }

/* One price spelled as ASCII digits (optionally grouped by commas in threes), with an optional
 * fraction, in minor units of a currency with exp minor digits, rounded half up. */
static int parse_price(const uint8_t *v, Py_ssize_t len, int64_t exp, int64_t *minor) {
    if (len == 0)
        return PRICE_BLANK;
    if (exp < 0 || exp > 4)
        return PRICE_GENERAL;
    Py_ssize_t r = 0, digits = 0;
    int64_t whole = 0;
    while (r < len && is_digit(v[r])) {
        whole = digits < PRICE_DIGITS ? whole * 10 + (v[r] - '0') : whole;
        digits++, r++;
    }
    if (digits == 0)
        return PRICE_GENERAL;
    if (r < len && v[r] == ',') { /* 1,980 or 12,345,678: a first group of 1 to 3, then threes */
        if (digits > 3)
            return PRICE_GENERAL;
        while (r < len && v[r] == ',') {
            if (r + 3 >= len || !is_digit(v[r + 1]) || !is_digit(v[r + 2]) || !is_digit(v[r + 3]))
                return PRICE_GENERAL;
            for (int k = 1; k <= 3; k++, digits++)
                whole = digits < PRICE_DIGITS ? whole * 10 + (v[r + k] - '0') : whole;
            r += 4;
        }
    }
    Py_ssize_t fraction = r; /* where the fraction's digits start (none: == len) */
    if (r < len) {
        if (v[r] != '.' || r + 1 >= len)
            return PRICE_GENERAL;
        for (fraction = ++r; r < len; r++)
            if (!is_digit(v[r]))
                return PRICE_GENERAL;
    }
    if (digits > PRICE_DIGITS - exp)
        return PRICE_GENERAL;
    int64_t m = whole;
    for (int64_t k = 0; k < exp; k++)
        m = m * 10 + (fraction + k < len ? v[fraction + k] - '0' : 0);
    if (fraction + exp < len && v[fraction + exp] >= '5')
        m += 1;
    *minor = m;
    return m > 0 ? PRICE_OK : PRICE_ZERO;
}

PyDoc_STRVAR(prices_doc,
    "prices(data, offsets, exps, minor, status) -> None\n\n"
    "Parse each price (``data`` the bytes, ``offsets`` int64, n + 1, from 0) spelled as ASCII digits,\n"
    "optionally grouped by commas in threes, with an optional fraction, into minor units of a\n"
    "currency with ``exps[i]`` minor digits (int64; -1 for none), rounded half up, when the digits\n"
    "number at most 15. ``status`` (uint8): 0 parsed into ``minor`` (int64), 1 another spelling (or\n"
    "too many digits), 2 empty, 3 zero once rounded.");

static PyObject *prices(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data, offsets, exps, minor, status;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*", &data, &offsets, &exps, &minor, &status))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = offsets.len / 8 - 1;
    const int64_t *off = offsets.buf, *exp = exps.buf;
    if (n < 0 || exps.len < 8 * n || minor.len < 8 * n || status.len < n) {
        PyErr_SetString(PyExc_ValueError, "prices: offsets need n + 1 entries, exps, minor and status n");
        goto done;
    }
    const char *problem;
    Py_BEGIN_ALLOW_THREADS
    problem = offsets_problem(off, n, data.len);
    const uint8_t *src = data.buf;
    int64_t *m = minor.buf;
    uint8_t *st = status.buf;
    for (Py_ssize_t i = 0; i < n && !problem; i++) {
        m[i] = 0;
        st[i] = (uint8_t)parse_price(src + off[i], off[i + 1] - off[i], exp[i], &m[i]);
    }
    Py_END_ALLOW_THREADS
    if (raised(problem))
        goto done;
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&exps);
    PyBuffer_Release(&minor);
    PyBuffer_Release(&status);
    return result;
}

/* Write a positive amount of minor units with exp minor digits as "1980", "15.00", "0.05". */
static uint8_t *put_amount(uint8_t *w, int64_t minor, int64_t exp) {
    uint8_t digits[24];
    int count = 0;
    do { /* at least exp + 1 digits: the zeros a small amount needs before its minor digits */
        digits[count++] = (uint8_t)('0' + minor % 10);
        minor /= 10;
    } while (minor > 0 || count <= exp);
    while (count > 0) {
        *w++ = digits[--count];
        if (count == exp && exp > 0)
            *w++ = '.';
    }
    return w;
}

PyDoc_STRVAR(price_texts_doc,
    "price_texts(minor, exps, codes, parsed, code_data, code_offsets, out, out_offsets) -> int\n\n"
    "Each parsed price (``parsed[i]`` nonzero; ``minor`` int64 units, positive, of a currency with\n"
    "``exps[i]`` minor digits, 0 to 4) as ``1980 JPY`` or ``15.00 USD``: the amount, a space and code\n"
    "``codes[i]`` (int64) of ``code_data``/``code_offsets`` (int64, from 0); other rows empty. Writes the\n"
    "bytes to ``out`` (room for 22 bytes and a code per row) and n + 1 offsets to ``out_offsets``;\n"
    "returns the number of bytes written.");

static PyObject *price_texts(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer minor, exps, codes, parsed, code_data, code_offsets, out, out_offsets;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*w*w*", &minor, &exps, &codes, &parsed, &code_data, &code_offsets, &out,
                          &out_offsets))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = minor.len / 8, ncodes = code_offsets.len / 8 - 1, longest = 0;
    const int64_t *m = minor.buf, *e = exps.buf, *c = codes.buf, *coff = code_offsets.buf;
    const uint8_t *ok = parsed.buf;
    if (exps.len < 8 * n || codes.len < 8 * n || parsed.len < n || out_offsets.len < 8 * (n + 1) || ncodes < 0) {
        PyErr_SetString(PyExc_ValueError, "price_texts: minor, exps, codes and parsed need n entries");
        goto done;
    }
    if (!offsets_fit(coff, ncodes, code_data.len))
        goto done;
    for (Py_ssize_t k = 0; k < ncodes; k++)
        longest = coff[k + 1] - coff[k] > longest ? coff[k + 1] - coff[k] : longest;
    if (out.len < n * (22 + longest)) {
        PyErr_SetString(PyExc_ValueError, "price_texts: out too small");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ok[i] && (m[i] <= 0 || e[i] < 0 || e[i] > 4 || c[i] < 0 || c[i] >= ncodes)) {
            PyErr_Format(PyExc_ValueError, "price_texts: row %zd is not a parsed price", i);
            goto done;
        }
    }
    Py_ssize_t size;
    Py_BEGIN_ALLOW_THREADS
    uint8_t *w = out.buf, *start = out.buf;
    const uint8_t *names = code_data.buf;
    int64_t *off = out_offsets.buf;
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ok[i]) {
            w = put_amount(w, m[i], e[i]);
            *w++ = ' ';
            memcpy(w, names + coff[c[i]], (size_t)(coff[c[i] + 1] - coff[c[i]]));
            w += coff[c[i] + 1] - coff[c[i]];
        }
        off[i + 1] = w - start;
    }
    size = w - start;
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(size);
done:
    PyBuffer_Release(&minor);
    PyBuffer_Release(&exps);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&parsed);
    PyBuffer_Release(&code_data);
    PyBuffer_Release(&code_offsets);
    PyBuffer_Release(&out);
    PyBuffer_Release(&out_offsets);
    return result;
}

/* ---- urls ---------------------------------------------------------------------------------- */

/* What ends a URL's host: RE2's \s (tab, LF, FF, CR, space) or one of / ? # */
static inline int ends_host(uint8_t b) { return re2_space[b] || b == '/' || b == '?' || b == '#'; }

/* ^https?://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?$ as RE2 matches it (\s: tab, LF, FF, CR, space). */
static int is_url(const uint8_t *v, Py_ssize_t len) {
    Py_ssize_t p;
    if (len >= 7 && memcmp(v, "http://", 7) == 0)
        p = 7;
    else if (len >= 8 && memcmp(v, "https://", 8) == 0)
        p = 8;
    else
        return 0;
    Py_ssize_t q = p, dot = 0; /* the host is v[p:q]; it needs a dot with a byte on either side */
    for (; q < len && !ends_host(v[q]); q++)
        dot |= v[q] == '.' && q > p && q + 1 < len && !ends_host(v[q + 1]);
    if (!dot)
        return 0;
    if (q == len)
        return 1;
    if (re2_space[v[q]])
        return 0;
    for (q++; q < len; q++) /* after / ? or #: anything but whitespace */
        if (re2_space[v[q]])
            return 0;
    return 1;
}

PyDoc_STRVAR(urls_doc,
    "urls(data, offsets, out) -> None\n\n"
    "For each value (``data`` the bytes, ``offsets`` int64, n + 1, from 0), whether it is an absolute\n"
    "http(s) URL with a dotted host, as RE2 matches ``^https?://[^\\s/?#]+\\.[^\\s/?#]+([/?#]\\S*)?$``\n"
    "(``out``: one byte per value, 1 or 0).");

static void url_into(const uint8_t *v, Py_ssize_t len, uint8_t *out, Py_ssize_t i) {
    out[i] = (uint8_t)is_url(v, len);
}

/* A byte no item of a plain list of URLs holds: ASCII whitespace as Python's \s reads it, "," "|" ";",
 * and any non-ASCII byte (a list with one is left to the regex). */
static inline int list_stop(uint8_t b) {
    return b >= 0x80 || b == ',' || b == '|' || b == ';' || b == SP || (b >= 0x09 && b <= 0x0D) ||
           (b >= 0x1C && b <= 0x1F);
}

/* 1 where an ASCII value is http(s) URLs joined by single commas, each "://" followed by a part
 * without / ? or # that holds a dot with a byte on either side, as feedgen.catalog's plain-list
 * pattern matches it; 0 otherwise, and for any value with a non-ASCII byte. */
static int is_url_list(const uint8_t *v, Py_ssize_t len) {
    Py_ssize_t i = 0;
    for (;;) {
        Py_ssize_t p;
        if (len - i >= 7 && memcmp(v + i, "http://", 7) == 0)
            p = i + 7;
        else if (len - i >= 8 && memcmp(v + i, "https://", 8) == 0)
            p = i + 8;
        else
            return 0;
        Py_ssize_t end = p;
        while (end < len && !list_stop(v[end]))
            end++;
        int dot = 0; /* at k with p < k < end - 1, and no / ? # before it */
        for (Py_ssize_t k = p + 1; k < end - 1 && v[k] != '/' && v[k] != '?' && v[k] != '#' && !dot; k++)
            dot = v[k] == '.';
        if (!dot || (p < end && (v[p] == '/' || v[p] == '?' || v[p] == '#')))
            return 0;
        if (end == len)
            return 1;
        if (v[end] != ',')
            return 0;
        i = end + 1;
    }
}

static void url_list_into(const uint8_t *v, Py_ssize_t len, uint8_t *out, Py_ssize_t i) {
    out[i] = (uint8_t)is_url_list(v, len);
}

PyDoc_STRVAR(url_lists_doc,
    "url_lists(data, offsets, out) -> None\n\n"
    "For each value (``data`` the bytes, ``offsets`` int64, n + 1, from 0), 1 in ``out`` where it is an\n"
    "ASCII list of http(s) URLs joined by single commas, as feedgen.catalog's plain-list pattern\n"
    "matches it; 0 for anything else and for values with a non-ASCII byte.");

static PyObject *url_lists(PyObject *Py_UNUSED(self), PyObject *args) {
    return each_value(args, "url_lists", 1, url_list_into, NULL);
}

static PyObject *urls(PyObject *Py_UNUSED(self), PyObject *args) {
    return each_value(args, "urls", 1, url_into, NULL);
}

/* ---- hash64 ------------------------------------------------------------------------------- */

/* murmur3's finaliser: every input bit moves about half the output bits */
static inline uint64_t fmix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t hash_value(const uint8_t *v, Py_ssize_t len) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len, word;
    Py_ssize_t r = 0;
    for (; r + 8 <= len; r += 8) {
        memcpy(&word, v + r, 8);
        h = (h ^ fmix64(word)) * 0x9e3779b97f4a7c15ULL;
        h = (h << 31) | (h >> 33);
    }
    if (r < len) { /* the last 1 to 7 bytes, zero-padded (the length is in the seed) */
        word = 0;
        memcpy(&word, v + r, (size_t)(len - r));
        h = (h ^ fmix64(word)) * 0x9e3779b97f4a7c15ULL;
    }
    return fmix64(h);
}

PyDoc_STRVAR(hash64_doc,
    "hash64(data, offsets, out) -> None\n\n"
    "A 64-bit hash of each value (``data`` the bytes, ``offsets`` int64, n + 1, from 0) into ``out``\n"
    "(uint64, n): for telling values apart in memory, not a stable or cryptographic digest.");

static void commas_into(const uint8_t *v, Py_ssize_t len, uint8_t *out, Py_ssize_t i) {
    int64_t count = 0;
    for (const uint8_t *c = v; (c = memchr(c, ',', (size_t)(len - (c - v)))) != NULL; c++)
        count++;
    memcpy(out + 8 * i, &count, 8);
}

PyDoc_STRVAR(commas_doc,
    "commas(data, offsets, out) -> None\n\n"
    "How many commas each value holds (``data`` the bytes, ``offsets`` int64, n + 1, from 0), into\n"
    "``out`` (int64, n).");

static PyObject *commas(PyObject *Py_UNUSED(self), PyObject *args) {
    return each_value(args, "commas", 8, commas_into, NULL);
}

static void hash_into(const uint8_t *v, Py_ssize_t len, uint8_t *out, Py_ssize_t i) {
    uint64_t h = hash_value(v, len);
    memcpy(out + 8 * i, &h, 8);
}

static PyObject *hash64(PyObject *Py_UNUSED(self), PyObject *args) {
    return each_value(args, "hash64", 8, hash_into, NULL);
}

/* ---- GTINs -------------------------------------------------------------------------------- */

enum { GTIN_BAD = 0, GTIN_OK = 1, GTIN_OTHER = 2 };

/* A GTIN's verdict: blank is OK, 8, 12, 13 or 14 ASCII digits with a right GS1 check digit are OK,
 * other digit strings are BAD, and anything holding another byte is OTHER (for stdnum to judge). */
static void gtin_into(const uint8_t *v, Py_ssize_t len, uint8_t *out, Py_ssize_t i) {
    int sum = 0;
    for (Py_ssize_t k = 0; k < len; k++) {
        if (!is_digit(v[k])) {
            out[i] = GTIN_OTHER;
            return;
        }
        if (k < len - 1) /* the digit next to the check digit weighs 3, then 1, 3, ... to the left */
            sum += (v[k] - '0') * ((len - 2 - k) % 2 ? 1 : 3);
    }
    if (len == 0) {
        out[i] = GTIN_OK;
        return;
    }
    int sized = len == 8 || len == 12 || len == 13 || len == 14;
    out[i] = sized && (10 - sum % 10) % 10 == v[len - 1] - '0' ? GTIN_OK : GTIN_BAD;
}

PyDoc_STRVAR(gtins_doc,
    "gtins(data, offsets, out) -> None\n\n"
    "Per value (``data`` the bytes, ``offsets`` int64, n + 1, from 0), into ``out`` (n bytes): 1 for a\n"
    "blank or for 8, 12, 13 or 14 ASCII digits whose last is the GS1 check digit of the others, 0 for\n"
    "any other string of ASCII digits, 2 for a value holding any other byte.");

static PyObject *gtins(PyObject *Py_UNUSED(self), PyObject *args) {
    return each_value(args, "gtins", 1, gtin_into, NULL);
}

/* ---- seen -------------------------------------------------------------------------------- */

/* the slot marker of an empty slot; a hash equal to it is stored as EMPTY_STAND_IN */
#define EMPTY 0ULL
#define EMPTY_STAND_IN 0x9e3779b97f4a7c15ULL

PyDoc_STRVAR(seen_doc,
    "seen(hashes, present, table, out) -> int\n\n"
    "For each of ``hashes`` (uint64, n) where ``present`` (n bytes) is 1, in order: 1 in ``out`` (n\n"
    "bytes) when ``table`` holds it already, else 0 and it goes into ``table``; 0 in ``out`` where\n"
    "``present`` is 0. ``table``: uint64, a power of two of slots, 0 for an empty one; the hashes\n"
    "are taken as they are, so they must be spread, as hash64's are. Returns how many hashes went\n"
    "in; raises ValueError when one finds no slot (keep the table at most half full).");

static PyObject *seen(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer hashes, present, table, out;
    if (!PyArg_ParseTuple(args, "y*y*w*w*", &hashes, &present, &table, &out))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = hashes.len / 8, slots = table.len / 8, added = 0;
    if (hashes.len % 8 || present.len != n || out.len != n) {
        PyErr_SetString(PyExc_ValueError, "seen: hashes, present and out must hold as many items");
        goto done;
    }
    if (slots < 2 || (slots & (slots - 1)) || table.len % 8) {
        PyErr_SetString(PyExc_ValueError, "seen: table must be a power of two of 8-byte slots");
        goto done;
    }
    const uint64_t *h = hashes.buf;
    const uint8_t *p = present.buf;
    uint64_t *t = table.buf;
    uint8_t *o = out.buf;
    uint64_t mask = (uint64_t)slots - 1;
    const char *problem = NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !problem; i++) {
        o[i] = 0;
        if (!p[i])
            continue;
        uint64_t key = h[i] == EMPTY ? EMPTY_STAND_IN : h[i], at = key & mask;
        Py_ssize_t probes = 0; /* linear probing, never more than once round the table */
        while (t[at] != EMPTY && t[at] != key && ++probes < slots)
            at = (at + 1) & mask;
        if (t[at] == key)
            o[i] = 1;
        else if (t[at] == EMPTY) {
            t[at] = key;
            added++;
        } else
            problem = "seen: table full; give a larger one";
    }
    Py_END_ALLOW_THREADS
    if (raised(problem))
        goto done;
    result = PyLong_FromSsize_t(added);
done:
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&present);
    PyBuffer_Release(&table);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(work_doc,
    "work(data, offsets, out) -> None\n\n"
    "For each value (``data`` the bytes, ``offsets`` int64, n + 1, from 0), 1 in ``out`` (n bytes) where\n"
    "clean() may change it without HTML, 0 where it would copy it as it is.");

/* work(): one scan over the column (sixteen bytes at a time, across row ends), as clean() copies rows */
static void work_column(const uint8_t *src, Py_ssize_t len, const int64_t *off, Py_ssize_t n, uint8_t *flag) {
    Py_ssize_t next = -1;
    for (Py_ssize_t i = 0; i < n; i++)
        flag[i] = (uint8_t)row_has_work(src, len, off[i], off[i + 1], &next);
}

static PyObject *work(PyObject *Py_UNUSED(self), PyObject *args) {
    return each_value(args, "work", 1, NULL, work_column);
}

static PyMethodDef methods[] = {
    {"clean", clean, METH_VARARGS, clean_doc},
    {"rows", rows, METH_VARARGS, rows_doc},
    {"hash64", hash64, METH_VARARGS, hash64_doc},
    {"prices", prices, METH_VARARGS, prices_doc},
    {"urls", urls, METH_VARARGS, urls_doc},
    {"commas", commas, METH_VARARGS, commas_doc},
    {"work", work, METH_VARARGS, work_doc},
    {"gtins", gtins, METH_VARARGS, gtins_doc},
    {"price_texts", price_texts, METH_VARARGS, price_texts_doc},
    {"url_lists", url_lists, METH_VARARGS, url_lists_doc},
    {"seen", seen, METH_VARARGS, seen_doc},
    {"splice", splice, METH_VARARGS, splice_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "feedgen._speedups",
    .m_doc = "The compiled passes of feedgen: text cleaning, feed rows, id hashes.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    init_bytes();
    init_xml();
    init_masks();
    return PyModule_Create(&module);
}
