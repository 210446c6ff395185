/* Internal to cells/mutate*.c: the mutable form of a cell program (mcell: expression
 * trees, one per binding and state assignment), a growing string, and the helpers the
 * files share. mutate_tree.c: the form and its printer; mutate_ops.c: the mutations;
 * mutate_check.c: the candidate check and parameter counts; mutate_canon.c: the
 * canonical form; mutate.c: the public entry points (recur.h). */
#ifndef RC_MUTATE_INTERNAL_H
#define RC_MUTATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "lang_internal.h"
#include "mutate.h"
#include "recur.h"

PROG_ARRAY(lbind, pbinds, o_binds)

/* A message into err (may be NULL); returns -1. */
int mut_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Item k of 0 .. nnodes + nstmts - 1 of a checked program: 1 with the two widths *a, *b
 * that must be equal once I is known (a deferred binary op, matmul input or state
 * assignment), 0 when item k defers no width check. */
int mut_deferred_widths(const lang_prog *p, int k, lw *a, lw *b);

/* A growing NUL-terminated string; oom set once memory ran out (then nothing is added). */
typedef struct sb {
    char *s;
    size_t n, cap;
    int oom;
} sb;

typedef struct mnode {
    int kind, op;        /* N_* of lang_internal.h as checked; every constant is N_NUM */
    int a, b;            /* children, or -1 */
    int arg0, nargs;     /* N_CONCAT: m->args[arg0 .. arg0 + nargs) */
    int ref;             /* N_STATE, N_NEW: state; N_LET: binding; N_VEC, N_MATMUL: parameter */
    int name;            /* N_FN: pool offset of the function's name */
    int s0, s1;          /* N_SLICE: pool offsets of the start and length texts */
    int vk;              /* V_SCALAR, V_VEC, V_ROW */
    lw w;                /* the width the checker gave (mutations keep it) */
    double num;          /* a constant; N_DROPOUT: p */
} mnode;

typedef struct mstmt {
    int kind, ref, expr, live;   /* S_LET: binding ref; S_SET: state ref */
} mstmt;

typedef struct mparam {
    int name, kind, decl, init, used;   /* decl: pool offset of "weight/vector NAME : SIZE"'s SIZE, or -1 */
    double init_a;
} mparam;

typedef struct mstate {
    int name, size, set;   /* size: pool offset of "state NAME : SIZE"'s SIZE, or -1; set: its statement */
    lw w;
} mstate;

typedef struct mbind {
    int name, stmt;
} mbind;

struct mcell {
    int cell, input, hidden, nst;
    mstate st[L_MAX_STATES];
    mparam *pa;
    int np, cappa;
    mbind *bd;
    int nb, capbd;
    mstmt *sm;
    int ns, capsm;
    mnode *nd;
    int nn, capn;
    int *args;
    int na, capa;
    char *pool;
    int npool, cappool;
    int oom;
};

#define MS(m, off) ((m)->pool + (off))

/* mutate_tree.c: text appended to b (nothing once b->oom). */
void mut_sb_add(sb *b, const char *s, size_t n);
void mut_sb_str(sb *b, const char *s);
void mut_sb_fmt(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* mutate_tree.c: s[0..n) copied into m's pool: its offset, or -1 (out of memory). */
int mut_m_pool(mcell *m, const char *s, size_t n);
/* mutate_tree.c: a new node: its index, or -1 (out of memory). */
int mut_m_node(mcell *m, int kind, int vk, lw w);
/* mutate_tree.c: a new parameter (P_WEIGHT / P_VEC) named name: its index, or -1. */
int mut_add_param(mcell *m, const char *name, int kind, int decl);
/* mutate_tree.c: marks the statements (and parameters) the states' assignments need. */
void mut_mark_live(mcell *m);
/* mutate_ops.c: a uniform integer in [0, n). */
int mut_rnd(rng_t *r, int n);
/* mutate_check.c: the parameter scalars of p at hidden size H and input size I. */
long long mut_params_at(const lang_prog *p, long long H, long long I);

#endif
