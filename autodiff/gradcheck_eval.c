/* The loss as the gradient check evaluates it (see gradcheck.h).
 *
 * Kinks held: relu, abs, minimum and maximum are piecewise linear, and a central
 * difference whose step straddles one of their kinks averages two slopes. In a cell
 * unrolled over many rows some kink lies within any useful step of most entries, so
 * the check would see errors of several percent in correct gradients. Here each such
 * op keeps, at every element, the piece it took at the base point: relu the identity
 * or zero, abs +x, -x (or 0 at exactly 0), minimum and maximum their first or second
 * operand. The loss so evaluated equals the true one at the base point and has the
 * same derivative there (the chain rule goes through the same pieces), but no kink.
 * The pieces are chosen from the forward values alone, never from a derivative
 * formula, so a wrong backward of these ops is still caught. At an exact tie the
 * piece is the forward's own (relu(0): zero; minimum, maximum: the first operand;
 * abs(0): slope 0), which is what their backward uses.
 *
 * The sum in double: a loss of 3e3 in float carries a rounding of 1e-4, as large as
 * the change a step of 1e-2 makes in a small gradient entry. A scalar computed from
 * sums and means (a sum, a scaled sum, a sum of sums, a fused group of those) is
 * recomputed in double from the operands of the sums, whose own rounding is that of
 * their much smaller elements. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "elementwise.h"
#include "fused.h"
#include "gradcheck.h"

void (*gc_test_tamper)(const rc_node *x, float *g, size_t n) = NULL;

static int is_kink(int op) { return op == OP_RELU || op == OP_ABS || op == OP_MIN || op == OP_MAX; }

/* The piece an op's forward takes at (x, y): 1 the first (identity, +x, first
 * operand), 2 the second (-x, second operand), 0 the flat one (relu's zero, abs at 0). */
static unsigned char piece_of(int op, float x, float y)
{
    switch (op) {
    case OP_RELU: return x > 0;
    case OP_ABS: return x > 0 ? 1 : x < 0 ? 2 : 0;
    case OP_MIN: return x <= y ? 1 : 2;
    default: return x >= y ? 1 : 2;   /* OP_MAX */
    }
}

static float piece_value(int op, unsigned char m, float x, float y)
{
    if (m == 1) return x;
    if (m == 0) return 0.0f;
    return op == OP_ABS ? -x : y;
}

/* The same in double, for the scalar tail. */
static double piece_value_d(int op, unsigned char m, double x, double y)
{
    if (m == 1) return x;
    if (m == 0) return 0.0;
    return op == OP_ABS ? -x : y;
}

/* An elementwise op's value by its own formula (elementwise.h), as the kernels compute it. */
static float ew_value(int op, float x, float y, float c)
{
    switch (op) {
#define EW(ID, name, ...) case OP_##ID: return ew_f_##name(x, y, c);
#include "elementwise_ops.def"
#undef EW
    default: return NAN;
    }
}

/* The same op in double where its formula is plain arithmetic or libm; others in float. */
static double ew_value_d(int op, double x, double y, float c)
{
    switch (op) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    case OP_DIV: return x / y;
    case OP_SCALE: return (double)c * x;
    case OP_ONE_MINUS: return 1.0 - x;
    case OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case OP_TANH: return tanh(x);
    case OP_SOFTPLUS: return fmax(x, 0.0) + log1p(exp(-fabs(x)));
    case OP_SQRT: return sqrt(x);
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SOFTSIGN: return x / (1.0 + fabs(x));
    default: return (double)ew_value(op, (float)x, (float)y, c);
    }
}

/* ---- the forward hook: kinks held ------------------------------------------------- */

/* Element (r, c) of external operand k of a fused program (fused.h's addressing). */
static float ext_at(const op_inst *it, const fused_prog *P, int k, size_t r, size_t c)
{
    const fz_ext *x = &P->ext[k];
    const tensor *t = it->in[k];
    size_t ld = (size_t)tensor_cols(t);
    const float *w = (const float *)t->data + (size_t)x->roff * ld + (size_t)x->coff;
    switch (x->mode) {
    case 0: return w[r * ld + c];
    case 1: return w[c];
    case 2: return w[r * ld];
    default: return w[0];
    }
}

static int forward_hook(op_inst *it, int k, char *msg, void *ctx)
{
    (void)msg;
    const gc_eval *e = ctx;
    if (e->off[k] == SIZE_MAX) return 1;
    unsigned char *m = e->piece + e->off[k];
    size_t N = it->out->size;
    float *o = it->out->data;
    if (it->op != OP_FUSED) {
        const float *a = it->in[0]->data, *b = it->nin > 1 ? it->in[1]->data : a;
        for (size_t i = 0; i < N; i++) {   /* minimum, maximum: operands of one shape */
            if (e->record) m[i] = piece_of(it->op, a[i], b[i]);
            o[i] = piece_value(it->op, m[i], a[i], b[i]);
        }
        return 0;
    }
    /* a fused program with a kink: its instructions one element at a time */
    const fused_prog *P = it->par->fused;
    size_t C = (size_t)tensor_cols(it->out), R = N / C;
    float reg[FZ_MAX_INS];
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++) {
            size_t at = r * C + c, kink = 0;
            for (int i = 0; i < P->nins; i++) {
                const fz_ins *q = &P->ins[i];
                float x = q->a >= 0 ? reg[q->a] : ext_at(it, P, -q->a - 1, r, c);
                float y = ew_arity(q->op) < 2 ? x : q->b >= 0 ? reg[q->b] : ext_at(it, P, -q->b - 1, r, c);
                if (!is_kink(q->op)) {
                    reg[i] = ew_value(q->op, x, y, q->c);
                    continue;
                }
                unsigned char *mm = m + kink++ * N + at;
                if (e->record) *mm = piece_of(q->op, x, y);
                reg[i] = piece_value(q->op, *mm, x, y);
            }
            o[at] = reg[P->nins - 1];
        }
    return 0;
}

