/* data.c — in-memory arrays and the files they come from: IDX (MNIST),
 * NumPy .npy, HDF5 datasets and CSV.
 *
 * IDX: a 4-byte magic (0, 0, type code, rank), rank big-endian uint32
 * dimensions, then the elements big-endian in row-major order. It is read
 * through zlib's gzread, which passes plain files through, so .gz and plain
 * files are one path. Rank-1 integer files are labels and become int32; all
 * other files become float32 multiplied by `scale` (images: 1/255). The data
 * is read in growing chunks, so a header that claims more than the file holds
 * costs no more memory than the file, and the file must end exactly where
 * the header says.
 *
 * .npy: "\x93NUMPY", version (1.0: 16-bit header length, 2.0/3.0: 32-bit),
 * then a Python dict literal {'descr', 'fortran_order', 'shape'} and the raw
 * C-order data. Loading accepts little-endian f4, f8, i1, i4, i8, u1 and
 * bool; floats become float32 and integers int32 (out of range is an error).
 * Saving writes version 1.0, header padded with spaces and '\n' to a multiple
 * of 64 bytes, through a temporary file renamed into place. The header's
 * lengths are checked against the file's size before anything is allocated
 * (a 192-byte file declaring gigabytes is "truncated", not "out of memory");
 * from a pipe, the data is read in growing chunks as IDX's is.
 *
 * HDF5: one dataset per array, named by its path in the file (h5py's
 * f["x_train"]); float types are read as float32 and integer types as
 * 64-bit then narrowed to int32 with a range check (HDF5 itself would clamp
 * silently); HDF5 converts byte order and chunked or compressed layouts. A
 * contiguous dataset's extent must end within the file before its memory is
 * allocated (chunked data may be compressed, so its size is not bounded so).
 *
 * CSV: read line by line with gzgets (gzipped or plain alike). skip_rows
 * lines go unread, then the header when there is one; blank lines are
 * skipped anywhere. A line splits on the delimiter (' ': any run of blanks)
 * into fields with surrounding blanks dropped and "quotes" removed; the first
 * line fixes the column count and resolves the x and y column names. Every
 * field of every row must be a finite number (strtod, so the C locale's
 * '.'); only the x and y columns are kept, as doubles, one row of x columns
 * then y columns per line. A split shuffles the row indices (nnrt_shuffle,
 * seeded with the source's seed) and cuts them into train, validation and
 * test runs; StandardScaler's mean and population std come from the training
 * run in double, and each part is then converted to float32 arrays, one per
 * column group.
 *
 * Invariants: byte order is decoded explicitly, so the host's does not
 * matter; *out (parts) is written only on success; every failure leaves one
 * line in err naming the file (and for CSV the line).
 */
#define _POSIX_C_SOURCE 200809L
#include "nnrt.h"
#include "h5open.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define READ_CHUNK ((size_t)1 << 20)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void nnrt_array_free(NnrtArray *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

size_t nnrt_array_count(const NnrtArray *a)
{
    if (!a)
        return 0;
    size_t n = 1;
    for (int i = 0; i < a->rank; i++)
        n *= (size_t)a->shape[i];
    return n;
}

void nnrt_dataset_free(NnrtDataset *d)
{
    if (!d)
        return;
    for (int i = 0; i < NNRT_MAX_IO; i++) {
        if (d->x[i].data)
            nnrt_array_free(&d->x[i]);
        if (d->y[i].data)
            nnrt_array_free(&d->y[i]);
    }
    d->n = 0;
}

/* Product of dims[0..rank) and that times elem_size, or -1 on overflow. */
static int checked_size(int rank, const int64_t *dims, size_t elem_size, size_t *count, size_t *bytes)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || (dims[i] > 0 && n > SIZE_MAX / 8 / (size_t)dims[i]))
            return -1;
        n *= (size_t)dims[i];
    }
    *count = n;
    *bytes = n * elem_size;
    return 0;
}

static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t load_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static uint64_t load_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static float float_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static double double_from_bits(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Bytes between f's position and its end, or -1 when f is not a regular
 * file (a pipe: its size is unknown until read). */
static long long bytes_left(FILE *f)
{
    struct stat st;
    long here = ftell(f);
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || here < 0)
        return -1;
    return st.st_size > here ? (long long)st.st_size - here : 0;
}

/* fread exactly want bytes into a buffer grown chunk by chunk, so that a
 * header claiming more than a pipe delivers costs no more than what came;
 * *got is what was there. Returns 0, -1 (read error) or -2 (out of memory). */
