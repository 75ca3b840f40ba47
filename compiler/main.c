/* main.c — the nncc command line and the compilation pipeline.
 *
 * The pipeline, in order:
 *   model_parse        YAML -> Model            (compiler/model.c)
 *   lower_model        Model -> Program: inference and training graphs,
 *                      autodiff, verified       (compiler/lower.c, ir/)
 *   pass_fold_bn       BatchNormalization into the Conv/Dense before it, inference
 *                      graph only (compiler/pass_fold_bn.c)
 *   pass_cse           common subexpressions, both graphs (compiler/pass_cse.c)
 *   pass_fuse          bias or scale-and-shift + activation, BatchNormalization's backward,
 *                      dead code (compiler/pass_fuse.c)
 *   pass_fuse_sgd      SGD's step (or velocity) inside the kernel-gradient GEMMs, training graph
 *                      (compiler/pass_fuse_sgd.c)
 *   pass_plan_memory   one arena offset per buffer, per graph (compiler/pass_plan.c)
 *   ir_verify          after every pass
 *   emit_*             Program -> P.c, P.h, driver (backends/c/emit.c)
 * --standalone compiles the inference graph alone, for one sample: after
 * fusion, standalone_prepare keeps what P_infer computes, the plan follows,
 * and emit_standalone (backends/c/standalone.c) writes the weights of
 * --weights W.h5 (read here with the runtime's HDF5 reader) as constants.
 * Commands that run the model (train, evaluate, predict, check) then build
 * the generated code with the system C compiler and run it.
 *
 * Every stage is bounded (limits.c): --max-model-bytes, --max-layers and
 * --max-weights as the model is read and lowered, --max-arena-bytes once
 * the memory is planned, --max-code-bytes while each file is rendered.
 *
 * Exit status: 0 success, 1 bad input (with a located message), 2 internal.
 */
#define _GNU_SOURCE  /* fopencookie: the generated files are rendered through a size cap */
#include "backend.h"
#include "compiler.h"
#include "nnrt.h"

#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: nncc MODEL -o OUT.c [options]      compile MODEL to OUT.c and OUT.h\n"
    "       nncc MODEL --standalone --weights W.h5 -o OUT.c\n"
    "                                          inference on one sample, weights compiled in: C99 alone\n"
    "       nncc summary MODEL                 Keras-style model.summary() table\n"
    "       nncc train MODEL [--epochs N] [--out DIR] [--weights INIT.h5] [--seed S]\n"
    "                                          compile, build and run the model's fit section\n"
    "       nncc evaluate MODEL [--weights W.h5] [--data X.npy --targets Y.npy] [--out DIR]\n"
    "                                          loss and metrics (default: the fit data's test split)\n"
    "       nncc predict MODEL [--weights W.h5] --input X.npy [--input ...] [--output Y.npy ...]\n"
    "                                          outputs as .npy, or CSV rows on stdout\n"
    "       nncc check MODEL                   build the generated code and check its gradients\n"
    "                                          against finite differences, and (unless --no-fuse)\n"
    "                                          its loss, gradients and outputs against a --no-fuse build\n"
    "       nncc --layers                      the Keras layer classes nncc compiles, with their\n"
    "                                          arguments and Keras defaults\n"
    "       nncc --version | --help\n"
    "\n"
    "compile options:\n"
    "  -o OUT.c             output file (OUT.h is written beside it)\n"
    "  --header H           the header's path (default: OUT.c with .h)\n"
    "  --prefix NAME        API prefix (default: the model's name)\n"
    "  --max-batch N        compiled batch capacity (default: fit.batch_size, else 32)\n"
    "  --inference-only     no backward pass or optimizer code\n"
    "  --no-fuse            no rewriting passes: no BatchNormalization folding, no fusion (bias +\n"
    "                       activation in one pass), no dead-code removal\n"
    "  --no-fold            keep inference BatchNormalization apart from the Conv/Dense before it\n"
    "  --report             print the passes' decisions and the memory plan\n"
    "  --emit-ir            print the IR after the passes\n"
    "  --emit-yaml          print a Keras .h5 MODEL as the nncc YAML it compiles as (no -o needed)\n"
    "  --emit-test          write -o as a regression test of the generated code (test_P.c:\n"
    "                       expected loss, outputs and gradients from an unfused reference build)\n"
    "  --standalone         inference on one sample for C99 and <math.h> alone: P_infer, no\n"
    "                       runtime library; needs --weights W.h5, compiled in as constants\n"
    "  --weights W.h5       with --standalone: the Keras-layout weights to compile in\n"
    "  --allow-nonfinite    load weights holding NaN or Inf (refused by default; also for\n"
    "                       train, evaluate and predict, where it lets NaN and Inf data through too)\n"
    "  --quiet              no progress notes\n"
    "  --max-layers N       refuse a model of more than N layers after repeat/if/blocks (default 10000)\n"
    "  --max-weights N      refuse a model of more than N weight values (default 2147483648)\n"
    "  --max-arena-bytes N  refuse a planned activation arena above N bytes (default 17179869184)\n"
    "  --max-code-bytes N   refuse a generated C file above N bytes (default 268435456)\n"
    "  --max-model-bytes N  refuse a model file (a Keras file's model as YAML) above N bytes\n"
    "                       (default 16777216)\n"
    "run options (train, evaluate, predict, check):\n"
    "  --out DIR            where the generated C, program and results go (default ./nncc-out/NAME)\n"
    "  --march-native       build the generated code with -march=native\n"
    "  --c-source FILE      the C file defining the model's c_function/c_gradient hooks (checked\n"
    "                       through libclang when nncc was built with it)\n"
    "  the program is built by $CC with nncc's flags, then $CFLAGS (yours win), the sources,\n"
    "  then $LDFLAGS before the runtime library\n"
    "MODEL is a YAML model file (docs/model-format.md), or a Keras model saved with model.save as\n"
    ".h5 (docs/keras.md); a Keras file's own weights are used unless --weights is given.\n";

