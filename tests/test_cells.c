/* Tests of the recurrent cells (cells/): rc_cell_*, rc_step_*, rc_unroll, and the
 * LSTM's parameter initialisation, through the public API. One test (the one that
 * proves the gradient check can fail) also reaches the op table through op.h.
 *
 * Suite `cells`:
 *  - forward_*: every built-in cell (LSTM default / peepholes / no forget, input or
 *    output gate, GRU reset-after / reset-before, tanh and relu RNN, MUT1-3) against a
 *    double-precision reference written here with plain loops from the published
 *    equations, with zero and with given initial states: all outputs, final states.
 *  - gradcheck_*: BPTT gradient check (rc_gradcheck) of every built-in cell on all
 *    parameters, the input sequence and the given initial states; a user-defined cell
 *    (minimal gated unit plus a second state of another size and its own output); a
 *    two-layer stack ("l0." / "l1."); a hand-built bidirectional layer ("fwd." /
 *    "rev." on the time-reversed sequence); learned initial states.
 *  - gradcheck_catches_wrong_tanh_backward: a 1% error in one backward kernel is seen.
 *  - truncated_bptt_*: windows carried through fed initial states equal one long run.
 *  - masked_batch_*: a padded batch with a mask equals each sequence run alone
 *    (outputs, padding zeros, final states, loss, parameter and input gradients).
 *  - parameters_*: each parameter exists once however long the unroll, with the
 *    counts and shapes the equations give.
 *  - error_*: user mistakes return an error whose message says what is wrong (also a
 *    step that sums over the batch).
 *  - lstm_forget_bias_init / init_*: rc_graph_init_params on cell parameters.
 *
 * Checks are non-fatal (cr_expect) so that every test frees what it made: the suite
 * runs under AddressSanitizer's leak checker. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "op.h"   /* op_table: only for gradcheck_catches_wrong_tanh_backward */

/* Central-difference step and the largest accepted gradient-check error. */
#define GC_EPS 0.05f
#define GC_TOL 5e-3
/* Forward agreement: |a - b| <= FWD_TOL * (1 + |b|). */
#define FWD_TOL 1e-5

/* Bounds of the fixed-size arrays used below. */
#define MAXH 16
#define MAXI 16
#define MAXB 4
#define MAXT 16
#define MAXP 24

/* ---- data ---------------------------------------------------------------------- */

/* splitmix64: the test's own deterministic generator. */
static uint64_t rnd_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rnd_unif(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rnd_next(s) >> 11) * 0x1.0p-53);
}

static void rnd_fill(uint64_t *s, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = rnd_unif(s, lo, hi);
}

/* A seed derived from a label (FNV-1a), so each case has its own data. */
static uint64_t seed_of(const char *label)
{
    uint64_t h = 1469598103934665603ull;
    for (; *label; label++) h = (h ^ (unsigned char)*label) * 1099511628211ull;
    return h;
}

static void to_double(const float *f, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = f[i];
}

/* ---- the cells under test ------------------------------------------------------- */

typedef enum cell_kind {
    K_LSTM, K_GRU_AFTER, K_GRU_BEFORE, K_RNN_TANH, K_RNN_RELU, K_MUT1, K_MUT2, K_MUT3
} cell_kind;

typedef struct spec {
    const char *label;
    cell_kind kind;
    int peep, no_f, no_i, no_o;   /* LSTM options */
} spec;

enum {
    S_LSTM, S_LSTM_PEEP, S_LSTM_NO_F, S_LSTM_NO_I, S_LSTM_NO_O, S_GRU_A, S_GRU_B,
    S_RNN_TANH, S_RNN_RELU, S_MUT1, S_MUT2, S_MUT3, NSPECS
};

static const spec SPECS[NSPECS] = {
    [S_LSTM] = {"lstm", K_LSTM, 0, 0, 0, 0},
    [S_LSTM_PEEP] = {"lstm_peepholes", K_LSTM, 1, 0, 0, 0},
    [S_LSTM_NO_F] = {"lstm_no_forget_gate", K_LSTM, 0, 1, 0, 0},
    [S_LSTM_NO_I] = {"lstm_no_input_gate", K_LSTM, 0, 0, 1, 0},
    [S_LSTM_NO_O] = {"lstm_no_output_gate", K_LSTM, 0, 0, 0, 1},
    [S_GRU_A] = {"gru_reset_after", K_GRU_AFTER, 0, 0, 0, 0},
    [S_GRU_B] = {"gru_reset_before", K_GRU_BEFORE, 0, 0, 0, 0},
    [S_RNN_TANH] = {"rnn_tanh", K_RNN_TANH, 0, 0, 0, 0},
    [S_RNN_RELU] = {"rnn_relu", K_RNN_RELU, 0, 0, 0, 0},
    [S_MUT1] = {"mut1", K_MUT1, 0, 0, 0, 0},
    [S_MUT2] = {"mut2", K_MUT2, 0, 0, 0, 0},
    [S_MUT3] = {"mut3", K_MUT3, 0, 0, 0, 0},
};

static rc_cell *make_cell(const spec *sp, int H)
{
    switch (sp->kind) {
    case K_LSTM: {
        rc_lstm_opts o = rc_lstm_defaults();
        o.peepholes = sp->peep;
        o.no_forget_gate = sp->no_f;
        o.no_input_gate = sp->no_i;
        o.no_output_gate = sp->no_o;
        return rc_cell_lstm(H, &o);
    }
    case K_GRU_AFTER: return rc_cell_gru(H, RC_GRU_RESET_AFTER);
    case K_GRU_BEFORE: return rc_cell_gru(H, RC_GRU_RESET_BEFORE);
    case K_RNN_TANH: return rc_cell_rnn(H, RC_ACT_TANH);
    case K_RNN_RELU: return rc_cell_rnn(H, RC_ACT_RELU);
    case K_MUT1: return rc_cell_mut(1, H);
    case K_MUT2: return rc_cell_mut(2, H);
    case K_MUT3: return rc_cell_mut(3, H);
    }
    return NULL;
}

/* MUT1 and MUT2 add x to hidden-sized vectors (I = H); the others get I != H. */
static int spec_input(const spec *sp, int H)
{
    return (sp->kind == K_MUT1 || sp->kind == K_MUT2) ? H : H - 1;
}

/* A parameter the equations call for: its name and shape class
 * ('x': [H, I], 'h': [H, H], 'b': [H]). */
typedef struct pdesc {
    char name[16];
    char cls;
} pdesc;

static void pd_add(pdesc *pd, int *n, const char *name, char cls)
{
    snprintf(pd[*n].name, sizeof pd[*n].name, "%s", name);
    pd[*n].cls = cls;
    (*n)++;
}

/* W_x<gate> [H, I], W_h<gate> [H, H], b_<gate> [H]. */
static void pd_gate(pdesc *pd, int *n, const char *gate)
{
    char b[16];
    snprintf(b, sizeof b, "W_x%s", gate);
    pd_add(pd, n, b, 'x');
    snprintf(b, sizeof b, "W_h%s", gate);
    pd_add(pd, n, b, 'h');
    snprintf(b, sizeof b, "b_%s", gate);
    pd_add(pd, n, b, 'b');
}

/* The parameters of a cell, counted from its equations (see the cells' comments). */
static int spec_params(const spec *sp, pdesc *pd)
{
    int n = 0;
    switch (sp->kind) {
    case K_LSTM:
        pd_gate(pd, &n, "g");
        if (!sp->no_i) pd_gate(pd, &n, "i");
        if (!sp->no_f) pd_gate(pd, &n, "f");
        if (!sp->no_o) pd_gate(pd, &n, "o");
        if (sp->peep) {
            if (!sp->no_i) pd_add(pd, &n, "p_i", 'b');
            if (!sp->no_f) pd_add(pd, &n, "p_f", 'b');
            if (!sp->no_o) pd_add(pd, &n, "p_o", 'b');
        }
        break;
    case K_GRU_AFTER:
    case K_GRU_BEFORE:
        pd_gate(pd, &n, "r");
        pd_gate(pd, &n, "z");
        pd_add(pd, &n, "W_xn", 'x');
        pd_add(pd, &n, "W_hn", 'h');
        if (sp->kind == K_GRU_AFTER) {
            pd_add(pd, &n, "b_xn", 'b');
            pd_add(pd, &n, "b_hn", 'b');
        } else {
            pd_add(pd, &n, "b_n", 'b');
        }
        break;
    case K_RNN_TANH:
    case K_RNN_RELU: pd_gate(pd, &n, "h"); break;
    case K_MUT1:
        pd_add(pd, &n, "W_xz", 'x');
        pd_add(pd, &n, "b_z", 'b');
        pd_gate(pd, &n, "r");
        pd_add(pd, &n, "W_hh", 'h');
        pd_add(pd, &n, "b_h", 'b');
        break;
    case K_MUT2:
    case K_MUT3:
        pd_gate(pd, &n, "z");
        if (sp->kind == K_MUT3) pd_add(pd, &n, "W_xr", 'x');   /* MUT2's r reads x itself */
        pd_add(pd, &n, "W_hr", 'h');
        pd_add(pd, &n, "b_r", 'b');
        pd_gate(pd, &n, "h");
        break;
    }
    return n;
}

/* Fills the cell's parameters, looked up by name, with U(-0.5, 0.5). */
static void fill_spec_params(uint64_t *s, rc_graph *g, const spec *sp, const char *prefix)
{
    pdesc pd[MAXP];
    int np = spec_params(sp, pd);
    for (int k = 0; k < np; k++) {
        char full[96];
        snprintf(full, sizeof full, "%.60s%.15s", prefix ? prefix : "", pd[k].name);
        rc_node *p = rc_param_find(g, full);
        float *d = p ? rc_param_data(p) : NULL;
        cr_expect_not_null(d, "%s: no parameter '%s'", sp->label, full);
        if (d) rnd_fill(s, d, rc_node_size(p), -0.5f, 0.5f);
    }
}

static int is_param(const rc_node *n)
{
    return n && strcmp(rc_node_op(n), "param") == 0;
}

/* Fills every parameter of the graph, in creation order, with U(lo, hi). */
static void fill_all_params(uint64_t *s, rc_graph *g, float lo, float hi)
{
    for (int i = 0; i < rc_graph_node_count(g); i++) {
        rc_node *n = rc_graph_node(g, i);
        if (is_param(n)) rnd_fill(s, rc_param_data(n), rc_node_size(n), lo, hi);
    }
}

static int count_params(const rc_graph *g)
{
    int k = 0;
    for (int i = 0; i < rc_graph_node_count(g); i++) k += is_param(rc_graph_node(g, i));
    return k;
}

/* Copies every parameter of src into the parameter of the same name in dst. */
static void copy_params(rc_graph *dst, const rc_graph *src)
{
    for (int i = 0; i < rc_graph_node_count(src); i++) {
        rc_node *n = rc_graph_node(src, i);
        if (!is_param(n)) continue;
        rc_node *d = rc_param_find(dst, rc_node_name(n));
        cr_expect(d && rc_node_size(d) == rc_node_size(n), "no parameter '%s' of %zu values to copy into",
                  rc_node_name(n), rc_node_size(n));
        if (d && rc_node_size(d) == rc_node_size(n))
            memcpy(rc_param_data(d), rc_param_data(n), rc_node_size(n) * sizeof(float));
    }
}

/* ---- the reference: the published equations in double precision ------------------- */

