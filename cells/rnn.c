/* Elman RNN (Elman 1990): h' = act(W_xh x + W_hh h + b_h), act = tanh or relu. */
#include "builtin.h"

static rc_status rnn_step(rc_step *s, void *user)
{
    rc_graph *g = rc_step_graph(s);
    rc_activation act = *(const rc_activation *)user;
    rc_node *a = cell_gate(s, "h", rc_step_input(s), rc_step_state(s, "h"));
    return rc_step_set_state(s, "h", act == RC_ACT_RELU ? rc_relu(g, a) : rc_tanh(g, a));
}

rc_cell *rc_cell_rnn(int hidden, rc_activation act)
{
    if (act != RC_ACT_TANH && act != RC_ACT_RELU) return NULL;
    rc_cell *c = cell_with_opts(act == RC_ACT_RELU ? "rnn_relu" : "rnn_tanh", hidden, rnn_step, &act, sizeof act);
    if (c && rc_cell_add_state(c, "h", hidden) != RC_OK) {
        rc_cell_free(c);
        return NULL;
    }
    return c;
}
