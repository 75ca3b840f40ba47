/* h5guard.c — the defences between an untrusted file and libhdf5: the
 * policy (nnrt_h5_set_policy), structural checks of the raw bytes before
 * libhdf5 reads anything (nnrt_h5_precheck), and reading in a child process
 * (nnrt_h5_isolated). docs/security.md gives the trust model.
 *
 * libhdf5 (1.10.8 in Debian 12) is not hardened against hostile files: a
 * fuzzer drives it into segfaults, heap corruption and endless loops. The
 * checks here reject the cheap cases with a precise message (a superblock
 * whose end-of-file address lies past the file's end, an impossible offset
 * size, a root object outside the file); they cannot follow every B-tree
 * and heap the way libhdf5 does, so they are the first layer only.
 *
 * The second layer is isolation: the read runs in a fork()ed child that
 * writes its result (whatever the caller serializes) into a pipe and ends
 * with a marker; the parent reads the pipe under a time limit and takes the
 * result only when the child exited 0 after the marker. A crash, an abort,
 * a sanitizer report, a memory limit or a hang in the child becomes
 * "PATH: the file is damaged (the HDF5 library failed reading it)". The
 * parent never calls libhdf5 on the file itself, so nothing it does later
 * depends on libhdf5 having survived that file. The child's stderr goes to
 * /dev/null: libhdf5's and the sanitizers' reports are not nncc's message.
 *
 * Invariant: a caller of nnrt_h5_isolated gets either the child's complete
 * output or an error; never part of it.
 */
#define _POSIX_C_SOURCE 200809L
#include "nnrt.h"
#include "h5open.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static NnrtH5Policy policy;      /* zero: no child process, non-finite weights refused */

void nnrt_h5_set_policy(const NnrtH5Policy *p)
{
    policy = *p;
}

