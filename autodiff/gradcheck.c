/* Gradient checking: the reverse sweep's gradient against central differences of the
 * loss evaluated with its kinks held and its final sums in double (gradcheck_eval.c).
 *
 * Per tensor x with analytic gradient g (the rule in README "Gradient checking"):
 *  - single entries: entry i moves by +-h_i and +-h_i/2, h_i = eps * max(1, |x_i|) (the
 *    step follows the value's scale); the central differences d1, d2 give by
 *    Richardson n_i = (4 d2 - d1) / 3, free of the h^2 error. Where d1 and d2 differ
 *    by more than their noise and more than the check can afford, a third step h_i/4
 *    gives a second Richardson value, the last one kept and the difference of the two
 *    standing for what the step may still cost;
 *  - the loss's rounding noise sigma is measured, not guessed: the median over the
 *    entries of their fourth differences (+-h, +-h/2 and the base point, after the
 *    linear part: a cubic leaves nothing there), and a probe of nine points spaced
 *    h/8 along random signs moving every entry (the noise of the directions, and of
 *    the entries when they are fewer than GC_MEDIAN_MIN);
 *  - the uncertainty of n_i: u_i = 2 sigma / h_i (4 with the third step) plus the
 *    step's error estimate (|d1 - d2|, or the two Richardson values' difference);
 *  - directions: the gradient's own (v_i ~ h_i g_i) and random signs (v_i ~ +-h_i),
 *    each as long as one entry's step: g.v against the Richardson difference along
 *    v. They see every entry, also those a sample left out, and a gradient off by a
 *    common factor.
 * With S = max |n_i|: WRONG when some entry has |g_i - n_i| > TOL S + K u_i (or a
 * direction the same on its scale, sum |g_i v_i|); otherwise NOISY when some u_i / S
 * exceeds SHARP = (1% - TOL) / (K + 1), else OK. So when the verdict is not NOISY an
 * entry off by 1% of S fails: its discrepancy is at least 1% - u_i > TOL + K u_i.
 * A tensor whose uncertainty is above SHARP is checked again with 4 times the step
 * (when the rounding dominates) or a quarter (when the step's own error does), at
 * most twice, and the pass with the smaller uncertainty is reported: the choice
 * looks at uncertainties only, which do not depend on g. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gradcheck.h"
#include "rng.h"

#define GC_TOL 2e-3                              /* allowed on the tensor's scale */
#define GC_K 4.0                                 /* uncertainties allowed on top */
#define GC_SHARP ((1e-2 - GC_TOL) / (GC_K + 1))  /* uncertainty below which 1% surely fails */
#define GC_PROBE 8.0                             /* the noise probe's spacing: h / 8 */
#define GC_MEDIAN_MIN 16                         /* entries from which their median gives sigma */
#define GC_RETRIES 2                             /* passes at another step */

typedef struct ck {
    gc_eval *e;
    rc_plan *p;
    uint64_t run;
    float *v;            /* the tensor's values */
    const float *g;      /* its analytic gradient (a copy) */
    size_t n;
    float eps;           /* the step of this pass */
    double L0;
    rng_t rng;
} ck;

static rc_status loss_now(ck *c, double *L)
{
    c->p->run = c->run;   /* the same dropout masks for every evaluation */
    return gc_eval_loss(c->e, L);
}

static double step_of(const ck *c, float x) { return (double)c->eps * fmax(1.0, fabs((double)x)); }

/* ---- single entries ------------------------------------------------------------------ */

typedef struct entry {
    double h;
    double d[3];         /* central differences at h, h/2 and (refined) h/4 */
    int nd;              /* 0: the loss was not finite there, the entry is skipped */
    double num;          /* Richardson of the last two */
    double trunc;        /* what the step may still cost: |d1 - d2|, or |r12 - r23| refined */
    double k4;           /* |fourth difference| of the loss over +-h, +-h/2 and L0 */
} entry;

/* Central difference of entry i at step h (as representable); st: the steps taken,
 * L: the losses there. */
static rc_status central(ck *c, size_t i, float h, double *d, double st[2], double L[2])
{
    float keep = c->v[i];
    rc_status s = RC_OK;
    for (int j = 0; j < 2 && s == RC_OK; j++) {
        c->v[i] = keep + (j ? -h : h);
        st[j] = (double)c->v[i] - (double)keep;
        s = loss_now(c, &L[j]);
    }
    c->v[i] = keep;
    *d = (L[0] - L[1]) / (st[0] - st[1]);
    return s;
}