typedef struct ref_net {
    const spec *sp;
    rc_graph *g;          /* the parameters are read from the graph by name */
    const char *prefix;
    int I, H;
} ref_net;

static const float ZEROS[MAXH * MAXI];

/* When set, the relu RNN's reference records its pre-activations' signs and the
 * smallest |pre-activation| (to choose gradient-check data away from relu's kink). */
typedef struct relu_log {
    double min;
    int n;
    unsigned char sign[MAXT * MAXB * MAXH];
} relu_log;
static relu_log *relu_log_on;

/* The data of parameter <prefix><a><b>. */
static const float *P(const ref_net *r, const char *a, const char *b)
{
    char full[96];
    snprintf(full, sizeof full, "%s%s%s", r->prefix ? r->prefix : "", a, b ? b : "");
    rc_node *n = rc_param_find(r->g, full);
    const float *d = n ? rc_param_data(n) : NULL;
    cr_expect_not_null(d, "reference: the graph has no parameter '%s'", full);
    return d ? d : ZEROS;
}

static double sigm(double a) { return 1.0 / (1.0 + exp(-a)); }

/* acc[j] += sum_k W[j][k] v[k] for W of shape [out, in]: (v @ W^T)[j]. */
static void matvec_add(double *acc, const float *W, const double *v, int out, int in)
{
    for (int j = 0; j < out; j++) {
        double a = 0;
        for (int k = 0; k < in; k++) a += (double)W[j * in + k] * v[k];
        acc[j] += a;
    }
}

/* a = b_<gate> + W_x<gate> x + W_h<gate> h. */
static void gate_pre(const ref_net *r, const char *gate, const double *x, const double *h, double *a)
{
    const float *b = P(r, "b_", gate);
    for (int j = 0; j < r->H; j++) a[j] = b[j];
    matvec_add(a, P(r, "W_x", gate), x, r->H, r->I);
    matvec_add(a, P(r, "W_h", gate), h, r->H, r->H);
}

/* a = (bias ? bias : 0) + W v, W = parameter `w` of shape [H, in]. */
static void affine(const ref_net *r, const char *bias, const char *w, const double *v, int in, double *a)
{
    const float *b = bias ? P(r, bias, NULL) : ZEROS;
    for (int j = 0; j < r->H; j++) a[j] = b[j];
    matvec_add(a, P(r, w, NULL), v, r->H, in);
}

/* One step of one sequence: (x [I], h [H], c [H]) -> (h2, c2); c is the LSTM's cell. */
static void ref_step(const ref_net *r, const double *x, const double *h, const double *c, double *h2,
                     double *c2)
{
    const spec *sp = r->sp;
    const int H = r->H, I = r->I;
    double a[MAXH] = {0}, b[MAXH] = {0}, z[MAXH] = {0}, rr[MAXH] = {0}, rh[MAXH] = {0}, cand[MAXH] = {0};
    for (int j = 0; j < H; j++) c2[j] = c[j];
    switch (sp->kind) {
    case K_LSTM: {
        /* i, f, o = sigm(W_x x + W_h h [+ p * c] + b) or 1 when ablated; g = tanh(..);
         * c' = f c + i g; the output gate peeks at c'; h' = o tanh(c') */
        double gi[MAXH], gf[MAXH], go[MAXH];
        gate_pre(r, "g", x, h, a);
        for (int j = 0; j < H; j++) {
            cand[j] = tanh(a[j]);
            gi[j] = gf[j] = go[j] = 1.0;
        }
        if (!sp->no_i) {
            gate_pre(r, "i", x, h, a);
            const float *p = sp->peep ? P(r, "p_i", NULL) : ZEROS;
            for (int j = 0; j < H; j++) gi[j] = sigm(a[j] + p[j] * c[j]);
        }
        if (!sp->no_f) {
            gate_pre(r, "f", x, h, a);
            const float *p = sp->peep ? P(r, "p_f", NULL) : ZEROS;
            for (int j = 0; j < H; j++) gf[j] = sigm(a[j] + p[j] * c[j]);
        }
        for (int j = 0; j < H; j++) c2[j] = gf[j] * c[j] + gi[j] * cand[j];
        if (!sp->no_o) {
            gate_pre(r, "o", x, h, a);
            const float *p = sp->peep ? P(r, "p_o", NULL) : ZEROS;
            for (int j = 0; j < H; j++) go[j] = sigm(a[j] + p[j] * c2[j]);
        }
        for (int j = 0; j < H; j++) h2[j] = go[j] * tanh(c2[j]);
        break;
    }
    case K_GRU_AFTER:
    case K_GRU_BEFORE:
        gate_pre(r, "r", x, h, a);
        for (int j = 0; j < H; j++) rr[j] = sigm(a[j]);
        gate_pre(r, "z", x, h, a);
        for (int j = 0; j < H; j++) z[j] = sigm(a[j]);
        if (sp->kind == K_GRU_AFTER) {
            /* n = tanh(W_xn x + b_xn + r * (W_hn h + b_hn)) */
            affine(r, "b_xn", "W_xn", x, I, a);
            affine(r, "b_hn", "W_hn", h, H, b);
            for (int j = 0; j < H; j++) cand[j] = tanh(a[j] + rr[j] * b[j]);
        } else {
            /* n = tanh(W_xn x + W_hn (r * h) + b_n) */
            for (int j = 0; j < H; j++) rh[j] = rr[j] * h[j];
            affine(r, "b_n", "W_xn", x, I, a);
            matvec_add(a, P(r, "W_hn", NULL), rh, H, H);
            for (int j = 0; j < H; j++) cand[j] = tanh(a[j]);
        }
        for (int j = 0; j < H; j++) h2[j] = (1.0 - z[j]) * cand[j] + z[j] * h[j];
        break;
    case K_RNN_TANH:
    case K_RNN_RELU:
        gate_pre(r, "h", x, h, a);
        if (sp->kind == K_RNN_RELU && relu_log_on)
            for (int j = 0; j < H; j++) {
                relu_log_on->min = fmin(relu_log_on->min, fabs(a[j]));
                if (relu_log_on->n < (int)sizeof relu_log_on->sign) relu_log_on->sign[relu_log_on->n++] = a[j] > 0;
            }
        for (int j = 0; j < H; j++)
            h2[j] = sp->kind == K_RNN_TANH ? tanh(a[j]) : (a[j] > 0 ? a[j] : 0.0);
        break;
    case K_MUT1:
    case K_MUT2:
    case K_MUT3: {
        double th[MAXH];
        for (int j = 0; j < H; j++) th[j] = tanh(h[j]);
        if (sp->kind == K_MUT1) {               /* z = sigm(W_xz x + b_z) */
            affine(r, "b_z", "W_xz", x, I, a);
        } else {                                /* z = sigm(W_xz x + W_hz (h | tanh h) + b_z) */
            affine(r, "b_z", "W_xz", x, I, a);
            matvec_add(a, P(r, "W_hz", NULL), sp->kind == K_MUT2 ? h : th, H, H);
        }
        for (int j = 0; j < H; j++) z[j] = sigm(a[j]);
        if (sp->kind == K_MUT2) {               /* r = sigm(x + W_hr h + b_r) */
            affine(r, "b_r", "W_hr", h, H, a);
            for (int j = 0; j < H; j++) a[j] += x[j];
        } else {                                /* r = sigm(W_xr x + W_hr h + b_r) */
            gate_pre(r, "r", x, h, a);
        }
        for (int j = 0; j < H; j++) {
            rr[j] = sigm(a[j]);
            rh[j] = rr[j] * h[j];
        }
        /* h' = tanh(W_hh (r h) + (tanh(x) | W_xh x) + b_h) z + h (1 - z) */
        affine(r, "b_h", "W_hh", rh, H, a);
        if (sp->kind == K_MUT1)
            for (int j = 0; j < H; j++) a[j] += tanh(x[j]);
        else
            matvec_add(a, P(r, "W_xh", NULL), x, H, I);
        for (int j = 0; j < H; j++) h2[j] = tanh(a[j]) * z[j] + h[j] * (1.0 - z[j]);
        break;
    }
    }
}

/* Runs the reference over T steps of B sequences: x [T*B, I] time-major, initial
 * states h0, c0 [B, H] (NULL: zeros). Writes out [T*B, H] and the final hT, cT. */
static void ref_run(const ref_net *r, int T, int B, const double *x, const double *h0, const double *c0,
                    double *out, double *hT, double *cT)
{
    const int H = r->H, I = r->I;
    double h[MAXB * MAXH], c[MAXB * MAXH];
    for (int i = 0; i < B * H; i++) {
        h[i] = h0 ? h0[i] : 0.0;
        c[i] = c0 ? c0[i] : 0.0;
    }
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            double h2[MAXH], c2[MAXH];
            ref_step(r, x + (size_t)(t * B + b) * I, h + b * H, c + b * H, h2, c2);
            memcpy(h + b * H, h2, sizeof(double) * H);
            memcpy(c + b * H, c2, sizeof(double) * H);
            memcpy(out + (size_t)(t * B + b) * H, h2, sizeof(double) * H);
        }
    if (hT) memcpy(hT, h, sizeof(double) * B * H);
    if (cT) memcpy(cT, c, sizeof(double) * B * H);
}

/* ---- comparisons ------------------------------------------------------------------- */

/* Expects |got - want| <= tol (1 + |want|) everywhere; reports the worst element. */
static int expect_close(const char *label, const char *what, const float *got, const double *want, size_t n,
                        double tol)
{
    cr_expect_not_null(got, "%s: no value for %s", label, what);
    if (!got) return 0;
    size_t bad = 0, worst = 0;
    double worst_ex = 0;
    for (size_t i = 0; i < n; i++) {
        double ex = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
        if (!(ex <= tol)) {
            if (!bad || !(ex <= worst_ex)) {
                worst = i;
                worst_ex = ex;
            }
            bad++;
        }
    }
    cr_expect(bad == 0, "%s: %s: %zu of %zu values differ; worst [%zu] = %.9g, expected %.9g", label, what,
              bad, n, worst, bad ? got[worst] : 0.0, bad ? want[worst] : 0.0);
    return bad == 0;
}

