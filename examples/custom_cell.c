/* A user-defined cell, trained the same way as the built-in ones.
 *
 * The minimal gated unit (Zhou, Wu, Zhang & Zhou 2016) has one gate:
 *   f  = sigmoid(W_xf x + W_hf h + b_f)
 *   c  = tanh(W_xh x + W_hh (f * h) + b_h)
 *   h' = (1 - f) * h + f * c
 * It is written below with public op calls only; recur unrolls it and derives its
 * BPTT gradients. The task: read a stream of random symbols and output the symbol
 * seen `DELAY` steps ago, which needs memory. Usage: custom_cell [steps] */
#include <stdio.h>
#include <stdlib.h>
#include "recur.h"

#define V 6        /* symbols */
#define DELAY 3
#define STEPS_T 20
#define BATCH 16
#define H 32

static rc_status mgu_step(rc_step *s, void *user)
{
    (void)user;
    rc_graph *g = rc_step_graph(s);
    int n = rc_step_hidden(s);
    rc_node *x = rc_step_input(s), *h = rc_step_state(s, "h");
    rc_node *f = rc_sigmoid(g, rc_add(g, rc_add(g, rc_step_linear(s, "W_xf", x, n), rc_step_linear(s, "W_hf", h, n)),
                                      rc_step_bias(s, "b_f", n)));
    rc_node *c = rc_tanh(g, rc_add(g, rc_add(g, rc_step_linear(s, "W_xh", x, n),
                                             rc_step_linear(s, "W_hh", rc_mul(g, f, h), n)),
                                   rc_step_bias(s, "b_h", n)));
    return rc_step_set_state(s, "h", rc_add(g, h, rc_mul(g, f, rc_sub(g, c, h))));
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 600;
    rc_cell *mgu = rc_cell_new("mgu", H, mgu_step, NULL);
    if (!mgu || rc_cell_add_state(mgu, "h", H) != RC_OK) return 1;
    rc_model_opts o = rc_model_defaults();
    o.vocab = V;
    o.input_size = 16;
    o.output_size = V;
    rc_model *m = rc_model_new(mgu, &o);
    rc_cell_free(mgu);   /* the model keeps its own copy */
    if (!m || rc_model_status(m) != RC_OK) {
        fprintf(stderr, "custom_cell: %s\n", m ? rc_model_error(m) : "out of memory");
        rc_model_free(m);
        return 1;
    }
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    oo.clip_norm = 5;
    rc_optim *opt = rc_optim_new(m, &oo);
    if (!opt) {
        fprintf(stderr, "custom_cell: cannot make the optimiser\n");
        rc_model_free(m);
        return 1;
    }
    printf("MGU, %zu parameters, task: output the symbol from %d steps ago\n", rc_model_param_total(m), DELAY);
    int32_t stream[STEPS_T * BATCH + DELAY * BATCH], tok[STEPS_T * BATCH], tgt[STEPS_T * BATCH];
    unsigned long long r = 12345;
    for (int i = 0; i < DELAY * BATCH; i++) stream[i] = 0;
    rc_model_set_carry(m, 1);
    int rc = 0;
    for (int it = 1; it <= steps; it++) {
        for (int i = 0; i < STEPS_T * BATCH; i++) {   /* keep the last DELAY steps of the stream */
            if (i < DELAY * BATCH) stream[i] = stream[STEPS_T * BATCH + i];
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            stream[DELAY * BATCH + i] = (int32_t)((r >> 33) % V);
        }
        for (int i = 0; i < STEPS_T * BATCH; i++) {
            tok[i] = stream[DELAY * BATCH + i];
            tgt[i] = stream[i];
        }
        rc_batch b = { .T = STEPS_T, .B = BATCH, .tokens = tok, .targets = tgt };
        double loss = 0;
        if (rc_model_forward(m, &b, &loss) || rc_model_backward(m) || rc_optim_step(opt, 0.01f)) {
            fprintf(stderr, "custom_cell: %s\n", rc_model_error(m));
            rc = 1;
            break;
        }
        if (it == 1 || it % 100 == 0) {
            const float *out = rc_model_output(m);
            int right = 0;
            for (int i = 0; i < STEPS_T * BATCH; i++) {
                int best = 0;
                for (int k = 1; k < V; k++) best = out[i * V + k] > out[i * V + best] ? k : best;
                right += best == tgt[i];
            }
            printf("step %4d  loss %.4f  accuracy %.3f\n", it, loss, (double)right / (STEPS_T * BATCH));
        }
    }
    rc_optim_free(opt);
    rc_model_free(m);
    return rc;
}
