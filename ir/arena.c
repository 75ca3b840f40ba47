/* arena.c — the compiler's bump allocator.
 *
 * Every IR object, string and YAML node of one compilation comes from one
 * Arena and is freed with it; nothing is freed alone. Blocks grow
 * geometrically; allocations are zeroed and 16-byte aligned. Running out of
 * memory is not a user error: it aborts.
 */
#include "ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
        size_t want = b ? b->size * 2 : 64 * 1024;
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
