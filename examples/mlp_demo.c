/* A first look at recur: build a graph (a 2-layer MLP with softmax cross-entropy),
 * compile it into a plan, and train it with plain SGD on two interleaved spirals.
 * The loss printed every 50 steps falls from log(2) toward 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "recur.h"

#define N 256   /* points per batch */
#define H 32    /* hidden units */

static unsigned long long rng = 88172645463325252ull;
static float frand(void)   /* xorshift64, uniform in [0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 16777216.0f;
}

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "mlp_demo: %s: %s\n", what, msg);
    return 1;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 1000;
    if (steps < 1) return fail("usage", "mlp_demo [steps >= 1]");
    if (rc_blas_check() != RC_OK)
        fprintf(stderr, "mlp_demo: warning: OpenBLAS is not its OpenMP build (%s)\n", rc_blas_config());

    rc_graph *g = rc_graph_new();
    if (!g) return fail("graph", "out of memory");
    int xs[2] = { N, 2 }, ys[1] = { N }, w1s[2] = { 2, H }, b1s[1] = { H }, w2s[2] = { H, 2 }, b2s[1] = { 2 };
    rc_node *x = rc_input(g, "x", RC_F32, 2, xs);
    rc_node *y = rc_input(g, "y", RC_I32, 1, ys);
    rc_node *w1 = rc_param(g, "w1", 2, w1s), *b1 = rc_param(g, "b1", 1, b1s);
    rc_node *w2 = rc_param(g, "w2", 2, w2s), *b2 = rc_param(g, "b2", 1, b2s);
    rc_node *h = rc_tanh(g, rc_add(g, rc_matmul(g, x, w1), b1));
    rc_node *logits = rc_add(g, rc_matmul(g, h, w2), b2);
    rc_node *loss = rc_mean(g, rc_softmax_xent(g, logits, y));
    if (rc_graph_status(g) != RC_OK) {
        int rc = fail("building the graph", rc_graph_error(g));
        rc_graph_free(g);
        return rc;
    }
    rc_node *params[4] = { w1, b1, w2, b2 };
    for (int k = 0; k < 4; k++) {
        float *d = rc_param_data(params[k]);
        for (size_t i = 0; i < rc_node_size(params[k]); i++) d[i] = (frand() - 0.5f) * (k % 2 ? 0.0f : 2.0f);
    }
    rc_plan *p = rc_plan_new(g, 1, &loss);
    if (!p) {
        int rc = fail("planning", rc_graph_error(g));
        rc_graph_free(g);
        return rc;
    }
    printf("recur %s: 2-layer MLP (%d hidden), %d ops on the tape, %zu arena bytes\n", rc_version(), H,
           rc_plan_length(p), rc_plan_arena_bytes(p));
    float xb[N * 2];
    int yb[N];
    int rc = 0;
    for (int step = 1; step <= steps; step++) {
        for (int i = 0; i < N; i++) {   /* two spirals, one per class */
            int c = i & 1;
            float t = frand() * 3.0f, r = 0.2f + t;
            float a = t * 2.5f + (float)c * 3.14159265f;
            xb[2 * i] = r * cosf(a) + 0.05f * (frand() - 0.5f);
            xb[2 * i + 1] = r * sinf(a) + 0.05f * (frand() - 0.5f);
            yb[i] = c;
        }
        if (rc_plan_feed(p, x, xb, N * 2) || rc_plan_feed(p, y, yb, N) || rc_plan_forward(p) ||
            rc_plan_backward(p, loss)) {
            rc = fail("training", rc_plan_error(p));
            break;
        }
        for (int k = 0; k < 4; k++) {   /* SGD */
            float *d = rc_param_data(params[k]);
            const float *gr = rc_plan_grad(p, params[k]);
            for (size_t i = 0; i < rc_node_size(params[k]); i++) d[i] -= 0.5f * gr[i];
        }
        if (step == 1 || step % 50 == 0) printf("step %5d  loss %.4f\n", step, rc_plan_value(p, loss)[0]);
    }
    rc_plan_free(p);
    rc_graph_free(g);
    return rc;
}
