/* An rc_lm over a recur character language model (rc_model_lm_new): the model runs as
 * a stream of max_batch rows; a prefix's state is one row of the stream's state
 * (rc_model_stream_get_row), so extending n prefixes is: their states into rows
 * 0..n-1, their labels as the step's tokens, one rc_model_stream_step, the rows'
 * new states out and the log-softmax of the head's rows as the next label's
 * log-probabilities. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "decode_util.h"

struct rc_model_lm {
    rc_model *m;
    int bos, B, V;
    size_t nstate;          /* floats per state */
    int32_t *tok;           /* [B] */
    rc_lm iface;
    char err[512];
};

/* The model's error as the adapter's. */
static rc_status lm_fail(rc_model_lm *l, const char *what)
{
    rc_status s = rc_model_status(l->m);
    if (s == RC_OK) s = RC_ERR_STATE;
    return dec_fail(l->err, sizeof l->err, s, "%s: %s", what, rc_model_error(l->m));
}

static void log_softmax_f(const float *x, int V, float *out)
{
    double m = x[0], s = 0;
    for (int v = 1; v < V; v++) m = x[v] > m ? x[v] : m;
    for (int v = 0; v < V; v++) s += exp((double)x[v] - m);
    double z = m + log(s);
    for (int v = 0; v < V; v++) out[v] = (float)((double)x[v] - z);
}

static rc_status lm_start(void *user, void *state, float *logp)
{
    rc_model_lm *l = user;
    const float *out;
    if (rc_model_stream_reset(l->m, l->B) != RC_OK) return lm_fail(l, "stream_reset");
    for (int i = 0; i < l->B; i++) l->tok[i] = l->bos;
    if (rc_model_stream_step(l->m, NULL, l->tok, &out) != RC_OK) return lm_fail(l, "stream_step");
    if (rc_model_stream_get_row(l->m, 0, state) != RC_OK) return lm_fail(l, "stream_get_row");
    log_softmax_f(out, l->V, logp);
    return RC_OK;
}

static rc_status lm_extend(void *user, int n, const void *const *in, const int32_t *labels, void *const *out,
                           float *const *out_logp)
{
    rc_model_lm *l = user;
    if (n < 1 || n > l->B) {
        dec_fail(l->err, sizeof l->err, RC_ERR_ARG, "extend: %d prefixes, not 1..max_batch = %d", n, l->B);
        return RC_ERR_ARG;
    }
    for (int i = 0; i < n; i++) {
        if (rc_model_stream_set_row(l->m, i, in[i]) != RC_OK) return lm_fail(l, "stream_set_row");
        l->tok[i] = labels[i];
    }
    for (int i = n; i < l->B; i++) l->tok[i] = 0;   /* unused rows: any valid token */
    const float *o;
    if (rc_model_stream_step(l->m, NULL, l->tok, &o) != RC_OK) return lm_fail(l, "stream_step");
    for (int i = 0; i < n; i++) {
        if (rc_model_stream_get_row(l->m, i, out[i]) != RC_OK) return lm_fail(l, "stream_get_row");
        log_softmax_f(o + (size_t)i * l->V, l->V, out_logp[i]);
    }
    return RC_OK;
}

static const char *lm_error(void *user) { return ((rc_model_lm *)user)->err; }

rc_model_lm *rc_model_lm_new(rc_model *m, int bos, int max_batch, char *err, size_t errlen)
{
    const char *who = "model_lm_new";
    if (!m) { dec_fail(err, errlen, RC_ERR_ARG, "%s: NULL model", who); return NULL; }
    size_t nstate = rc_model_stream_state_size(m);
    if (nstate == 0) {
        dec_fail(err, errlen, RC_ERR_STATE, "%s: the model is not usable: %s", who, rc_model_error(m));
        return NULL;
    }
    rc_model_opts o = rc_model_options(m);
    if (o.vocab < 1 || o.head != RC_HEAD_SOFTMAX || o.output_size != o.vocab || o.bidirectional) {
        dec_fail(err, errlen, RC_ERR_ARG, "%s: a character language model has token inputs (vocab %d >= 1), a "
                 "softmax head (head %d) over the same labels (output_size %d = vocab) and runs forward only "
                 "(bidirectional %d)", who, o.vocab, (int)o.head, o.output_size, o.bidirectional);
        return NULL;
    }
    if (bos < 0 || bos >= o.vocab) {
        dec_fail(err, errlen, RC_ERR_ARG, "%s: bos %d is outside the vocabulary 0..%d", who, bos, o.vocab - 1);
        return NULL;
    }
    if (max_batch < 1) { dec_fail(err, errlen, RC_ERR_ARG, "%s: max_batch %d must be >= 1", who, max_batch); return NULL; }
    rc_model_lm *l = calloc(1, sizeof *l);
    if (l) l->tok = malloc((size_t)max_batch * sizeof *l->tok);
    if (!l || !l->tok) {
        free(l);
        dec_fail(err, errlen, RC_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    l->m = m;
    l->bos = bos;
    l->B = max_batch;
    l->V = o.vocab;
    l->nstate = nstate;
    l->iface = (rc_lm){ .vocab = o.vocab, .state_bytes = nstate * sizeof(float), .max_batch = max_batch, .user = l,
                        .start = lm_start, .extend = lm_extend, .error = lm_error };
    return l;
}

const rc_lm *rc_model_lm_iface(rc_model_lm *l) { return l ? &l->iface : NULL; }

void rc_model_lm_free(rc_model_lm *l)
{
    if (!l) return;
    free(l->tok);
    free(l);
}
