/* summary.c — `nncc summary`: Keras's model.summary() table.
 *
 * Reproduces tf.keras 2.x's layout: line length 65 with columns at 29/55/65
 * for sequential models; 98 with a "Connected to" column and InputLayer
 * rows for functional ones (several inputs, or any layer naming its
 * inputs). Output shapes print the batch axis as None; parameter counts
 * come from the weight set the lowering built, so they are the numbers the
 * generated code allocates.
 */
#include "compiler.h"

#include <string.h>

static void row(FILE *out, const char *const *fields, int nfields, const int *pos)
{
    char line[512] = "";
    for (int i = 0; i < nfields; i++) {
        size_t len = strlen(line);
        if (i > 0 && len > 0)
            line[len - 1] = ' ';
        strncat(line, fields[i], sizeof line - strlen(line) - 1);
        if ((int)strlen(line) > pos[i])
            line[pos[i]] = 0;
        while ((int)strlen(line) < pos[i])
            strcat(line, " ");
    }
    fprintf(out, "%s\n", line);
}

static void rule(FILE *out, char c, int n)
{
    for (int i = 0; i < n; i++)
        fputc(c, out);
    fputc('\n', out);
}

static const char *shape_none(char *buf, size_t cap, const Shape *s, bool vtime)
{
    size_t n = (size_t)snprintf(buf, cap, "(None");
    for (int i = 0; i < s->rank && n < cap; i++) {
        if (i == 0 && vtime)
            n += (size_t)snprintf(buf + n, cap - n, ", None");
        else
            n += (size_t)snprintf(buf + n, cap - n, ", %lld", (long long)s->dim[i]);
    }
    snprintf(buf + n, cap - n, ")");
    return buf;
}

static void thousands(char *buf, size_t cap, long long v)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", v);
    int len = (int)strlen(digits), o = 0;
    for (int i = 0; i < len && o < (int)cap - 2; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

void print_summary(FILE *out, const Model *m, const Program *p)
{
    bool functional = m->ninputs > 1;
    for (int i = 0; i < m->nlayers; i++)  /* a block's insides do not make the model functional */
        functional |= m->layers[i]->ninputs > 0 && !m->layers[i]->block_class;
    int width = functional ? 98 : 65;
    int pos_seq[] = {29, 55, 65}, pos_fun[] = {32, 54, 66, 98};
    const int *pos = functional ? pos_fun : pos_seq;
    int nf = functional ? 4 : 3;
    fprintf(out, "Model: \"%s\"\n", m->name);
    rule(out, '_', width);
    const char *head_seq[] = {" Layer (type)", "Output Shape", "Param #"};
    const char *head_fun[] = {" Layer (type)", "Output Shape", "Param #", "Connected to"};
    row(out, functional ? head_fun : head_seq, nf, pos);
    rule(out, '=', width);
    char name[256], shape[256], params_text[64], conn[256];
    if (functional)
        for (int i = 0; i < m->ninputs; i++) {
            char sh[256];
            Shape s = m->inputs[i].shape;
            snprintf(name, sizeof name, " %s (InputLayer)", m->inputs[i].name);
            snprintf(shape, sizeof shape, "[%s]", shape_none(sh, sizeof sh, &s, m->inputs[i].vtime));
            const char *f[] = {name, shape, "0", "[]"};
            row(out, f, nf, pos);
            row(out, (const char *[]){"", "", "", ""}, nf, pos);
        }
    long long total = 0, trainable = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        /* a block instance is one row: its group, its class, its last layer's shape */
        long long params = l->params, trainable_params = l->trainable_params;
        int last = i;
        while (l->block_class && last + 1 < m->nlayers && !strcmp(m->layers[last + 1]->group, l->group)) {
            last++;
            params += m->layers[last]->params;
            trainable_params += m->layers[last]->trainable_params;
        }
        const Layer *end = m->layers[last];
        snprintf(name, sizeof name, " %s (%s)", l->group, l->block_class ? l->block_class : l->cls->name);
        shape_none(shape, sizeof shape, &end->out_shape, end->out_vtime);
        snprintf(params_text, sizeof params_text, "%lld", params);
        total += params;
        trainable += trainable_params;
        if (functional) {
            size_t n = 0;
            conn[0] = 0;
            for (int j = 0; j < l->ninbound && n < sizeof conn; j++)
                n += (size_t)snprintf(conn + n, sizeof conn - n, "%s'%s'", j ? ", " : "[", l->inbound[j]);
            if (n < sizeof conn - 1)
                strcat(conn, "]");
            const char *f[] = {name, shape, params_text, conn};
            row(out, f, nf, pos);
        } else {
            const char *f[] = {name, shape, params_text};
            row(out, f, nf, pos);
        }
        row(out, (const char *[]){"", "", "", ""}, nf, pos);
        i = last;
    }
    (void)p;
    rule(out, '=', width);
    char num[64];
    thousands(num, sizeof num, total);
    fprintf(out, "Total params: %s\n", num);
    thousands(num, sizeof num, trainable);
    fprintf(out, "Trainable params: %s\n", num);
    thousands(num, sizeof num, total - trainable);
    fprintf(out, "Non-trainable params: %s\n", num);
    rule(out, '_', width);
}