NnrtH5Policy nnrt_h5_get_policy(void)
{
    return policy;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- structural checks ------------------------------------------------- */

static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* A little-endian unsigned of `size` bytes (HDF5 stores every address so). */
static uint64_t le_uint(const unsigned char *p, int size)
{
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int nnrt_h5_precheck(const char *path, const char *expected, char *err, size_t errlen)
{
    int rc = NNRT_EFORMAT;
    unsigned char sb[96];
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        rc = NNRT_EIO;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: not a regular file; expected %s", path, expected ? expected : "an HDF5 file");
        goto fail;
    }
    uint64_t size = (uint64_t)st.st_size, at = 0;
    size_t got = 0;
    /* the superblock is at 0 or after a user block of 512, 1024, 2048, ... bytes */
    for (;; at = at ? 2 * at : 512) {
        if (at >= size || fseeko(f, (off_t)at, SEEK_SET) < 0) {
            set_err(err, errlen, "%s: not an HDF5 file (no HDF5 signature); expected %s", path,
                    expected ? expected : "an HDF5 file");
            goto fail;
        }
        got = fread(sb, 1, sizeof sb, f);
        if (got >= sizeof signature && !memcmp(sb, signature, sizeof signature))
            break;
    }
    int version = got > 8 ? sb[8] : -1;
    int offsets, lengths;
    size_t addr_at;              /* where base, (ext/free space,) end-of-file and root addresses start */
    if (version == 0 || version == 1) {
        offsets = got > 13 ? sb[13] : 0;
        lengths = got > 14 ? sb[14] : 0;
        addr_at = version == 0 ? 24 : 28;
    } else if (version == 2 || version == 3) {
        offsets = got > 9 ? sb[9] : 0;
        lengths = got > 10 ? sb[10] : 0;
        addr_at = 12;
    } else {
        set_err(err, errlen, "%s: HDF5 superblock version %d is not one libhdf5 1.10 reads (0 to 3); the file is "
                "damaged or from a newer HDF5", path, version);
        goto fail;
    }
    if ((offsets != 2 && offsets != 4 && offsets != 8) || (lengths != 2 && lengths != 4 && lengths != 8)) {
        set_err(err, errlen, "%s: damaged HDF5 superblock (%d-byte addresses, %d-byte lengths)", path, offsets,
                lengths);
        goto fail;
    }
    /* v0/1: base, free space, end of file, driver info, then the root symbol
     * table entry (link name offset, object header address); v2/3: base,
     * extension, end of file, root object header */
    size_t eof_at = addr_at + 2 * (size_t)offsets;
    size_t root_at = version <= 1 ? addr_at + 5 * (size_t)offsets : addr_at + 3 * (size_t)offsets;
    if (root_at + (size_t)offsets > got) {
        set_err(err, errlen, "%s: truncated HDF5 superblock (%llu bytes)", path, (unsigned long long)size);
        goto fail;
    }
    uint64_t base = le_uint(sb + addr_at, offsets), eof = le_uint(sb + eof_at, offsets);
    uint64_t root = le_uint(sb + root_at, offsets);
    if (base > size || eof > size - base) {
        set_err(err, errlen, "%s: damaged or truncated: its HDF5 superblock says the file ends at byte %llu, but it "
                "has %llu bytes", path, (unsigned long long)(base > size ? base : base + eof),
                (unsigned long long)size);
        goto fail;
    }
    if (root >= eof) {
        set_err(err, errlen, "%s: damaged HDF5 superblock (the root group at byte %llu is past the end, %llu)", path,
                (unsigned long long)root, (unsigned long long)eof);
        goto fail;
    }
    rc = NNRT_OK;
fail:
    if (f)
        fclose(f);
    return rc;
}

/* ---- datasets --------------------------------------------------------- */

hsize_t nnrt_h5_file_size(hid_t obj)
{
    hsize_t size = 0;
    hid_t file = H5Iget_file_id(obj);
    if (file < 0 || H5Fget_filesize(file, &size) < 0)
        size = 0;
    if (file >= 0)
        H5Fclose(file);
    return size;
}

int nnrt_h5_storage_fits(hid_t ds, hid_t type, hssize_t npoints)
{
    size_t elem = H5Tget_size(type);
    if (npoints < 0 || elem == 0)
        return -1;
    if (elem > 8)
        return 0;
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0)
        return -1;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    H5Pclose(dcpl);
    if (layout < 0)
        return -1;
    if (layout == H5D_CHUNKED) {     /* compressed: at most deflate's ratio, 1032:1, over what is stored */
        hsize_t stored = H5Dget_storage_size(ds);
        return (hsize_t)npoints * elem <= 1100 * stored + ((hsize_t)64 << 20);
    }
    if (layout != H5D_CONTIGUOUS)
        return 1;
    haddr_t offset = H5Dget_offset(ds);
    if (offset == HADDR_UNDEF)   /* never written: libhdf5 reads the fill value */
        return 1;
    hsize_t size = nnrt_h5_file_size(ds), bytes = (hsize_t)npoints * elem;
    return size && offset <= size && bytes <= size - offset;
}

/* ---- the child process ---------------------------------------------------- */

static const char done_marker[8] = "nnrtDONE";

/* Seconds a read of a file of `size` bytes may take: generous for any disk,
 * short enough that a loop inside libhdf5 ends in an error, not a hang. */
static double time_limit(uint64_t size)
{
    if (policy.time_limit > 0)
        return policy.time_limit;
    const char *env = getenv("NNCC_HDF5_TIME_LIMIT");
    char *end;
    double s = env ? strtod(env, &end) : 0;
    if (env && *end == '\0' && s > 0)
        return s;
    return 20.0 + (double)size / 20e6;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Address space the child may use beyond what it has at the fork: a file
 * whose headers ask libhdf5 for gigabytes fails there, not in the machine. */
static void limit_child_memory(uint64_t file_size, size_t result_bytes)
{
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return;
    int read = fscanf(f, "%lu", &pages);
    fclose(f);
    if (read != 1)
        return;
    uint64_t have = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t extra = ((uint64_t)1 << 30) + 2 * file_size + 2 * (uint64_t)result_bytes;
    struct rlimit r;
    if (getrlimit(RLIMIT_AS, &r) == 0 && (r.rlim_cur == RLIM_INFINITY || r.rlim_cur > have + extra)) {
        r.rlim_cur = have + extra;
        setrlimit(RLIMIT_AS, &r);
    }
}

/* The child must not outlive its time: the parent kills it at the deadline,
 * but a parent that is itself killed (kill -9, a fuzzer's timeout) cannot, and
 * a libhdf5 loop would spin on, re-parented to init. So the child dies with
 * its parent (Linux), and its CPU time is capped a little past the limit. */
static void limit_child_time(double seconds)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    struct rlimit r = {(rlim_t)seconds + 2, (rlim_t)seconds + 3};
    setrlimit(RLIMIT_CPU, &r);
}

