/* build.c — the system C compiler and the programs nncc builds.
 *
 * `nncc train` and friends compile the generated model and its driver into
 * one executable, linked against libnncc_rt. The runtime is found beside
 * an installed nncc (<prefix>/bin/nncc -> <prefix>/include/nncc,
 * <prefix>/lib/...), else in the build tree nncc was configured in. The C
 * compiler is $CC, else the one nncc was built with. Programs run through
 * fork/exec with an argument vector: no shell, so paths need no quoting.
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

int build_executable(const Toolchain *tc, const char *const *srcs, int nsrcs, const char *exe)
{
    char *args[64];
    int n = 0;
    char inc[PATH_MAX + 4], libdir[PATH_MAX + 4], rpath[PATH_MAX + 16];
    snprintf(inc, sizeof inc, "-I%s", tc->include_dir);
    snprintf(libdir, sizeof libdir, "-L%s", tc->lib_dir);
    snprintf(rpath, sizeof rpath, "-Wl,-rpath,%s", tc->lib_dir);
    args[n++] = (char *)tc->cc;
    args[n++] = "-std=c11";
    /* GCC at -O2 vectorizes only loops whose trip count it knows to be a
     * multiple of the vector width ("very cheap"); the dynamic cost model
     * takes the rest, with a scalar tail (clang does so at -O2 already).
     * The two -fno- flags change no value: they let the activations'
     * conditionals (elu's y > 0 ? 1 : y + alpha) and sqrtf become vector
     * code. CMakeLists.txt builds the runtime with the same flags. */
    args[n++] = "-O2";
    if (!strstr(tc->cc, "clang"))
        args[n++] = "-fvect-cost-model=dynamic";
    args[n++] = "-fno-trapping-math";
    args[n++] = "-fno-math-errno";
    if (tc->march_native)
        args[n++] = "-march=native";
    args[n++] = "-Wall";
    args[n++] = "-Wextra";
    args[n++] = inc;
    for (int i = 0; i < nsrcs && n < 50; i++)
        args[n++] = (char *)srcs[i];
    args[n++] = "-o";
    args[n++] = (char *)exe;
    args[n++] = libdir;
    args[n++] = rpath;
    args[n++] = "-lnncc_rt";
    args[n++] = "-lm";
    args[n] = NULL;
    int rc = run_program(tc->cc, args);
    if (rc != 0)
        return error_plain("building %s with %s failed (exit status %d)", exe, tc->cc, rc);
    return 0;
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
