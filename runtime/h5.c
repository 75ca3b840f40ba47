/* h5.c — Keras-layout HDF5 weights: nnrt_h5_save, nnrt_h5_load and
 * nnrt_h5_load_optimizer.
 *
 * Save writes exactly what tf.keras 2.x model.save('x.h5') writes, minus
 * training_config: root attributes keras_version and backend (scalar vlen
 * UTF-8) and model_config (scalar vlen ASCII JSON); group model_weights with
 * layer_names (1-D fixed-length NUL-padded ASCII, numpy S<n>) and backend,
 * keras_version (scalar vlen ASCII); per layer, in the order given, a group
 * with weight_names (same kind as layer_names; an empty list is a 0-length
 * float64 array, as numpy makes of []) and one contiguous <f4 dataset per
 * weight at <layer>/<weight name>, the '/' in the name making nested groups.
 * With an optimizer state, group optimizer_weights too: weight_names lists
 * "<Optimizer>/iter:0" (an int64 scalar dataset) then every slot by its full
 * name ("Adam/dense/kernel/m:0", a <f4 dataset nested by '/'), as
 * save_optimizer_weights_to_hdf5_group does. A list over 64512 bytes is
 * split into name0, name1, ... as Keras does. The file is built under a
 * temporary name beside the target ("<path>.<pid>.<n>.tmp") and renamed
 * into place only after it was closed and synced, so the target is either
 * the old file or the complete new one; a save first removes the
 * temporaries of earlier saves to the same path whose process is gone. Time stamps are off: equal weights give byte-identical files.
 *
 * Load finds the layer groups (model_weights/, or the root for save_weights
 * files), then for each NnrtWeightInfo opens the group named by its layer and
 * picks the entry of that group's weight_names that equals the wanted name
 * after dropping ":0", else the one sharing the longest run of trailing path
 * components with it ("dense_3/kernel:0" finds "sequential_1/dense_3/kernel");
 * a tie is reported, never guessed. File order is never used. Every matched
 * dataset must be a float dataset of the wanted shape; HDF5 converts float64
 * and big-endian data on read. All data goes to a scratch block first, so a
 * strict load that fails leaves the caller's block untouched.
 *
 * The optimizer state loads all or nothing: the file's weight_names must be
 * exactly "<Optimizer>/iter:0" (or tf.keras 2.0's ".../iterations:0"; int or
 * float) plus one entry per slot, matched by exact name (":0" optional) with
 * the slot's shape. Anything else (another optimizer, Keras 2.11+'s or
 * Keras 3's layout, a changed model) is "not ours": 0 and the caller's state
 * untouched, since a fresh optimizer is always a valid start.
 *
 * Every dataset saved carries nncc_crc32, zlib's CRC-32 of its stored
 * bytes; a load verifies it when present (Keras's files have none), so a
 * changed value in an nncc file is an error, not a silently wrong model.
 * Loaded weights holding NaN or Inf are refused (the first one named, with
 * its index) unless the policy allows them. The file's bytes are checked
 * before libhdf5 reads it (h5guard.c), contiguous data must lie inside the
 * file, and with the isolate policy the libhdf5 part of a load
 * (read_weights, read_optimizer) runs in a child process that sends the
 * scratch block back: the caller's memory never depends on libhdf5 having
 * survived a hostile file.
 *
 * Invariants: HDF5's own error printing is off for the length of each call
 * (and restored after), every HDF5 call is checked, and every failure becomes
 * one line in err naming the file.
 */
#define _POSIX_C_SOURCE 200809L
#include "nnrt.h"
#include "h5open.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define KERAS_VERSION "2.15.0"           /* Keras special-cases only "1" */
#define KERAS_BACKEND "tensorflow"
#define HDF5_OBJECT_HEADER_LIMIT 64512   /* Keras splits longer name lists */

#define MAX_NAME 1024                    /* longest layer or weight name saved */

#if H5_VERSION_GE(1, 12, 0)
#define vlen_reclaim H5Treclaim
#define is_hdf5_file(path) H5Fis_accessible(path, H5P_DEFAULT)
#else
#define vlen_reclaim H5Dvlen_reclaim
#define is_hdf5_file(path) H5Fis_hdf5(path)
#endif

/* ---- messages ----------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

typedef struct { char *buf; size_t len; } Detail;

static herr_t keep_innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    Detail *d = data;
    if (n == 0 && e->desc && e->desc[0])
        snprintf(d->buf, d->len, "%s", e->desc);
    return 0;
}

/* The most specific message on HDF5's error stack ("truncated file: eof =
 * ..."), then the stack is cleared. */