static int expect_close_f(const char *label, const char *what, const float *got, const float *want, size_t n,
                          double tol)
{
    double *w = malloc(n * sizeof *w);
    if (!w) return 0;
    to_double(want, w, n);
    int ok = expect_close(label, what, got, w, n, tol);
    free(w);
    return ok;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* ---- graphs of one unrolled cell --------------------------------------------------- */

enum { NET_INIT = 1, NET_GRAD = 2, NET_MASK = 4 };

typedef struct net {
    rc_graph *g;
    rc_cell *cell;
    rc_node *x, *mask, *init[2], *out, *fin[2];
    int T, B, I, H, ns;
} net;

/* A graph with the input sequence x [T*B, I] ("x"), with per flags inputs for the
 * initial states ("h0", "c0"), a mask input ("mask") and gradients asked for x and
 * the initial states; the cell unrolled over it. 0 on success. The caller calls
 * net_free in every case. */
static int net_build(net *n, const spec *sp, int T, int B, int H, int flags, const char *prefix)
{
    memset(n, 0, sizeof *n);
    n->T = T;
    n->B = B;
    n->H = H;
    n->I = spec_input(sp, H);
    n->g = rc_graph_new();
    n->cell = make_cell(sp, H);
    cr_expect_not_null(n->g, "rc_graph_new failed");
    cr_expect_not_null(n->cell, "%s: the cell constructor returned NULL", sp->label);
    if (!n->g || !n->cell) return -1;
    n->ns = rc_cell_state_count(n->cell);
    cr_expect_eq(n->ns, sp->kind == K_LSTM ? 2 : 1, "%s: %d states", sp->label, n->ns);
    if (n->ns < 1 || n->ns > 2) return -1;
    n->x = rc_input(n->g, "x", RC_F32, 2, (int[]){T * B, n->I});
    if (flags & NET_GRAD) rc_requires_grad(n->x, 1);
    if (flags & NET_INIT)
        for (int i = 0; i < n->ns; i++) {
            char name[32];
            snprintf(name, sizeof name, "%s0", rc_cell_state_name(n->cell, i));
            n->init[i] = rc_input(n->g, name, RC_F32, 2, (int[]){B, rc_cell_state_size(n->cell, i)});
            if (flags & NET_GRAD) rc_requires_grad(n->init[i], 1);
        }
    if (flags & NET_MASK) n->mask = rc_input(n->g, "mask", RC_F32, 2, (int[]){T * B, 1});
    rc_unroll_opts o = {.prefix = prefix, .mask = n->mask, .init = (flags & NET_INIT) ? n->init : NULL};
    rc_status st = rc_unroll(n->g, n->cell, n->x, T, &o, &n->out, n->fin);
    cr_expect_eq(st, RC_OK, "%s: rc_unroll: %s", sp->label, rc_graph_error(n->g));
    if (st != RC_OK || !n->out) return -1;
    cr_expect_eq(rc_node_dim(n->out, 0), T * B, "%s: outputs have %d rows", sp->label, rc_node_dim(n->out, 0));
    cr_expect_eq(rc_node_dim(n->out, 1), H, "%s: outputs have %d columns", sp->label, rc_node_dim(n->out, 1));
    for (int i = 0; i < n->ns; i++) {
        cr_expect(n->fin[i] && rc_node_dim(n->fin[i], 0) == B && rc_node_dim(n->fin[i], 1) == H,
                  "%s: final state %d is not [%d,%d]", sp->label, i, B, H);
        if (!n->fin[i]) return -1;
    }
    return 0;
}

static void net_free(net *n)
{
    rc_graph_free(n->g);
    rc_cell_free(n->cell);
    memset(n, 0, sizeof *n);
}

/* sum(a * w) for a constant w of a's shape. */
static rc_node *wsum(rc_graph *g, rc_node *a, const float *w)
{
    if (!a) return NULL;
    int shape[2] = {rc_node_dim(a, 0), rc_node_dim(a, 1)};
    return rc_sum(g, rc_mul(g, a, rc_const(g, 2, shape, w)));
}

/* sum(a * w) for a random constant w, U(-1, 1). */
static rc_node *wsum_rand(rc_graph *g, rc_node *a, uint64_t *s)
{
    if (!a) return NULL;
    size_t n = rc_node_size(a);
    float *w = malloc(n * sizeof *w);
    if (!w) return NULL;
    rnd_fill(s, w, n, -1.0f, 1.0f);
    rc_node *r = wsum(g, a, w);
    free(w);
    return r;
}

/* The test loss: weighted sums of the outputs and of every final state. */
static rc_node *net_loss(net *n, uint64_t *s)
{
    rc_node *l = wsum_rand(n->g, n->out, s);
    for (int i = 0; i < n->ns; i++) l = rc_add(n->g, l, wsum_rand(n->g, n->fin[i], s));
    cr_expect_not_null(l, "building the loss: %s", rc_graph_error(n->g));
    return l;
}

static rc_plan *make_plan(rc_graph *g, int n, rc_node *const *roots, const char *label)
{
    for (int i = 0; i < n; i++)
        if (!roots[i]) return NULL;
    rc_plan *p = rc_plan_new(g, n, roots);
    cr_expect_not_null(p, "%s: rc_plan_new: %s", label, rc_graph_error(g));
    return p;
}

static int feed(rc_plan *p, rc_node *in, const float *d, size_t n)
{
    rc_status st = rc_plan_feed(p, in, d, n);
    cr_expect_eq(st, RC_OK, "feeding '%s': %s", rc_node_name(in), rc_plan_error(p));
    return st == RC_OK ? 0 : -1;
}

/* Feeds U(lo, hi) values, kept in keep when not NULL. */
static int feed_rand(rc_plan *p, rc_node *in, uint64_t *s, float lo, float hi, float *keep)
{
    size_t n = rc_node_size(in);
    float *d = keep ? keep : malloc(n * sizeof *d);
    if (!d) return -1;
    rnd_fill(s, d, n, lo, hi);
    int r = feed(p, in, d, n);
    if (!keep) free(d);
    return r;
}

static int forward(rc_plan *p)
{
    rc_status st = rc_plan_forward(p);
    cr_expect_eq(st, RC_OK, "rc_plan_forward: %s", rc_plan_error(p));
    return st == RC_OK ? 0 : -1;
}

static int backward(rc_plan *p, rc_node *loss)
{
    rc_status st = rc_plan_backward(p, loss);
    cr_expect_eq(st, RC_OK, "rc_plan_backward: %s", rc_plan_error(p));
    return st == RC_OK ? 0 : -1;
}

/* rc_gradcheck of `loss` on every parameter of the graph and on extra[] (inputs), one
 * tensor at a time. Returns the largest error; when strict, expects each < GC_TOL. */
static double gradcheck_all(rc_plan *p, rc_graph *g, rc_node *loss, int nextra, rc_node *const *extra,
                            const char *label, int strict)
{
    double worst = 0;
    int nn = rc_graph_node_count(g), checked = 0;
    for (int i = 0; i < nn + nextra; i++) {
        rc_node *w = i < nn ? rc_graph_node(g, i) : extra[i - nn];
        if (i < nn && !is_param(w)) continue;
        if (!w) continue;
        double err = -1;
        rc_status st = rc_gradcheck(p, loss, 1, &w, GC_EPS, &err);
        cr_expect_eq(st, RC_OK, "%s: gradcheck of '%s': %s", label, rc_node_name(w), rc_plan_error(p));
        if (strict)
            cr_expect(err >= 0 && err < GC_TOL, "%s: the gradient of '%s' is off: error %g (tolerance %g)", label,
                      rc_node_name(w), err, GC_TOL);
        worst = fmax(worst, err);
        checked++;
    }
    cr_expect_gt(checked, nextra, "%s: no parameter was checked", label);
    return worst;
}

/* ---- 1. forward against the reference ----------------------------------------------- */

static void check_forward(const spec *sp, int given_init)
{
    enum { T = 6, B = 3, H = 5 };
    char label[96];
    snprintf(label, sizeof label, "%s (%s initial states)", sp->label, given_init ? "given" : "zero");
    uint64_t s = seed_of(sp->label) + (uint64_t)given_init;
    net n;
    if (net_build(&n, sp, T, B, H, given_init ? NET_INIT : 0, NULL) == 0) {
        const int I = n.I;
        fill_spec_params(&s, n.g, sp, NULL);
        cr_expect_eq(I == H, sp->kind == K_MUT1 || sp->kind == K_MUT2, "%s: I = %d, H = %d", label, I, H);
        rc_node *roots[3] = {n.out, n.fin[0], n.fin[1]};
        rc_plan *p = make_plan(n.g, 1 + n.ns, roots, label);
        float x[T * B * MAXI], init[2][B * H];
        int ok = p && feed_rand(p, n.x, &s, -1.0f, 1.0f, x) == 0;
        for (int i = 0; ok && given_init && i < n.ns; i++) ok = feed_rand(p, n.init[i], &s, -1.0f, 1.0f, init[i]) == 0;
        if (ok && forward(p) == 0) {
            double xd[T * B * MAXI], h0[B * H], c0[B * H], out[T * B * H], hT[B * H], cT[B * H];
            to_double(x, xd, (size_t)T * B * I);
            if (given_init) {
                to_double(init[0], h0, B * H);
                if (n.ns > 1) to_double(init[1], c0, B * H);
            }
            ref_net r = {sp, n.g, NULL, I, H};
            ref_run(&r, T, B, xd, given_init ? h0 : NULL, given_init && n.ns > 1 ? c0 : NULL, out, hT, cT);
            expect_close(label, "outputs", rc_plan_value(p, n.out), out, T * B * H, FWD_TOL);
            expect_close(label, "final h", rc_plan_value(p, n.fin[0]), hT, B * H, FWD_TOL);
            if (n.ns > 1) expect_close(label, "final c", rc_plan_value(p, n.fin[1]), cT, B * H, FWD_TOL);
        }
        rc_plan_free(p);
    }
    net_free(&n);
}

#define FORWARD_TEST(NAME, IDX)                 \
    Test(cells, forward_##NAME)                 \
    {                                           \
        check_forward(&SPECS[IDX], 0);          \
        check_forward(&SPECS[IDX], 1);          \
    }

FORWARD_TEST(lstm, S_LSTM)
FORWARD_TEST(lstm_peepholes, S_LSTM_PEEP)
FORWARD_TEST(lstm_no_forget_gate, S_LSTM_NO_F)
FORWARD_TEST(lstm_no_input_gate, S_LSTM_NO_I)
FORWARD_TEST(lstm_no_output_gate, S_LSTM_NO_O)
FORWARD_TEST(gru_reset_after, S_GRU_A)
FORWARD_TEST(gru_reset_before, S_GRU_B)
FORWARD_TEST(rnn_tanh, S_RNN_TANH)
FORWARD_TEST(rnn_relu, S_RNN_RELU)
FORWARD_TEST(mut1, S_MUT1)
FORWARD_TEST(mut2, S_MUT2)
FORWARD_TEST(mut3, S_MUT3)

/* ---- 2. BPTT gradient checks --------------------------------------------------------- */

/* The relu RNN's reference run on float data, logging pre-activations into lg. */
static void relu_logged_run(const ref_net *r, int T, int B, const float *x, const float *h0, relu_log *lg)
{
    double xd[MAXT * MAXB * MAXI], hd[MAXB * MAXH], out[MAXT * MAXB * MAXH];
    to_double(x, xd, (size_t)T * B * r->I);
    to_double(h0, hd, (size_t)B * r->H);
    lg->min = INFINITY;
    lg->n = 0;
    relu_log_on = lg;
    ref_run(r, T, B, xd, hd, NULL, out, NULL, NULL);
    relu_log_on = NULL;
}

/* 1 when no perturbation rc_gradcheck makes (one value moved by +-eps or +-eps/2: a
 * parameter element, an element of x or of h0) changes the sign of any relu
 * pre-activation, according to the reference; 0 otherwise. */
static int relu_kink_free(const ref_net *r, int T, int B, float *x, float *h0)
{
    relu_log base, cur;
    relu_logged_run(r, T, B, x, h0, &base);
    if (!(base.min > GC_EPS)) return 0;   /* a bias step of eps moves a pre-activation by eps */
    pdesc pd[MAXP];
    int np = spec_params(r->sp, pd);
    static const float steps[4] = {GC_EPS, -GC_EPS, 0.5f * GC_EPS, -0.5f * GC_EPS};
    for (int k = 0; k < np + 2; k++) {
        rc_node *pn = k < np ? rc_param_find(r->g, pd[k].name) : NULL;
        float *v = k < np ? (pn ? rc_param_data(pn) : NULL) : k == np ? x : h0;
        size_t cnt = k < np ? rc_node_size(pn) : k == np ? (size_t)T * B * r->I : (size_t)B * r->H;
        for (size_t e = 0; v && e < cnt; e++) {
            float keep = v[e];
            for (int d = 0; d < 4; d++) {
                v[e] = keep + steps[d];
                relu_logged_run(r, T, B, x, h0, &cur);
                if (cur.n != base.n || memcmp(cur.sign, base.sign, (size_t)base.n) != 0) {
                    v[e] = keep;
                    return 0;
                }
            }
            v[e] = keep;
        }
    }
    return 1;
}

/* Builds the gradient-check setup of a built-in cell: T = 5, B = 2, given initial
 * states, weights U(-0.5, 0.5), inputs and initial states U(-1, 1); the loss is
 * weighted sums of the outputs and of the final states. */
static rc_plan *gradcheck_setup(net *n, const spec *sp, rc_node **loss)
{
    enum { T = 5, B = 2, H = 5 };
    uint64_t s = seed_of(sp->label) ^ 0xB977ull;
    *loss = NULL;
    if (net_build(n, sp, T, B, H, NET_INIT | NET_GRAD, NULL) != 0) return NULL;
    *loss = net_loss(n, &s);
    float x[T * B * MAXI], init[2][B * H];
    fill_spec_params(&s, n->g, sp, NULL);
    rnd_fill(&s, x, (size_t)T * B * n->I, -1.0f, 1.0f);
    for (int i = 0; i < n->ns; i++) rnd_fill(&s, init[i], B * H, -1.0f, 1.0f);
    if (sp->kind == K_RNN_RELU) {
        /* central differences across relu's kink are meaningless: draw again until the
         * reference shows that no perturbation of the check moves a pre-activation
         * across 0 (the seed used needs about a hundred draws, a millisecond each) */
        ref_net r = {sp, n->g, NULL, n->I, H};
        int draws = 1, found;
        while (!(found = relu_kink_free(&r, T, B, x, init[0])) && draws < 5000) {
            fill_spec_params(&s, n->g, sp, NULL);
            rnd_fill(&s, x, (size_t)T * B * n->I, -1.0f, 1.0f);
            rnd_fill(&s, init[0], B * H, -1.0f, 1.0f);
            draws++;
        }
        cr_expect(found, "no data found away from relu's kink in %d draws", draws);
    }
    cr_expect_eq(count_params(n->g), spec_params(sp, (pdesc[MAXP]){0}), "%s: parameter count", sp->label);
    rc_plan *p = *loss ? make_plan(n->g, 1, loss, sp->label) : NULL;
    int ok = p && feed(p, n->x, x, (size_t)T * B * n->I) == 0;
    for (int i = 0; ok && i < n->ns; i++) ok = feed(p, n->init[i], init[i], B * H) == 0;
    if (!ok) {
        rc_plan_free(p);
        return NULL;
    }
    return p;
}

static void check_gradients(const spec *sp)
{
    net n;
    rc_node *loss;
    rc_plan *p = gradcheck_setup(&n, sp, &loss);
    if (p) {
        rc_node *extra[3] = {n.x, n.init[0], n.init[1]};
        gradcheck_all(p, n.g, loss, 1 + n.ns, extra, sp->label, 1);
        rc_plan_free(p);
    }
    net_free(&n);
}

#define GRADCHECK_TEST(NAME, IDX) \
    Test(cells, gradcheck_##NAME) { check_gradients(&SPECS[IDX]); }

GRADCHECK_TEST(lstm, S_LSTM)
GRADCHECK_TEST(lstm_peepholes, S_LSTM_PEEP)
GRADCHECK_TEST(lstm_no_forget_gate, S_LSTM_NO_F)
GRADCHECK_TEST(lstm_no_input_gate, S_LSTM_NO_I)
GRADCHECK_TEST(lstm_no_output_gate, S_LSTM_NO_O)
GRADCHECK_TEST(gru_reset_after, S_GRU_A)
GRADCHECK_TEST(gru_reset_before, S_GRU_B)
GRADCHECK_TEST(rnn_tanh, S_RNN_TANH)
GRADCHECK_TEST(rnn_relu, S_RNN_RELU)
GRADCHECK_TEST(mut1, S_MUT1)
GRADCHECK_TEST(mut2, S_MUT2)
GRADCHECK_TEST(mut3, S_MUT3)

/* A user-defined cell, written only here: a minimal gated unit (Zhou et al. 2016)
 *   f  = sigmoid(W_xf x + W_hf h + b_f)
 *   n  = tanh(W_xn x + W_hn (f * h) + b_n)
 *   h' = (1 - f) * h + f * n
 * with a second state m of MGU_S units, m' = tanh(W_mm m + W_hm h'), and the output
 * [h', m'] set with rc_step_set_output. */
#define MGU_S 3

static rc_status mgu_step(rc_step *s, void *user)
{
    const int S = *(const int *)user;
    rc_graph *g = rc_step_graph(s);
    const int H = rc_step_hidden(s);
    rc_node *x = rc_step_input(s), *h = rc_step_state(s, "h"), *m = rc_step_state(s, "m");
    rc_node *f = rc_sigmoid(g, rc_add(g, rc_add(g, rc_step_linear(s, "W_xf", x, H), rc_step_linear(s, "W_hf", h, H)),
                                      rc_step_bias(s, "b_f", H)));
    rc_node *cand = rc_tanh(g, rc_add(g, rc_add(g, rc_step_linear(s, "W_xn", x, H),
                                                rc_step_linear(s, "W_hn", rc_mul(g, f, h), H)),
                                      rc_step_bias(s, "b_n", H)));
    rc_node *h2 = rc_add(g, rc_mul(g, rc_one_minus(g, f), h), rc_mul(g, f, cand));
    rc_node *m2 = rc_tanh(g, rc_add(g, rc_step_linear(s, "W_mm", m, S), rc_step_linear(s, "W_hm", h2, S)));
    rc_status st = rc_step_set_state(s, "h", h2);
    if (st == RC_OK) st = rc_step_set_state(s, "m", m2);
    if (st == RC_OK) st = rc_step_set_output(s, rc_concat(g, 2, (rc_node *[]){h2, m2}));
    return st;
}

Test(cells, gradcheck_custom_cell)
{
    enum { T = 5, B = 2, H = 5, I = 4, S = MGU_S };
    static const int mgu_s = MGU_S;
    uint64_t seed = 31337;
    rc_graph *g = rc_graph_new();
    rc_cell *c = rc_cell_new("mgu", H, mgu_step, (void *)&mgu_s);
    cr_assert_not_null(c, "rc_cell_new failed");
    cr_expect_eq(rc_cell_add_state(c, "h", H), RC_OK);
    cr_expect_eq(rc_cell_add_state(c, "m", S), RC_OK);
    cr_expect_str_eq(rc_cell_name(c), "mgu");
    cr_expect_eq(rc_cell_hidden(c), H);
    cr_expect_eq(rc_cell_state_count(c), 2);
    cr_expect_str_eq(rc_cell_state_name(c, 1), "m");
    cr_expect_eq(rc_cell_state_size(c, 1), S);
    cr_expect_null(rc_cell_state_name(c, 2));
    cr_expect_eq(rc_cell_state_size(c, 2), 0);

    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){T * B, I});
    rc_node *init[2] = {rc_input(g, "h0", RC_F32, 2, (int[]){B, H}), rc_input(g, "m0", RC_F32, 2, (int[]){B, S})};
    for (int i = 0; i < 2; i++) rc_requires_grad(init[i], 1);
    rc_requires_grad(x, 1);
    rc_unroll_opts o = {.prefix = "mgu.", .init = init};
    rc_node *out = NULL, *fin[2] = {NULL, NULL};
    rc_status st = rc_unroll(g, c, x, T, &o, &out, fin);
    cr_expect_eq(st, RC_OK, "%s", rc_graph_error(g));
    if (st == RC_OK) {
        cr_expect_eq(rc_node_dim(out, 0), T * B);
        cr_expect_eq(rc_node_dim(out, 1), H + S, "the output set by rc_step_set_output is [B, H+S]");
        cr_expect_eq(rc_node_dim(fin[1], 1), S);
        cr_expect_eq(count_params(g), 8, "MGU: W_xf W_hf b_f W_xn W_hn b_n W_mm W_hm: %d", count_params(g));
        cr_expect_not_null(rc_param_find(g, "mgu.W_hm"));
        cr_expect_eq(rc_node_dim(rc_param_find(g, "mgu.W_mm"), 0), S);
        rc_node *loss = rc_add(g, rc_add(g, wsum_rand(g, out, &seed), wsum_rand(g, fin[0], &seed)),
                               wsum_rand(g, fin[1], &seed));
        fill_all_params(&seed, g, -0.5f, 0.5f);
        rc_node *roots[4] = {loss, out, fin[0], fin[1]};
        rc_plan *p = make_plan(g, 4, roots, "mgu");
        int ok = p && feed_rand(p, x, &seed, -1.0f, 1.0f, NULL) == 0 &&
                 feed_rand(p, init[0], &seed, -1.0f, 1.0f, NULL) == 0 &&
                 feed_rand(p, init[1], &seed, -1.0f, 1.0f, NULL) == 0 && forward(p) == 0;
        if (ok) {
            /* the last step's output is [final h, final m] */
            const float *ov = rc_plan_value(p, out), *hv = rc_plan_value(p, fin[0]), *mv = rc_plan_value(p, fin[1]);
            int same = ov && hv && mv;
            for (int b = 0; same && b < B; b++)
                same = memcmp(ov + ((T - 1) * B + b) * (H + S), hv + b * H, H * sizeof(float)) == 0 &&
                       memcmp(ov + ((T - 1) * B + b) * (H + S) + H, mv + b * S, S * sizeof(float)) == 0;
            cr_expect(same, "the last output row is not [h_T, m_T]");
            rc_node *extra[3] = {x, init[0], init[1]};
            gradcheck_all(p, g, loss, 3, extra, "mgu", 1);
        }
        rc_plan_free(p);
    }
    rc_graph_free(g);
    rc_cell_free(c);
}

Test(cells, gradcheck_two_layer_stack)
{
    enum { T = 5, B = 2, H = 5, I = 4 };
    const spec *sp = &SPECS[S_LSTM];
    uint64_t seed = 2718;
    rc_graph *g = rc_graph_new();
    rc_cell *c = make_cell(sp, H);   /* one cell definition for both layers */
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){T * B, I});
    rc_node *init[2] = {rc_input(g, "h0", RC_F32, 2, (int[]){B, H}), rc_input(g, "c0", RC_F32, 2, (int[]){B, H})};
    rc_requires_grad(x, 1);
    rc_requires_grad(init[0], 1);
    rc_requires_grad(init[1], 1);
    rc_unroll_opts o0 = {.prefix = "l0.", .init = init}, o1 = {.prefix = "l1."};
    rc_node *out0 = NULL, *out1 = NULL, *fin0[2] = {NULL, NULL}, *fin1[2] = {NULL, NULL};
    rc_status st = rc_unroll(g, c, x, T, &o0, &out0, fin0);
    cr_expect_eq(st, RC_OK, "layer 0: %s", rc_graph_error(g));
    if (st == RC_OK) {
        st = rc_unroll(g, c, out0, T, &o1, &out1, fin1);
        cr_expect_eq(st, RC_OK, "layer 1: %s", rc_graph_error(g));
    }
    if (st == RC_OK) {
        cr_expect_eq(count_params(g), 24, "two LSTM layers have 24 parameters, found %d", count_params(g));
        cr_expect_eq(rc_node_dim(rc_param_find(g, "l0.W_xi"), 1), I, "l0.W_xi reads the input");
        cr_expect_eq(rc_node_dim(rc_param_find(g, "l1.W_xi"), 1), H, "l1.W_xi reads layer 0's outputs");
        cr_expect_null(rc_param_find(g, "W_xi"), "no unprefixed parameter");
        rc_node *loss = wsum_rand(g, out1, &seed);
        for (int i = 0; i < 2; i++)
            loss = rc_add(g, rc_add(g, loss, wsum_rand(g, fin0[i], &seed)), wsum_rand(g, fin1[i], &seed));
        fill_all_params(&seed, g, -0.5f, 0.5f);
        rc_node *roots[5] = {loss, out1, fin1[0], fin1[1], fin0[0]};
        rc_plan *p = make_plan(g, 5, roots, "stack");
        float xv[T * B * I], iv[2][B * H];
        int ok = p && feed_rand(p, x, &seed, -1.0f, 1.0f, xv) == 0 &&
                 feed_rand(p, init[0], &seed, -1.0f, 1.0f, iv[0]) == 0 &&
                 feed_rand(p, init[1], &seed, -1.0f, 1.0f, iv[1]) == 0 && forward(p) == 0;
        if (ok) {
            double xd[T * B * I], h0[B * H], c0[B * H], o0r[T * B * H], o1r[T * B * H], hT[B * H], cT[B * H];
            to_double(xv, xd, T * B * I);
            to_double(iv[0], h0, B * H);
            to_double(iv[1], c0, B * H);
            ref_net r0 = {sp, g, "l0.", I, H}, r1 = {sp, g, "l1.", H, H};
            ref_run(&r0, T, B, xd, h0, c0, o0r, hT, cT);
            expect_close("stack", "layer 0 final h", rc_plan_value(p, fin0[0]), hT, B * H, FWD_TOL);
            ref_run(&r1, T, B, o0r, NULL, NULL, o1r, hT, cT);
            expect_close("stack", "layer 1 outputs", rc_plan_value(p, out1), o1r, T * B * H, FWD_TOL);
            expect_close("stack", "layer 1 final c", rc_plan_value(p, fin1[1]), cT, B * H, FWD_TOL);
            rc_node *extra[3] = {x, init[0], init[1]};
            gradcheck_all(p, g, loss, 3, extra, "stack", 1);
        }
        rc_plan_free(p);
    }
    rc_graph_free(g);
    rc_cell_free(c);
}