/* Everything the child does: quiet stderr, default fatal signals (a crash
 * ends the child, it is not caught as an nncc bug), limits, the read, the marker. */
static void run_child(int fd, uint64_t file_size, size_t result_bytes, double seconds, NnrtIsolatedRead reader,
                      void *ctx)
{
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDERR_FILENO);
        close(null);
    }
    const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    limit_child_memory(file_size, result_bytes);
    limit_child_time(seconds);
    FILE *out = fdopen(fd, "wb");
    if (!out)
        _exit(3);
    if (reader(ctx, out) < 0 || fwrite(done_marker, 1, sizeof done_marker, out) != sizeof done_marker ||
        fclose(out) != 0)
        _exit(3);
    _exit(0);
}

/* Appends what is readable on fd to *buf; 1 at end of file, 0 for more, -1 on error. */
static int drain(int fd, char **buf, size_t *len, size_t *cap)
{
    if (*cap - *len < 65536) {
        size_t grown = *cap ? 2 * *cap : 1 << 20;
        char *p = realloc(*buf, grown);
        if (!p)
            return -1;
        *buf = p, *cap = grown;
    }
    ssize_t n = read(fd, *buf + *len, *cap - *len);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    *len += (size_t)n;
    return n == 0;
}

int nnrt_h5_isolated(const char *path, NnrtIsolatedRead reader, void *ctx, size_t result_bytes, char **out,
                     size_t *out_len, char *err, size_t errlen)
{
    int rc = NNRT_ENOMEM, fds[2] = {-1, -1}, status = 0;
    pid_t pid = -1;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    struct stat st;
    *out = NULL;
    *out_len = 0;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    double limit = time_limit(size), deadline = now() + limit;

    fflush(NULL);                /* the child must not write the parent's buffered output again */
    if (pipe(fds) < 0 || (pid = fork()) < 0) {
        set_err(err, errlen, "%s: cannot start the process that reads it: %s", path, strerror(errno));
        rc = NNRT_EIO;
        goto fail;
    }
    if (pid == 0) {
        close(fds[0]);
        run_child(fds[1], size, result_bytes, limit, reader, ctx);
    }
    close(fds[1]);
    fds[1] = -1;
    int finished = 0, timed_out = 0;
    while (!finished) {
        double left = deadline - now();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int ready = poll(&p, 1, left > 1000 ? 1000000 : (int)(left * 1000) + 1);
        if (ready < 0 && errno != EINTR) {
            set_err(err, errlen, "%s: waiting for the reading process: %s", path, strerror(errno));
            rc = NNRT_EIO;
            goto fail;
        }
        if (ready > 0 && (finished = drain(fds[0], &buf, &len, &cap)) < 0) {
            set_err(err, errlen, "%s: out of memory receiving what was read", path);
            goto fail;
        }
    }
    if (timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    rc = NNRT_EFORMAT;
    if (timed_out) {
        set_err(err, errlen, "%s: the file is damaged (the HDF5 library did not finish reading it in %.0f s; "
                "if it is a large valid file, raise NNCC_HDF5_TIME_LIMIT)", path, limit);
        goto fail;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || len < sizeof done_marker ||
        memcmp(buf + len - sizeof done_marker, done_marker, sizeof done_marker)) {
        set_err(err, errlen, "%s: the file is damaged (the HDF5 library failed reading it)", path);
        goto fail;
    }
    *out = buf;
    *out_len = len - sizeof done_marker;
    buf = NULL;
    rc = NNRT_OK;
fail:
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
    free(buf);
    return rc;
}

/* ---- reading the child's output ----------------------------------------- */

int nnrt_wire_take(NnrtWire *w, void *dst, size_t n)
{
    if (n > w->len - w->at)
        return -1;
    memcpy(dst, w->buf + w->at, n);
    w->at += n;
    return 0;
}
