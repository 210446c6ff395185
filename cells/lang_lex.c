/* The cell language: error messages, the compile context's memory, and the lexer. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include "lang_internal.h"

static int vfailat(cx *c, int line, int col, const char *fmt, va_list ap)
{
    if (c->failed) return -1;
    c->failed = 1;
    if (!c->err || c->errlen == 0) return -1;
    int k = snprintf(c->err, c->errlen, "%s:%d:%d: ", c->file, line, col);
    if (k >= 0 && (size_t)k < c->errlen) vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    return -1;
}

int lang_failat(cx *c, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfailat(c, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

int lang_nomem(cx *c) { return lang_failat(c, c->t.line, c->t.col, "out of memory"); }

/* Grows an array to hold `need` elements; NULL when memory is short (the old block stays). */
void *lang_grow(void *p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return p;
    int n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *q = realloc(p, (size_t)n * elem);
    if (q) *cap = n;
    return q;
}

/* Appends a NUL-terminated copy of s[0..n) to the pool; its offset, or -1. */
int lang_pool_add(cx *c, const char *s, size_t n)
{
    if (c->npool + n + 1 > c->cappool) {
        size_t cap = c->cappool ? c->cappool : 256;
        while (cap < c->npool + n + 1) cap *= 2;
        char *q = realloc(c->pool, cap);
        if (!q) return lang_nomem(c);
        c->pool = q;
        c->cappool = cap;
    }
    int off = (int)c->npool;
    memcpy(c->pool + c->npool, s, n);
    c->pool[c->npool + n] = 0;
    c->npool += n + 1;
    return off;
}


/* ---- lexer ------------------------------------------------------------------------- */

static int is_alpha(int ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }

/* "'text'" (shortened), "the end of the line", "the end of the text" */
static void tokdesc(const cx *c, const tok *t, char *buf, size_t n)
{
    if (t->type == T_EOF) snprintf(buf, n, "the end of the text");
    else if (t->type == T_NL) snprintf(buf, n, "the end of the line");
    else {
        size_t len = t->len + (t->primed ? 1 : 0);
        if (len > 32) snprintf(buf, n, "'%.32s...'", c->src + t->off);
        else snprintf(buf, n, "'%.*s'", (int)len, c->src + t->off);
    }
}

/* "expected WHAT, found <the current token>" at the current token. */
int lang_expected(cx *c, const char *what)
{
    char d[64];
    tokdesc(c, &c->t, d, sizeof d);
    return lang_failat(c, c->t.line, c->t.col, "expected %s, found %s", what, d);
}

static int lex_number(cx *c, tok *t)
{
    const char *s = c->src;
    size_t n = c->len, p = c->pos;
    while (p < n && is_digit(s[p])) p++;
    if (p < n && s[p] == '.') {
        p++;
        while (p < n && is_digit(s[p])) p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        size_t q = p + 1;
        if (q < n && (s[q] == '+' || s[q] == '-')) q++;
        if (q < n && is_digit(s[q])) {
            p = q;
            while (p < n && is_digit(s[p])) p++;
        }
    }
    t->len = p - c->pos;
    if (p < n && (is_alpha(s[p]) || s[p] == '.')) {
        size_t e = p;
        while (e < n && (is_alpha(s[e]) || is_digit(s[e]) || s[e] == '.') && e - c->pos < 32) e++;
        return lang_failat(c, t->line, t->col, "malformed number '%.*s': expected a number such as 2, 0.5 or 1e-3 "
                      "(a number cannot run into a name: write 2*H)", (int)(e - c->pos), s + c->pos);
    }
    if (t->len > 64)
        return lang_failat(c, t->line, t->col, "number '%.20s...' is too long: expected at most 64 characters", s + c->pos);
    /* strtod reads the locale's decimal point: put that one in place of '.' */
    char buf[160];
    const char *dp = localeconv()->decimal_point;
    size_t dpl = (dp && dp[0]) ? strlen(dp) : 1, k = 0;
    if (dpl > 8) dpl = 1, dp = ".";
    for (size_t i = 0; i < t->len; i++) {
        if (s[c->pos + i] == '.') {
            memcpy(buf + k, (dp && dp[0]) ? dp : ".", dpl);
            k += dpl;
        } else buf[k++] = s[c->pos + i];
    }
    buf[k] = 0;
    char *end = NULL;
    double v = strtod(buf, &end);
    if (!end || *end != 0)
        return lang_failat(c, t->line, t->col, "malformed number '%.*s': expected a number such as 2, 0.5 or 1e-3",
                      (int)t->len, s + c->pos);
    if (!(v <= FLT_MAX))
        return lang_failat(c, t->line, t->col, "number '%.*s' is out of range: expected at most %g", (int)t->len,
                      s + c->pos, (double)FLT_MAX);
    t->num = v;
    t->type = T_NUM;
    c->pos = p;
    return 0;
}