static void estimate(entry *en)
{
    double r = (4.0 * en->d[1] - en->d[0]) / 3.0;
    en->num = r;
    en->trunc = fabs(en->d[0] - en->d[1]);
    if (en->nd == 3) {
        en->num = (4.0 * en->d[2] - en->d[1]) / 3.0;
        en->trunc = fabs(r - en->num);
    }
    if (!isfinite(en->num) || !isfinite(en->trunc)) en->nd = 0;
}

/* Moves entry i by +-h and +-h/2 and evaluates the loss there. */
static rc_status check_entry(ck *c, size_t i, entry *out)
{
    float h = (float)step_of(c, c->v[i]);
    double st[4], L[4];
    rc_status s = central(c, i, h, &out->d[0], st, L);
    if (s == RC_OK) s = central(c, i, 0.5f * h, &out->d[1], st + 2, L + 2);
    if (s != RC_OK) return s;
    out->h = h;
    out->nd = 2;
    estimate(out);
    /* the fourth difference after the linear part (the steps as taken are not exactly
     * symmetric): the loss's rounding, and at large steps its fourth derivative */
    double r[4];
    for (int j = 0; j < 4; j++) r[j] = L[j] - c->L0 - out->num * st[j];
    out->k4 = fabs(r[0] + r[1] - 4.0 * (r[2] + r[3]));
    if (!isfinite(out->k4)) out->nd = 0;
    return RC_OK;
}

/* The third step, h/4. */
static rc_status refine_entry(ck *c, size_t i, entry *en)
{
    double st[2], L[2];
    rc_status s = central(c, i, 0.25f * (float)en->h, &en->d[2], st, L);
    if (s == RC_OK) {
        en->nd = 3;
        estimate(en);
    }
    return s;
}

/* ---- directions ---------------------------------------------------------------------- */

/* Moves every entry by t * dir_i (as representable) and evaluates the loss; *lin is
 * g . (the move as taken). The values are restored from keep. */
static rc_status along(ck *c, const float *keep, const double *dir, double t, double *L, double *lin)
{
    double a = 0;
    for (size_t i = 0; i < c->n; i++) {
        c->v[i] = (float)((double)keep[i] + t * dir[i]);
        a += (double)c->g[i] * ((double)c->v[i] - (double)keep[i]);
    }
    rc_status s = loss_now(c, L);
    memcpy(c->v, keep, c->n * sizeof *keep);
    *lin = a;
    return s;
}

/* The loss's rounding noise when every entry moves: fourth differences along dir at
 * spacing 1/GC_PROBE after the linear part, RMS over the five windows of nine points. */
static rc_status probe_noise(ck *c, const float *keep, const double *dir, double *sigma)
{
    double r[9];
    for (int j = -4; j <= 4; j++) {
        double L = c->L0, lin = 0;
        if (j != 0) {
            rc_status s = along(c, keep, dir, j / GC_PROBE, &L, &lin);
            if (s != RC_OK) return s;
        }
        r[j + 4] = L - c->L0 - lin;
    }
    double ss = 0;
    for (int w = 0; w < 5; w++) {
        double d = r[w] - 4 * r[w + 1] + 6 * r[w + 2] - 4 * r[w + 3] + r[w + 4];
        ss += d * d;
    }
    *sigma = sqrt(ss / 5.0 / 70.0);   /* the difference weighs 1, 4, 6, 4, 1: norm sqrt(70) */
    return RC_OK;
}

/* g.v against the Richardson difference along v, on the scale sum |g_i v_i|: the
 * discrepancy *err, the uncertainty *u and its rounding part *un. As for an entry, a
 * third step (v/4) when the first two differ beyond their noise and what the check
 * can afford. *err is -1 when the loss was not finite there. */
