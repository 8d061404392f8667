/*
 * rt_json.c - a small strict JSON parser, for safetensors headers.
 *
 * A checkpoint header is untrusted input, so the parser accepts exactly
 * RFC 8259 and nothing more: no comments, no trailing commas, no leading
 * zeros, no bare control characters, no invalid UTF-8 or lone surrogates,
 * nothing after the value but whitespace.  It never reads past `len`, never
 * recurses deeper than RT_JSON_MAX_DEPTH, and on failure reports the byte
 * offset and what it expected.  It builds a plain malloc'd tree; numbers
 * keep their literal so that integers convert exactly (rt_json_u64).
 *
 * Two deliberate limits: duplicate member names are left to the caller
 * (which knows what they mean), and strings may not contain U+0000 so that
 * every decoded string is an ordinary C string.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

#define RT_JSON_MAX_DEPTH 64

typedef struct parser {
    const char *s;
    size_t len, pos;
    int depth;
    char *err;
    size_t err_size, err_pos;
    int failed;
} parser;

static rt_json *parse_value(parser *p);

static rt_json *fail(parser *p, const char *msg) {
    if (!p->failed) {
        p->failed = 1;
        p->err_pos = p->pos;
        snprintf(p->err, p->err_size, "%s", msg);
    }
    return NULL;
}

static int peek(parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

static void skip_space(parser *p) {
    while (p->pos < p->len && strchr(" \t\n\r", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
}

static rt_json *new_node(rt_json_type type) {
    rt_json *j = rt_xcalloc(1, sizeof *j);
    j->type = type;
    return j;
}

void rt_json_free(rt_json *j) {
    if (!j)
        return;
    for (int i = 0; i < j->n; i++) {
        rt_json_free(j->items[i]);
        if (j->keys)
            free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->text);
    free(j);
}

static rt_json *parse_literal(parser *p, const char *word, rt_json_type type, int boolean) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "expected a value");
    p->pos += n;
    rt_json *j = new_node(type);
    j->boolean = boolean;
    return j;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int skip_digits(parser *p) {
    size_t start = p->pos;
    while (is_digit(peek(p)))
        p->pos++;
    return p->pos > start;
}

/* number = [ "-" ] ( "0" / digit1-9 *digit ) [ "." 1*digit ]
 *          [ ( "e" / "E" ) [ "+" / "-" ] 1*digit ] */
static rt_json *parse_number(parser *p) {
    size_t start = p->pos;
    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0')
        p->pos++;
    else if (!skip_digits(p))
        return fail(p, "expected a digit");
    if (peek(p) == '.') {
        p->pos++;
        if (!skip_digits(p))
            return fail(p, "expected a digit after '.'");
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!skip_digits(p))
            return fail(p, "expected a digit in the exponent");
    }
    rt_json *j = new_node(RT_JSON_NUMBER);
    j->len = p->pos - start;
    j->text = memcpy(rt_xmalloc(j->len + 1), p->s + start, j->len);
    j->text[j->len] = '\0';
    j->number = strtod(j->text, NULL);
    return j;
}

static int hex4(parser *p, unsigned *out) {
    if (p->len - p->pos < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p->s[p->pos + i];
        int d = is_digit(c)              ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (unsigned)d;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static void put_utf8(rt_buf *b, unsigned cp) {
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    rt_buf_add(b, u, n);
}

/* \uXXXX, or a surrogate pair \uD8xx\uDCxx; the backslash-u is consumed. */
static int parse_unicode_escape(parser *p, rt_buf *b) {
    unsigned cp, low;
    if (hex4(p, &cp))
        return fail(p, "expected 4 hex digits after \\u"), -1;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(p, "lone low surrogate in \\u escape"), -1;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "high surrogate not followed by \\u"), -1;
        p->pos += 2;
        if (hex4(p, &low) || low < 0xdc00 || low > 0xdfff)
            return fail(p, "expected a low surrogate"), -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    if (cp == 0)
        return fail(p, "\\u0000 is not allowed in strings"), -1;
    put_utf8(b, cp);
    return 0;
}

static int parse_escape(parser *p, rt_buf *b) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    int c = peek(p);
    p->pos++;
    if (c == 'u')
        return parse_unicode_escape(p, b);
    const char *hit = c > 0 ? strchr(from, c) : NULL;
    if (!hit) {
        p->pos--;
        return fail(p, "invalid escape sequence"), -1;
    }
    rt_buf_add(b, &to[hit - from], 1);
    return 0;
}

