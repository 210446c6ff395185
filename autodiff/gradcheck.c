/* Gradient checking by central differences. The metric is max|g - g_num| over a
 * tensor divided by max|g_num|: per-element relative errors are meaningless in
 * float32 where a gradient element is near zero, while this one stays around 1e-4
 * for correct gradients and is >= 1e-2 when a gradient is 1% off. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"

static rc_status loss_at(rc_plan *p, const rc_node *loss, uint64_t run, double *out)
{
    p->run = run;   /* the same dropout masks for every evaluation */
    rc_status s = plan_forward_run(p);
    if (s != RC_OK) return s;
    *out = ((const float *)p->val[node_resolve((rc_node *)loss)->id].data)[0];
    return RC_OK;
}

/* (L(x+h) - L(x-h)) / (2h) for the element *v, with h as actually representable. */
static rc_status central_diff(rc_plan *p, const rc_node *loss, uint64_t run, float *v, float h, double *d)
{
    float keep = *v;
    double lp = 0, lm = 0;
    *v = keep + h;
    float up = *v;
    rc_status s = loss_at(p, loss, run, &lp);
    *v = keep - h;
    float down = *v;
    if (s == RC_OK) s = loss_at(p, loss, run, &lm);
    *v = keep;
    *d = (lp - lm) / ((double)up - (double)down);
    return s;
}

rc_status rc_gradcheck(rc_plan *p, rc_node *loss, int n_wrt, rc_node *const *wrt, float eps,
                       double *err)
{
    if (!p) return RC_ERR_ARG;
    if (!err || n_wrt < 0 || (n_wrt && !wrt) || !(eps > 0))
        return plan_fail(p, RC_ERR_ARG, "gradcheck: bad arguments (err, wrt, eps > 0)");
    *err = 0;
    uint64_t run = p->run;
    p->run = run;
    rc_status s = plan_forward_run(p);
    if (s == RC_OK) s = rc_plan_backward(p, loss);
    if (s != RC_OK) return s;
    for (int w = 0; w < n_wrt; w++) {
        rc_node *x = wrt[w];
        const float *gp = rc_plan_grad(p, x);
        char d[128] = "NULL";
        if (x) node_describe(x, d, sizeof d);
        if (!gp || (x->kind != NK_PARAM && x->kind != NK_INPUT))
            return plan_fail(p, RC_ERR_ARG, "gradcheck: %s is not a parameter or input with a gradient in this plan", d);
        size_t n = x->t.size;
        float *g = malloc(n * sizeof *g);
        if (!g) return plan_fail(p, RC_ERR_NOMEM, "gradcheck: out of memory");
        memcpy(g, gp, n * sizeof *g);
        float *v = p->val[x->id].data;
        double maxdiff = 0, maxnum = 0;
        for (size_t i = 0; i < n && s == RC_OK; i++) {
            double d1 = 0, d2 = 0;
            s = central_diff(p, loss, run, v + i, eps, &d1);
            if (s == RC_OK) s = central_diff(p, loss, run, v + i, 0.5f * eps, &d2);
            double num = (4.0 * d2 - d1) / 3.0;   /* Richardson: the h^2 error cancels */
            maxdiff = fmax(maxdiff, fabs(num - g[i]));
            maxnum = fmax(maxnum, fabs(num));
        }
        free(g);
        if (s != RC_OK) return s;
        double e = maxdiff / fmax(maxnum, 1e-12);
        if (maxnum < 1e-12 && maxdiff < 1e-12) e = 0;
        *err = fmax(*err, e);
    }
    /* leave the plan as a normal forward/backward would */
    p->run = run;
    s = plan_forward_run(p);
    p->run = run + 1;
    if (s == RC_OK) s = rc_plan_backward(p, loss);
    return s;
}
