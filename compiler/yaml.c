/* yaml.c — the model file as a tree of located nodes.
 *
 * libyaml's event parser builds YNodes (scalar, sequence, mapping), each
 * keeping the 1-based line and column where it starts, so every later
 * phase can point at the exact token a user wrote. An alias becomes a
 * shallow copy of its anchor's node (the children shared), located where
 * the alias is written, so messages point at the use. Duplicate mapping
 * keys are an error (YAML says so; libyaml does not check). Syntax errors
 * come back located.
 *
 * Aliases share their children, but whoever walks the tree (the Keras
 * importer writing JSON back out, block expansion) sees a copy per use, so
 * nested aliases can make a 1 KB file stand for 10^9 nodes ("billion
 * laughs"). Every node therefore carries its expanded size, and the aliases
 * of one document may stand for at most MAX_ALIAS_NODES nodes and
 * MAX_ALIAS_BYTES of scalar text in all, through at most MAX_ALIASES
 * aliases; an alias to a collection that is still open (a cycle) is refused.
 * Real models use a handful of aliases; these limits are generous for them.
 */
#include "compiler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    Arena *arena;
    yaml_parser_t parser;
    const char *file;
    struct {
        const char *name;
        YNode *node;
    } anchors[256];
    int nanchors;
    int depth;                   /* open collections: bounded so that no file can overflow the stack */
    const char *text;            /* the source, to describe the character a syntax error stops at */
    size_t aliases;              /* aliases read so far */
    size_t alias_nodes;          /* nodes they stand for (the sum of their anchors' expanded sizes) */
    size_t alias_bytes;          /* scalar text they stand for */
} Reader;

enum { MAX_DEPTH = 200 };

/* The alias budget (docs/model-format.md, "Anchors and aliases"). */
#define MAX_ALIASES ((size_t)100000)
#define MAX_ALIAS_NODES ((size_t)1000000)
#define MAX_ALIAS_BYTES ((size_t)64 << 20)

static Loc mark_loc(const Reader *r, yaml_mark_t m)
{
    return (Loc){r->file, (int)m.line + 1, (int)m.column + 1};
}

/* The start of a 0-based line of the text, NULL past its end. */
static const char *line_start(const Reader *r, size_t line)
{
    const char *p = r->text;
    for (size_t l = 0; l < line && p; l++)
        if ((p = strchr(p, '\n')))
            p++;
    return p && *p ? p : NULL;
}

/* The character at a mark (line and column count characters, not bytes). */
static char char_at(const Reader *r, yaml_mark_t m)
{
    const char *p = line_start(r, m.line);
    for (size_t c = 0; p && *p && *p != '\n' && c < m.column; c++)
        do
            p++;
        while ((*p & 0xC0) == 0x80);
    return p ? *p : 0;
}

/* The location of a byte offset (libyaml's reader errors give only that). */
static Loc offset_loc(const Reader *r, size_t offset)
{
    Loc loc = {r->file, 1, 1};
    for (size_t i = 0; i < offset && r->text[i]; i++) {
        if (r->text[i] == '\n') {
            loc.line++;
            loc.col = 1;
        } else if ((r->text[i] & 0xC0) != 0x80) {
            loc.col++;
        }
    }
    return loc;
}

static int syntax_error(Reader *r)
{
    yaml_parser_t *p = &r->parser;
    Loc loc = mark_loc(r, p->problem_mark);
    if (p->error == YAML_READER_ERROR) {
        bool utf16 = p->problem && strstr(p->problem, "UTF-16");  /* a UTF-16 byte-order mark: offsets are not ours */
        size_t at = p->problem_offset;
        if (p->problem && strstr(p->problem, "trailing"))  /* libyaml points past the character's first byte */
            while (at > 0 && ((unsigned char)r->text[at] & 0xC0) != 0xC0)
                at--;
        Loc where = utf16 ? (Loc){r->file, 1, 1} : offset_loc(r, at);
        if (p->problem && strstr(p->problem, "control characters")) {
            error_at(where, "the file is not text: it holds the control character 0x%02x", p->problem_value);
            hint("nncc reads YAML model files (model-format.md)");
        } else {
            error_at(where, "the file is not UTF-8 text: %s", p->problem ? p->problem : "bad encoding");
            hint("save the model file as UTF-8");
        }
        return -1;
    }
    if (p->context && (strstr(p->context, "flow") || strstr(p->context, "quoted")) &&
        ((p->problem && strstr(p->problem, "end of stream")) || !line_start(r, p->problem_mark.line))) {
        /* the file ended inside a quote or bracket: point where it opened */
        error_at(mark_loc(r, p->context_mark), "YAML syntax: %s %s", p->problem, p->context);
        hint("this is never closed before the end of the file");
        return -1;
    }
    if (p->error == YAML_SCANNER_ERROR && char_at(r, p->problem_mark) == '\t') {
        error_at(loc, "YAML syntax: a tab character; YAML indents with spaces only");
        hint("replace the tabs with spaces");
        return -1;
    }
    if (p->context)
        error_at(loc, "YAML syntax: %s %s", p->problem ? p->problem : "error", p->context);
    else
        error_at(loc, "YAML syntax: %s", p->problem ? p->problem : "error");
    if (p->context && strstr(p->context, "block"))
        hint("check the indentation: the items of one list or mapping start in the same column");
    return -1;
}

