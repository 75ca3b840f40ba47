/* arena.c — the compiler's bump allocator.
 *
 * Every IR object, string and YAML node of one compilation comes from one
 * Arena and is freed with it; nothing is freed alone. Blocks grow
 * geometrically; allocations are zeroed and 16-byte aligned. Running out of
 * memory is not a user error: it aborts. StrMap (open addressing, FNV-1a)
 * lives here too, since its tables are arena memory.
 *
 * Block sizes double up to 64 MiB and then stay there, so memory follows
 * what is used instead of jumping to a block of gigabytes; a larger block is
 * made only for one allocation that large, and no caller asks for one from
 * an unchecked number (limits.c bounds what a model may make).
 */
#include "ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { ARENA_BLOCK_MAX = 64 << 20 };

struct ArenaBlock {
    ArenaBlock *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

void *arena_alloc(Arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    ArenaBlock *b = a->head;
    if (!b || b->used + size > b->size) {
        size_t want = !b ? 64 * 1024 : b->size < ARENA_BLOCK_MAX ? 2 * b->size : ARENA_BLOCK_MAX;
        if (want < size)
            want = size;
        b = malloc(sizeof *b + want);
        if (!b) {
            fprintf(stderr, "nncc: out of memory (arena block of %zu bytes)\n", want);
            abort();
        }
        b->next = a->head;
        b->used = 0;
        b->size = want;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(arena_alloc(a, n), s, n);
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void arena_free(Arena *a)
{
    for (ArenaBlock *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
}

/* FNV-1a */
static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

void *strmap_get(const StrMap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (!strcmp(m->keys[i], key))
            return m->values[i];
    }
}

void strmap_put(Arena *a, StrMap *m, const char *key, void *value)
{
    if (2 * (m->count + 1) > m->cap) {
        StrMap bigger = {arena_alloc(a, (m->cap ? m->cap * 2 : 64) * sizeof(char *)),
                         arena_alloc(a, (m->cap ? m->cap * 2 : 64) * sizeof(void *)), m->cap ? m->cap * 2 : 64, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                strmap_put(a, &bigger, m->keys[i], m->values[i]);
        *m = bigger;
    }
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key))
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->count++;
    }
    m->values[i] = value;
}
