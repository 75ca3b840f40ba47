/* keras_json.c — a model as Keras's model_config JSON, for the .h5 files
 * the generated P_save writes.
 *
 * tf.keras 2.x's model.save writes the architecture beside the weights as
 * the root attribute model_config: {"class_name": "Functional", "config":
 * {name, layers, input_layers, output_layers}}, each layer {"class_name",
 * "config", "name", "inbound_nodes": [[[source, 0, tensor, {}], ...]]}, an
 * InputLayer per input. nncc's layer arguments are Keras's names with
 * Keras's defaults, so each layer's config is every argument of its class
 * with its value, written back in Keras's forms: windows as lists of one
 * entry per axis, initializers, regularizers and constraints as
 * {"class_name", "config"} objects. Such a file loads in nncc (`nncc
 * model.h5`) as the same model, and its layout is what Keras writes.
 *
 * What Keras's JSON cannot say without the user's Python code — user
 * blocks (subclassed layers), custom functions, C hooks, initial_state —
 * makes keras_model_config return NULL: P_save then writes the weights in
 * Keras layout without an architecture, as model.save_weights does.
 */
#define _POSIX_C_SOURCE 200809L
#include "compiler.h"
#include "nnrt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "glorot_uniform" -> "GlorotUniform", "l1_l2" -> "L1L2" */
static void put_camel(FILE *out, const char *snake)
{
    bool up = true;
    for (const char *p = snake; *p; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        fputc(up && *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, out);
        up = false;
    }
}

static void put_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void put_number(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.9g", v);
    else
        fputs("null", out);
}

static void put_initializer(FILE *out, const InitSpec *init)
{
    fputs("{\"class_name\": ", out);
    fputc('"', out);
    put_camel(out, init->name);
    fputs("\", \"config\": {", out);
    switch (init->kind) {
    case NNRT_INIT_CONSTANT:
        if (!strcmp(init->name, "constant")) {
            fputs("\"value\": ", out);
            put_number(out, init->a);
        }
        break;
    case NNRT_INIT_RANDOM_NORMAL:
    case NNRT_INIT_TRUNCATED_NORMAL:
        fputs("\"mean\": ", out);
        put_number(out, init->a);
        fputs(", \"stddev\": ", out);
        put_number(out, init->b);
        fputs(", \"seed\": null", out);
        break;
    case NNRT_INIT_RANDOM_UNIFORM:
        fputs("\"minval\": ", out);
        put_number(out, init->a);
        fputs(", \"maxval\": ", out);
        put_number(out, init->b);
        fputs(", \"seed\": null", out);
        break;
    case NNRT_INIT_ORTHOGONAL:
        fputs("\"gain\": ", out);
        put_number(out, init->a);
        fputs(", \"seed\": null", out);
        break;
    case NNRT_INIT_VARIANCE_SCALING:
        if (!strcmp(init->name, "variance_scaling")) {
            static const char *const modes[] = {"fan_in", "fan_out", "fan_avg"};
            static const char *const dists[] = {"truncated_normal", "untruncated_normal", "uniform"};
            fputs("\"scale\": ", out);
            put_number(out, init->a);
            fprintf(out, ", \"mode\": \"%s\", \"distribution\": \"%s\", ", modes[init->mode % 3],
                    dists[init->distribution % 3]);
        }
        fputs("\"seed\": null", out);
        break;
    }
    fputs("}}", out);
}

/* One argument's value in Keras's form; nd: the layer's window rank (1 or 2, 0 for none). */
static void put_arg(FILE *out, const ArgValue *v, int nd)
{
    switch (v->spec->type) {
    case ARG_INT:
        fprintf(out, "%ld", v->i);
        return;
    case ARG_FLOAT:
        put_number(out, v->f);
        return;
    case ARG_BOOL:
        fputs(v->b ? "true" : "false", out);
        return;
    case ARG_STRING:
        if (v->s)
            put_json_string(out, v->s);
        else
            fputs("null", out);
        return;
    case ARG_SHAPE:
        if (v->shape.rank == 0) {
            fputs("null", out);
            return;
        }
        fputc('[', out);
        for (int i = 0, n = v->shape.rank == 1 && nd > 1 ? nd : v->shape.rank; i < n; i++)
            fprintf(out, "%s%lld", i ? ", " : "", (long long)v->shape.dim[v->shape.rank == 1 ? 0 : i]);
        fputc(']', out);
        return;
    case ARG_ACTIVATION:
        put_json_string(out, act_info[v->act.kind].name);
        return;
    case ARG_INITIALIZER:
        put_initializer(out, &v->init);
        return;
    case ARG_REGULARIZER:
        if (!v->reg.l1 && !v->reg.l2)
            fputs("null", out);
        else
            fprintf(out, "{\"class_name\": \"L1L2\", \"config\": {\"l1\": %.9g, \"l2\": %.9g}}", v->reg.l1, v->reg.l2);
        return;
    case ARG_CONSTRAINT:
        if (!v->con.name[0]) {
            fputs("null", out);
            return;
        }
        fputs("{\"class_name\": \"", out);
        put_camel(out, v->con.name);
        fputs("\", \"config\": {", out);
        if (!strcmp(v->con.name, "max_norm"))
            fprintf(out, "\"max_value\": %.9g, \"axis\": %d", v->con.b, v->con.axis);
        else if (!strcmp(v->con.name, "unit_norm"))
            fprintf(out, "\"axis\": %d", v->con.axis);
        else if (!strcmp(v->con.name, "min_max_norm"))
            fprintf(out, "\"min_value\": %.9g, \"max_value\": %.9g, \"rate\": %.9g, \"axis\": %d", v->con.a, v->con.b,
                    v->con.rate, v->con.axis);
        fputs("}}", out);
        return;
    case ARG_NODE:
        fputs("null", out);
        return;
    }
}

