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
 *
 * The file may come from anyone, so nothing is read by assumption:
 * attributes by their actual HDF5 type and shape (string_attr), JSON
 * values by their actual kind (json_kind: a null where Keras writes an
 * integer is an error naming the key path, "model_config:
 * config.layers[3].inbound_nodes[0][0][1]: expected an integer, got null").
 * What is written into the YAML is a JSON literal, a quoted string, or a
 * name that is an identifier, so no value of the file becomes YAML syntax.
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
    size_t file_size;            /* bytes: no attribute's stored value is longer */
    const YNode *json;           /* the JSON being read, for the key paths of messages */
    const char *json_name;       /* its attribute: "model_config" or "training_config" */
    char *captured;              /* when set, fail() writes its message here instead of printing it: */
    size_t captured_size;        /* the child of read_root_attrs_isolated, whose stderr goes nowhere */
} Importer;

static int fail(const Importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const Importer *im, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (im->captured) {
        snprintf(im->captured, im->captured_size, "%s: %s", im->path, msg);
        return -1;
    }
    return error_plain("%s: %s", im->path, msg);
}

/* ---- HDF5: string attributes --------------------------------------------------- */

/* What an attribute's type is, for messages: "an 8-byte integer", "a
 * string"; or as the plural noun for an array of them: "integers". */
static const char *type_words(Arena *a, hid_t type, bool plural)
{
    size_t size = H5Tget_size(type);
    const char *noun = "value";
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        if (!plural)
            return arena_printf(a, "a%s %zu-byte integer", size == 8 || size == 11 || size == 18 ? "n" : "", size);
        noun = "integer";
        break;
    case H5T_FLOAT:
        if (!plural)
            return arena_printf(a, "a%s %zu-byte float", size == 8 || size == 11 || size == 18 ? "n" : "", size);
        noun = "float";
        break;
    case H5T_STRING:
        noun = "string";
        break;
    case H5T_COMPOUND:
        noun = "compound value";
        break;
    case H5T_ARRAY:
        noun = "HDF5 array value";
        break;
    case H5T_VLEN:
        noun = "variable-length sequence";
        break;
    case H5T_ENUM:
        noun = "enum value";
        break;
    case H5T_REFERENCE:
        noun = "reference";
        break;
    case H5T_OPAQUE:
    case H5T_BITFIELD:
    case H5T_TIME:
    case H5T_NO_CLASS:
    case H5T_NCLASSES:
        break;
    }
    return plural ? arena_printf(a, "%ss", noun) : arena_printf(a, "a%s %s", strchr("aeiou", noun[0]) ? "n" : "", noun);
}

/* The text of the string attribute `name` of obj (the file's root), read
 * by its actual type and shape: Keras writes one string, fixed or variable
 * length, as a scalar or (h5py with some versions) a 1-element array.
 * Anything else — a number, an array of several strings, an empty array,
 * a fixed length beyond the file's own size — is an error naming the
 * attribute, never a read into a buffer of the wrong size. *out is NULL
 * when the attribute is absent. */
static int string_attr(const Importer *im, hid_t obj, const char *name, const char **out)
{
    int rc = -1;
    hid_t attr = -1, type = -1, space = -1, mem = -1;
    char *vlen[1] = {NULL};
    *out = NULL;
    htri_t exists = H5Aexists(obj, name);
    if (exists == 0)
        return 0;
    if (exists < 0 || (attr = H5Aopen(obj, name, H5P_DEFAULT)) < 0 || (type = H5Aget_type(attr)) < 0 ||
        (space = H5Aget_space(attr)) < 0) {
        fail(im, "attribute '%s' cannot be read: the file is damaged", name);
        goto fail;
    }
    H5S_class_t shape = H5Sget_simple_extent_type(space);
    hssize_t count = H5Sget_simple_extent_npoints(space);
    bool is_string = H5Tget_class(type) == H5T_STRING;
    if (shape == H5S_NULL || count == 0) {
        fail(im, "attribute '%s' is empty (no %s); Keras writes one string", name, type_words(im->a, type, true));
        goto fail;
    }
    if (shape != H5S_SCALAR && shape != H5S_SIMPLE) {
        fail(im, "attribute '%s' cannot be read: the file is damaged", name);
        goto fail;
    }
    if (count != 1) {
        fail(im, "attribute '%s' is an array of %lld %s; Keras writes one string", name, (long long)count,
             type_words(im->a, type, true));
        goto fail;
    }
    if (!is_string) {
        fail(im, "attribute '%s' is %s; Keras writes a string", name, type_words(im->a, type, false));
        goto fail;
    }
    htri_t variable = H5Tis_variable_str(type);
    if (variable < 0 || (mem = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mem, H5Tget_cset(type)) < 0) {
        fail(im, "attribute '%s' cannot be read: the file is damaged", name);
        goto fail;
    }
    if (variable) {
        if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Aread(attr, mem, vlen) < 0) {
            fail(im, "attribute '%s' cannot be read: the file is damaged", name);
            goto fail;
        }
        *out = arena_strdup(im->a, vlen[0] ? vlen[0] : "");
    } else {
        /* An attribute's bytes are stored in the file, uncompressed: a
         * length beyond the file's size is a damaged header, and must not
         * become an allocation of that size. */
        size_t size = H5Tget_size(type);
        if (size == 0 || size > im->file_size) {
            fail(im, "attribute '%s' claims a %zu-byte string in a %zu-byte file: the file is damaged", name, size,
                 im->file_size);
            goto fail;
        }
        char *buf = arena_alloc(im->a, size + 1);
        if (H5Tset_size(mem, size) < 0 || H5Tset_strpad(mem, H5T_STR_NULLPAD) < 0 || H5Aread(attr, mem, buf) < 0) {
            fail(im, "attribute '%s' cannot be read: the file is damaged", name);
            goto fail;
        }
        *out = buf;  /* arena_alloc zeroed buf[size] */
    }
    rc = 0;