static int file_read_all(FILE *f, size_t want, unsigned char **out, size_t *got)
{
    unsigned char *buf = NULL;
    size_t cap = 0, have = 0;
    while (have < want) {
        if (have == cap) {
            size_t grow = want - cap < READ_CHUNK ? want - cap : (cap > READ_CHUNK ? cap : READ_CHUNK);
            unsigned char *bigger = realloc(buf, cap + grow);
            if (!bigger) {
                free(buf);
                return -2;
            }
            buf = bigger;
            cap += grow;
        }
        size_t n = fread(buf + have, 1, cap - have, f);
        if (n == 0)
            break;
        have += n;
    }
    if (ferror(f)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *got = have;
    return 0;
}

/* ---- IDX ---------------------------------------------------------------- */

/* Bytes per element of an IDX type code, 0 if unknown. */
static size_t idx_elem_size(int code)
{
    switch (code) {
    case 0x08: return 1;         /* unsigned byte */
    case 0x09: return 1;         /* signed byte */
    case 0x0B: return 2;         /* short */
    case 0x0C: return 4;         /* int */
    case 0x0D: return 4;         /* float */
    case 0x0E: return 8;         /* double */
    }
    return 0;
}

/* Element i of IDX data of type code as a double. */
static double idx_value(const unsigned char *raw, size_t i, int code)
{
    switch (code) {
    case 0x08: return raw[i];
    case 0x09: return (signed char)raw[i];
    case 0x0B: return (int16_t)load_be(raw + 2 * i, 2);
    case 0x0C: return (int32_t)load_be(raw + 4 * i, 4);
    case 0x0D: return float_from_bits((uint32_t)load_be(raw + 4 * i, 4));
    case 0x0E: return double_from_bits(load_be(raw + 8 * i, 8));
    }
    return 0;
}

/* gzread exactly want bytes into a buffer grown chunk by chunk; *got is what
 * the file held (less than want when truncated). Returns 0, -1 (read error,
 * message in err) or -2 (out of memory). */
static int gz_read_all(gzFile gz, size_t want, unsigned char **out, size_t *got,
                       const char *path, char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t cap = 0, have = 0;
    while (have < want) {
        if (have == cap) {
            size_t grow = want - cap < READ_CHUNK ? want - cap : (cap > READ_CHUNK ? cap : READ_CHUNK);
            unsigned char *bigger = realloc(buf, cap + grow);
            if (!bigger) {
                free(buf);
                return -2;
            }
            buf = bigger;
            cap += grow;
        }
        size_t ask = cap - have < (size_t)INT_MAX ? cap - have : (size_t)INT_MAX;
        int n = gzread(gz, buf + have, (unsigned)ask);
        if (n < 0) {
            int code;
            const char *msg = gzerror(gz, &code);
            if (code == Z_BUF_ERROR)
                break;           /* gzip stream cut short: the caller reports truncation */
            set_err(err, errlen, "%s: read error: %s", path, code == Z_ERRNO ? strerror(errno) : msg);
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    *out = buf;
    *got = have;
    return 0;
}

int nnrt_idx_load(const char *path, float scale, NnrtArray *out, char *err, size_t errlen)
{
    int rc = NNRT_EINVAL;
    gzFile gz = NULL;
    unsigned char *raw = NULL;
    void *data = NULL;
    unsigned char head[4], dimbuf[4 * 255];
    NnrtArray a = {0};

    if (err && errlen)
        err[0] = '\0';
    if (!path || !out) {
        set_err(err, errlen, "nnrt_idx_load: bad arguments");
        return NNRT_EINVAL;
    }
    rc = NNRT_EIO;
    errno = 0;
    if (!(gz = gzopen(path, "rb"))) {
        set_err(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot open");
        goto fail;
    }
    if (gzbuffer(gz, 1 << 17) < 0) {
        set_err(err, errlen, "%s: cannot set the read buffer", path);
        goto fail;
    }
    rc = NNRT_EFORMAT;
    int got_head = gzread(gz, head, 4);
    if (got_head < 4) {
        int zcode;
        const char *msg = gzerror(gz, &zcode);
        set_err(err, errlen, "%s: %s", path, got_head >= 0 ? "too short for an IDX file"
                : zcode == Z_ERRNO ? strerror(errno) : msg);
        goto fail;
    }
    int code = head[2], rank = head[3];
    size_t elem = idx_elem_size(code);
    if (head[0] || head[1] || !elem) {
        set_err(err, errlen, "%s: not an IDX file (magic %02x %02x %02x %02x; expected 00 00 <type> <rank>, "
                "e.g. 00 00 08 03 for MNIST images)", path, head[0], head[1], head[2], head[3]);
        goto fail;
    }
    if (rank < 1 || rank > NNRT_MAX_RANK) {
        set_err(err, errlen, "%s: IDX rank %d is not supported (1 to %d)", path, rank, NNRT_MAX_RANK);
        goto fail;
    }
    if (gzread(gz, dimbuf, 4u * (unsigned)rank) != 4 * rank) {
        set_err(err, errlen, "%s: truncated IDX header (%d dimensions expected)", path, rank);
        goto fail;
    }
    a.rank = rank;
    for (int i = 0; i < rank; i++)
        a.shape[i] = load_be32(dimbuf + 4 * i);
    size_t count, bytes;
    if (checked_size(rank, a.shape, elem, &count, &bytes) < 0) {
        set_err(err, errlen, "%s: IDX dimensions too large", path);
        goto fail;
    }
    struct stat st;  /* a plain (not gzipped) file: its size is known before reading */
    size_t data_at = 4 + 4 * (size_t)rank;
    if (gzdirect(gz) && stat(path, &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size >= data_at &&
        (unsigned long long)st.st_size - data_at < bytes) {
        set_err(err, errlen, "%s: truncated IDX file: the header declares %zu elements (%zu bytes of data), the "
                "file has %llu", path, count, bytes, (unsigned long long)st.st_size - data_at);
        goto fail;
    }
    size_t got = 0;
    int r = gz_read_all(gz, bytes, &raw, &got, path, err, errlen);
    if (r < 0) {
        rc = r == -2 ? NNRT_ENOMEM : NNRT_EIO;
        goto fail;
    }
    if (got < bytes) {
        set_err(err, errlen, "%s: truncated IDX file: the header declares %zu elements (%zu bytes of data) "
                "but only %zu bytes follow", path, count, bytes, got);
        goto fail;
    }
    unsigned char extra;
    int more = gzread(gz, &extra, 1);
    if (more != 0) {
        set_err(err, errlen, more < 0 ? "%s: read error after the data (damaged gzip stream?)"
                : "%s: IDX file is longer than its header declares (%zu bytes of data); wrong header?",
                path, bytes);
        goto fail;
    }

    rc = NNRT_ENOMEM;
    int labels = rank == 1 && code != 0x0D && code != 0x0E;
    if (!(data = malloc((count ? count : 1) * 4))) {
        set_err(err, errlen, "%s: out of memory (%zu elements)", path, count);
        goto fail;
    }
    if (labels) {
        int32_t *y = data;
        for (size_t i = 0; i < count; i++)
            y[i] = (int32_t)idx_value(raw, i, code);
        a.dtype = NNRT_I32;
    } else {
        float *x = data;
        if (code == 0x08)        /* the common case, without the generic decode */
            for (size_t i = 0; i < count; i++)
                x[i] = raw[i] * scale;
        else
            for (size_t i = 0; i < count; i++)
                x[i] = (float)(idx_value(raw, i, code) * scale);
        a.dtype = NNRT_F32;
    }
    a.data = data;
    data = NULL;
    *out = a;
    rc = NNRT_OK;
fail:
    if (gz)
        gzclose(gz);
    free(raw);
    free(data);
    return rc;
}

/* ---- .npy --------------------------------------------------------------- */

/* The supported descr kinds. */
typedef enum { NPY_F4, NPY_F8, NPY_I1, NPY_I4, NPY_I8, NPY_U1, NPY_B1 } NpyKind;

static const struct { const char *descr; NpyKind kind; size_t size; } npy_types[] = {
    {"<f4", NPY_F4, 4}, {"<f8", NPY_F8, 8}, {"|i1", NPY_I1, 1}, {"<i4", NPY_I4, 4},
    {"<i8", NPY_I8, 8}, {"|u1", NPY_U1, 1}, {"<u1", NPY_U1, 1}, {"|b1", NPY_B1, 1},
};

/* The parsed header dict. */
typedef struct {
    char descr[32];
    int fortran_order;           /* -1: missing */
    int rank;                    /* -1: missing */
    int64_t shape[NNRT_MAX_RANK];
} NpyHeader;

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* A quoted Python string at p into buf; returns the position after it. */
static const char *parse_quoted(const char *p, char *buf, size_t len)
{
    char q = *p;
    if (q != '\'' && q != '"')
        return NULL;
    const char *end = strchr(p + 1, q);
    if (!end || (size_t)(end - p - 1) >= len)
        return NULL;
    memcpy(buf, p + 1, (size_t)(end - p - 1));
    buf[end - p - 1] = '\0';
    return end + 1;
}

/* The dict literal numpy writes, e.g.
 * {'descr': '<f4', 'fortran_order': False, 'shape': (10, 3), }
 * Returns 0 or a short reason. */
static const char *parse_npy_header(const char *p, NpyHeader *h)
{
    h->descr[0] = '\0';
    h->fortran_order = -1;
    h->rank = -1;
    p = skip_space(p);
    if (*p++ != '{')
        return "header is not a dict";
    for (;;) {
        char key[32];
        p = skip_space(p);
        if (*p == '}')
            break;
        if (!(p = parse_quoted(p, key, sizeof key)))
            return "bad key in header";
        p = skip_space(p);
        if (*p++ != ':')
            return "missing ':' in header";
        p = skip_space(p);
        if (!strcmp(key, "descr")) {
            if (!(p = parse_quoted(p, h->descr, sizeof h->descr)))
                return "descr is not a simple type string (structured arrays are not supported)";
        } else if (!strcmp(key, "fortran_order")) {
            if (!strncmp(p, "True", 4))
                h->fortran_order = 1, p += 4;
            else if (!strncmp(p, "False", 5))
                h->fortran_order = 0, p += 5;
            else
                return "fortran_order is not True or False";
        } else if (!strcmp(key, "shape")) {
            if (*p++ != '(')
                return "shape is not a tuple";
            h->rank = 0;
            for (;;) {
                p = skip_space(p);
                if (*p == ')') {
                    p++;
                    break;
                }
                if (h->rank == NNRT_MAX_RANK)
                    return "more dimensions than supported";
                char *end;
                errno = 0;
                long long d = strtoll(p, &end, 10);
                if (end == p || d < 0 || errno)
                    return "bad dimension in shape";
                h->shape[h->rank++] = d;
                p = skip_space(end);
                if (*p == ',')
                    p++;
                else if (*p != ')')
                    return "bad shape tuple";
            }
        } else {
            return "unknown key in header";
        }
        p = skip_space(p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return "missing ',' in header";
    }
    if (!h->descr[0] || h->fortran_order < 0 || h->rank < 0)
        return "header lacks descr, fortran_order or shape";
    return NULL;
}

int nnrt_npy_load(const char *path, NnrtArray *out, char *err, size_t errlen)
{
    int rc = NNRT_EINVAL;
    FILE *f = NULL;
    char *header = NULL;
    unsigned char *raw = NULL;
    void *data = NULL;
    unsigned char pre[12];
    NpyHeader h;
    NnrtArray a = {0};

    if (err && errlen)
        err[0] = '\0';
    if (!path || !out) {
        set_err(err, errlen, "nnrt_npy_load: bad arguments");
        return NNRT_EINVAL;
    }
    rc = NNRT_EIO;
    if (!(f = fopen(path, "rb"))) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    rc = NNRT_EFORMAT;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        set_err(err, errlen, "%s: not a .npy file (no \\x93NUMPY magic)", path);
        goto fail;
    }
    int major = pre[6];
    size_t header_len;
    if (major == 1) {
        header_len = (size_t)load_le(pre + 8, 2);
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            set_err(err, errlen, "%s: truncated .npy header", path);
            goto fail;
        }
        header_len = (size_t)load_le(pre + 8, 4);
    } else {
        set_err(err, errlen, "%s: .npy format version %d.%d is not supported (1.0 to 3.0)", path, major, pre[7]);
        goto fail;
    }
    if (header_len > (1u << 24)) {
        set_err(err, errlen, "%s: .npy header length %zu is implausible", path, header_len);
        goto fail;
    }
    long long left = bytes_left(f);
    if (left >= 0 && (long long)header_len > left) {
        set_err(err, errlen, "%s: truncated .npy file: the header declares %zu bytes of header, the file has %lld "
                "after the preamble", path, header_len, left);
        goto fail;
    }
    rc = NNRT_ENOMEM;
    if (!(header = malloc(header_len + 1))) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    rc = NNRT_EFORMAT;
    if (fread(header, 1, header_len, f) != header_len) {
        set_err(err, errlen, "%s: truncated .npy header", path);
        goto fail;
    }
    header[header_len] = '\0';
    const char *why = parse_npy_header(header, &h);
    if (why) {
        set_err(err, errlen, "%s: bad .npy header: %s", path, why);
        goto fail;
    }
    if (h.fortran_order) {
        set_err(err, errlen, "%s: fortran_order arrays are not supported; save np.ascontiguousarray(x) instead",
                path);
        goto fail;
    }
    size_t t = 0, num_types = sizeof npy_types / sizeof npy_types[0];
    while (t < num_types && strcmp(npy_types[t].descr, h.descr))
        t++;
    if (t == num_types) {
        set_err(err, errlen, "%s: dtype '%s' is not supported (little-endian f4, f8, i1, i4, i8, u1, bool); "
                "convert with x.astype('<f4')", path, h.descr);
        goto fail;
    }
    NpyKind kind = npy_types[t].kind;
    size_t elem = npy_types[t].size, count, bytes;
    a.rank = h.rank;
    memcpy(a.shape, h.shape, sizeof a.shape);
    if (checked_size(a.rank, a.shape, elem, &count, &bytes) < 0) {
        set_err(err, errlen, "%s: .npy shape too large", path);
        goto fail;
    }
    left = left >= 0 ? left - (long long)header_len : -1;
    if (left >= 0 && (unsigned long long)left < bytes) {  /* before allocating what the header asks */
        set_err(err, errlen, "%s: truncated .npy file: the header declares %zu bytes of data, the file has %lld",
                path, bytes, left);
        goto fail;
    }
    if (left >= 0 && (unsigned long long)left > bytes) {
        set_err(err, errlen, "%s: .npy file is longer than its header declares (%zu bytes of data, the file has "
                "%lld)", path, bytes, left);
        goto fail;
    }
    size_t got = 0;
    int r = file_read_all(f, bytes, &raw, &got);
    if (r < 0) {
        rc = r == -2 ? NNRT_ENOMEM : NNRT_EIO;
        set_err(err, errlen, r == -2 ? "%s: out of memory (%zu elements)" : "%s: read error (%zu elements)", path,
                count);
        goto fail;
    }
    if (got != bytes) {
        set_err(err, errlen, "%s: truncated .npy file: the header declares %zu bytes of data, the file has %zu",
                path, bytes, got);
        goto fail;
    }
    rc = NNRT_ENOMEM;
    if (!(data = malloc((count ? count : 1) * 4))) {
        set_err(err, errlen, "%s: out of memory (%zu elements)", path, count);
        goto fail;
    }
    rc = NNRT_EFORMAT;
    if (fgetc(f) != EOF) {
        set_err(err, errlen, "%s: .npy file is longer than its header declares (%zu bytes of data)", path, bytes);
        goto fail;
    }
    if (kind == NPY_F4 || kind == NPY_F8) {
        float *x = data;
        a.dtype = NNRT_F32;
        for (size_t i = 0; i < count; i++)
            x[i] = kind == NPY_F4 ? float_from_bits((uint32_t)load_le(raw + 4 * i, 4))
                                  : (float)double_from_bits(load_le(raw + 8 * i, 8));
    } else {
        int32_t *y = data;
        a.dtype = NNRT_I32;
        for (size_t i = 0; i < count; i++) {
            int64_t v = 0;
            switch (kind) {
            case NPY_I1: v = (signed char)raw[i]; break;
            case NPY_I4: v = (int32_t)(uint32_t)load_le(raw + 4 * i, 4); break;
            case NPY_I8: v = (int64_t)load_le(raw + 8 * i, 8); break;
            case NPY_U1: v = raw[i]; break;
            case NPY_B1: v = raw[i] != 0; break;
            case NPY_F4: case NPY_F8: break;
            }
            if (v < INT32_MIN || v > INT32_MAX) {
                set_err(err, errlen, "%s: element %zu (%lld) does not fit in int32", path, i, (long long)v);
                goto fail;
            }
            y[i] = (int32_t)v;
        }
    }
    a.data = data;
    data = NULL;
    *out = a;
    rc = NNRT_OK;
fail:
    if (f)
        fclose(f);
    free(header);
    free(raw);
    free(data);
    return rc;
}

/* Little-endian bytes of n elements of a 4-byte type (float32 or int32). */
static void store_le32(unsigned char *dst, const void *src, size_t n)
{
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, s + 4 * i, 4);
        dst[4 * i] = (unsigned char)v, dst[4 * i + 1] = (unsigned char)(v >> 8);
        dst[4 * i + 2] = (unsigned char)(v >> 16), dst[4 * i + 3] = (unsigned char)(v >> 24);
    }
}

int nnrt_npy_save(const char *path, const NnrtArray *a, char *err, size_t errlen)
{
    int rc = NNRT_EINVAL;
    char *tmp = NULL;
    FILE *f = NULL;
    int tmp_made = 0;
    char header[64 + 24 * NNRT_MAX_RANK + 64];
    unsigned char chunk[4096];

    if (err && errlen)
        err[0] = '\0';
    if (!path || !a || a->rank < 0 || a->rank > NNRT_MAX_RANK || (a->dtype != NNRT_F32 && a->dtype != NNRT_I32)) {
        set_err(err, errlen, "nnrt_npy_save: bad arguments");
        return NNRT_EINVAL;
    }
    size_t count, bytes;
    if (checked_size(a->rank, a->shape, 4, &count, &bytes) < 0 || (count && !a->data)) {
        set_err(err, errlen, "%s: cannot save: bad array shape or no data", path);
        return NNRT_EINVAL;
    }

    /* magic, version 1.0, uint16 length, then the dict padded to 64 bytes */
    int len = snprintf(header + 10, sizeof header - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       a->dtype == NNRT_F32 ? "<f4" : "<i4");
    for (int i = 0; i < a->rank; i++)
        len += snprintf(header + 10 + len, sizeof header - 10 - (size_t)len, "%lld,%s",
                        (long long)a->shape[i], i + 1 < a->rank ? " " : "");
    if (a->rank > 1)
        len--;                   /* numpy writes (3,) but (3, 4) */
    len += snprintf(header + 10 + len, sizeof header - 10 - (size_t)len, "), }");
    size_t total = 10 + (size_t)len + 1;
    total = (total + 63) / 64 * 64;
    memset(header + 10 + len, ' ', total - 10 - (size_t)len - 1);
    header[total - 1] = '\n';
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    header[8] = (char)((total - 10) & 0xff);
    header[9] = (char)((total - 10) >> 8);

    rc = NNRT_ENOMEM;
    size_t tmp_size = strlen(path) + 48;
    if (!(tmp = malloc(tmp_size))) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    rc = NNRT_EIO;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
        snprintf(tmp, tmp_size, "%s.%ld.%d.tmp", path, (long)getpid(), attempt);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);  /* mode honours the umask */
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        set_err(err, errlen, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        goto fail;
    }
    tmp_made = 1;
    if (!(f = fdopen(fd, "wb"))) {
        set_err(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    if (fwrite(header, 1, total, f) != total)
        goto write_fail;
    const unsigned char *src = a->data;
    for (size_t done = 0; done < count;) {
        size_t n = count - done < sizeof chunk / 4 ? count - done : sizeof chunk / 4;
        store_le32(chunk, src + 4 * done, n);
        if (fwrite(chunk, 4, n, f) != n)
            goto write_fail;
        done += n;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto write_fail;
    int closed = fclose(f);
    f = NULL;
    if (closed != 0)
        goto write_fail;
    if (rename(tmp, path) < 0) {
        set_err(err, errlen, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto fail;
    }
    tmp_made = 0;
    rc = NNRT_OK;
    goto fail;
write_fail:
    set_err(err, errlen, "%s: write failed: %s; check the folder is writable and has space", path, strerror(errno));
fail:
    if (f)
        fclose(f);
    if (tmp_made)
        remove(tmp);
    free(tmp);
    return rc;
}

/* ---- HDF5 datasets --------------------------------------------------------- */

/* Whether `name` ("a/b/x", a leading '/' allowed) is a dataset: every
 * link on the way is checked first, as H5Lexists requires. */
static int hdf5_dataset_exists(hid_t file, const char *name)
{
    char partial[1024];
    size_t len = strlen(name);
    if (len >= sizeof partial)
        return 0;
    for (size_t i = 1; i <= len; i++) {
        if ((i < len && name[i] != '/') || (i == 1 && name[0] == '/'))
            continue;
        memcpy(partial, name, i);
        partial[i] = '\0';
        if (H5Lexists(file, partial, H5P_DEFAULT) <= 0)
            return 0;
    }
    hid_t obj = H5Oopen(file, name, H5P_DEFAULT);
    if (obj < 0)
        return 0;
    int is_dataset = H5Iget_type(obj) == H5I_DATASET;
    H5Oclose(obj);
    return is_dataset;
}

/* libhdf5's part of nnrt_hdf5_load. */
static int read_hdf5_dataset(const char *path, const char *dataset, NnrtArray *out, char *err, size_t errlen)
{
    int rc = NNRT_EINVAL;
    hid_t file = -1, ds = -1, type = -1, space = -1;
    void *data = NULL;
    int64_t *wide = NULL;
    NnrtArray a = {0};

    if ((file = nnrt_h5_open_read(path, "an HDF5 data file", &rc, err, errlen)) < 0)
        goto fail;
    if (!hdf5_dataset_exists(file, dataset)) {
        set_err(err, errlen, "%s: no dataset '%s' in the file", path, dataset);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    if ((ds = H5Dopen2(file, dataset, H5P_DEFAULT)) < 0 || (type = H5Dget_type(ds)) < 0 ||
        (space = H5Dget_space(ds)) < 0) {
        set_err(err, errlen, "%s: cannot open dataset '%s'; the file is damaged", path, dataset);
        goto fail;
    }
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        set_err(err, errlen, "%s: dataset '%s' holds neither floats nor integers; store it as float32 or int32",
                path, dataset);
        goto fail;
    }
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[NNRT_MAX_RANK];
    if (rank < 0 || rank > NNRT_MAX_RANK || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        set_err(err, errlen, "%s: dataset '%s' has rank %d (at most %d)", path, dataset, rank, NNRT_MAX_RANK);
        goto fail;
    }
    a.rank = rank;
    for (int i = 0; i < rank; i++)
        a.shape[i] = (int64_t)dims[i];
    size_t count, bytes;
    rc = NNRT_EFORMAT;
    if (checked_size(rank, a.shape, 8, &count, &bytes) < 0) {
        set_err(err, errlen, "%s: dataset '%s' has a shape too large to hold", path, dataset);
        goto fail;
    }
    /* a contiguous dataset's data lies in the file: its extent must end within it */
    haddr_t at = H5Dget_offset(ds);
    size_t need = count * H5Tget_size(type);  /* element sizes are at most 16: no overflow past checked_size */
    struct stat st;
    if (at != HADDR_UNDEF && stat(path, &st) == 0 && ((unsigned long long)st.st_size < at ||
                                                      (unsigned long long)st.st_size - at < need)) {
        set_err(err, errlen, "%s: truncated dataset '%s': its shape declares %zu bytes of data at offset %llu, the "
                "file has %lld bytes", path, dataset, need, (unsigned long long)at, (long long)st.st_size);
        goto fail;
    }
    /* a chunked (compressed) one may not declare more than deflate could expand from what is stored */
    if (nnrt_h5_storage_fits(ds, type, H5Sget_simple_extent_npoints(space)) != 1) {
        set_err(err, errlen, "%s: dataset '%s' declares more data than the file holds; the file is damaged", path,
                dataset);
        goto fail;
    }
    rc = NNRT_ENOMEM;
    if (!(data = malloc(count ? count * 4 : 1))) {
        set_err(err, errlen, "%s: dataset '%s' is too large for memory", path, dataset);
        goto fail;
    }
    rc = NNRT_EFORMAT;
    if (cls == H5T_FLOAT) {
        a.dtype = NNRT_F32;
        if (count && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
            goto read_fail;
    } else {
        /* read wide, then check the range: HDF5 would clamp silently */
        a.dtype = NNRT_I32;
        rc = NNRT_ENOMEM;
        if (!(wide = malloc(count ? bytes : 1))) {
            set_err(err, errlen, "%s: dataset '%s' is too large for memory", path, dataset);
            goto fail;
        }
        rc = NNRT_EFORMAT;
        int is_unsigned = H5Tget_sign(type) == H5T_SGN_NONE;
        if (count && H5Dread(ds, is_unsigned ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                             H5P_DEFAULT, wide) < 0)
            goto read_fail;
        int32_t *dst = data;
        for (size_t i = 0; i < count; i++) {
            uint64_t u;
            memcpy(&u, &wide[i], sizeof u);
            if (is_unsigned ? u > INT32_MAX : (wide[i] < INT32_MIN || wide[i] > INT32_MAX)) {
                if (is_unsigned)
                    set_err(err, errlen, "%s: dataset '%s' element %zu (%llu) does not fit int32", path, dataset, i,
                            (unsigned long long)u);
                else
                    set_err(err, errlen, "%s: dataset '%s' element %zu (%lld) does not fit int32", path, dataset, i,
                            (long long)wide[i]);
                goto fail;
            }
            dst[i] = (int32_t)wide[i];
        }
    }
    a.data = data;
    data = NULL;
    *out = a;
    rc = NNRT_OK;
    goto fail;
read_fail:
    set_err(err, errlen, "%s: cannot read dataset '%s'; the file may be truncated", path, dataset);
fail:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (ds >= 0) H5Dclose(ds);
    if (file >= 0) H5Fclose(file);
    free(data);
    free(wide);
    return rc;
}

typedef struct {
    const char *path, *dataset;
    char err[512];
} DatasetJob;

/* In the child: rc, err, then dtype, rank, shape and the elements. */
static int read_hdf5_dataset_child(void *ctx, FILE *out)
{
    DatasetJob *j = ctx;
    NnrtArray a = {0};
    int32_t head[3];
    head[0] = read_hdf5_dataset(j->path, j->dataset, &a, j->err, sizeof j->err);
    head[1] = (int32_t)a.dtype;
    head[2] = a.rank;
    uint32_t len = (uint32_t)strlen(j->err);
    size_t n = head[0] == NNRT_OK ? nnrt_array_count(&a) : 0;
    int ok = fwrite(head, sizeof head, 1, out) == 1 && fwrite(&len, sizeof len, 1, out) == 1 &&
             fwrite(j->err, 1, len, out) == len && fwrite(a.shape, sizeof a.shape, 1, out) == 1 &&
             (n == 0 || fwrite(a.data, 4, n, out) == n);
    nnrt_array_free(&a);
    return ok ? 0 : -1;
}

/* read_hdf5_dataset in a child process (h5guard.c). */
static int read_hdf5_dataset_isolated(const char *path, const char *dataset, NnrtArray *out, char *err,
                                      size_t errlen)
{
    DatasetJob job = {path, dataset, ""};
    char *buf = NULL;
    size_t len = 0;
    int rc = nnrt_h5_isolated(path, read_hdf5_dataset_child, &job, 0, &buf, &len, err, errlen);
    if (rc < 0)
        return rc;
    NnrtWire w = {buf, len, 0};
    int32_t head[3];
    uint32_t err_len = 0;
    NnrtArray a = {0};
    size_t count = 0, bytes = 0;
    int ok = nnrt_wire_take(&w, head, sizeof head) == 0 && nnrt_wire_take(&w, &err_len, sizeof err_len) == 0 &&
             err_len <= w.len - w.at;
    if (ok) {
        set_err(err, errlen, "%.*s", (int)err_len, w.buf + w.at);
        w.at += err_len;
        a.dtype = head[1] == NNRT_I32 ? NNRT_I32 : NNRT_F32;
        a.rank = head[2];
        ok = nnrt_wire_take(&w, a.shape, sizeof a.shape) == 0 && a.rank >= 0 && a.rank <= NNRT_MAX_RANK;
    }
    if (ok && head[0] == NNRT_OK) {
        ok = checked_size(a.rank, a.shape, 4, &count, &bytes) == 0 && bytes == w.len - w.at;
        if (ok && !(a.data = malloc(bytes ? bytes : 1))) {
            free(buf);
            set_err(err, errlen, "%s: dataset '%s' is too large for memory", path, dataset);
            return NNRT_ENOMEM;
        }
        if (ok)
            nnrt_wire_take(&w, a.data, bytes);
    }
    free(buf);
    if (!ok || w.at != w.len) {
        free(a.data);
        set_err(err, errlen, "%s: the process reading it sent a short answer", path);
        return NNRT_EIO;
    }
    if (head[0] == NNRT_OK)
        *out = a;
    return head[0];
}

int nnrt_hdf5_load(const char *path, const char *dataset, NnrtArray *out, char *err, size_t errlen)
{
    NnrtH5Quiet quiet;
    if (err && errlen)
        err[0] = '\0';
    if (!path || !dataset || !*dataset || !out) {
        set_err(err, errlen, "nnrt_hdf5_load: bad arguments");
        return NNRT_EINVAL;
    }
    nnrt_h5_quiet(&quiet);
    int rc = nnrt_h5_precheck(path, "an HDF5 data file", err, errlen);
    if (rc == NNRT_OK)
        rc = nnrt_h5_get_policy().isolate ? read_hdf5_dataset_isolated(path, dataset, out, err, errlen)
                                          : read_hdf5_dataset(path, dataset, out, err, errlen);
    nnrt_h5_restore(&quiet);
    return rc;
}

/* ---- CSV ---------------------------------------------------------------- */

void nnrt_scaler_free(NnrtScaler *s)
{
    if (!s)
        return;
    free(s->mean);
    free(s->scale);
    memset(s, 0, sizeof *s);
}

/* A text file read line by line through zlib (gzipped or plain). */
typedef struct {
    gzFile gz;
    const char *path;
    char *text;                  /* the current line without its "\n" or "\r\n" */
    size_t cap;
    long line;                   /* 1-based number of the current line */
} CsvReader;

/* The next line into r->text: 1, 0 at the end of the file, or a negative
 * code with err set. A last line without '\n' counts as a line. */
static int csv_next_line(CsvReader *r, char *err, size_t errlen)
{
    size_t have = 0;
    for (;;) {
        if (r->cap - have < 4096) {
            size_t cap = r->cap ? 2 * r->cap : 1 << 16;
            char *bigger = cap <= INT_MAX ? realloc(r->text, cap) : NULL;
            if (!bigger) {
                set_err(err, errlen, "%s:%ld: out of memory (line too long?)", r->path, r->line + 1);
                return NNRT_ENOMEM;
            }
            r->text = bigger;
            r->cap = cap;
        }
        if (!gzgets(r->gz, r->text + have, (int)(r->cap - have))) {
            int code;
            const char *msg = gzerror(r->gz, &code);
            if (code == Z_BUF_ERROR) {
                set_err(err, errlen, "%s: the gzip stream ends early (truncated file?)", r->path);
                return NNRT_EFORMAT;
            }
            if (code != Z_OK) {
                set_err(err, errlen, "%s: read error: %s", r->path, code == Z_ERRNO ? strerror(errno) : msg);
                return code == Z_ERRNO ? NNRT_EIO : NNRT_EFORMAT;
            }
            if (have == 0)
                return 0;
            break;               /* the last line has no '\n' */
        }
        size_t len = have + strlen(r->text + have);
        if (len > have && r->text[len - 1] == '\n') {
            have = len - 1;
            break;
        }
        if (len + 1 < r->cap && !gzeof(r->gz)) {
            set_err(err, errlen, "%s:%ld: NUL byte in the line; not a text file", r->path, r->line + 1);
            return NNRT_EFORMAT;
        }
        have = len;              /* the buffer filled up: grow and read on */
    }
    if (have > 0 && r->text[have - 1] == '\r')
        have--;
    r->text[have] = '\0';
    r->line++;
    return 1;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static char *skip_blanks(char *p)
{
    while (is_blank(*p))
        p++;
    return p;
}

/* Split line in place into fields: blanks around a field dropped, "quoted"
 * fields unquoted ("" inside is one "). delimiter ' ' separates by any run
 * of blanks, any other character by itself. Returns the number of fields
 * (0 for a blank line), -1 with a reason in *why, or NNRT_ENOMEM; *fields
 * grows as needed. */
static long csv_split(char *line, char delimiter, char ***fields, size_t *cap, const char **why)
{
    int blanks = delimiter == ' ';
    size_t n = 0;
    char *p = skip_blanks(line);
    if (*p == '\0')
        return 0;
    for (;;) {
        char *field = p, *end;
        if (*p == '"') {
            char *out = p, *q = p + 1;
            while (!(*q == '"' && q[1] != '"')) {
                if (*q == '\0') {
                    *why = "unterminated quoted field";
                    return -1;
                }
                if (*q == '"')
                    q++;
                *out++ = *q++;
            }
            end = out;
            p = skip_blanks(q + 1);
            if (*p && (blanks ? p == q + 1 : *p != delimiter)) {
                *why = "text after a closing quote";
                return -1;
            }
        } else {
            while (*p && (blanks ? !is_blank(*p) : *p != delimiter))
                p++;
            end = p;
            while (end > field && is_blank(end[-1]))
                end--;
            if (blanks)
                p = skip_blanks(p);
        }
        if (n == *cap) {
            size_t bigger_cap = *cap ? 2 * *cap : 64;
            char **bigger = realloc(*fields, bigger_cap * sizeof *bigger);
            if (!bigger)
                return NNRT_ENOMEM;
            *fields = bigger;
            *cap = bigger_cap;
        }
        (*fields)[n++] = field;
        int last = *p == '\0';
        if (!last && !blanks)
            p = skip_blanks(p + 1);          /* past the delimiter */
        *end = '\0';                         /* p has moved past end */
        if (last)
            return (long)n;
    }
}

/* The x or y columns of a source: groups separated by '|', columns by ',';
 * each a header name (quotes optional) or a 0-based index. */
typedef struct {
    char *text;                  /* private copy the tokens point into */
    int groups;
    int count[NNRT_MAX_IO];      /* columns per group */
    int total;
    char **token;                /* (total,) groups in order */
    size_t *column;              /* (total,) the file column of each token */
} CsvColumns;

static void csv_columns_free(CsvColumns *c)
{
    free(c->text);
    free(c->token);
    free(c->column);
    memset(c, 0, sizeof *c);
}

static int csv_columns_parse(const char *spec, const char *what, const char *path, CsvColumns *c,
                             char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (!spec || !*spec)
        return 0;
    size_t len = strlen(spec);
    if (!(c->text = strdup(spec)) || !(c->token = calloc(len + 1, sizeof *c->token)) ||
        !(c->column = calloc(len + 1, sizeof *c->column))) {
        set_err(err, errlen, "%s: out of memory", path);
        return NNRT_ENOMEM;
    }
    for (char *group = c->text;;) {
        char *group_end = strchr(group, '|');
        if (group_end)
            *group_end = '\0';
        if (c->groups == NNRT_MAX_IO) {
            set_err(err, errlen, "%s: %s columns '%s' have more than %d groups", path, what, spec, NNRT_MAX_IO);
            return NNRT_EINVAL;
        }
        for (char *q = group;;) {
            char *comma = strchr(q, ',');
            if (comma)
                *comma = '\0';
            char *name = skip_blanks(q), *end = name + strlen(name);
            while (end > name && is_blank(end[-1]))
                end--;
            if (end - name >= 2 && (*name == '"' || *name == '\'') && end[-1] == *name)
                name++, end--;
            *end = '\0';
            if (!*name) {
                set_err(err, errlen, "%s: %s columns '%s': empty column name (',' separates columns, "
                        "'|' model inputs)", path, what, spec);
                return NNRT_EINVAL;
            }
            c->token[c->total++] = name;
            c->count[c->groups]++;
            if (!comma)
                break;
            q = comma + 1;
        }
        c->groups++;
        if (!group_end)
            return 0;
        group = group_end + 1;
    }
}

/* Resolve every token to a file column: a header name first, else a
 * 0-based index below num_columns. names is NULL without a header. */
static int csv_columns_resolve(CsvColumns *c, const char *what, char *const *names, size_t num_columns,
                               const char *path, char *err, size_t errlen)
{
    for (int t = 0; t < c->total; t++) {
        const char *tok = c->token[t];
        size_t col = num_columns;
        for (size_t k = 0; names && k < num_columns && col == num_columns; k++)
            if (!strcmp(names[k], tok))
                col = k;
        if (col == num_columns) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(tok, &end, 10);
            if (*end != '\0' || !(tok[0] >= '0' && tok[0] <= '9') || errno) {
                if (!names) {
                    set_err(err, errlen, "%s: %s column '%s' is not a 0-based index, and the file has no "
                            "header (header: false) to name columns", path, what, tok);
                    return NNRT_EMISMATCH;
                }
                int at = snprintf(err, errlen, "%s: no %s column '%s' in the header; the columns are ",
                                  path, what, tok);
                for (size_t k = 0; at >= 0 && (size_t)at < errlen && k < num_columns; k++)
                    at += snprintf(err + at, errlen - (size_t)at, "%s%s", k ? ", " : "", names[k]);
                return NNRT_EMISMATCH;
            }
            if (v >= num_columns) {
                set_err(err, errlen, "%s: %s column %lu is out of range: the file has %zu columns (0 to %zu)",
                        path, what, v, num_columns, num_columns - 1);
                return NNRT_EMISMATCH;
            }
            col = (size_t)v;
        }
        c->column[t] = col;
    }
    return 0;
}

/* A field as a finite number; NULL, or what is wrong with it. */
static const char *csv_number(const char *field, double *v)
{
    char *end;
    if (!*field)
        return "is empty";
    *v = strtod(field, &end);
    if (*end != '\0')
        return "is not a number";
    if (!isfinite(*v))
        return "is not a finite number";
    return NULL;
}

/* StandardScaler's fit on the rows order[0..n) of values (rows of width
 * doubles, the first `columns` of them x): two-pass mean and population
 * variance; a feature counts as constant (scale 1) when
 * var <= n eps var + (n mean eps)^2, sklearn's _is_constant_feature. */
static int scaler_fit(NnrtScaler *s, const double *values, const size_t *order, size_t n, size_t width,
                      size_t columns)
{
    memset(s, 0, sizeof *s);
    if (!(s->mean = calloc(columns, sizeof *s->mean)) || !(s->scale = calloc(columns, sizeof *s->scale))) {
        nnrt_scaler_free(s);
        return NNRT_ENOMEM;
    }
    s->columns = columns;
    for (size_t c = 0; c < columns; c++) {
        double sum = 0, squares = 0;
        for (size_t r = 0; r < n; r++)
            sum += values[order[r] * width + c];
        double mean = sum / (double)n;
        for (size_t r = 0; r < n; r++) {
            double d = values[order[r] * width + c] - mean;
            squares += d * d;
        }
        double var = squares / (double)n, nme = (double)n * mean * DBL_EPSILON;
        s->mean[c] = mean;
        s->scale[c] = var <= (double)n * DBL_EPSILON * var + nme * nme ? 1.0 : sqrt(var);
    }
    return 0;
}

/* Rows order[0..n) of values as a dataset: x group g -> d->x[g] (n, count),
 * standardized by scaler when given; y group g -> d->y[g] (n, count). */
static int csv_part(NnrtDataset *d, const double *values, const size_t *order, size_t n, size_t width,
                    const CsvColumns *x, const CsvColumns *y, const NnrtScaler *scaler)
{
    size_t base = 0;
    d->n = n;
    for (int is_y = 0; is_y < 2; is_y++) {
        const CsvColumns *cols = is_y ? y : x;
        for (int g = 0; g < cols->groups; g++) {
            size_t k = (size_t)cols->count[g];
            float *data = malloc(n * k * sizeof *data);
            if (!data)
                return NNRT_ENOMEM;
            for (size_t r = 0; r < n; r++) {
                const double *row = values + order[r] * width + base;
                for (size_t c = 0; c < k; c++)
                    data[r * k + c] = !is_y && scaler
                        ? (float)((row[c] - scaler->mean[base + c]) / scaler->scale[base + c])
                        : (float)row[c];
            }
            (is_y ? d->y : d->x)[g] = (NnrtArray){NNRT_F32, 2, {(int64_t)n, (int64_t)k}, data};
            base += k;
        }
    }
    return 0;
}

int nnrt_csv_load(const NnrtDataSource *src, const NnrtScaler *fitted, NnrtDataset parts[3],
                  NnrtScaler *scaler, char *err, size_t errlen)
{
    static const char *const part_names[3] = {"training", "validation", "test"};
    CsvReader r = {0};
    CsvColumns x = {0}, y = {0};
    NnrtScaler own = {0};
    char **fields = NULL, **names = NULL;
    double *row = NULL, *values = NULL;  /* one line's fields; the kept columns (rows, width) */
    size_t *order = NULL;
    size_t field_cap = 0, num_columns = 0, num_names = 0, rows = 0, row_cap = 0;
    long first_line = 0;                 /* the line that fixed the column count */
    int rc = NNRT_EINVAL;

    if (err && errlen)
        err[0] = '\0';
    if (parts)
        memset(parts, 0, 3 * sizeof *parts);
    if (scaler)
        memset(scaler, 0, sizeof *scaler);
    if (!src || !parts || src->format != NNRT_DATA_CSV || !src->path || !*src->path) {
        set_err(err, errlen, "nnrt_csv_load: bad arguments (a csv source with a path)");
        return NNRT_EINVAL;
    }
    const char *path = src->path;
    const double *split = src->split;
    char delimiter = src->delimiter == '\t' ? ' ' : src->delimiter ? src->delimiter : ',';
    if (delimiter == '"' || delimiter == '\n' || delimiter == '\r') {
        set_err(err, errlen, "%s: a quote or line break cannot be the delimiter", path);
        goto fail;
    }
    if ((rc = csv_columns_parse(src->x, "x", path, &x, err, errlen)) < 0 ||
        (rc = csv_columns_parse(src->y, "y", path, &y, err, errlen)) < 0)
        goto fail;
    rc = NNRT_EINVAL;
    if (x.total == 0) {
        set_err(err, errlen, "%s: no x columns given", path);
        goto fail;
    }
    int use_split = split[0] != 0 || split[1] != 0 || split[2] != 0;
    if (use_split && !(split[0] >= 0 && split[1] >= 0 && split[2] >= 0 &&
                       fabs(split[0] + split[1] + split[2] - 1) <= 1e-6)) {
        set_err(err, errlen, "%s: split [%g, %g, %g] must be three fractions (train, validation, test) "
                "in [0, 1] that sum to 1", path, split[0], split[1], split[2]);
        goto fail;
    }
    if (src->standardize && fitted && fitted->columns != (size_t)x.total) {
        rc = NNRT_EMISMATCH;
        set_err(err, errlen, "%s: %d x columns to standardize, but the training data's statistics "
                "cover %zu", path, x.total, fitted->columns);
        goto fail;
    }

    rc = NNRT_EIO;
    errno = 0;
    if (!(r.gz = gzopen(path, "rb"))) {
        set_err(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot open");
        goto fail;
    }
    r.path = path;
    rc = 0;
    for (int k = 0; k < src->skip_rows; k++)
        if ((rc = csv_next_line(&r, err, errlen)) <= 0)
            break;
    if (rc < 0)
        goto fail;

    size_t width = (size_t)(x.total + y.total);
    while ((rc = csv_next_line(&r, err, errlen)) > 0) {
        const char *why = NULL;
        long got = csv_split(r.text, delimiter, &fields, &field_cap, &why);
        if (got < 0) {
            rc = got == NNRT_ENOMEM ? NNRT_ENOMEM : NNRT_EFORMAT;
            set_err(err, errlen, "%s:%ld: %s", path, r.line, why ? why : "out of memory");
            goto fail;
        }
        if (got == 0)
            continue;                    /* blank line */
        if (!first_line) {
            first_line = r.line;
            num_columns = (size_t)got;
            rc = NNRT_ENOMEM;
            if (!(row = malloc(num_columns * sizeof *row)) ||
                (src->header && !(names = calloc(num_columns, sizeof *names)))) {
                set_err(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            for (; names && num_names < num_columns; num_names++) {
                if (!(names[num_names] = strdup(fields[num_names]))) {
                    set_err(err, errlen, "%s: out of memory", path);
                    goto fail;
                }
            }
            if ((rc = csv_columns_resolve(&x, "x", names, num_columns, path, err, errlen)) < 0 ||
                (rc = csv_columns_resolve(&y, "y", names, num_columns, path, err, errlen)) < 0)
                goto fail;
            if (src->header)
                continue;
        }
        if ((size_t)got != num_columns) {
            rc = NNRT_EFORMAT;
            set_err(err, errlen, "%s:%ld: %ld fields, but %s %ld has %zu", path, r.line, got,
                    names ? "the header on line" : "line", first_line, num_columns);
            goto fail;
        }
        for (size_t k = 0; k < num_columns; k++) {
            const char *bad = csv_number(fields[k], &row[k]);
            if (bad) {
                rc = NNRT_EFORMAT;
                set_err(err, errlen, "%s:%ld: column %zu%s%s%s: '%.40s' %s; every field must be a number",
                        path, r.line, k, names ? " (" : "", names ? names[k] : "", names ? ")" : "",
                        fields[k], bad);
                goto fail;
            }
        }
        if (rows == row_cap) {
            size_t cap = row_cap ? 2 * row_cap : 1024;
            double *bigger = cap <= SIZE_MAX / sizeof *bigger / width
                             ? realloc(values, cap * width * sizeof *bigger) : NULL;
            if (!bigger) {
                rc = NNRT_ENOMEM;
                set_err(err, errlen, "%s:%ld: out of memory", path, r.line);
                goto fail;
            }
            values = bigger;
            row_cap = cap;
        }
        for (int t = 0; t < x.total; t++)
            values[rows * width + (size_t)t] = row[x.column[t]];
        for (int t = 0; t < y.total; t++)
            values[rows * width + (size_t)(x.total + t)] = row[y.column[t]];
        rows++;
    }
    if (rc < 0)
        goto fail;
    if (rows == 0) {
        rc = NNRT_EFORMAT;
        set_err(err, errlen, "%s: no data rows (skip_rows %d, header %s)", path, src->skip_rows,
                src->header ? "true" : "false");
        goto fail;
    }

    /* train, validation, test: consecutive runs of the (shuffled) row order */
    rc = NNRT_ENOMEM;
    if (!(order = malloc(rows * sizeof *order))) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < rows; i++)
        order[i] = i;
    size_t count[3] = {rows, 0, 0};
    if (use_split) {
        NnrtRng rng;
        nnrt_rng_seed(&rng, src->seed);
        nnrt_shuffle(order, rows, &rng);
        count[0] = (size_t)llround((double)rows * split[0]);
        count[0] = count[0] < rows ? count[0] : rows;
        count[1] = (size_t)llround((double)rows * split[1]);
        count[1] = count[1] < rows - count[0] ? count[1] : rows - count[0];
        count[2] = rows - count[0] - count[1];
        for (int k = 0; k < 3; k++) {
            if (split[k] > 0 && count[k] == 0) {
                rc = NNRT_EMISMATCH;
                set_err(err, errlen, "%s: split [%g, %g, %g] of %zu rows leaves the %s part empty", path,
                        split[0], split[1], split[2], rows, part_names[k]);
                goto fail;
            }
        }
    }
    if (src->standardize && !fitted) {
        if (scaler_fit(&own, values, order, count[0], width, (size_t)x.total) < 0) {
            set_err(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        fitted = &own;
    }
    for (size_t k = 0, first = 0; k < 3; first += count[k], k++) {
        if (count[k] && csv_part(&parts[k], values, order + first, count[k], width, &x, &y,
                                 src->standardize ? fitted : NULL) < 0) {
            set_err(err, errlen, "%s: out of memory", path);
            goto fail;
        }
    }
    if (scaler) {
        *scaler = own;
        memset(&own, 0, sizeof own);
    }
    rc = NNRT_OK;

fail:
    if (rc < 0 && parts)
        for (int k = 0; k < 3; k++)
            nnrt_dataset_free(&parts[k]);
    if (r.gz)
        gzclose(r.gz);
    free(r.text);
    free(fields);
    for (size_t k = 0; k < num_names; k++)
        free(names[k]);
    free(names);
    free(row);
    free(values);
    free(order);
    nnrt_scaler_free(&own);
    csv_columns_free(&x);
    csv_columns_free(&y);
    return rc;
}

/* ---- the time_series dataset -------------------------------------------------- *
 * model-format.md §4 (the Keras notes' generate_time_series): per series,
 * freq1, freq2, offset1, offset2 ~ U[0,1); over time = linspace(0, 1,
 * n_steps + ahead): 0.5 sin((t - offset1)(10 freq1 + 10)) + 0.2 sin((t -
 * offset2)(20 freq2 + 20)) + 0.1 (U[0,1) - 0.5). Seeded, so every run (and
 * `evaluate`) regenerates the same series; split in generation order. */
int nnrt_time_series(const NnrtDataSource *src, NnrtDataset parts[3], char *err, size_t errlen)
{
    memset(parts, 0, 3 * sizeof *parts);
    int steps = src->n_steps, ahead = src->ahead, count = src->count;
    int start = src->target_start, stride = src->target_stride ? src->target_stride : 1;
    if (steps < 1 || ahead < 1 || count < 3 || start < 0 || stride < 1 || start >= steps) {
        snprintf(err, errlen, "time_series: bad sizes (n_steps %d, ahead %d, count %d, target start %d, stride %d)",
                 steps, ahead, count, start, stride);
        return NNRT_EINVAL;
    }
    int len = steps + ahead, ysteps = (steps - start + stride - 1) / stride;
    float *series = malloc((size_t)count * (size_t)len * sizeof *series);
    if (!series) {
        snprintf(err, errlen, "time_series: out of memory");
        return NNRT_ENOMEM;
    }
    NnrtRng rng;
    nnrt_rng_seed(&rng, src->seed);
    for (int i = 0; i < count; i++) {
        double f1 = nnrt_rng_uniform(&rng), f2 = nnrt_rng_uniform(&rng);
        double o1 = nnrt_rng_uniform(&rng), o2 = nnrt_rng_uniform(&rng);
        for (int t = 0; t < len; t++) {
            double time = len > 1 ? (double)t / (len - 1) : 0.0;
            series[(size_t)i * len + t] = (float)(0.5 * sin((time - o1) * (f1 * 10 + 10)) +
                                                  0.2 * sin((time - o2) * (f2 * 20 + 20)) +
                                                  0.1 * (nnrt_rng_uniform(&rng) - 0.5));
        }
    }
    size_t n[3];
    n[0] = (size_t)llround(count * src->split[0]);
    n[1] = (size_t)llround(count * src->split[1]);
    if (n[0] + n[1] > (size_t)count)
        n[1] = (size_t)count - n[0];
    n[2] = (size_t)count - n[0] - n[1];
    size_t first = 0;
    int rc = 0;
    for (int k = 0; k < 3 && rc == 0; k++) {
        NnrtDataset *d = &parts[k];
        d->n = n[k];
        NnrtArray *x = &d->x[0], *y = &d->y[0];
        *x = (NnrtArray){NNRT_F32, 3, {(int64_t)n[k], steps, 1}, NULL};
        *y = src->seq2seq ? (NnrtArray){NNRT_F32, 3, {(int64_t)n[k], ysteps, ahead}, NULL}
                          : (NnrtArray){NNRT_F32, 2, {(int64_t)n[k], ahead}, NULL};
        x->data = malloc((n[k] ? n[k] : 1) * (size_t)steps * sizeof(float));
        y->data = malloc((n[k] ? n[k] : 1) * (size_t)(src->seq2seq ? ysteps : 1) * (size_t)ahead * sizeof(float));
        if (!x->data || !y->data) {
            snprintf(err, errlen, "time_series: out of memory");
            rc = NNRT_ENOMEM;
            break;
        }
        float *xs = x->data, *ys = y->data;
        for (size_t i = 0; i < n[k]; i++) {
            const float *s = series + (first + i) * (size_t)len;
            memcpy(xs + i * (size_t)steps, s, (size_t)steps * sizeof(float));
            if (!src->seq2seq) {
                memcpy(ys + i * (size_t)ahead, s + steps, (size_t)ahead * sizeof(float));
                continue;
            }
            for (int q = 0; q < ysteps; q++)
                for (int a = 0; a < ahead; a++)
                    ys[(i * (size_t)ysteps + (size_t)q) * (size_t)ahead + (size_t)a] = s[start + q * stride + a + 1];
        }
        first += n[k];
    }
    free(series);
    if (rc)
        for (int k = 0; k < 3; k++)
            nnrt_dataset_free(&parts[k]);
    return rc;
}
