/*
 * rt_arena.c - the one block of memory a compiled model runs in.
 *
 * mdlc plans every tensor of the model (parameters, optimizer state, data
 * slots, activations, gradients, scratch) at a fixed offset in one arena
 * whose size it knows.  The runtime's only job is to provide it: 64-byte
 * aligned so the generated vector code may use aligned loads on any slot the
 * planner aligned, and zero-filled so optimizer state starts at zero.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

#define RT_ARENA_ALIGN 64

char *rt_arena_new(const rt_model *m) {
    /* aligned_alloc wants a size that is a multiple of the alignment. */
    size_t size = ((size_t)m->arena_bytes + RT_ARENA_ALIGN - 1) / RT_ARENA_ALIGN * RT_ARENA_ALIGN;
    if (size == 0)
        size = RT_ARENA_ALIGN;
    char *arena = aligned_alloc(RT_ARENA_ALIGN, size);
    if (!arena) {
        rt_error("cannot allocate the model's %lld-byte arena", (long long)m->arena_bytes);
        return NULL;
    }
    memset(arena, 0, size);
    return arena;
}

void rt_arena_free(char *arena) { free(arena); }
