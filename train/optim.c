/* Optimisers (SGD with heavy-ball or Nesterov momentum, Adam/AdamW, RMSprop, Adagrad)
 * in PyTorch's torch.optim forms, global-norm gradient clipping, L2 or decoupled
 * weight decay, weight noise (Graves 2011), and learning-rate schedules.
 *
 * One step, per parameter with a gradient (a parameter the last plan gave no
 * gradient is skipped, as PyTorch skips a parameter whose .grad is None):
 *   g  = grad * c                      c = clip_norm / norm when norm > clip_norm, else 1
 *   g += lambda * w                    L2 decay (decoupled = 0), after clipping as PyTorch
 *   w *= 1 - lr * lambda               decoupled decay (decoupled = 1), before the update
 *   then the kind's update with g.
 * The gradient buffers belong to the model's plan and are only read: clipping and
 * decay are applied on the fly. The norm is accumulated in double in a fixed order and
 * the element updates are independent of each other, so a step is bitwise the same for
 * the same inputs whatever the thread count. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "optim.h"
#include "rng.h"

/* Elements above which a parameter's update is split across threads. */
#define OPTIM_PAR_MIN 32768
/* Parameter loops use op.h's PAR_FOR: split across threads above OPTIM_PAR_MIN, and no
 * OpenMP region at all when it would get one thread. */

struct rc_optim {
    rc_model *m;
    rc_optim_opts o;
    int np;              /* parameters of the model */
    size_t *size;        /* their element counts */
    float **w;           /* scratch: their storage, fetched at each call */
    const float **g;     /* scratch: their gradients of the current step */
    int slots;           /* state tensors per parameter */
    float **st;          /* [np * slots] state tensors */
    char **names;        /* [np * slots] their names */
    float **clean;       /* weight noise: clean weights per parameter; NULL without */
    int noisy;           /* the weights carry noise (begin without step yet) */
    rng_t rng;
    uint64_t steps;
    double norm;         /* of the last step, before clipping */
    char err[256];       /* the message of the last failed begin/step ("" when none) */
};

static rc_status ofail(rc_optim *o, rc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Puts a message in the optimiser's error slot; returns s. */
static rc_status ofail(rc_optim *o, rc_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof o->err, fmt, ap);
    va_end(ap);
    return s;
}

const char *rc_optim_error(const rc_optim *o) { return o ? o->err : "no optimiser (NULL)"; }

static const char *const slot_names[][2] = {
    [RC_OPT_SGD] = {"sgd.v", NULL},
    [RC_OPT_ADAM] = {"adam.m", "adam.v"},
    [RC_OPT_RMSPROP] = {"rmsprop.s", NULL},
    [RC_OPT_ADAGRAD] = {"adagrad.s", NULL},
};

rc_optim_opts rc_optim_defaults(rc_optim_kind kind)
{
    rc_optim_opts o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.momentum = 0.0f;
    o.nesterov = 0;
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.rho = 0.99f;
    o.eps = 1e-8f;
    o.weight_decay = 0.0f;
    o.decoupled = 0;
    o.clip_norm = 0.0f;
    o.weight_noise = 0.0f;
    o.seed = 1;
    return o;
}

static int in01(float x) { return x >= 0.0f && x < 1.0f; }   /* [0, 1), false for NaN */
static int nonneg(float x) { return x >= 0.0f && isfinite(x); }

const char *optim_opts_error(const rc_optim_opts *o)
{
    if (!o) return "rc_optim_new: NULL options";
    if (o->kind < RC_OPT_SGD || o->kind > RC_OPT_ADAGRAD)
        return "rc_optim_new: kind is not one of RC_OPT_SGD, RC_OPT_ADAM, RC_OPT_RMSPROP, RC_OPT_ADAGRAD";
    if (o->kind == RC_OPT_SGD) {
        if (!nonneg(o->momentum)) return "rc_optim_new: momentum must be finite and >= 0";
        if (o->nesterov && !(o->momentum > 0.0f)) return "rc_optim_new: Nesterov momentum needs momentum > 0";
    }
    if (o->kind == RC_OPT_ADAM && !(in01(o->beta1) && in01(o->beta2)))
        return "rc_optim_new: beta1 and beta2 must be in [0, 1)";
    if (o->kind == RC_OPT_RMSPROP && !in01(o->rho)) return "rc_optim_new: rho must be in [0, 1)";
    if (o->kind != RC_OPT_SGD && !(o->eps > 0.0f && isfinite(o->eps)))
        return "rc_optim_new: eps must be finite and > 0";
    if (!nonneg(o->weight_decay)) return "rc_optim_new: weight_decay must be finite and >= 0";
    if (!nonneg(o->clip_norm)) return "rc_optim_new: clip_norm must be finite and >= 0 (0: no clipping)";
    if (!nonneg(o->weight_noise)) return "rc_optim_new: weight_noise must be finite and >= 0 (0: none)";
    return NULL;
}

