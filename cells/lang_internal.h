/* Internal to the cell language (cells/lang_*.c): the program's types, the compile
 * context, widths, and the functions the files share. See lang.h for the interface.
 *
 *   source --lex/parse--> nodes, statements, declarations        lang_lex.c, lang_parse.c
 *          --check------> every value's kind (constant, vector,   lang_check.c
 *                         batch value) and width in H and I;
 *                         names resolved; how each op is emitted
 *          --freeze-----> lang_prog: one pointer-free block       lang_prog.c
 *                         (the cell's user data)
 *   unroll --lang_validate (widths that wait for I)-->           lang_prog.c
 *          lang_step: rc_* calls                                  lang_step.c
 *
 * All but lang_step.c use only the C library (build them with -DLANG_CHECK_ONLY to get
 * the parser and checker without the graph code, as the fuzz harness may). */
#ifndef RC_LANG_INTERNAL_H
#define RC_LANG_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lang.h"

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

/* The functions: first FN_<ID> of each elementwise op the language calls as a function
 * (lang FN in ops/elementwise_ops.def), up to FN_EW_END; then the others. */
#define EW_LANG_FN(ID) FN_##ID,
#define EW_LANG_OP(ID)
enum fn {
#define EW(ID, name, form, shape, F, DA, DB, reads, cost, vec, bka, bkb, lang) EW_LANG_##lang(ID)
#include "elementwise_ops.def"
#undef EW
    FN_EW_END,
    FN_SOFTMAX = FN_EW_END, FN_LOG_SOFTMAX, FN_ROW_MEAN, FN_ROW_VAR, FN_SUM, FN_MEAN,
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
    int alias;       /* another name of a function listed before (not in "expected one of") */
} fninfo;


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

#define STR(off) (c->pool + (off))

/* ---- widths ------------------------------------------------------------------------ */

static inline lw wconst(long long v) { lw w = { 0, 0, v }; return w; }
static inline long long wev(lw w, long long H, long long I) { return w.h * H + w.i * I + w.c; }
static inline int wbig(lw w) { return llabs(w.h) > L_MAX_COEF || llabs(w.i) > L_MAX_COEF || llabs(w.c) > L_MAX_COEF; }
static inline int wfixed(lw w) { return w.i == 0; }   /* known once H is (always, in a checked cell) */
static inline int wone(lw w, long long H) { return w.i == 0 && w.h * H + w.c == 1; }

enum { R_EQUAL, R_DEFER, R_NEVER };
/* Whether widths a and b are equal: always, for one input size I only (*iv), never. */
static inline int wrel(lw a, lw b, long long H, long long *iv)
{
    long long di = a.i - b.i, dc = (a.h - b.h) * H + (a.c - b.c);
    if (di == 0) return dc == 0 ? R_EQUAL : R_NEVER;
    if ((-dc) % di != 0 || -dc / di < 1) return R_NEVER;
    if (iv) *iv = -dc / di;
    return R_DEFER;
}

/* "2*H + I - 1" */
static inline void wfmt(lw w, char *buf, size_t n)
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
static inline void wdesc(lw w, long long H, char *buf, size_t n)
{
    char f[96];
    wfmt(w, f, sizeof f);
    if (w.i == 0 && w.h != 0) snprintf(buf, n, "%.96s (= %lld)", f, w.h * H + w.c);
    else snprintf(buf, n, "%.96s", f);
}

/* ---- shared by the files ---------------------------------------------------------- */

/* lang_lex.c: errors, memory, the lexer */
int lang_failat(cx *c, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int lang_nomem(cx *c);
void *lang_grow(void *p, int *cap, int need, size_t elem);
int lang_pool_add(cx *c, const char *s, size_t n);
int lang_expected(cx *c, const char *what);
int lang_lex(cx *c);
int lang_tok_is(const cx *c, const tok *t, const char *word);

/* lang_parse.c: the parser */
int lang_parse_file(cx *c);
int lang_mknode(cx *c, int kind, int line, int col);
int lang_find_state(const cx *c, const char *name);
int lang_find_bind(const cx *c, const char *name);
int lang_find_param(const cx *c, const char *name);
int lang_add_param(cx *c, int name, int kind);

/* lang_check.c: names, the checker */
const fninfo *lang_find_fn(const char *name);
const char *lang_model_level(const char *name);
int lang_is_keyword(const char *name);
int lang_decl_size(cx *c, int expr, int allow_i, lw *out, const char *what, const char *name);
int lang_check_all(cx *c);

#endif
