/* GRU, both published forms (gate order r, z, n as in PyTorch):
 *   r  = sigmoid(W_xr x + W_hr h + b_r)
 *   z  = sigmoid(W_xz x + W_hz h + b_z)
 *   n  = tanh(W_xn x + b_xn + r * (W_hn h + b_hn))   reset after  (cuDNN, PyTorch)
 *   n  = tanh(W_xn x + W_hn (r * h) + b_n)           reset before (Cho et al. 2014)
 *   h' = (1 - z) * n + z * h */
#include "builtin.h"

static rc_status gru_step(rc_step *s, void *user)
{
    rc_gru_variant v = *(const rc_gru_variant *)user;
    rc_graph *g = rc_step_graph(s);
    int H = rc_step_hidden(s);
    rc_node *x = rc_step_input(s), *h = rc_step_state(s, "h");
    rc_node *r = rc_sigmoid(g, cell_gate(s, "r", x, h));
    rc_node *z = rc_sigmoid(g, cell_gate(s, "z", x, h));
    rc_node *n;
    if (v == RC_GRU_RESET_AFTER) {
        rc_node *hn = rc_add(g, rc_step_linear(s, "W_hn", h, H), rc_step_bias(s, "b_hn", H));
        n = rc_tanh(g, rc_add(g, rc_add(g, rc_step_linear(s, "W_xn", x, H), rc_step_bias(s, "b_xn", H)),
                              rc_mul(g, r, hn)));
    } else {
        n = rc_tanh(g, rc_add(g, rc_add(g, rc_step_linear(s, "W_xn", x, H),
                                        rc_step_linear(s, "W_hn", rc_mul(g, r, h), H)),
                              rc_step_bias(s, "b_n", H)));
    }
    /* (1 - z) * n + z * h, written as n + z * (h - n) */
    return rc_step_set_state(s, "h", rc_add(g, n, rc_mul(g, z, rc_sub(g, h, n))));
}

rc_cell *rc_cell_gru(int hidden, rc_gru_variant v)
{
    if (v != RC_GRU_RESET_AFTER && v != RC_GRU_RESET_BEFORE) return NULL;
    rc_cell *c = cell_with_opts(v == RC_GRU_RESET_AFTER ? "gru" : "gru_cho", hidden, gru_step, &v, sizeof v);
    if (c && rc_cell_add_state(c, "h", hidden) != RC_OK) {
        rc_cell_free(c);
        return NULL;
    }
    return c;
}