typedef struct {
    const char *command;         /* NULL: compile */
    const char *model;
    const char *output;          /* -o */
    const char *header;
    const char *out_dir;
    const char *weights;
    const char *seed;
    const char *epochs;
    const char *data[16], *targets[16];
    const char *inputs[16], *outputs[16];
    int ndata, ntargets, ninputs, noutputs;
    CompileOptions copt;
    bool report, emit_ir, march_native, max_batch_given, no_fuse, no_fold, emit_test, emit_yaml, standalone;
    bool allow_nonfinite;        /* --allow-nonfinite: NaN/Inf weights load, NaN/Inf data is read */
    Limits limits;               /* --max-...: limits_default unless given */
    float *standalone_block;     /* --standalone: the weights of --weights, BatchNormalizations folded in */
    const char *c_source;        /* --c-source: the C file defining the model's C hooks */
} Args;

static int parse_size(const char *flag, const char *v, long *out, long min)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < min)
        return error_plain("%s needs an integer of at least %ld, not '%s'", flag, min, v);
    *out = x;
    return 0;
}

/* The caps of limits.c, each an option. */
static const struct {
    const char *flag;
    size_t offset;               /* into Limits */
} limit_options[] = {
    {"--max-model-bytes", offsetof(Limits, model_bytes)}, {"--max-layers", offsetof(Limits, layers)},
    {"--max-weights", offsetof(Limits, weights)},         {"--max-arena-bytes", offsetof(Limits, arena_bytes)},
    {"--max-code-bytes", offsetof(Limits, code_bytes)},
};

static int parse_args(int argc, char **argv, Args *a)
{
    static const char *const commands[] = {"summary", "train", "evaluate", "predict", "check"};
    int i = 1;
    a->limits = limits_default;
    if (argc > 1)
        for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
            if (!strcmp(argv[1], commands[c])) {
                a->command = commands[c];
                i = 2;
            }
    for (; i < argc; i++) {
        const char *s = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                              \
    do {                                                                     \
        if (!next)                                                           \
            return error_plain("option %s needs a value", s), -1;            \
        i++;                                                                 \
    } while (0)
        size_t lim = 0;
        while (lim < sizeof limit_options / sizeof limit_options[0] && strcmp(s, limit_options[lim].flag))
            lim++;
        if (lim < sizeof limit_options / sizeof limit_options[0]) {
            VALUE();
            long v;
            if (parse_size(s, next, &v, 1))
                return -1;
            *(int64_t *)((char *)&a->limits + limit_options[lim].offset) = v;
        } else if (!strcmp(s, "-o")) {
            VALUE();
            a->output = next;
        } else if (!strcmp(s, "--header")) {
            VALUE();
            a->header = next;
        } else if (!strcmp(s, "--prefix")) {
            VALUE();
            a->copt.prefix = next;
        } else if (!strcmp(s, "--max-batch")) {
            VALUE();
            long v;
            if (parse_size(s, next, &v, 1))
                return -1;
            if (v > INT_MAX)  /* the generated C's batch is an int */
                return error_plain("--max-batch must be at most %d, not %ld", INT_MAX, v);
            a->copt.max_batch = (size_t)v;
            a->max_batch_given = true;
        } else if (!strcmp(s, "--inference-only")) {
            a->copt.inference_only = true;
        } else if (!strcmp(s, "--no-fuse")) {
            a->no_fuse = true;
        } else if (!strcmp(s, "--no-fold")) {
            a->no_fold = true;
        } else if (!strcmp(s, "--report")) {
            a->report = true;
        } else if (!strcmp(s, "--emit-ir")) {
            a->emit_ir = true;
        } else if (!strcmp(s, "--emit-yaml")) {
            a->emit_yaml = true;
        } else if (!strcmp(s, "--emit-test")) {
            a->emit_test = true;
        } else if (!strcmp(s, "--quiet") || !strcmp(s, "-q")) {
            diag_set_quiet(true);
        } else if (!strcmp(s, "--march-native")) {
            a->march_native = true;
        } else if (!strcmp(s, "--out")) {
            VALUE();
            a->out_dir = next;
        } else if (!strcmp(s, "--weights")) {
            VALUE();
            a->weights = next;
        } else if (!strcmp(s, "--seed")) {
            VALUE();
            long v;
            if (parse_size(s, next, &v, 0))
                return -1;
            a->seed = next;
        } else if (!strcmp(s, "--epochs")) {
            VALUE();
            long v;
            if (parse_size(s, next, &v, 1))
                return -1;
            a->epochs = next;
        } else if (!strcmp(s, "--data")) {
            VALUE();
            if (a->ndata == 16)
                return error_plain("at most 16 --data files");
            a->data[a->ndata++] = next;
        } else if (!strcmp(s, "--targets")) {
            VALUE();
            if (a->ntargets == 16)
                return error_plain("at most 16 --targets files");
            a->targets[a->ntargets++] = next;
        } else if (!strcmp(s, "--input")) {
            VALUE();
            if (a->ninputs == 16)
                return error_plain("at most 16 --input files");
            a->inputs[a->ninputs++] = next;
        } else if (!strcmp(s, "--output")) {
            VALUE();
            if (a->noutputs == 16)
                return error_plain("at most 16 --output files");
            a->outputs[a->noutputs++] = next;
        } else if (!strcmp(s, "--c-source")) {
            VALUE();
            a->c_source = next;
        } else if (!strcmp(s, "--standalone")) {
            a->standalone = true;
        } else if (!strcmp(s, "--allow-nonfinite")) {
            a->allow_nonfinite = true;
        } else if (s[0] == '-' && s[1]) {
            error_plain("unknown option '%s'", s);
            hint("nncc --help lists the commands and options");
            return -1;
        } else if (!a->model) {
            a->model = s;
        } else {
            error_plain("unexpected argument '%s' (the model is '%s')", s, a->model);
            return -1;
        }
#undef VALUE
    }
    if (!a->model) {
        error_plain("no model file given");
        hint("nncc --help lists the commands; e.g. nncc train models/fashion_mlp.yaml");
        return -1;
    }
    if (!a->command && !a->output && !a->emit_yaml && !a->standalone) {
        error_plain("nothing to do: give -o OUT.c to compile, or a command (train, summary, ...)");
        return -1;
    }
    if (a->emit_test && (a->command || !a->output))
        return error_plain("--emit-test goes with -o TEST.c when compiling: nncc MODEL --emit-test -o test_P.c");
    bool runs = a->command && strcmp(a->command, "summary") != 0;
    if (a->emit_test && (a->epochs || a->ndata || a->ninputs))
        return error_plain("--emit-test takes --seed and --out, not --epochs, --data or --input");
    if (!runs && !a->emit_test && (a->out_dir || a->epochs || a->seed || a->ndata || a->ninputs))
        return error_plain("--out, --epochs, --seed, --data and --input go with train, evaluate, predict or check");
    if (a->standalone && a->command)
        return error_plain("--standalone goes with compiling: nncc MODEL --standalone --weights W.h5 -o OUT.c");
    if (a->standalone && !a->output)
        return error_plain("--standalone writes -o OUT.c and OUT.h: nncc MODEL --standalone --weights W.h5 -o OUT.c");
    if (a->standalone && !a->weights)
        return error_plain("--standalone needs --weights W.h5: the weights it compiles in as constants");
    if (a->standalone && (a->emit_test || a->max_batch_given))
        return error_plain("--standalone compiles for one sample, without tests: leave out %s",
                           a->emit_test ? "--emit-test" : "--max-batch");
    if (a->weights && !runs && !a->standalone)
        return error_plain("--weights goes with --standalone when compiling (the weights as constants), "
                           "or with train, evaluate and predict");
    if (a->allow_nonfinite && !a->standalone && !(runs && strcmp(a->command, "check") != 0))
        return error_plain("--allow-nonfinite goes with the weights it lets through: train, evaluate, predict, "
                           "or --standalone --weights");
    if ((a->ndata > 0) != (a->ntargets > 0))
        return error_plain("--data and --targets go together (one --data per model input, one --targets per output)");
    return 0;
}