static rc_status check_direction(ck *c, const float *keep, const double *dir, double sigma, double *err,
                                 double *u, double *un)
{
    double L[6], a[6], d[3], gd[3];
    static const double t[6] = { 1.0, -1.0, 0.5, -0.5, 0.25, -0.25 };
    int nd = 2;
    double scale = 0;
    for (size_t i = 0; i < c->n; i++) scale += fabs((double)c->g[i] * dir[i]);
    for (int j = 0; j < 6; j++) {
        if (j == 4) {   /* the third step? */
            double diff = fabs(d[0] - d[1]);
            if (!(diff > GC_SHARP / 4 * scale && diff > 6.0 * sigma)) break;
            nd = 3;
        }
        rc_status s = along(c, keep, dir, t[j], &L[j], &a[j]);
        if (s != RC_OK) return s;
        if (j % 2) {   /* central differences of the loss and of g.move, per unit of t */
            d[j / 2] = (L[j - 1] - L[j]) / (2 * t[j - 1]);
            gd[j / 2] = (a[j - 1] - a[j]) / (2 * t[j - 1]);
        }
    }
    /* Richardson of the last two; the same combination of g.move, so that the moves'
     * rounding cancels */
    double D = (4 * d[nd - 1] - d[nd - 2]) / 3, G = (4 * gd[nd - 1] - gd[nd - 2]) / 3;
    double trunc = nd == 2 ? fabs(d[0] - d[1]) : fabs((4 * d[1] - d[0]) / 3 - D);
    if (!(scale > 0)) scale = fmax(fabs(D), 1e-300);
    *err = isfinite(D) && isfinite(trunc) ? fabs(G - D) / scale : -1;
    *un = (nd == 3 ? 4.0 : 2.0) * sigma / scale;
    *u = *un + trunc / scale;
    return RC_OK;
}

/* ---- one tensor ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct ranked {
    float mag;
    size_t i;
} ranked;

static int cmp_ranked_desc(const void *a, const void *b)
{
    float x = ((const ranked *)a)->mag, y = ((const ranked *)b)->mag;
    return (x < y) - (x > y);
}

/* Work space of one tensor's check. */
typedef struct work {
    size_t *idx;         /* the entries checked, m of them */
    size_t m;
    entry *en;
    double *k4, *dir;
    float *keep;         /* the tensor's values */
    int ndir;
} work;

/* The entries to check: all, or the max_entries / 2 of largest |g| and others at random. */
static int choose_entries(ck *c, int max_entries, work *w)
{
    size_t n = c->n;
    for (size_t i = 0; i < n; i++) w->idx[i] = i;
    w->m = n;
    if (max_entries <= 0 || (size_t)max_entries >= n) return 0;
    ranked *r = malloc(n * sizeof *r);
    if (!r) return -1;
    for (size_t i = 0; i < n; i++) r[i] = (ranked){ fabsf(c->g[i]), i };
    qsort(r, n, sizeof *r, cmp_ranked_desc);
    for (size_t i = 0; i < n; i++) w->idx[i] = r[i].i;
    free(r);
    size_t m = (size_t)max_entries;
    for (size_t k = m / 2; k < m; k++) {   /* the rest: a partial shuffle of the others */
        size_t j = k + (size_t)(rng_next(&c->rng) % (n - k)), t = w->idx[k];
        w->idx[k] = w->idx[j];
        w->idx[j] = t;
    }
    w->m = m;
    return 0;
}

/* Random signs scaled to the steps, as long as one entry's step. */
static void random_direction(ck *c, const float *keep, double *dir)
{
    for (size_t i = 0; i < c->n; i++)
        dir[i] = step_of(c, keep[i]) * ((rng_next(&c->rng) >> 63) ? 1.0 : -1.0) / sqrt((double)c->n);
}

/* The check at the current step: the report, and *shrink when a smaller step would do
 * better (the step's own error, beyond the noise, dominates in a quarter of the
 * estimates or more) rather than a larger one (the rounding dominates). */
