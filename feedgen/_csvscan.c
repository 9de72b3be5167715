/* The compiled CSV reader of feedgen.sources: the common case of a UTF-8 file, read by two passes.
 *
 * scan() finds the fields of whole rows in a buffer of the file's bytes: where each value starts and
 * ends (inside its quotes, if quoted), and how many bytes each column's values take. fill() then
 * copies the values into one Arrow large_string column each (a data buffer and int64 offsets),
 * collapsing doubled quotes. Both run without the GIL.
 *
 * scan() takes only what it reads exactly as Arrow's CSV parser does with feedgen's options
 * (quote '"', doubled quotes, newlines inside quoted values, empty lines skipped): a value either
 * quoted from its first byte to a closing quote right before a delimiter or a line end, or unquoted
 * without any quote; every row with the header's number of columns; valid UTF-8. At the first row
 * that is anything else it stops and says so, and feedgen.sources reads the rest of the file with
 * Arrow's own reader, which then reads or rejects that row as it always has. The tests hold the two
 * readers to the same tables.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LF 0x0A
#define CR 0x0D
#define QUOTE 0x22

enum { ROWS_DONE = 0, IRREGULAR = 1 };

/* The first byte at or after r (before end) that is the delimiter, a quote, CR or LF; end if none. */
static inline Py_ssize_t next_stop(const uint8_t *d, Py_ssize_t r, Py_ssize_t end, uint8_t delim) {
#if defined(__SSE2__)
    const __m128i dl = _mm_set1_epi8((char)delim), q = _mm_set1_epi8(QUOTE), cr = _mm_set1_epi8(CR),
                  lf = _mm_set1_epi8(LF);
    for (; r + 16 <= end; r += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(d + r));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, dl), _mm_cmpeq_epi8(x, q)),
                                   _mm_or_si128(_mm_cmpeq_epi8(x, cr), _mm_cmpeq_epi8(x, lf)));
        int mask = _mm_movemask_epi8(hit);
        if (mask)
            return r + __builtin_ctz((unsigned)mask);
    }
#endif
    for (; r < end; r++) {
        uint8_t b = d[r];
        if (b == delim || b == QUOTE || b == CR || b == LF)
            return r;
    }
    return end;
}

/* The first quote at or after r (before end); end if none. Inline: most quoted values are short. */
static inline Py_ssize_t next_quote(const uint8_t *d, Py_ssize_t r, Py_ssize_t end) {
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8(QUOTE);
    for (; r + 16 <= end; r += 16) {
        int mask = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(d + r)), q));
        if (mask)
            return r + __builtin_ctz((unsigned)mask);
    }
#endif
    for (; r < end; r++)
        if (d[r] == QUOTE)
            return r;
    return end;
}

/* True when d[start:stop] is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static int valid_utf8(const uint8_t *d, Py_ssize_t r, Py_ssize_t stop) {
    while (r < stop) {
#if defined(__SSE2__)
        if (r + 16 <= stop && !_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(d + r)))) {
            r += 16;
            continue;
        }
#endif
        uint8_t b = d[r];
        if (b < 0x80) {
            r++;
            continue;
        }
        Py_ssize_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
        if (b >= 0xC2 && b <= 0xDF)
            need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0)
                lo = 0xA0;
            else if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0)
                lo = 0x90;
            else if (b == 0xF4)
                hi = 0x8F;
        } else
            return 0;
        if (stop - r - 1 < need || d[r + 1] < lo || d[r + 1] > hi)
            return 0;
        for (Py_ssize_t k = 2; k <= need; k++)
            if ((d[r + k] & 0xC0) != 0x80)
                return 0;
        r += need + 1;
    }
    return 1;
}

typedef struct {
    const uint8_t *d;
    Py_ssize_t n;   /* bytes in the buffer */
    int final;      /* the buffer ends where the file ends */
    uint8_t delim;
    Py_ssize_t ncols;
} Input;

/* Parse one row starting at p (not an empty line). Writes each field's span to spans (begin, end;
 * begin stored as -(begin + 1) for a quoted value holding doubled quotes) and its length in the
 * file (doubled quotes counted twice) to len. Returns the position after the row's line end, -1 for "the buffer ends inside the row"
 * and -2 for a row scan() does not take. */