/* Write text to path atomically: a temporary file beside it, then rename. */
static int write_file(const char *path, const char *text, size_t len)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return error_plain("cannot write '%s': %s", path, strerror(errno));
    bool ok = fwrite(text, 1, len, f) == len;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return error_plain("cannot write '%s': %s", path, strerror(e));
    }
    return 0;
}

/* Text of a file, or NULL. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (cap - *len < 4096) {
            char *bigger = realloc(buf, cap + 65536);
            if (!bigger)
                break;
            buf = bigger;
            cap += 65536;
        }
        size_t got = fread(buf + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    return buf;
}

/* A rendered file; over: it would have been larger than --max-code-bytes
 * (text then holds only the first part). */
typedef struct {
    char *text;
    size_t len, cap;
    bool over;
} Text;

/* fopencookie's writer: keeps at most limits()->code_bytes, so a model that
 * makes too much C costs no more memory than the cap. */
static ssize_t text_write(void *cookie, const char *buf, size_t n)
{
    Text *t = cookie;
    if (t->over || (int64_t)(t->len + n) > limits()->code_bytes) {
        t->over = true;
        return (ssize_t)n;  /* dropped: check_rendered reports it once the emitter is done */
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 65536;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *bigger = realloc(t->text, cap);
        if (!bigger) {
            fprintf(stderr, "nncc: out of memory rendering the generated code\n");
            abort();
        }
        t->text = bigger;
        t->cap = cap;
    }
    memcpy(t->text + t->len, buf, n);
    t->len += n;
    t->text[t->len] = 0;
    return (ssize_t)n;
}

static Text render(void (*fn)(FILE *, const Program *, const char *), void (*fn_h)(FILE *, const Program *),
                   const Program *p, const char *arg)
{
    Text t = {0};
    FILE *f = fopencookie(&t, "w", (cookie_io_functions_t){.write = text_write});
    if (!f) {
        fprintf(stderr, "nncc: internal error: fopencookie failed\n");
        abort();
    }
    if (fn)
        fn(f, p, arg);
    else
        fn_h(f, p);
    fclose(f);
    if (!t.text && !(t.text = calloc(1, 1)))  /* nothing written: still a string */
        abort();
    return t;
}

