/*
 * The history parser: reads the text format of history.h line by line
 * (getline, so a line may be any length), splits it on blanks, and checks
 * each field against what the operation allows before keeping it. The first
 * bad line stops the read with its number and what was wrong; nothing of a
 * failed read is kept.
 *
 * Keys and values are interned in two string tables: the strings end to end
 * in one growing buffer, found again through an open-addressing table of ids
 * hashed with FNV-1a. Interning makes every comparison the checker does an
 * integer comparison, and a history of millions of operations costs one
 * buffer rather than millions of small allocations. Each value is also read
 * once as an integer, as the server's incr reads it (strtoll over the whole
 * value), so the checker never parses text.
 *
 * The parser does not check that a client's operations do not overlap, nor
 * anything across lines: what the operations mean together is the checker's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

/* More fields than the longest line has: client, invoke, complete, key, op, 2 args, ':', 3 results. */
#define MAX_FIELDS         12
#define VERSION_DIGITS     16
#define STRTAB_FIRST_SLOTS 64

/* ------------------------------------------------------------------ */
/* String tables                                                        */
/* ------------------------------------------------------------------ */

static uint64_t string_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static const char *strtab_get(const struct lin_strtab *t, uint32_t id)
{
    return t->text + t->start[id];
}

static void strtab_free(struct lin_strtab *t)
{
    free(t->text);
    free(t->start);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Doubles the slot array (or makes the first); 0 or -ENOMEM, the table unchanged. */
static int strtab_grow_slots(struct lin_strtab *t)
{
    size_t n = t->slots == NULL ? STRTAB_FIRST_SLOTS : (t->slot_mask + 1) * 2;
    uint32_t *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return -ENOMEM;
    for (uint32_t id = 0; id < t->count; id++) {
        size_t i = string_hash(strtab_get(t, id)) & (n - 1);
        while (slots[i] != 0)
            i = (i + 1) & (n - 1);
        slots[i] = id + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->slot_mask = n - 1;
    return 0;
}

/* Stores a copy of s; its id through *id. Returns 1 if s is new, 0 if it was there, or -ENOMEM. */
static int strtab_intern(struct lin_strtab *t, const char *s, uint32_t *id)
{
    if (t->slots == NULL || (size_t)t->count * 2 >= t->slot_mask + 1) {
        int rc = strtab_grow_slots(t);
        if (rc != 0)
            return rc;
    }
    size_t i = string_hash(s) & t->slot_mask;
    for (; t->slots[i] != 0; i = (i + 1) & t->slot_mask) {
        if (strcmp(strtab_get(t, t->slots[i] - 1), s) == 0) {
            *id = t->slots[i] - 1;
            return 0;
        }
    }
    if (t->count == UINT32_MAX - 1)
        return -ENOMEM;
    size_t len = strlen(s) + 1;
    if (t->text_len + len > t->text_cap) {
        size_t cap = t->text_cap == 0 ? 4096 : t->text_cap;
        while (cap < t->text_len + len)
            cap *= 2;
        char *text = realloc(t->text, cap);
        if (text == NULL)
            return -ENOMEM;
        t->text = text;
        t->text_cap = cap;
    }
    if (t->count == t->cap) {
        uint32_t cap = t->cap == 0 ? 64 : t->cap * 2;
        size_t *start = realloc(t->start, cap * sizeof(*start));
        if (start == NULL)
            return -ENOMEM;
        t->start = start;
        t->cap = cap;
    }
    memcpy(t->text + t->text_len, s, len);
    t->start[t->count] = t->text_len;
    t->text_len += len;
    t->slots[i] = t->count + 1;
    *id = t->count++;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Fields                                                               */
/* ------------------------------------------------------------------ */

static const char *const op_names[] = {
    [LIN_GET] = "get", [LIN_SET] = "set",     [LIN_CAS] = "cas",   [LIN_CREATE] = "create",
    [LIN_DEL] = "del", [LIN_DELIF] = "delif", [LIN_INCR] = "incr",
};

const char *lin_op_name(enum lin_op_kind kind)
{
    return op_names[kind];
}

/* Parses all of s as a decimal int64 (an optional '-', then digits); 0 or -1. */
static int parse_int64(const char *s, int64_t *out)
{
    if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

static int parse_version(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < VERSION_DIGITS; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            return -1;
    }
    if (s[VERSION_DIGITS] != '\0')
        return -1;
    *out = v;
    return 0;
}

/* A line being parsed: its fields and where the error goes. */
struct line {
    char *field[MAX_FIELDS];
    int n_fields;
    unsigned number;
    struct lin_parse_error *err;
};

static int line_error(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int line_error(struct line *l, const char *fmt, ...)
{
    va_list ap;
    l->err->line = l->number;
    va_start(ap, fmt);
    vsnprintf(l->err->message, sizeof(l->err->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A version field of a result: 16 hex digits, or '-' for none. */
static int result_version(struct line *l, const char *s, struct lin_op *op)
{
    op->result_version_known = strcmp(s, "-") != 0;
    if (op->result_version_known && parse_version(s, &op->result_version) != 0)
        return line_error(l, "bad version '%s' (16 lowercase hex digits, or '-')", s);
    return 0;
}

static int intern_value(struct lin_history *h, const char *s, uint32_t *id)
{
    int rc = strtab_intern(&h->values, s, id);
    if (rc <= 0)
        return rc;
    if (h->value_ints_cap < h->values.cap) {
        struct lin_int *ints = realloc(h->value_ints, h->values.cap * sizeof(*ints));
        if (ints == NULL)
            return -ENOMEM;
        h->value_ints = ints;
        h->value_ints_cap = h->values.cap;
    }
    struct lin_int *v = &h->value_ints[*id];
    v->kind = LIN_NOT_INT;
    if (parse_int64(s, &v->n) == 0) {
        char canonical[24];
        snprintf(canonical, sizeof(canonical), "%" PRId64, v->n);
        v->kind = strcmp(canonical, s) == 0 ? LIN_CANONICAL_INT : LIN_INT;
    }
    return 0;
}

/* The results each op allows, for error messages. */
static const char *const result_syntax[] = {
    [LIN_GET] = "hit <value> <version>, miss or ?",
    [LIN_SET] = "ok <version> or ?",
    [LIN_CAS] = "ok <version>, fail or ?",
    [LIN_CREATE] = "ok <version>, fail or ?",
    [LIN_DEL] = "ok, miss or ?",
    [LIN_DELIF] = "ok, fail or ?",
    [LIN_INCR] = "ok <newvalue> <version>, notint or ?",
};

/* Reads the n_res fields after ':' into op's result; 0, -EINVAL or -ENOMEM. */
static int parse_result(struct line *l, struct lin_history *h, struct lin_op *op, char **res, int n_res)
{
    const char *word = res[0];
    bool is_ok = strcmp(word, "ok") == 0;
    int rc = 0;
    if (strcmp(word, "?") == 0 && n_res == 1) {
        op->result = LIN_RESULT_UNKNOWN;
    } else if (op->kind == LIN_GET && strcmp(word, "hit") == 0 && n_res == 3) {
        op->result = LIN_RESULT_HIT;
        rc = intern_value(h, res[1], &op->result_value);
        if (rc == 0)
            rc = result_version(l, res[2], op);
    } else if ((op->kind == LIN_GET || op->kind == LIN_DEL) && strcmp(word, "miss") == 0 && n_res == 1) {
        op->result = LIN_RESULT_MISS;
    } else if ((op->kind == LIN_SET || op->kind == LIN_CAS || op->kind == LIN_CREATE) && is_ok && n_res == 2) {
        op->result = LIN_RESULT_OK;
        rc = result_version(l, res[1], op);
    } else if ((op->kind == LIN_DEL || op->kind == LIN_DELIF) && is_ok && n_res == 1) {
        op->result = LIN_RESULT_OK;
    } else if ((op->kind == LIN_CAS || op->kind == LIN_CREATE || op->kind == LIN_DELIF) && strcmp(word, "fail") == 0 &&
               n_res == 1) {
        op->result = LIN_RESULT_FAIL;
    } else if (op->kind == LIN_INCR && is_ok && n_res == 3) {
        op->result = LIN_RESULT_OK;
        rc = intern_value(h, res[1], &op->result_value);
        if (rc == 0 && h->value_ints[op->result_value].kind == LIN_NOT_INT)
            rc = line_error(l, "incr's new value '%s' is not an integer", res[1]);
        if (rc == 0)
            rc = result_version(l, res[2], op);
    } else if (op->kind == LIN_INCR && strcmp(word, "notint") == 0 && n_res == 1) {
        op->result = LIN_RESULT_NOTINT;
    } else {
        rc = line_error(l, "bad result for %s: expected %s", lin_op_name(op->kind), result_syntax[op->kind]);
    }
    return rc;
}

/* How many arguments each op takes, by kind. */
static const int op_arg_count[] = {
    [LIN_GET] = 0, [LIN_SET] = 1, [LIN_CAS] = 2, [LIN_CREATE] = 1, [LIN_DEL] = 0, [LIN_DELIF] = 1, [LIN_INCR] = 1,
};

static int parse_args(struct line *l, struct lin_history *h, struct lin_op *op, char **args, int n_args)
{
    if (n_args != op_arg_count[op->kind])
        return line_error(l, "%s takes %d argument(s), got %d", lin_op_name(op->kind), op_arg_count[op->kind], n_args);
    switch (op->kind) {
    case LIN_SET:
    case LIN_CREATE:
        return intern_value(h, args[0], &op->value);
    case LIN_CAS: {
        int rc = intern_value(h, args[0], &op->value);
        if (rc == 0 && parse_version(args[1], &op->if_version) != 0)
            return line_error(l, "bad If-Match version '%s' (16 lowercase hex digits)", args[1]);
        return rc;
    }
    case LIN_DELIF:
        if (parse_version(args[0], &op->if_version) != 0)
            return line_error(l, "bad If-Match version '%s' (16 lowercase hex digits)", args[0]);
        return 0;
    case LIN_INCR:
        if (parse_int64(args[0], &op->by) != 0)
            return line_error(l, "incr's amount '%s' is not an integer", args[0]);
        return 0;
    case LIN_GET:
    case LIN_DEL:
        return 0;
    }
    return 0;
}

static int parse_op(struct line *l, struct lin_history *h, struct lin_op *op)
{
    char **f = l->field;
    int colon = -1;
    for (int i = 0; i < l->n_fields && colon < 0; i++)
        if (strcmp(f[i], ":") == 0)
            colon = i;
    if (colon < 0)
        return line_error(l, "no ' : ' between the operation and its result");
    if (colon < 5)
        return line_error(l, "expected <client> <invoke> <complete> <key> <op> before ':'");
    if (colon == l->n_fields - 1)
        return line_error(l, "no result after ':'");

    int64_t client;
    if (parse_int64(f[0], &client) != 0 || client < 0 || client > UINT32_MAX)
        return line_error(l, "bad client '%s' (a non-negative integer)", f[0]);
    op->client = (uint32_t)client;
    if (parse_int64(f[1], &op->invoke) != 0 || op->invoke == LIN_NEVER)
        return line_error(l, "bad invoke time '%s'", f[1]);
    if (strcmp(f[2], "-") == 0)
        op->complete = LIN_NEVER;
    else if (parse_int64(f[2], &op->complete) != 0 || op->complete == LIN_NEVER)
        return line_error(l, "bad complete time '%s' (an integer, or '-')", f[2]);
    else if (op->complete < op->invoke)
        return line_error(l, "completes (%s) before it is invoked (%s)", f[2], f[1]);

    int rc = strtab_intern(&h->keys, f[3], &op->key);
    if (rc < 0)
        return rc;
    size_t kind = 0;
    while (kind < sizeof(op_names) / sizeof(op_names[0]) && strcmp(op_names[kind], f[4]) != 0)
        kind++;
    if (kind == sizeof(op_names) / sizeof(op_names[0]))
        return line_error(l, "unknown op '%s' (get, set, cas, create, del, delif, incr)", f[4]);
    op->kind = (enum lin_op_kind)kind;

    rc = parse_args(l, h, op, f + 5, colon - 5);
    if (rc == 0)
        rc = parse_result(l, h, op, f + colon + 1, l->n_fields - colon - 1);
    if (rc != 0)
        return rc;
    if ((op->complete == LIN_NEVER) != (op->result == LIN_RESULT_UNKNOWN))
        return line_error(l, "complete '-' goes with result '?', and only with it");
    return 0;
}

/* One line of text (its newline removed or not): a comment, a blank, or an op appended to h. */
static int parse_line(struct lin_history *h, char *text, unsigned number, struct lin_parse_error *err)
{
    struct line l = {.number = number, .err = err};
    char *p = text + strspn(text, " \t\r\n");
    if (*p == '\0')
        return 0;
    if (*p == '#') {
        char *word = p + 1 + strspn(p + 1, " \t");
        if (strncmp(word, "allow-loss", 10) == 0 && word[10 + strspn(word + 10, " \t\r\n")] == '\0') {
            if (h->n_ops > 0)
                return line_error(&l, "'# allow-loss' must come before the first operation");
            h->allow_loss = true;
        }
        return 0;
    }
    char *save;
    for (char *tok = strtok_r(p, " \t\r\n", &save); tok != NULL; tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (l.n_fields == MAX_FIELDS)
            return line_error(&l, "too many fields");
        l.field[l.n_fields++] = tok;
    }
    if (h->n_ops == h->ops_cap) {
        size_t cap = h->ops_cap == 0 ? 256 : h->ops_cap * 2;
        struct lin_op *ops = realloc(h->ops, cap * sizeof(*ops));
        if (ops == NULL)
            return -ENOMEM;
        h->ops = ops;
        h->ops_cap = cap;
    }
    struct lin_op *op = &h->ops[h->n_ops];
    memset(op, 0, sizeof(*op));
    op->line = number;
    int rc = parse_op(&l, h, op);
    if (rc == 0)
        h->n_ops++;
    return rc;
}

/* ------------------------------------------------------------------ */
/* The public calls                                                     */
/* ------------------------------------------------------------------ */

int lin_history_read(FILE *in, struct lin_history *h, struct lin_parse_error *err)
{
    char *buf = NULL;
    size_t cap = 0;
    unsigned number = 0;
    int rc = 0;
    memset(h, 0, sizeof(*h));
    memset(err, 0, sizeof(*err));
    while (rc == 0 && getline(&buf, &cap, in) >= 0)
        rc = parse_line(h, buf, ++number, err);
    if (rc == 0 && ferror(in)) {
        snprintf(err->message, sizeof(err->message), "read error: %s", strerror(errno));
        rc = -EIO;
    }
    if (rc == -ENOMEM)
        snprintf(err->message, sizeof(err->message), "out of memory");
    free(buf);
    if (rc != 0)
        lin_history_free(h);
    return rc;
}

int lin_history_parse(const char *text, struct lin_history *h, struct lin_parse_error *err)
{
    size_t len = strlen(text);
    /* fmemopen cannot open an empty buffer on every libc: an empty text is an empty history. */
    if (len == 0) {
        memset(h, 0, sizeof(*h));
        memset(err, 0, sizeof(*err));
        return 0;
    }
    FILE *in = fmemopen((void *)text, len, "r");
    if (in == NULL) {
        memset(err, 0, sizeof(*err));
        snprintf(err->message, sizeof(err->message), "fmemopen: %s", strerror(errno));
        return errno == ENOMEM ? -ENOMEM : -EIO;
    }
    int rc = lin_history_read(in, h, err);
    fclose(in);
    return rc;
}

void lin_history_free(struct lin_history *h)
{
    free(h->ops);
    strtab_free(&h->keys);
    strtab_free(&h->values);
    free(h->value_ints);
    memset(h, 0, sizeof(*h));
}

const char *lin_history_key(const struct lin_history *h, uint32_t id)
{
    return strtab_get(&h->keys, id);
}

const char *lin_history_value(const struct lin_history *h, uint32_t id)
{
    return strtab_get(&h->values, id);
}

static void print_version(FILE *out, bool known, uint64_t version)
{
    if (known)
        fprintf(out, " %016" PRIx64, version);
    else
        fputs(" -", out);
}

void lin_op_print(FILE *out, const struct lin_history *h, const struct lin_op *op)
{
    fprintf(out, "%" PRIu32 " %" PRId64 " ", op->client, op->invoke);
    if (op->complete == LIN_NEVER)
        fputs("-", out);
    else
        fprintf(out, "%" PRId64, op->complete);
    fprintf(out, " %s %s", lin_history_key(h, op->key), lin_op_name(op->kind));
    switch (op->kind) {
    case LIN_SET:
    case LIN_CREATE:
        fprintf(out, " %s", lin_history_value(h, op->value));
        break;
    case LIN_CAS:
        fprintf(out, " %s", lin_history_value(h, op->value));
        print_version(out, true, op->if_version);
        break;
    case LIN_DELIF:
        print_version(out, true, op->if_version);
        break;
    case LIN_INCR:
        fprintf(out, " %" PRId64, op->by);
        break;
    case LIN_GET:
    case LIN_DEL:
        break;
    }
    fputs(" :", out);
    switch (op->result) {
    case LIN_RESULT_UNKNOWN:
        fputs(" ?", out);
        break;
    case LIN_RESULT_HIT:
    case LIN_RESULT_OK:
        fputs(op->result == LIN_RESULT_HIT ? " hit" : " ok", out);
        if (op->result == LIN_RESULT_HIT || op->kind == LIN_INCR)
            fprintf(out, " %s", lin_history_value(h, op->result_value));
        if (op->kind != LIN_DEL && op->kind != LIN_DELIF)
            print_version(out, op->result_version_known, op->result_version);
        break;
    case LIN_RESULT_MISS:
        fputs(" miss", out);
        break;
    case LIN_RESULT_FAIL:
        fputs(" fail", out);
        break;
    case LIN_RESULT_NOTINT:
        fputs(" notint", out);
        break;
    }
}
