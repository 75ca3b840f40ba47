/* build.c — the system C compiler and the programs nncc builds.
 *
 * `nncc train` and friends compile the generated model and its driver into
 * one executable, linked against libnncc_rt. The runtime is found beside
 * an installed nncc (<prefix>/bin/nncc -> <prefix>/include/nncc,
 * <prefix>/lib/...), else in the build tree nncc was configured in. The C
 * compiler is $CC, else the one nncc was built with. Programs run through
 * fork/exec with an argument vector: no shell, so paths need no quoting.
 *
 * The command line is nncc's flags, then $CFLAGS, then the sources, then
 * $LDFLAGS, then the runtime: a user's flag comes after nncc's own, so it
 * wins (-O0 after -O2), and a user's -L is searched before the runtime's.
 * $CFLAGS and $LDFLAGS are split at blanks, as make splits its variables;
 * there is no shell quoting. An nncc configured with -DNNCC_SANITIZE=...
 * has an instrumented runtime, so the programs it builds must be
 * instrumented too: it adds the flags it was built with
 * (NNCC_SANITIZE_FLAGS) unless $CFLAGS has a -fsanitize= of its own. The
 * command is kept in EXE.cmd; a program built by another command is stale,
 * so changing $CC, $CFLAGS or $LDFLAGS rebuilds it.
 */
#include "compiler.h"

#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bool exists(const char *path)
{
    return access(path, R_OK) == 0;
}

int toolchain_find(Toolchain *tc, const char *argv0)
{
    (void)argv0;
    static char inc[PATH_MAX + 32], lib[PATH_MAX + 32], exe[PATH_MAX];
    const char *cc = getenv("CC");
    tc->cc = cc && *cc ? cc : NNCC_C_COMPILER;
    tc->cflags = getenv("CFLAGS");
    tc->ldflags = getenv("LDFLAGS");
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;  /* <prefix>/bin */
            snprintf(inc, sizeof inc, "%s/../include/nncc", exe);
            snprintf(lib, sizeof lib, "%s/../%s", exe, NNCC_INSTALL_LIBDIR);
            char probe[PATH_MAX + 64];
            snprintf(probe, sizeof probe, "%s/nnrt.h", inc);
            if (exists(probe)) {
                tc->include_dir = inc;
                tc->lib_dir = lib;
                return 0;
            }
        }
    }
    tc->include_dir = NNCC_BUILD_RUNTIME_INCLUDE;
    tc->lib_dir = NNCC_BUILD_RUNTIME_LIBDIR;
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/nnrt.h", tc->include_dir);
    if (!exists(probe))
        return error_plain("cannot find the nncc runtime (nnrt.h): not beside this nncc, nor in %s",
                           tc->include_dir);
    return 0;
}