static int slots_of(const rc_optim_opts *o)
{
    switch (o->kind) {
    case RC_OPT_SGD: return o->momentum > 0.0f ? 1 : 0;
    case RC_OPT_ADAM: return 2;
    case RC_OPT_RMSPROP:
    case RC_OPT_ADAGRAD: return 1;
    }
    return 0;
}

void rc_optim_free(rc_optim *o)
{
    if (!o) return;
    for (int i = 0; o->st && i < o->np * o->slots; i++) free(o->st[i]);
    for (int i = 0; o->names && i < o->np * o->slots; i++) free(o->names[i]);
    for (int i = 0; o->clean && i < o->np; i++) free(o->clean[i]);
    free(o->st);
    free(o->names);
    free(o->clean);
    free(o->size);
    free(o->w);
    free(o->g);
    free(o);
}

static void restore_clean(rc_optim *o);

rc_optim *rc_optim_new(rc_model *m, const rc_optim_opts *opts)
{
    if (!m) return NULL;
    const char *bad = optim_opts_error(opts);
    if (bad) {
        model_set_error(m, RC_ERR_ARG, "%s", bad);
        return NULL;
    }
    int np = rc_model_param_count(m);
    if (np < 1) {
        model_set_error(m, RC_ERR_STATE, "rc_optim_new: the model has no parameters (was it made with bad options?)");
        return NULL;
    }
    rc_optim *o = calloc(1, sizeof *o);
    if (!o) {
        model_set_error(m, RC_ERR_NOMEM, "rc_optim_new: out of memory");
        return NULL;
    }
    o->m = m;
    o->o = *opts;
    o->np = np;
    o->slots = slots_of(opts);
    size_t ns = (size_t)np * (size_t)o->slots;
    o->size = calloc((size_t)np, sizeof *o->size);
    o->w = calloc((size_t)np, sizeof *o->w);
    o->g = calloc((size_t)np, sizeof *o->g);
    o->st = calloc(ns ? ns : 1, sizeof *o->st);
    o->names = calloc(ns ? ns : 1, sizeof *o->names);
    if (opts->weight_noise > 0.0f) o->clean = calloc((size_t)np, sizeof *o->clean);
    if (!o->size || !o->w || !o->g || !o->st || !o->names || (opts->weight_noise > 0.0f && !o->clean)) goto fail;
    for (int i = 0; i < np; i++) {
        rc_node *n = model_param_node(m, i);
        if (!n || !rc_param_data(n)) goto fail;
        size_t sz = rc_node_size(n);
        o->size[i] = sz;
        const char *pname = rc_node_name(n);
        for (int s = 0; s < o->slots; s++) {
            int k = i * o->slots + s;
            const char *sname = slot_names[opts->kind][s];
            size_t len = strlen(sname) + 1 + strlen(pname) + 1;
            if (!(o->st[k] = calloc(sz ? sz : 1, sizeof(float))) || !(o->names[k] = malloc(len))) goto fail;
            memcpy(o->names[k], sname, strlen(sname));
            o->names[k][strlen(sname)] = '/';
            memcpy(o->names[k] + strlen(sname) + 1, pname, strlen(pname) + 1);
        }
        if (o->clean && !(o->clean[i] = malloc((sz ? sz : 1) * sizeof(float)))) goto fail;
    }
    rng_seed(&o->rng, opts->seed);
    return o;
fail:
    rc_optim_free(o);
    model_set_error(m, RC_ERR_NOMEM, "rc_optim_new: out of memory");
    return NULL;
}

void rc_optim_end(rc_optim *o)
{
    if (o) restore_clean(o);
}

/* Fetches the parameters' storage: RC_OK, or RC_ERR_STATE with a message (naming
 * `fn`, the caller) when one has gone or changed size (the model was changed). */
static rc_status fetch_weights(rc_optim *o, const char *fn)
{
    for (int i = 0; i < o->np; i++) {
        rc_node *n = model_param_node(o->m, i);
        if (!n)
            return ofail(o, RC_ERR_STATE, "%s: parameter %d of %d is gone: the model changed since rc_optim_new",
                         fn, i, o->np);
        if (rc_node_size(n) != o->size[i] || !(o->w[i] = rc_param_data(n)))
            return ofail(o, RC_ERR_STATE, "%s: parameter \"%s\" has %zu elements, %zu when the optimiser was made "
                         "(the model changed since rc_optim_new)", fn, rc_node_name(n), rc_node_size(n), o->size[i]);
    }
    return RC_OK;
}

/* The first parameter whose gradient has a non-finite element: its index, the element
 * in *at and its value in *v; -1 when every gradient is finite. */
