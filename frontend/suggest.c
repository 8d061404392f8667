/*
 * suggest.c - "did you mean": the one known name closest to a misspelt one.
 *
 * A phase that meets an unknown name offers every name that could have
 * been meant (suggest_offer) and asks for the winner (suggest_best).  The
 * distance is the optimal-string-alignment form of Damerau-Levenshtein:
 * insertions, deletions, substitutions and swaps of two neighbours each
 * cost one, so `sofmax`, `sotfmax` and `softmx` are all one step from
 * `softmax`.
 *
 * How far a guess may be grows with the length of what was typed: nothing
 * for one or two characters (a one-letter name is one step from every
 * other one-letter name), one edit up to five, two up to eight, three
 * beyond.  A candidate that differs only in case always qualifies and
 * wins over any other.  A suggestion is made only when one candidate is
 * strictly closest: a tie between two names means we cannot tell which
 * was meant, and a wrong guess misleads more than none.
 */
#include <ctype.h>
#include <string.h>

#include "ast.h"

enum { FAR = 1 << 20 };

static int same_ignoring_case(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static int min3(int a, int b, int c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

/* Three rows of the dynamic programme are enough: a swap looks two back. */
int suggest_distance(const char *a, const char *b, int limit) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la - lb > limit || lb - la > limit)
        return FAR;
    if (lb > 63)
        return FAR; /* names that long are never a typo's best guess */
    int rows[3][64], *two_back = rows[0], *prev = rows[1], *cur = rows[2];
    for (int j = 0; j <= lb; j++)
        prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        int row_min = cur[0];
        for (int j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && two_back[j - 2] + 1 < cur[j])
                cur[j] = two_back[j - 2] + 1;
            row_min = cur[j] < row_min ? cur[j] : row_min;
        }
        if (row_min > limit)
            return FAR; /* every path is already too long */
        int *t = two_back;
        two_back = prev, prev = cur, cur = t;
    }
    return prev[lb];
}

static int edit_limit(const char *typed) {
    size_t n = strlen(typed);
    return n <= 2 ? 0 : n <= 5 ? 1 : n <= 8 ? 2 : 3;
}

void suggest_begin(suggestion *s, const char *typed) {
    s->typed = typed;
    s->best = NULL;
    s->distance = FAR;
    s->tied = 0;
}

void suggest_offer(suggestion *s, const char *candidate) {
    if (!candidate || strcmp(candidate, s->typed) == 0)
        return;
    /* a case-only difference ranks before every real edit */
    int d = same_ignoring_case(candidate, s->typed) ? 0 : suggest_distance(s->typed, candidate, edit_limit(s->typed));
    if (d >= FAR || (d > 0 && d > edit_limit(s->typed)))
        return;
    if (d < s->distance) {
        s->best = candidate;
        s->distance = d;
        s->tied = 0;
    } else if (d == s->distance && strcmp(candidate, s->best) != 0) {
        s->tied = 1; /* the same name offered twice (a prelude fn and a builtin) is no tie */
    }
}

const char *suggest_best(const suggestion *s) { return s->best && !s->tied ? s->best : NULL; }
