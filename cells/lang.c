/* The cell language (docs/CELLS.md): a recurrent cell written as text, parsed and
 * checked at run time, and built by a step function that walks the checked program
 * calling the same rc_* builders a C cell calls, in the order the text gives.
 *
 *   source --lex/parse--> nodes, statements, declarations
 *          --check------> every value's kind (constant, vector, batch value) and
 *                         width in H and I; names resolved; how each op is emitted
 *          --freeze-----> lang_prog: one pointer-free block (the cell's user data)
 *   unroll --lang_validate (widths that wait for I)--> lang_step: rc_* calls
 *
 * Parsing and checking use only the C library (build with -DLANG_CHECK_ONLY to get
 * them without the graph code, as the fuzz harness may). */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lang.h"
#ifndef LANG_CHECK_ONLY
#include "cell.h"
#endif

#define L_MAX_NODES 65536   /* expression nodes in one cell */
#define L_MAX_DEPTH 200     /* nesting of one expression */
#define L_MAX_ARGS 64       /* arguments of one call */
#define L_MAX_NAME 47       /* characters of a name (CELL_NAME - 1) */
#define L_MAX_STATES 16     /* CELL_MAX_STATES */
#define L_MAX_COEF ((long long)LANG_MAX_WIDTH)

/* ---- the program ------------------------------------------------------------------ */

/* A width h*H + i*I + c: H the hidden size, I the input size. */
typedef struct lw {
    long long h, i, c;
} lw;

enum { V_NONE = 0, V_SCALAR, V_VEC, V_ROW };   /* value kinds: constant, [w], [B, w] */

enum nkind {
    /* from the parser */
    N_NUM, N_NAME, N_NEW, N_CALL, N_NEG, N_BIN, N_MATMUL,
    /* after checking, names and calls become */
    N_INPUT, N_STATE, N_LET, N_VEC, N_FN, N_MINMAX, N_CONCAT, N_SLICE, N_DROPOUT
};

enum fn {
    FN_SIGMOID, FN_TANH, FN_RELU, FN_SOFTPLUS, FN_ABS, FN_SQRT, FN_EXP, FN_LOG,
    FN_SOFTMAX, FN_LOG_SOFTMAX, FN_ROW_MEAN, FN_ROW_VAR, FN_SUM, FN_MEAN,
    FN_MIN, FN_MAX, FN_CONCAT, FN_SLICE, FN_DROPOUT,
    FN_MATMUL, FN_ADD, FN_SUB, FN_MUL, FN_DIV, FN_SCALE, FN_ONE_MINUS
};

/* How an elementwise node is emitted, and how each operand is adapted first. */
enum { E_FOLD = 0, E_BIN, E_SCALE, E_ONE_MINUS };
enum { A_USE = 0, A_FILL1, A_FILLR, A_EXPAND };   /* as is, rc_fill [1], rc_fill of the
                                                      result's shape, rc_add(zeros, v) */

typedef struct lnode {
    int kind, op;        /* op: '+', '-', '*', '/' (N_BIN); FN_* (N_FN, N_MINMAX) */
    int a, b;            /* operands, -1 when none */
    int arg0, nargs;     /* N_CALL, N_CONCAT: args[arg0 .. arg0 + nargs) */
    int ref;             /* N_STATE, N_NEW: state; N_LET: binding; N_VEC, N_MATMUL: param */
    int name;            /* pool offset of the name (names, calls), or -1 */
    int line, col;       /* where the node's text starts, or its operator */
    int line2, col2;     /* N_MATMUL: the '@' */
    int depth;
    int vk, unk;         /* value kind; unk: a vector parameter of unknown width (yet) */
    int form, ada, adb, swap, defer;
    double num;          /* V_SCALAR: the value; N_DROPOUT: the drop probability */
    lw w;                /* V_VEC, V_ROW: the width */
    lw s0, s1;           /* N_SLICE: start and length */
} lnode;

enum { S_LET, S_SET };
typedef struct lstmt {
    int kind, ref, expr, line, col, defer;
} lstmt;

typedef struct lbind {
    int name, line, col, stmt, uses;
} lbind;

typedef struct lstate {
    int name, line, col;
    int size_expr, size_line, size_col;   /* "state NAME : SIZE", or -1 */
    lw size;
    int set_stmt;                         /* the statement NAME' = ..., or -1 */
} lstate;

enum { P_WEIGHT, P_VECTOR };
enum { I_NONE = 0, I_DEFAULT, I_ZEROS, I_CONST, I_UNIFORM, I_GLOROT, I_ORTHOGONAL };
typedef struct lparam {
    int name, kind;
    int decl_line, decl_col, decl_size;   /* "weight/vector NAME : SIZE" (decl_line 0: none) */
    int use_line, use_col, used;          /* the first use */
    int known;
    lw w;                                 /* vector: its width; weight: its output size */
    int in_known, in_line, in_col;
    lw in;                                /* weight: the width of its input (first use) */
    int init, init_line;
    double init_a;
} lparam;

struct lang_prog {
    size_t size;
    int hidden;
    int file, cell, input;                /* pool offsets */
    int nnodes, nargs, nstmts, nbinds, nstates, nparams;
    size_t npool;
    size_t o_nodes, o_args, o_stmts, o_binds, o_states, o_params, o_pool;
};

#define PROG_ARRAY(type, fn, field)                                                           \
    static inline const type *fn(const lang_prog *p) { return (const type *)(const void *)((const char *)p + p->field); }
PROG_ARRAY(lnode, pnodes, o_nodes)
#ifndef LANG_CHECK_ONLY
PROG_ARRAY(int, pargs, o_args)   /* read only by the step function */
#endif
PROG_ARRAY(lstmt, pstmts, o_stmts)
PROG_ARRAY(lstate, pstates, o_states)
PROG_ARRAY(lparam, pparams, o_params)
PROG_ARRAY(char, ppool, o_pool)

/* ---- functions ----------------------------------------------------------------------- */

typedef struct fninfo {
    const char *name;
    int fn, arity;   /* -1: one or more */
    const char *args;
} fninfo;

static const fninfo FNS[] = {
    { "sigmoid", FN_SIGMOID, 1, "a" },         { "tanh", FN_TANH, 1, "a" },
    { "relu", FN_RELU, 1, "a" },               { "softplus", FN_SOFTPLUS, 1, "a" },
    { "abs", FN_ABS, 1, "a" },                 { "sqrt", FN_SQRT, 1, "a" },
    { "exp", FN_EXP, 1, "a" },                 { "log", FN_LOG, 1, "a" },
    { "softmax", FN_SOFTMAX, 1, "a" },         { "log_softmax", FN_LOG_SOFTMAX, 1, "a" },
    { "row_mean", FN_ROW_MEAN, 1, "a" },       { "row_var", FN_ROW_VAR, 1, "a" },
    { "sum", FN_SUM, 1, "a" },                 { "mean", FN_MEAN, 1, "a" },
    { "min", FN_MIN, 2, "a, b" },              { "max", FN_MAX, 2, "a, b" },
    { "minimum", FN_MIN, 2, "a, b" },          { "maximum", FN_MAX, 2, "a, b" },
    { "concat", FN_CONCAT, -1, "a, b, ..." },  { "slice", FN_SLICE, 3, "a, start, len" },
    { "dropout", FN_DROPOUT, 2, "a, p" },      { "matmul", FN_MATMUL, 2, "W, v" },
    { "add", FN_ADD, 2, "a, b" },              { "sub", FN_SUB, 2, "a, b" },
    { "mul", FN_MUL, 2, "a, b" },              { "div", FN_DIV, 2, "a, b" },
    { "scale", FN_SCALE, 2, "a, c" },          { "one_minus", FN_ONE_MINUS, 1, "a" },
};
#define NFNS ((int)(sizeof FNS / sizeof FNS[0]))

/* Ops of the op table that belong to the model, not to a cell. */
static const struct {
    const char *name, *why;
} MODEL_LEVEL[] = {
    { "embedding", "token embedding is model-level: a model embeds tokens before its first layer "
                   "(rc_model_opts.vocab)" },
    { "softmax_xent", "losses are model-level: the model's head adds the loss (rc_model_opts.head)" },
    { "sigmoid_bce", "losses are model-level: the model's head adds the loss (rc_model_opts.head)" },
    { "mse", "losses are model-level: the model's head adds the loss (rc_model_opts.head)" },
    { "row_slice", "it works on the batch/time rows: rc_unroll uses it to cut the sequence into steps, "
                   "and a cell sees one step" },
    { "row_concat", "it works on the batch/time rows: rc_unroll uses it to stack the steps' outputs, "
                    "and a cell sees one step" },
};
#define NMODEL ((int)(sizeof MODEL_LEVEL / sizeof MODEL_LEVEL[0]))

static const char *const KEYWORDS[] = { "cell", "hidden", "weight", "vector", "state", "init" };
#define NKEYWORDS ((int)(sizeof KEYWORDS / sizeof KEYWORDS[0]))

static const fninfo *find_fn(const char *name)
{
    for (int k = 0; k < NFNS; k++)
        if (strcmp(FNS[k].name, name) == 0) return &FNS[k];
    return NULL;
}

static const char *model_level(const char *name)
{
    for (int k = 0; k < NMODEL; k++)
        if (strcmp(MODEL_LEVEL[k].name, name) == 0) return MODEL_LEVEL[k].why;
    return NULL;
}

static int is_keyword(const char *name)
{
    for (int k = 0; k < NKEYWORDS; k++)
        if (strcmp(KEYWORDS[k], name) == 0) return 1;
    return 0;
}

/* ---- the compile context ---------------------------------------------------------- */

enum { T_EOF, T_NL, T_NAME, T_NUM, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_AT, T_LP, T_RP, T_COMMA, T_EQ, T_COLON, T_ARROW };

typedef struct tok {
    int type;
    size_t off, len;   /* the text (a name without its prime) */
    int line, col;
    double num;
    int primed;
} tok;

typedef struct linit {
    int name, line, col, kind;
    double a;
} linit;

typedef struct cx {
    const char *src, *file;
    size_t len, pos, lstart;
    int line, paren, rdepth;
    tok t;
    char *err;
    size_t errlen;
    int failed;
    lnode *nodes;
    int nn, capn;
    int *args;
    int na, capa;
    lstmt *stmts;
    int ns, caps;
    lbind *binds;
    int nb, capb;
    lstate states[L_MAX_STATES];
    int nst;
    lparam *params;
    int np, capp;
    linit *inits;
    int ni, capi;
    char *pool;
    size_t npool, cappool;
    int cell, input, in_line, in_col, head_line, head_col;
    int hidden, hidden_line, override;
    long long H;
    int cur;   /* the statement being checked */
} cx;

static int vfailat(cx *c, int line, int col, const char *fmt, va_list ap)
{
    if (c->failed) return -1;
    c->failed = 1;
    if (!c->err || c->errlen == 0) return -1;
    int k = snprintf(c->err, c->errlen, "%s:%d:%d: ", c->file, line, col);
    if (k >= 0 && (size_t)k < c->errlen) vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    return -1;
}