static int first_nonfinite(const rc_optim *o, size_t *at, float *v)
{
    for (int i = 0; i < o->np; i++)
        for (size_t j = 0; o->g[i] && j < o->size[i]; j++)
            if (!isfinite(o->g[i][j])) {
                *at = j;
                *v = o->g[i][j];
                return i;
            }
    return -1;
}

static void restore_clean(rc_optim *o)
{
    if (!o->noisy) return;
    for (int i = 0; i < o->np; i++) memcpy(o->w[i], o->clean[i], o->size[i] * sizeof(float));
    o->noisy = 0;
}

rc_status rc_optim_begin(rc_optim *o)
{
    if (!o) return RC_ERR_ARG;
    o->err[0] = 0;
    if (!(o->o.weight_noise > 0.0f)) return RC_OK;
    if (fetch_weights(o, "rc_optim_begin") != RC_OK) return RC_ERR_STATE;
    restore_clean(o);   /* a second begin without a step must not stack noise */
    float sigma = o->o.weight_noise;
    for (int i = 0; i < o->np; i++) {
        float *w = o->w[i], *c = o->clean[i];
        memcpy(c, w, o->size[i] * sizeof(float));
        for (size_t j = 0; j < o->size[i]; j++) w[j] = c[j] + sigma * rng_normal(&o->rng);
    }
    o->noisy = 1;
    return RC_OK;
}

double optim_global_norm(int n, const float *const *g, const size_t *size)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; g && g[i] && j < size[i]; j++) s += (double)g[i][j] * (double)g[i][j];
    return sqrt(s);
}

/* The gradient element as the update sees it: clipped, then with L2 decay. */
#define GRAD(j) (l2 ? g[j] * cs + wd * w[j] : g[j] * cs)

static void update_sgd(const rc_optim *o, float *restrict w, const float *restrict g, float *restrict v, size_t n,
                       float lr, float cs, int l2, float wd)
{
    float mu = o->o.momentum;
    if (!v) {
        PAR_FOR(n >= OPTIM_PAR_MIN, j, n, w[j] -= lr * GRAD(j););
    } else if (o->o.nesterov) {
        PAR_FOR(n >= OPTIM_PAR_MIN, j, n,
            float gj = GRAD(j);
            v[j] = mu * v[j] + gj;
            w[j] -= lr * (gj + mu * v[j]);
        );
    } else {
        PAR_FOR(n >= OPTIM_PAR_MIN, j, n,
            v[j] = mu * v[j] + GRAD(j);
            w[j] -= lr * v[j];
        );
    }
}

static void update_adam(const rc_optim *o, float *restrict w, const float *restrict g, float *restrict m,
                        float *restrict v, size_t n, float lr, float cs, int l2, float wd)
{
    /* PyTorch's form: w -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps) */
    float b1 = o->o.beta1, b2 = o->o.beta2, eps = o->o.eps, a1 = 1.0f - b1, a2 = 1.0f - b2;
    double t = (double)o->steps;
    double bc1 = 1.0 - pow((double)b1, t), bc2 = 1.0 - pow((double)b2, t);
    float step = (float)((double)lr / bc1), bc2s = (float)sqrt(bc2);
    PAR_FOR(n >= OPTIM_PAR_MIN, j, n,
        float gj = GRAD(j);
        m[j] = b1 * m[j] + a1 * gj;
        v[j] = b2 * v[j] + a2 * gj * gj;
        w[j] -= step * m[j] / (sqrtf(v[j]) / bc2s + eps);
        );
}

static void update_rmsprop(const rc_optim *o, float *restrict w, const float *restrict g, float *restrict s,
                           size_t n, float lr, float cs, int l2, float wd)
{
    float rho = o->o.rho, a = 1.0f - rho, eps = o->o.eps;
    PAR_FOR(n >= OPTIM_PAR_MIN, j, n,
        float gj = GRAD(j);
        s[j] = rho * s[j] + a * gj * gj;
        w[j] -= lr * gj / (sqrtf(s[j]) + eps);
        );
}

static void update_adagrad(const rc_optim *o, float *restrict w, const float *restrict g, float *restrict s,
                           size_t n, float lr, float cs, int l2, float wd)
{
    float eps = o->o.eps;
    PAR_FOR(n >= OPTIM_PAR_MIN, j, n,
        float gj = GRAD(j);
        s[j] += gj * gj;
        w[j] -= lr * gj / (sqrtf(s[j]) + eps);
        );
}

#undef GRAD