fail:
    if (vlen[0])
        H5free_memory(vlen[0]);
    if (mem >= 0)
        H5Tclose(mem);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (attr >= 0)
        H5Aclose(attr);
    return rc;
}

/* ---- reading the JSON by kind ------------------------------------------------------ */

/* JSON parsed as YAML: strings are quoted scalars, every other scalar is a
 * plain one whose text says its kind. A plain word that is none of JSON's
 * literals is not JSON; it is a kind of its own so that it is never taken
 * for a string, a number or null. */
typedef enum { J_NULL, J_BOOL, J_INT, J_NUMBER, J_STRING, J_WORD, J_LIST, J_OBJECT } JsonKind;

static JsonKind json_kind(const YNode *v)
{
    if (v->kind == Y_SEQ)
        return J_LIST;
    if (v->kind == Y_MAP)
        return J_OBJECT;
    if (!v->plain)
        return J_STRING;
    if (yscalar_is_null(v))
        return J_NULL;
    if (!strcmp(v->text, "true") || !strcmp(v->text, "false"))
        return J_BOOL;
    char *end;
    (void)strtoll(v->text, &end, 10);
    if (!*end)
        return J_INT;
    (void)strtod(v->text, &end);
    return *end ? J_WORD : J_NUMBER;
}

static const char *json_kind_name(JsonKind k)
{
    switch (k) {
    case J_NULL:
        return "null";
    case J_BOOL:
        return "a boolean";
    case J_INT:
        return "an integer";
    case J_NUMBER:
        return "a number";
    case J_STRING:
        return "a string";
    case J_WORD:
        return "an unquoted word (not JSON)";
    case J_LIST:
        return "a list";
    case J_OBJECT:
        return "an object";
    }
    return "?";
}

/* Append the key path from at down to want ("layers[3].config.name") to
 * buf[len..cap); false when want is not below at. A node an alias shares is
 * found at its first place. */
static bool path_to(const YNode *at, const YNode *want, char *buf, size_t len, size_t cap, int depth)
{
    if (at == want)
        return true;
    if (at->kind == Y_SCALAR || depth > 256)
        return false;
    for (int i = 0; i < at->n; i++) {
        const YNode *child = at->kind == Y_MAP ? ymap_value(at, i) : at->items[i];
        int w = at->kind == Y_MAP ? snprintf(buf + len, cap - len, ".%s", ymap_key(at, i)->text)
                                  : snprintf(buf + len, cap - len, "[%d]", i);
        size_t end = w < 0 || (size_t)w >= cap - len ? cap - 1 : len + (size_t)w;
        if (path_to(child, want, buf, end, cap, depth + 1))
            return true;
        buf[len] = 0;
    }
    return false;
}

/* "model_config: layers[3].inbound_nodes[0][0][1]", for messages. */
static const char *json_path(const Importer *im, const YNode *v)
{
    char buf[512] = "";
    if (!im->json || !path_to(im->json, v, buf, 0, sizeof buf, 0) || !buf[0])
        return im->json_name;
    return arena_printf(im->a, "%s: %s", im->json_name, buf[0] == '.' ? buf + 1 : buf);
}

static int wrong_kind(const Importer *im, const YNode *v, const char *expected)
{
    return fail(im, "%s: expected %s, got %s", json_path(im, v), expected, json_kind_name(json_kind(v)));
}

/* obj[key] when it is a string. *out is NULL when obj is no object, or
 * key is absent or null; another kind is an error. */
static int opt_string(const Importer *im, const YNode *obj, const char *key, const char **out)
{
    const YNode *v = obj && obj->kind == Y_MAP ? ymap_get(obj, key) : NULL;
    *out = NULL;
    if (!v || json_kind(v) == J_NULL)
        return 0;
    if (json_kind(v) != J_STRING)
        return wrong_kind(im, v, "a string");
    *out = v->text;
    return 0;
}