static Py_ssize_t row_at(const Input *in, Py_ssize_t p, int64_t *spans, int64_t *len) {
    const uint8_t *d = in->d;
    Py_ssize_t n = in->n;
    for (Py_ssize_t c = 0; c < in->ncols; c++) {
        Py_ssize_t begin, end, after; /* after: the position of the byte ending the field */
        int64_t doubled = 0;
        if (p < n && d[p] == QUOTE) {
            begin = p + 1;
            Py_ssize_t q = begin;
            for (;;) {
                Py_ssize_t k = next_quote(d, q, n);
                if (k == n)
                    return in->final ? -2 : -1; /* no closing quote */
                if (k + 1 == n) {
                    if (!in->final)
                        return -1; /* a doubled quote or a closing one: the next byte tells */
                    end = k, after = n;
                    break;
                }
                if (d[k + 1] == QUOTE) {
                    doubled++;
                    q = k + 2;
                    continue;
                }
                end = k, after = k + 1;
                break;
            }
            if (after < n && d[after] != in->delim && d[after] != CR && d[after] != LF)
                return -2; /* bytes after the closing quote */
        } else {
            begin = p;
            after = end = next_stop(d, p, n, in->delim);
            if (after == n && !in->final)
                return -1;
            if (after < n && d[after] == QUOTE)
                return -2; /* a quote inside an unquoted value */
        }
        spans[2 * c] = doubled ? -(int64_t)begin - 1 : (int64_t)begin;
        spans[2 * c + 1] = end;
        len[c] = (int64_t)(end - begin); /* doubled quotes included: room enough for the value */
        int last = c == in->ncols - 1;
        if (after == n) /* the file's last row, without a line end */
            return last ? n : -2;
        if (d[after] == in->delim) {
            p = after + 1; /* after the last column: the loop ends, and so does the row */
            continue;
        }
        if (!last)
            return -2; /* fewer columns than the header */
        return d[after] == CR && after + 1 < n && d[after + 1] == LF ? after + 2 : after + 1;
    }
    return -2; /* more columns than the header */
}

PyDoc_STRVAR(scan_doc,
    "scan(data, pos, final, delimiter, ncols, spans, row, max_rows, sizes) -> (row, pos, irregular)\n\n"
    "Find the fields of the rows of ``data`` (UTF-8 CSV bytes) from ``pos``, a row's start: empty\n"
    "lines are skipped; each row's fields go to ``spans`` (int64, 2 per field, from row ``row`` on)\n"
    "and each value's length in the file is added to its column's total in ``sizes`` (int64,\n"
    "``ncols``; room enough for the values: a doubled quote becomes one). Stops\n"
    "after row ``max_rows``, at the end of the last whole row in ``data`` (``final``: ``data`` ends\n"
    "where the file does, so its last row needs no line end), or before a row it does not take\n"
    "(``irregular`` true). Returns the rows found so far and the position after the last.");

static PyObject *scan(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data, spans, sizes;
    Py_ssize_t pos, ncols, row, max_rows;
    int final;
    unsigned char delim;
    if (!PyArg_ParseTuple(args, "y*npbnw*nnw*", &data, &pos, &final, &delim, &ncols, &spans, &row, &max_rows,
                          &sizes))
        return NULL;
    PyObject *result = NULL;
    if (ncols < 1 || pos < 0 || pos > data.len || row < 0 || sizes.len < 8 * ncols ||
        spans.len / (16 * ncols) < max_rows || row > max_rows || delim == QUOTE || delim == CR || delim == LF) {
        PyErr_SetString(PyExc_ValueError, "scan: arguments out of range");
        goto done;
    }
    Input in = {data.buf, data.len, final, delim, ncols};
    int64_t *span = spans.buf, *size = sizes.buf;
    int irregular = 0;
    int64_t *len = PyMem_Malloc((size_t)ncols * sizeof(int64_t));
    if (!len) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    while (row < max_rows) {
        const uint8_t *d = in.d;
        while (pos < in.n && (d[pos] == LF || d[pos] == CR))
            pos++; /* empty lines */
        if (pos == in.n)
            break;
        Py_ssize_t next = row_at(&in, pos, span + 2 * ncols * row, len);
        if (next == -1)
            break;
        if (next == -2 || !valid_utf8(d, pos, next)) {
            irregular = 1;
            break;
        }
        for (Py_ssize_t c = 0; c < ncols; c++)
            size[c] += len[c];
        row++;
        pos = next;
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(len);
    result = Py_BuildValue("nnO", row, pos, irregular ? Py_True : Py_False);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&spans);
    PyBuffer_Release(&sizes);
    return result;
}