rc_status rc_optim_step(rc_optim *o, float lr)
{
    if (!o) return RC_ERR_ARG;
    o->err[0] = 0;
    if (fetch_weights(o, "rc_optim_step") != RC_OK) return RC_ERR_STATE;
    restore_clean(o);   /* the update goes to the clean weights, whatever follows */
    if (!(lr >= 0.0f && isfinite(lr)))
        return ofail(o, RC_ERR_ARG, "rc_optim_step: learning rate %g, expected a finite value >= 0", (double)lr);
    int any = 0;
    for (int i = 0; i < o->np; i++) any |= (o->g[i] = model_grad(o->m, i)) != NULL;
    if (!any)   /* no backward to take gradients from */
        return ofail(o, RC_ERR_STATE, "rc_optim_step: no parameter has a gradient (call rc_model_backward first)");
    o->norm = optim_global_norm(o->np, o->g, o->size);
    if (!isfinite(o->norm)) {
        size_t at = 0;
        float v = 0.0f;
        int i = first_nonfinite(o, &at, &v);
        rc_node *n = i >= 0 ? model_param_node(o->m, i) : NULL;
        if (!n)   /* the norm overflowed although every element is finite */
            return ofail(o, RC_ERR_STATE, "rc_optim_step: the global gradient norm is not finite (%g); nothing "
                         "was updated", o->norm);
        return ofail(o, RC_ERR_STATE, "rc_optim_step: the gradient of parameter \"%s\" is not finite (element %zu "
                     "is %g); nothing was updated", rc_node_name(n), at, (double)v);
    }
    o->steps++;
    float cs = 1.0f;
    if (o->o.clip_norm > 0.0f && o->norm > (double)o->o.clip_norm) cs = (float)((double)o->o.clip_norm / o->norm);
    float wd = o->o.weight_decay;
    int l2 = wd > 0.0f && !o->o.decoupled, dec = wd > 0.0f && o->o.decoupled;
    float keep = 1.0f - lr * wd;
    for (int i = 0; i < o->np; i++) {
        float *w = o->w[i];
        const float *g = o->g[i];
        size_t n = o->size[i];
        if (!g) continue;
        if (dec) {
            PAR_FOR(n >= OPTIM_PAR_MIN, j, n, w[j] *= keep;);
        }
        float **st = o->st + (size_t)i * (size_t)o->slots;
        switch (o->o.kind) {
        case RC_OPT_SGD: update_sgd(o, w, g, o->slots ? st[0] : NULL, n, lr, cs, l2, wd); break;
        case RC_OPT_ADAM: update_adam(o, w, g, st[0], st[1], n, lr, cs, l2, wd); break;
        case RC_OPT_RMSPROP: update_rmsprop(o, w, g, st[0], n, lr, cs, l2, wd); break;
        case RC_OPT_ADAGRAD: update_adagrad(o, w, g, st[0], n, lr, cs, l2, wd); break;
        }
    }
    return RC_OK;
}

double rc_optim_grad_norm(const rc_optim *o) { return o ? o->norm : 0.0; }
uint64_t rc_optim_steps(const rc_optim *o) { return o ? o->steps : 0; }

/* ---- state for checkpoints ----------------------------------------------------- */

int optim_state_count(const rc_optim *o) { return o ? o->np * o->slots : 0; }

const char *optim_state_name(const rc_optim *o, int i)
{
    return (o && i >= 0 && i < o->np * o->slots) ? o->names[i] : NULL;
}

float *optim_state_data(rc_optim *o, int i, size_t *count)
{
    if (!o || i < 0 || i >= o->np * o->slots) {
        if (count) *count = 0;
        return NULL;
    }
    if (count) *count = o->size[i / o->slots];
    return o->st[i];
}

void optim_get_scalars(const rc_optim *o, uint64_t *steps, uint64_t rng[4])
{
    if (!o) return;
    if (steps) *steps = o->steps;
    if (rng) memcpy(rng, o->rng.s, sizeof o->rng.s);
}

void optim_set_scalars(rc_optim *o, uint64_t steps, const uint64_t rng[4])
{
    if (!o) return;
    o->steps = steps;
    if (rng) memcpy(o->rng.s, rng, sizeof o->rng.s);
}

/* ---- schedules -------------------------------------------------------------------- */

float rc_schedule_lr(const rc_schedule *s, int epoch, double progress)
{
    if (!s) return 0.0f;
    switch (s->kind) {
    case RC_SCHED_CONSTANT: return s->lr;
    case RC_SCHED_STEP:
        if (epoch < s->start) return s->lr;
        return (float)((double)s->lr * pow((double)s->factor, (double)epoch - (double)s->start + 1.0));
    case RC_SCHED_COSINE: {
        double p = progress < 0.0 ? 0.0 : progress > 1.0 ? 1.0 : progress;   /* NaN stays NaN */
        double f = (double)s->min_frac + (1.0 - (double)s->min_frac) * (1.0 + cos(3.14159265358979323846 * p)) / 2.0;
        return (float)((double)s->lr * f);
    }
    }
    return 0.0f;
}
