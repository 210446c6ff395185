/* LSTM with forget gate (Gers, Schmidhuber & Cummins 2000), optional diagonal
 * peepholes (Gers & Schmidhuber 2001) and the gate ablations of Jozefowicz,
 * Zaremba & Sutskever 2015:
 *   i  = sigmoid(W_xi x + W_hi h + p_i * c  + b_i)     (1 without input gate)
 *   f  = sigmoid(W_xf x + W_hf h + p_f * c  + b_f)     (1 without forget gate)
 *   g  = tanh   (W_xg x + W_hg h + b_g)
 *   c' = f * c + i * g
 *   o  = sigmoid(W_xo x + W_ho h + p_o * c' + b_o)     (1 without output gate)
 *   h' = o * tanh(c')
 * b_f starts at forget_bias (1.0 by default, Jozefowicz et al. 2015). */
#include "builtin.h"

static rc_node *gate(rc_step *s, const char *name, const char *peep, rc_node *c, rc_node *x, rc_node *h)
{
    rc_graph *g = rc_step_graph(s);
    rc_node *a = cell_gate(s, name, x, h);
    if (peep) a = rc_add(g, a, rc_mul(g, c, rc_step_bias(s, peep, rc_step_hidden(s))));
    return rc_sigmoid(g, a);
}

static rc_status lstm_step(rc_step *s, void *user)
{
    const rc_lstm_opts *o = user;
    rc_graph *g = rc_step_graph(s);
    rc_node *x = rc_step_input(s), *h = rc_step_state(s, "h"), *c = rc_step_state(s, "c");
    int pe = o->peepholes;
    rc_node *cand = rc_tanh(g, cell_gate(s, "g", x, h));
    rc_node *in = o->no_input_gate ? cand : rc_mul(g, gate(s, "i", pe ? "p_i" : NULL, c, x, h), cand);
    rc_node *keep = o->no_forget_gate ? c : rc_mul(g, gate(s, "f", pe ? "p_f" : NULL, c, x, h), c);
    rc_node *c2 = rc_add(g, keep, in);
    rc_node *out = rc_tanh(g, c2);
    if (!o->no_output_gate) out = rc_mul(g, gate(s, "o", pe ? "p_o" : NULL, c2, x, h), out);
    if (!o->no_forget_gate && rc_step_time(s) == 0) {
        rc_node *bf = rc_step_bias(s, "b_f", rc_step_hidden(s));
        if (bf) rc_param_set_init(bf, RC_INIT_CONST, o->forget_bias);
    }
    rc_step_set_state(s, "c", c2);
    return rc_step_set_state(s, "h", out);
}

rc_lstm_opts rc_lstm_defaults(void)
{
    rc_lstm_opts o = { .forget_bias = 1.0f };
    return o;
}

rc_cell *rc_cell_lstm(int hidden, const rc_lstm_opts *opts)
{
    rc_lstm_opts o = opts ? *opts : rc_lstm_defaults();
    rc_cell *c = cell_with_opts("lstm", hidden, lstm_step, &o, sizeof o);
    if (c && (rc_cell_add_state(c, "h", hidden) != RC_OK || rc_cell_add_state(c, "c", hidden) != RC_OK)) {
        rc_cell_free(c);
        return NULL;
    }
    return c;
}