static int next_event(Reader *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev))
        return syntax_error(r);
    return 0;
}

static void push(Arena *a, YNode *n, YNode *item, int *cap, int count)
{
    if (count == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        YNode **items = arena_alloc(a, (size_t)*cap * sizeof *items);
        if (count)
            memcpy(items, n->items, (size_t)count * sizeof *items);
        n->items = items;
    }
    n->items[count] = item;
}

static void remember_anchor(Reader *r, const yaml_char_t *anchor, YNode *n)
{
    if (anchor && r->nanchors < (int)(sizeof r->anchors / sizeof r->anchors[0]))
        r->anchors[r->nanchors++] = (typeof(r->anchors[0])){arena_strdup(r->arena, (const char *)anchor), n};
}

/* The node an alias stands for, within the budget of the file's aliases. */
static YNode *use_alias(Reader *r, Loc loc, const yaml_char_t *name, YNode *target)
{
    if (target->expanded == 0) {
        error_at(loc, "YAML alias '*%s' is inside the collection its anchor names: it would contain itself", name);
        return NULL;
    }
    r->aliases++;
    r->alias_nodes += target->expanded;
    r->alias_bytes += target->expanded_bytes;
    if (r->aliases > MAX_ALIASES) {
        error_at(loc, "more than %zu YAML aliases in one file", MAX_ALIASES);
        hint("write the repeated values out, or use a block with repeat: for repeated layers (model-format.md)");
        return NULL;
    }
    if (r->alias_nodes > MAX_ALIAS_NODES || r->alias_bytes > MAX_ALIAS_BYTES) {
        error_at(loc, "the YAML aliases so far stand for more than %s (each use counts as a copy of its anchor)",
                 r->alias_nodes > MAX_ALIAS_NODES ? "1000000 values" : "64 MB of text");
        hint("aliases of aliases multiply; write the repeated values out, or use a block with repeat: for "
             "repeated layers (model-format.md)");
        return NULL;
    }
    /* a shallow copy, so that a message about the value points at this use */
    YNode *use = arena_alloc(r->arena, sizeof *use);
    *use = *target;
    use->loc = loc;
    return use;
}