typedef struct {
    uint8_t *start, *w, *limit; /* a column's data buffer, where the next value goes, its end */
    int64_t *off;
} Column;

static inline uint8_t *copy(uint8_t *w, const uint8_t *src, Py_ssize_t len) {
    memcpy(w, src, (size_t)len);
    return w + len;
}

/* Copy a quoted value's inside, each doubled quote as one. */
static uint8_t *unquote(uint8_t *w, const uint8_t *src, Py_ssize_t len) {
    const uint8_t *end = src + len;
    while (src < end) {
        const uint8_t *q = memchr(src, QUOTE, (size_t)(end - src));
        if (!q)
            return copy(w, src, end - src);
        w = copy(w, src, q - src + 1); /* up to and with the first quote of the pair */
        src = q + 2;
    }
    return w;
}

PyDoc_STRVAR(fill_doc,
    "fill(data, spans, rows, columns)\n\n"
    "Copy the values ``scan`` found (``rows`` rows of ``spans`` over ``data``) into ``columns``: per\n"
    "column a (data, offsets) pair of writable buffers, the data at least the column's total from\n"
    "``scan``'s ``sizes``, the offsets int64 of rows + 1. Doubled quotes become one.");

static PyObject *fill(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data, spans;
    Py_ssize_t rows;
    PyObject *columns, *seq = NULL, *result = NULL;
    Py_buffer *outs = NULL;
    Py_ssize_t held = 0, ncols = 0;
    if (!PyArg_ParseTuple(args, "y*y*nO", &data, &spans, &rows, &columns))
        return NULL;
    if (!(seq = PySequence_Fast(columns, "columns must be a sequence")))
        goto done;
    ncols = PySequence_Fast_GET_SIZE(seq);
    if (ncols < 1 || rows < 0 || spans.len / (16 * ncols) < rows) {
        PyErr_SetString(PyExc_ValueError, "fill: spans do not hold the rows");
        goto done;
    }
    if (!(outs = PyMem_Calloc((size_t)(2 * ncols), sizeof(Py_buffer)))) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < ncols; c++) {
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, c), "w*w*;a column is (data, offsets)", &outs[2 * c],
                              &outs[2 * c + 1]))
            goto done;
        held = c + 1;
        if (outs[2 * c + 1].len < 8 * (rows + 1)) {
            PyErr_SetString(PyExc_ValueError, "fill: offsets too short");
            goto done;
        }
    }
    const int64_t *span = spans.buf;
    int too_small = 0, outside = 0;
    Column *col = PyMem_Calloc((size_t)ncols, sizeof(Column));
    if (!col) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < ncols; c++) {
        col[c].start = col[c].w = outs[2 * c].buf;
        col[c].limit = col[c].start + outs[2 * c].len;
        col[c].off = outs[2 * c + 1].buf;
        col[c].off[0] = 0;
    }
    Py_BEGIN_ALLOW_THREADS
    /* row by row, so the source is read once, in order, while each column's output grows */
    const uint8_t *d = data.buf;
    for (Py_ssize_t i = 0; i < rows && !too_small && !outside; i++) {
        const int64_t *at = span + 2 * ncols * i;
        for (Py_ssize_t c = 0; c < ncols; c++) {
            int64_t b = at[2 * c], e = at[2 * c + 1], begin = b < 0 ? -b - 1 : b;
            Column *k = &col[c];
            if (begin > e || e > data.len) {
                outside = 1; /* not spans scan() made */
                break;
            }
            if (k->w + (e - begin) > k->limit) { /* doubled quotes only make a value shorter */
                too_small = 1;
                break;
            }
            k->w = b >= 0 ? copy(k->w, d + b, e - b) : unquote(k->w, d + begin, e - begin);
            k->off[i + 1] = k->w - k->start;
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(col);
    if (too_small || outside) {
        PyErr_SetString(PyExc_ValueError, outside ? "fill: a span lies outside data"
                                                  : "fill: a column's data buffer is too small");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t c = 0; c < held; c++) {
        PyBuffer_Release(&outs[2 * c]);
        PyBuffer_Release(&outs[2 * c + 1]);
    }
    PyMem_Free(outs);
    Py_XDECREF(seq);
    PyBuffer_Release(&data);
    PyBuffer_Release(&spans);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"fill", fill, METH_VARARGS, fill_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "feedgen._csvscan",
    .m_doc = "The compiled CSV reader of feedgen.sources: scan() finds the fields, fill() copies them.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__csvscan(void) { return PyModule_Create(&module); }