/* The T blocks of B rows of seq in reverse order. */
static rc_node *reverse_time(rc_graph *g, rc_node *seq, int T, int B)
{
    rc_node *parts[MAXT];
    for (int t = 0; t < T; t++) parts[t] = rc_row_slice(g, seq, (T - 1 - t) * B, B);
    return rc_row_concat(g, T, parts);
}

Test(cells, gradcheck_bidirectional)
{
    enum { T = 5, B = 2, H = 5, I = 4 };
    const spec *sp = &SPECS[S_GRU_A];
    uint64_t seed = 1618;
    rc_graph *g = rc_graph_new();
    rc_cell *c = make_cell(sp, H);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){T * B, I});
    rc_requires_grad(x, 1);
    rc_unroll_opts of = {.prefix = "fwd."}, orv = {.prefix = "rev."};
    rc_node *outf = NULL, *outr = NULL, *finf = NULL, *finr = NULL;
    rc_status st = rc_unroll(g, c, x, T, &of, &outf, &finf);
    if (st == RC_OK) st = rc_unroll(g, c, reverse_time(g, x, T, B), T, &orv, &outr, &finr);
    cr_expect_eq(st, RC_OK, "%s", rc_graph_error(g));
    if (st == RC_OK) {
        rc_node *y = rc_concat(g, 2, (rc_node *[]){outf, reverse_time(g, outr, T, B)});
        cr_expect(y && rc_node_dim(y, 0) == T * B && rc_node_dim(y, 1) == 2 * H, "%s", rc_graph_error(g));
        cr_expect_eq(count_params(g), 20, "two GRU directions have 20 parameters, found %d", count_params(g));
        rc_node *loss = rc_add(g, rc_add(g, wsum_rand(g, y, &seed), wsum_rand(g, finf, &seed)),
                               wsum_rand(g, finr, &seed));
        fill_spec_params(&seed, g, sp, "fwd.");
        fill_spec_params(&seed, g, sp, "rev.");
        rc_node *roots[2] = {loss, y};
        rc_plan *p = make_plan(g, 2, roots, "bidirectional");
        float xv[T * B * I];
        if (p && feed_rand(p, x, &seed, -1.0f, 1.0f, xv) == 0 && forward(p) == 0) {
            /* reference: forward direction on x, backward one on reversed x, reversed back */
            double xd[T * B * I], xr[T * B * I], of_[T * B * H], or_[T * B * H], hT[B * H], want[T * B * 2 * H];
            to_double(xv, xd, T * B * I);
            for (int t = 0; t < T; t++)
                memcpy(xr + t * B * I, xd + (T - 1 - t) * B * I, sizeof(double) * B * I);
            ref_net rf = {sp, g, "fwd.", I, H}, rr = {sp, g, "rev.", I, H};
            ref_run(&rf, T, B, xd, NULL, NULL, of_, hT, NULL);
            ref_run(&rr, T, B, xr, NULL, NULL, or_, hT, NULL);
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++)
                    for (int j = 0; j < H; j++) {
                        want[(t * B + b) * 2 * H + j] = of_[(t * B + b) * H + j];
                        want[(t * B + b) * 2 * H + H + j] = or_[((T - 1 - t) * B + b) * H + j];
                    }
            expect_close("bidirectional", "outputs", rc_plan_value(p, y), want, T * B * 2 * H, FWD_TOL);
            gradcheck_all(p, g, loss, 1, &x, "bidirectional", 1);
        }
        rc_plan_free(p);
    }
    rc_graph_free(g);
    rc_cell_free(c);
}

