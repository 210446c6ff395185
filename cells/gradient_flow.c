/* rc_gradient_flow: how a cell carries gradient back through time. It lives with
 * the cells because it unrolls one (graph/ only measures graphs). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cell.h"
#include "rng.h"
#include "recur.h"

static void put_err(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_err(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* ---- gradient flow ----------------------------------------------------------------- */

#define FLOW_PROBES 4

rc_status rc_gradient_flow(const rc_cell *cell, int input_size, int T, int B, uint64_t seed, unsigned flags,
                           double *dl_dh, double *dhT_dht, char *err, size_t errlen)
{
    int per_step = (flags & RC_FLOW_PER_STEP_LOSS) != 0;
    if (!cell || input_size < 1 || T < 1 || B < 1) {
        put_err(err, errlen, "gradient flow: needs a cell and input size, T, B >= 1 (got %d, %d, %d)", input_size, T, B);
        return RC_ERR_ARG;
    }
    int ns = rc_cell_state_count(cell), H = rc_cell_state_size(cell, 0);
    rc_graph *g = rc_graph_new();
    rc_node **states = calloc((size_t)T * (size_t)(ns > 0 ? ns : 1), sizeof *states);
    float *xd = NULL, *yd = NULL, *ud = NULL;
    double *acc = NULL;
    rc_plan *p = NULL;
    rc_status st = RC_OK;
    if (!g || !states) {
        put_err(err, errlen, "gradient flow: out of memory");
        st = RC_ERR_NOMEM;
        goto done;
    }
    int xs[2] = { T * B, input_size }, us[2] = { B, H };
    rc_node *x = rc_input(g, "x", RC_F32, 2, xs), *out = NULL;
    rc_unroll_opts uo = { .states = states };
    st = rc_unroll(g, cell, x, T, &uo, &out, NULL);
    if (st != RC_OK) {
        put_err(err, errlen, "gradient flow: %s", rc_graph_error(g));
        goto done;
    }
    int ys[2] = { per_step ? T * B : B, rc_node_dim(out, 1) };
    rc_node *y = rc_input(g, "target", RC_F32, 2, ys), *u = rc_input(g, "u", RC_F32, 2, us);
    rc_node *hT = states[(size_t)(T - 1) * (size_t)ns];
    rc_node *pred = per_step || T == 1 ? out : rc_row_slice(g, out, (T - 1) * B, B);
    rc_node *loss = rc_scale(g, rc_sum(g, rc_mse(g, pred, y)), 1.0f / (float)B);
    rc_node *probe = rc_sum(g, rc_mul(g, hT, u));
    if ((st = rc_graph_status(g)) != RC_OK || (st = rc_graph_init_params(g, seed)) != RC_OK) {
        put_err(err, errlen, "gradient flow: %s", rc_graph_error(g));
        goto done;
    }
    rc_node *roots[2] = { loss, probe };
    /* every state keeps its own gradient buffer: no elementwise fusion, no buffer reuse */
    p = rc_plan_new_ex(g, 2, roots, RC_PLAN_NO_EW_FUSION | RC_PLAN_NO_BUFFER_PLAN);
    size_t nx = (size_t)T * (size_t)B * (size_t)input_size, ny = (size_t)ys[0] * (size_t)ys[1],
           nu = (size_t)B * (size_t)H;
    xd = malloc(nx * sizeof *xd);
    yd = malloc(ny * sizeof *yd);
    ud = malloc(nu * sizeof *ud);
    acc = calloc((size_t)T, sizeof *acc);
    if (!p) {
        st = rc_graph_status(g);
        put_err(err, errlen, "gradient flow: %s", rc_graph_error(g));
        goto done;
    }
    if (!xd || !yd || !ud || !acc) {
        put_err(err, errlen, "gradient flow: out of memory");
        st = RC_ERR_NOMEM;
        goto done;
    }
    rng_t r;
    rng_seed(&r, seed ^ 0x6a09e667f3bcc909ull);
    for (size_t i = 0; i < nx; i++) xd[i] = rng_normal(&r);
    for (size_t i = 0; i < ny; i++) yd[i] = rng_uniform(&r, -1.0f, 1.0f);
    for (size_t i = 0; i < nu; i++) ud[i] = 0;
    if ((st = rc_plan_feed(p, x, xd, nx)) != RC_OK || (st = rc_plan_feed(p, y, yd, ny)) != RC_OK ||
        (st = rc_plan_feed(p, u, ud, nu)) != RC_OK || (st = rc_plan_forward(p)) != RC_OK ||
        (st = rc_plan_backward(p, loss)) != RC_OK) {
        put_err(err, errlen, "gradient flow: %s", rc_plan_error(p));
        goto done;
    }
    for (int t = 0; t < T; t++) {
        const float *gr = rc_plan_grad(p, states[(size_t)t * (size_t)ns]);
        if (!gr) {
            put_err(err, errlen, "gradient flow: the state after step %d has no gradient", t);
            st = RC_ERR_STATE;
            goto done;
        }
        double s = 0;
        for (size_t i = 0; i < nu; i++) s += (double)gr[i] * gr[i];
        if (dl_dh) dl_dh[t] = sqrt(s / B);
    }
    for (int k = 0; k < FLOW_PROBES && dhT_dht; k++) {
        for (int b = 0; b < B; b++) {   /* a random unit vector per sequence */
            double s = 0;
            float *row = ud + (size_t)b * (size_t)H;
            for (int i = 0; i < H; i++) {
                row[i] = rng_normal(&r);
                s += (double)row[i] * row[i];
            }
            float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
            for (int i = 0; i < H; i++) row[i] *= inv;
        }
        if ((st = rc_plan_feed(p, u, ud, nu)) != RC_OK || (st = rc_plan_forward(p)) != RC_OK ||
            (st = rc_plan_backward(p, probe)) != RC_OK) {
            put_err(err, errlen, "gradient flow: %s", rc_plan_error(p));
            goto done;
        }
        for (int t = 0; t < T; t++) {
            const float *gr = rc_plan_grad(p, states[(size_t)t * (size_t)ns]);
            double m = 0;
            for (int b = 0; gr && b < B; b++) {
                double s = 0;
                for (int i = 0; i < H; i++) s += (double)gr[(size_t)b * H + i] * gr[(size_t)b * H + i];
                m += sqrt(s);
            }
            acc[t] += m / B;
        }
    }
    for (int t = 0; t < T && dhT_dht; t++) dhT_dht[t] = acc[t] / FLOW_PROBES;
done:
    rc_plan_free(p);
    rc_graph_free(g);
    free(states);
    free(xd);
    free(yd);
    free(ud);
    free(acc);
    return st;
}