/* obj[key] when it is a number, as its JSON text; the same contract. */
static int opt_number(const Importer *im, const YNode *obj, const char *key, const char **out)
{
    const YNode *v = obj && obj->kind == Y_MAP ? ymap_get(obj, key) : NULL;
    *out = NULL;
    if (!v || json_kind(v) == J_NULL)
        return 0;
    if (json_kind(v) != J_INT && json_kind(v) != J_NUMBER)
        return wrong_kind(im, v, "a number");
    *out = v->text;
    return 0;
}

static int get_int(const Importer *im, const YNode *v, long *out)
{
    if (json_kind(v) != J_INT)
        return wrong_kind(im, v, "an integer");
    errno = 0;
    *out = strtol(v->text, NULL, 10);
    if (errno)
        return fail(im, "%s: the integer %s is out of range", json_path(im, v), v->text);
    return 0;
}

/* A Keras {"class_name", "config"} object's two parts: *cls NULL when v is
 * no object or names no class; *config NULL when absent or null. */
static int get_class(const Importer *im, const YNode *v, const char **cls, const YNode **config)
{
    *cls = NULL;
    *config = v && v->kind == Y_MAP ? ymap_get(v, "config") : NULL;
    if (*config && json_kind(*config) == J_NULL)
        *config = NULL;
    return opt_string(im, v, "class_name", cls);
}

/* get_class of a value that must be such an object with an object as its
 * config (a layer, an initializer); what: "a layer" for messages. */
static int get_class_object(const Importer *im, const YNode *v, const char *what, const char **cls,
                            const YNode **config)
{
    if (!v || json_kind(v) != J_OBJECT)
        return v ? wrong_kind(im, v, what) : 0;
    if (get_class(im, v, cls, config))
        return -1;
    if (*config && json_kind(*config) != J_OBJECT)
        return wrong_kind(im, *config, "an object");
    return 0;
}

/* A layer's name: its own "name", else its config's. */
static int layer_name(const Importer *im, const YNode *layer, const YNode *cfg, const char **name)
{
    if (opt_string(im, layer, "name", name))
        return -1;
    return *name ? 0 : opt_string(im, cfg, "name", name);
}

/* ---- writing YAML --------------------------------------------------------------- */

/* A scalar as YAML: JSON's numbers and literals as they are, anything else
 * double-quoted, so that no value becomes YAML syntax. */