/* With learned_init, states without a given value start from "<prefix>init_<state>". */
Test(cells, gradcheck_learned_initial_state)
{
    enum { T = 5, B = 2, H = 5, I = 4 };
    const spec *sp = &SPECS[S_LSTM];
    uint64_t seed = 4242;
    rc_graph *g = rc_graph_new();
    rc_cell *c = make_cell(sp, H);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){T * B, I});
    rc_node *h0 = rc_input(g, "h0", RC_F32, 2, (int[]){B, H});
    rc_requires_grad(h0, 1);
    /* h given, c learned */
    rc_node *init[2] = {h0, NULL};
    rc_unroll_opts o = {.prefix = "enc.", .init = init, .learned_init = 1};
    rc_node *out = NULL, *fin[2] = {NULL, NULL};
    rc_status st = rc_unroll(g, c, x, T, &o, &out, fin);
    cr_expect_eq(st, RC_OK, "%s", rc_graph_error(g));
    if (st == RC_OK) {
        rc_node *ic = rc_param_find(g, "enc.init_c");
        cr_expect(ic && rc_node_ndim(ic) == 1 && rc_node_dim(ic, 0) == H, "no [H] parameter enc.init_c");
        cr_expect_null(rc_param_find(g, "enc.init_h"), "h was given: no learned init_h");
        cr_expect_eq(count_params(g), 13);
        rc_node *loss = rc_add(g, rc_add(g, wsum_rand(g, out, &seed), wsum_rand(g, fin[0], &seed)),
                               wsum_rand(g, fin[1], &seed));
        fill_all_params(&seed, g, -0.5f, 0.5f);
        rc_node *roots[2] = {loss, out};
        rc_plan *p = make_plan(g, 2, roots, "learned init");
        float xv[T * B * I], hv[B * H];
        if (p && feed_rand(p, x, &seed, -1.0f, 1.0f, xv) == 0 && feed_rand(p, h0, &seed, -1.0f, 1.0f, hv) == 0 &&
            forward(p) == 0 && ic) {
            double xd[T * B * I], hd[B * H], cd[B * H], want[T * B * H], hT[B * H], cT[B * H];
            to_double(xv, xd, T * B * I);
            to_double(hv, hd, B * H);
            for (int b = 0; b < B; b++)
                for (int j = 0; j < H; j++) cd[b * H + j] = rc_param_data(ic)[j];
            ref_net r = {sp, g, "enc.", I, H};
            ref_run(&r, T, B, xd, hd, cd, want, hT, cT);
            expect_close("learned init", "outputs", rc_plan_value(p, out), want, T * B * H, FWD_TOL);
            gradcheck_all(p, g, loss, 1, &h0, "learned init", 1);
        }
        rc_plan_free(p);
    }
    rc_graph_free(g);
    rc_cell_free(c);
}

/* ---- 3. the gradient check can fail ----------------------------------------------------- */

static void (*saved_tanh_backward)(op_inst *);

/* The true tanh backward, with the contribution it adds to gin[0] scaled by 1.01. */
static void tanh_backward_1pct_off(op_inst *it)
{
    float *ga = it->gin[0];
    size_t n = it->in[0]->size;
    float *before = ga ? malloc(n * sizeof *before) : NULL;
    if (!before) {
        saved_tanh_backward(it);
        return;
    }
    memcpy(before, ga, n * sizeof *before);   /* backward accumulates with += */
    saved_tanh_backward(it);
    for (size_t i = 0; i < n; i++) ga[i] = before[i] + 1.01f * (ga[i] - before[i]);
    free(before);
}

Test(cells, gradcheck_catches_wrong_tanh_backward)
{
    net n;
    rc_node *loss;
    rc_plan *p = gradcheck_setup(&n, &SPECS[S_LSTM], &loss);
    if (p) {
        rc_node *extra[3] = {n.x, n.init[0], n.init[1]};
        saved_tanh_backward = op_table[OP_TANH].backward;
        op_table[OP_TANH].backward = tanh_backward_1pct_off;
        double bad = gradcheck_all(p, n.g, loss, 3, extra, "lstm, tanh backward 1% off", 0);
        op_table[OP_TANH].backward = saved_tanh_backward;
        cr_expect_gt(bad, GC_TOL, "a tanh backward 1%% off went unnoticed: error %g", bad);
        double good = gradcheck_all(p, n.g, loss, 3, extra, "lstm, tanh backward restored", 1);
        cr_expect_lt(good, GC_TOL, "restored: error %g", good);
        rc_plan_free(p);
    }
    net_free(&n);
}

/* ---- 4. truncated BPTT ---------------------------------------------------------------- */