/* ---- the scalar tail in double --------------------------------------------------- */

static double tail(const gc_eval *e, int id, int depth);

/* Element idx of a value: in double through the tail when it is a scalar. */
static double value_at(const gc_eval *e, const tensor *t, size_t idx, int depth)
{
    int id = (int)(t - e->p->val);
    if (t->size == 1 && depth < 64) return tail(e, id, depth + 1);
    return ((const float *)t->data)[idx];
}

static double tail(const gc_eval *e, int id, int depth)
{
    const tensor *t = &e->p->val[id];
    double f = ((const float *)t->data)[0];
    int k = e->tape_of[id];
    if (k < 0 || t->size != 1) return f;
    const op_inst *it = &e->p->tape[k];
    const unsigned char *m = e->off[k] == SIZE_MAX ? NULL : e->piece + e->off[k];
    if (it->op == OP_SUM || it->op == OP_MEAN) {
        const tensor *a = it->in[0];
        if (e->p->shared[a - e->p->val] & PLAN_SHARED_VALUE) return f;
        double s = 0;
        for (size_t i = 0; i < a->size; i++) s += ((const float *)a->data)[i];
        return it->op == OP_MEAN ? s / (double)a->size : s;
    }
    if (it->op == OP_FUSED) {
        const fused_prog *P = it->par->fused;
        double reg[FZ_MAX_INS];
        size_t kink = 0;
        for (int i = 0; i < P->nins; i++) {
            const fz_ins *q = &P->ins[i];
            double x, y;
            int refs[2] = { q->a, ew_arity(q->op) < 2 ? q->a : q->b };
            double v[2];
            for (int j = 0; j < 2; j++) {
                int r = refs[j];
                if (r >= 0) {
                    v[j] = reg[r];
                    continue;
                }
                const fz_ext *x_ = &P->ext[-r - 1];
                const tensor *a = it->in[-r - 1];
                v[j] = value_at(e, a, (size_t)x_->roff * (size_t)tensor_cols(a) + (size_t)x_->coff, depth);
            }
            x = v[0];
            y = v[1];
            reg[i] = is_kink(q->op) && m ? piece_value_d(q->op, m[kink++], x, y) : ew_value_d(q->op, x, y, q->c);
        }
        return reg[P->nins - 1];
    }
    if (!ew_is(it->op)) return f;
    double x = value_at(e, it->in[0], 0, depth), y = it->nin > 1 ? value_at(e, it->in[1], 0, depth) : x;
    if (is_kink(it->op)) return m ? piece_value_d(it->op, m[0], x, y) : f;
    return ew_value_d(it->op, x, y, it->par ? it->par->f[0] : 0.0f);
}

/* ---- setup and runs ---------------------------------------------------------------- */

rc_status gc_eval_init(gc_eval *e, rc_plan *p, const rc_node *loss)
{
    memset(e, 0, sizeof *e);
    e->p = p;
    e->loss_id = node_resolve((rc_node *)loss)->id;
    e->off = malloc(((size_t)p->ntape + 1) * sizeof *e->off);
    e->tape_of = malloc(((size_t)p->nnodes + 1) * sizeof *e->tape_of);
    if (!e->off || !e->tape_of) {
        gc_eval_free(e);
        return plan_fail(p, RC_ERR_NOMEM, "gradcheck: out of memory");
    }
    for (int i = 0; i < p->nnodes; i++) e->tape_of[i] = -1;
    size_t n = 0;
    for (int k = 0; k < p->ntape; k++) {
        const op_inst *it = &p->tape[k];
        e->tape_of[p->tape_node[k]] = k;
        size_t kinks = 0;
        if (is_kink(it->op)) kinks = 1;
        else if (it->op == OP_FUSED)
            for (int i = 0; i < it->par->fused->nins; i++) kinks += is_kink(it->par->fused->ins[i].op);
        e->off[k] = kinks ? n : SIZE_MAX;
        n += kinks * it->out->size;
    }
    e->npiece = n;
    e->piece = calloc(n + 1, 1);
    if (!e->piece) {
        gc_eval_free(e);
        return plan_fail(p, RC_ERR_NOMEM, "gradcheck: out of memory");
    }
    return RC_OK;
}

void gc_eval_free(gc_eval *e)
{
    free(e->off);
    free(e->tape_of);
    free(e->piece);
    memset(e, 0, sizeof *e);
}

rc_status gc_eval_loss(gc_eval *e, double *L)
{
    rc_status s = plan_forward_hooked(e->p, forward_hook, e);
    if (s == RC_OK) *L = tail(e, e->loss_id, 0);
    return s;
}

rc_status gc_eval_record(gc_eval *e, double *L)
{
    e->record = 1;
    rc_status s = gc_eval_loss(e, L);
    e->record = 0;
    return s;
}
