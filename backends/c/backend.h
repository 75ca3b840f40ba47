/* backend.h — the C backend: a Program becomes C that reads like hand-written code.
 *
 *   emit.c   P.c (weights, optimizer state and arena in one allocation; the
 *            planned graphs as straight-line kernel calls with shapes folded
 *            in; the generated API of spec/interfaces.md), P.h, and the driver
 *            program `nncc train` builds (the fit section as an NnrtFitConfig).
 *   standalone.c  --standalone: P.c/P.h that infer one sample with the weights
 *            as constants, for C99 and <math.h> alone (no runtime library).
 */
#ifndef NNCC_BACKEND_H
#define NNCC_BACKEND_H

#include <stdbool.h>
#include <stdio.h>

#include "ir.h"

/* Requires: planned graphs (pass_plan_memory). header_name is how P.c includes P.h. */
void emit_source(FILE *out, const Program *p, const char *header_name);
void emit_header(FILE *out, const Program *p);
void emit_driver(FILE *out, const Program *p, const char *header_name);

/* Names the generated C uses itself (C and libc names, P.c's statics and
 * locals): buffers must avoid them, and a model prefix P must not make any
 * P_new, P_free, ... clash with them. */
bool emit_reserved_name(const char *name);
bool emit_reserved_prefix(const char *prefix);
/* The model's type and API names (P, P_new, ...), which no derived name may take. */
void emit_reserve_program_names(Graph *g, const char *prefix);
bool emit_api_name(const char *prefix, const char *name);  /* name is P or P_new, P_free, ... */
/* A C hook's function name (c_function, c_gradient) the generated code cannot
 * declare or call: a C or libc name, one of P.c's own, or a helper's local. */
bool emit_reserved_hook(const char *name);

/* ---- standalone.c ---- */

/* Before pass_plan_memory on the inference graph: keep only what P_infer
 * computes (the outputs, what they read, the inputs) and give each kernel
 * the scratch the standalone kernels need (none). */
void standalone_prepare(Graph *g, float *weights, bool report);
/* The first node P_infer cannot compute, with the reason, or NULL. */
const Node *standalone_unsupported(const Graph *g, const char **why);
/* Requires: standalone_prepare, pass_plan_memory, no unsupported node.
 * weights: the weight block (p->weights->total floats, Keras order). */
void emit_standalone(FILE *c, FILE *h, const Program *p, const float *weights, const char *header_name);
/* Names P.c of --standalone uses itself (part of emit_reserved_name). */
bool standalone_reserved_name(const char *name);

#endif /* NNCC_BACKEND_H */