/* Length of the valid UTF-8 sequence at s (up to n bytes), or 0. */
static size_t utf8_length(const unsigned char *s, size_t n) {
    unsigned cp;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

/* Parses a string literal (at its opening quote) into a new C string. */
static char *parse_string_text(parser *p, size_t *len) {
    rt_buf b = {0};
    p->pos++;
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            fail(p, "unterminated string");
            break;
        }
        if (c == '"') {
            p->pos++;
            rt_buf_add(&b, "", 0);
            *len = b.len;
            return b.data ? b.data : rt_xstrdup("");
        }
        if (c < 0x20) {
            fail(p, "control character in string");
            break;
        }
        if (c == '\\') {
            p->pos++;
            if (parse_escape(p, &b))
                break;
            continue;
        }
        size_t n = utf8_length((const unsigned char *)p->s + p->pos, p->len - p->pos);
        if (n == 0) {
            fail(p, "invalid UTF-8 in string");
            break;
        }
        rt_buf_add(&b, p->s + p->pos, n);
        p->pos += n;
    }
    free(b.data);
    return NULL;
}

static rt_json *parse_string(parser *p) {
    size_t len;
    char *text = parse_string_text(p, &len);
    if (!text)
        return NULL;
    rt_json *j = new_node(RT_JSON_STRING);
    j->text = text;
    j->len = len;
    return j;
}

static void append_item(rt_json *j, char *key, rt_json *item) {
    j->items = rt_xrealloc(j->items, (size_t)(j->n + 1) * sizeof *j->items);
    if (key)
        j->keys = rt_xrealloc(j->keys, (size_t)(j->n + 1) * sizeof *j->keys);
    j->items[j->n] = item;
    if (key)
        j->keys[j->n] = key;
    j->n++;
}

/* member = string ws ":" value; the object takes ownership on success. */
static int parse_member(parser *p, rt_json *object) {
    size_t len;
    skip_space(p);
    if (peek(p) != '"')
        return fail(p, "expected a member name in quotes"), -1;
    char *key = parse_string_text(p, &len);
    if (!key)
        return -1;
    skip_space(p);
    if (peek(p) != ':') {
        free(key);
        return fail(p, "expected ':' after a member name"), -1;
    }
    p->pos++;
    rt_json *value = parse_value(p);
    if (!value) {
        free(key);
        return -1;
    }
    append_item(object, key, value);
    return 0;
}

/* object = "{" [ member *( "," member ) ] "}", likewise array. */
static rt_json *parse_container(parser *p, rt_json_type type) {
    char close = type == RT_JSON_OBJECT ? '}' : ']';
    rt_json *j = new_node(type);
    p->pos++;
    skip_space(p);
    if (peek(p) == close) {
        p->pos++;
        return j;
    }
    for (;;) {
        if (type == RT_JSON_OBJECT) {
            if (parse_member(p, j))
                break;
        } else {
            rt_json *item = parse_value(p);
            if (!item)
                break;
            append_item(j, NULL, item);
        }
        skip_space(p);
        if (peek(p) == ',') {
            p->pos++;
            continue;
        }
        if (peek(p) == close) {
            p->pos++;
            return j;
        }
        fail(p, type == RT_JSON_OBJECT ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    rt_json_free(j);
    return NULL;
}

static rt_json *parse_value(parser *p) {
    skip_space(p);
    if (++p->depth > RT_JSON_MAX_DEPTH)
        return fail(p, "nested too deeply");
    rt_json *j;
    switch (peek(p)) {
    case '{': j = parse_container(p, RT_JSON_OBJECT); break;
    case '[': j = parse_container(p, RT_JSON_ARRAY); break;
    case '"': j = parse_string(p); break;
    case 't': j = parse_literal(p, "true", RT_JSON_BOOL, 1); break;
    case 'f': j = parse_literal(p, "false", RT_JSON_BOOL, 0); break;
    case 'n': j = parse_literal(p, "null", RT_JSON_NULL, 0); break;
    case -1: j = fail(p, "unexpected end of input"); break;
    default: j = parse_number(p);
    }
    p->depth--;
    return j;
}

/* Returns the tree, or NULL with a message in err and its offset in
 * *err_pos. */
rt_json *rt_json_parse(const char *text, size_t len, size_t *err_pos, char *err, size_t err_size) {
    parser p = {text, len, 0, 0, err, err_size, 0, 0};
    rt_json *j = parse_value(&p);
    if (j) {
        skip_space(&p);
        if (p.pos != len) {
            rt_json_free(j);
            j = fail(&p, "unexpected text after the JSON value");
        }
    }
    if (!j && err_pos)
        *err_pos = p.err_pos;
    return j;
}

const rt_json *rt_json_get(const rt_json *object, const char *key) {
    if (!object || object->type != RT_JSON_OBJECT)
        return NULL;
    for (int i = 0; i < object->n; i++)
        if (strcmp(object->keys[i], key) == 0)
            return object->items[i];
    return NULL;
}

/* A number that is a non-negative integer literal fitting in 64 bits. */
int rt_json_u64(const rt_json *j, uint64_t *out) {
    if (!j || j->type != RT_JSON_NUMBER || j->text[0] == '-' || strpbrk(j->text, ".eE") || j->len > 20)
        return -1;
    uint64_t v = 0;
    for (const char *s = j->text; *s; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
