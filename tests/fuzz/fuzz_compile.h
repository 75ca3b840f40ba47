/* fuzz_compile.h — the compile path both model harnesses drive.
 *
 * What `nncc MODEL -o OUT.c` and `nncc summary MODEL` do, as
 * compile_model and cmd_compile in compiler/main.c: model_parse (which
 * turns a Keras .h5 into YAML first), lower_model, the passes with
 * ir_verify between them, the memory plan, then every text nncc writes:
 * the source, the header, the driver, the IR dump and the summary, into
 * memory instead of files. Nothing is built or run. The diagnostics'
 * sources are forgotten before the arena holding them is freed, so runs
 * do not see each other.
 */
#ifndef NNCC_FUZZ_COMPILE_H
#define NNCC_FUZZ_COMPILE_H

#include "backend.h"
#include "compiler.h"

#include <stdio.h>
#include <stdlib.h>

static void fuzz_emit(const Program *p, const Model *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort();
    emit_source(f, p, "fuzz.h");
    emit_header(f, p);
    emit_driver(f, p, "fuzz.h");
    ir_print(f, p->infer);
    if (p->train)
        ir_print(f, p->train);
    print_summary(f, m, p);
    fclose(f);
    free(text);
}

static void fuzz_compile(const char *path)
{
    Arena arena = {0};
    Model m;
    Program p;
    if (model_parse(&arena, path, &m) || check_c_hooks(NULL, &m))
        goto done;
    CompileOptions copt = {.max_batch = m.fit.present ? (size_t)m.fit.batch_size : 32};
    if (lower_model(&arena, &m, &copt, &p))
        goto done;
    p.model_config = keras_model_config(&arena, &m);
    pass_fold_bn(p.infer, false);
    ir_verify(p.infer);
    pass_cse(p.infer, false);
    pass_fuse(p.infer, false);
    ir_verify(p.infer);
    if (p.train) {
        pass_cse(p.train, false);
        pass_fuse(p.train, false);
        pass_fuse_sgd(p.train, &p.optimizer, false);
        ir_verify(p.train);
    }
    pass_plan_memory(p.infer);
    ir_verify(p.infer);
    if (p.train) {
        pass_plan_memory(p.train);
        ir_verify(p.train);
    }
    fuzz_emit(&p, &m);
done:
    diag_reset();
    arena_free(&arena);
}

#endif
