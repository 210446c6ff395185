/* The cell language: its functions, and the checker (kinds, widths, names, how each
 * op is emitted). */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include "elementwise.h"
#include "lang_internal.h"

/* ---- functions ----------------------------------------------------------------------- */

/* The elementwise ops called as functions come from ops/elementwise_ops.def (lang FN);
 * the language spells the others (lang OP) itself: operators, or the entries below. */
#define EW_FNINFO_FN(ID, name) { #name, FN_##ID, 1, "a", 0 },
#define EW_FNINFO_OP(ID, name)
static const fninfo FNS[] = {
#define EW(ID, name, form, shape, F, DA, DB, reads, cost, vec, bka, bkb, lang) EW_FNINFO_##lang(ID, name)
#include "elementwise_ops.def"
#undef EW
    { "min", FN_MIN, 2, "a, b", 0 },              { "max", FN_MAX, 2, "a, b", 0 },
    { "minimum", FN_MIN, 2, "a, b", 1 },          { "maximum", FN_MAX, 2, "a, b", 1 },
    { "softmax", FN_SOFTMAX, 1, "a", 0 },         { "log_softmax", FN_LOG_SOFTMAX, 1, "a", 0 },
    { "row_mean", FN_ROW_MEAN, 1, "a", 0 },       { "row_var", FN_ROW_VAR, 1, "a", 0 },
    { "sum", FN_SUM, 1, "a", 0 },                 { "mean", FN_MEAN, 1, "a", 0 },
    { "row_sum", FN_SUM, 1, "a", 1 },
    { "concat", FN_CONCAT, -1, "a, b, ...", 0 },  { "slice", FN_SLICE, 3, "a, start, len", 0 },
    { "dropout", FN_DROPOUT, 2, "a, p", 0 },      { "matmul", FN_MATMUL, 2, "W, v", 0 },
    { "add", FN_ADD, 2, "a, b", 0 },              { "sub", FN_SUB, 2, "a, b", 0 },
    { "mul", FN_MUL, 2, "a, b", 0 },              { "div", FN_DIV, 2, "a, b", 0 },
    { "scale", FN_SCALE, 2, "a, c", 0 },          { "one_minus", FN_ONE_MINUS, 1, "a", 0 },
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

const fninfo *lang_find_fn(const char *name)
{
    for (int k = 0; k < NFNS; k++)
        if (strcmp(FNS[k].name, name) == 0) return &FNS[k];
    return NULL;
}

const char *lang_model_level(const char *name)
{
    for (int k = 0; k < NMODEL; k++)
        if (strcmp(MODEL_LEVEL[k].name, name) == 0) return MODEL_LEVEL[k].why;
    return NULL;
}

int lang_is_keyword(const char *name)
{
    for (int k = 0; k < NKEYWORDS; k++)
        if (strcmp(KEYWORDS[k], name) == 0) return 1;
    return 0;
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
    return lang_failat(c, ND(n)->line, ND(n)->col,
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
        return lang_failat(c, ND(n)->line, ND(n)->col, "%s(...) of a constant: expected a batch value or a vector", fn);
    return 0;
}

static int fold_ok(cx *c, int n, double v)
{
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return lang_failat(c, ND(n)->line, ND(n)->col, "this constant expression is %g: expected a finite value "
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
        return lang_failat(c, ND(n)->line, ND(n)->col, "a width here is too large: expected coefficients of H and I "
                      "and constants up to %lld", L_MAX_COEF);
    if (wfixed(w)) {
        long long v = wev(w, c->H, 0);
        if (v < 1 || v > LANG_MAX_WIDTH) {
            char d[160];
            wdesc(w, c->H, d, sizeof d);
            return lang_failat(c, ND(n)->line, ND(n)->col, "a value here would be %s wide: expected a width from 1 to "
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
            return lang_failat(c, r->line, r->col, "the widths of the two sides of %s differ: the left side is %s wide "
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
                return lang_failat(c, r->line, r->col, "division by the constant 0: expected a non-zero divisor");
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
    if ((k = lang_find_state(c, nm)) >= 0) {
        ND(n)->kind = N_STATE;
        ND(n)->ref = k;
        ND(n)->vk = V_ROW;
        ND(n)->w = c->states[k].size;
        return 0;
    }
    if ((k = lang_find_bind(c, nm)) >= 0) {
        lbind *b = &c->binds[k];
        if (b->stmt >= c->cur)
            return lang_failat(c, line, col, "'%s' is used before its definition on line %d: expected a binding defined "
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
        return lang_failat(c, line, col, "'%s' is the %s size, usable only in sizes: expected a value (the sizes are "
                      "in 'weight', 'vector' and 'state' declarations and slice(a, start, len))", nm,
                      nm[0] == 'H' ? "hidden" : "input");
    if (lang_find_fn(nm) || lang_model_level(nm))
        return lang_failat(c, line, col, "'%s' is a function: expected a call %s(...)", nm, nm);
    if (lang_is_keyword(nm))
        return lang_failat(c, line, col, "'%s' is a keyword: expected a value (a keyword starts a declaration line)", nm);
    k = lang_find_param(c, nm);
    if (k >= 0 && c->params[k].kind == P_WEIGHT)
        return lang_failat(c, line, col, "'%s' is a weight (%s line %d): expected it on the left of '@', as in %s @ v; "
                      "a name used elementwise is a vector parameter", nm,
                      c->params[k].decl_line ? "declared on" : "used with '@' on",
                      c->params[k].decl_line ? c->params[k].decl_line : c->params[k].use_line, nm);
    if (k < 0 && (k = lang_add_param(c, ND(n)->name, P_VECTOR)) < 0) return -1;
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
    int k = lang_find_state(c, nm), line = ND(n)->line, col = ND(n)->col;
    if (k < 0)
        return lang_failat(c, line, col, "'%s'' reads a new value, but '%s' is not a state: expected one of the "
                      "header's states", nm, nm);
    int set = c->states[k].set_stmt;
    if (set < 0)
        return lang_failat(c, line, col, "'%s'' is read, but state '%s' is never assigned: expected a line %s' = ... "
                      "above this one", nm, nm, nm);
    if (set >= c->cur)
        return lang_failat(c, line, col, "'%s'' is used before its definition on line %d: expected the assignment "
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
                     : lang_find_state(c, nm) >= 0 ? "a state"
                     : lang_find_bind(c, nm) >= 0 ? "a binding"
                     : (strcmp(nm, "H") == 0 || strcmp(nm, "I") == 0) ? "a size"
                     : (lang_find_fn(nm) || lang_model_level(nm)) ? "a function" : lang_is_keyword(nm) ? "a keyword" : NULL;
    if (what)
        return lang_failat(c, line, col, "'%s' is %s, not a weight: expected a weight's name on the left of '@' (a "
                      "name that is not the input, a state or a binding)", nm, what);
    k = lang_find_param(c, nm);
    if (k >= 0 && c->params[k].kind == P_VECTOR)
        return lang_failat(c, line, col, "'%s' is a vector parameter (%s line %d), not a weight: expected a weight's "
                      "name on the left of '@'", nm, c->params[k].decl_line ? "declared on" : "used elementwise on",
                      c->params[k].decl_line ? c->params[k].decl_line : c->params[k].use_line);
    if (k < 0) {
        if ((k = lang_add_param(c, ND(n)->name, P_WEIGHT)) < 0) return -1;
        c->params[k].known = 1;
        c->params[k].w = (lw){ 1, 0, 0 };
    }
    if (check_node(c, ND(n)->a) || need_known(c, ND(n)->a)) return -1;
    lparam *p = &c->params[k];
    const lnode *v = ND(ND(n)->a);
    if (v->vk != V_ROW)
        return lang_failat(c, ND(n)->line2, ND(n)->col2, "the right side of '@' is %s: expected a batch value (the "
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
            return lang_failat(c, ND(n)->line2, ND(n)->col2, "weight '%s' is applied to a value %s wide here, but to one "
                          "%s wide on line %d: expected one input width per weight", nm, d1, d0, p->in_line);
        }
        ND(n)->defer = rel == R_DEFER;
    }
    ND(n)->ref = k;
    ND(n)->vk = V_ROW;
    ND(n)->w = p->w;
    return 0;
}

/* An elementwise function (fn < FN_EW_END) of a constant, folded by the op's own
 * formula (elementwise.h), so the constant is what the op would compute. */
#define EW_FOLD_FN(ID, name) case FN_##ID: return (double)ew_f_##name(v, 0.0f, 0.0f);
#define EW_FOLD_OP(ID, name)
static double fold1(int fn, double x)
{
    float v = (float)x;   /* a folded constant is within float range */
    switch (fn) {
#define EW(ID, name, form, shape, F, DA, DB, reads, cost, vec, bka, bkb, lang) EW_FOLD_##lang(ID, name)
#include "elementwise_ops.def"
#undef EW
    default: return NAN;
    }
}

static int check_call(cx *c, int n)
{
    const char *nm = STR(ND(n)->name);
    int line = ND(n)->line, col = ND(n)->col;
    const fninfo *f = lang_find_fn(nm);
    if (!f) {
        const char *why = lang_model_level(nm);
        if (why) return lang_failat(c, line, col, "%s(...) cannot be used in a cell: %s", nm, why);
        const char *best = NULL;
        int bd = 3;
        for (int k = 0; k < NFNS; k++) consider(nm, FNS[k].name, &best, &bd);
        char hint[64] = "";
        if (best) snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
        size_t need = 1;
        for (int k = 0; k < NFNS; k++) need += strlen(FNS[k].name) + 2;
        char list[need];
        size_t used = 0;
        for (int k = 0; k < NFNS; k++)
            if (!FNS[k].alias) used += (size_t)snprintf(list + used, need - used, "%s%s", used ? ", " : "", FNS[k].name);
        return lang_failat(c, line, col, "unknown function '%s'%s: expected one of %s", nm, hint, list);
    }
    int na = ND(n)->nargs, a0 = ND(n)->arg0;
    if ((f->arity >= 0 && na != f->arity) || (f->arity < 0 && na < 1))
        return lang_failat(c, line, col, "%s takes %s%d argument%s (%s), got %d", nm, f->arity < 0 ? "at least " : "",
                      f->arity < 0 ? 1 : f->arity, (f->arity == 1 || f->arity < 0) ? "" : "s", f->args, na);
    int a = na > 0 ? c->args[a0] : -1, b = na > 1 ? c->args[a0 + 1] : -1;
    switch (f->fn) {
    case FN_MATMUL:
        if (ND(a)->kind != N_NAME)
            return lang_failat(c, ND(a)->line, ND(a)->col, "the first argument of matmul(W, v) must be a weight's name");
        ND(n)->kind = N_MATMUL;
        ND(n)->name = ND(a)->name;
        ND(n)->line2 = ND(b)->line;
        ND(n)->col2 = ND(b)->col;
        ND(n)->a = b;
        return check_matmul(c, n);
    case FN_ADD: case FN_SUB: case FN_MUL: case FN_DIV: case FN_SCALE:
        if (check_node(c, a) || check_node(c, b)) return -1;
        if (f->fn == FN_SCALE && ND(b)->vk != V_SCALAR)
            return lang_failat(c, ND(b)->line, ND(b)->col, "the factor of scale(a, c) is %s: expected a constant",
                          vk_name(ND(b)->vk));
        ND(n)->kind = N_BIN;
        ND(n)->op = f->fn == FN_ADD ? '+' : f->fn == FN_SUB ? '-' : f->fn == FN_DIV ? '/' : '*';
        ND(n)->a = a;
        ND(n)->b = b;
        return type_binary(c, n);
    case FN_ONE_MINUS: {
        if (check_node(c, a)) return -1;
        int one = lang_mknode(c, N_NUM, line, col);
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
                return lang_failat(c, ND(p)->line, ND(p)->col, "part %d of concat(...) is %s and part 1 is %s: expected "
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
                return lang_failat(c, line, col, "slice(a, %lld, %lld) takes columns [%lld, %lld) of a value %s wide: "
                              "expected start >= 0, len >= 1 and start + len <= %lld", st, len, st, st + len, d, wa);
            }
        } else r->defer = 1;
        return wcheck(c, n, s1);
    }
    case FN_DROPOUT: {
        if (check_node(c, a) || need_tensor(c, a, "dropout") || check_node(c, b)) return -1;
        double p = ND(b)->num;
        if (ND(b)->vk != V_SCALAR || !(p >= 0.0 && (float)p < 1.0f))
            return lang_failat(c, ND(b)->line, ND(b)->col, "the drop probability of dropout(a, p) must be a constant in "
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
        if (f->fn < FN_EW_END && ND(a)->vk == V_SCALAR) return fold_ok(c, n, fold1(f->fn, ND(a)->num));
        if (need_tensor(c, a, nm)) return -1;
        r = ND(n);
        r->vk = ND(a)->vk;
        r->w = ND(a)->w;
        /* sum and mean reduce each row: a step is per sequence, and a sum over the
         * batch would mix its sequences (a vector is one row: its total) */
        if (f->fn == FN_ROW_MEAN || f->fn == FN_ROW_VAR || f->fn == FN_SUM || f->fn == FN_MEAN) r->w = wconst(1);
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
            return lang_failat(c, line, col, "a size is a whole number, found %g: expected an integer expression of H "
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
                return lang_failat(c, line, col, "a state's size cannot depend on the input size I: expected an "
                              "integer expression of H");
            *out = (lw){ 0, 1, 0 };
            return 0;
        }
        return lang_failat(c, line, col, "'%s' in a size: expected an integer expression of H (the hidden size) and I "
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
                return lang_failat(c, line, col, "a product of two sizes that both depend on H or I: expected a size "
                              "linear in H and I (such as 4*H + I)");
            long long k = ka ? a.c : b.c;
            lw v = ka ? b : a;
            *out = (lw){ k * v.h, k * v.i, k * v.c };
        } else {
            if (!kb || b.c == 0)
                return lang_failat(c, line, col, "a size divided by %s: expected division by a non-zero whole number",
                              kb ? "zero" : "something that depends on H or I");
            long long d = b.c;
            if (a.h % d == 0 && a.i % d == 0 && a.c % d == 0) *out = (lw){ a.h / d, a.i / d, a.c / d };
            else if (a.i == 0 && (a.h * c->H + a.c) % d == 0) *out = wconst((a.h * c->H + a.c) / d);
            else {
                char f[96];
                wfmt(a, f, sizeof f);
                return lang_failat(c, line, col, "(%s) / %lld is not a whole number: expected a size that divides "
                              "exactly", f, d);
            }
        }
        if (wbig(*out))
            return lang_failat(c, line, col, "a size here is too large: expected coefficients and constants up to %lld",
                          L_MAX_COEF);
        return 0;
    }
    default:
        return lang_failat(c, line, col, "a size is an integer expression of H and I (numbers, + - * /, parentheses): "
                      "found %s", q->kind == N_CALL ? "a function call" : q->kind == N_NEW ? "a state's new value"
                                 : "an '@'");
    }
}

/* A declared size: its width, checked to lie within 1..LANG_MAX_WIDTH when it is fixed. */
int lang_decl_size(cx *c, int expr, int allow_i, lw *out, const char *what, const char *name)
{
    if (size_eval(c, expr, allow_i, out)) return -1;
    if (wfixed(*out)) {
        long long v = wev(*out, c->H, 0);
        if (v < 1 || v > LANG_MAX_WIDTH) {
            char d[160];
            wdesc(*out, c->H, d, sizeof d);
            return lang_failat(c, ND(expr)->line, ND(expr)->col, "the size of %s '%s' is %s: expected a size from 1 to %d",
                          what, name, d, LANG_MAX_WIDTH);
        }
    }
    return 0;
}

int lang_check_all(cx *c)
{
    if (c->override > 0) c->H = c->override;
    else if (c->hidden_line) c->H = c->hidden;
    else
        return lang_failat(c, c->head_line, c->head_col, "cell '%s' has no hidden size: expected a line 'hidden N' in "
                      "the cell, or a hidden size given when it is loaded (e.g. --hidden)", STR(c->cell));
    for (int k = 0; k < c->nst; k++) {
        lstate *s = &c->states[k];
        s->size = (lw){ 1, 0, 0 };
        if (s->size_expr >= 0 && lang_decl_size(c, s->size_expr, 0, &s->size, "state", STR(s->name))) return -1;
    }
    for (int k = 0; k < c->np; k++) {
        lparam *p = &c->params[k];
        for (int j = 0; j < c->nb; j++)
            if (strcmp(STR(c->binds[j].name), STR(p->name)) == 0)
                return lang_failat(c, c->binds[j].line, c->binds[j].col, "name '%s' is bound twice: expected one meaning "
                              "(it is declared as a %s on line %d)", STR(p->name),
                              p->kind == P_WEIGHT ? "weight" : "vector", p->decl_line);
        if (p->decl_size >= 0) {
            if (lang_decl_size(c, p->decl_size, 1, &p->w, p->kind == P_WEIGHT ? "weight" : "vector", STR(p->name)))
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
            return lang_failat(c, st->line, st->col, "the new value of state '%s' is %s: expected a batch value of the "
                          "state's size", nm, vk_name(ND(e)->vk));
        int rel = wrel(ND(e)->w, s->size, c->H, NULL);
        if (rel == R_NEVER) {
            char d0[160], d1[160];
            wdesc(s->size, c->H, d0, sizeof d0);
            wdesc(ND(e)->w, c->H, d1, sizeof d1);
            return lang_failat(c, st->line, st->col, "the new value of state '%s' is %s wide: expected the state's size, "
                          "%s", nm, d1, d0);
        }
        st->defer = rel == R_DEFER;
    }
    for (int k = 0; k < c->nst; k++)
        if (c->states[k].set_stmt < 0)
            return lang_failat(c, c->states[k].line, c->states[k].col, "state '%s' is never assigned: expected a line "
                          "%s' = ...", STR(c->states[k].name), STR(c->states[k].name));
    for (int k = 0; k < c->nb; k++)
        if (c->binds[k].uses == 0)
            return lang_failat(c, c->binds[k].line, c->binds[k].col, "'%s' is bound but never used: expected every "
                          "binding to be used by a later line", STR(c->binds[k].name));
    for (int k = 0; k < c->np; k++)
        if (!c->params[k].used)
            return lang_failat(c, c->params[k].decl_line, c->params[k].decl_col, "%s '%s' is declared but never used",
                          c->params[k].kind == P_WEIGHT ? "weight" : "vector", STR(c->params[k].name));
    for (int k = 0; k < c->ni; k++) {
        linit *in = &c->inits[k];
        const char *nm = STR(in->name);
        int j = lang_find_param(c, nm);
        if (j < 0) {
            const char *what = strcmp(nm, STR(c->input)) == 0 ? "the cell's input" : lang_find_state(c, nm) >= 0
                             ? "a state (initial states are zeros, given or learned: rc_unroll_opts)"
                             : lang_find_bind(c, nm) >= 0 ? "a binding" : NULL;
            if (what)
                return lang_failat(c, in->line, in->col, "'%s' is %s, not a parameter: expected a weight or vector "
                              "parameter after 'init'", nm, what);
            return lang_failat(c, in->line, in->col, "'%s' is not a parameter of the cell (no expression uses it): "
                          "expected a weight (W @ v) or a vector parameter after 'init'", nm);
        }
        lparam *p = &c->params[j];
        if (p->init)
            return lang_failat(c, in->line, in->col, "parameter '%s' has two init lines (the first is line %d): "
                          "expected one", nm, p->init_line);
        if (p->kind == P_VECTOR && (in->kind == I_GLOROT || in->kind == I_ORTHOGONAL))
            return lang_failat(c, in->line, in->col, "'%s' is a vector: expected const, zeros, uniform or default "
                          "(glorot and orthogonal initialise matrices)", nm);
        p->init = in->kind;
        p->init_a = in->a;
        p->init_line = in->line;
    }
    return 0;
}