static void put_scalar(FILE *out, const YNode *v)
{
    if (v->plain && json_kind(v) != J_WORD) {
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

/* Text inside a # comment: a line break would end the comment and make the
 * rest (a name from the file) YAML. */
static void put_comment(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, out);
}

static void put_string(FILE *out, const char *s)
{
    YNode v = {.kind = Y_SCALAR, .text = s, .plain = false};
    put_scalar(out, &v);
}

/* A class name as a YAML key: bare when it is an identifier (GlorotUniform),
 * else quoted, so that a name from the file stays one key. */
static void put_class_key(FILE *out, const char *s)
{
    bool ident = isalpha((unsigned char)*s) || *s == '_';
    for (const char *p = s; *p && ident; p++)
        ident = isalnum((unsigned char)*p) || *p == '_';
    if (ident)
        fputs(s, out);
    else
        put_string(out, s);
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

/* ---- reading the model ------------------------------------------------------------ */

/* A reference to output `tensor` of layer `name`, as nncc writes it. */
static const char *reference(Arena *a, const char *name, long tensor)
{
    return tensor ? arena_printf(a, "%s[%ld]", name, tensor) : name;
}

/* The shape after the batch axis of a batch_input_shape / batch_shape list. */
static int put_batch_shape(const Importer *im, const YNode *shape, const char *layer)
{
    if (!shape || shape->kind != Y_SEQ || shape->n < 2) {
        if (shape && shape->kind != Y_SEQ)
            return wrong_kind(im, shape, "a list [batch, dims...]");
        return fail(im, "layer '%s': its input shape is not a list [batch, dims...]", layer);
    }
    for (int i = 0; i < shape->n; i++)
        if (json_kind(shape->items[i]) != J_INT && json_kind(shape->items[i]) != J_NULL)
            return wrong_kind(im, shape->items[i], "an integer or null");
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
static int put_initializer(const Importer *im, const YNode *v)
{
    FILE *out = im->out;
    const YNode *cfg;
    const char *cls;
    if (v->kind == Y_MAP && get_class_object(im, v, "an initializer object", &cls, &cfg))
        return -1;
    if (v->kind != Y_MAP || !cls) {
        put_value(out, v);
        return 0;
    }
    static const char *const known[] = {"mean", "stddev", "minval", "maxval", "value", "scale", "mode",
                                        "distribution", "gain", NULL};
    fputc('{', out);
    put_class_key(out, cls);
    fputs(": {", out);
    int n = 0;
    for (int i = 0; cfg && i < cfg->n; i++)
        for (int k = 0; known[k]; k++)
            if (!strcmp(ymap_key(cfg, i)->text, known[k]) && !yscalar_is_null(ymap_value(cfg, i))) {
                fprintf(out, "%s%s: ", n++ ? ", " : "", known[k]);
                put_value(out, ymap_value(cfg, i));
            }
    fputs("}}", out);
    return 0;
}

/* Keras regularizer {"class_name": "L1L2", "config": {"l1": 0, "l2": 0.01}} as {l1_l2: {l1:, l2:}}. */
static int put_regularizer(const Importer *im, const YNode *v)
{
    const YNode *cfg;
    const char *cls, *l1, *l2;
    if (v->kind == Y_MAP && get_class_object(im, v, "a regularizer object", &cls, &cfg))
        return -1;
    if (v->kind != Y_MAP || !cls) {
        put_value(im->out, v);
        return 0;
    }
    if (opt_number(im, cfg, "l1", &l1) || opt_number(im, cfg, "l2", &l2))
        return -1;
    fprintf(im->out, "{l1_l2: {l1: %s, l2: %s}}", l1 ? l1 : "0", l2 ? l2 : "0");
    return 0;
}

static int put_constraint(const Importer *im, const YNode *v)
{
    FILE *out = im->out;
    const YNode *cfg;
    const char *cls;
    if (v->kind == Y_MAP && get_class_object(im, v, "a constraint object", &cls, &cfg))
        return -1;
    if (v->kind != Y_MAP || !cls) {
        put_value(out, v);
        return 0;
    }
    static const char *const known[] = {"max_value", "min_value", "rate", "axis", NULL};
    fputc('{', out);
    put_class_key(out, cls);
    fputs(": {", out);
    int n = 0;
    for (int i = 0; cfg && i < cfg->n; i++)
        for (int k = 0; known[k]; k++)
            if (!strcmp(ymap_key(cfg, i)->text, known[k])) {
                fprintf(out, "%s%s: ", n++ ? ", " : "", known[k]);
                put_value(out, ymap_value(cfg, i));
            }
    fputs("}}", out);
    return 0;
}

/* A Keras activation: a name, or a Keras 3 serialized object
 * {"class_name", "config": {"name": ...}}; *name NULL when it is neither. */
static int activation_name(const Importer *im, const YNode *v, const char **name)
{
    const YNode *cfg;
    const char *cls;
    *name = NULL;
    if (json_kind(v) == J_STRING) {
        *name = v->text;
        return 0;
    }
    if (json_kind(v) != J_OBJECT)
        return wrong_kind(im, v, "an activation name");
    if (get_class_object(im, v, "an activation", &cls, &cfg))
        return -1;
    return cls ? opt_string(im, cfg, "name", name) : 0;
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
static int put_args(const Importer *im, const LayerClass *cls, const YNode *cfg, const char *name)
{
    FILE *out = im->out;
    for (int i = 0; cfg && cfg->kind == Y_MAP && i < cfg->n; i++) {
        const char *key = ymap_key(cfg, i)->text;
        const YNode *v = ymap_value(cfg, i);
        const ArgSpec *spec = NULL;
        for (const ArgSpec *s = cls->args; s && s->name; s++)
            if (!strcmp(s->name, key))
                spec = s;
        /* booleans: JSON's, or Keras 1's 0 and 1 */
        bool is_bool = json_kind(v) == J_BOOL || (json_kind(v) == J_INT && (!strcmp(v->text, "0") || !strcmp(v->text, "1")));
        bool truth = is_bool && (!strcmp(v->text, "true") || !strcmp(v->text, "1"));
        if (!strcmp(key, "trainable")) {
            if (!is_bool && json_kind(v) != J_NULL)
                return wrong_kind(im, v, "true or false");
            if (is_bool && !truth)
                fputs(", trainable: false", out);
            continue;
        }
        if (!spec || yscalar_is_null(v))  /* null: the default (no regularizer, no constraint) */
            continue;
        if (spec->type == ARG_NODE)
            continue;  /* TimeDistributed's layer: written by the caller */
        fprintf(out, ", %s: ", key);
        const char *act;
        switch (spec->type) {
        case ARG_BOOL:
            if (!is_bool)
                return wrong_kind(im, v, "true or false");
            fputs(truth ? "true" : "false", out);
            break;
        case ARG_INITIALIZER:
            if (put_initializer(im, v))
                return -1;
            break;
        case ARG_REGULARIZER:
            if (put_regularizer(im, v))
                return -1;
            break;
        case ARG_CONSTRAINT:
            if (put_constraint(im, v))
                return -1;
            break;
        case ARG_ACTIVATION:
            if (activation_name(im, v, &act))
                return -1;
            if (!act)
                return fail(im, "layer '%s': an activation nncc cannot read", name);
            if (!strcmp(act, "hard_sigmoid") && im->keras_major >= 3) {
                fail(im, "layer '%s': Keras 3's hard_sigmoid is relu6(x + 3) / 6, not Keras 2's clip(0.2 x + 0.5), "
                         "which nncc implements", name);
                return -1;
            }
            put_string(out, act);
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

/* Keras class names nncc spells as another class, with a fixed argument:
 * *ours is that class, or NULL when nncc has no equivalent. */
static int alias_class(const Importer *im, const char *keras, const YNode *cfg, const char **ours, const char **extra)
{
    *extra = NULL;
    *ours = keras;
    if (!strcmp(keras, "ReLU")) {
        const char *mv, *ns, *th;
        if (opt_number(im, cfg, "max_value", &mv) || opt_number(im, cfg, "negative_slope", &ns) ||
            opt_number(im, cfg, "threshold", &th))
            return -1;
        if (mv || (ns && atof(ns) != 0) || (th && atof(th) != 0)) {
            *ours = NULL;
            return 0;
        }
        *extra = "activation: relu";
        *ours = "Activation";
    } else if (!strcmp(keras, "Softmax")) {
        *extra = "activation: softmax";
        *ours = "Activation";
    } else if (!strcmp(keras, "LeakyReLU")) {
        const char *alpha, *slope;
        if (opt_number(im, cfg, "alpha", &alpha) || opt_number(im, cfg, "negative_slope", &slope))
            return -1;
        alpha = alpha ? alpha : slope;
        *extra = arena_printf(im->a, "activation: {leaky_relu: {alpha: %s}}", alpha ? alpha : "0.3");
        *ours = "Activation";
    } else if (!strcmp(keras, "InputLayer")) {
        *ours = NULL;
    }
    return 0;
}

/* One layer of the list: `  - Class: {name: .., inputs: .., args}`. inputs: the references it reads. */
static int put_layer(const Importer *im, const YNode *layer, const char *name, const char *const *inputs, int nin)
{
    const YNode *cfg;
    const char *keras, *extra, *ours;
    if (get_class_object(im, layer, "a layer object", &keras, &cfg))
        return -1;
    if (!keras)
        return fail(im, "%s: layer '%s' has no class_name", json_path(im, layer), name);
    if (!strcmp(keras, "Lambda")) {
        fail(im, "layer '%s' is a Lambda layer: it holds Python code, which nncc cannot compile", name);
        hint("rewrite it as Keras layers, or as a custom: function of the YAML model (docs/model-format.md)");
        return -1;
    }
    if (alias_class(im, keras, cfg, &ours, &extra))
        return -1;
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
    if (put_args(im, cls, cfg, name))
        return -1;
    /* standalone Keras 2 (not tf.keras) GRUs default to reset_after false */
    if (!strcmp(cls->name, "GRU") && !ymap_get(cfg, "reset_after") && im->keras_major == 2 &&
        !strstr(im->keras_version, "tf"))
        fputs(", reset_after: false", im->out);
    if (!strcmp(cls->name, "TimeDistributed")) {
        const YNode *inner = ymap_get(cfg, "layer"), *icfg;
        const char *icls;
        if (get_class_object(im, inner, "a layer object", &icls, &icfg))
            return -1;
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
        int bad = put_args(&inner_im, ic, icfg, name);
        fclose(mem);
        if (bad) {
            free(buf);
            return -1;
        }
        fputs(len > 2 ? buf + 2 : "", im->out);
        free(buf);
        fputs("}}", im->out);
    }
    fputs("}\n", im->out);
    return 0;
}

/* ---- the model --------------------------------------------------------------------- */

/* A tensor as Keras names it, [layer, node_index, tensor_index, ...]: in
 * inbound_nodes, keras_history, input_layers and output_layers. */
static int layer_tensor(const Importer *im, const YNode *t, const char **layer, long *node, long *tensor)
{
    if (json_kind(t) != J_LIST)
        return wrong_kind(im, t, "a list [layer, node_index, tensor_index]");
    if (t->n < 3)
        return fail(im, "%s: expected a list [layer, node_index, tensor_index], got %d item%s", json_path(im, t),
                    t->n, t->n == 1 ? "" : "s");
    if (json_kind(t->items[0]) != J_STRING)
        return wrong_kind(im, t->items[0], "a layer name");
    *layer = t->items[0]->text;
    return get_int(im, t->items[1], node) || get_int(im, t->items[2], tensor) ? -1 : 0;
}

/* Keras 2 inbound node [name, node_index, tensor_index, kwargs], or a
 * Keras 3 __keras_tensor__: its layer and tensor. */
static int tensor_ref(const Importer *im, const YNode *t, const char *layer, const char **out)
{
    const YNode *hist = t;
    if (json_kind(t) == J_OBJECT) {
        const YNode *cfg;
        const char *cls;
        if (get_class_object(im, t, "a tensor", &cls, &cfg))
            return -1;
        if (!cls || strcmp(cls, "__keras_tensor__") || !cfg || !(hist = ymap_get(cfg, "keras_history")))
            return fail(im, "%s: layer '%s': an input in inbound_nodes that nncc cannot read", json_path(im, t), layer);
    }
    const char *source;
    long node, tensor;
    if (layer_tensor(im, hist, &source, &node, &tensor))
        return -1;
    if (node != 0)
        return fail(im, "layer '%s' reads '%s' from its call number %ld: shared layers (called more than once) are "
                        "not supported", layer, source, node);
    if (tensor < 0)
        return fail(im, "%s: a tensor index must not be negative", json_path(im, hist->items[2]));
    *out = reference(im->a, source, tensor);
    return 0;
}

/* refs[*n++] = the tensor t, at most 16 of them. */
static int add_ref(const Importer *im, const YNode *t, const char *layer, const char **refs, int *n)
{
    if (*n == 16)
        return fail(im, "layer '%s' has more than 16 inputs, nncc's limit", layer);
    return tensor_ref(im, t, layer, &refs[(*n)++]);
}

/* The references a functional layer reads, from its one inbound node. */
static int inbound(const Importer *im, const YNode *nodes, const char *layer, const char **refs, int *n)
{
    *n = 0;
    if (!nodes || json_kind(nodes) == J_NULL)
        return 0;
    if (json_kind(nodes) != J_LIST)
        return wrong_kind(im, nodes, "a list of inbound nodes");
    if (nodes->n == 0)
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
            return fail(im, "%s: layer '%s': inbound_nodes without args", json_path(im, node), layer);
        const YNode *first = args->items[0];
        const YNode *const *list = first->kind == Y_SEQ ? (const YNode *const *)first->items : &first;
        int count = first->kind == Y_SEQ ? first->n : 1;
        for (int i = 0; i < count; i++)
            if (add_ref(im, list[i], layer, refs, n))
                return -1;
        return 0;
    }
    if (node->kind != Y_SEQ)
        return wrong_kind(im, node, "an inbound node (a list of tensors, or Keras 3's {args, kwargs})");
    for (int i = 0; i < node->n; i++) {  /* Keras 2: [[name, node, tensor, kwargs], ...] */
        const YNode *t = node->items[i];
        if (t->kind == Y_SEQ && t->n >= 4 && t->items[3]->kind == Y_MAP && ymap_get(t->items[3], "initial_state"))
            return fail(im, "layer '%s' is called with initial_state: not supported in imported models", layer);
        if (add_ref(im, t, layer, refs, n))
            return -1;
    }
    return 0;
}

/* A C identifier from the Keras model name ("sequential_1" stays). */
static const char *model_name(Arena *a, const char *name)
{
    char *s = arena_strdup(a, name && *name ? name : "model");
    if (strlen(s) > C_NAME_MAX - 6)
        s[C_NAME_MAX - 6] = 0;  /* an identifier's length, with room for keras_ */
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

/* A list the model's config must hold under key. */
static int need_list(const Importer *im, const YNode *config, const char *key, const YNode **out)
{
    *out = ymap_get(config, key);
    if (!*out)
        return fail(im, "model_config: the model has no '%s'", key);
    return json_kind(*out) == J_LIST ? 0 : wrong_kind(im, *out, "a list");
}

/* Sequential: a bare list (Keras <= 2.1) or {name, layers}. */
static int put_sequential(Importer *im, const YNode *config)
{
    const YNode *layers = config;
    const char *model, *cls0, *name0;
    const YNode *cfg0;
    if (json_kind(config) != J_LIST && json_kind(config) != J_OBJECT)
        return wrong_kind(im, config, "an object or a list of layers");
    if (config->kind == Y_MAP && (need_list(im, config, "layers", &layers) || opt_string(im, config, "name", &model)))
        return -1;
    if (layers->n == 0)
        return fail(im, "model_config: a Sequential model without layers");
    fprintf(im->out, "name: %s\ninputs:\n", model_name(im->a, config->kind == Y_MAP ? model : NULL));
    if (get_class_object(im, layers->items[0], "a layer object", &cls0, &cfg0) || opt_string(im, cfg0, "name", &name0))
        return -1;
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
        const char *cls, *name;
        if (get_class_object(im, layers->items[i], "a layer object", &cls, &cfg) || opt_string(im, cfg, "name", &name))
            return -1;
        if (!name)
            return fail(im, "%s: the layer has no name", json_path(im, layers->items[i]));
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
    const YNode *layers, *ins, *outs;
    const char *model;
    if (json_kind(config) != J_OBJECT)
        return wrong_kind(im, config, "an object");
    if (need_list(im, config, "layers", &layers) || need_list(im, config, "input_layers", &ins) ||
        need_list(im, config, "output_layers", &outs) || opt_string(im, config, "name", &model))
        return -1;
    fprintf(im->out, "name: %s\ninputs:\n", model_name(im->a, model));
    /* a single input or output may be written as one [name, 0, 0] instead of a list of them */
    const YNode *const *in_list = (const YNode *const *)ins->items;
    int nins = ins->n;
    if (nins && ins->items[0]->kind == Y_SCALAR)
        in_list = &ins, nins = 1;
    for (int i = 0; i < nins; i++) {
        const char *want, *name;
        long node, tensor;
        if (layer_tensor(im, in_list[i], &want, &node, &tensor))
            return -1;
        const YNode *shape = NULL;
        for (int j = 0; j < layers->n; j++) {
            const YNode *cfg;
            const char *cls;
            if (get_class_object(im, layers->items[j], "a layer object", &cls, &cfg) ||
                layer_name(im, layers->items[j], cfg, &name))
                return -1;
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
        const char *cls, *name;
        if (get_class_object(im, layers->items[i], "a layer object", &cls, &cfg) ||
            layer_name(im, layers->items[i], cfg, &name))
            return -1;
        if (!name)
            return fail(im, "%s: the layer has no name", json_path(im, layers->items[i]));
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
        const char *layer;
        long node, tensor;
        if (layer_tensor(im, out_list[i], &layer, &node, &tensor))
            return -1;
        if (tensor < 0)
            return fail(im, "%s: a tensor index must not be negative", json_path(im, out_list[i]->items[2]));
        fputs(i ? ", " : "", im->out);
        const char *ref = reference(im->a, layer, tensor);
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

/* A loss or metric entry: a name, or a Keras 3 {"class_name", "config":
 * {"name": ...}} object; NULL when it is neither. training_config never
 * blocks inference, so an entry of another kind is not an error: like a
 * custom loss, it leaves the compile section out and the YAML says why. */
static const char *loss_name(const YNode *v)
{
    if (!v || json_kind(v) == J_STRING)
        return v ? v->text : NULL;
    if (json_kind(v) != J_OBJECT)
        return NULL;
    const YNode *cls = ymap_get(v, "class_name"), *cfg = ymap_get(v, "config");
    const YNode *name = cfg && cfg->kind == Y_MAP ? ymap_get(cfg, "name") : NULL;
    if (name && json_kind(name) == J_STRING)
        return name->text;
    return cls && json_kind(cls) == J_STRING ? cls->text : NULL;
}

/* Why the loss entry v keeps training_config out, or NULL when it is nncc's. */
static const char *loss_unknown(const Importer *im, const YNode *v)
{
    const char *name = loss_name(v);
    if (!name)
        return v ? arena_printf(im->a, "its loss at %s is %s, not a loss name", json_path(im, v),
                                json_kind_name(json_kind(v)))
                 : "it has no loss";
    return known_loss(name) ? NULL : arena_printf(im->a, "its loss '%s' is custom", name);
}

static int put_compile(Importer *im, const char *json)
{
    FILE *out = im->out;
    if (!json)
        return 0;
    YNode *tc = yaml_load_string(im->a, arena_printf(im->a, "%s: training_config", im->path), json);
    if (!tc)
        return -1;
    im->json = tc;
    im->json_name = "training_config";
    if (json_kind(tc) != J_OBJECT) {
        fprintf(out, "# training_config is left out: it is %s, not an object\n", json_kind_name(json_kind(tc)));
        return 0;
    }
    const char *why = NULL;
    const YNode *loss = ymap_get(tc, "loss"), *opt = ymap_get(tc, "optimizer_config");
    const YNode *ocfg = opt && opt->kind == Y_MAP ? ymap_get(opt, "config") : NULL;
    const YNode *oclass = opt && opt->kind == Y_MAP ? ymap_get(opt, "class_name") : NULL;
    const char *ocls = oclass && json_kind(oclass) == J_STRING ? oclass->text : NULL;
    if (ocls && !strncmp(ocls, "Custom>", 7))
        ocls += 7;
    bool opt_ok = false;
    for (int i = 0; ocls && i < OPT_COUNT; i++)
        opt_ok |= !strcasecmp(optimizer_info[i].name, ocls);
    if (!opt_ok)
        why = ocls ? arena_printf(im->a, "its optimizer %s is not one of nncc's", ocls) : "it names no optimizer";
    if (!why && loss && loss->kind == Y_MAP && !ymap_get(loss, "class_name")) {
        for (int i = 0; i < loss->n && !why; i++)
            why = loss_unknown(im, ymap_value(loss, i));
    } else if (!why && loss && loss->kind == Y_SEQ) {  /* one per output, in output order */
        if (loss->n != im->noutputs)
            why = arena_printf(im->a, "it lists %d losses for %d outputs", loss->n, im->noutputs);
        for (int i = 0; i < loss->n && !why; i++)
            why = loss_unknown(im, loss->items[i]);
    } else if (!why) {
        why = loss_unknown(im, loss);
    }
    if (why) {
        fputs("# training_config is left out: ", out);
        put_comment(out, why);
        fputs(" (nncc compiles the model for inference)\n", out);
        return 0;
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
        if (json_kind(v) != J_INT && json_kind(v) != J_NUMBER && json_kind(v) != J_BOOL)
            continue;  /* null, or a schedule object nncc does not read: the default */
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
    return 0;
}

/* ---- the entry point ------------------------------------------------------------------ */

/* What the importer reads with libhdf5: the root's string attributes. */
enum { ROOT_READ, ROOT_UNOPENED, ROOT_ATTRIBUTE_ERROR };
typedef struct {
    int status;                  /* ROOT_* */
    const char *config, *version, *training;  /* the attributes; NULL when absent */
    const char *error;           /* ROOT_ATTRIBUTE_ERROR: string_attr's message */
    int weights_only;            /* no model_config, but layer_names: a save_weights file */
} RootAttrs;

/* What the child needs: the file, and its size for string_attr's bound. */
typedef struct {
    const char *path;
    size_t file_size;
} RootFile;

static void read_root_attrs(Arena *a, const RootFile *f, RootAttrs *r)
{
    NnrtH5Quiet quiet;
    nnrt_h5_quiet(&quiet);
    char msg[1024] = "";
    Importer im = {.a = a, .path = f->path, .file_size = f->file_size, .captured = msg, .captured_size = sizeof msg};
    *r = (RootAttrs){ROOT_READ, NULL, NULL, NULL, NULL, 0};
    hid_t file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        r->status = ROOT_UNOPENED;
        goto done;
    }
    if (string_attr(&im, file, "model_config", &r->config))
        goto failed;
    if (!r->config) {
        r->weights_only = H5Aexists(file, "layer_names") > 0;
        goto done;
    }
    if (string_attr(&im, file, "keras_version", &r->version) || string_attr(&im, file, "training_config", &r->training))
        goto failed;
    goto done;
failed:
    r->status = ROOT_ATTRIBUTE_ERROR;
    r->error = arena_strdup(a, msg);
done:
    if (file >= 0)
        H5Fclose(file);
    nnrt_h5_restore(&quiet);
}

/* The child's side of read_root_attrs_isolated: status, weights_only, then
 * each string as a presence byte, a length and its bytes. */
static int put_root_attrs(void *ctx, FILE *out)
{
    Arena a = {0};
    RootAttrs r;
    read_root_attrs(&a, ctx, &r);
    int32_t head[2] = {r.status, r.weights_only};
    if (fwrite(head, sizeof head, 1, out) != 1)
        return -1;
    const char *strings[4] = {r.config, r.version, r.training, r.error};
    for (int i = 0; i < 4; i++) {
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
static int read_root_attrs_isolated(Arena *a, const RootFile *f, RootAttrs *r)
{
    char *buf = NULL, err[1024];
    size_t len = 0;
    if (nnrt_h5_isolated(f->path, put_root_attrs, (void *)f, 0, &buf, &len, err, sizeof err) < 0) {
        error_plain("%s", err);
        return -1;
    }
    NnrtWire w = {buf, len, 0};
    int32_t head[2];
    int ok = nnrt_wire_take(&w, head, sizeof head) == 0;
    const char **strings[4] = {&r->config, &r->version, &r->training, &r->error};
    for (int i = 0; ok && i < 4; i++) {
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
        return error_plain("%s: the process reading it sent a short answer", f->path);
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
    Importer im = {.a = a, .path = path, .keras_major = 2, .keras_version = "", .json_name = "model_config"};
    *yaml = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(&im, "cannot open: %s", strerror(errno));
    unsigned char sig[8] = {0};
    size_t got = fread(sig, 1, sizeof sig, f);
    long end = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    fclose(f);
    im.file_size = end > 0 ? (size_t)end : 0;
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
    RootFile rf = {path, im.file_size};
    if (read_root_attrs_isolated(a, &rf, &root) < 0)
        return -1;
    const char *config = root.config, *training = root.training;
    if (root.status == ROOT_UNOPENED) {
        fail(&im, "HDF5 cannot open it: the file is damaged or truncated");
        goto done;
    }
    if (root.status == ROOT_ATTRIBUTE_ERROR) {
        error_plain("%s", root.error);
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
        im.json = mc;
        const YNode *cfg;
        const char *cls;
        if (json_kind(mc) != J_OBJECT) {
            fail(&im, "model_config is %s, not a Keras {class_name, config} object", json_kind_name(json_kind(mc)));
            goto done;
        }
        if (get_class(&im, mc, &cls, &cfg))
            goto done;
        if (!cls || !cfg) {
            fail(&im, "model_config is not a Keras {class_name, config} object: it has no %s",
                 cls ? "config" : "class_name");
            goto done;
        }
        char *buf = NULL;
        size_t len = 0;
        im.out = open_memstream(&buf, &len);
        fputs("# ", im.out);
        put_comment(im.out, arena_printf(a, "%s: converted by nncc from Keras %s's model_config", path,
                                         im.keras_version));
        fputc('\n', im.out);
        int r = !strcmp(cls, "Sequential")                         ? put_sequential(&im, cfg)
              : !strcmp(cls, "Functional") || !strcmp(cls, "Model") ? put_functional(&im, cfg)
                                                                    : fail(&im, "model_config: a %s, not a Sequential "
                                                                                "or functional model", cls);
        if (r == 0)
            r = put_compile(&im, training);
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