/* An error when a rendered file went over --max-code-bytes. */
static int check_rendered(const Program *p, const Text *t, const char *path)
{
    if (!t->over)
        return 0;
    error_plain("%s: the generated %s would be larger than %lld bytes (--max-code-bytes)", p->source, path,
                (long long)limits()->code_bytes);
    hint("raise the cap with --max-code-bytes N if the model is meant to be this big");
    return -1;
}

/* Write path if its content changed; *changed tells. */
static int write_if_changed(const char *path, Text t, bool *changed)
{
    size_t old_len;
    char *old = read_all(path, &old_len);
    bool same = old && old_len == t.len && memcmp(old, t.text, t.len) == 0;
    free(old);
    if (same)
        return 0;
    *changed = true;
    return write_file(path, t.text, t.len);
}

static void print_report(const Program *p)
{
    const Graph *graphs[] = {p->infer, p->train};
    for (int k = 0; k < 2; k++) {
        const Graph *g = graphs[k];
        if (!g)
            continue;
        printf("memory plan (%s graph, max batch %zu): arena %zu bytes, unplanned sum %zu bytes (%.0f%%)\n", g->mode,
               g->max_batch, g->arena_floats * 4, g->naive_floats * 4,
               g->naive_floats ? 100.0 * (double)g->arena_floats / (double)g->naive_floats : 0.0);
        for (int i = 0; i < g->nnodes; i++) {
            const Node *n = g->nodes[i];
            if (n->storage != ST_ARENA)
                continue;
            printf("  %-32s %-16s offset %9zu  %9zu bytes  live %d..%d\n", n->name,
                   node_shape_str(g->arena, n), n->offset * 4, node_floats(g, n) * 4, n->id,
                   n->last_use);
        }
    }
    printf("weights: %zu floats in %d tensors (%zu trainable)\n", p->weights->total, p->weights->n,
           p->weights->trainable_total);
}

/* --standalone's weights (strict: every weight, its shape), read before
 * standalone_prepare folds BatchNormalizations into them; NULL after a
 * message. Freed by cmd_standalone. */
static float *standalone_weights(Arena *arena, const Args *a, const Program *p)
{
    const WeightSet *ws = p->weights;
    NnrtWeightInfo *info = arena_alloc(arena, (size_t)(ws->n + 1) * sizeof *info);
    for (int i = 0; i < ws->n; i++) {
        const Weight *w = ws->items[i];
        info[i] = (NnrtWeightInfo){w->layer, arena_printf(arena, "%s/%s:0", w->layer, w->name), w->shape.rank, {0},
                                   w->offset, w->trainable};
        for (int d = 0; d < w->shape.rank; d++)
            info[i].shape[d] = w->shape.dim[d];
    }
    float *block = malloc((ws->total ? ws->total : 1) * sizeof *block);
    if (!block)
        return error_plain("out of memory for %zu weights", ws->total), NULL;
    char err[1024];
    int loaded = nnrt_h5_load(a->weights, info, (size_t)ws->n, block, 1, NULL, err, sizeof err);
    if (loaded < 0) {
        error_plain("%s", err);
        if (loaded == NNRT_EMISMATCH)
            hint("--weights takes what P_save, `nncc train` or Keras's model.save wrote for this model");
        free(block);
        return NULL;
    }
    return block;
}

/* The planned arena is what the program allocates for activations at its
 * batch capacity: refused above --max-arena-bytes before any code exists. */
static int check_arena(const char *model, const Graph *g)
{
    if ((uint64_t)g->arena_floats <= (uint64_t)limits()->arena_bytes / sizeof(float))
        return 0;
    error_plain("%s: the %s graph's planned arena is %zu bytes at batch %zu, more than %lld (--max-arena-bytes)",
                model, g->training ? "training" : "inference", g->arena_floats * sizeof(float), g->max_batch,
                (long long)limits()->arena_bytes);
    hint("a smaller --max-batch (or fit.batch_size) shrinks it; raise the cap with --max-arena-bytes N if the "
         "model is meant to be this big");
    return -1;
}