/* Build the node that starts with *ev (already read). */
static YNode *build(Reader *r, yaml_event_t *ev)
{
    YNode *n = arena_alloc(r->arena, sizeof *n);
    n->loc = mark_loc(r, ev->start_mark);
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->kind = Y_SCALAR;
        n->text = arena_strdup(r->arena, (const char *)ev->data.scalar.value);
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->expanded = 1;
        n->expanded_bytes = ev->data.scalar.length;
        remember_anchor(r, ev->data.scalar.anchor, n);
        return n;
    case YAML_ALIAS_EVENT:
        for (int i = r->nanchors - 1; i >= 0; i--)
            if (strcmp(r->anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
                return use_alias(r, n->loc, ev->data.alias.anchor, r->anchors[i].node);
        error_at(n->loc, "YAML alias '*%s' names no anchor defined before it", ev->data.alias.anchor);
        return NULL;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool map = ev->type == YAML_MAPPING_START_EVENT;
        n->kind = map ? Y_MAP : Y_SEQ;
        if (r->depth == MAX_DEPTH) {
            error_at(n->loc, "the YAML nests deeper than %d levels", MAX_DEPTH);
            return NULL;
        }
        remember_anchor(r, map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor, n);
        int cap = 0, count = 0;
        for (;;) {
            yaml_event_t child;
            if (next_event(r, &child))
                return NULL;
            if (child.type == YAML_SEQUENCE_END_EVENT || child.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&child);
                break;
            }
            r->depth++;
            YNode *item = build(r, &child);
            r->depth--;
            yaml_event_delete(&child);
            if (!item)
                return NULL;
            if (map && count % 2 == 0) {
                if (item->kind != Y_SCALAR) {
                    error_at(item->loc, "mapping keys must be plain names, not a %s", ykind_name(item->kind));
                    return NULL;
                }
                for (int k = 0; k < count; k += 2)
                    if (strcmp(n->items[k]->text, item->text) == 0) {
                        error_at(item->loc, "duplicate key '%s'", item->text);
                        hint("the first '%s' is at line %d, column %d; keep one of them", item->text,
                             n->items[k]->loc.line, n->items[k]->loc.col);
                        return NULL;
                    }
            }
            push(r->arena, n, item, &cap, count++);
        }
        n->n = map ? count / 2 : count;
        n->expanded = 1;
        for (int i = 0; i < count; i++) {  /* each term is within the alias budget: no overflow */
            n->expanded += n->items[i]->expanded;
            n->expanded_bytes += n->items[i]->expanded_bytes;
        }
        return n;
    }
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        break;
    }
    error_at(n->loc, "unexpected YAML event");
    return NULL;
}

static YNode *parse(Reader *r)
{
    YNode *root = NULL;
    yaml_event_t ev;
    for (;;) {
        if (next_event(r, &ev))
            return NULL;
        yaml_event_type_t t = ev.type;
        if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT ||
            t == YAML_ALIAS_EVENT) {
            if (root) {
                error_at(mark_loc(r, ev.start_mark), "a model file holds one YAML document");
                yaml_event_delete(&ev);
                return NULL;
            }
            root = build(r, &ev);
            if (!root) {
                yaml_event_delete(&ev);
                return NULL;
            }
        }
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            break;
    }
    if (!root)
        error_at((Loc){r->file, 1, 1}, "the file is empty");
    return root;
}

YNode *yaml_load_string(Arena *a, const char *name, const char *text)
{
    Reader *r = arena_alloc(a, sizeof *r);
    r->arena = a;
    r->file = name;
    r->text = text;
    diag_add_source(name, text);
    if (!yaml_parser_initialize(&r->parser)) {
        error_plain("cannot initialize the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&r->parser, (const unsigned char *)text, strlen(text));
    YNode *root = parse(r);
    yaml_parser_delete(&r->parser);
    return root;
}

YNode *yaml_load(Arena *a, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        error_plain("cannot open model file '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if ((int64_t)len > limits()->model_bytes) {  /* before a tree of it costs many times more */
            free(buf);
            fclose(f);
            error_plain("model file '%s' is larger than %lld bytes (--max-model-bytes)", path,
                        (long long)limits()->model_bytes);
            hint("raise the cap with --max-model-bytes N if the model is meant to be this big");
            return NULL;
        }
        if (cap - len < 2) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    int err = errno;
    bool bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        error_plain("cannot read model file '%s': %s", path, strerror(buf ? err : ENOMEM));
        return NULL;
    }
    buf[len] = 0;
    if (memchr(buf, 0, len)) {
        free(buf);
        error_at((Loc){path, 1, 1}, "this is not a text file");
        hint("nncc reads YAML model files (model-format.md) and Keras .h5 files");
        return NULL;
    }
    char *text = arena_strdup(a, buf);
    free(buf);
    return yaml_load_string(a, path, text);
}

YNode *ymap_get(const YNode *map, const char *key)
{
    if (!map || map->kind != Y_MAP)
        return NULL;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->items[2 * i]->text, key) == 0)
            return map->items[2 * i + 1];
    return NULL;
}

YNode *ymap_key(const YNode *map, int i) { return map->items[2 * i]; }
YNode *ymap_value(const YNode *map, int i) { return map->items[2 * i + 1]; }

bool yscalar_is_null(const YNode *n)
{
    return n && n->kind == Y_SCALAR && n->plain &&
           (strcmp(n->text, "null") == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "None") == 0 ||
            n->text[0] == 0);
}

const char *ykind_name(YKind k)
{
    switch (k) {
    case Y_SCALAR:
        return "scalar";
    case Y_SEQ:
        return "list";
    case Y_MAP:
        return "mapping";
    }
    return "?";
}
