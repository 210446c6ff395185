/* MUT1, MUT2, MUT3: the three architectures found by evolutionary search in
 * Jozefowicz, Zaremba & Sutskever, "An Empirical Exploration of Recurrent Network
 * Architectures", ICML 2015 (their equations, with W_xx written as x @ W^T):
 *
 * MUT1: z  = sigm(W_xz x + b_z)
 *       r  = sigm(W_xr x + W_hr h + b_r)
 *       h' = tanh(W_hh (r * h) + tanh(x) + b_h) * z + h * (1 - z)
 * MUT2: z  = sigm(W_xz x + W_hz h + b_z)
 *       r  = sigm(x + W_hr h + b_r)
 *       h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
 * MUT3: z  = sigm(W_xz x + W_hz tanh(h) + b_z)
 *       r  = sigm(W_xr x + W_hr h + b_r)
 *       h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
 *
 * MUT1's tanh(x) and MUT2's bare x are added to hidden-sized vectors, so the input
 * size must equal the hidden size (the paper embeds inputs at the hidden size). */
#include "builtin.h"

static rc_node *lin(rc_step *s, const char *w, rc_node *v) { return rc_step_linear(s, w, v, rc_step_hidden(s)); }
static rc_node *bias(rc_step *s, const char *b) { return rc_step_bias(s, b, rc_step_hidden(s)); }

static rc_status mut_step(rc_step *s, void *user)
{
    int which = *(const int *)user;
    rc_graph *g = rc_step_graph(s);
    rc_node *x = rc_step_input(s), *h = rc_step_state(s, "h"), *z, *r, *pre;
    if (which != 3 && rc_step_input_size(s) != rc_step_hidden(s))
        return rc_step_fail(s, "MUT%d adds x to hidden-sized vectors, so the input size (%d) must equal "
                               "the hidden size (%d): embed or project the input to the hidden size first",
                            which, rc_step_input_size(s), rc_step_hidden(s));
    if (which == 1) {
        z = rc_sigmoid(g, rc_add(g, lin(s, "W_xz", x), bias(s, "b_z")));
        r = rc_sigmoid(g, rc_add(g, rc_add(g, lin(s, "W_xr", x), lin(s, "W_hr", h)), bias(s, "b_r")));
        pre = rc_add(g, rc_add(g, lin(s, "W_hh", rc_mul(g, r, h)), rc_tanh(g, x)), bias(s, "b_h"));
    } else {
        rc_node *zh = which == 2 ? h : rc_tanh(g, h);
        z = rc_sigmoid(g, rc_add(g, rc_add(g, lin(s, "W_xz", x), lin(s, "W_hz", zh)), bias(s, "b_z")));
        rc_node *rx = which == 2 ? x : lin(s, "W_xr", x);
        r = rc_sigmoid(g, rc_add(g, rc_add(g, rx, lin(s, "W_hr", h)), bias(s, "b_r")));
        pre = rc_add(g, rc_add(g, lin(s, "W_hh", rc_mul(g, r, h)), lin(s, "W_xh", x)), bias(s, "b_h"));
    }
    /* tanh(pre) * z + h * (1 - z), written as h + z * (tanh(pre) - h) */
    return rc_step_set_state(s, "h", rc_add(g, h, rc_mul(g, z, rc_sub(g, rc_tanh(g, pre), h))));
}

rc_cell *rc_cell_mut(int which, int hidden)
{
    static const char *names[] = { "", "mut1", "mut2", "mut3" };
    if (which < 1 || which > 3) return NULL;
    rc_cell *c = cell_with_opts(names[which], hidden, mut_step, &which, sizeof which);
    if (c && rc_cell_add_state(c, "h", hidden) != RC_OK) {
        rc_cell_free(c);
        return NULL;
    }
    return c;
}