static int compile_model(Arena *arena, Args *a, Model *m, Program *p)
{
    if (model_parse(arena, a->model, m))
        return 1;
    if (!a->max_batch_given)
        a->copt.max_batch = m->fit.present ? (size_t)m->fit.batch_size : 32;
    if (a->copt.prefix) {
        if (!c_identifier_ok(a->copt.prefix))
            return error_plain("--prefix '%s' is not a C identifier (letters, digits and _, not starting with a "
                               "digit, at most %d characters)", a->copt.prefix, C_NAME_MAX), 1;
        if (emit_reserved_prefix(a->copt.prefix))
            return error_plain("--prefix '%s' would clash with a name the generated C uses (a C keyword, a libc "
                               "function, or one of its own); choose another", a->copt.prefix), 1;
    }
    if (a->standalone) {  /* one sample, inference only */
        a->copt.max_batch = 1;
        a->copt.inference_only = true;
    }
    if (a->command && strcmp(a->command, "summary") != 0 && strcmp(a->command, "predict") != 0 && !m->has_compile) {
        error_at((Loc){m->file, 1, 1}, "'nncc %s' needs a compile section (loss, optimizer)", a->command);
        return 1;
    }
    if (a->command && !strcmp(a->command, "train") && !m->fit.present) {
        error_at((Loc){m->file, 1, 1}, "'nncc train' needs a fit section (data, epochs, batch_size)");
        hint("for example:  fit: {data: {dataset: fashion_mnist}, epochs: 30, batch_size: 32}");
        return 1;
    }
    if (a->c_source && access(a->c_source, R_OK) != 0)
        return error_plain("cannot read --c-source '%s': %s", a->c_source, strerror(errno)), 1;
    if (check_c_hooks(a->c_source, m))
        return 1;
    if (lower_model(arena, m, &a->copt, p))
        return 1;
    p->model_config = keras_model_config(arena, m);
    if (!a->no_fuse && !a->no_fold && !a->standalone) {  /* standalone folds with the weights it knows */
        pass_fold_bn(p->infer, a->report);
        ir_verify(p->infer);
    }
    if (!a->no_fuse) {
        pass_cse(p->infer, a->report);
        if (p->train)
            pass_cse(p->train, a->report);
        pass_fuse(p->infer, a->report);
        ir_verify(p->infer);
        if (p->train) {
            pass_fuse(p->train, a->report);
            pass_fuse_sgd(p->train, &p->optimizer, a->report);
            ir_verify(p->train);
        }
    }
    if (a->standalone && (int64_t)p->weights->total > limits()->code_bytes / 2) {  /* "0," at the least */
        error_plain("%s: %zu weights as C constants would make more than %lld bytes of C (--max-code-bytes)",
                    a->model, p->weights->total, (long long)limits()->code_bytes);
        hint("--standalone is for small models; raise the cap with --max-code-bytes N if this one is meant to be");
        return 1;
    }
    if (a->standalone) {
        if (!(a->standalone_block = standalone_weights(arena, a, p)))
            return 1;
        standalone_prepare(p->infer, a->standalone_block, a->report);
        ir_verify(p->infer);
    }
    pass_plan_memory(p->infer);
    ir_verify(p->infer);
    if (p->train) {
        pass_plan_memory(p->train);
        ir_verify(p->train);
    }
    if (check_arena(a->model, p->infer) || (p->train && check_arena(a->model, p->train)))
        return 1;
    if (a->emit_ir) {
        ir_print(stdout, p->infer);
        if (p->train)
            ir_print(stdout, p->train);
    }
    if (a->report)
        print_report(p);
    return 0;
}

static const char *with_ext(Arena *arena, const char *path, const char *ext)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t base = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
    return arena_printf(arena, "%.*s%s", (int)base, path, ext);
}

/* The header's path (--header, else -o's with .h) and how P.c includes it:
 * by its file name in #include "...", which has no escapes, so a name that
 * cannot be written there is refused. */
static int header_paths(Arena *arena, const Args *a, const char **path, const char **include_name)
{
    const char *h = a->header ? a->header : with_ext(arena, a->output, ".h");
    const char *slash = strrchr(h, '/'), *name = slash ? slash + 1 : h;
    if (!c_header_name_ok(name)) {
        error_plain("%s '%s': the header's file name '%s' cannot be written in #include \"...\"",
                    a->header ? "--header" : "-o", a->header ? a->header : a->output, name);
        hint("use letters, digits, '_', '-', '.' and '+' in the file name (the folder may hold anything)");
        return -1;
    }
    *path = h;
    *include_name = name;
    return 0;
}

static int cmd_compile(Arena *arena, Args *a, const Program *p)
{
    const char *h, *hname;
    if (header_paths(arena, a, &h, &hname))
        return 1;
    Text tc = render(emit_source, NULL, p, hname);
    Text th = render(NULL, emit_header, p, NULL);
    int rc = check_rendered(p, &tc, a->output) || check_rendered(p, &th, h) || write_file(h, th.text, th.len) ||
             write_file(a->output, tc.text, tc.len);
    free(tc.text);
    free(th.text);
    return rc ? 1 : 0;
}

/* Write path through emit(f) into a temporary file beside it, then rename. */
typedef struct {
    const char *path, *tmp;
    FILE *f;
} Output;

static int output_open(Arena *arena, Output *o, const char *path)
{
    o->path = path;
    o->tmp = arena_printf(arena, "%s.tmp.%ld", path, (long)getpid());
    if (!(o->f = fopen(o->tmp, "wb")))
        return error_plain("cannot write '%s': %s", path, strerror(errno));
    return 0;
}

static int output_close(Output *o, bool keep)
{
    if (!o->f)
        return 0;
    bool ok = !ferror(o->f);
    ok &= fclose(o->f) == 0;
    o->f = NULL;
    if (keep && ok && rename(o->tmp, o->path) == 0)
        return 0;
    int e = errno;
    unlink(o->tmp);
    return keep ? error_plain("cannot write '%s': %s", o->path, strerror(e)) : 0;
}

/* --standalone: P.c and P.h, with the weights standalone_weights read
 * (BatchNormalizations folded in) as constants. */