/* Reads the next token into c->t. Newlines inside parentheses are spaces. */
int lang_lex(cx *c)
{
    const char *s = c->src;
    size_t n = c->len;
    for (;;) {
        while (c->pos < n && (s[c->pos] == ' ' || s[c->pos] == '\t' || s[c->pos] == '\r')) c->pos++;
        if (c->pos < n && s[c->pos] == '#')   /* a comment may hold any byte but NUL (the source is a C string) */
            while (c->pos < n && s[c->pos] != '\n') {
                if (s[c->pos] == 0)
                    return lang_failat(c, c->line, (int)(c->pos - c->lstart) + 1, "unexpected NUL byte in a comment: "
                                  "expected text (the cell's source is kept as a C string)");
                c->pos++;
            }
        if (c->pos < n && s[c->pos] == '\n' && c->paren > 0) {
            c->pos++;
            c->line++;
            c->lstart = c->pos;
            continue;
        }
        break;
    }
    tok *t = &c->t;
    memset(t, 0, sizeof *t);
    t->off = c->pos;
    t->line = c->line;
    t->col = (int)(c->pos - c->lstart) + 1;
    if (c->pos >= n) {
        t->type = T_EOF;
        return 0;
    }
    unsigned char ch = (unsigned char)s[c->pos];
    if (ch == '\n') {
        t->type = T_NL;
        c->pos++;
        c->line++;
        c->lstart = c->pos;
        return 0;
    }
    if (is_alpha(ch)) {
        size_t p = c->pos;
        while (p < n && (is_alpha(s[p]) || is_digit(s[p]))) p++;
        t->type = T_NAME;
        t->len = p - c->pos;
        if (p < n && s[p] == '\'') {
            t->primed = 1;
            p++;
        }
        c->pos = p;
        return 0;
    }
    if (is_digit(ch) || (ch == '.' && c->pos + 1 < n && is_digit(s[c->pos + 1]))) return lex_number(c, t);
    t->len = 1;
    switch (ch) {
    case '+': t->type = T_PLUS; break;
    case '*': t->type = T_STAR; break;
    case '/': t->type = T_SLASH; break;
    case '@': t->type = T_AT; break;
    case ',': t->type = T_COMMA; break;
    case '=': t->type = T_EQ; break;
    case ':': t->type = T_COLON; break;
    case '(': t->type = T_LP; c->paren++; break;
    case ')': t->type = T_RP; if (c->paren > 0) c->paren--; break;
    case '-':
        if (c->pos + 1 < n && s[c->pos + 1] == '>') {
            t->type = T_ARROW;
            t->len = 2;
        } else t->type = T_MINUS;
        break;
    default:
        if (ch >= 0x21 && ch < 0x7f)
            return lang_failat(c, t->line, t->col, "unexpected character '%c': expected a name, a number, an "
                          "operator (+ - * / @), '(', ')', ',', '=' or a comment (#)", ch);
        return lang_failat(c, t->line, t->col, "unexpected byte 0x%02x: a cell is written in ASCII (names, numbers, "
                      "operators, '#' comments)", ch);
    }
    c->pos += t->len;
    return 0;
}

int lang_tok_is(const cx *c, const tok *t, const char *word)
{
    size_t k = strlen(word);
    return t->type == T_NAME && !t->primed && t->len == k && memcmp(c->src + t->off, word, k) == 0;
}
