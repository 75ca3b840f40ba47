/* keras_h5.c — a Keras .h5 model file as an nncc YAML model: the frontend
 * of `nncc model.h5`.
 *
 * A full-model .h5 (model.save) holds the architecture as the JSON root
 * attribute model_config and the weights in Keras layout, which the
 * runtime's loader reads as it reads nncc's own files. So the importer only
 * translates the architecture: it reads model_config (and training_config)
 * with the HDF5 C library, parses the JSON with libyaml (JSON is YAML's
 * flow style, and the parser gives every value a line and column for the
 * messages), and writes the model in nncc's YAML format, which the usual
 * frontend then compiles — so a Keras layer maps to exactly the IR its YAML
 * spelling gives, and `--emit-yaml` prints that file.
 *
 * The Keras versions differ in many details (spelled out in
 * shared/keras_h5/SOURCES.md): Sequential configs as a bare list (Keras
 * <= 2.1) or a dict; Model/Functional graphs whose inbound_nodes are lists
 * [layer, node, tensor, kwargs] (Keras 2) or {"args": [__keras_tensor__
 * ...]} (Keras 3); input shapes from batch_input_shape, batch_shape or an
 * InputLayer; fixed or variable-length string attributes; BatchNormalization
 * axis as a list, booleans as 0/1. Each is handled where the value is read.
 *
 * Layers are matched to weights by name, and the loader finds each weight
 * in its layer's weight_names by name (":0" optional, the longest shared
 * tail of the path: "sequential_1/dense_3/kernel" is dense_3's kernel),
 * never by HDF5 iteration order.
 *
 * Refused with a message naming the file and the layer: a Lambda layer
 * (Python code), a class nncc lacks, a layer called twice (shared), a
 * weights-only file, a Keras 3 .keras zip, a file that is not HDF5 or is
 * damaged. training_config becomes the compile section when its loss,
 * optimizer and metrics are all nncc's; otherwise it is left out (custom
 * losses must not block inference) and the YAML says why.
 */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "compiler.h"
#include "h5open.h"

#include <ctype.h>
#include <errno.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    Arena *a;
    const char *path;            /* the .h5 file, for messages */
    FILE *out;                   /* the YAML being written */
    int keras_major;             /* 1, 2 or 3, from keras_version */
    const char *keras_version;
    const char *outputs[16];     /* the model's outputs, in order (training_config lists follow it) */
    int noutputs;
} Importer;

static int fail(const Importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const Importer *im, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error_plain("%s: %s", im->path, msg);
}

/* ---- HDF5: string attributes --------------------------------------------------- */

/* A scalar string attribute, variable or fixed length, or NULL when absent. */
static char *string_attr(Arena *a, hid_t obj, const char *name, int *damaged)
{
    *damaged = 0;
    if (H5Aexists(obj, name) <= 0)
        return NULL;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = attr >= 0 ? H5Aget_type(attr) : -1;
    char *value = NULL;
    if (type < 0 || H5Tget_class(type) != H5T_STRING) {
        *damaged = 1;
    } else if (H5Tis_variable_str(type) > 0) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        char *s = NULL;
        if (H5Aread(attr, mem, &s) >= 0 && s) {
            value = arena_strdup(a, s);
            H5free_memory(s);
        } else {
            *damaged = 1;
        }
        H5Tclose(mem);
    } else {
        size_t size = H5Tget_size(type);
        char *buf = arena_alloc(a, size + 1);
        if (H5Aread(attr, type, buf) >= 0) {
            buf[size] = 0;
            value = buf;
        } else {
            *damaged = 1;
        }
    }
    if (type >= 0)
        H5Tclose(type);
    if (attr >= 0)
        H5Aclose(attr);
    return value;
}

/* ---- writing YAML --------------------------------------------------------------- */