static int cmd_standalone(Arena *arena, Args *a, const Program *p)
{
    const char *why;
    float *block = a->standalone_block;
    const Node *bad = standalone_unsupported(p->infer, &why);
    if (bad) {
        error_at(bad->loc, "--standalone cannot compile layer '%s' (op %s): %s", bad->layer ? bad->layer : bad->name,
                 op_info[bad->op].name, why);
        hint("compile without --standalone: the code that links libnncc_rt runs every layer");
        free(block);
        return 1;
    }
    if (p->max_timesteps && !diag_quiet())
        fprintf(stderr, "nncc: the variable time axis is compiled at its maximum: %s_infer takes sequences of "
                        "exactly %lld steps (%s_TIMESTEPS)\n", p->name, (long long)p->max_timesteps, p->name);
    const char *h, *hname;
    if (header_paths(arena, a, &h, &hname)) {
        free(block);
        return 1;
    }
    Output oc = {0}, oh = {0};
    int rc = output_open(arena, &oc, a->output) || output_open(arena, &oh, h);
    if (!rc)
        emit_standalone(oc.f, oh.f, p, block, hname);
    rc |= output_close(&oh, !rc);
    rc |= output_close(&oc, !rc);
    free(block);
    return rc ? 1 : 0;
}

/* The program must be rebuilt when the runtime it was built against changed. */
static bool older_than_runtime(const char *exe, const Toolchain *tc)
{
    struct stat se, sr;
    char path[PATH_MAX + 32];
    if (stat(exe, &se) != 0)
        return true;
    const char *deps[] = {"%s/nnrt.h", "%s/libnncc_rt.so"};
    const char *dirs[] = {tc->include_dir, tc->lib_dir};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, deps[i], dirs[i]);
        if (stat(path, &sr) == 0 && sr.st_mtime >= se.st_mtime)
            return true;
    }
    return false;
}

/* train, evaluate, predict, check: generate into dir, build dir/NAME, run
 * it with the options given plus `extra` (NULL-terminated, or NULL). */
static int cmd_run(Arena *arena, Args *a, const Program *p, const char *argv0, const char *dir,
                   const char *const *extra)
{
    Toolchain tc = {0};
    if (toolchain_find(&tc, argv0))
        return 2;
    tc.march_native = a->march_native;
    if (make_dirs(dir))
        return 1;
    const char *c = arena_printf(arena, "%s/%s.c", dir, p->name), *h = arena_printf(arena, "%s/%s.h", dir, p->name),
               *drv = arena_printf(arena, "%s/%s_main.c", dir, p->name),
               *exe = arena_printf(arena, "%s/%s", dir, p->name);
    const char *hname = arena_printf(arena, "%s.h", p->name);
    Text texts[3] = {render(emit_source, NULL, p, hname), render(NULL, emit_header, p, NULL),
                     render(emit_driver, NULL, p, hname)};
    const char *paths[3] = {c, h, drv};
    const char *srcs[] = {c, drv, a->c_source};
    int nsrcs = a->c_source ? 3 : 2;
    bool changed = access(exe, X_OK) != 0 || older_than_runtime(exe, &tc) || build_is_stale(&tc, srcs, nsrcs, exe);
    struct stat st_exe, st_src;
    if (a->c_source && (stat(exe, &st_exe) != 0 || (stat(a->c_source, &st_src) == 0 && st_src.st_mtime >= st_exe.st_mtime)))
        changed = true;  /* the hooks' C file changed */
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        if (!rc && (check_rendered(p, &texts[i], paths[i]) || write_if_changed(paths[i], texts[i], &changed)))
            rc = 1;
        free(texts[i].text);
    }
    if (rc)
        return 1;
    if (changed) {
        if (!diag_quiet())
            fprintf(stderr, "nncc: building %s\n", exe);
        if (build_executable(&tc, srcs, nsrcs, exe))
            return a->c_source ? 1 : 2;  /* the user's C file may be what failed */
    }
    /* the program's own command line */
    char *args[160];
    int n = 0;
    args[n++] = (char *)exe;
    args[n++] = (char *)a->command;
    const char *weights = a->weights;
    if (!weights && keras_model_file(a->model) && strcmp(a->command, "check") != 0)
        weights = a->model;  /* a Keras model file carries its weights */
    if (!weights && strcmp(a->command, "train") != 0 && strcmp(a->command, "check") != 0) {
        const char *trained = arena_printf(arena, "%s/%s.h5", dir, p->name);
        if (access(trained, R_OK) == 0) {
            weights = trained;
            if (!diag_quiet())
                fprintf(stderr, "nncc: using the weights of the last training run, %s\n", trained);
        }
    }
    if (weights && strcmp(a->command, "check") != 0) {
        args[n++] = "--weights";
        args[n++] = (char *)weights;
    } else if (weights) {
        error_plain("check starts from the model's initializers; it takes no --weights");
        return 1;
    }
    if (a->allow_nonfinite)  /* weights (a fit: section's weights_from too) and data */
        args[n++] = "--allow-nonfinite";
    if (!strcmp(a->command, "train")) {
        args[n++] = "--out";
        args[n++] = (char *)dir;
        if (a->epochs) {
            args[n++] = "--epochs";
            args[n++] = (char *)a->epochs;
        }
    }
    if (a->seed && (!strcmp(a->command, "train") || !strcmp(a->command, "check"))) {
        args[n++] = "--seed";
        args[n++] = (char *)a->seed;
    } else if (a->seed) {
        error_plain("--seed goes with train and check");
        return 1;
    }
    for (int i = 0; i < a->ndata; i++) {
        args[n++] = "--data";
        args[n++] = (char *)a->data[i];
    }
    for (int i = 0; i < a->ntargets; i++) {
        args[n++] = "--targets";
        args[n++] = (char *)a->targets[i];
    }
    for (int i = 0; i < a->ninputs; i++) {
        args[n++] = "--input";
        args[n++] = (char *)a->inputs[i];
    }
    for (int i = 0; i < a->noutputs; i++) {
        args[n++] = "--output";
        args[n++] = (char *)a->outputs[i];
    }
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = (char *)extra[i];
    args[n] = NULL;
    return run_program(exe, args);
}

