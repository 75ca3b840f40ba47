/* data.c — in-memory arrays and the files they come from: IDX (MNIST) and
 * NumPy .npy.
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
 * of 64 bytes, through a temporary file renamed into place.
 *
 * Invariants: byte order is decoded explicitly, so the host's does not
 * matter; *out is written only on success; every failure leaves one line in
 * err naming the file.
 */
#define _POSIX_C_SOURCE 200809L
#include "nnrt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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
    rc = NNRT_ENOMEM;
    if (!(raw = malloc(bytes ? bytes : 1)) || !(data = malloc((count ? count : 1) * 4))) {
        set_err(err, errlen, "%s: out of memory (%zu elements)", path, count);
        goto fail;
    }
    rc = NNRT_EFORMAT;
    size_t got = fread(raw, 1, bytes, f);
    if (got != bytes) {
        if (ferror(f))
            set_err(err, errlen, "%s: read error: %s", path, strerror(errno)), rc = NNRT_EIO;
        else
            set_err(err, errlen, "%s: truncated .npy file: the header declares %zu bytes of data, %zu follow",
                    path, bytes, got);
        goto fail;
    }
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