int run_program(const char *exe, char *const args[])
{
    fflush(stdout);
    fflush(stderr);
    /* Ctrl-C goes to the whole process group: the child decides (training
     * finishes its step and saves); nncc waits for it and reports its status. */
    struct sigaction ignore = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigaction(SIGINT, &ignore, &old_int);
    sigaction(SIGQUIT, &ignore, &old_quit);
    pid_t pid = fork();
    if (pid < 0)
        return error_plain("cannot start %s: %s", exe, strerror(errno)), 2;
    if (pid == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        execvp(exe, args);
        fprintf(stderr, "nncc: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    int status;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    if (got < 0)
        return error_plain("waiting for %s: %s", exe, strerror(errno)), 2;
    if (WIFEXITED(status))
        return WEXITSTATUS(status) == 127 ? 2 : WEXITSTATUS(status);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
        return 130;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE)
        return 0;  /* the reader of our output stopped (nncc predict ... | head) */
    error_plain("%s was killed by signal %d", exe, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 2;
}

/* The compiler's command: its words point into the toolchain, the sources,
 * the three path flags and the copies of the flag strings, all owned here. */
typedef struct {
    char *args[128];                 /* NULL-terminated */
    int n;
    char *copies[3];                 /* the sanitizer flags, $CFLAGS, $LDFLAGS, split in place */
    char inc[PATH_MAX + 4], libdir[PATH_MAX + 4], rpath[PATH_MAX + 16];
} Command;

static void command_free(Command *c)
{
    for (int i = 0; i < 3; i++)
        free(c->copies[i]);
}

/* Append the blank-separated words of `flags` (NULL: none), keeping `reserve`
 * slots free for what must follow. */
static int add_flags(Command *c, int copy, const char *what, const char *flags, int reserve)
{
    if (!flags)
        return 0;
    c->copies[copy] = strdup(flags);
    if (!c->copies[copy])
        return error_plain("out of memory copying %s", what);
    char *save = NULL;
    for (char *w = strtok_r(c->copies[copy], " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
        if (c->n + reserve >= (int)(sizeof c->args / sizeof c->args[0]))
            return error_plain("%s has too many words (%s)", what, flags);
        c->args[c->n++] = w;
    }
    return 0;
}

static int build_command(Command *c, const Toolchain *tc, const char *const *srcs, int nsrcs, const char *exe)
{
    *c = (Command){.n = 0};
    snprintf(c->inc, sizeof c->inc, "-I%s", tc->include_dir);
    snprintf(c->libdir, sizeof c->libdir, "-L%s", tc->lib_dir);
    snprintf(c->rpath, sizeof c->rpath, "-Wl,-rpath,%s", tc->lib_dir);
    c->args[c->n++] = (char *)tc->cc;
    c->args[c->n++] = "-std=c11";
    /* GCC at -O2 vectorizes only loops whose trip count it knows to be a
     * multiple of the vector width ("very cheap"); the dynamic cost model
     * takes the rest, with a scalar tail (clang does so at -O2 already).
     * The two -fno- flags change no value: they let the activations'
     * conditionals (elu's y > 0 ? 1 : y + alpha) and sqrtf become vector
     * code. CMakeLists.txt builds the runtime with the same flags. */
    c->args[c->n++] = "-O2";
    if (!strstr(tc->cc, "clang"))
        c->args[c->n++] = "-fvect-cost-model=dynamic";
    c->args[c->n++] = "-fno-trapping-math";
    c->args[c->n++] = "-fno-math-errno";
    if (tc->march_native)
        c->args[c->n++] = "-march=native";
    c->args[c->n++] = "-Wall";
    c->args[c->n++] = "-Wextra";
    /* after the flags: the sources, -o EXE, -I, -L, the rpath, two -l, NULL */
    int tail = nsrcs + 8;
#ifdef NNCC_SANITIZE_FLAGS
    if (!tc->cflags || !strstr(tc->cflags, "-fsanitize="))
        if (add_flags(c, 0, "the sanitizer flags", NNCC_SANITIZE_FLAGS, tail))
            return -1;
#endif
    if (add_flags(c, 1, "$CFLAGS", tc->cflags, tail))
        return -1;
    c->args[c->n++] = c->inc;
    for (int i = 0; i < nsrcs; i++)
        c->args[c->n++] = (char *)srcs[i];
    c->args[c->n++] = "-o";
    c->args[c->n++] = (char *)exe;
    if (add_flags(c, 2, "$LDFLAGS", tc->ldflags, 5))
        return -1;
    c->args[c->n++] = c->libdir;
    c->args[c->n++] = c->rpath;
    c->args[c->n++] = "-lnncc_rt";
    c->args[c->n++] = "-lm";
    c->args[c->n] = NULL;
    return 0;
}

/* The command as one line of text, for EXE.cmd (NULL when out of memory). */
static char *command_text(const Command *c)
{
    size_t len = 2;
    for (int i = 0; i < c->n; i++)
        len += strlen(c->args[i]) + 1;
    char *text = malloc(len), *p = text;
    if (!text)
        return NULL;
    for (int i = 0; i < c->n; i++)
        p += sprintf(p, "%s%s", i ? " " : "", c->args[i]);
    strcpy(p, "\n");
    return text;
}

bool build_is_stale(const Toolchain *tc, const char *const *srcs, int nsrcs, const char *exe)
{
    Command c;
    bool stale = true;
    char *want = NULL, *have = NULL, path[PATH_MAX + 8];
    FILE *f = NULL;
    if (build_command(&c, tc, srcs, nsrcs, exe) || !(want = command_text(&c)))
        goto fail;
    snprintf(path, sizeof path, "%s.cmd", exe);
    size_t len = strlen(want);
    if (!(f = fopen(path, "rb")) || !(have = malloc(len + 2)))
        goto fail;
    size_t got = fread(have, 1, len + 1, f);
    stale = got != len || memcmp(have, want, len) != 0;
fail:
    if (f)
        fclose(f);
    free(have);
    free(want);
    command_free(&c);
    return stale;
}

int build_executable(const Toolchain *tc, const char *const *srcs, int nsrcs, const char *exe)
{
    Command c;
    int rc = -1;
    char *text = NULL, path[PATH_MAX + 8];
    if (build_command(&c, tc, srcs, nsrcs, exe))
        goto fail;
    /* EXE.cmd names the command EXE was built by: none while building. A
     * missing EXE.cmd only costs a rebuild next time, so it is no error. */
    snprintf(path, sizeof path, "%s.cmd", exe);
    remove(path);
    int status = run_program(tc->cc, c.args);
    if (status != 0) {
        error_plain("building %s with %s failed (exit status %d)", exe, tc->cc, status);
        goto fail;
    }
    FILE *f = (text = command_text(&c)) ? fopen(path, "wb") : NULL;
    if (f) {
        bool wrote = fputs(text, f) >= 0;
        if (fclose(f) != 0 || !wrote)
            remove(path);
    }
    rc = 0;
fail:
    free(text);
    command_free(&c);
    return rc;
}

int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf)
        return error_plain("path too long: %s", path);
    strcpy(buf, path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return error_plain("cannot create folder '%s': %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    return 0;
}