Test(cells, truncated_bptt_matches_one_long_window)
{
    enum { K = 3, W = 4, T = K * W, B = 2, H = 5, I = 4 };
    const spec *sp = &SPECS[S_LSTM];
    uint64_t seed = 777;
    net full, win;
    int okf = net_build(&full, sp, T, B, H, 0, NULL) == 0;
    int okw = net_build(&win, sp, W, B, H, NET_INIT | NET_GRAD, NULL) == 0;
    if (okf && okw) {
        fill_spec_params(&seed, full.g, sp, NULL);
        copy_params(win.g, full.g);
        float R[W * B * H];
        rnd_fill(&seed, R, W * B * H, -1.0f, 1.0f);
        rc_node *lw = wsum(win.g, win.out, R);
        /* the same loss on the long run's second window */
        rc_node *lf = wsum(full.g, rc_row_slice(full.g, full.out, W * B, W * B), R);
        rc_node *rf[4] = {lf, full.out, full.fin[0], full.fin[1]};
        rc_node *rw[4] = {lw, win.out, win.fin[0], win.fin[1]};
        rc_plan *pf = make_plan(full.g, 4, rf, "long window");
        rc_plan *pw = make_plan(win.g, 4, rw, "short window");
        float x[T * B * I], outs[T * B * H], carry[2][B * H], gtrunc[H * H];
        rnd_fill(&seed, x, T * B * I, -1.0f, 1.0f);
        memset(carry, 0, sizeof carry);
        int ok = pf && pw && feed(pf, full.x, x, T * B * I) == 0 && forward(pf) == 0;
        rc_node *whi = rc_param_find(win.g, "W_hi");
        double lw2 = 0;
        for (int k = 0; ok && k < K; k++) {
            ok = feed(pw, win.x, x + k * W * B * I, W * B * I) == 0 && feed(pw, win.init[0], carry[0], B * H) == 0 &&
                 feed(pw, win.init[1], carry[1], B * H) == 0 && forward(pw) == 0 && backward(pw, lw) == 0;
            if (!ok) break;
            const float *ov = rc_plan_value(pw, win.out);
            memcpy(outs + k * W * B * H, ov, sizeof(float) * W * B * H);
            for (int i = 0; i < 2; i++) memcpy(carry[i], rc_plan_value(pw, win.fin[i]), sizeof carry[i]);
            /* every parameter gets a finite, non-zero gradient from the window alone */
            for (int i = 0; i < rc_graph_node_count(win.g); i++) {
                rc_node *pn = rc_graph_node(win.g, i);
                if (!is_param(pn)) continue;
                const float *gr = rc_plan_grad(pw, pn);
                int nonzero = 0;
                for (size_t e = 0; gr && e < rc_node_size(pn); e++) nonzero |= gr[e] != 0;
                cr_expect(gr && all_finite(gr, rc_node_size(pn)) && nonzero,
                          "window %d: bad gradient of '%s'", k, rc_node_name(pn));
            }
            for (int i = 0; i < 2; i++) {
                const float *gi = rc_plan_grad(pw, win.init[i]);
                cr_expect(gi && all_finite(gi, B * H), "window %d: no finite gradient of the carried state %d", k,
                          i);
            }
            if (k == 1) {
                lw2 = rc_plan_value(pw, lw)[0];
                if (whi) memcpy(gtrunc, rc_plan_grad(pw, whi), sizeof gtrunc);
            }
        }
        if (ok) {
            expect_close_f("truncated BPTT", "outputs of 3 windows vs 1", outs, rc_plan_value(pf, full.out),
                           T * B * H, FWD_TOL);
            expect_close_f("truncated BPTT", "final h", carry[0], rc_plan_value(pf, full.fin[0]), B * H, FWD_TOL);
            expect_close_f("truncated BPTT", "final c", carry[1], rc_plan_value(pf, full.fin[1]), B * H, FWD_TOL);
            double lf2 = rc_plan_value(pf, lf)[0];
            cr_expect(fabs(lw2 - lf2) <= FWD_TOL * (1 + fabs(lf2)), "window 2 loss %.9g, long run %.9g", lw2, lf2);
            /* full BPTT of the same loss also flows into window 1: the gradients differ */
            rc_node *whf = rc_param_find(full.g, "W_hi");
            if (backward(pf, lf) == 0 && whi && whf) {
                const float *gf = rc_plan_grad(pf, whf);
                double diff = 0, mag = 0;
                for (int e = 0; gf && e < H * H; e++) {
                    diff = fmax(diff, fabs(gf[e] - gtrunc[e]));
                    mag = fmax(mag, fabs(gf[e]));
                }
                cr_expect(gf && diff > 1e-3 * mag, "truncated and full gradients of W_hi should differ (%g vs %g)",
                          diff, mag);
            }
        }
        rc_plan_free(pf);
        rc_plan_free(pw);
    }
    net_free(&full);
    net_free(&win);
}

/* ---- 5. variable lengths: mask vs each sequence alone --------------------------------- */

static void check_masked_batch(const spec *sp)
{
    enum { T = 6, B = 3, H = 5, I = 4 };
    static const int len[B] = {6, 3, 1};
    uint64_t seed = seed_of(sp->label) ^ 0x3a5cull;
    float x[T * B * I], mask[T * B], R[T * B * H], Q[2][B * H];
    rnd_fill(&seed, x, T * B * I, -1.0f, 1.0f);   /* padding rows hold garbage too */
    rnd_fill(&seed, R, T * B * H, -1.0f, 1.0f);
    rnd_fill(&seed, Q[0], 2 * B * H, -1.0f, 1.0f);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) mask[t * B + b] = t < len[b] ? 1.0f : 0.0f;

    net nb, ns[B];
    memset(ns, 0, sizeof ns);
    rc_plan *pb = NULL, *ps[B] = {NULL, NULL, NULL};
    rc_node *lb = NULL, *ls[B] = {NULL, NULL, NULL};
    int ok = net_build(&nb, sp, T, B, H, NET_MASK | NET_GRAD, NULL) == 0;
    if (ok) {
        fill_spec_params(&seed, nb.g, sp, NULL);
        lb = wsum(nb.g, nb.out, R);
        for (int i = 0; i < nb.ns; i++) lb = rc_add(nb.g, lb, wsum(nb.g, nb.fin[i], Q[i]));
        rc_node *roots[4] = {lb, nb.out, nb.fin[0], nb.fin[1]};
        pb = make_plan(nb.g, 1 + 1 + nb.ns, roots, "batch");
        ok = pb && feed(pb, nb.x, x, T * B * I) == 0 && feed(pb, nb.mask, mask, T * B) == 0 && forward(pb) == 0 &&
             backward(pb, lb) == 0;
    }
    for (int b = 0; ok && b < B; b++) {
        const int L = len[b];
        float xb[T * I], Rb[T * H], Qb[2][H];
        for (int t = 0; t < L; t++) {
            memcpy(xb + t * I, x + (t * B + b) * I, sizeof(float) * I);
            memcpy(Rb + t * H, R + (t * B + b) * H, sizeof(float) * H);
        }
        for (int i = 0; i < 2; i++) memcpy(Qb[i], Q[i] + b * H, sizeof(float) * H);
        ok = net_build(&ns[b], sp, L, 1, H, NET_GRAD, NULL) == 0;
        if (!ok) break;
        copy_params(ns[b].g, nb.g);
        ls[b] = wsum(ns[b].g, ns[b].out, Rb);
        for (int i = 0; i < ns[b].ns; i++) ls[b] = rc_add(ns[b].g, ls[b], wsum(ns[b].g, ns[b].fin[i], Qb[i]));
        rc_node *roots[4] = {ls[b], ns[b].out, ns[b].fin[0], ns[b].fin[1]};
        ps[b] = make_plan(ns[b].g, 2 + ns[b].ns, roots, "single sequence");
        ok = ps[b] && feed(ps[b], ns[b].x, xb, L * I) == 0 && forward(ps[b]) == 0 && backward(ps[b], ls[b]) == 0;
    }
    if (ok) {
        char what[96];
        const float *ob = rc_plan_value(pb, nb.out), *gxb = rc_plan_grad(pb, nb.x);
        cr_expect(ob && gxb, "no batch outputs or input gradient");
        double loss_sum = 0;
        for (int b = 0; ob && gxb && b < B; b++) {
            const int L = len[b];
            const float *os = rc_plan_value(ps[b], ns[b].out), *gxs = rc_plan_grad(ps[b], ns[b].x);
            double want[T * H], gwant[T * I];
            float got[T * H], ggot[T * I];
            for (int t = 0; t < L; t++) {
                to_double(os + t * H, want + t * H, H);
                memcpy(got + t * H, ob + (t * B + b) * H, sizeof(float) * H);
                to_double(gxs + t * I, gwant + t * I, I);
                memcpy(ggot + t * I, gxb + (t * B + b) * I, sizeof(float) * I);
            }
            snprintf(what, sizeof what, "sequence %d (length %d): outputs at valid steps", b, L);
            expect_close(sp->label, what, got, want, (size_t)L * H, FWD_TOL);
            snprintf(what, sizeof what, "sequence %d: gradient of x at valid steps", b);
            expect_close(sp->label, what, ggot, gwant, (size_t)L * I, FWD_TOL);
            int zero_out = 1, zero_grad = 1;
            for (int t = L; t < T; t++) {
                for (int j = 0; j < H; j++) zero_out &= ob[(t * B + b) * H + j] == 0.0f;
                for (int j = 0; j < I; j++) zero_grad &= gxb[(t * B + b) * I + j] == 0.0f;
            }
            cr_expect(zero_out, "%s: sequence %d: outputs past its end must be exactly 0", sp->label, b);
            cr_expect(zero_grad, "%s: sequence %d: padding inputs must get a zero gradient", sp->label, b);
            for (int i = 0; i < nb.ns; i++) {
                double fw[H];
                to_double(rc_plan_value(ps[b], ns[b].fin[i]), fw, H);
                snprintf(what, sizeof what, "sequence %d: final state %s", b, rc_cell_state_name(nb.cell, i));
                expect_close(sp->label, what, rc_plan_value(pb, nb.fin[i]) + b * H, fw, H, FWD_TOL);
            }
            loss_sum += rc_plan_value(ps[b], ls[b])[0];
        }
        double lbv = rc_plan_value(pb, lb)[0];
        cr_expect(fabs(lbv - loss_sum) <= FWD_TOL * (1 + fabs(loss_sum)),
                  "%s: batch loss %.9g, sum of the sequences' losses %.9g", sp->label, lbv, loss_sum);
        /* parameter gradients: the batch's = the sum of the sequences' */
        for (int i = 0; i < rc_graph_node_count(nb.g); i++) {
            rc_node *pn = rc_graph_node(nb.g, i);
            if (!is_param(pn)) continue;
            size_t sz = rc_node_size(pn);
            double sum[MAXH * MAXI] = {0};
            for (int b = 0; b < B; b++) {
                const float *gs = rc_plan_grad(ps[b], rc_param_find(ns[b].g, rc_node_name(pn)));
                for (size_t e = 0; gs && e < sz; e++) sum[e] += gs[e];
            }
            snprintf(what, sizeof what, "gradient of '%s' vs the sum over sequences", rc_node_name(pn));
            expect_close(sp->label, what, rc_plan_grad(pb, pn), sum, sz, FWD_TOL);
        }
    }
    for (int b = 0; b < B; b++) {
        rc_plan_free(ps[b]);
        net_free(&ns[b]);
    }
    rc_plan_free(pb);
    net_free(&nb);
}

Test(cells, masked_batch_lstm) { check_masked_batch(&SPECS[S_LSTM]); }
Test(cells, masked_batch_gru) { check_masked_batch(&SPECS[S_GRU_A]); }

/* ---- 6. parameters: one per name, shared by all steps ----------------------------------- */