/* A scalar as YAML: numbers and keywords as they are, strings double-quoted. */
static void put_scalar(FILE *out, const YNode *v)
{
    if (v->plain) {
        fputs(v->text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = v->text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        if ((unsigned char)*p < 0x20)
            fprintf(out, "\\x%02x", (unsigned char)*p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void put_string(FILE *out, const char *s)
{
    YNode v = {.kind = Y_SCALAR, .text = s, .plain = false};
    put_scalar(out, &v);
}

/* Any JSON value as YAML flow text. */
static void put_value(FILE *out, const YNode *v)
{
    switch (v->kind) {
    case Y_SCALAR:
        put_scalar(out, v);
        return;
    case Y_SEQ:
        fputc('[', out);
        for (int i = 0; i < v->n; i++) {
            fputs(i ? ", " : "", out);
            put_value(out, v->items[i]);
        }
        fputc(']', out);
        return;
    case Y_MAP:
        fputc('{', out);
        for (int i = 0; i < v->n; i++) {
            fputs(i ? ", " : "", out);
            put_scalar(out, ymap_key(v, i));
            fputs(": ", out);
            put_value(out, ymap_value(v, i));
        }
        fputc('}', out);
        return;
    }
}

/* ---- reading the JSON ------------------------------------------------------------ */

static const char *str_of(const YNode *map, const char *key)
{
    const YNode *v = map && map->kind == Y_MAP ? ymap_get(map, key) : NULL;
    return v && v->kind == Y_SCALAR && !yscalar_is_null(v) ? v->text : NULL;
}

/* A Keras {"class_name", "config"} object's two parts. */
static const char *class_of(const YNode *v, const YNode **config)
{
    *config = v && v->kind == Y_MAP ? ymap_get(v, "config") : NULL;
    return str_of(v, "class_name");
}

/* A reference to output `tensor` of layer `name`, as nncc writes it. */
static const char *reference(Arena *a, const char *name, long tensor)
{
    return tensor ? arena_printf(a, "%s[%ld]", name, tensor) : name;
}

/* The shape after the batch axis of a batch_input_shape / batch_shape list. */
static int put_batch_shape(const Importer *im, const YNode *shape, const char *layer)
{
    if (!shape || shape->kind != Y_SEQ || shape->n < 2)
        return fail(im, "layer '%s': its input shape is not a list [batch, ...]", layer);
    fputc('[', im->out);
    for (int i = 1; i < shape->n; i++) {
        fputs(i > 1 ? ", " : "", im->out);
        put_scalar(im->out, shape->items[i]);
    }
    fputc(']', im->out);
    return 0;
}

/* ---- one layer ------------------------------------------------------------------- */

/* Keras initializer {"class_name": "RandomNormal", "config": {...}} as nncc's
 * {RandomNormal: {mean: .., stddev: ..}}: only the arguments nncc knows. */
static void put_initializer(FILE *out, const YNode *v)
{
    const YNode *cfg;
    const char *cls = class_of(v, &cfg);
    if (!cls) {
        put_value(out, v);
        return;
    }
    static const char *const known[] = {"mean", "stddev", "minval", "maxval", "value", "scale", "mode",
                                        "distribution", "gain", NULL};
    fprintf(out, "{%s: {", cls);
    int n = 0;
    for (int i = 0; cfg && cfg->kind == Y_MAP && i < cfg->n; i++)
        for (int k = 0; known[k]; k++)
            if (!strcmp(ymap_key(cfg, i)->text, known[k]) && !yscalar_is_null(ymap_value(cfg, i))) {
                fprintf(out, "%s%s: ", n++ ? ", " : "", known[k]);
                put_value(out, ymap_value(cfg, i));
            }
    fputs("}}", out);
}

/* Keras regularizer {"class_name": "L1L2", "config": {"l1": 0, "l2": 0.01}} as {l1_l2: {l1:, l2:}}. */
static void put_regularizer(FILE *out, const YNode *v)
{
    const YNode *cfg;
    const char *cls = class_of(v, &cfg);
    const char *l1 = str_of(cfg, "l1"), *l2 = str_of(cfg, "l2");
    if (!cls) {
        put_value(out, v);
        return;
    }
    fprintf(out, "{l1_l2: {l1: %s, l2: %s}}", l1 ? l1 : "0", l2 ? l2 : "0");
}

static void put_constraint(FILE *out, const YNode *v)
{
    const YNode *cfg;
    const char *cls = class_of(v, &cfg);
    if (!cls) {
        put_value(out, v);
        return;
    }
    static const char *const known[] = {"max_value", "min_value", "rate", "axis", NULL};
    fprintf(out, "{%s: {", cls);
    int n = 0;
    for (int i = 0; cfg && cfg->kind == Y_MAP && i < cfg->n; i++)
        for (int k = 0; known[k]; k++)
            if (!strcmp(ymap_key(cfg, i)->text, known[k])) {
                fprintf(out, "%s%s: ", n++ ? ", " : "", known[k]);
                put_value(out, ymap_value(cfg, i));
            }
    fputs("}}", out);
}

/* A Keras activation: a name, or a Keras 3 serialized object. */
static const char *activation_name(const YNode *v)
{
    const YNode *cfg;
    const char *cls = class_of(v, &cfg);
    if (cls && str_of(cfg, "name"))
        return str_of(cfg, "name");
    return v->kind == Y_SCALAR ? v->text : NULL;
}

/* A BatchNormalization axis: Keras 2 writes [3]. */
static void put_axis(FILE *out, const YNode *v)
{
    if (v->kind == Y_SEQ && v->n == 1)
        v = v->items[0];
    put_value(out, v);
}

/* The config keys of class cls that nncc's class takes, converted; every
 * other key is Keras bookkeeping (dtype, trainable, seeds, ...) that does
 * not change the computation, or is checked by name here. */
static int put_args(const Importer *im, const LayerClass *cls, const YNode *cfg)
{
    FILE *out = im->out;
    for (int i = 0; cfg && cfg->kind == Y_MAP && i < cfg->n; i++) {
        const char *key = ymap_key(cfg, i)->text;
        const YNode *v = ymap_value(cfg, i);
        const ArgSpec *spec = NULL;
        for (const ArgSpec *s = cls->args; s && s->name; s++)
            if (!strcmp(s->name, key))
                spec = s;
        if (!strcmp(key, "trainable") && v->kind == Y_SCALAR && (!strcmp(v->text, "false") || !strcmp(v->text, "0"))) {
            fputs(", trainable: false", out);
            continue;
        }
        if (!spec || yscalar_is_null(v))  /* null: the default (no regularizer, no constraint) */
            continue;
        if (spec->type == ARG_NODE)
            continue;  /* TimeDistributed's layer: written by the caller */
        fprintf(out, ", %s: ", key);
        switch (spec->type) {
        case ARG_BOOL:
            fputs(v->kind == Y_SCALAR && (!strcmp(v->text, "true") || !strcmp(v->text, "1")) ? "true" : "false", out);
            break;
        case ARG_INITIALIZER:
            put_initializer(out, v);
            break;
        case ARG_REGULARIZER:
            put_regularizer(out, v);
            break;
        case ARG_CONSTRAINT:
            put_constraint(out, v);
            break;
        case ARG_ACTIVATION:
            if (!activation_name(v))
                return fail(im, "layer '%s': an activation nncc cannot read", str_of(cfg, "name"));
            if (!strcmp(activation_name(v), "hard_sigmoid") && im->keras_major >= 3) {
                fail(im, "layer '%s': Keras 3's hard_sigmoid is relu6(x + 3) / 6, not Keras 2's clip(0.2 x + 0.5), "
                         "which nncc implements", str_of(cfg, "name"));
                return -1;
            }
            put_string(out, activation_name(v));
            break;
        case ARG_INT:
            if (!strcmp(key, "axis"))
                put_axis(out, v);
            else
                put_value(out, v);
            break;
        case ARG_FLOAT:
        case ARG_STRING:
        case ARG_SHAPE:
        case ARG_NODE:
            put_value(out, v);
            break;
        }
    }
    return 0;
}

/* Keras class names nncc spells as another class, with a fixed argument. */
static const char *alias_class(Arena *a, const char *keras, const YNode *cfg, const char **extra)
{
    *extra = NULL;
    if (!strcmp(keras, "ReLU")) {
        const char *mv = str_of(cfg, "max_value"), *ns = str_of(cfg, "negative_slope");
        const char *th = str_of(cfg, "threshold");
        if ((mv && strcmp(mv, "null")) || (ns && atof(ns) != 0) || (th && atof(th) != 0))
            return NULL;
        *extra = "activation: relu";
        return "Activation";
    }
    if (!strcmp(keras, "Softmax")) {
        *extra = "activation: softmax";
        return "Activation";
    }
    if (!strcmp(keras, "LeakyReLU")) {
        const char *alpha = str_of(cfg, "alpha") ? str_of(cfg, "alpha") : str_of(cfg, "negative_slope");
        *extra = arena_printf(a, "activation: {leaky_relu: {alpha: %s}}", alpha ? alpha : "0.3");
        return "Activation";
    }
    if (!strcmp(keras, "InputLayer"))
        return NULL;
    return keras;
}

/* One layer of the list: `  - Class: {name: .., inputs: .., args}`. inputs: the references it reads. */
static int put_layer(const Importer *im, const YNode *layer, const char *name, const char *const *inputs, int nin)
{
    const YNode *cfg;
    const char *keras = class_of(layer, &cfg);
    if (!keras)
        return fail(im, "model_config: a layer without class_name");
    if (!strcmp(keras, "Lambda")) {
        fail(im, "layer '%s' is a Lambda layer: it holds Python code, which nncc cannot compile", name);
        hint("rewrite it as Keras layers, or as a custom: function of the YAML model (docs/model-format.md)");
        return -1;
    }
    const char *extra;
    const char *ours = alias_class(im->a, keras, cfg, &extra);
    const LayerClass *cls = ours ? layer_class_find(ours) : NULL;
    if (!cls) {
        fail(im, "layer '%s' has class %s, which nncc does not support%s", name, keras,
             !strcmp(keras, "ReLU") ? " with max_value, negative_slope or threshold" : "");
        hint("`nncc --layers` lists the classes nncc compiles");
        return -1;
    }
    fprintf(im->out, "  - %s: {name: ", cls->name);
    put_string(im->out, name);
    if (nin) {
        fputs(", inputs: [", im->out);
        for (int i = 0; i < nin; i++) {
            fputs(i ? ", " : "", im->out);
            put_string(im->out, inputs[i]);
        }
        fputc(']', im->out);
    }
    if (extra)
        fprintf(im->out, ", %s", extra);
    if (put_args(im, cls, cfg))
        return -1;
    /* standalone Keras 2 (not tf.keras) GRUs default to reset_after false */
    if (!strcmp(cls->name, "GRU") && !ymap_get(cfg, "reset_after") && im->keras_major == 2 &&
        !strstr(im->keras_version, "tf"))
        fputs(", reset_after: false", im->out);
    if (!strcmp(cls->name, "TimeDistributed")) {
        const YNode *inner = ymap_get(cfg, "layer"), *icfg;
        const char *icls = class_of(inner, &icfg);
        const LayerClass *ic = icls ? layer_class_find(icls) : NULL;
        if (!ic) {
            fail(im, "layer '%s' wraps a %s, which nncc does not support", name, icls ? icls : "(no class)");
            return -1;
        }
        fprintf(im->out, ", layer: {%s: {", ic->name);
        /* put_args writes ", key: value" pairs: into memory, to drop the first comma */
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        Importer inner_im = *im;
        inner_im.out = mem;
        put_args(&inner_im, ic, icfg);
        fclose(mem);
        fputs(len > 2 ? buf + 2 : "", im->out);
        free(buf);
        fputs("}}", im->out);
    }
    fputs("}\n", im->out);
    return 0;
}

/* ---- the model --------------------------------------------------------------------- */

/* Keras 2 inbound node [name, node_index, tensor_index, kwargs], or a
 * Keras 3 __keras_tensor__: its layer and tensor. */
static int tensor_ref(const Importer *im, const YNode *t, const char *layer, const char **out)
{
    const YNode *hist = NULL;
    if (t->kind == Y_MAP) {
        const YNode *cfg;
        const char *cls = class_of(t, &cfg);
        if (cls && !strcmp(cls, "__keras_tensor__"))
            hist = ymap_get(cfg, "keras_history");
    } else if (t->kind == Y_SEQ) {
        hist = t;
    }
    if (!hist || hist->kind != Y_SEQ || hist->n < 3 || hist->items[0]->kind != Y_SCALAR)
        return fail(im, "layer '%s': an input in inbound_nodes that nncc cannot read", layer);
    if (atol(hist->items[1]->text) != 0)
        return fail(im, "layer '%s' reads '%s' from its call number %s: shared layers (called more than once) are "
                        "not supported", layer, hist->items[0]->text, hist->items[1]->text);
    *out = reference(im->a, hist->items[0]->text, atol(hist->items[2]->text));
    return 0;
}

/* The references a functional layer reads, from its one inbound node. */
static int inbound(const Importer *im, const YNode *nodes, const char *layer, const char **refs, int *n)
{
    *n = 0;
    if (!nodes || nodes->kind != Y_SEQ || nodes->n == 0)
        return 0;
    if (nodes->n > 1)
        return fail(im, "layer '%s' is called %d times: shared layers are not supported", layer, nodes->n);
    const YNode *node = nodes->items[0];
    if (node->kind == Y_MAP) {  /* Keras 3: {"args": [tensor or [tensors]], "kwargs": {}} */
        const YNode *args = ymap_get(node, "args");
        const YNode *kwargs = ymap_get(node, "kwargs");
        if (kwargs && kwargs->kind == Y_MAP && ymap_get(kwargs, "initial_state"))
            return fail(im, "layer '%s' is called with initial_state: not supported in imported models", layer);
        if (!args || args->kind != Y_SEQ || args->n < 1)
            return fail(im, "layer '%s': inbound_nodes without args", layer);
        const YNode *first = args->items[0];
        const YNode *const *list = first->kind == Y_SEQ ? (const YNode *const *)first->items : &first;
        int count = first->kind == Y_SEQ ? first->n : 1;
        for (int i = 0; i < count && *n < 16; i++)
            if (tensor_ref(im, list[i], layer, &refs[(*n)++]))
                return -1;
        return 0;
    }
    if (node->kind != Y_SEQ)
        return fail(im, "layer '%s': inbound_nodes that nncc cannot read", layer);
    for (int i = 0; i < node->n && *n < 16; i++) {  /* Keras 2: [[name, node, tensor, kwargs], ...] */
        const YNode *t = node->items[i];
        if (t->kind == Y_SEQ && t->n >= 4 && t->items[3]->kind == Y_MAP && ymap_get(t->items[3], "initial_state"))
            return fail(im, "layer '%s' is called with initial_state: not supported in imported models", layer);
        if (tensor_ref(im, t, layer, &refs[(*n)++]))
            return -1;
    }
    return 0;
}

/* A C identifier from the Keras model name ("sequential_1" stays). */
static const char *model_name(Arena *a, const char *name)
{
    char *s = arena_strdup(a, name && *name ? name : "model");
    for (char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            *p = '_';
    if (isdigit((unsigned char)s[0]) || emit_reserved_prefix(s))
        return arena_printf(a, "keras_%s", s);
    return s;
}

static int put_input(const Importer *im, const char *name, const YNode *shape, const char *layer)
{
    fputs("  - {name: ", im->out);
    put_string(im->out, name);
    fputs(", shape: ", im->out);
    if (put_batch_shape(im, shape, layer))
        return -1;
    fputs("}\n", im->out);
    return 0;
}

static const YNode *input_shape_of(const YNode *cfg)
{
    const YNode *s = cfg && cfg->kind == Y_MAP ? ymap_get(cfg, "batch_input_shape") : NULL;
    return s ? s : cfg && cfg->kind == Y_MAP ? ymap_get(cfg, "batch_shape") : NULL;
}

/* Sequential: a bare list (Keras <= 2.1) or {name, layers}. */
static int put_sequential(Importer *im, const YNode *config)
{
    const YNode *layers = config->kind == Y_SEQ ? config : ymap_get(config, "layers");
    if (!layers || layers->kind != Y_SEQ || layers->n == 0)
        return fail(im, "model_config: a Sequential model without layers");
    fprintf(im->out, "name: %s\ninputs:\n", model_name(im->a, config->kind == Y_MAP ? str_of(config, "name") : NULL));
    const YNode *cfg0;
    const char *cls0 = class_of(layers->items[0], &cfg0);
    const char *name0 = str_of(cfg0, "name");
    int first = 0;
    if (cls0 && !strcmp(cls0, "InputLayer")) {
        if (put_input(im, name0 ? name0 : "input_1", input_shape_of(cfg0), name0 ? name0 : "input"))
            return -1;
        first = 1;
    } else {
        const YNode *shape = input_shape_of(cfg0);
        if (!shape) {
            fail(im, "model_config: the Sequential model's first layer has no input shape");
            hint("Keras saves it once the model is built: build or fit the model before model.save");
            return -1;
        }
        if (put_input(im, arena_printf(im->a, "%s_input", name0 ? name0 : "layer"), shape, name0 ? name0 : "?"))
            return -1;
    }
    fputs("layers:\n", im->out);
    for (int i = first; i < layers->n; i++) {
        const YNode *cfg;
        const char *cls = class_of(layers->items[i], &cfg);
        const char *name = str_of(cfg, "name");
        if (!name)
            return fail(im, "model_config: layer %d has no name", i);
        if (cls && !strcmp(cls, "InputLayer"))
            return fail(im, "layer '%s': an InputLayer inside a Sequential model", name);
        if (put_layer(im, layers->items[i], name, NULL, 0))
            return -1;
        im->outputs[0] = name;  /* the last layer */
        im->noutputs = 1;
    }
    return 0;
}

/* Model / Functional: layers with inbound_nodes, input_layers and output_layers in order. */
static int put_functional(Importer *im, const YNode *config)
{
    const YNode *layers = ymap_get(config, "layers"), *ins = ymap_get(config, "input_layers"),
                *outs = ymap_get(config, "output_layers");
    if (!layers || layers->kind != Y_SEQ || !ins || ins->kind != Y_SEQ || !outs || outs->kind != Y_SEQ)
        return fail(im, "model_config: a functional model needs layers, input_layers and output_layers");
    fprintf(im->out, "name: %s\ninputs:\n", model_name(im->a, str_of(config, "name")));
    /* a single input or output may be written as one [name, 0, 0] instead of a list of them */
    const YNode *const *in_list = (const YNode *const *)ins->items;
    int nins = ins->n;
    if (nins && ins->items[0]->kind == Y_SCALAR)
        in_list = &ins, nins = 1;
    for (int i = 0; i < nins; i++) {
        const YNode *t = in_list[i];
        if (t->kind != Y_SEQ || t->n < 1)
            return fail(im, "model_config: input_layers entry %d is not [name, node, tensor]", i);
        const char *want = t->items[0]->text;
        const YNode *shape = NULL;
        for (int j = 0; j < layers->n; j++) {
            const YNode *cfg;
            class_of(layers->items[j], &cfg);
            const char *name = str_of(layers->items[j], "name") ? str_of(layers->items[j], "name") : str_of(cfg, "name");
            if (name && !strcmp(name, want))
                shape = input_shape_of(cfg);
        }
        if (!shape)
            return fail(im, "model_config: input '%s' has no InputLayer with a shape", want);
        if (put_input(im, want, shape, want))
            return -1;
    }
    fputs("layers:\n", im->out);
    for (int i = 0; i < layers->n; i++) {
        const YNode *cfg;
        const char *cls = class_of(layers->items[i], &cfg);
        const char *name = str_of(layers->items[i], "name") ? str_of(layers->items[i], "name") : str_of(cfg, "name");
        if (!name)
            return fail(im, "model_config: layer %d has no name", i);
        if (cls && !strcmp(cls, "InputLayer"))
            continue;
        const char *refs[16];
        int n;
        if (inbound(im, ymap_get(layers->items[i], "inbound_nodes"), name, refs, &n))
            return -1;
        if (n == 0)
            return fail(im, "layer '%s' has no inbound node: it is not connected to the model's inputs", name);
        if (put_layer(im, layers->items[i], name, refs, n))
            return -1;
    }
    const YNode *const *out_list = (const YNode *const *)outs->items;
    int nouts = outs->n;
    if (nouts && outs->items[0]->kind == Y_SCALAR)
        out_list = &outs, nouts = 1;
    fputs("outputs: [", im->out);
    for (int i = 0; i < nouts; i++) {
        const YNode *t = out_list[i];
        if (t->kind != Y_SEQ || t->n < 3)
            return fail(im, "model_config: output_layers entry %d is not [name, node, tensor]", i);
        fputs(i ? ", " : "", im->out);
        const char *ref = reference(im->a, t->items[0]->text, atol(t->items[2]->text));
        put_string(im->out, ref);
        if (im->noutputs < 16)
            im->outputs[im->noutputs++] = ref;
    }
    fputs("]\n", im->out);
    return 0;
}

/* ---- training_config: the compile section when it is nncc's ------------------------------- */

static bool known_loss(const char *name)
{
    static const char *const aliases[] = {"mse", "mae", "mape", "msle", "MSE", "MAE", NULL};
    for (int i = 0; i < LOSS_COUNT; i++)
        if (!strcmp(loss_info[i].name, name))
            return true;
    for (int i = 0; aliases[i]; i++)
        if (!strcmp(aliases[i], name))
            return true;
    return false;
}

static bool known_metric(const char *name)
{
    static const char *const more[] = {"accuracy", "acc", "mse", "mae", NULL};
    for (int i = 0; i < METRIC_COUNT; i++)
        if (!strcmp(metric_info[i].name, name))
            return true;
    for (int i = 0; more[i]; i++)
        if (!strcmp(more[i], name))
            return true;
    return false;
}

/* A loss entry: a name, or a Keras 3 {"class_name", "config": {"name": ...}} object. */
static const char *loss_name(const YNode *v)
{
    if (!v)
        return NULL;
    if (v->kind == Y_SCALAR)
        return v->text;
    const YNode *cfg;
    const char *cls = class_of(v, &cfg);
    const char *n = str_of(cfg, "name");
    return n ? n : cls;
}

static void put_compile(const Importer *im, const char *json)
{
    FILE *out = im->out;
    YNode *tc = json ? yaml_load_string(im->a, arena_printf(im->a, "%s: training_config", im->path), json) : NULL;
    if (!tc || tc->kind != Y_MAP)
        return;
    const char *why = NULL;
    const YNode *loss = ymap_get(tc, "loss"), *opt = ymap_get(tc, "optimizer_config");
    const YNode *ocfg;
    const char *ocls = class_of(opt, &ocfg);
    if (ocls && !strncmp(ocls, "Custom>", 7))
        ocls += 7;
    bool opt_ok = false;
    for (int i = 0; ocls && i < OPT_COUNT; i++)
        opt_ok |= !strcasecmp(optimizer_info[i].name, ocls);
    if (!opt_ok)
        why = arena_printf(im->a, "its optimizer %s is not one of nncc's", ocls ? ocls : "(none)");
    if (loss && loss->kind == Y_MAP && !ymap_get(loss, "class_name")) {
        for (int i = 0; i < loss->n && !why; i++)
            if (!loss_name(ymap_value(loss, i)) || !known_loss(loss_name(ymap_value(loss, i))))
                why = arena_printf(im->a, "its loss '%s' is custom", loss_name(ymap_value(loss, i)));
    } else if (loss && loss->kind == Y_SEQ) {  /* one per output, in output order */
        if (loss->n != im->noutputs)
            why = arena_printf(im->a, "it lists %d losses for %d outputs", loss->n, im->noutputs);
        for (int i = 0; i < loss->n && !why; i++)
            if (!loss_name(loss->items[i]) || !known_loss(loss_name(loss->items[i])))
                why = arena_printf(im->a, "its loss '%s' is custom", loss_name(loss->items[i]));
    } else if (!loss_name(loss) || !known_loss(loss_name(loss))) {
        why = arena_printf(im->a, "its loss '%s' is custom", loss_name(loss) ? loss_name(loss) : "(none)");
    }
    if (why) {
        fprintf(out, "# training_config is left out: %s (nncc compiles the model for inference)\n", why);
        return;
    }
    fputs("compile:\n  loss: ", out);
    if (loss->kind == Y_MAP && !ymap_get(loss, "class_name")) {
        fputc('{', out);
        for (int i = 0; i < loss->n; i++) {
            fputs(i ? ", " : "", out);
            put_scalar(out, ymap_key(loss, i));
            fputs(": ", out);
            put_string(out, loss_name(ymap_value(loss, i)));
        }
        fputc('}', out);
    } else if (loss->kind == Y_SEQ) {
        fputc('{', out);
        for (int i = 0; i < loss->n; i++) {
            fputs(i ? ", " : "", out);
            put_string(out, im->outputs[i]);
            fputs(": ", out);
            put_string(out, loss_name(loss->items[i]));
        }
        fputc('}', out);
    } else {
        put_string(out, loss_name(loss));
    }
    const YNode *lw = ymap_get(tc, "loss_weights");
    if (lw && lw->kind == Y_SEQ && lw->n == im->noutputs) {
        fputs("\n  loss_weights: {", out);
        for (int i = 0; i < lw->n; i++) {
            fputs(i ? ", " : "", out);
            put_string(out, im->outputs[i]);
            fputs(": ", out);
            put_value(out, lw->items[i]);
        }
        fputc('}', out);
    } else if (lw && lw->kind == Y_MAP) {
        fputs("\n  loss_weights: ", out);
        put_value(out, lw);
    }
    static const char *const args[] = {"learning_rate", "momentum", "nesterov", "beta_1", "beta_2", "epsilon", "rho",
                                       "amsgrad", "centered", "weight_decay", "initial_accumulator_value", NULL};
    const char *canonical = ocls;
    for (int i = 0; i < OPT_COUNT; i++)
        if (!strcasecmp(optimizer_info[i].name, ocls))
            canonical = optimizer_info[i].name;
    fprintf(out, "\n  optimizer: {%s: {", canonical);
    int n = 0;
    for (int i = 0; ocfg && ocfg->kind == Y_MAP && i < ocfg->n; i++) {
        const char *k = ymap_key(ocfg, i)->text;
        const YNode *v = ymap_value(ocfg, i);
        if (!strcmp(k, "lr"))
            k = "learning_rate";  /* Keras <= 2.2 */
        if (v->kind != Y_SCALAR || yscalar_is_null(v))
            continue;
        if (!strcmp(k, "weight_decay") && strcmp(canonical, "AdamW") != 0)
            continue;
        for (int a = 0; args[a]; a++)
            if (!strcmp(k, args[a])) {
                fprintf(out, "%s%s: ", n++ ? ", " : "", k);
                put_value(out, v);
            }
    }
    fputs("}}\n", out);
    const YNode *metrics = ymap_get(tc, "metrics");
    if (metrics && metrics->kind == Y_SEQ) {
        int written = 0;
        for (int i = 0; i < metrics->n; i++) {
            const char *mname = loss_name(metrics->items[i]);
            if (!mname || !known_metric(mname))
                continue;
            fputs(written++ ? ", " : "  metrics: [", out);
            put_string(out, !strcmp(mname, "acc") ? "accuracy" : mname);
        }
        if (written)
            fputs("]\n", out);
    }
}

/* ---- the entry point ------------------------------------------------------------------ */

/* What the importer reads with libhdf5: the root's string attributes. */
enum { ROOT_READ, ROOT_UNOPENED, ROOT_CONFIG_DAMAGED };
typedef struct {
    int status;                  /* ROOT_* */
    const char *config, *version, *training;  /* the attributes; NULL when absent */
    int weights_only;            /* no model_config, but layer_names: a save_weights file */
} RootAttrs;

static void read_root_attrs(Arena *a, const char *path, RootAttrs *r)
{
    NnrtH5Quiet quiet;
    nnrt_h5_quiet(&quiet);
    int damaged = 0, ignored;
    *r = (RootAttrs){ROOT_READ, NULL, NULL, NULL, 0};
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        r->status = ROOT_UNOPENED;
        goto done;
    }
    r->config = string_attr(a, file, "model_config", &damaged);
    if (damaged) {
        r->status = ROOT_CONFIG_DAMAGED;
        goto done;
    }
    if (!r->config) {
        r->weights_only = H5Aexists(file, "layer_names") > 0;
        goto done;
    }
    r->version = string_attr(a, file, "keras_version", &ignored);
    r->training = string_attr(a, file, "training_config", &ignored);
done:
    if (file >= 0)
        H5Fclose(file);
    nnrt_h5_restore(&quiet);
}

/* The child's side of read_root_attrs_isolated: status, weights_only, then
 * each string as a presence byte, a length and its bytes. */
static int put_root_attrs(void *ctx, FILE *out)
{
    const char *path = ctx;
    Arena a = {0};
    RootAttrs r;
    read_root_attrs(&a, path, &r);
    int32_t head[2] = {r.status, r.weights_only};
    if (fwrite(head, sizeof head, 1, out) != 1)
        return -1;
    const char *strings[3] = {r.config, r.version, r.training};
    for (int i = 0; i < 3; i++) {
        unsigned char present = strings[i] != NULL;
        uint64_t len = present ? strlen(strings[i]) : 0;
        if (fwrite(&present, 1, 1, out) != 1 || fwrite(&len, sizeof len, 1, out) != 1 ||
            fwrite(present ? strings[i] : "", 1, len, out) != len)
            return -1;
    }
    return 0;
}

/* read_root_attrs in a child process (runtime/h5guard.c): a file that
 * crashes or hangs libhdf5 ends in a message, not in nncc's crash. */
static int read_root_attrs_isolated(Arena *a, const char *path, RootAttrs *r)
{
    char *buf = NULL, err[1024];
    size_t len = 0;
    if (nnrt_h5_isolated(path, put_root_attrs, (void *)path, 0, &buf, &len, err, sizeof err) < 0) {
        error_plain("%s", err);
        return -1;
    }
    NnrtWire w = {buf, len, 0};
    int32_t head[2];
    int ok = nnrt_wire_take(&w, head, sizeof head) == 0;
    const char **strings[3] = {&r->config, &r->version, &r->training};
    for (int i = 0; ok && i < 3; i++) {
        unsigned char present;
        uint64_t n;
        ok = nnrt_wire_take(&w, &present, 1) == 0 && nnrt_wire_take(&w, &n, sizeof n) == 0 && n <= w.len - w.at;
        if (ok) {
            char *s = present ? arena_alloc(a, n + 1) : NULL;
            if (s) {
                memcpy(s, w.buf + w.at, n);
                s[n] = '\0';
            }
            w.at += n;
            *strings[i] = s;
        }
    }
    free(buf);
    if (!ok || w.at != w.len)
        return error_plain("%s: the process reading it sent a short answer", path);
    r->status = head[0];
    r->weights_only = head[1];
    return 0;
}

bool keras_model_file(const char *path)
{
    const char *ext = strrchr(path, '.');
    return ext && (!strcmp(ext, ".h5") || !strcmp(ext, ".hdf5") || !strcmp(ext, ".keras"));
}

int keras_h5_to_yaml(Arena *a, const char *path, char **yaml)
{
    Importer im = {a, path, NULL, 2, "", {NULL}, 0};
    *yaml = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(&im, "cannot open: %s", strerror(errno));
    unsigned char sig[8] = {0};
    size_t got = fread(sig, 1, sizeof sig, f);
    fclose(f);
    if (got >= 4 && !memcmp(sig, "PK\3\4", 4)) {
        fail(&im, "this is a Keras 3 .keras archive (a zip), not an HDF5 model file");
        hint("in Keras, load it and save it as HDF5: keras.models.load_model('m.keras').save('m.h5')");
        return -1;
    }
    if (got < 8 || memcmp(sig, "\211HDF\r\n\032\n", 8) != 0) {
        fail(&im, "not an HDF5 file (it does not start with the HDF5 signature)");
        hint("a Keras model saved with model.save('m.h5') starts with \\x89HDF; this file may be damaged "
             "(e.g. by a text-mode copy)");
        return -1;
    }
    char err[1024];
    if (nnrt_h5_precheck(path, "a Keras .h5 model file", err, sizeof err) < 0) {
        error_plain("%s", err);
        return -1;
    }
    int rc = -1;
    RootAttrs root = {0};
    if (read_root_attrs_isolated(a, path, &root) < 0)
        return -1;
    const char *config = root.config, *training = root.training;
    if (root.status == ROOT_UNOPENED) {
        fail(&im, "HDF5 cannot open it: the file is damaged or truncated");
        goto done;
    }
    if (root.status == ROOT_CONFIG_DAMAGED) {
        fail(&im, "the model_config attribute cannot be read: the file is damaged");
        goto done;
    }
    if (!config) {
        if (root.weights_only) {
            fail(&im, "this file holds weights only (model.save_weights), no architecture");
            hint("describe the model in YAML and load these weights with --weights %s", path);
        } else {
            fail(&im, "no model_config attribute: this is not a Keras model file");
        }
        goto done;
    }
    const char *version = root.version;
    im.keras_version = version ? version : "";
    im.keras_major = version ? atoi(version) : 2;
    {
        YNode *mc = yaml_load_string(a, arena_printf(a, "%s: model_config", path), config);
        if (!mc)
            goto done;
        const YNode *cfg;
        const char *cls = class_of(mc, &cfg);
        if (!cls || !cfg) {
            fail(&im, "model_config is not a Keras {class_name, config} object");
            goto done;
        }
        char *buf = NULL;
        size_t len = 0;
        im.out = open_memstream(&buf, &len);
        fprintf(im.out, "# %s: converted by nncc from Keras %s's model_config\n", path, im.keras_version);
        int r = !strcmp(cls, "Sequential")                         ? put_sequential(&im, cfg)
              : !strcmp(cls, "Functional") || !strcmp(cls, "Model") ? put_functional(&im, cfg)
                                                                    : fail(&im, "model_config: a %s, not a Sequential "
                                                                                "or functional model", cls);
        if (r == 0)
            put_compile(&im, training);
        fclose(im.out);
        if (r == 0) {
            *yaml = arena_strdup(a, buf);
            rc = 0;
        }
        free(buf);
    }
done:
    return rc;
}
