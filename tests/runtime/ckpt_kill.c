/*
 * ckpt_kill.c - is a checkpoint ever damaged by a process killed while it
 * saves one?
 *
 *     ckpt_kill save PATH     saves generation g+1, g+2, ... to PATH
 *                             through rt_ckpt_save (what `train --save`
 *                             calls), forever, until killed; g is the
 *                             generation of the checkpoint there (0 if none)
 *     ckpt_kill check PATH    loads PATH: every value must be the same
 *                             generation number; prints it
 *
 * The model holds 4 MiB of weights, so a save takes long enough that a
 * SIGKILL at a random moment lands inside one most of the time
 * (tests/runtime/ckpt_kill.sh does that 50 times).
 */
#include "rt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 1024, COLS = 1024 };

static const rt_param kill_params[] = {
    {.t = {"W", RT_F32, 2, {ROWS, COLS}, 0, 0, -1, 0}, .init = RT_INIT_ZEROS, .trainable = 1, .grad_offset = -1},
    {.t = {"step", RT_I32, 0, {0}, 0, 4 * ROWS * COLS, -1, 0}, .grad_offset = -1},
};

static const rt_model kill_model = {
    .name = "kill",
    .source = "tests/runtime/ckpt_kill.c",
    .arena_bytes = 4 * ROWS * COLS + 64,
    .max_batch = 1,
    .n_params = 2,
    .params = kill_params,
};

static void fill(char *arena, int32_t generation) {
    float *w = (float *)arena;
    for (long i = 0; i < ROWS * COLS; i++)
        w[i] = (float)generation;
    memcpy(arena + 4 * ROWS * COLS, &generation, 4);
}

static int check(const char *path) {
    char *arena = rt_arena_new(&kill_model);
    int rc = rt_ckpt_load(&kill_model, arena, path);
    if (rc == 0) {
        int32_t generation;
        memcpy(&generation, arena + 4 * ROWS * COLS, 4);
        const float *w = (const float *)arena;
        for (long i = 0; i < ROWS * COLS && rc == 0; i++)
            if (w[i] != (float)generation) {
                fprintf(stderr, "ckpt_kill: %s mixes generations: W[%ld] = %g, step %d\n", path, i, (double)w[i],
                        (int)generation);
                rc = 1;
            }
        if (rc == 0)
            printf("%d\n", (int)generation);
    }
    rt_arena_free(arena);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "save") != 0 && strcmp(argv[1], "check") != 0)) {
        fprintf(stderr, "usage: ckpt_kill save|check PATH\n");
        return 2;
    }
    if (strcmp(argv[1], "check") == 0)
        return check(argv[2]);
    char *arena = rt_arena_new(&kill_model);
    int32_t first = 1; /* one past the checkpoint there, if any */
    rt_quiet_errors = 1;
    if (rt_ckpt_load(&kill_model, arena, argv[2]) == 0) {
        memcpy(&first, arena + 4 * ROWS * COLS, 4);
        first++;
    }
    rt_quiet_errors = 0;
    for (int32_t generation = first;; generation++) {
        fill(arena, generation);
        if (rt_ckpt_save(&kill_model, arena, argv[2])) {
            rt_arena_free(arena);
            return 1;
        }
        if (generation == first) { /* the driver waits for a first checkpoint */
            printf("saved\n");
            fflush(stdout);
        }
    }
}