Test(cells, parameters_shared_across_steps)
{
    /* counted from the equations in the comments of cells/lstm.c, gru.c, rnn.c, mut.c */
    static const int expected[NSPECS] = {
        [S_LSTM] = 12, [S_LSTM_PEEP] = 15, [S_LSTM_NO_F] = 9, [S_LSTM_NO_I] = 9, [S_LSTM_NO_O] = 9,
        [S_GRU_A] = 10, [S_GRU_B] = 9, [S_RNN_TANH] = 3, [S_RNN_RELU] = 3,
        [S_MUT1] = 7, [S_MUT2] = 8, [S_MUT3] = 9,
    };
    const int H = 5;
    for (int k = 0; k < NSPECS; k++) {
        const spec *sp = &SPECS[k];
        pdesc pd[MAXP];
        int np = spec_params(sp, pd);
        cr_expect_eq(np, expected[k], "%s: the test's own list has %d parameters", sp->label, np);
        const int Ts[2] = {1, 5};
        for (int ti = 0; ti < 2; ti++) {
            net n;
            if (net_build(&n, sp, Ts[ti], 2, H, 0, NULL) == 0) {
                cr_expect_eq(count_params(n.g), expected[k], "%s, T = %d: %d parameter nodes, expected %d",
                             sp->label, Ts[ti], count_params(n.g), expected[k]);
                for (int q = 0; q < np; q++) {
                    rc_node *p = rc_param_find(n.g, pd[q].name);
                    cr_expect_not_null(p, "%s: no parameter '%s'", sp->label, pd[q].name);
                    if (!p) continue;
                    cr_expect_str_eq(rc_node_name(p), pd[q].name);
                    int same = 0;
                    for (int i = 0; i < rc_graph_node_count(n.g); i++) {
                        rc_node *m = rc_graph_node(n.g, i);
                        same += is_param(m) && strcmp(rc_node_name(m), pd[q].name) == 0;
                    }
                    cr_expect_eq(same, 1, "%s, T = %d: %d parameter nodes named '%s'", sp->label, Ts[ti], same,
                                 pd[q].name);
                    int want_nd = pd[q].cls == 'b' ? 1 : 2;
                    int want1 = pd[q].cls == 'x' ? n.I : H;
                    cr_expect(rc_node_ndim(p) == want_nd && rc_node_dim(p, 0) == H &&
                                  (want_nd == 1 || rc_node_dim(p, 1) == want1),
                              "%s: '%s' has the wrong shape (ndim %d, [%d,%d])", sp->label, pd[q].name,
                              rc_node_ndim(p), rc_node_dim(p, 0), rc_node_dim(p, 1));
                }
            }
            net_free(&n);
        }
    }
}

/* ---- 7. user mistakes -------------------------------------------------------------------- */

enum bad_mode { BAD_NEVER_SET, BAD_WRONG_SIZE, BAD_PARAM_RESHAPE, BAD_NO_SUCH_STATE, BAD_BATCH_SUM, BAD_BATCH_MEAN,
                OK_PARAM_SUM, BAD_RETURNS_ERROR };

/* A cell with states "h" and "c" that makes one mistake per mode. */
static rc_status bad_step(rc_step *s, void *user)
{
    const int mode = *(const int *)user;
    rc_graph *g = rc_step_graph(s);
    const int H = rc_step_hidden(s);
    rc_node *x = rc_step_input(s), *h = rc_step_state(s, "h");
    switch (mode) {
    case BAD_NEVER_SET:   /* forgets "c" */
        return rc_step_set_state(s, "h", rc_tanh(g, rc_add(g, rc_step_linear(s, "W", x, H), h)));
    case BAD_WRONG_SIZE:  /* "c" of H + 1 units */
        rc_step_set_state(s, "h", rc_step_linear(s, "W", x, H));
        return rc_step_set_state(s, "c", rc_step_linear(s, "V", x, H + 1));
    case BAD_PARAM_RESHAPE: /* "W" first [H, I], then [H, H] */
        rc_step_set_state(s, "h", rc_step_linear(s, "W", x, H));
        return rc_step_set_state(s, "c", rc_step_linear(s, "W", h, H));
    case BAD_NO_SUCH_STATE:
        rc_step_set_state(s, "h", rc_step_state(s, "hidden"));
        return rc_step_set_state(s, "c", h);
    case BAD_BATCH_SUM:    /* a sum over the batch of a value of the input */
    case BAD_BATCH_MEAN: { /* the mean of a state's previous value */
        rc_node *a = rc_tanh(g, rc_step_linear(s, "W", x, H));
        rc_node *r = mode == BAD_BATCH_SUM ? rc_sum(g, a) : rc_mean(g, h);
        rc_step_set_state(s, "h", rc_add(g, a, r));
        return rc_step_set_state(s, "c", h);
    }
    case OK_PARAM_SUM: {   /* a sum of a parameter alone mixes nothing */
        rc_node *a = rc_tanh(g, rc_step_linear(s, "W", x, H));
        rc_node *b = rc_step_bias(s, "b", H);
        rc_step_set_state(s, "h", rc_add(g, a, rc_mean(g, rc_mul(g, b, b))));
        return rc_step_set_state(s, "c", rc_add(g, h, rc_row_sum(g, a)));
    }
    default:               /* returns an error without recording one */
        return RC_ERR_STATE;
    }
}

/* Unrolls the bad cell (T = 3, B = 2, I = 4, H = 5) and returns the status. */
static rc_status unroll_bad(rc_graph *g, int mode, const char *prefix)
{
    rc_cell *c = rc_cell_new("badcell", 5, bad_step, &mode);
    cr_expect_not_null(c);
    if (!c) return RC_ERR_NOMEM;
    cr_expect_eq(rc_cell_add_state(c, "h", 5), RC_OK);
    cr_expect_eq(rc_cell_add_state(c, "c", 5), RC_OK);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){6, 4});
    rc_unroll_opts o = {.prefix = prefix};
    rc_node *out = NULL, *fin[2] = {NULL, NULL};
    rc_status st = rc_unroll(g, c, x, 3, &o, &out, fin);
    rc_cell_free(c);
    return st;
}

#define EXPECT_HAS(msg, word)                                                          \
    do {                                                                               \
        const char *m_ = (msg);                                                        \
        cr_expect(m_ != NULL && strstr(m_, (word)) != NULL,                            \
                  "message \"%s\" should mention \"%s\"", m_ ? m_ : "(null)", (word)); \
    } while (0)

/* Expects st to be an error, the graph to hold it, and its message to mention each word. */
static void expect_error(rc_graph *g, rc_status st, const char *const *words)
{
    cr_expect_neq(st, RC_OK, "the mistake was not reported");
    cr_expect_eq(rc_graph_status(g), st, "graph status %s, rc_unroll returned %s (\"%s\")",
                 rc_status_name(rc_graph_status(g)), rc_status_name(st), rc_graph_error(g));
    for (int i = 0; words[i]; i++) EXPECT_HAS(rc_graph_error(g), words[i]);
}
#define EXPECT_ERROR(g, st, ...) expect_error((g), (st), (const char *const[]){__VA_ARGS__, NULL})

Test(cells, error_state_never_set)
{
    rc_graph *g = rc_graph_new();
    rc_status st = unroll_bad(g, BAD_NEVER_SET, NULL);
    EXPECT_ERROR(g, st, "never set", "'c'", "badcell");
    rc_graph_free(g);
}

/* rc_sum / rc_mean of a step's value adds up the sequences of the batch: refused,
 * naming the per-row op; of parameters alone, or row-wise, fine. */
Test(cells, error_sum_over_the_batch_in_a_step)
{
    rc_graph *g = rc_graph_new();
    rc_status st = unroll_bad(g, BAD_BATCH_SUM, NULL);
    EXPECT_ERROR(g, st, "badcell", "step 0", "(sum)", "all 2 sequences", "rc_row_sum");
    rc_graph_free(g);
    g = rc_graph_new();
    st = unroll_bad(g, BAD_BATCH_MEAN, NULL);
    EXPECT_ERROR(g, st, "(mean)", "rc_row_mean");
    rc_graph_free(g);
    g = rc_graph_new();
    cr_expect_eq(unroll_bad(g, OK_PARAM_SUM, NULL), RC_OK, "%s", rc_graph_error(g));
    rc_graph_free(g);
}

Test(cells, error_state_wrong_size)
{
    rc_graph *g = rc_graph_new();
    rc_status st = unroll_bad(g, BAD_WRONG_SIZE, NULL);
    EXPECT_ERROR(g, st, "'c'", "[2,5]", "[2,6]");
    rc_graph_free(g);
}

Test(cells, error_parameter_reused_with_another_shape)
{
    rc_graph *g = rc_graph_new();
    rc_status st = unroll_bad(g, BAD_PARAM_RESHAPE, "enc.");
    cr_expect_eq(st, RC_ERR_SHAPE);
    EXPECT_ERROR(g, st, "enc.W", "[5,4]", "[5,5]");
    rc_graph_free(g);
}

Test(cells, error_unknown_state)
{
    rc_graph *g = rc_graph_new();
    rc_status st = unroll_bad(g, BAD_NO_SUCH_STATE, NULL);
    EXPECT_ERROR(g, st, "no state named", "'hidden'");
    rc_graph_free(g);
}

Test(cells, error_step_function_returns_error)
{
    rc_graph *g = rc_graph_new();
    rc_status st = unroll_bad(g, BAD_RETURNS_ERROR, NULL);
    cr_expect_eq(st, RC_ERR_STATE);
    EXPECT_ERROR(g, st, "badcell", "step 0", rc_status_name(RC_ERR_STATE));
    rc_graph_free(g);
}

Test(cells, error_bad_length_and_rows)
{
    rc_graph *g = rc_graph_new();
    rc_cell *c = rc_cell_lstm(5, NULL);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){7, 4});
    rc_node *out = NULL;
    rc_status st = rc_unroll(g, c, x, 0, NULL, &out, NULL);
    cr_expect_eq(st, RC_ERR_ARG);
    EXPECT_ERROR(g, st, "T must be >= 1", "lstm");
    rc_graph_clear_error(g);
    st = rc_unroll(g, c, x, -2, NULL, &out, NULL);
    EXPECT_ERROR(g, st, "T must be >= 1");
    rc_graph_clear_error(g);
    st = rc_unroll(g, c, x, 3, NULL, &out, NULL);
    cr_expect_eq(st, RC_ERR_SHAPE);
    EXPECT_ERROR(g, st, "[7,4]", "T = 3", "divid");
    rc_graph_clear_error(g);
    rc_node *xi = rc_input(g, "ids", RC_I32, 2, (int[]){6, 4});
    st = rc_unroll(g, c, xi, 3, NULL, &out, NULL);
    EXPECT_ERROR(g, st, "float");
    rc_graph_clear_error(g);
    st = rc_unroll(g, NULL, x, 7, NULL, &out, NULL);
    cr_expect_eq(st, RC_ERR_ARG);
    rc_graph_clear_error(g);
    st = rc_unroll(g, c, NULL, 7, NULL, &out, NULL);
    cr_expect_eq(st, RC_ERR_ARG);
    rc_graph_clear_error(g);
    /* the first error is kept: a later call returns it without overwriting */
    st = rc_unroll(g, c, x, 0, NULL, &out, NULL);
    rc_status st2 = rc_unroll(g, c, x, 3, NULL, &out, NULL);
    cr_expect_eq(st2, st);
    EXPECT_HAS(rc_graph_error(g), "T must be >= 1");
    /* and after clearing, a correct unroll works (7 rows, T = 7) */
    rc_graph_clear_error(g);
    st = rc_unroll(g, c, x, 7, NULL, &out, NULL);
    cr_expect_eq(st, RC_OK, "%s", rc_graph_error(g));
    cr_expect_eq(rc_node_dim(out, 0), 7);
    rc_graph_free(g);
    rc_cell_free(c);
}