static int failat(cx *c, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int failat(cx *c, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfailat(c, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

static int nomem(cx *c) { return failat(c, c->t.line, c->t.col, "out of memory"); }

/* Grows an array to hold `need` elements; NULL when memory is short (the old block stays). */
static void *grow(void *p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return p;
    int n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *q = realloc(p, (size_t)n * elem);
    if (q) *cap = n;
    return q;
}

/* Appends a NUL-terminated copy of s[0..n) to the pool; its offset, or -1. */
static int pool_add(cx *c, const char *s, size_t n)
{
    if (c->npool + n + 1 > c->cappool) {
        size_t cap = c->cappool ? c->cappool : 256;
        while (cap < c->npool + n + 1) cap *= 2;
        char *q = realloc(c->pool, cap);
        if (!q) return nomem(c);
        c->pool = q;
        c->cappool = cap;
    }
    int off = (int)c->npool;
    memcpy(c->pool + c->npool, s, n);
    c->pool[c->npool + n] = 0;
    c->npool += n + 1;
    return off;
}

#define STR(off) (c->pool + (off))

/* ---- widths ------------------------------------------------------------------------ */

static lw wconst(long long v) { lw w = { 0, 0, v }; return w; }
static long long wev(lw w, long long H, long long I) { return w.h * H + w.i * I + w.c; }
static int wbig(lw w) { return llabs(w.h) > L_MAX_COEF || llabs(w.i) > L_MAX_COEF || llabs(w.c) > L_MAX_COEF; }
static int wfixed(lw w) { return w.i == 0; }   /* known once H is (always, in a checked cell) */
static int wone(lw w, long long H) { return w.i == 0 && w.h * H + w.c == 1; }

enum { R_EQUAL, R_DEFER, R_NEVER };
/* Whether widths a and b are equal: always, for one input size I only (*iv), never. */
static int wrel(lw a, lw b, long long H, long long *iv)
{
    long long di = a.i - b.i, dc = (a.h - b.h) * H + (a.c - b.c);
    if (di == 0) return dc == 0 ? R_EQUAL : R_NEVER;
    if ((-dc) % di != 0 || -dc / di < 1) return R_NEVER;
    if (iv) *iv = -dc / di;
    return R_DEFER;
}

/* "2*H + I - 1" */
static void wfmt(lw w, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    const long long co[3] = { w.h, w.i, w.c };
    const char *sym[3] = { "H", "I", "" };
    for (int t = 0; t < 3; t++) {
        long long v = co[t];
        if (v == 0 || k >= n) continue;
        const char *sign = v < 0 ? (k ? " - " : "-") : (k ? " + " : "");
        long long m = llabs(v);
        int r;
        if (t < 2 && m == 1) r = snprintf(buf + k, n - k, "%s%s", sign, sym[t]);
        else if (t < 2) r = snprintf(buf + k, n - k, "%s%lld*%s", sign, m, sym[t]);
        else r = snprintf(buf + k, n - k, "%s%lld", sign, m);
        if (r > 0) k += (size_t)r;
    }
    if (k == 0) snprintf(buf, n, "0");
}

/* "2*H (= 8)", "I", "3" */
static void wdesc(lw w, long long H, char *buf, size_t n)
{
    char f[96];
    wfmt(w, f, sizeof f);
    if (w.i == 0 && w.h != 0) snprintf(buf, n, "%.96s (= %lld)", f, w.h * H + w.c);
    else snprintf(buf, n, "%.96s", f);
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
static int expected(cx *c, const char *what)
{
    char d[64];
    tokdesc(c, &c->t, d, sizeof d);
    return failat(c, c->t.line, c->t.col, "expected %s, found %s", what, d);
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
        return failat(c, t->line, t->col, "malformed number '%.*s': expected a number such as 2, 0.5 or 1e-3 "
                      "(a number cannot run into a name: write 2*H)", (int)(e - c->pos), s + c->pos);
    }
    if (t->len > 64)
        return failat(c, t->line, t->col, "number '%.20s...' is too long: expected at most 64 characters", s + c->pos);
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
        return failat(c, t->line, t->col, "malformed number '%.*s': expected a number such as 2, 0.5 or 1e-3",
                      (int)t->len, s + c->pos);
    if (!(v <= FLT_MAX))
        return failat(c, t->line, t->col, "number '%.*s' is out of range: expected at most %g", (int)t->len,
                      s + c->pos, (double)FLT_MAX);
    t->num = v;
    t->type = T_NUM;
    c->pos = p;
    return 0;
}

/* Reads the next token into c->t. Newlines inside parentheses are spaces. */
static int lex(cx *c)
{
    const char *s = c->src;
    size_t n = c->len;
    for (;;) {
        while (c->pos < n && (s[c->pos] == ' ' || s[c->pos] == '\t' || s[c->pos] == '\r')) c->pos++;
        if (c->pos < n && s[c->pos] == '#')   /* a comment may hold any byte but NUL (the source is a C string) */
            while (c->pos < n && s[c->pos] != '\n') {
                if (s[c->pos] == 0)
                    return failat(c, c->line, (int)(c->pos - c->lstart) + 1, "unexpected NUL byte in a comment: "
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
            return failat(c, t->line, t->col, "unexpected character '%c': expected a name, a number, an "
                          "operator (+ - * / @), '(', ')', ',', '=' or a comment (#)", ch);
        return failat(c, t->line, t->col, "unexpected byte 0x%02x: a cell is written in ASCII (names, numbers, "
                      "operators, '#' comments)", ch);
    }
    c->pos += t->len;
    return 0;
}

static int tok_is(const cx *c, const tok *t, const char *word)
{
    size_t k = strlen(word);
    return t->type == T_NAME && !t->primed && t->len == k && memcmp(c->src + t->off, word, k) == 0;
}

/* ---- parser ------------------------------------------------------------------------ */

static int p_expr(cx *c);
static int p_unary(cx *c);

static int mknode(cx *c, int kind, int line, int col)
{
    if (c->nn >= L_MAX_NODES)
        return failat(c, line, col, "the cell is too large: expected at most %d expression nodes", L_MAX_NODES);
    lnode *q = grow(c->nodes, &c->capn, c->nn + 1, sizeof *c->nodes);
    if (!q) return nomem(c);
    c->nodes = q;
    lnode *n = &c->nodes[c->nn];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->a = n->b = n->ref = n->name = -1;
    n->line = line;
    n->col = col;
    n->depth = 1;
    return c->nn++;
}

static int set_depth(cx *c, int n, int d)
{
    if (d > L_MAX_DEPTH)
        return failat(c, c->nodes[n].line, c->nodes[n].col,
                      "expression too deep: expected at most %d nested operations", L_MAX_DEPTH);
    c->nodes[n].depth = d;
    return n;
}

static int name_too_long(cx *c, const tok *t)
{
    return failat(c, t->line, t->col, "name '%.20s...' is too long: expected at most %d characters", c->src + t->off,
                  L_MAX_NAME);
}

/* name(args...) with the name in t and c->t at '('. */
static int p_call(cx *c, const tok *t)
{
    int args[L_MAX_ARGS], na = 0, depth = 0;
    if (lex(c)) return -1;
    if (c->t.type != T_RP)
        for (;;) {
            if (na == L_MAX_ARGS)
                return failat(c, c->t.line, c->t.col, "too many arguments in %.*s(...): expected at most %d",
                              (int)t->len, c->src + t->off, L_MAX_ARGS);
            int e = p_expr(c);
            if (e < 0) return -1;
            args[na++] = e;
            if (c->nodes[e].depth > depth) depth = c->nodes[e].depth;
            if (c->t.type == T_COMMA) {
                if (lex(c)) return -1;
                continue;
            }
            if (c->t.type == T_RP) break;
            char what[96];
            snprintf(what, sizeof what, "',' or ')' in the arguments of %.*s(...)", (int)t->len, c->src + t->off);
            return expected(c, what);
        }
    if (lex(c)) return -1;
    int n = mknode(c, N_CALL, t->line, t->col);
    if (n < 0) return -1;
    if (na > 0) {
        int *q = grow(c->args, &c->capa, c->na + na, sizeof *c->args);
        if (!q) return nomem(c);
        c->args = q;
        memcpy(c->args + c->na, args, (size_t)na * sizeof *args);
    }
    int nm = pool_add(c, c->src + t->off, t->len);
    if (nm < 0) return -1;
    c->nodes[n].name = nm;
    c->nodes[n].arg0 = c->na;
    c->nodes[n].nargs = na;
    c->na += na;
    return set_depth(c, n, depth + 1);
}

static int p_primary(cx *c)
{
    tok t = c->t;
    if (t.type == T_NUM) {
        int n = mknode(c, N_NUM, t.line, t.col);
        if (n < 0) return -1;
        c->nodes[n].num = t.num;
        c->nodes[n].vk = V_SCALAR;
        return lex(c) ? -1 : n;
    }
    if (t.type == T_NAME) {
        if (t.len > L_MAX_NAME) return name_too_long(c, &t);
        if (lex(c)) return -1;
        if (c->t.type == T_LP) {
            if (t.primed)
                return failat(c, t.line, t.col, "'%.*s'' is a state's new value, not a function: expected an "
                              "operator between it and '('", (int)t.len, c->src + t.off);
            return p_call(c, &t);
        }
        int n = mknode(c, t.primed ? N_NEW : N_NAME, t.line, t.col);
        if (n < 0) return -1;
        int nm = pool_add(c, c->src + t.off, t.len);
        if (nm < 0) return -1;
        c->nodes[n].name = nm;
        return n;
    }
    if (t.type == T_LP) {
        if (lex(c)) return -1;
        int e = p_expr(c);
        if (e < 0) return -1;
        if (c->t.type != T_RP) {
            char what[64];
            snprintf(what, sizeof what, "')' to close the '(' at %d:%d", t.line, t.col);
            return expected(c, what);
        }
        return lex(c) ? -1 : e;
    }
    return expected(c, "an expression (a name, a number, a function call or '(')");
}

/* primary [@ unary]: W @ v, right-associative, binding tighter than * and /. */
static int p_postfix(cx *c)
{
    int a = p_primary(c);
    if (a < 0 || c->t.type != T_AT) return a;
    tok at = c->t;
    lnode *w = &c->nodes[a];
    if (w->kind != N_NAME) {
        const char *what = w->kind == N_NEW ? "a state's new value" : w->kind == N_NUM ? "a number"
                         : w->kind == N_CALL ? "a function call" : "an expression";
        return failat(c, at.line, at.col, "the left side of '@' is %s: expected a weight's name, as in W @ v",
                      what);
    }
    if (lex(c)) return -1;
    int v = p_unary(c);
    if (v < 0) return -1;
    w = &c->nodes[a];
    w->kind = N_MATMUL;
    w->a = v;
    w->line2 = at.line;
    w->col2 = at.col;
    return set_depth(c, a, c->nodes[v].depth + 1);
}

static int p_unary(cx *c)
{
    if (c->t.type != T_MINUS) return p_postfix(c);
    tok t = c->t;
    if (++c->rdepth > L_MAX_DEPTH)
        return failat(c, t.line, t.col, "expression too deep: expected at most %d nested operations", L_MAX_DEPTH);
    if (lex(c)) return -1;
    int a = p_unary(c);
    c->rdepth--;
    if (a < 0) return -1;
    int n = mknode(c, N_NEG, t.line, t.col);
    if (n < 0) return -1;
    c->nodes[n].a = a;
    return set_depth(c, n, c->nodes[a].depth + 1);
}

static int mkbin(cx *c, const tok *op, int a, int b)
{
    int n = mknode(c, N_BIN, op->line, op->col);
    if (n < 0) return -1;
    lnode *q = &c->nodes[n];
    q->op = op->type == T_PLUS ? '+' : op->type == T_MINUS ? '-' : op->type == T_STAR ? '*' : '/';
    q->a = a;
    q->b = b;
    int d = c->nodes[a].depth > c->nodes[b].depth ? c->nodes[a].depth : c->nodes[b].depth;
    return set_depth(c, n, d + 1);
}

static int p_term(cx *c)
{
    int a = p_unary(c);
    while (a >= 0 && (c->t.type == T_STAR || c->t.type == T_SLASH)) {
        tok op = c->t;
        if (lex(c)) return -1;
        int b = p_unary(c);
        if (b < 0) return -1;
        a = mkbin(c, &op, a, b);
    }
    return a;
}

static int p_expr(cx *c)
{
    if (++c->rdepth > L_MAX_DEPTH)
        return failat(c, c->t.line, c->t.col, "expression too deep: expected at most %d nested operations",
                      L_MAX_DEPTH);
    int a = p_term(c);
    while (a >= 0 && (c->t.type == T_PLUS || c->t.type == T_MINUS)) {
        tok op = c->t;
        if (lex(c)) return -1;
        int b = p_term(c);
        if (b < 0) return -1;
        a = mkbin(c, &op, a, b);
    }
    c->rdepth--;
    return a;
}

static int end_of_line(cx *c, const char *after)
{
    if (c->t.type == T_NL || c->t.type == T_EOF) return lex(c);
    char what[256];
    snprintf(what, sizeof what, "the end of the line after %.200s", after);
    return expected(c, what);
}

static int find_state(const cx *c, const char *name)
{
    for (int k = 0; k < c->nst; k++)
        if (strcmp(STR(c->states[k].name), name) == 0) return k;
    return -1;
}

static int find_bind(const cx *c, const char *name)
{
    for (int k = 0; k < c->nb; k++)
        if (strcmp(STR(c->binds[k].name), name) == 0) return k;
    return -1;
}

static int find_param(const cx *c, const char *name)
{
    for (int k = 0; k < c->np; k++)
        if (strcmp(STR(c->params[k].name), name) == 0) return k;
    return -1;
}

/* A name the text gives to something (cell, input, state, binding, parameter): a
 * plain identifier that is no keyword, no size name and no function. */
static int check_new_name(cx *c, const tok *t, const char *what)
{
    char nm[L_MAX_NAME + 1];
    if (t->type != T_NAME) return expected(c, what);
    if (t->len > L_MAX_NAME) return name_too_long(c, t);
    memcpy(nm, c->src + t->off, t->len);
    nm[t->len] = 0;
    if (t->primed)
        return failat(c, t->line, t->col, "'%s'' here: expected %s without a prime (' marks a state's new value)",
                      nm, what);
    if (is_keyword(nm))
        return failat(c, t->line, t->col, "'%s' is a keyword: expected %s (any other name)", nm, what);
    if (strcmp(nm, "H") == 0 || strcmp(nm, "I") == 0)
        return failat(c, t->line, t->col, "'%s' is reserved for the %s size: expected %s (any other name)", nm,
                      nm[0] == 'H' ? "hidden" : "input", what);
    if (find_fn(nm) || model_level(nm))
        return failat(c, t->line, t->col, "'%s' is a function name: expected %s (any other name)", nm, what);
    return 0;
}

/* Adds a parameter record named by the pool string at `name`; its index or -1.
 * (The name is not copied: the pool does not move while expressions are checked.) */
static int add_param(cx *c, int name, int kind)
{
    lparam *q = grow(c->params, &c->capp, c->np + 1, sizeof *c->params);
    if (!q) return nomem(c);
    c->params = q;
    lparam *p = &c->params[c->np];
    memset(p, 0, sizeof *p);
    p->name = name;
    p->kind = kind;
    p->decl_size = -1;
    return c->np++;
}

static int p_header(cx *c)
{
    while (c->t.type == T_NL)
        if (lex(c)) return -1;
    if (!tok_is(c, &c->t, "cell"))
        return expected(c, "the header 'cell NAME (INPUT) -> STATE, ...' as the first line");
    c->head_line = c->t.line;
    c->head_col = c->t.col;
    if (lex(c)) return -1;
    if (check_new_name(c, &c->t, "the cell's name after 'cell'")) return -1;
    if ((c->cell = pool_add(c, c->src + c->t.off, c->t.len)) < 0 || lex(c)) return -1;
    if (c->t.type != T_LP) return expected(c, "'(' and the input's name after 'cell NAME'");
    if (lex(c)) return -1;
    if (check_new_name(c, &c->t, "the input's name in 'cell NAME (INPUT)'")) return -1;
    c->in_line = c->t.line;
    c->in_col = c->t.col;
    if ((c->input = pool_add(c, c->src + c->t.off, c->t.len)) < 0 || lex(c)) return -1;
    if (c->t.type != T_RP) return expected(c, "')' after the input's name (a cell has one input)");
    if (lex(c)) return -1;
    if (c->t.type != T_ARROW) return expected(c, "'->' and the state names after 'cell NAME (INPUT)'");
    if (lex(c)) return -1;
    for (;;) {
        tok t = c->t;
        if (check_new_name(c, &t, "a state's name")) return -1;
        char nm[L_MAX_NAME + 1];
        memcpy(nm, c->src + t.off, t.len);
        nm[t.len] = 0;
        if (strcmp(nm, STR(c->input)) == 0)
            return failat(c, t.line, t.col, "'%s' is the input's name: expected a state name other than the input",
                          nm);
        int k = find_state(c, nm);
        if (k >= 0)
            return failat(c, t.line, t.col, "state '%s' is declared twice in the header (first at %d:%d): expected "
                          "distinct state names", nm, c->states[k].line, c->states[k].col);
        if (c->nst == L_MAX_STATES)
            return failat(c, t.line, t.col, "too many states: expected at most %d", L_MAX_STATES);
        lstate *s = &c->states[c->nst];
        memset(s, 0, sizeof *s);
        if ((s->name = pool_add(c, nm, t.len)) < 0) return -1;
        s->line = t.line;
        s->col = t.col;
        s->size_expr = -1;
        s->set_stmt = -1;
        c->nst++;
        if (lex(c)) return -1;
        if (c->t.type != T_COMMA) break;
        if (lex(c)) return -1;
    }
    return end_of_line(c, "the header's states (separate them with ',')");
}

/* hidden N */
static int p_hidden(cx *c, const tok *kw)
{
    if (c->hidden_line)
        return failat(c, kw->line, kw->col, "a second 'hidden' line: expected one (the first is on line %d)",
                      c->hidden_line);
    if (lex(c)) return -1;
    if (c->t.type != T_NUM || c->t.num != floor(c->t.num) || c->t.num < 1 || c->t.num > LANG_MAX_WIDTH)
        return expected(c, "the hidden size after 'hidden' (a whole number from 1 to 16777216)");
    c->hidden = (int)c->t.num;
    c->hidden_line = kw->line;
    if (lex(c)) return -1;
    return end_of_line(c, "'hidden N'");
}

/* weight NAME : SIZE, vector NAME : SIZE, state NAME : SIZE */
static int p_decl(cx *c, const tok *kw, const char *word)
{
    if (lex(c)) return -1;
    tok t = c->t;
    char what[128], nm[L_MAX_NAME + 1];
    snprintf(what, sizeof what, "a name after '%s'", word);
    if (check_new_name(c, &t, what)) return -1;
    memcpy(nm, c->src + t.off, t.len);
    nm[t.len] = 0;
    if (lex(c)) return -1;
    if (c->t.type != T_COLON) {
        snprintf(what, sizeof what, "':' and a size after '%s %s'", word, nm);
        return expected(c, what);
    }
    if (lex(c)) return -1;
    int size = p_expr(c);
    if (size < 0) return -1;
    if (word[0] == 's') {
        int k = find_state(c, nm);
        if (k < 0)
            return failat(c, t.line, t.col, "'%s' is not a state of the cell: expected one of the header's states",
                          nm);
        if (c->states[k].size_expr >= 0)
            return failat(c, kw->line, kw->col, "the size of state '%s' is given twice (first on line %d): "
                          "expected one 'state %s : SIZE' line", nm, c->states[k].size_line, nm);
        c->states[k].size_expr = size;
        c->states[k].size_line = kw->line;
        c->states[k].size_col = kw->col;
    } else {
        int k = find_param(c, nm);
        if (k >= 0)
            return failat(c, t.line, t.col, "'%s' is declared twice (first on line %d): expected one declaration",
                          nm, c->params[k].decl_line);
        if (strcmp(nm, STR(c->input)) == 0 || find_state(c, nm) >= 0)
            return failat(c, t.line, t.col, "'%s' is the cell's %s: expected a parameter name", nm,
                          find_state(c, nm) >= 0 ? "state" : "input");
        int off = pool_add(c, nm, t.len);
        if (off < 0 || (k = add_param(c, off, word[0] == 'w' ? P_WEIGHT : P_VECTOR)) < 0) return -1;
        c->params[k].decl_line = t.line;
        c->params[k].decl_col = t.col;
        c->params[k].decl_size = size;
    }
    snprintf(what, sizeof what, "'%s %s : SIZE'", word, nm);
    return end_of_line(c, what);
}

/* init NAME = [const] V | zeros | uniform A | glorot | orthogonal [A] | default */
static int p_number(cx *c, double *v, const char *what)
{
    int neg = 0;
    if (c->t.type == T_MINUS) {
        neg = 1;
        if (lex(c)) return -1;
    }
    if (c->t.type != T_NUM) return expected(c, what);
    *v = neg ? -c->t.num : c->t.num;
    return lex(c);
}

static int p_init(cx *c, const tok *kw)
{
    if (lex(c)) return -1;
    tok t = c->t;
    if (t.type != T_NAME || t.primed) return expected(c, "a parameter's name after 'init'");
    if (t.len > L_MAX_NAME) return name_too_long(c, &t);
    if (lex(c)) return -1;
    if (c->t.type != T_EQ) return expected(c, "'=' after 'init NAME'");
    if (lex(c)) return -1;
    linit in = { .line = t.line, .col = t.col, .kind = I_CONST };
    const char *spec = "a number, or const V, zeros, uniform A, glorot, orthogonal [A] or default after 'init NAME ='";
    if (c->t.type == T_NUM || c->t.type == T_MINUS) {
        if (p_number(c, &in.a, spec)) return -1;
    } else if (tok_is(c, &c->t, "const") || tok_is(c, &c->t, "uniform")) {
        in.kind = tok_is(c, &c->t, "const") ? I_CONST : I_UNIFORM;
        if (lex(c) || p_number(c, &in.a, in.kind == I_CONST ? "a number after 'const'" : "a number after 'uniform'"))
            return -1;
    } else if (tok_is(c, &c->t, "orthogonal")) {
        in.kind = I_ORTHOGONAL;
        if (lex(c)) return -1;
        if ((c->t.type == T_NUM || c->t.type == T_MINUS) && p_number(c, &in.a, "a gain after 'orthogonal'"))
            return -1;
    } else if (tok_is(c, &c->t, "zeros") || tok_is(c, &c->t, "glorot") || tok_is(c, &c->t, "default")) {
        in.kind = tok_is(c, &c->t, "zeros") ? I_ZEROS : tok_is(c, &c->t, "glorot") ? I_GLOROT : I_DEFAULT;
        if (lex(c)) return -1;
    } else return expected(c, spec);
    (void)kw;
    if ((in.name = pool_add(c, c->src + t.off, t.len)) < 0) return -1;
    linit *q = grow(c->inits, &c->capi, c->ni + 1, sizeof *c->inits);
    if (!q) return nomem(c);
    c->inits = q;
    c->inits[c->ni++] = in;
    return end_of_line(c, "'init NAME = ...'");
}

/* NAME = expr, or STATE' = expr */
static int p_assign(cx *c)
{
    tok t = c->t;
    if (t.len > L_MAX_NAME) return name_too_long(c, &t);
    char nm[L_MAX_NAME + 1];
    memcpy(nm, c->src + t.off, t.len);
    nm[t.len] = 0;
    if (lex(c)) return -1;
    if (c->t.type != T_EQ) {
        char what[128];
        snprintf(what, sizeof what, "'=' after '%s%s' (a line is 'name = expression' or \"state' = expression\")",
                 nm, t.primed ? "'" : "");
        return expected(c, what);
    }
    lstmt st = { .line = t.line, .col = t.col, .defer = 0 };
    if (t.primed) {
        int k = find_state(c, nm);
        if (k < 0)
            return failat(c, t.line, t.col, "'%s'' gives a new value, but '%s' is not a state: expected one of the "
                          "header's states, or 'name = ...' for a binding", nm, nm);
        if (c->states[k].set_stmt >= 0)
            return failat(c, t.line, t.col, "state '%s' is assigned twice: expected one line %s' = ... (the first "
                          "is on line %d)", nm, nm, c->stmts[c->states[k].set_stmt].line);
        st.kind = S_SET;
        st.ref = k;
        c->states[k].set_stmt = c->ns;
    } else {
        if (find_state(c, nm) >= 0)
            return failat(c, t.line, t.col, "'%s' is a state: its new value is written %s' = ...", nm, nm);
        if (strcmp(nm, STR(c->input)) == 0)
            return failat(c, t.line, t.col, "'%s' is the cell's input and cannot be bound: expected another name",
                          nm);
        if (check_new_name(c, &t, "a binding's name")) return -1;
        int k = find_bind(c, nm);
        if (k >= 0)
            return failat(c, t.line, t.col, "name '%s' is bound twice: expected one binding (the first is on line "
                          "%d)", nm, c->binds[k].line);
        lbind *q = grow(c->binds, &c->capb, c->nb + 1, sizeof *c->binds);
        if (!q) return nomem(c);
        c->binds = q;
        lbind *b = &c->binds[c->nb];
        memset(b, 0, sizeof *b);
        if ((b->name = pool_add(c, nm, t.len)) < 0) return -1;
        b->line = t.line;
        b->col = t.col;
        b->stmt = c->ns;
        st.kind = S_LET;
        st.ref = c->nb++;
    }
    if (lex(c)) return -1;
    if ((st.expr = p_expr(c)) < 0) return -1;
    lstmt *q = grow(c->stmts, &c->caps, c->ns + 1, sizeof *c->stmts);
    if (!q) return nomem(c);
    c->stmts = q;
    c->stmts[c->ns++] = st;
    char what[80];
    snprintf(what, sizeof what, "the expression of '%s%s'", nm, t.primed ? "'" : "");
    return end_of_line(c, what);
}

static int p_file(cx *c)
{
    if (lex(c) || p_header(c)) return -1;
    for (;;) {
        while (c->t.type == T_NL)
            if (lex(c)) return -1;
        if (c->t.type == T_EOF) return 0;
        tok kw = c->t;
        int r;
        if (kw.type != T_NAME)
            return expected(c, "a line 'name = expression', \"state' = expression\" or a declaration (hidden, "
                            "weight, vector, state, init)");
        if (tok_is(c, &kw, "hidden")) r = p_hidden(c, &kw);
        else if (tok_is(c, &kw, "weight")) r = p_decl(c, &kw, "weight");
        else if (tok_is(c, &kw, "vector")) r = p_decl(c, &kw, "vector");
        else if (tok_is(c, &kw, "state")) r = p_decl(c, &kw, "state");
        else if (tok_is(c, &kw, "init")) r = p_init(c, &kw);
        else if (tok_is(c, &kw, "cell"))
            r = failat(c, kw.line, kw.col, "a second 'cell' header: expected one cell per text");
        else r = p_assign(c);
        if (r) return -1;
    }
}

/* ---- checker ------------------------------------------------------------------------ */

#define ND(i) (&c->nodes[(i)])

/* Levenshtein distance of two short names, for "did you mean" hints. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    int row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

static void consider(const char *name, const char *cand, const char **best, int *bd)
{
    int d = edit_distance(name, cand);
    size_t longer = strlen(name) > strlen(cand) ? strlen(name) : strlen(cand);
    if (d < *bd && d <= 2 && (size_t)d < longer && d < (int)strlen(cand) + 1) {
        *bd = d;
        *best = cand;
    }
}

/* " (did you mean 'x'?)" for a name among the values in scope, or "". */
static void name_hint(const cx *c, const char *name, char *buf, size_t n)
{
    const char *best = NULL;
    int bd = 3;
    consider(name, STR(c->input), &best, &bd);
    for (int k = 0; k < c->nst; k++) consider(name, STR(c->states[k].name), &best, &bd);
    for (int k = 0; k < c->nb; k++)
        if (c->binds[k].stmt < c->cur) consider(name, STR(c->binds[k].name), &best, &bd);
    if (best) snprintf(buf, n, " (did you mean '%s'?)", best);
    else buf[0] = 0;
}

static int cant_infer(cx *c, int n)
{
    const char *nm = STR(c->params[ND(n)->ref].name);
    char hint[80];
    name_hint(c, nm, hint, sizeof hint);
    return failat(c, ND(n)->line, ND(n)->col,
                  "cannot infer the width of '%s'%s: it is not the input, a state or an earlier binding, so it "
                  "names a vector parameter, whose width comes from the value it meets in + - * / min max; "
                  "expected it next to a value of known width (as in 'W @ x + %s'), or a declaration "
                  "'vector %s : SIZE'", nm, hint, nm, nm);
}

/* Whether n is a vector parameter of unknown width; a use whose parameter got its
 * width from another use meanwhile takes that width. */
static int is_unk(cx *c, int n)
{
    lnode *q = ND(n);
    if (q->unk && c->params[q->ref].known) {
        q->w = c->params[q->ref].w;
        q->unk = 0;
    }
    return q->unk;
}

/* A child that must be a value of known width (not a lone vector parameter of unknown width). */
static int need_known(cx *c, int n) { return is_unk(c, n) ? cant_infer(c, n) : 0; }

static const char *vk_name(int vk)
{
    return vk == V_SCALAR ? "a constant" : vk == V_VEC ? "a vector (no batch axis)" : "a batch value";
}

/* A non-constant operand of a function. */
static int need_tensor(cx *c, int n, const char *fn)
{
    if (need_known(c, n)) return -1;
    if (ND(n)->vk == V_SCALAR)
        return failat(c, ND(n)->line, ND(n)->col, "%s(...) of a constant: expected a batch value or a vector", fn);
    return 0;
}

static int fold_ok(cx *c, int n, double v)
{
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return failat(c, ND(n)->line, ND(n)->col, "this constant expression is %g: expected a finite value "
                      "within float range (a division by zero?)", v);
    ND(n)->vk = V_SCALAR;
    ND(n)->num = v;
    ND(n)->form = E_FOLD;
    return 0;
}

static int size_eval(cx *c, int n, int allow_i, lw *out);

static int wcheck(cx *c, int n, lw w)
{
    if (wbig(w))
        return failat(c, ND(n)->line, ND(n)->col, "a width here is too large: expected coefficients of H and I "
                      "and constants up to %lld", L_MAX_COEF);
    if (wfixed(w)) {
        long long v = wev(w, c->H, 0);
        if (v < 1 || v > LANG_MAX_WIDTH) {
            char d[160];
            wdesc(w, c->H, d, sizeof d);
            return failat(c, ND(n)->line, ND(n)->col, "a value here would be %s wide: expected a width from 1 to "
                          "%d", d, LANG_MAX_WIDTH);
        }
    }
    return 0;
}

static void infer(cx *c, int n, lw w)
{
    lparam *p = &c->params[ND(n)->ref];
    p->known = 1;
    p->w = w;
    ND(n)->w = w;
    ND(n)->unk = 0;
}

/* The broadcast of two non-constant operands: the result's kind and width, and
 * whether each operand already has that shape. */
static int bcast(cx *c, int n, const char *opname, int *isr_a, int *isr_b)
{
    lnode *A = ND(ND(n)->a), *B = ND(ND(n)->b), *r = ND(n);
    int a1 = wone(A->w, c->H), b1 = wone(B->w, c->H);
    r->vk = (A->vk == V_ROW || B->vk == V_ROW) ? V_ROW : V_VEC;
    r->defer = 0;
    if (a1 && !b1) {
        r->w = B->w;
        *isr_a = 0;
        *isr_b = B->vk == r->vk;
    } else if (b1 && !a1) {
        r->w = A->w;
        *isr_a = A->vk == r->vk;
        *isr_b = 0;
    } else if (a1 && b1) {
        r->w = wconst(1);
        *isr_a = A->vk == r->vk;
        *isr_b = B->vk == r->vk;
    } else {
        int rel = wrel(A->w, B->w, c->H, NULL);
        if (rel == R_NEVER) {
            char da[160], db[160];
            wdesc(A->w, c->H, da, sizeof da);
            wdesc(B->w, c->H, db, sizeof db);
            return failat(c, r->line, r->col, "the widths of the two sides of %s differ: the left side is %s wide "
                          "and the right side %s; expected equal widths (or a side of width 1, or a constant)",
                          opname, da, db);
        }
        r->defer = rel == R_DEFER;
        /* a width without I reads better in messages and names the same size */
        r->w = (rel == R_DEFER && !wfixed(A->w) && wfixed(B->w)) ? B->w : A->w;
        *isr_a = A->vk == r->vk;
        *isr_b = B->vk == r->vk;
    }
    return 0;
}

static double fold2(int op, double x, double y)
{
    switch (op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    case '/': return x / y;
    case FN_MIN: return x < y ? x : y;
    default: return x > y ? x : y;
    }
}

static int type_binary(cx *c, int n)
{
    int op = ND(n)->op, a = ND(n)->a, b = ND(n)->b;
    char opname[8];
    snprintf(opname, sizeof opname, "'%c'", op);
    if (ND(a)->vk == V_SCALAR && ND(b)->vk == V_SCALAR) return fold_ok(c, n, fold2(op, ND(a)->num, ND(b)->num));
    if (ND(a)->vk == V_SCALAR || ND(b)->vk == V_SCALAR) {
        int xl = ND(b)->vk == V_SCALAR, x = xl ? a : b;
        double k = xl ? ND(b)->num : ND(a)->num;
        if (need_known(c, x)) return -1;
        lnode *r = ND(n);
        r->vk = ND(x)->vk;
        r->w = ND(x)->w;
        r->ada = r->adb = A_USE;
        r->swap = 0;
        switch (op) {
        case '+':   /* X + c and c + X: rc_add(X, fill [1]) */
            r->form = E_BIN;
            if (xl) r->adb = A_FILL1;
            else r->ada = A_FILL1, r->swap = 1;
            break;
        case '*': r->form = E_SCALE; break;
        case '-':
            if (xl) r->form = E_BIN, r->adb = A_FILL1;
            else if (k == 1.0) r->form = E_ONE_MINUS;
            else r->form = E_BIN, r->ada = A_FILLR;
            break;
        default:
            if (xl && k == 0.0)
                return failat(c, r->line, r->col, "division by the constant 0: expected a non-zero divisor");
            r->form = E_BIN;
            if (xl) r->adb = A_FILL1;
            else r->ada = A_FILLR;
            break;
        }
        return 0;
    }
    if (is_unk(c, a) && is_unk(c, b)) return cant_infer(c, a);
    if (is_unk(c, a)) infer(c, a, ND(b)->w);
    if (is_unk(c, b)) infer(c, b, ND(a)->w);
    int isr_a, isr_b;
    if (bcast(c, n, opname, &isr_a, &isr_b)) return -1;
    lnode *r = ND(n);
    r->form = E_BIN;
    r->ada = r->adb = A_USE;
    r->swap = 0;
    if (isr_a) return 0;                                   /* rc_op(a, b), b broadcast */
    if (isr_b && (op == '+' || op == '*')) r->swap = 1;    /* rc_op(b, a) */
    else r->ada = A_EXPAND;                                /* rc_op(zeros + a, b) */
    return 0;
}

static int type_minmax(cx *c, int n)
{
    int a = ND(n)->a, b = ND(n)->b;
    const char *opname = ND(n)->op == FN_MIN ? "min(...)" : "max(...)";
    if (ND(a)->vk == V_SCALAR && ND(b)->vk == V_SCALAR) return fold_ok(c, n, fold2(ND(n)->op, ND(a)->num, ND(b)->num));
    lnode *r = ND(n);
    r->form = E_BIN;
    r->ada = r->adb = A_USE;
    if (ND(a)->vk == V_SCALAR || ND(b)->vk == V_SCALAR) {
        int xl = ND(b)->vk == V_SCALAR, x = xl ? a : b;
        if (need_known(c, x)) return -1;
        r = ND(n);
        r->vk = ND(x)->vk;
        r->w = ND(x)->w;
        if (xl) r->adb = A_FILLR;
        else r->ada = A_FILLR;
        return 0;
    }
    if (is_unk(c, a) && is_unk(c, b)) return cant_infer(c, a);
    if (is_unk(c, a)) infer(c, a, ND(b)->w);
    if (is_unk(c, b)) infer(c, b, ND(a)->w);
    int isr_a, isr_b;
    if (bcast(c, n, opname, &isr_a, &isr_b)) return -1;
    r = ND(n);
    if (!isr_a) r->ada = A_EXPAND;
    if (!isr_b) r->adb = A_EXPAND;
    return 0;
}

static int check_node(cx *c, int n);

/* A name in a value's place. */
static int resolve_name(cx *c, int n)
{
    const char *nm = STR(ND(n)->name);
    int line = ND(n)->line, col = ND(n)->col, k;
    if (strcmp(nm, STR(c->input)) == 0) {
        ND(n)->kind = N_INPUT;
        ND(n)->vk = V_ROW;
        ND(n)->w = (lw){ 0, 1, 0 };
        return 0;
    }
    if ((k = find_state(c, nm)) >= 0) {
        ND(n)->kind = N_STATE;
        ND(n)->ref = k;
        ND(n)->vk = V_ROW;
        ND(n)->w = c->states[k].size;
        return 0;
    }
    if ((k = find_bind(c, nm)) >= 0) {
        lbind *b = &c->binds[k];
        if (b->stmt >= c->cur)
            return failat(c, line, col, "'%s' is used before its definition on line %d: expected a binding defined "
                          "above this line (a step has no cycles; recurrence goes through states, read as "
                          "their previous value)", nm, b->line);
        const lnode *v = ND(c->stmts[b->stmt].expr);
        ND(n)->kind = N_LET;
        ND(n)->ref = k;
        ND(n)->vk = v->vk;
        ND(n)->w = v->w;
        ND(n)->num = v->num;
        b->uses++;
        return 0;
    }
    if (strcmp(nm, "H") == 0 || strcmp(nm, "I") == 0)
        return failat(c, line, col, "'%s' is the %s size, usable only in sizes: expected a value (the sizes are "
                      "in 'weight', 'vector' and 'state' declarations and slice(a, start, len))", nm,
                      nm[0] == 'H' ? "hidden" : "input");
    if (find_fn(nm) || model_level(nm))
        return failat(c, line, col, "'%s' is a function: expected a call %s(...)", nm, nm);
    if (is_keyword(nm))
        return failat(c, line, col, "'%s' is a keyword: expected a value (a keyword starts a declaration line)", nm);
    k = find_param(c, nm);
    if (k >= 0 && c->params[k].kind == P_WEIGHT)
        return failat(c, line, col, "'%s' is a weight (%s line %d): expected it on the left of '@', as in %s @ v; "
                      "a name used elementwise is a vector parameter", nm,
                      c->params[k].decl_line ? "declared on" : "used with '@' on",
                      c->params[k].decl_line ? c->params[k].decl_line : c->params[k].use_line, nm);
    if (k < 0 && (k = add_param(c, ND(n)->name, P_VECTOR)) < 0) return -1;
    lparam *p = &c->params[k];
    if (!p->used) {
        p->used = 1;
        p->use_line = line;
        p->use_col = col;
    }
    ND(n)->kind = N_VEC;
    ND(n)->ref = k;
    ND(n)->vk = V_VEC;
    if (p->known) ND(n)->w = p->w;
    else ND(n)->unk = 1;
    return 0;
}

static int resolve_new(cx *c, int n)
{
    const char *nm = STR(ND(n)->name);
    int k = find_state(c, nm), line = ND(n)->line, col = ND(n)->col;
    if (k < 0)
        return failat(c, line, col, "'%s'' reads a new value, but '%s' is not a state: expected one of the "
                      "header's states", nm, nm);
    int set = c->states[k].set_stmt;
    if (set < 0)
        return failat(c, line, col, "'%s'' is read, but state '%s' is never assigned: expected a line %s' = ... "
                      "above this one", nm, nm, nm);
    if (set >= c->cur)
        return failat(c, line, col, "'%s'' is used before its definition on line %d: expected the assignment "
                      "of %s' above this line (a step has no cycles; '%s' alone is the previous value)", nm,
                      c->stmts[set].line, nm, nm);
    ND(n)->ref = k;
    ND(n)->vk = V_ROW;
    ND(n)->w = c->states[k].size;
    return 0;
}

static int check_matmul(cx *c, int n)
{
    const char *nm = STR(ND(n)->name);
    int line = ND(n)->line, col = ND(n)->col, k;
    const char *what = strcmp(nm, STR(c->input)) == 0 ? "the cell's input"
                     : find_state(c, nm) >= 0 ? "a state"
                     : find_bind(c, nm) >= 0 ? "a binding"
                     : (strcmp(nm, "H") == 0 || strcmp(nm, "I") == 0) ? "a size"
                     : (find_fn(nm) || model_level(nm)) ? "a function" : is_keyword(nm) ? "a keyword" : NULL;
    if (what)
        return failat(c, line, col, "'%s' is %s, not a weight: expected a weight's name on the left of '@' (a "
                      "name that is not the input, a state or a binding)", nm, what);
    k = find_param(c, nm);
    if (k >= 0 && c->params[k].kind == P_VECTOR)
        return failat(c, line, col, "'%s' is a vector parameter (%s line %d), not a weight: expected a weight's "
                      "name on the left of '@'", nm, c->params[k].decl_line ? "declared on" : "used elementwise on",
                      c->params[k].decl_line ? c->params[k].decl_line : c->params[k].use_line);
    if (k < 0) {
        if ((k = add_param(c, ND(n)->name, P_WEIGHT)) < 0) return -1;
        c->params[k].known = 1;
        c->params[k].w = (lw){ 1, 0, 0 };
    }
    if (check_node(c, ND(n)->a) || need_known(c, ND(n)->a)) return -1;
    lparam *p = &c->params[k];
    const lnode *v = ND(ND(n)->a);
    if (v->vk != V_ROW)
        return failat(c, ND(n)->line2, ND(n)->col2, "the right side of '@' is %s: expected a batch value (the "
                      "input, a state, or a value computed from them)", vk_name(v->vk));
    if (!p->used) {
        p->used = 1;
        p->use_line = line;
        p->use_col = col;
    }
    if (!p->in_known) {
        p->in_known = 1;
        p->in = v->w;
        p->in_line = line;
        p->in_col = col;
    } else {
        int rel = wrel(p->in, v->w, c->H, NULL);
        if (rel == R_NEVER) {
            char d0[160], d1[160];
            wdesc(p->in, c->H, d0, sizeof d0);
            wdesc(v->w, c->H, d1, sizeof d1);
            return failat(c, ND(n)->line2, ND(n)->col2, "weight '%s' is applied to a value %s wide here, but to one "
                          "%s wide on line %d: expected one input width per weight", nm, d1, d0, p->in_line);
        }
        ND(n)->defer = rel == R_DEFER;
    }
    ND(n)->ref = k;
    ND(n)->vk = V_ROW;
    ND(n)->w = p->w;
    return 0;
}

static double fold1(int fn, double x)
{
    switch (fn) {
    case FN_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case FN_TANH: return tanh(x);
    case FN_RELU: return x > 0 ? x : 0;
    case FN_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case FN_ABS: return fabs(x);
    case FN_SQRT: return sqrt(x);
    case FN_EXP: return exp(x);
    default: return log(x);
    }
}

static int check_call(cx *c, int n)
{
    const char *nm = STR(ND(n)->name);
    int line = ND(n)->line, col = ND(n)->col;
    const fninfo *f = find_fn(nm);
    if (!f) {
        const char *why = model_level(nm);
        if (why) return failat(c, line, col, "%s(...) cannot be used in a cell: %s", nm, why);
        const char *best = NULL;
        int bd = 3;
        for (int k = 0; k < NFNS; k++) consider(nm, FNS[k].name, &best, &bd);
        char hint[64] = "";
        if (best) snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
        return failat(c, line, col, "unknown function '%s'%s: expected one of sigmoid, tanh, relu, softplus, abs, "
                      "sqrt, exp, log, min, max, softmax, log_softmax, row_mean, row_var, sum, mean, concat, slice, "
                      "dropout, matmul, add, sub, mul, div, scale, one_minus", nm, hint);
    }
    int na = ND(n)->nargs, a0 = ND(n)->arg0;
    if ((f->arity >= 0 && na != f->arity) || (f->arity < 0 && na < 1))
        return failat(c, line, col, "%s takes %s%d argument%s (%s), got %d", nm, f->arity < 0 ? "at least " : "",
                      f->arity < 0 ? 1 : f->arity, (f->arity == 1 || f->arity < 0) ? "" : "s", f->args, na);
    int a = na > 0 ? c->args[a0] : -1, b = na > 1 ? c->args[a0 + 1] : -1;
    switch (f->fn) {
    case FN_MATMUL:
        if (ND(a)->kind != N_NAME)
            return failat(c, ND(a)->line, ND(a)->col, "the first argument of matmul(W, v) must be a weight's name");
        ND(n)->kind = N_MATMUL;
        ND(n)->name = ND(a)->name;
        ND(n)->line2 = ND(b)->line;
        ND(n)->col2 = ND(b)->col;
        ND(n)->a = b;
        return check_matmul(c, n);
    case FN_ADD: case FN_SUB: case FN_MUL: case FN_DIV: case FN_SCALE:
        if (check_node(c, a) || check_node(c, b)) return -1;
        if (f->fn == FN_SCALE && ND(b)->vk != V_SCALAR)
            return failat(c, ND(b)->line, ND(b)->col, "the factor of scale(a, c) is %s: expected a constant",
                          vk_name(ND(b)->vk));
        ND(n)->kind = N_BIN;
        ND(n)->op = f->fn == FN_ADD ? '+' : f->fn == FN_SUB ? '-' : f->fn == FN_DIV ? '/' : '*';
        ND(n)->a = a;
        ND(n)->b = b;
        return type_binary(c, n);
    case FN_ONE_MINUS: {
        if (check_node(c, a)) return -1;
        int one = mknode(c, N_NUM, line, col);
        if (one < 0) return -1;
        ND(one)->vk = V_SCALAR;
        ND(one)->num = 1.0;
        ND(n)->kind = N_BIN;
        ND(n)->op = '-';
        ND(n)->a = one;
        ND(n)->b = a;
        return type_binary(c, n);
    }
    case FN_MIN: case FN_MAX:
        if (check_node(c, a) || check_node(c, b)) return -1;
        ND(n)->kind = N_MINMAX;
        ND(n)->op = f->fn;
        ND(n)->a = a;
        ND(n)->b = b;
        return type_minmax(c, n);
    case FN_CONCAT: {
        int vk = 0;
        lw w = wconst(0);
        for (int k = 0; k < na; k++) {
            int p = c->args[a0 + k];
            if (check_node(c, p) || need_tensor(c, p, "concat")) return -1;
            if (k == 0) vk = ND(p)->vk;
            else if (ND(p)->vk != vk)
                return failat(c, ND(p)->line, ND(p)->col, "part %d of concat(...) is %s and part 1 is %s: expected "
                              "all batch values or all vectors", k + 1, vk_name(ND(p)->vk), vk_name(vk));
            w.h += ND(p)->w.h;
            w.i += ND(p)->w.i;
            w.c += ND(p)->w.c;
            if (wcheck(c, n, w)) return -1;
        }
        ND(n)->kind = N_CONCAT;
        ND(n)->vk = vk;
        ND(n)->w = w;
        return 0;
    }
    case FN_SLICE: {
        if (check_node(c, a) || need_tensor(c, a, "slice")) return -1;
        lw s0, s1;
        if (size_eval(c, b, 1, &s0) || size_eval(c, c->args[a0 + 2], 1, &s1)) return -1;
        lnode *r = ND(n);
        r->kind = N_SLICE;
        r->a = a;
        r->vk = ND(a)->vk;
        r->s0 = s0;
        r->s1 = s1;
        r->w = s1;
        if (wfixed(s0) && wfixed(s1) && wfixed(ND(a)->w)) {
            long long st = wev(s0, c->H, 0), len = wev(s1, c->H, 0), wa = wev(ND(a)->w, c->H, 0);
            if (st < 0 || len < 1 || st + len > wa) {
                char d[160];
                wdesc(ND(a)->w, c->H, d, sizeof d);
                return failat(c, line, col, "slice(a, %lld, %lld) takes columns [%lld, %lld) of a value %s wide: "
                              "expected start >= 0, len >= 1 and start + len <= %lld", st, len, st, st + len, d, wa);
            }
        } else r->defer = 1;
        return wcheck(c, n, s1);
    }
    case FN_DROPOUT: {
        if (check_node(c, a) || need_tensor(c, a, "dropout") || check_node(c, b)) return -1;
        double p = ND(b)->num;
        if (ND(b)->vk != V_SCALAR || !(p >= 0.0 && (float)p < 1.0f))
            return failat(c, ND(b)->line, ND(b)->col, "the drop probability of dropout(a, p) must be a constant in "
                          "[0, 1)%s", ND(b)->vk == V_SCALAR ? "" : ", found a value");
        lnode *r = ND(n);
        r->kind = N_DROPOUT;
        r->a = a;
        r->num = p;
        r->vk = ND(a)->vk;
        r->w = ND(a)->w;
        return 0;
    }
    default: {   /* one operand */
        if (check_node(c, a) || need_known(c, a)) return -1;
        lnode *r = ND(n);
        r->kind = N_FN;
        r->op = f->fn;
        r->a = a;
        if (f->fn <= FN_LOG && ND(a)->vk == V_SCALAR) return fold_ok(c, n, fold1(f->fn, ND(a)->num));
        if (need_tensor(c, a, nm)) return -1;
        r = ND(n);
        r->vk = ND(a)->vk;
        r->w = ND(a)->w;
        if (f->fn == FN_ROW_MEAN || f->fn == FN_ROW_VAR) r->w = wconst(1);
        if (f->fn == FN_SUM || f->fn == FN_MEAN) {
            r->vk = V_VEC;
            r->w = wconst(1);
        }
        return 0;
    }
    }
}

static int check_node(cx *c, int n)
{
    switch (ND(n)->kind) {
    case N_NUM: return 0;
    case N_NAME: return resolve_name(c, n);
    case N_NEW: return resolve_new(c, n);
    case N_CALL: return check_call(c, n);
    case N_MATMUL: return check_matmul(c, n);
    case N_NEG: {
        int a = ND(n)->a;
        if (check_node(c, a) || need_known(c, a)) return -1;
        if (ND(a)->vk == V_SCALAR) return fold_ok(c, n, -ND(a)->num);
        ND(n)->vk = ND(a)->vk;
        ND(n)->w = ND(a)->w;
        return 0;
    }
    case N_BIN:
        if (check_node(c, ND(n)->a) || check_node(c, ND(n)->b)) return -1;
        if (type_binary(c, n)) return -1;
        return ND(n)->vk == V_SCALAR ? 0 : wcheck(c, n, ND(n)->w);
    default: return 0;   /* already checked */
    }
}

/* A size: an integer expression of H (and I when allowed) with + - * and exact /. */
static int size_eval(cx *c, int n, int allow_i, lw *out)
{
    lnode *q = ND(n);
    int line = q->line, col = q->col;
    lw a, b;
    switch (q->kind) {
    case N_NUM:
        if (q->num != floor(q->num) || fabs(q->num) > L_MAX_COEF)
            return failat(c, line, col, "a size is a whole number, found %g: expected an integer expression of H "
                          "and I", q->num);
        *out = wconst((long long)q->num);
        return 0;
    case N_NAME: {
        const char *nm = STR(q->name);
        if (strcmp(nm, "H") == 0) {
            *out = (lw){ 1, 0, 0 };
            return 0;
        }
        if (strcmp(nm, "I") == 0) {
            if (!allow_i)
                return failat(c, line, col, "a state's size cannot depend on the input size I: expected an "
                              "integer expression of H");
            *out = (lw){ 0, 1, 0 };
            return 0;
        }
        return failat(c, line, col, "'%s' in a size: expected an integer expression of H (the hidden size) and I "
                      "(the input size)", nm);
    }
    case N_NEG:
        if (size_eval(c, q->a, allow_i, &a)) return -1;
        *out = (lw){ -a.h, -a.i, -a.c };
        return 0;
    case N_BIN: {
        int op = q->op;
        if (size_eval(c, q->a, allow_i, &a) || size_eval(c, q->b, allow_i, &b)) return -1;
        int ka = a.h == 0 && a.i == 0, kb = b.h == 0 && b.i == 0;
        if (op == '+') *out = (lw){ a.h + b.h, a.i + b.i, a.c + b.c };
        else if (op == '-') *out = (lw){ a.h - b.h, a.i - b.i, a.c - b.c };
        else if (op == '*') {
            if (!ka && !kb)
                return failat(c, line, col, "a product of two sizes that both depend on H or I: expected a size "
                              "linear in H and I (such as 4*H + I)");
            long long k = ka ? a.c : b.c;
            lw v = ka ? b : a;
            *out = (lw){ k * v.h, k * v.i, k * v.c };
        } else {
            if (!kb || b.c == 0)
                return failat(c, line, col, "a size divided by %s: expected division by a non-zero whole number",
                              kb ? "zero" : "something that depends on H or I");
            long long d = b.c;
            if (a.h % d == 0 && a.i % d == 0 && a.c % d == 0) *out = (lw){ a.h / d, a.i / d, a.c / d };
            else if (a.i == 0 && (a.h * c->H + a.c) % d == 0) *out = wconst((a.h * c->H + a.c) / d);
            else {
                char f[96];
                wfmt(a, f, sizeof f);
                return failat(c, line, col, "(%s) / %lld is not a whole number: expected a size that divides "
                              "exactly", f, d);
            }
        }
        if (wbig(*out))
            return failat(c, line, col, "a size here is too large: expected coefficients and constants up to %lld",
                          L_MAX_COEF);
        return 0;
    }
    default:
        return failat(c, line, col, "a size is an integer expression of H and I (numbers, + - * /, parentheses): "
                      "found %s", q->kind == N_CALL ? "a function call" : q->kind == N_NEW ? "a state's new value"
                                 : "an '@'");
    }
}

/* A declared size: its width, checked to lie within 1..LANG_MAX_WIDTH when it is fixed. */
static int decl_size(cx *c, int expr, int allow_i, lw *out, const char *what, const char *name)
{
    if (size_eval(c, expr, allow_i, out)) return -1;
    if (wfixed(*out)) {
        long long v = wev(*out, c->H, 0);
        if (v < 1 || v > LANG_MAX_WIDTH) {
            char d[160];
            wdesc(*out, c->H, d, sizeof d);
            return failat(c, ND(expr)->line, ND(expr)->col, "the size of %s '%s' is %s: expected a size from 1 to %d",
                          what, name, d, LANG_MAX_WIDTH);
        }
    }
    return 0;
}

static int check_all(cx *c)
{
    if (c->override > 0) c->H = c->override;
    else if (c->hidden_line) c->H = c->hidden;
    else
        return failat(c, c->head_line, c->head_col, "cell '%s' has no hidden size: expected a line 'hidden N' in "
                      "the cell, or a hidden size given when it is loaded (e.g. --hidden)", STR(c->cell));
    for (int k = 0; k < c->nst; k++) {
        lstate *s = &c->states[k];
        s->size = (lw){ 1, 0, 0 };
        if (s->size_expr >= 0 && decl_size(c, s->size_expr, 0, &s->size, "state", STR(s->name))) return -1;
    }
    for (int k = 0; k < c->np; k++) {
        lparam *p = &c->params[k];
        for (int j = 0; j < c->nb; j++)
            if (strcmp(STR(c->binds[j].name), STR(p->name)) == 0)
                return failat(c, c->binds[j].line, c->binds[j].col, "name '%s' is bound twice: expected one meaning "
                              "(it is declared as a %s on line %d)", STR(p->name),
                              p->kind == P_WEIGHT ? "weight" : "vector", p->decl_line);
        if (p->decl_size >= 0) {
            if (decl_size(c, p->decl_size, 1, &p->w, p->kind == P_WEIGHT ? "weight" : "vector", STR(p->name)))
                return -1;
            p->known = 1;
        }
    }
    for (int k = 0; k < c->ns; k++) {
        c->cur = k;
        int e = c->stmts[k].expr;
        if (check_node(c, e) || need_known(c, e)) return -1;
        lstmt *st = &c->stmts[k];
        if (ND(e)->vk != V_SCALAR && wcheck(c, e, ND(e)->w)) return -1;
        if (st->kind != S_SET) continue;
        lstate *s = &c->states[st->ref];
        const char *nm = STR(s->name);
        if (ND(e)->vk != V_ROW)
            return failat(c, st->line, st->col, "the new value of state '%s' is %s: expected a batch value of the "
                          "state's size", nm, vk_name(ND(e)->vk));
        int rel = wrel(ND(e)->w, s->size, c->H, NULL);
        if (rel == R_NEVER) {
            char d0[160], d1[160];
            wdesc(s->size, c->H, d0, sizeof d0);
            wdesc(ND(e)->w, c->H, d1, sizeof d1);
            return failat(c, st->line, st->col, "the new value of state '%s' is %s wide: expected the state's size, "
                          "%s", nm, d1, d0);
        }
        st->defer = rel == R_DEFER;
    }
    for (int k = 0; k < c->nst; k++)
        if (c->states[k].set_stmt < 0)
            return failat(c, c->states[k].line, c->states[k].col, "state '%s' is never assigned: expected a line "
                          "%s' = ...", STR(c->states[k].name), STR(c->states[k].name));
    for (int k = 0; k < c->nb; k++)
        if (c->binds[k].uses == 0)
            return failat(c, c->binds[k].line, c->binds[k].col, "'%s' is bound but never used: expected every "
                          "binding to be used by a later line", STR(c->binds[k].name));
    for (int k = 0; k < c->np; k++)
        if (!c->params[k].used)
            return failat(c, c->params[k].decl_line, c->params[k].decl_col, "%s '%s' is declared but never used",
                          c->params[k].kind == P_WEIGHT ? "weight" : "vector", STR(c->params[k].name));
    for (int k = 0; k < c->ni; k++) {
        linit *in = &c->inits[k];
        const char *nm = STR(in->name);
        int j = find_param(c, nm);
        if (j < 0) {
            const char *what = strcmp(nm, STR(c->input)) == 0 ? "the cell's input" : find_state(c, nm) >= 0
                             ? "a state (initial states are zeros, given or learned: rc_unroll_opts)"
                             : find_bind(c, nm) >= 0 ? "a binding" : NULL;
            if (what)
                return failat(c, in->line, in->col, "'%s' is %s, not a parameter: expected a weight or vector "
                              "parameter after 'init'", nm, what);
            return failat(c, in->line, in->col, "'%s' is not a parameter of the cell (no expression uses it): "
                          "expected a weight (W @ v) or a vector parameter after 'init'", nm);
        }
        lparam *p = &c->params[j];
        if (p->init)
            return failat(c, in->line, in->col, "parameter '%s' has two init lines (the first is line %d): "
                          "expected one", nm, p->init_line);
        if (p->kind == P_VECTOR && (in->kind == I_GLOROT || in->kind == I_ORTHOGONAL))
            return failat(c, in->line, in->col, "'%s' is a vector: expected const, zeros, uniform or default "
                          "(glorot and orthogonal initialise matrices)", nm);
        p->init = in->kind;
        p->init_a = in->a;
        p->init_line = in->line;
    }
    return 0;
}

/* ---- the flat program -------------------------------------------------------------- */

static size_t align_up(size_t n) { return (n + 15) & ~(size_t)15; }

static lang_prog *freeze(cx *c, size_t *size)
{
    size_t off = align_up(sizeof(lang_prog)), o[7];
    const size_t sz[7] = { (size_t)c->nn * sizeof(lnode), (size_t)c->na * sizeof(int), (size_t)c->ns * sizeof(lstmt),
                           (size_t)c->nb * sizeof(lbind), (size_t)c->nst * sizeof(lstate),
                           (size_t)c->np * sizeof(lparam), c->npool };
    for (int k = 0; k < 7; k++) {
        o[k] = off;
        off = align_up(off + sz[k]);
    }
    lang_prog *p = calloc(1, off);
    if (!p) {
        nomem(c);
        return NULL;
    }
    const void *src[7] = { c->nodes, c->args, c->stmts, c->binds, c->states, c->params, c->pool };
    for (int k = 0; k < 7; k++)
        if (sz[k]) memcpy((char *)p + o[k], src[k], sz[k]);
    p->size = off;
    p->hidden = (int)c->H;
    p->file = -1;
    p->cell = c->cell;
    p->input = c->input;
    p->nnodes = c->nn;
    p->nargs = c->na;
    p->nstmts = c->ns;
    p->nbinds = c->nb;
    p->nstates = c->nst;
    p->nparams = c->np;
    p->npool = c->npool;
    p->o_nodes = o[0];
    p->o_args = o[1];
    p->o_stmts = o[2];
    p->o_binds = o[3];
    p->o_states = o[4];
    p->o_params = o[5];
    p->o_pool = o[6];
    *size = off;
    return p;
}

lang_prog *lang_compile(const char *text, size_t len, const char *name, int hidden, char *err, size_t errlen,
                        size_t *size)
{
    cx c;
    memset(&c, 0, sizeof c);
    c.file = name ? name : "cell";
    c.err = err;
    c.errlen = errlen;
    c.line = 1;
    c.override = hidden > 0 ? hidden : 0;
    if (err && errlen) err[0] = 0;
    lang_prog *p = NULL;
    if (!text) failat(&c, 1, 1, "no text: expected a cell definition");
    else if (len > LANG_MAX_TEXT) failat(&c, 1, 1, "the text is %zu bytes: expected at most %u", len, LANG_MAX_TEXT);
    else if (hidden > LANG_MAX_WIDTH) failat(&c, 1, 1, "hidden size %d: expected at most %d", hidden, LANG_MAX_WIDTH);
    else {
        c.src = text;
        c.len = len;
        /* the file name goes into the pool first, so messages at unroll can name it */
        int f = pool_add(&c, c.file, strlen(c.file));
        if (f == 0 && p_file(&c) == 0 && check_all(&c) == 0) {
            size_t sz = 0;
            p = freeze(&c, &sz);
            if (p) {
                p->file = f;
                if (size) *size = sz;
            }
        }
    }
    free(c.nodes);
    free(c.args);
    free(c.stmts);
    free(c.binds);
    free(c.params);
    free(c.inits);
    free(c.pool);
    return p;
}

const char *lang_cell_name(const lang_prog *p) { return ppool(p) + p->cell; }
int lang_hidden(const lang_prog *p) { return p->hidden; }
int lang_state_count(const lang_prog *p) { return p->nstates; }
const char *lang_state_name(const lang_prog *p, int i)
{
    return (i >= 0 && i < p->nstates) ? ppool(p) + pstates(p)[i].name : NULL;
}
int lang_state_size(const lang_prog *p, int i)
{
    return (i >= 0 && i < p->nstates) ? (int)wev(pstates(p)[i].size, p->hidden, 0) : 0;
}

/* ---- checks at unroll ---------------------------------------------------------------- */

static int vfail(const lang_prog *p, int line, int col, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int vfail(const lang_prog *p, int line, int col, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        int k = snprintf(err, errlen, "%s:%d:%d: ", ppool(p) + p->file, line, col);
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < errlen) vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int lang_validate(const lang_prog *p, int I, long long *max_width, char *err, size_t errlen)
{
    const lnode *nd = pnodes(p);
    const lparam *pa = pparams(p);
    const lstmt *st = pstmts(p);
    long long H = p->hidden, mx = 0;
    if (max_width) *max_width = 0;
    if (err && errlen) err[0] = 0;
    if (I < 1) return vfail(p, 1, 1, err, errlen, "input size %d: expected at least 1", I);
    for (int k = 0; k < p->nnodes; k++) {
        const lnode *n = &nd[k];
        if (n->vk != V_ROW && n->vk != V_VEC) continue;
        long long v = wev(n->w, H, I);
        if (v < 1 || v > LANG_MAX_WIDTH) {
            char f[96];
            wfmt(n->w, f, sizeof f);
            return vfail(p, n->line, n->col, err, errlen, "with input size I = %d, this value would be %s = %lld wide: "
                         "expected a width from 1 to %d", I, f, v, LANG_MAX_WIDTH);
        }
        if (v > mx) mx = v;
        if (!n->defer) continue;
        if (n->kind == N_BIN || n->kind == N_MINMAX) {
            long long wa = wev(nd[n->a].w, H, I), wb = wev(nd[n->b].w, H, I);
            if (wa != wb) {
                char fa[96], fb[96], opn[16];
                wfmt(nd[n->a].w, fa, sizeof fa);
                wfmt(nd[n->b].w, fb, sizeof fb);
                if (n->kind == N_BIN) snprintf(opn, sizeof opn, "'%c'", n->op);
                else snprintf(opn, sizeof opn, "%s(...)", n->op == FN_MIN ? "min" : "max");
                return vfail(p, n->line, n->col, err, errlen, "with input size I = %d the two sides of %s differ: the "
                             "left side is %s = %lld wide and the right side %s = %lld; expected equal widths "
                             "(they are equal only for another input size)", I, opn, fa, wa, fb, wb);
            }
        } else if (n->kind == N_MATMUL) {
            const lparam *w = &pa[n->ref];
            long long a = wev(nd[n->a].w, H, I), b = wev(w->in, H, I);
            if (a != b)
                return vfail(p, n->line2, n->col2, err, errlen, "with input size I = %d weight '%s' is applied to a "
                             "value %lld wide here and to one %lld wide on line %d: expected one input width per "
                             "weight", I, ppool(p) + w->name, a, b, w->in_line);
        } else if (n->kind == N_SLICE) {
            long long s0 = wev(n->s0, H, I), s1 = wev(n->s1, H, I), wa = wev(nd[n->a].w, H, I);
            if (s0 < 0 || s1 < 1 || s0 + s1 > wa)
                return vfail(p, n->line, n->col, err, errlen, "with input size I = %d, slice(a, %lld, %lld) takes "
                             "columns [%lld, %lld) of a value %lld wide: expected start >= 0, len >= 1 and "
                             "start + len <= %lld", I, s0, s1, s0, s0 + s1, wa, wa);
        }
    }
    for (int k = 0; k < p->nparams; k++) {
        lw ws[2] = { pa[k].w, pa[k].in };
        for (int j = 0; j < (pa[k].kind == P_WEIGHT ? 2 : 1); j++) {
            long long v = wev(ws[j], H, I);
            char f[96];
            wfmt(ws[j], f, sizeof f);
            if (v < 1 || v > LANG_MAX_WIDTH)
                return vfail(p, pa[k].use_line, pa[k].use_col, err, errlen, "with input size I = %d, %s of "
                             "parameter '%s' would be %s = %lld: expected 1 to %d", I, j ? "the input width" : "the size",
                             ppool(p) + pa[k].name, f, v, LANG_MAX_WIDTH);
            if (v > mx) mx = v;
        }
    }
    for (int k = 0; k < p->nstmts; k++) {
        if (!st[k].defer) continue;
        long long v = wev(nd[st[k].expr].w, H, I), s = wev(pstates(p)[st[k].ref].size, H, I);
        if (v != s)
            return vfail(p, st[k].line, st[k].col, err, errlen, "with input size I = %d the new value of state '%s' "
                         "is %lld wide: expected the state's size, %lld", I, ppool(p) + pstates(p)[st[k].ref].name,
                         v, s);
    }
    if (max_width) *max_width = mx;
    return 0;
}

#ifndef LANG_CHECK_ONLY
/* ---- the step function: rc_* calls --------------------------------------------------- */

typedef struct ev {
    rc_step *s;
    rc_graph *g;
    const lang_prog *p;
    const lnode *nd;
    const int *args;
    const char *pool;
    rc_node **let, **next;   /* binding values, states' new values */
    long long H, I;
    int B;
} ev;

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *d = data;
    for (size_t k = 0; k < n; k++) h = (h ^ d[k]) * 1099511628211ull;
    return h;
}

/* The shape of a node's value: [B, w] or [w]. */
static int shape_of(const ev *e, const lnode *n, int shape[2])
{
    int w = (int)wev(n->w, e->H, e->I);
    if (n->vk == V_ROW) {
        shape[0] = e->B;
        shape[1] = w;
        return 2;
    }
    shape[0] = w;
    return 1;
}

static rc_node *eval(ev *e, int k);

/* An operand adapted to the op: as is, a filled constant, or broadcast to the result. */
static rc_node *operand(ev *e, const lnode *n, int k, int how)
{
    int shape[2], nd = shape_of(e, n, shape), one = 1;
    float v = (float)e->nd[k].num;
    switch (how) {
    case A_FILL1: return rc_fill(e->g, 1, &one, v);
    case A_FILLR: return rc_fill(e->g, nd, shape, v);
    case A_EXPAND: {
        rc_node *x = eval(e, k);
        return x ? rc_add(e->g, rc_fill(e->g, nd, shape, 0.0f), x) : NULL;
    }
    default: return eval(e, k);
    }
}

static rc_node *eval_bin(ev *e, const lnode *n)
{
    rc_graph *g = e->g;
    if (n->form == E_SCALE || n->form == E_ONE_MINUS) {
        int x = e->nd[n->a].vk == V_SCALAR ? n->b : n->a;
        rc_node *v = eval(e, x);
        if (n->form == E_ONE_MINUS) return rc_one_minus(g, v);
        return rc_scale(g, v, (float)e->nd[x == n->a ? n->b : n->a].num);
    }
    rc_node *a = operand(e, n, n->a, n->ada), *b = a ? operand(e, n, n->b, n->adb) : NULL;
    if (!a || !b) return NULL;
    if (n->swap) {
        rc_node *t = a;
        a = b;
        b = t;
    }
    if (n->kind == N_MINMAX) return n->op == FN_MIN ? rc_minimum(g, a, b) : rc_maximum(g, a, b);
    switch (n->op) {
    case '+': return rc_add(g, a, b);
    case '-': return rc_sub(g, a, b);
    case '*': return rc_mul(g, a, b);
    default: return rc_div(g, a, b);
    }
}

static rc_node *eval_fn(ev *e, const lnode *n)
{
    rc_graph *g = e->g;
    rc_node *a = eval(e, n->a);
    switch (n->op) {
    case FN_SIGMOID: return rc_sigmoid(g, a);
    case FN_TANH: return rc_tanh(g, a);
    case FN_RELU: return rc_relu(g, a);
    case FN_SOFTPLUS: return rc_softplus(g, a);
    case FN_ABS: return rc_abs(g, a);
    case FN_SQRT: return rc_sqrt(g, a);
    case FN_EXP: return rc_exp(g, a);
    case FN_LOG: return rc_log(g, a);
    case FN_SOFTMAX: return rc_softmax(g, a);
    case FN_LOG_SOFTMAX: return rc_log_softmax(g, a);
    case FN_ROW_MEAN: return rc_row_mean(g, a);
    case FN_ROW_VAR: return rc_row_var(g, a);
    case FN_SUM: return rc_sum(g, a);
    default: return rc_mean(g, a);
    }
}

static rc_node *eval(ev *e, int k)
{
    const lnode *n = &e->nd[k];
    rc_graph *g = e->g;
    rc_node *v = NULL;
    if (rc_graph_status(g) != RC_OK) return NULL;
    switch (n->kind) {
    case N_INPUT: v = rc_step_input(e->s); break;
    case N_STATE: v = rc_step_state(e->s, e->pool + pstates(e->p)[n->ref].name); break;
    case N_NEW: v = e->next[n->ref]; break;
    case N_LET: v = e->let[n->ref]; break;
    case N_VEC: v = rc_step_bias(e->s, e->pool + pparams(e->p)[n->ref].name, (int)wev(n->w, e->H, e->I)); break;
    case N_MATMUL: {
        rc_node *x = eval(e, n->a);
        v = x ? rc_step_linear(e->s, e->pool + pparams(e->p)[n->ref].name, x, (int)wev(n->w, e->H, e->I)) : NULL;
        break;
    }
    case N_NEG: v = rc_scale(g, eval(e, n->a), -1.0f); break;
    case N_BIN: case N_MINMAX: v = eval_bin(e, n); break;
    case N_FN: v = eval_fn(e, n); break;
    case N_CONCAT: {
        rc_node *parts[L_MAX_ARGS];
        for (int j = 0; j < n->nargs; j++)
            if (!(parts[j] = eval(e, e->args[n->arg0 + j]))) return NULL;
        v = rc_concat(g, n->nargs, parts);
        break;
    }
    case N_SLICE:
        v = rc_slice(g, eval(e, n->a), (int)wev(n->s0, e->H, e->I), (int)wev(n->s1, e->H, e->I));
        break;
    case N_DROPOUT: {
        /* one seed per dropout in the text and per layer: the same mask at every step */
        uint64_t h = fnv(1469598103934665603ull, lang_cell_name(e->p), strlen(lang_cell_name(e->p)));
        int pos[2] = { n->line, n->col };
        h = fnv(h, pos, sizeof pos);
        if (e->s->prefix) h = fnv(h, e->s->prefix, strlen(e->s->prefix));
        v = rc_dropout(g, eval(e, n->a), (float)n->num, h);
        break;
    }
    default: break;   /* constants are never evaluated on their own */
    }
    if (v && rc_graph_status(g) == RC_OK) {
        int shape[2], nd = shape_of(e, n, shape);
        if (rc_node_ndim(v) != nd || rc_node_dim(v, 0) != shape[0] || (nd == 2 && rc_node_dim(v, 1) != shape[1])) {
            rc_step_fail(e->s, "%s:%d:%d: internal error: the value has shape [%d%s%d], the checker said [%d%s%d]",
                         e->pool + e->p->file, n->line, n->col, rc_node_dim(v, 0), nd == 2 ? "," : "",
                         nd == 2 ? rc_node_dim(v, 1) : 0, shape[0], nd == 2 ? "," : "", nd == 2 ? shape[1] : 0);
            return NULL;
        }
    }
    return v;
}

static rc_init_kind init_kind(int k)
{
    switch (k) {
    case I_ZEROS: return RC_INIT_ZEROS;
    case I_CONST: return RC_INIT_CONST;
    case I_UNIFORM: return RC_INIT_UNIFORM;
    case I_GLOROT: return RC_INIT_GLOROT;
    case I_ORTHOGONAL: return RC_INIT_ORTHOGONAL;
    default: return RC_INIT_DEFAULT;
    }
}

rc_status lang_step(rc_step *s, void *user)
{
    const lang_prog *p = user;
    char msg[400];
    ev e = { .s = s, .g = rc_step_graph(s), .p = p, .nd = pnodes(p), .args = pargs(p), .pool = ppool(p),
             .H = p->hidden, .I = rc_step_input_size(s), .B = rc_step_batch(s) };
    if (lang_validate(p, (int)e.I, NULL, msg, sizeof msg) != 0) return rc_step_fail(s, "%s", msg);
    e.let = calloc((size_t)p->nbinds + 1, sizeof *e.let);
    e.next = calloc((size_t)p->nstates + 1, sizeof *e.next);
    if (!e.let || !e.next) {
        free(e.let);
        free(e.next);
        return rc_step_fail(s, "out of memory");
    }
    const lstmt *st = pstmts(p);
    rc_status r = RC_OK;
    for (int k = 0; k < p->nstmts && r == RC_OK; k++) {
        const lnode *x = &e.nd[st[k].expr];
        if (x->vk == V_SCALAR) continue;   /* a constant binding: used inline */
        rc_node *v = eval(&e, st[k].expr);
        if (!v) {
            r = rc_graph_status(e.g) != RC_OK ? rc_graph_status(e.g) : s->status != RC_OK ? s->status : RC_ERR_ARG;
            break;
        }
        if (st[k].kind == S_LET) e.let[st[k].ref] = v;
        else {
            e.next[st[k].ref] = v;
            r = rc_step_set_state(s, e.pool + pstates(p)[st[k].ref].name, v);
        }
    }
    if (r == RC_OK && rc_step_time(s) == 0) {
        const lparam *pa = pparams(p);
        for (int k = 0; k < p->nparams && r == RC_OK; k++) {
            if (!pa[k].init) continue;
            int shape[2] = { (int)wev(pa[k].w, e.H, e.I), (int)wev(pa[k].in, e.H, e.I) };
            rc_node *w = rc_step_param(s, e.pool + pa[k].name, pa[k].kind == P_WEIGHT ? 2 : 1, shape);
            r = w ? rc_param_set_init(w, init_kind(pa[k].init), (float)pa[k].init_a) : rc_graph_status(e.g);
        }
    }
    free(e.let);
    free(e.next);
    return r;
}

/* ---- public API -------------------------------------------------------------------- */

rc_cell *rc_cell_parse(const char *text, size_t len, const char *name, int hidden, char *err, size_t errlen)
{
    size_t size = 0;
    lang_prog *p = lang_compile(text, len, name, hidden, err, errlen, &size);
    if (!p) return NULL;
    char *src = malloc(len + 1);
    rc_cell *c = src ? rc_cell_new(lang_cell_name(p), p->hidden, lang_step, p) : NULL;
    if (!c) {
        free(src);
        free(p);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", name ? name : "cell");
        return NULL;
    }
    c->free_user = free;
    c->user_size = size;
    memcpy(src, text, len);
    src[len] = 0;
    c->source = src;
    for (int k = 0; k < p->nstates; k++)
        if (rc_cell_add_state(c, lang_state_name(p, k), lang_state_size(p, k)) != RC_OK) {
            if (err && errlen) snprintf(err, errlen, "%s: cannot add state '%s'", name ? name : "cell",
                                        lang_state_name(p, k));
            rc_cell_free(c);
            return NULL;
        }
    return c;
}

rc_cell *rc_cell_load(const char *path, int hidden, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!path) {
        if (err && errlen) snprintf(err, errlen, "rc_cell_load: NULL path");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open the cell file", path);
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int bad = !buf;
    while (!bad) {
        if (len == cap) {
            if (cap > LANG_MAX_TEXT) break;
            char *q = realloc(buf, cap * 2);
            if (!q) {
                bad = 1;
                break;
            }
            buf = q;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            bad = ferror(f) != 0;
            break;
        }
    }
    fclose(f);
    rc_cell *c = NULL;
    if (bad) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot read the cell file%s", path, buf ? "" : " (out of memory)");
    } else c = rc_cell_parse(buf, len, path, hidden, err, errlen);
    free(buf);
    return c;
}

const char *rc_cell_source(const rc_cell *c) { return c ? c->source : NULL; }
#endif