/* Whether Keras's JSON can say what the argument holds. */
static bool plain_arg(const ArgValue *v)
{
    switch (v->spec->type) {
    case ARG_ACTIVATION:
        return v->act.kind != ACT_CUSTOM && v->act.kind != ACT_LEAKY_RELU;
    case ARG_INITIALIZER:
        return !v->init.custom;
    case ARG_REGULARIZER:
        return !v->reg.custom;
    case ARG_CONSTRAINT:
        return !v->con.custom;
    case ARG_INT:
    case ARG_FLOAT:
    case ARG_BOOL:
    case ARG_STRING:
    case ARG_SHAPE:
    case ARG_NODE:
        return true;
    }
    return true;
}

/* name[0][k] (the summary's inbound form) as [name, 0, k, {}] */
static void put_inbound(FILE *out, const char *ref)
{
    const char *br = strchr(ref, '[');
    size_t len = br ? (size_t)(br - ref) : strlen(ref);
    long tensor = 0;
    if (br) {
        const char *last = strrchr(ref, '[');
        tensor = atol(last + 1);
    }
    fprintf(out, "[\"%.*s\", 0, %ld, {}]", (int)len, ref, tensor);
}

static bool put_layer_config(FILE *out, const Layer *l, const LayerClass *cls)
{
    int nd = strstr(cls->name, "2D") ? 2 : strstr(cls->name, "1D") ? 1 : 0;
    fputs("{\"name\": ", out);
    put_json_string(out, l->name);
    fprintf(out, ", \"trainable\": %s, \"dtype\": \"float32\"", l->trainable ? "true" : "false");
    for (int i = 0; cls->args && cls->args[i].name; i++) {
        const ArgValue *v = &l->args[i];
        if (!plain_arg(v))
            return false;
        if (v->spec->type == ARG_NODE)
            continue;
        fprintf(out, ", \"%s\": ", cls->args[i].name);
        put_arg(out, v, nd);
    }
    return true;
}

const char *keras_model_config(Arena *a, const Model *m)
{
    if (m->ncustoms)
        return NULL;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i]->block_class || m->layers[i]->nstates || !m->layers[i]->inbound)
            return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    bool ok = true;
    fputs("{\"class_name\": \"Functional\", \"config\": {\"name\": ", out);
    put_json_string(out, m->name);
    fputs(", \"layers\": [", out);
    for (int i = 0; i < m->ninputs; i++) {
        const ModelInput *in = &m->inputs[i];
        fputs(i ? ", " : "", out);
        fputs("{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null", out);
        for (int d = 0; d < in->shape.rank; d++)
            d == 0 && in->vtime ? fputs(", null", out) : fprintf(out, ", %lld", (long long)in->shape.dim[d]);
        fputs("], \"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": ", out);
        put_json_string(out, in->name);
        fputs("}, \"name\": ", out);
        put_json_string(out, in->name);
        fputs(", \"inbound_nodes\": []}", out);
    }
    for (int i = 0; i < m->nlayers && ok; i++) {
        const Layer *l = m->layers[i];
        const LayerClass *cls = l->cls;
        fputs(", {\"class_name\": ", out);
        put_json_string(out, cls->name);
        fputs(", \"config\": ", out);
        if (!strcmp(cls->name, "TimeDistributed")) {
            Layer inner = {0};
            const ArgValue *v = layer_arg(l, "layer");
            Model scratch = *m;
            if (parse_layer(a, &scratch, v->node, &inner) || inner.block_class) {
                ok = false;
                break;
            }
            inner.name = l->name;
            inner.trainable = l->trainable;
            fputs("{\"name\": ", out);
            put_json_string(out, l->name);
            fprintf(out, ", \"trainable\": %s, \"dtype\": \"float32\", \"layer\": {\"class_name\": ",
                    l->trainable ? "true" : "false");
            put_json_string(out, inner.cls->name);
            fputs(", \"config\": ", out);
            ok = put_layer_config(out, &inner, inner.cls);
            fputs("}}}", out);
        } else {
            ok = put_layer_config(out, l, cls);
            fputc('}', out);
        }
        fputs(", \"name\": ", out);
        put_json_string(out, l->name);
        fputs(", \"inbound_nodes\": [[", out);
        for (int k = 0; k < l->ninbound; k++) {
            fputs(k ? ", " : "", out);
            put_inbound(out, l->inbound[k]);
        }
        fputs("]]}", out);
    }
    fputs("], \"input_layers\": [", out);
    for (int i = 0; i < m->ninputs; i++)
        fprintf(out, "%s[\"%s\", 0, 0]", i ? ", " : "", m->inputs[i].name);
    fputs("], \"output_layers\": [", out);
    for (int i = 0; i < m->noutputs; i++) {  /* [name, 0, tensor] */
        const char *br = strchr(m->outputs[i], '[');
        fprintf(out, "%s[\"%.*s\", 0, %ld]", i ? ", " : "", br ? (int)(br - m->outputs[i]) : (int)strlen(m->outputs[i]),
                m->outputs[i], br ? atol(br + 1) : 0L);
    }
    fputs("]}, \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}", out);
    fclose(out);
    const char *json = ok ? arena_strdup(a, buf) : NULL;
    free(buf);
    return json;
}