/* check: with fusion on, a second build with --no-fuse (in DIR/unfused)
 * dumps the loss, gradients and outputs of the check's batch (and the
 * outputs after one training step on it), and the fused build compares its
 * own with them before the finite differences. */
static int cmd_check(Arena *arena, Args *a, const Program *p, const char *argv0, const char *dir)
{
    if (a->no_fuse)
        return cmd_run(arena, a, p, argv0, dir, NULL);
    Args plain = *a;
    plain.no_fuse = true;
    plain.report = plain.emit_ir = false;
    Model m;
    Program unfused;
    bool was_quiet = diag_quiet();
    diag_set_quiet(true);  /* the model's warnings were given by the first compile */
    int rc = compile_model(arena, &plain, &m, &unfused);
    diag_set_quiet(was_quiet);
    if (rc)
        return rc;
    const char *udir = arena_printf(arena, "%s/unfused", dir), *dump = arena_printf(arena, "%s/check.bin", udir);
    const char *const to_dump[] = {"--dump", dump, NULL}, *const to_compare[] = {"--reference", dump, NULL};
    if ((rc = cmd_run(arena, &plain, &unfused, argv0, udir, to_dump)))
        return rc;
    return cmd_run(arena, a, p, argv0, dir, to_compare);
}

/* --emit-test: the unfused reference build's check dump (loss, every
 * gradient, every output of check's seeded batch) becomes the expected
 * values of a C program that runs the user's build of P.c the same way
 * (nnrt_regression_test). Gradients are sampled (64, evenly spaced) and
 * summarized by sum |g| and sum g^2, so the file stays small for big models. */
enum { TEST_GRADS = 64 };
#define TEST_TOLERANCE 1e-4

static void emit_floats(FILE *f, const char *name, const float *v, size_t n)
{
    fprintf(f, "static const float %s[%zu] = {", name, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        char num[C_NUMBER_MAX];
        c_float_to(num, v[i]);
        fprintf(f, "%s%s", i == 0 ? "\n    " : i % 6 ? ", " : ",\n    ", num);
    }
    fprintf(f, "%s\n};\n\n", n ? "" : "0");
}

static int cmd_emit_test(Arena *arena, Args *a, const Program *p, const char *argv0)
{
    if (a->copt.inference_only)
        return error_plain("--emit-test checks gradients too: leave out --inference-only"), 1;
    if (!p->train) {
        error_at((Loc){p->source, 1, 1}, "--emit-test checks gradients: the model needs a compile section (loss, optimizer)");
        return 1;
    }
    const char *seed = a->seed ? a->seed : "1";
    Args plain = *a;
    plain.no_fuse = true;
    plain.report = plain.emit_ir = plain.emit_test = false;
    plain.command = "check";
    plain.seed = seed;
    Model m;
    Program unfused;
    bool was_quiet = diag_quiet();
    diag_set_quiet(true);
    int rc = compile_model(arena, &plain, &m, &unfused);
    diag_set_quiet(was_quiet);
    if (rc)
        return rc;
    const char *dir = arena_printf(arena, "%s/unfused", a->out_dir ? a->out_dir : arena_printf(arena, "nncc-out/%s", p->name));
    const char *dump = arena_printf(arena, "%s/check.bin", dir);
    const char *const to_dump[] = {"--dump", dump, NULL};
    if ((rc = cmd_run(arena, &plain, &unfused, argv0, dir, to_dump)))
        return rc;

    size_t len = 0, n = p->max_batch < 4 ? p->max_batch : 4, nout = 0;
    char *raw = read_all(dump, &len);
    uint64_t count = 0;
    for (int j = 0; j < p->noutputs; j++)
        nout += n * (size_t)shape_size(&p->outputs[j].shape);
    if (raw && len >= 16)
        memcpy(&count, raw + 8, sizeof count);
    if (!raw || len < 16 || memcmp(raw, "NNCCCHK1", 8) != 0 || len != 16 + count * 4 || count < 1 + 2 * nout) {
        free(raw);
        return error_plain("%s: not the check dump nncc expected", dump), 2;
    }
    float *v = malloc(count * sizeof *v);
    if (!v) {
        free(raw);
        return error_plain("out of memory"), 2;
    }
    memcpy(v, raw + 16, count * sizeof *v);
    free(raw);
    size_t ngrad = count - 1 - 2 * nout, k = ngrad < TEST_GRADS ? ngrad : TEST_GRADS;  /* outputs after a step last */
    const float *grads = v + 1, *outputs = v + 1 + ngrad;
    double abs_sum = 0, sq_sum = 0;
    for (size_t i = 0; i < ngrad; i++) {
        abs_sum += fabs((double)grads[i]);
        sq_sum += (double)grads[i] * grads[i];
    }
    float picked[TEST_GRADS];
    size_t index[TEST_GRADS];
    for (size_t i = 0; i < k; i++) {
        index[i] = k == 1 ? 0 : i * (ngrad - 1) / (k - 1);
        picked[i] = grads[index[i]];
    }

    const char *P = p->name, *slash = strrchr(a->output, '/');
    Text t = {0};
    FILE *f = open_memstream(&t.text, &t.len);
    if (!f)
        abort();
    fprintf(f, "/* %s — a regression test of %s.c, written by nncc %s (nncc %s --emit-test).\n"
               " *\n"
               " * From the initial weights of seed %s and the seeded batch of `nncc check`\n"
               " * (%zu samples), the loss, all %zu outputs, %zu of the %zu gradients and\n"
               " * two sums over every gradient must agree, to a relative %g, with what\n"
               " * nncc's unfused reference build of the model computed. A later nncc, C\n"
               " * compiler or flag that changes the numerics fails it.\n"
               " *\n"
               " *   cc %s %s.c -lnncc_rt -lm -o test_%s && ./test_%s    (exit status 0: pass)\n"
               " */\n",
            c_comment_text(arena, slash ? slash + 1 : a->output), P, NNCC_VERSION, c_comment_text(arena, a->model),
            seed, n, nout, k, ngrad, TEST_TOLERANCE, c_comment_text(arena, slash ? slash + 1 : a->output), P, P, P);
    fprintf(f, "#include \"%s.h\"\n#include \"nnrt.h\"\n\n", P);
    emit_floats(f, "outputs", outputs, nout);
    fprintf(f, "static const size_t grad_index[%zu] = {", k ? k : 1);
    for (size_t i = 0; i < k; i++)
        fprintf(f, "%s%zu", i == 0 ? "\n    " : i % 8 ? ", " : ",\n    ", index[i]);
    fprintf(f, "%s\n};\n\n", k ? "" : "0");
    emit_floats(f, "grad_value", picked, k);
    fprintf(f, "int main(void)\n{\n"
               "    const NnrtRegression expected = {\n"
               "        .seed = %lluu,\n"
               "        .n = %zu,\n"
               "        .loss = %s,\n"
               "        .outputs = outputs,\n"
               "        .num_outputs = %zu,\n"
               "        .grad_index = grad_index,\n"
               "        .grad_value = grad_value,\n"
               "        .num_grads = %zu,\n"
               "        .grad_abs_sum = %s,\n"
               "        .grad_sq_sum = %s,\n"
               "        .tolerance = %g,\n"
               "    };\n"
               "    return nnrt_regression_test(%s_model(), &expected) == 0 ? 0 : 1;\n}\n",
            strtoull(seed, NULL, 10), n, c_float(arena, v[0]), nout, k, c_double(arena, abs_sum),
            c_double(arena, sq_sum), TEST_TOLERANCE, P);
    fclose(f);
    free(v);
    rc = write_file(a->output, t.text, t.len) ? 1 : 0;
    free(t.text);
    if (!rc && !diag_quiet())
        fprintf(stderr, "nncc: wrote %s (build it with %s.c and libnncc_rt)\n", a->output, P);
    return rc;
}