static rc_status one_pass(ck *c, work *w, rc_gradcheck_report *rep, int *shrink)
{
    size_t n = c->n, m = w->m;
    entry *en = w->en;
    rc_status s = RC_OK;
    for (size_t k = 0; k < m && s == RC_OK; k++) s = check_entry(c, w->idx[k], &en[k]);
    if (s != RC_OK) return s;

    /* the noise: the probe moving every entry; with enough entries, their own median
     * (one entry moves fewer rows of a batch, so its loss is less noisy), but never
     * above twice the probe, which at an eighth of the step sees less of the loss's
     * fourth derivative */
    random_direction(c, w->keep, w->dir);
    double sdir = 0;
    if ((s = probe_noise(c, w->keep, w->dir, &sdir)) != RC_OK) return s;
    size_t nk = 0;
    for (size_t k = 0; k < m; k++)
        if (en[k].nd) w->k4[nk++] = en[k].k4;
    qsort(w->k4, nk, sizeof *w->k4, cmp_double);
    /* |N(0, s^2)| has median 0.674 s; the difference weighs 1, 1, 4, 4, 6: norm sqrt(70) */
    double smed = nk ? w->k4[nk / 2] / (0.674 * sqrt(70.0)) : 0;
    if (!isfinite(sdir)) sdir = smed;   /* the probe left the loss's domain */
    double sigma = nk >= GC_MEDIAN_MIN ? fmin(smed, 2.0 * sdir) : sdir;

    double S = 0;
    for (size_t k = 0; k < m; k++)
        if (en[k].nd) S = fmax(S, fabs(en[k].num));
    for (size_t k = 0; k < m && s == RC_OK; k++)
        if (en[k].nd && en[k].trunc > GC_SHARP / 4 * S && en[k].trunc > 6.0 * sigma / en[k].h)
            s = refine_entry(c, w->idx[k], &en[k]);
    if (s != RC_OK) return s;
    S = 0;
    for (size_t k = 0; k < m; k++)
        if (en[k].nd) S = fmax(S, fabs(en[k].num));

    memset(rep, 0, sizeof *rep);
    rep->size = n;
    rep->step = c->eps;
    int wrong = 0;
    size_t step_bound = 0, votes = 0;
    double scale = S > 0 ? S : 1e-300, worst = -1;
    for (size_t k = 0; k < m; k++) {
        if (!en[k].nd) {
            rep->skipped++;
            continue;
        }
        rep->checked++;
        size_t i = w->idx[k];
        double diff = fabs((double)c->g[i] - en[k].num);
        double un = (en[k].nd == 3 ? 4.0 : 2.0) * sigma / en[k].h, u = un + en[k].trunc;
        if (!(diff <= GC_TOL * S + GC_K * u)) wrong = 1;
        rep->noise = fmax(rep->noise, u / scale);
        /* the step's error dominates where the estimates differ beyond their own noise */
        double tn = (en[k].nd == 3 ? 4.0 : 1.6) * sigma / en[k].h;
        step_bound += en[k].trunc - 3.0 * tn > un;
        votes++;
        if (diff > worst) {
            worst = diff;
            rep->worst = i;
            rep->worst_g = c->g[i];
            rep->worst_num = en[k].num;
        }
    }
    rep->err = worst < 0 ? 0 : S > 0 ? worst / S : worst > 0 ? INFINITY : 0;

    /* directions: the gradient's own, then random signs */
    double gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs((double)c->g[i]));
    for (int d = -1; d < w->ndir && s == RC_OK; d++) {
        if (d >= 0) random_direction(c, w->keep, w->dir);
        else if (gmax > 0) {
            double norm = 0;
            for (size_t i = 0; i < n; i++) norm += ((double)c->g[i] / gmax) * ((double)c->g[i] / gmax);
            for (size_t i = 0; i < n; i++) w->dir[i] = step_of(c, w->keep[i]) * ((double)c->g[i] / gmax) / sqrt(norm);
        } else continue;
        double e = 0, u = 0, un = 0;
        if ((s = check_direction(c, w->keep, w->dir, sdir, &e, &u, &un)) != RC_OK) break;
        if (e < 0) continue;   /* the loss was not finite along it */
        rep->directions++;
        if (!(e <= GC_TOL + GC_K * u)) wrong = 1;
        rep->dir_err = fmax(rep->dir_err, e);
        rep->dir_noise = fmax(rep->dir_noise, u);
        step_bound += u - un - 3.0 * 0.8 * un > un;
        votes++;
    }
    *shrink = 4 * step_bound >= votes && votes > 0;
    int sharp = rep->noise <= GC_SHARP && rep->dir_noise <= GC_SHARP && rep->checked + rep->directions > 0;
    rep->verdict = wrong ? RC_GC_WRONG : sharp ? RC_GC_OK : RC_GC_NOISY;
    return RC_OK;
}

/* One tensor: passes at the step and, while the uncertainty is above SHARP, at
 * another step (see the top of the file). */
static rc_status check_tensor(ck *c, int max_entries, int ndir, rc_gradcheck_report *rep)
{
    size_t n = c->n;
    rc_status s = RC_OK;
    float eps0 = c->eps;
    work w = { .idx = malloc(n * sizeof *w.idx), .en = malloc(n * sizeof *w.en), .k4 = malloc(n * sizeof *w.k4),
               .dir = malloc(n * sizeof *w.dir), .keep = malloc(n * sizeof *w.keep), .ndir = ndir };
    if (!w.idx || !w.en || !w.k4 || !w.dir || !w.keep || choose_entries(c, max_entries, &w) != 0) {
        s = plan_fail(c->p, RC_ERR_NOMEM, "gradcheck: out of memory");
        goto done;
    }
    memcpy(w.keep, c->v, n * sizeof *w.keep);
    int shrink = 0;
    if ((s = one_pass(c, &w, rep, &shrink)) != RC_OK) goto done;
    for (int tries = 0; tries < GC_RETRIES && rep->verdict != RC_GC_OK; tries++) {
        double level = fmax(rep->noise, rep->dir_noise);
        if (level <= GC_SHARP && rep->checked + rep->directions > 0) break;   /* sharp: a WRONG stands */
        c->eps *= shrink ? 0.25f : 4.0f;
        rc_gradcheck_report r;
        if ((s = one_pass(c, &w, &r, &shrink)) != RC_OK) goto done;
        if (!(fmax(r.noise, r.dir_noise) < level)) break;
        *rep = r;
    }
done:
    if (w.keep) memcpy(c->v, w.keep, n * sizeof *w.keep);
    c->eps = eps0;
    free(w.idx);
    free(w.en);
    free(w.k4);
    free(w.dir);
    free(w.keep);
    return s;
}