Test(cells, error_mut_input_size)
{
    for (int which = 1; which <= 2; which++) {
        rc_graph *g = rc_graph_new();
        rc_cell *c = rc_cell_mut(which, 5);
        rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){6, 4});
        rc_node *out = NULL;
        rc_status st = rc_unroll(g, c, x, 3, NULL, &out, NULL);
        EXPECT_ERROR(g, st, "input size", "hidden size", "(4)", "(5)");
        rc_graph_free(g);
        rc_cell_free(c);
    }
}

Test(cells, error_mask_wrong_shape)
{
    rc_graph *g = rc_graph_new();
    rc_cell *c = rc_cell_gru(5, RC_GRU_RESET_AFTER);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){6, 4});
    rc_node *m2 = rc_input(g, "mask2", RC_F32, 2, (int[]){6, 2});
    rc_node *m5 = rc_input(g, "mask5", RC_F32, 2, (int[]){5, 1});
    rc_node *m1 = rc_input(g, "mask1d", RC_F32, 1, (int[]){6});
    rc_node *out = NULL;
    rc_node *bad[3] = {m2, m5, m1};
    for (int i = 0; i < 3; i++) {
        rc_unroll_opts o = {.mask = bad[i]};
        rc_status st = rc_unroll(g, c, x, 3, &o, &out, NULL);
        cr_expect_eq(st, RC_ERR_SHAPE);
        EXPECT_ERROR(g, st, "mask", "[6,1]");
        rc_graph_clear_error(g);
    }
    rc_graph_free(g);
    rc_cell_free(c);
}

Test(cells, error_initial_state_wrong_shape)
{
    rc_graph *g = rc_graph_new();
    rc_cell *c = rc_cell_lstm(5, NULL);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){6, 4});
    rc_node *h0 = rc_input(g, "h0", RC_F32, 2, (int[]){2, 5});
    rc_node *c0 = rc_input(g, "c0", RC_F32, 2, (int[]){2, 6});
    rc_node *c0b = rc_input(g, "c0b", RC_F32, 2, (int[]){3, 5});
    rc_node *out = NULL;
    rc_node *init[2] = {h0, c0};
    rc_unroll_opts o = {.init = init};
    rc_status st = rc_unroll(g, c, x, 3, &o, &out, NULL);
    cr_expect_eq(st, RC_ERR_SHAPE);
    EXPECT_ERROR(g, st, "initial state 'c'", "[2,6]", "[2,5]");
    rc_graph_clear_error(g);
    init[1] = c0b;
    st = rc_unroll(g, c, x, 3, &o, &out, NULL);
    EXPECT_ERROR(g, st, "initial state 'c'", "[3,5]", "[2,5]");
    rc_graph_free(g);
    rc_cell_free(c);
}

static rc_status noop_step(rc_step *s, void *user)
{
    (void)s;
    (void)user;
    return RC_OK;
}

Test(cells, error_cell_definitions)
{
    cr_expect_null(rc_cell_new("c", 0, noop_step, NULL));
    cr_expect_null(rc_cell_new("c", -4, noop_step, NULL));
    cr_expect_null(rc_cell_new("c", 4, NULL, NULL));
    cr_expect_null(rc_cell_mut(0, 5));
    cr_expect_null(rc_cell_mut(4, 5));
    cr_expect_null(rc_cell_lstm(0, NULL));
    cr_expect_null(rc_cell_gru(5, (rc_gru_variant)7));
    cr_expect_null(rc_cell_rnn(5, (rc_activation)9));
    rc_cell *c = rc_cell_new(NULL, 4, noop_step, NULL);
    cr_assert_not_null(c);
    cr_expect_eq(rc_cell_add_state(c, "h", 4), RC_OK);
    cr_expect_eq(rc_cell_add_state(c, "h", 4), RC_ERR_ARG, "duplicate state name");
    cr_expect_eq(rc_cell_add_state(c, "h", 3), RC_ERR_ARG, "duplicate state name, other size");
    cr_expect_eq(rc_cell_add_state(c, "z", 0), RC_ERR_ARG, "size 0");
    cr_expect_eq(rc_cell_add_state(c, NULL, 3), RC_ERR_ARG, "NULL name");
    cr_expect_eq(rc_cell_add_state(NULL, "q", 3), RC_ERR_ARG, "NULL cell");
    cr_expect_eq(rc_cell_state_count(c), 1);
    for (int i = 1; i < 16; i++) {
        char name[8];
        snprintf(name, sizeof name, "s%d", i);
        cr_expect_eq(rc_cell_add_state(c, name, 2), RC_OK);
    }
    cr_expect_eq(rc_cell_add_state(c, "s16", 2), RC_ERR_ARG, "a 17th state");
    cr_expect_eq(rc_cell_state_count(c), 16);
    rc_cell_free(c);

    /* a cell without states, and a step that sets nothing */
    rc_graph *g = rc_graph_new();
    rc_cell *e = rc_cell_new("empty", 4, noop_step, NULL);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){4, 3});
    rc_node *out = NULL;
    rc_status st = rc_unroll(g, e, x, 2, NULL, &out, NULL);
    EXPECT_ERROR(g, st, "no state");
    rc_graph_clear_error(g);
    rc_cell_add_state(e, "h", 4);
    st = rc_unroll(g, e, x, 2, NULL, &out, NULL);
    EXPECT_ERROR(g, st, "never set", "'h'");
    rc_graph_free(g);
    rc_cell_free(e);
    rc_cell_free(NULL);
}

/* ---- 8. initialisation of cell parameters ------------------------------------------------ */

/* Expects every value of parameter `name` to be v. */
static void expect_all(rc_graph *g, const char *name, float v)
{
    rc_node *p = rc_param_find(g, name);
    cr_expect_not_null(p, "no parameter '%s'", name);
    if (!p) return;
    const float *d = rc_param_data(p);
    size_t bad = 0;
    for (size_t i = 0; i < rc_node_size(p); i++) bad += d[i] != v;
    cr_expect_eq(bad, 0, "'%s': %zu values differ from %g (first %g)", name, bad, v, d[0]);
}

/* Expects a weight matrix within +-1/sqrt(rows) and not all zero. */
static void expect_default_matrix(rc_graph *g, const char *name, int H)
{
    rc_node *p = rc_param_find(g, name);
    cr_expect_not_null(p, "no parameter '%s'", name);
    if (!p) return;
    const float *d = rc_param_data(p);
    float bound = 1.0f / sqrtf((float)H), mx = 0;
    for (size_t i = 0; i < rc_node_size(p); i++) mx = fmaxf(mx, fabsf(d[i]));
    cr_expect(mx <= bound, "'%s': |w| up to %g, bound %g", name, mx, bound);
    cr_expect(mx > 0, "'%s' is all zero", name);
}

static rc_graph *lstm_graph(const rc_lstm_opts *o, const char *prefix, int H, uint64_t seed)
{
    rc_graph *g = rc_graph_new();
    rc_cell *c = rc_cell_lstm(H, o);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){8, 3});
    rc_node *out = NULL;
    rc_unroll_opts uo = {.prefix = prefix};
    rc_status st = rc_unroll(g, c, x, 4, &uo, &out, NULL);
    cr_expect_eq(st, RC_OK, "%s", rc_graph_error(g));
    rc_cell_free(c);   /* the graph does not need the cell definition any more */
    cr_expect_eq(rc_graph_init_params(g, seed), RC_OK, "%s", rc_graph_error(g));
    return g;
}

Test(cells, lstm_forget_bias_init)
{
    const int H = 6;
    static const char *const mats[] = {"W_xi", "W_hi", "W_xf", "W_hf", "W_xg", "W_hg", "W_xo", "W_ho"};
    rc_graph *g = lstm_graph(NULL, NULL, H, 11);
    expect_all(g, "b_f", 1.0f);
    expect_all(g, "b_i", 0.0f);
    expect_all(g, "b_g", 0.0f);
    expect_all(g, "b_o", 0.0f);
    for (int i = 0; i < 8; i++) expect_default_matrix(g, mats[i], H);
    rc_graph_free(g);

    rc_lstm_opts o = rc_lstm_defaults();
    cr_expect_float_eq(o.forget_bias, 1.0f, 0);
    cr_expect(!o.peepholes && !o.no_forget_gate && !o.no_input_gate && !o.no_output_gate);
    o.forget_bias = 2.5f;
    o.peepholes = 1;
    g = lstm_graph(&o, "enc.", H, 12);
    expect_all(g, "enc.b_f", 2.5f);
    expect_all(g, "enc.b_i", 0.0f);
    expect_all(g, "enc.b_g", 0.0f);
    expect_all(g, "enc.b_o", 0.0f);
    expect_all(g, "enc.p_i", 0.0f);
    expect_all(g, "enc.p_f", 0.0f);
    expect_all(g, "enc.p_o", 0.0f);
    char name[32];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "enc.%s", mats[i]);
        expect_default_matrix(g, name, H);
    }
    rc_graph_free(g);
}

Test(cells, init_is_deterministic_by_seed)
{
    rc_graph *a = lstm_graph(NULL, NULL, 5, 99), *b = lstm_graph(NULL, NULL, 5, 99), *c = lstm_graph(NULL, NULL, 5, 98);
    rc_node *wa = rc_param_find(a, "W_hg"), *wb = rc_param_find(b, "W_hg"), *wc = rc_param_find(c, "W_hg");
    cr_assert(wa && wb && wc);
    size_t n = rc_node_size(wa) * sizeof(float);
    cr_expect(memcmp(rc_param_data(wa), rc_param_data(wb), n) == 0, "same seed, different weights");
    cr_expect(memcmp(rc_param_data(wa), rc_param_data(wc), n) != 0, "another seed, same weights");
    rc_graph_free(a);
    rc_graph_free(b);
    rc_graph_free(c);
}

Test(cells, gru_and_rnn_biases_init_zero)
{
    rc_graph *g = rc_graph_new();
    rc_cell *c = rc_cell_gru(5, RC_GRU_RESET_AFTER), *r = rc_cell_rnn(5, RC_ACT_TANH);
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){4, 3});
    rc_node *out = NULL;
    rc_unroll_opts o1 = {.prefix = "g."}, o2 = {.prefix = "r."};
    cr_expect_eq(rc_unroll(g, c, x, 2, &o1, &out, NULL), RC_OK, "%s", rc_graph_error(g));
    cr_expect_eq(rc_unroll(g, r, x, 2, &o2, &out, NULL), RC_OK, "%s", rc_graph_error(g));
    uint64_t s = 5;
    fill_all_params(&s, g, 3.0f, 4.0f);   /* init must overwrite everything */
    cr_expect_eq(rc_graph_init_params(g, 3), RC_OK);
    static const char *const zero[] = {"g.b_r", "g.b_z", "g.b_xn", "g.b_hn", "r.b_h"};
    for (int i = 0; i < 5; i++) expect_all(g, zero[i], 0.0f);
    expect_default_matrix(g, "g.W_xn", 5);
    expect_default_matrix(g, "r.W_hh", 5);
    rc_graph_free(g);
    rc_cell_free(c);
    rc_cell_free(r);
}