static const char *h5_detail(char *buf, size_t len)
{
    Detail d = {buf, len};
    snprintf(buf, len, "unknown HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &d);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

void nnrt_h5_quiet(NnrtH5Quiet *q)
{
    /* off even when the caller's handler cannot be saved (HDF5 out of memory) */
    q->saved = H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) >= 0;
    if (H5Eset_auto2(H5E_DEFAULT, NULL, NULL) < 0)
        q->saved = 0;
    H5Eclear2(H5E_DEFAULT);
}

void nnrt_h5_restore(const NnrtH5Quiet *q)
{
    H5Eclear2(H5E_DEFAULT);
    if (q->saved)
        H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

/* Opens `path` read-only as HDF5 (HDF5's own error printing already off)
 * after nnrt_h5_precheck has looked at its superblock. On failure returns a negative id, *rc says why (NNRT_EIO: the file cannot
 * be read; NNRT_EFORMAT: not HDF5, damaged or truncated) and err names the
 * file and what it was expected to be. Shared with data.c (h5open.h). */
hid_t nnrt_h5_open_read(const char *path, const char *expected, int *rc, char *err, size_t errlen)
{
    char detail[256];
    if ((*rc = nnrt_h5_precheck(path, expected, err, errlen)) < 0)
        return H5I_INVALID_HID;
    *rc = NNRT_EFORMAT;
    htri_t is_hdf5 = is_hdf5_file(path);
    if (is_hdf5 == 0) {
        set_err(err, errlen, "%s: not an HDF5 file (no HDF5 signature); expected %s", path, expected);
        return H5I_INVALID_HID;
    }
    hid_t file = is_hdf5 < 0 ? H5I_INVALID_HID : H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        set_err(err, errlen, "%s: cannot open as HDF5 (%s); the file is damaged or truncated", path,
                h5_detail(detail, sizeof detail));
    return file;
}

static void format_shape(char *buf, size_t len, int rank, const int64_t *shape)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

/* Elements of a weight; 0 with *ok = 0 on a negative dimension or overflow. */
static size_t weight_count(const NnrtWeightInfo *w, int *ok)
{
    size_t n = 1;
    *ok = w->rank >= 0 && w->rank <= NNRT_MAX_RANK;
    for (int i = 0; *ok && i < w->rank; i++) {
        if (w->shape[i] < 0 || (w->shape[i] > 0 && n > SIZE_MAX / sizeof(float) / (size_t)w->shape[i]))
            *ok = 0;
        else
            n *= (size_t)w->shape[i];
    }
    return *ok ? n : 0;
}

/* ---- checksums and storage -------------------------------------------- */

/* Every dataset nncc writes carries this scalar uint32 attribute: zlib's
 * CRC-32 of the dataset's bytes as stored (little-endian). A Keras file has
 * none and loads unchecked. */
#define CRC_ATTR "nncc_crc32"

static int little_endian_host(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* CRC-32 of n elements of `size` bytes each, in little-endian byte order. */
static uint32_t crc_le(const void *data, size_t n, size_t size)
{
    uLong crc = crc32_z(0L, Z_NULL, 0);
    const unsigned char *p = data;
    if (little_endian_host())
        return (uint32_t)crc32_z(crc, p, n * size);
    unsigned char swapped[8];
    for (size_t i = 0; i < n; i++, p += size) {
        for (size_t b = 0; b < size; b++)
            swapped[b] = p[size - 1 - b];
        crc = crc32_z(crc, swapped, size);
    }
    return (uint32_t)crc;
}

static int write_crc(hid_t ds, const void *data, size_t n, size_t size)
{
    int rc = -1;
    uint32_t crc = crc_le(data, n, size);
    hid_t space = -1, attr = -1;
    if ((space = H5Screate(H5S_SCALAR)) < 0 ||
        (attr = H5Acreate2(ds, CRC_ATTR, H5T_STD_U32LE, space, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(attr, H5T_NATIVE_UINT32, &crc) < 0)
        goto fail;
    rc = 0;
fail:
    if (attr >= 0) H5Aclose(attr);
    if (space >= 0) H5Sclose(space);
    return rc;
}

/* Checks the dataset's CRC_ATTR, when it has one, against the n elements
 * read into mem: 0 (absent or equal), 1 (differs, or the file's type is not
 * the file_type nncc writes), -1 (HDF5 error). */
static int verify_crc(hid_t ds, hid_t type, hid_t file_type, const void *mem, size_t n, size_t size)
{
    htri_t has = H5Aexists(ds, CRC_ATTR);
    if (has <= 0)
        return has < 0 ? -1 : 0;
    int rc = -1;
    uint32_t want = 0;
    hid_t attr = -1, atype = -1, space = -1;
    if ((attr = H5Aopen(ds, CRC_ATTR, H5P_DEFAULT)) < 0 || (atype = H5Aget_type(attr)) < 0 ||
        (space = H5Aget_space(attr)) < 0)
        goto fail;
    rc = 1;
    if (H5Tget_class(atype) != H5T_INTEGER || H5Sget_simple_extent_npoints(space) != 1 ||
        H5Tequal(type, file_type) <= 0)
        goto fail;
    if (H5Aread(attr, H5T_NATIVE_UINT32, &want) < 0) {
        rc = -1;
        goto fail;
    }
    rc = crc_le(mem, n, size) != want;
fail:
    if (space >= 0) H5Sclose(space);
    if (atype >= 0) H5Tclose(atype);
    if (attr >= 0) H5Aclose(attr);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

static int write_vlen_string(hid_t obj, const char *name, const char *value, H5T_cset_t cset)
{
    int rc = -1;
    hid_t type = -1, space = -1, attr = -1;
    if ((type = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(type, H5T_VARIABLE) < 0 ||
        H5Tset_cset(type, cset) < 0)
        goto fail;
    if ((space = H5Screate(H5S_SCALAR)) < 0)
        goto fail;
    if ((attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        goto fail;
    if (H5Awrite(attr, type, &value) < 0)
        goto fail;
    rc = 0;
fail:
    if (attr >= 0) H5Aclose(attr);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    return rc;
}

/* One attribute: n names as fixed-length NUL-padded strings of width
 * `width`, or a 0-length float64 array when n == 0 (numpy's np.asarray([])). */
static int write_name_chunk(hid_t obj, const char *attr_name, const char *const *names,
                            size_t n, size_t width)
{
    int rc = -1;
    hid_t type = -1, space = -1, attr = -1;
    char *buf = NULL;
    hsize_t dims[1] = {n};
    if ((space = H5Screate_simple(1, dims, NULL)) < 0)
        goto fail;
    if (n == 0) {
        if ((attr = H5Acreate2(obj, attr_name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT)) < 0)
            goto fail;
        rc = 0;
        goto fail;
    }
    if (!(buf = calloc(n, width)))
        goto fail;
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * width, names[i], strlen(names[i]));
    if ((type = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(type, width) < 0 ||
        H5Tset_strpad(type, H5T_STR_NULLPAD) < 0 || H5Tset_cset(type, H5T_CSET_ASCII) < 0)
        goto fail;
    if ((attr = H5Acreate2(obj, attr_name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        goto fail;
    if (H5Awrite(attr, type, buf) < 0)
        goto fail;
    rc = 0;
fail:
    free(buf);
    if (attr >= 0) H5Aclose(attr);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return rc;
}

/* layer_names / weight_names as Keras save_attributes_to_hdf5_group: one
 * attribute, or when its bytes exceed the object header limit, the fewest
 * equal chunks (numpy array_split) name0, name1, ... that each fit. */
static int write_name_list(hid_t obj, const char *attr_name, const char *const *names, size_t n)
{
    size_t width = 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) > width)
            width = strlen(names[i]);
    size_t chunks = 1;
    while ((n / chunks + (n % chunks != 0)) * width > HDF5_OBJECT_HEADER_LIMIT)
        chunks++;
    if (chunks == 1)
        return write_name_chunk(obj, attr_name, names, n, width);
    size_t start = 0;
    for (size_t c = 0; c < chunks; c++) {
        size_t len = n / chunks + (c < n % chunks);
        char chunk_name[256];
        snprintf(chunk_name, sizeof chunk_name, "%s%zu", attr_name, c);
        if (write_name_chunk(obj, chunk_name, names + start, len, width) < 0)
            return -1;
        start += len;
    }
    return 0;
}

/* Group `name` under parent, created with times off when it does not exist. */
static hid_t open_or_create_group(hid_t parent, const char *name, hid_t gcpl)
{
    htri_t exists = H5Lexists(parent, name, H5P_DEFAULT);
    if (exists < 0)
        return -1;
    if (exists)
        return H5Gopen2(parent, name, H5P_DEFAULT);
    return H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
}

/* Dataset <group>/<name> (name may hold '/', making nested groups) of the
 * given shape (rank 0: scalar), contiguous, stored as file_type and written
 * from data in mem_type. */
static int write_dataset(hid_t group, const char *name, int rank, const int64_t *shape, hid_t file_type,
                         hid_t mem_type, const void *data, hid_t gcpl, hid_t dcpl)
{
    int rc = -1;
    hid_t parent = -1, space = -1, ds = -1;
    char path[MAX_NAME];
    snprintf(path, sizeof path, "%s", name);
    if ((parent = H5Gopen2(group, ".", H5P_DEFAULT)) < 0)
        goto fail;
    char *part = path, *slash;
    while ((slash = strchr(part, '/'))) {
        *slash = '\0';
        hid_t child = open_or_create_group(parent, part, gcpl);
        H5Gclose(parent);
        parent = child;
        if (parent < 0)
            goto fail;
        part = slash + 1;
    }
    hsize_t dims[NNRT_MAX_RANK];
    for (int i = 0; i < rank; i++)
        dims[i] = (hsize_t)shape[i];
    space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    if (space < 0)
        goto fail;
    if ((ds = H5Dcreate2(parent, part, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        goto fail;
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    if (npoints < 0 || (npoints > 0 && H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        goto fail;
    if (write_crc(ds, data, (size_t)npoints, H5Tget_size(file_type)) < 0)
        goto fail;
    rc = 0;
fail:
    if (ds >= 0) H5Dclose(ds);
    if (space >= 0) H5Sclose(space);
    if (parent >= 0) H5Gclose(parent);
    return rc;
}

static int write_weight(hid_t group, const NnrtWeightInfo *w, const float *data, hid_t gcpl, hid_t dcpl)
{
    return write_dataset(group, w->name, w->rank, w->shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, gcpl, dcpl);
}

/* A weight or slot name usable as an HDF5 path below a group: not empty, no
 * leading, trailing or doubled '/', shorter than MAX_NAME. */
static int valid_path_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    return len && len < MAX_NAME && name[0] != '/' && name[len - 1] != '/' && !strstr(name, "//");
}

/* Arguments a Keras file can hold: unique layer names without '/', each
 * weight in a listed layer, weight names unique in their layer and usable
 * as HDF5 paths. */
static int check_save_args(const char *path, const char *const *layer_names, size_t num_layers,
                           const NnrtWeightInfo *weights, size_t num_weights,
                           char *err, size_t errlen)
{
    for (size_t l = 0; l < num_layers; l++) {
        const char *ln = layer_names[l];
        if (!ln || !ln[0] || strchr(ln, '/') || !strcmp(ln, ".") || strlen(ln) >= MAX_NAME) {
            set_err(err, errlen, "%s: cannot save: layer %zu has an empty or too long name, or one with '/'",
                    path, l);
            return -1;
        }
        for (size_t k = 0; k < l; k++)
            if (!strcmp(layer_names[k], ln)) {
                set_err(err, errlen, "%s: cannot save: layer name '%s' is used twice", path, ln);
                return -1;
            }
    }
    for (size_t i = 0; i < num_weights; i++) {
        const NnrtWeightInfo *w = &weights[i];
        int ok;
        weight_count(w, &ok);
        if (!w->layer || !valid_path_name(w->name) || !ok) {
            set_err(err, errlen, "%s: cannot save: weight %zu ('%s') has a bad name or shape", path, i,
                    w->name ? w->name : "(null)");
            return -1;
        }
        size_t l = 0;
        while (l < num_layers && strcmp(layer_names[l], w->layer))
            l++;
        if (l == num_layers) {
            set_err(err, errlen, "%s: cannot save: weight '%s' belongs to layer '%s', which is not in the "
                    "layer list", path, w->name, w->layer);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(weights[k].layer, w->layer) && !strcmp(weights[k].name, w->name)) {
                set_err(err, errlen, "%s: cannot save: weight '%s' of layer '%s' is listed twice", path,
                        w->name, w->layer);
                return -1;
            }
    }
    return 0;
}

/* "<Optimizer>/iter:0": the step counter tf.keras 2.x lists first. */
static void iterations_name(char *buf, size_t len, const char *optimizer)
{
    snprintf(buf, len, "%s/iter:0", optimizer);
}

/* An optimizer state a Keras file can hold: a class name without '/', slot
 * names usable as paths, unique, and none the step counter's. */
static int check_optimizer_args(const char *path, const NnrtOptimizerState *opt, char *err, size_t errlen)
{
    char iter[MAX_NAME + 16];
    if (!opt->optimizer || !opt->optimizer[0] || strchr(opt->optimizer, '/') || strlen(opt->optimizer) >= 256 ||
        opt->iterations < 0 || (opt->num_slots && (!opt->slots || !opt->state))) {
        set_err(err, errlen, "%s: cannot save: bad optimizer state (name '%s', %lld iterations, %zu slots)", path,
                opt->optimizer ? opt->optimizer : "(null)", (long long)opt->iterations, opt->num_slots);
        return -1;
    }
    iterations_name(iter, sizeof iter, opt->optimizer);
    for (size_t i = 0; i < opt->num_slots; i++) {
        const NnrtWeightInfo *s = &opt->slots[i];
        int ok;
        weight_count(s, &ok);
        size_t stem = strlen(iter) - 2;     /* "Adam/iter" */
        int clash = valid_path_name(s->name) && !strncmp(s->name, iter, stem) &&
                    (s->name[stem] == '\0' || !strcmp(s->name + stem, ":0"));
        if (!valid_path_name(s->name) || !ok || clash) {
            set_err(err, errlen, "%s: cannot save: optimizer slot %zu ('%s') has a bad name or shape", path, i,
                    s->name ? s->name : "(null)");
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(opt->slots[k].name, s->name)) {
                set_err(err, errlen, "%s: cannot save: optimizer slot '%s' is listed twice", path, s->name);
                return -1;
            }
    }
    return 0;
}

/* Group optimizer_weights as tf.keras 2.x writes it: weight_names lists the
 * step counter then the slots, each a dataset at its name (int64 scalar,
 * then <f4 tensors), in that order. */
static int write_optimizer(hid_t file, const NnrtOptimizerState *opt, hid_t gcpl, hid_t dcpl)
{
    int rc = -1;
    hid_t group = -1;
    char iter[MAX_NAME + 16];
    const char **names = malloc((opt->num_slots + 1) * sizeof *names);
    if (!names)
        return -1;
    iterations_name(iter, sizeof iter, opt->optimizer);
    names[0] = iter;
    for (size_t i = 0; i < opt->num_slots; i++)
        names[i + 1] = opt->slots[i].name;
    if ((group = H5Gcreate2(file, "optimizer_weights", H5P_DEFAULT, gcpl, H5P_DEFAULT)) < 0 ||
        write_name_list(group, "weight_names", names, opt->num_slots + 1) < 0 ||
        write_dataset(group, iter, 0, NULL, H5T_STD_I64LE, H5T_NATIVE_INT64, &opt->iterations, gcpl, dcpl) < 0)
        goto fail;
    for (size_t i = 0; i < opt->num_slots; i++)
        if (write_weight(group, &opt->slots[i], opt->state + opt->slots[i].offset, gcpl, dcpl) < 0)
            goto fail;
    rc = 0;
fail:
    if (group >= 0 && H5Gclose(group) < 0)
        rc = -1;
    free(names);
    return rc;
}

/* Removes what interrupted saves to `path` left: "<path>.<pid>.<n>.tmp"
 * files whose process no longer runs (a kill -9 or a power cut mid-save).
 * A live process's file is its save in progress and stays. Best effort: a
 * folder that cannot be listed leaves them. */
static void remove_stale_temporaries(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dir_len = slash ? (size_t)(slash - path) : 0, base_len = strlen(base);
    char *dir_name = malloc(dir_len + 2);
    if (!dir_name)
        return;
    if (slash)
        snprintf(dir_name, dir_len + 2, "%.*s", (int)(dir_len ? dir_len : 1), path);
    else
        snprintf(dir_name, 2, ".");
    DIR *dir = opendir(dir_name);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        const char *name = e->d_name;
        if (strncmp(name, base, base_len) != 0 || name[base_len] != '.')
            continue;
        char *end;
        errno = 0;
        long pid = strtol(name + base_len + 1, &end, 10);
        if (errno || pid <= 0 || *end != '.' || end == name + base_len + 1)
            continue;
        const char *attempt = end + 1;
        strtol(attempt, &end, 10);
        if (end == attempt || strcmp(end, ".tmp") != 0 || (pid_t)pid == getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;            /* running (or not ours to ask): its save may be in progress */
        size_t full_len = dir_len + strlen(name) + 2;
        char *full = malloc(full_len);
        if (full) {
            snprintf(full, full_len, "%s/%s", dir_name, name);
            remove(full);
            free(full);
        }
    }
    if (dir)
        closedir(dir);
    free(dir_name);
}

int nnrt_h5_save(const char *path, const char *const *layer_names, size_t num_layers,
                 const NnrtWeightInfo *weights, size_t num_weights, const float *block,
                 const char *model_config_json, const NnrtOptimizerState *opt, char *err, size_t errlen)
{
    int rc = NNRT_EINVAL;
    char *tmp = NULL;
    const char **names = NULL;
    hid_t file = -1, mw = -1, group = -1, gcpl = -1, dcpl = -1;
    int tmp_made = 0;
    char detail[256];
    NnrtH5Quiet quiet;

    if (err && errlen)
        err[0] = '\0';
    if (!path || !path[0] || (num_layers && !layer_names) || (num_weights && (!weights || !block))) {
        set_err(err, errlen, "nnrt_h5_save: bad arguments");
        return NNRT_EINVAL;
    }
    if (check_save_args(path, layer_names, num_layers, weights, num_weights, err, errlen) < 0 ||
        (opt && check_optimizer_args(path, opt, err, errlen) < 0))
        return NNRT_EINVAL;
    nnrt_h5_quiet(&quiet);

    rc = NNRT_ENOMEM;
    size_t tmp_size = strlen(path) + 48;
    if (!(tmp = malloc(tmp_size)) || !(names = malloc((num_weights + 1) * sizeof *names))) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    remove_stale_temporaries(path);
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
    if (close(fd) < 0) {
        set_err(err, errlen, "%s: %s", tmp, strerror(errno));
        goto fail;
    }

    if ((gcpl = H5Pcreate(H5P_GROUP_CREATE)) < 0 || H5Pset_obj_track_times(gcpl, 0) < 0 ||
        (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_obj_track_times(dcpl, 0) < 0)
        goto hdf5_fail;
    if ((file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        goto hdf5_fail;
    if (write_vlen_string(file, "keras_version", KERAS_VERSION, H5T_CSET_UTF8) < 0 ||
        write_vlen_string(file, "backend", KERAS_BACKEND, H5T_CSET_UTF8) < 0)
        goto hdf5_fail;
    if (model_config_json && write_vlen_string(file, "model_config", model_config_json, H5T_CSET_ASCII) < 0)
        goto hdf5_fail;
    if ((mw = H5Gcreate2(file, "model_weights", H5P_DEFAULT, gcpl, H5P_DEFAULT)) < 0)
        goto hdf5_fail;
    if (write_name_list(mw, "layer_names", layer_names, num_layers) < 0 ||
        write_vlen_string(mw, "backend", KERAS_BACKEND, H5T_CSET_ASCII) < 0 ||
        write_vlen_string(mw, "keras_version", KERAS_VERSION, H5T_CSET_ASCII) < 0)
        goto hdf5_fail;

    for (size_t l = 0; l < num_layers; l++) {
        size_t n = 0;
        for (size_t i = 0; i < num_weights; i++)
            if (!strcmp(weights[i].layer, layer_names[l]))
                names[n++] = weights[i].name;
        if ((group = H5Gcreate2(mw, layer_names[l], H5P_DEFAULT, gcpl, H5P_DEFAULT)) < 0)
            goto hdf5_fail;
        if (write_name_list(group, "weight_names", names, n) < 0)
            goto hdf5_fail;
        for (size_t i = 0; i < num_weights; i++)
            if (!strcmp(weights[i].layer, layer_names[l]) &&
                write_weight(group, &weights[i], block + weights[i].offset, gcpl, dcpl) < 0) {
                set_err(err, errlen, "%s: cannot write weight '%s' of layer '%s' (HDF5: %s)", path,
                        weights[i].name, layer_names[l], h5_detail(detail, sizeof detail));
                goto fail;
            }
        herr_t closed = H5Gclose(group);
        group = -1;
        if (closed < 0)
            goto hdf5_fail;
    }
    herr_t closed = H5Gclose(mw);
    mw = -1;
    if (closed < 0)
        goto hdf5_fail;
    if (opt && write_optimizer(file, opt, gcpl, dcpl) < 0) {
        set_err(err, errlen, "%s: cannot write the optimizer state (HDF5: %s)", path, h5_detail(detail, sizeof detail));
        goto fail;
    }
    closed = H5Fclose(file);     /* flushes everything */
    file = -1;
    if (closed < 0)
        goto hdf5_fail;

    /* on disk before the rename makes it the file */
    if ((fd = open(tmp, O_RDONLY)) < 0 || fsync(fd) < 0 || close(fd) < 0) {
        set_err(err, errlen, "%s: cannot sync %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        set_err(err, errlen, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto fail;
    }
    tmp_made = 0;
    rc = NNRT_OK;
    goto fail;

hdf5_fail:
    set_err(err, errlen, "%s: cannot write HDF5 file (HDF5: %s); check the folder is writable and has space",
            path, h5_detail(detail, sizeof detail));
fail:
    if (group >= 0) H5Gclose(group);
    if (mw >= 0) H5Gclose(mw);
    if (file >= 0) H5Fclose(file);
    if (gcpl >= 0) H5Pclose(gcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (tmp_made)
        remove(tmp);
    free(tmp);
    free(names);
    nnrt_h5_restore(&quiet);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct {
    char **s;                    /* owned strings */
    size_t n, cap;
} StrList;

static void strlist_free(StrList *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

static int strlist_push(StrList *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **grown = realloc(l->s, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->s = grown;
        l->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    l->s[l->n++] = copy;
    return 0;
}

/* Append the strings of one attribute: fixed or variable length, scalar or
 * 1-D; a non-string attribute with no elements (Keras's empty list) adds
 * none. Returns 0, NNRT_EFORMAT or NNRT_ENOMEM. */
static int read_string_attr(hid_t obj, const char *name, StrList *out)
{
    int rc = NNRT_EFORMAT;
    hid_t attr = -1, ftype = -1, mtype = -1, space = -1;
    char *fixed = NULL;
    char **vlen = NULL;
    hssize_t npoints;
    if ((attr = H5Aopen(obj, name, H5P_DEFAULT)) < 0 || (ftype = H5Aget_type(attr)) < 0 ||
        (space = H5Aget_space(attr)) < 0 || (npoints = H5Sget_simple_extent_npoints(space)) < 0)
        goto fail;
    size_t n = (size_t)npoints;
    if (H5Tget_class(ftype) != H5T_STRING) {
        rc = n == 0 ? NNRT_OK : NNRT_EFORMAT;
        goto fail;
    }
    /* each name takes at least a byte of the file (fixed: its width): a
     * damaged dataspace must not make us allocate more */
    size_t min_bytes = H5Tget_size(ftype) ? H5Tget_size(ftype) : 1;
    hsize_t file_size = nnrt_h5_file_size(obj);
    if (H5Tis_variable_str(ftype) > 0)
        min_bytes = 1;
    if (n > file_size / min_bytes)
        goto fail;
    if ((mtype = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0)
        goto fail;
    htri_t is_vlen = H5Tis_variable_str(ftype);
    if (is_vlen < 0)
        goto fail;
    if (is_vlen) {
        if (H5Tset_size(mtype, H5T_VARIABLE) < 0)
            goto fail;
        if (!(vlen = calloc(n + 1, sizeof *vlen))) {
            rc = NNRT_ENOMEM;
            goto fail;
        }
        if (H5Aread(attr, mtype, vlen) < 0)
            goto fail;
        rc = NNRT_OK;
        for (size_t i = 0; i < n && rc == NNRT_OK; i++)
            if (strlist_push(out, vlen[i] ? vlen[i] : "", vlen[i] ? strlen(vlen[i]) : 0) < 0)
                rc = NNRT_ENOMEM;
        vlen_reclaim(mtype, space, H5P_DEFAULT, vlen);
        goto fail;
    }
    size_t width = H5Tget_size(ftype);
    H5T_str_t pad = H5Tget_strpad(ftype);
    if (width == 0 || H5Tset_size(mtype, width) < 0 || H5Tset_strpad(mtype, H5T_STR_NULLPAD) < 0)
        goto fail;
    if (!(fixed = calloc(n ? n : 1, width))) {
        rc = NNRT_ENOMEM;
        goto fail;
    }
    if (n && H5Aread(attr, mtype, fixed) < 0)
        goto fail;
    rc = NNRT_OK;
    for (size_t i = 0; i < n && rc == NNRT_OK; i++) {
        const char *s = fixed + i * width;
        size_t len = strnlen(s, width);
        while (pad == H5T_STR_SPACEPAD && len && s[len - 1] == ' ')
            len--;
        if (strlist_push(out, s, len) < 0)
            rc = NNRT_ENOMEM;
    }
fail:
    free(fixed);
    free(vlen);
    if (space >= 0) H5Sclose(space);
    if (mtype >= 0) H5Tclose(mtype);
    if (ftype >= 0) H5Tclose(ftype);
    if (attr >= 0) H5Aclose(attr);
    return rc;
}

/* A Keras name list: attribute `name`, or its chunks name0, name1, ...
 * *found = 0 when neither exists. */
static int read_name_list(hid_t obj, const char *name, StrList *out, int *found)
{
    *found = 0;
    htri_t exists = H5Aexists(obj, name);
    if (exists < 0)
        return NNRT_EFORMAT;
    if (exists) {
        *found = 1;
        return read_string_attr(obj, name, out);
    }
    for (unsigned chunk = 0;; chunk++) {
        char chunk_name[256];
        snprintf(chunk_name, sizeof chunk_name, "%s%u", name, chunk);
        if ((exists = H5Aexists(obj, chunk_name)) < 0)
            return NNRT_EFORMAT;
        if (!exists)
            return NNRT_OK;
        *found = 1;
        int rc = read_string_attr(obj, chunk_name, out);
        if (rc < 0)
            return rc;
    }
}

/* Length of s without a trailing ":0". */
static size_t name_len(const char *s)
{
    size_t n = strlen(s);
    return n >= 2 && s[n - 2] == ':' && s[n - 1] == '0' ? n - 2 : n;
}

/* How many trailing '/'-separated components a[0..la) and b[0..lb) share;
 * SIZE_MAX when they are equal. */
static size_t shared_tail(const char *a, size_t la, const char *b, size_t lb)
{
    if (la == lb && !memcmp(a, b, la))
        return SIZE_MAX;
    size_t shared = 0;
    while (la && lb) {
        size_t ca = la, cb = lb;     /* starts of the last components */
        while (ca && a[ca - 1] != '/')
            ca--;
        while (cb && b[cb - 1] != '/')
            cb--;
        if (la - ca != lb - cb || memcmp(a + ca, b + cb, la - ca))
            break;
        shared++;
        if (!ca || !cb)
            break;
        la = ca - 1, lb = cb - 1;
    }
    return shared;
}

/* Index into names of the weight that `want` names, or -1 (none) or -2
 * (several equally good). */
static long match_weight(const char *want, const StrList *names)
{
    size_t wl = name_len(want), best = 0;
    long best_i = -1;
    int tie = 0;
    for (size_t i = 0; i < names->n; i++) {
        size_t score = shared_tail(want, wl, names->s[i], name_len(names->s[i]));
        if (score == SIZE_MAX)
            return (long)i;
        if (score > best) {
            best = score, best_i = (long)i, tie = 0;
        } else if (score == best && score > 0) {
            tie = 1;
        }
    }
    return tie ? -2 : best_i;
}

/* Comma-separated list of up to the first few names, for messages. */
static void join_names(char *buf, size_t len, const StrList *l)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->n && used + 1 < len; i++) {
        if (i == 6) {
            snprintf(buf + used, len - used, ", ... (%zu in all)", l->n);
            return;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", l->s[i]);
    }
    if (l->n == 0)
        snprintf(buf, len, "none");
}

/* The layer group being read and its weight_names. */
typedef struct {
    const char *layer;           /* NULL: none open */
    hid_t group;                 /* -1: the file has no such layer */
    StrList names;
    int listed;                  /* weight_names present */
} LayerCursor;

static void cursor_close(LayerCursor *c)
{
    if (c->group >= 0)
        H5Gclose(c->group);
    strlist_free(&c->names);
    c->layer = NULL;
    c->group = -1;
    c->listed = 0;
}

static int cursor_open(LayerCursor *c, hid_t root, const char *layer)
{
    cursor_close(c);
    c->layer = layer;
    htri_t exists = strchr(layer, '/') ? 0 : H5Lexists(root, layer, H5P_DEFAULT);
    if (exists < 0)
        return NNRT_EFORMAT;
    if (!exists)
        return NNRT_OK;
    hid_t obj = H5Oopen(root, layer, H5P_DEFAULT);
    if (obj < 0)
        return NNRT_EFORMAT;
    if (H5Iget_type(obj) != H5I_GROUP) {     /* a dataset of that name is no layer */
        H5Oclose(obj);
        return NNRT_OK;
    }
    c->group = obj;
    return read_name_list(c->group, "weight_names", &c->names, &c->listed);
}

/* Where the layer groups are: model_weights/ unless the root itself carries
 * layer_names (Keras's own rule), else the root of a save_weights file. */
static int open_weights_root(hid_t file, hid_t *root, const char *path, char *err, size_t errlen)
{
    char detail[256];
    htri_t root_listed = H5Aexists(file, "layer_names");
    htri_t root_chunked = H5Aexists(file, "layer_names0");
    htri_t has_mw = H5Lexists(file, "model_weights", H5P_DEFAULT);
    htri_t has_layers = H5Lexists(file, "layers", H5P_DEFAULT);
    if (root_listed < 0 || root_chunked < 0 || has_mw < 0 || has_layers < 0)
        goto damaged;
    if (root_listed || root_chunked || has_mw) {
        if ((*root = H5Gopen2(file, root_listed || root_chunked ? "/" : "model_weights", H5P_DEFAULT)) < 0)
            goto damaged;
        return NNRT_OK;
    }
    if (has_layers)
        set_err(err, errlen, "%s: Keras 3 '.weights.h5' layout (layers/<name>/vars/<i>) is not supported; "
                "save with model.save('x.h5') instead", path);
    else
        set_err(err, errlen, "%s: not a Keras weights file: no model_weights group and no layer_names attribute",
                path);
    return NNRT_EFORMAT;
damaged:
    set_err(err, errlen, "%s: damaged HDF5 structure (HDF5: %s)", path, h5_detail(detail, sizeof detail));
    return NNRT_EFORMAT;
}

/* Keras 1 files use other kernel layouts; Keras itself converts them. */
static int check_keras_version(hid_t root, const char *path, char *err, size_t errlen)
{
    StrList v = {0};
    int found = 0;
    if (H5Aexists(root, "keras_version") > 0 && read_name_list(root, "keras_version", &v, &found) == NNRT_OK &&
        v.n == 1 && v.s[0][0] == '1' && (v.s[0][1] == '\0' || v.s[0][1] == '.')) {
        set_err(err, errlen, "%s: written by Keras %s, whose weight layouts differ; re-save it with Keras 2 or later",
                path, v.s[0]);
        strlist_free(&v);
        return NNRT_EFORMAT;
    }
    strlist_free(&v);
    return NNRT_OK;
}

/* Read weight w from the cursor's group into dst. Returns NNRT_OK,
 * NNRT_EMISMATCH with a reason in note (name or shape), or a hard error
 * with its message in err. */
static int read_weight(const LayerCursor *c, hid_t root, const NnrtWeightInfo *w, float *dst,
                       const char *path, char *note, size_t notelen, char *err, size_t errlen)
{
    int rc = NNRT_EFORMAT;
    hid_t ds = -1, type = -1, space = -1;
    char detail[256], want_shape[160], have_shape[160];
    if (c->group < 0) {
        StrList layers = {0};
        int found;
        char list[256];
        if (read_name_list(root, "layer_names", &layers, &found) == NNRT_OK && found)
            join_names(list, sizeof list, &layers);
        else
            snprintf(list, sizeof list, "(no layer_names)");
        strlist_free(&layers);
        snprintf(note, notelen, "layer '%s' is not in the file (its layers: %s); layer names must match",
                 w->layer, list);
        return NNRT_EMISMATCH;
    }
    if (!c->listed) {
        set_err(err, errlen, "%s: layer group '%s' has no weight_names attribute; not a Keras weights file",
                path, w->layer);
        return NNRT_EFORMAT;
    }
    long k = match_weight(w->name, &c->names);
    if (k < 0) {
        char list[256];
        join_names(list, sizeof list, &c->names);
        snprintf(note, notelen, "layer '%s' has %s weight '%s' (it has: %s)", w->layer,
                 k == -2 ? "more than one candidate for" : "no", w->name, list);
        return NNRT_EMISMATCH;
    }
    const char *file_name = c->names.s[k];
    if ((ds = H5Dopen2(c->group, file_name, H5P_DEFAULT)) < 0) {
        set_err(err, errlen, "%s: layer '%s' lists weight '%s' but it cannot be opened (HDF5: %s)",
                path, w->layer, file_name, h5_detail(detail, sizeof detail));
        goto fail;
    }
    if ((type = H5Dget_type(ds)) < 0 || (space = H5Dget_space(ds)) < 0)
        goto hdf5_fail;
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[NNRT_MAX_RANK];
    if (rank < 0)
        goto hdf5_fail;
    if (rank > NNRT_MAX_RANK) {
        snprintf(note, notelen, "weight '%s' of layer '%s' has rank %d in the file, more than %d",
                 file_name, w->layer, rank, NNRT_MAX_RANK);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        goto hdf5_fail;
    int64_t shape[NNRT_MAX_RANK];
    int same = rank == w->rank && H5Sget_simple_extent_type(space) != H5S_NULL;
    for (int i = 0; i < rank; i++) {
        shape[i] = (int64_t)dims[i];
        same = same && shape[i] == w->shape[i];
    }
    if (!same) {
        format_shape(want_shape, sizeof want_shape, w->rank, w->shape);
        format_shape(have_shape, sizeof have_shape, rank, shape);
        snprintf(note, notelen, "weight '%s' of layer '%s': model expects shape %s, file has %s",
                 w->name, w->layer, want_shape, have_shape);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    if (H5Tget_class(type) != H5T_FLOAT) {
        snprintf(note, notelen, "weight '%s' of layer '%s' is not floating point in the file", file_name, w->layer);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    int fits = nnrt_h5_storage_fits(ds, type, npoints);
    if (fits < 0)
        goto hdf5_fail;
    if (!fits) {
        set_err(err, errlen, "%s: weight '%s' of layer '%s' is stored past the end of the file (or in %zu-byte "
                "floats); the file is truncated or damaged", path, file_name, w->layer, H5Tget_size(type));
        goto fail;
    }
    if (npoints > 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        set_err(err, errlen, "%s: cannot read weight '%s' of layer '%s' (HDF5: %s); the file may be truncated",
                path, file_name, w->layer, h5_detail(detail, sizeof detail));
        goto fail;
    }
    int crc = verify_crc(ds, type, H5T_IEEE_F32LE, dst, (size_t)npoints, sizeof(float));
    if (crc < 0)
        goto hdf5_fail;
    if (crc > 0) {
        set_err(err, errlen, "%s: weight '%s' of layer '%s' does not match its " CRC_ATTR " checksum: the file "
                "was damaged or changed after nncc saved it", path, file_name, w->layer);
        goto fail;
    }
    rc = NNRT_OK;
    goto fail;
hdf5_fail:
    set_err(err, errlen, "%s: damaged weight '%s' of layer '%s' (HDF5: %s)", path, file_name, w->layer,
            h5_detail(detail, sizeof detail));
fail:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (ds >= 0) H5Dclose(ds);
    return rc;
}

/* One weights load: the model's table, the scratch block the file's values
 * go to (weight i at at[i]), and what the read found. The read itself
 * (read_weights) touches only scratch, ok, missing, first and err, so it
 * can run in a child process and send them back. */
typedef struct {
    const char *path;
    const NnrtWeightInfo *weights;
    size_t num_weights;
    const size_t *at;            /* [num_weights]: offset of weight i in scratch */
    size_t total;                /* floats in scratch */
    float *scratch;
    unsigned char *ok;           /* [num_weights]: weight i was read */
    size_t missing;              /* weights of the model the file lacks (or has in another shape) */
    char first[512];             /* why the first of them is missing */
    char *err;
    size_t errlen;
} LoadJob;

/* libhdf5's part of a load: every weight of the table found in the file is
 * read into scratch and checked against its checksum. */
static int read_weights(LoadJob *j)
{
    int rc;
    hid_t file = -1, root = -1;
    LayerCursor cursor = {NULL, -1, {0}, 0};
    char detail[256], note[512];
    const char *path = j->path;
    char *err = j->err;
    size_t errlen = j->errlen;

    if ((file = nnrt_h5_open_read(path, "a Keras .h5 weights file", &rc, err, errlen)) < 0)
        goto fail;
    if ((rc = open_weights_root(file, &root, path, err, errlen)) < 0)
        goto fail;
    if ((rc = check_keras_version(root, path, err, errlen)) < 0)
        goto fail;
    for (size_t i = 0; i < j->num_weights; i++) {
        const NnrtWeightInfo *w = &j->weights[i];
        if (!cursor.layer || strcmp(cursor.layer, w->layer)) {
            if ((rc = cursor_open(&cursor, root, w->layer)) < 0) {
                if (rc == NNRT_EFORMAT)
                    set_err(err, errlen, "%s: cannot read layer group '%s' (HDF5: %s)", path, w->layer,
                            h5_detail(detail, sizeof detail));
                else
                    set_err(err, errlen, "%s: out of memory", path);
                goto fail;
            }
        }
        rc = read_weight(&cursor, root, w, j->scratch + j->at[i], path, note, sizeof note, err, errlen);
        if (rc == NNRT_EMISMATCH) {
            if (!j->missing++)
                snprintf(j->first, sizeof j->first, "%s", note);
            continue;
        }
        if (rc < 0)
            goto fail;
        j->ok[i] = 1;
    }
    rc = NNRT_OK;
fail:
    cursor_close(&cursor);
    if (root >= 0) H5Gclose(root);
    if (file >= 0) H5Fclose(file);
    return rc;
}

/* A string on the wire: its length, then its bytes. */
static int put_string(FILE *out, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    return fwrite(&n, sizeof n, 1, out) == 1 && fwrite(s, 1, n, out) == n ? 0 : -1;
}

static int take_string(NnrtWire *w, char *dst, size_t cap)
{
    uint32_t n;
    if (nnrt_wire_take(w, &n, sizeof n) < 0 || n > w->len - w->at)
        return -1;
    size_t keep = n < cap ? n : cap - 1;
    memcpy(dst, w->buf + w->at, keep);
    dst[keep] = '\0';
    w->at += n;
    return 0;
}

/* In the child: read_weights, then rc, err, missing, first, ok[] and the
 * scratch block down the pipe. */
static int read_weights_child(void *ctx, FILE *out)
{
    LoadJob *j = ctx;
    int32_t rc = read_weights(j);
    uint64_t missing = j->missing;
    if (fwrite(&rc, sizeof rc, 1, out) != 1 || put_string(out, j->err ? j->err : "") < 0 ||
        fwrite(&missing, sizeof missing, 1, out) != 1 || put_string(out, j->first) < 0 ||
        fwrite(j->ok, 1, j->num_weights, out) != j->num_weights ||
        fwrite(j->scratch, sizeof(float), j->total, out) != j->total)
        return -1;
    return 0;
}

/* read_weights in a child process (nnrt_h5_isolated); the same results in
 * the parent's job. */
static int read_weights_isolated(LoadJob *j)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = nnrt_h5_isolated(j->path, read_weights_child, j, j->total * sizeof(float), &buf, &len, j->err,
                              j->errlen);
    if (rc < 0)
        return rc;
    NnrtWire w = {buf, len, 0};
    int32_t child_rc;
    uint64_t missing;
    char ignored[1];
    if (nnrt_wire_take(&w, &child_rc, sizeof child_rc) < 0 ||
        take_string(&w, j->err && j->errlen ? j->err : ignored, j->err && j->errlen ? j->errlen : 1) < 0 ||
        nnrt_wire_take(&w, &missing, sizeof missing) < 0 || take_string(&w, j->first, sizeof j->first) < 0 ||
        nnrt_wire_take(&w, j->ok, j->num_weights) < 0 ||
        nnrt_wire_take(&w, j->scratch, j->total * sizeof(float)) < 0 || w.at != w.len) {
        set_err(j->err, j->errlen, "%s: the process reading it sent a short answer", j->path);
        free(buf);
        return NNRT_EIO;
    }
    free(buf);
    j->missing = (size_t)missing;
    return child_rc;
}

/* "[3, 17]": the index of flat element k in a tensor of that shape. */
static void format_index(char *buf, size_t len, size_t k, int rank, const int64_t *shape)
{
    int64_t index[NNRT_MAX_RANK];
    for (int d = rank - 1; d >= 0; d--) {
        index[d] = shape[d] > 0 ? (int64_t)(k % (size_t)shape[d]) : 0;
        k = shape[d] > 0 ? k / (size_t)shape[d] : k;
    }
    format_shape(buf, len, rank, index);
}

/* NNRT_EFORMAT naming the first NaN or Inf among the loaded weights, unless
 * the policy allows them. */
static int check_finite(const LoadJob *j)
{
    if (nnrt_h5_get_policy().allow_nonfinite)
        return NNRT_OK;
    for (size_t i = 0; i < j->num_weights; i++) {
        const NnrtWeightInfo *w = &j->weights[i];
        int valid;
        size_t n = j->ok[i] ? weight_count(w, &valid) : 0;
        const float *v = j->scratch + j->at[i];
        for (size_t k = 0; k < n; k++)
            if (!isfinite(v[k])) {
                char where[160];
                format_index(where, sizeof where, k, w->rank, w->shape);
                set_err(j->err, j->errlen, "%s: weight '%s' of layer '%s' holds %s at index %s (the first); "
                        "pass --allow-nonfinite to load it anyway", j->path, w->name, w->layer,
                        isnan(v[k]) ? "NaN" : v[k] > 0 ? "+Inf" : "-Inf", where);
                return NNRT_EFORMAT;
            }
    }
    return NNRT_OK;
}

/* "dense, dense_1, ..." : the layers the model expects weights for. */
static void join_model_layers(char *buf, size_t len, const NnrtWeightInfo *weights, size_t n)
{
    size_t used = 0, shown = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        if (i && !strcmp(weights[i].layer, weights[i - 1].layer))
            continue;
        if (shown++ == 6) {
            snprintf(buf + used, len - used, ", ...");
            return;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", weights[i].layer);
    }
}

int nnrt_h5_load(const char *path, const NnrtWeightInfo *weights, size_t num_weights,
                 float *block, int strict, unsigned char *loaded, char *err, size_t errlen)
{
    int rc = NNRT_EINVAL;
    size_t *at = NULL;
    LoadJob job = {.path = path, .weights = weights, .num_weights = num_weights, .err = err, .errlen = errlen};
    NnrtH5Quiet quiet;

    if (err && errlen)
        err[0] = '\0';
    if (loaded && num_weights)
        memset(loaded, 0, num_weights);
    if (!path || (num_weights && (!weights || !block))) {
        set_err(err, errlen, "nnrt_h5_load: bad arguments");
        return NNRT_EINVAL;
    }
    nnrt_h5_quiet(&quiet);

    /* scratch layout: weight i at at[i], in table order */
    rc = NNRT_ENOMEM;
    if (!(at = malloc((num_weights + 1) * sizeof *at)) || !(job.ok = calloc(num_weights + 1, 1))) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    job.at = at;
    for (size_t i = 0; i < num_weights; i++) {
        int valid;
        size_t n = weight_count(&weights[i], &valid);
        if (!valid || !weights[i].layer || !weights[i].name || n > SIZE_MAX / sizeof(float) - job.total) {
            set_err(err, errlen, "nnrt_h5_load: weight %zu has a bad name or shape", i);
            rc = NNRT_EINVAL;
            goto fail;
        }
        at[i] = job.total;
        job.total += n;
    }
    if (!(job.scratch = calloc(job.total ? job.total : 1, sizeof *job.scratch))) {
        set_err(err, errlen, "%s: out of memory (%zu weights)", path, job.total);
        goto fail;
    }

    if ((rc = nnrt_h5_precheck(path, "a Keras .h5 weights file", err, errlen)) < 0)
        goto fail;
    rc = nnrt_h5_get_policy().isolate ? read_weights_isolated(&job) : read_weights(&job);
    if (rc < 0 || (rc = check_finite(&job)) < 0)
        goto fail;
    size_t missing = job.missing;
    if (num_weights && missing == num_weights) {
        char layers[256];
        join_model_layers(layers, sizeof layers, weights, num_weights);
        set_err(err, errlen, "%s: none of the model's %zu weights is in the file (the model's layers: %s); first: %s",
                path, num_weights, layers, job.first);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    if (strict && missing) {
        set_err(err, errlen, "%s: %zu of %zu weights do not match the model; first: %s", path, missing,
                num_weights, job.first);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    for (size_t i = 0; i < num_weights; i++) {
        if (!job.ok[i])
            continue;
        int valid;
        memcpy(block + weights[i].offset, job.scratch + at[i], weight_count(&weights[i], &valid) * sizeof(float));
        if (loaded)
            loaded[i] = 1;
    }
    if (missing)
        set_err(err, errlen, "%s: loaded %zu of %zu weights; first skipped: %s", path, num_weights - missing,
                num_weights, job.first);
    rc = NNRT_OK;
fail:
    free(job.scratch);
    free(at);
    free(job.ok);
    nnrt_h5_restore(&quiet);
    return rc;
}

/* ---- optimizer state ------------------------------------------------------ */

/* Index in names of the entry equal to want (":0" optional on either), or -1. */
static long find_name(const StrList *names, const char *want)
{
    size_t wl = name_len(want);
    for (size_t i = 0; i < names->n; i++)
        if (name_len(names->s[i]) == wl && !memcmp(names->s[i], want, wl))
            return (long)i;
    return -1;
}

/* The step counter: an integer or integral float scalar (one element).
 * Returns NNRT_OK, NNRT_EMISMATCH (note says why) or NNRT_EFORMAT. */
static int read_iterations(hid_t group, const char *name, int64_t *out, char *note, size_t notelen)
{
    int rc = NNRT_EFORMAT;
    hid_t ds = -1, type = -1, space = -1;
    if ((ds = H5Dopen2(group, name, H5P_DEFAULT)) < 0 || (type = H5Dget_type(ds)) < 0 ||
        (space = H5Dget_space(ds)) < 0)
        goto fail;
    H5T_class_t cls = H5Tget_class(type);
    if (H5Sget_simple_extent_npoints(space) != 1 || (cls != H5T_INTEGER && cls != H5T_FLOAT)) {
        snprintf(note, notelen, "its step counter '%s' is not one number", name);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    if (nnrt_h5_storage_fits(ds, type, 1) != 1)
        goto fail;
    if (cls == H5T_INTEGER) {
        if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0 ||
            verify_crc(ds, type, H5T_STD_I64LE, out, 1, sizeof *out) != 0)
            goto fail;
    } else {
        double v;
        if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0)
            goto fail;
        if (!(v >= 0 && v < 9.2e18)) {
            snprintf(note, notelen, "its step counter '%s' is %g", name, v);
            rc = NNRT_EMISMATCH;
            goto fail;
        }
        *out = (int64_t)llround(v);
    }
    if (*out < 0) {
        snprintf(note, notelen, "its step counter '%s' is %lld", name, (long long)*out);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    rc = NNRT_OK;
fail:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (ds >= 0) H5Dclose(ds);
    return rc;
}

/* One slot tensor into dst: NNRT_OK, NNRT_EMISMATCH (shape or type; note
 * says which) or NNRT_EFORMAT. */
static int read_slot(hid_t group, const char *name, const NnrtWeightInfo *s, float *dst, char *note, size_t notelen)
{
    int rc = NNRT_EFORMAT;
    hid_t ds = -1, type = -1, space = -1;
    hsize_t dims[NNRT_MAX_RANK];
    int64_t shape[NNRT_MAX_RANK];
    char want[160], have[160];
    if ((ds = H5Dopen2(group, name, H5P_DEFAULT)) < 0 || (type = H5Dget_type(ds)) < 0 ||
        (space = H5Dget_space(ds)) < 0)
        goto fail;
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0)
        goto fail;
    int same = rank == s->rank && H5Sget_simple_extent_type(space) != H5S_NULL;
    if (same && rank > 0 && H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        goto fail;
    for (int i = 0; same && i < rank; i++)
        same = (int64_t)dims[i] == s->shape[i];
    if (!same) {
        if (rank >= 0 && rank <= NNRT_MAX_RANK && H5Sget_simple_extent_dims(space, dims, NULL) >= 0) {
            for (int i = 0; i < rank; i++)
                shape[i] = (int64_t)dims[i];
            format_shape(have, sizeof have, rank, shape);
        } else {
            snprintf(have, sizeof have, "rank %d", rank);
        }
        format_shape(want, sizeof want, s->rank, s->shape);
        snprintf(note, notelen, "slot '%s' has shape %s in the file, the model's is %s", name, have, want);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    if (H5Tget_class(type) != H5T_FLOAT) {
        snprintf(note, notelen, "slot '%s' is not floating point in the file", name);
        rc = NNRT_EMISMATCH;
        goto fail;
    }
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    if (nnrt_h5_storage_fits(ds, type, npoints) != 1 ||
        (npoints > 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) ||
        verify_crc(ds, type, H5T_IEEE_F32LE, dst, (size_t)npoints, sizeof(float)) != 0)
        goto fail;
    rc = NNRT_OK;
fail:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (ds >= 0) H5Dclose(ds);
    return rc;
}

/* Whose state the file holds, for the message when it is not ours: the
 * class name before "/iter:0" of the first entry, else the entry itself. */
static void describe_foreign_state(char *buf, size_t len, const StrList *names)
{
    if (names->n == 0) {
        snprintf(buf, len, "an empty optimizer state");
        return;
    }
    const char *first = names->s[0], *slash = strchr(first, '/');
    size_t n = name_len(first);
    if (slash && ((size_t)(slash - first) + 5 == n) && !strncmp(slash, "/iter", 5))
        snprintf(buf, len, "%.*s's optimizer state", (int)(slash - first), first);
    else
        snprintf(buf, len, "an optimizer state in another layout (first entry '%s')", first);
}

/* One optimizer-state load; read_optimizer fills scratch (slot i at at[i]),
 * iterations and err, so it can run in a child process like read_weights. */
typedef struct {
    const char *path;
    const NnrtOptimizerState *opt;
    const size_t *at;
    size_t total;
    float *scratch;
    int64_t iterations;
    char *err;
    size_t errlen;
} OptimizerJob;

/* libhdf5's part: 1 with scratch and iterations set, 0 when the file holds
 * no state of ours (err says why), negative on a damaged file. */
static int read_optimizer(OptimizerJob *j)
{
    int rc = NNRT_EINVAL;
    hid_t file = -1, group = -1;
    StrList names = {0};
    const NnrtOptimizerState *opt = j->opt;
    const char *path = j->path;
    char *err = j->err;
    size_t errlen = j->errlen;
    char detail[256], note[512] = "", iter[MAX_NAME + 16], list[256];

    if ((file = nnrt_h5_open_read(path, "a Keras .h5 file", &rc, err, errlen)) < 0)
        goto fail;
    htri_t exists = H5Lexists(file, "optimizer_weights", H5P_DEFAULT);
    if (exists < 0)
        goto damaged;
    if (!exists) {
        set_err(err, errlen, "%s: no optimizer state (no optimizer_weights group); the optimizer starts afresh", path);
        rc = 0;
        goto fail;
    }
    int listed;
    if ((group = H5Gopen2(file, "optimizer_weights", H5P_DEFAULT)) < 0)
        goto damaged;
    if ((rc = read_name_list(group, "weight_names", &names, &listed)) < 0) {
        if (rc == NNRT_ENOMEM)
            set_err(err, errlen, "%s: out of memory", path);
        else
            set_err(err, errlen, "%s: unreadable optimizer_weights/weight_names (HDF5: %s)", path,
                    h5_detail(detail, sizeof detail));
        goto fail;
    }
    rc = NNRT_EFORMAT;
    if (!listed) {
        set_err(err, errlen, "%s: group optimizer_weights has no weight_names attribute; not a Keras file", path);
        goto fail;
    }

    /* ours: "<optimizer>/iter:0" (older tf.keras: ".../iterations:0") and every slot by name */
    rc = 0;
    iterations_name(iter, sizeof iter, opt->optimizer);
    long k_iter = find_name(&names, iter);
    if (k_iter < 0) {
        snprintf(iter, sizeof iter, "%s/iterations:0", opt->optimizer);
        k_iter = find_name(&names, iter);
    }
    if (k_iter < 0) {
        describe_foreign_state(note, sizeof note, &names);
        set_err(err, errlen, "%s: the file holds %s, not %s's; the optimizer starts afresh", path, note,
                opt->optimizer);
        goto fail;
    }
    if (names.n != opt->num_slots + 1) {
        set_err(err, errlen, "%s: the file's %s state has %zu slot tensors, the model's %zu; the optimizer starts "
                "afresh", path, opt->optimizer, names.n - 1, opt->num_slots);
        goto fail;
    }
    if ((rc = read_iterations(group, names.s[k_iter], &j->iterations, note, sizeof note)) < 0)
        goto read_failed;
    for (size_t i = 0; i < opt->num_slots; i++) {
        const NnrtWeightInfo *s = &opt->slots[i];
        long k = find_name(&names, s->name);
        if (k < 0 || k == k_iter) {
            join_names(list, sizeof list, &names);
            set_err(err, errlen, "%s: no optimizer slot '%s' in the file (it has: %s); the optimizer starts afresh",
                    path, s->name, list);
            rc = 0;
            goto fail;
        }
        if ((rc = read_slot(group, names.s[k], s, j->scratch + j->at[i], note, sizeof note)) < 0)
            goto read_failed;
    }
    rc = 1;
    goto fail;

read_failed:
    if (rc == NNRT_EMISMATCH) {
        set_err(err, errlen, "%s: %s; the optimizer starts afresh", path, note);
        rc = 0;
        goto fail;
    }
damaged:
    set_err(err, errlen, "%s: damaged optimizer state (HDF5: %s); the file may be truncated", path,
            h5_detail(detail, sizeof detail));
    rc = NNRT_EFORMAT;
fail:
    strlist_free(&names);
    if (group >= 0) H5Gclose(group);
    if (file >= 0) H5Fclose(file);
    return rc;
}

/* In the child: read_optimizer, then rc, err, iterations and scratch. */
static int read_optimizer_child(void *ctx, FILE *out)
{
    OptimizerJob *j = ctx;
    int32_t rc = read_optimizer(j);
    if (fwrite(&rc, sizeof rc, 1, out) != 1 || put_string(out, j->err ? j->err : "") < 0 ||
        fwrite(&j->iterations, sizeof j->iterations, 1, out) != 1 ||
        fwrite(j->scratch, sizeof(float), j->total, out) != j->total)
        return -1;
    return 0;
}

static int read_optimizer_isolated(OptimizerJob *j)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = nnrt_h5_isolated(j->path, read_optimizer_child, j, j->total * sizeof(float), &buf, &len, j->err,
                              j->errlen);
    if (rc < 0)
        return rc;
    NnrtWire w = {buf, len, 0};
    int32_t child_rc;
    char ignored[1];
    if (nnrt_wire_take(&w, &child_rc, sizeof child_rc) < 0 ||
        take_string(&w, j->err && j->errlen ? j->err : ignored, j->err && j->errlen ? j->errlen : 1) < 0 ||
        nnrt_wire_take(&w, &j->iterations, sizeof j->iterations) < 0 ||
        nnrt_wire_take(&w, j->scratch, j->total * sizeof(float)) < 0 || w.at != w.len) {
        set_err(j->err, j->errlen, "%s: the process reading it sent a short answer", j->path);
        free(buf);
        return NNRT_EIO;
    }
    free(buf);
    return child_rc;
}

int nnrt_h5_load_optimizer(const char *path, NnrtOptimizerState *opt, char *err, size_t errlen)
{
    int rc = NNRT_EINVAL;
    size_t *at = NULL;
    OptimizerJob job = {.path = path, .opt = opt, .err = err, .errlen = errlen};
    NnrtH5Quiet quiet;

    if (err && errlen)
        err[0] = '\0';
    if (!path || !opt || !opt->optimizer || !opt->optimizer[0] || (opt->num_slots && (!opt->slots || !opt->state))) {
        set_err(err, errlen, "nnrt_h5_load_optimizer: bad arguments");
        return NNRT_EINVAL;
    }
    nnrt_h5_quiet(&quiet);
    rc = NNRT_ENOMEM;
    if (!(at = malloc((opt->num_slots + 1) * sizeof *at))) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    job.at = at;
    for (size_t i = 0; i < opt->num_slots; i++) {
        int valid;
        size_t n = weight_count(&opt->slots[i], &valid);
        if (!valid || !opt->slots[i].name || n > SIZE_MAX / sizeof(float) - job.total) {
            set_err(err, errlen, "nnrt_h5_load_optimizer: slot %zu has a bad name or shape", i);
            rc = NNRT_EINVAL;
            goto fail;
        }
        at[i] = job.total;
        job.total += n;
    }
    if (!(job.scratch = calloc(job.total ? job.total : 1, sizeof *job.scratch))) {
        set_err(err, errlen, "%s: out of memory (%zu optimizer floats)", path, job.total);
        goto fail;
    }
    if ((rc = nnrt_h5_precheck(path, "a Keras .h5 file", err, errlen)) < 0)
        goto fail;
    rc = nnrt_h5_get_policy().isolate ? read_optimizer_isolated(&job) : read_optimizer(&job);
    if (rc != 1)
        goto fail;
    for (size_t i = 0; i < opt->num_slots && !nnrt_h5_get_policy().allow_nonfinite; i++) {
        int valid;
        size_t n = weight_count(&opt->slots[i], &valid);
        for (size_t k = 0; k < n; k++)
            if (!isfinite(job.scratch[at[i] + k])) {
                set_err(err, errlen, "%s: optimizer slot '%s' holds NaN or Inf at flat index %zu; the optimizer "
                        "starts afresh", path, opt->slots[i].name, k);
                rc = 0;
                goto fail;
            }
    }
    for (size_t i = 0; i < opt->num_slots; i++) {
        int valid;
        memcpy(opt->state + opt->slots[i].offset, job.scratch + at[i],
               weight_count(&opt->slots[i], &valid) * sizeof(float));
    }
    opt->iterations = job.iterations;
    rc = 1;
fail:
    free(job.scratch);
    free(at);
    nnrt_h5_restore(&quiet);
    return rc;
}