/* --layers: the frontend's own class table, one line per Keras class: its
 * arguments with their Keras defaults (docs/model-format.md is checked
 * against this list). */
static void print_layer_classes(FILE *f)
{
    int n;
    const LayerClass *const *cls = layer_classes(&n);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s:", cls[i]->name);
        for (const ArgSpec *a = cls[i]->args; a->name; a++)
            fprintf(f, "%s %s%s%s", a == cls[i]->args ? "" : ";", a->name, a->dflt ? " = " : " (required)",
                    a->dflt ? a->dflt : "");
        fputc('\n', f);
    }
}

/* Internal errors (failed asserts, the IR verifier) abort: exit with status 2 as the interface promises. */
static void on_abort(int sig)
{
    (void)sig;
    static const char msg[] = "nncc: internal error (a bug in nncc; please report it with the model file)\n";
    ssize_t unused = write(2, msg, sizeof msg - 1);
    (void)unused;
    _exit(2);
}

int main(int argc, char **argv)
{
    signal(SIGABRT, on_abort);
    if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
        printf("nncc %s\n", NNCC_VERSION);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--layers")) {
        print_layer_classes(stdout);
        return 0;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    Args a = {0};
    if (parse_args(argc, argv, &a))
        return 1;
    /* .h5 files may come from anyone: libhdf5 reads them in a child process (docs/security.md) */
    nnrt_h5_set_policy(&(NnrtH5Policy){.isolate = 1, .allow_nonfinite = a.allow_nonfinite});
    limits_set(&a.limits);
    Arena arena = {0};
    if (a.emit_yaml) {  /* a Keras model as the YAML it compiles as */
        char *text = NULL;
        if (!keras_model_file(a.model))
            error_plain("--emit-yaml converts a Keras .h5 model; '%s' is YAML already", a.model);
        else if (keras_h5_to_yaml(&arena, a.model, &text) == 0)
            fputs(text, stdout);
        arena_free(&arena);
        return text ? 0 : 1;
    }
    Model m;
    Program p;
    int rc = compile_model(&arena, &a, &m, &p);
    if (rc == 0) {
        if (!a.command)
            rc = a.emit_test ? cmd_emit_test(&arena, &a, &p, argv[0])
                 : a.standalone ? cmd_standalone(&arena, &a, &p)
                                : cmd_compile(&arena, &a, &p);
        else if (!strcmp(a.command, "summary"))
            print_summary(stdout, &m, &p);
        else {
            const char *dir = a.out_dir ? a.out_dir : arena_printf(&arena, "nncc-out/%s", p.name);
            rc = !strcmp(a.command, "check") ? cmd_check(&arena, &a, &p, argv[0], dir)
                                             : cmd_run(&arena, &a, &p, argv[0], dir, NULL);
        }
    }
    arena_free(&arena);
    return rc;
}