/* ---- the entry points ------------------------------------------------------------------ */

rc_status rc_gradcheck_ex(rc_plan *p, rc_node *loss, int n_wrt, rc_node *const *wrt, const rc_gradcheck_opts *o,
                          rc_gradcheck_report *reports)
{
    if (!p) return RC_ERR_ARG;
    if (!loss || (n_wrt && !reports) || n_wrt < 0 || (n_wrt && !wrt) || (o && !(o->eps >= 0 && isfinite(o->eps))))
        return plan_fail(p, RC_ERR_ARG, "gradcheck: bad arguments (loss, wrt, reports, eps >= 0)");
    float eps = o && o->eps > 0 ? o->eps : 1e-2f;
    int ndir = o && o->directions ? (o->directions < 0 ? 0 : o->directions) : 2;
    uint64_t run = p->run;
    rc_status s = plan_forward_run(p);
    if (s == RC_OK) s = rc_plan_backward(p, loss);
    if (s != RC_OK) return s;
    for (int w = 0; w < n_wrt; w++) {
        rc_node *x = wrt[w];
        char d[128] = "NULL";
        if (x) node_describe(x, d, sizeof d);
        if (!x || x->g != p->g || !rc_plan_grad(p, x) || (x->kind != NK_PARAM && x->kind != NK_INPUT))
            return plan_fail(p, RC_ERR_ARG, "gradcheck: %s is not a parameter or input with a gradient in this plan", d);
    }
    gc_eval e;
    if ((s = gc_eval_init(&e, p, loss)) != RC_OK) return s;
    ck c = { .e = &e, .p = p, .run = run, .eps = eps };
    rng_seed(&c.rng, o && o->seed ? o->seed : 0x9c7e5eedull);
    p->run = run;
    s = gc_eval_record(&e, &c.L0);
    for (int w = 0; w < n_wrt && s == RC_OK; w++) {
        rc_node *x = wrt[w];
        c.n = x->t.size;
        float *g = malloc((c.n + 1) * sizeof *g);
        if (!g) {
            s = plan_fail(p, RC_ERR_NOMEM, "gradcheck: out of memory");
            break;
        }
        memcpy(g, rc_plan_grad(p, x), c.n * sizeof *g);
        if (gc_test_tamper) gc_test_tamper(x, g, c.n);
        c.g = g;
        c.v = p->val[x->id].data;
        s = check_tensor(&c, o ? o->max_entries : 0, ndir, &reports[w]);
        free(g);
    }
    gc_eval_free(&e);
    if (s != RC_OK) return s;
    /* leave the plan as a normal forward/backward would */
    p->run = run;
    s = plan_forward_run(p);
    p->run = run + 1;
    if (s == RC_OK) s = rc_plan_backward(p, loss);
    return s;
}

rc_status rc_gradcheck(rc_plan *p, rc_node *loss, int n_wrt, rc_node *const *wrt, float eps, double *err)
{
    if (!p) return RC_ERR_ARG;
    if (!err || n_wrt < 0 || (n_wrt && !wrt) || !(eps > 0) || !isfinite(eps))
        return plan_fail(p, RC_ERR_ARG, "gradcheck: bad arguments (err, wrt, eps > 0)");
    *err = 0;
    rc_gradcheck_report *r = calloc((size_t)n_wrt + 1, sizeof *r);
    if (!r) return plan_fail(p, RC_ERR_NOMEM, "gradcheck: out of memory");
    rc_gradcheck_opts o = { .eps = eps };
    rc_status s = rc_gradcheck_ex(p, loss, n_wrt, wrt, &o, r);
    for (int w = 0; w < n_wrt && s == RC_OK; w++) *err = fmax(*err, fmax(r[w].err, r[w].dir_err));
    free(r);
    return s;
}
