/* The cell language: the parser (text to nodes, statements and declarations). */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include "lang_internal.h"

/* ---- parser ------------------------------------------------------------------------ */

static int p_expr(cx *c);
static int p_unary(cx *c);

int lang_mknode(cx *c, int kind, int line, int col)
{
    if (c->nn >= L_MAX_NODES)
        return lang_failat(c, line, col, "the cell is too large: expected at most %d expression nodes", L_MAX_NODES);
    lnode *q = lang_grow(c->nodes, &c->capn, c->nn + 1, sizeof *c->nodes);
    if (!q) return lang_nomem(c);
    c->nodes = q;
    lnode *n = &c->nodes[c->nn];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->a = n->b = n->ref = n->name = -1;
    n->line = line;
    n->col = col;
    n->depth = 1;
    return c->nn++;
}

static int set_depth(cx *c, int n, int d)
{
    if (d > L_MAX_DEPTH)
        return lang_failat(c, c->nodes[n].line, c->nodes[n].col,
                      "expression too deep: expected at most %d nested operations", L_MAX_DEPTH);
    c->nodes[n].depth = d;
    return n;
}

static int name_too_long(cx *c, const tok *t)
{
    return lang_failat(c, t->line, t->col, "name '%.20s...' is too long: expected at most %d characters", c->src + t->off,
                  L_MAX_NAME);
}

/* name(args...) with the name in t and c->t at '('. */
static int p_call(cx *c, const tok *t)
{
    int args[L_MAX_ARGS], na = 0, depth = 0;
    if (lang_lex(c)) return -1;
    if (c->t.type != T_RP)
        for (;;) {
            if (na == L_MAX_ARGS)
                return lang_failat(c, c->t.line, c->t.col, "too many arguments in %.*s(...): expected at most %d",
                              (int)t->len, c->src + t->off, L_MAX_ARGS);
            int e = p_expr(c);
            if (e < 0) return -1;
            args[na++] = e;
            if (c->nodes[e].depth > depth) depth = c->nodes[e].depth;
            if (c->t.type == T_COMMA) {
                if (lang_lex(c)) return -1;
                continue;
            }
            if (c->t.type == T_RP) break;
            char what[96];
            snprintf(what, sizeof what, "',' or ')' in the arguments of %.*s(...)", (int)t->len, c->src + t->off);
            return lang_expected(c, what);
        }
    if (lang_lex(c)) return -1;
    int n = lang_mknode(c, N_CALL, t->line, t->col);
    if (n < 0) return -1;
    if (na > 0) {
        int *q = lang_grow(c->args, &c->capa, c->na + na, sizeof *c->args);
        if (!q) return lang_nomem(c);
        c->args = q;
        memcpy(c->args + c->na, args, (size_t)na * sizeof *args);
    }
    int nm = lang_pool_add(c, c->src + t->off, t->len);
    if (nm < 0) return -1;
    c->nodes[n].name = nm;
    c->nodes[n].arg0 = c->na;
    c->nodes[n].nargs = na;
    c->na += na;
    return set_depth(c, n, depth + 1);
}

static int p_primary(cx *c)
{
    tok t = c->t;
    if (t.type == T_NUM) {
        int n = lang_mknode(c, N_NUM, t.line, t.col);
        if (n < 0) return -1;
        c->nodes[n].num = t.num;
        c->nodes[n].vk = V_SCALAR;
        return lang_lex(c) ? -1 : n;
    }
    if (t.type == T_NAME) {
        if (t.len > L_MAX_NAME) return name_too_long(c, &t);
        if (lang_lex(c)) return -1;
        if (c->t.type == T_LP) {
            if (t.primed)
                return lang_failat(c, t.line, t.col, "'%.*s'' is a state's new value, not a function: expected an "
                              "operator between it and '('", (int)t.len, c->src + t.off);
            return p_call(c, &t);
        }
        int n = lang_mknode(c, t.primed ? N_NEW : N_NAME, t.line, t.col);
        if (n < 0) return -1;
        int nm = lang_pool_add(c, c->src + t.off, t.len);
        if (nm < 0) return -1;
        c->nodes[n].name = nm;
        return n;
    }
    if (t.type == T_LP) {
        if (lang_lex(c)) return -1;
        int e = p_expr(c);
        if (e < 0) return -1;
        if (c->t.type != T_RP) {
            char what[64];
            snprintf(what, sizeof what, "')' to close the '(' at %d:%d", t.line, t.col);
            return lang_expected(c, what);
        }
        return lang_lex(c) ? -1 : e;
    }
    return lang_expected(c, "an expression (a name, a number, a function call or '(')");
}

/* primary [@ unary]: W @ v, right-associative, binding tighter than * and /. */
static int p_postfix(cx *c)
{
    int a = p_primary(c);
    if (a < 0 || c->t.type != T_AT) return a;
    tok at = c->t;
    lnode *w = &c->nodes[a];
    if (w->kind != N_NAME) {
        const char *what = w->kind == N_NEW ? "a state's new value" : w->kind == N_NUM ? "a number"
                         : w->kind == N_CALL ? "a function call" : "an expression";
        return lang_failat(c, at.line, at.col, "the left side of '@' is %s: expected a weight's name, as in W @ v",
                      what);
    }
    if (lang_lex(c)) return -1;
    int v = p_unary(c);
    if (v < 0) return -1;
    w = &c->nodes[a];
    w->kind = N_MATMUL;
    w->a = v;
    w->line2 = at.line;
    w->col2 = at.col;
    return set_depth(c, a, c->nodes[v].depth + 1);
}

static int p_unary(cx *c)
{
    if (c->t.type != T_MINUS) return p_postfix(c);
    tok t = c->t;
    if (++c->rdepth > L_MAX_DEPTH)
        return lang_failat(c, t.line, t.col, "expression too deep: expected at most %d nested operations", L_MAX_DEPTH);
    if (lang_lex(c)) return -1;
    int a = p_unary(c);
    c->rdepth--;
    if (a < 0) return -1;
    int n = lang_mknode(c, N_NEG, t.line, t.col);
    if (n < 0) return -1;
    c->nodes[n].a = a;
    return set_depth(c, n, c->nodes[a].depth + 1);
}

static int mkbin(cx *c, const tok *op, int a, int b)
{
    int n = lang_mknode(c, N_BIN, op->line, op->col);
    if (n < 0) return -1;
    lnode *q = &c->nodes[n];
    q->op = op->type == T_PLUS ? '+' : op->type == T_MINUS ? '-' : op->type == T_STAR ? '*' : '/';
    q->a = a;
    q->b = b;
    int d = c->nodes[a].depth > c->nodes[b].depth ? c->nodes[a].depth : c->nodes[b].depth;
    return set_depth(c, n, d + 1);
}

static int p_term(cx *c)
{
    int a = p_unary(c);
    while (a >= 0 && (c->t.type == T_STAR || c->t.type == T_SLASH)) {
        tok op = c->t;
        if (lang_lex(c)) return -1;
        int b = p_unary(c);
        if (b < 0) return -1;
        a = mkbin(c, &op, a, b);
    }
    return a;
}

static int p_expr(cx *c)
{
    if (++c->rdepth > L_MAX_DEPTH)
        return lang_failat(c, c->t.line, c->t.col, "expression too deep: expected at most %d nested operations",
                      L_MAX_DEPTH);
    int a = p_term(c);
    while (a >= 0 && (c->t.type == T_PLUS || c->t.type == T_MINUS)) {
        tok op = c->t;
        if (lang_lex(c)) return -1;
        int b = p_term(c);
        if (b < 0) return -1;
        a = mkbin(c, &op, a, b);
    }
    c->rdepth--;
    return a;
}

static int end_of_line(cx *c, const char *after)
{
    if (c->t.type == T_NL || c->t.type == T_EOF) return lang_lex(c);
    char what[256];
    snprintf(what, sizeof what, "the end of the line after %.200s", after);
    return lang_expected(c, what);
}

int lang_find_state(const cx *c, const char *name)
{
    for (int k = 0; k < c->nst; k++)
        if (strcmp(STR(c->states[k].name), name) == 0) return k;
    return -1;
}

int lang_find_bind(const cx *c, const char *name)
{
    for (int k = 0; k < c->nb; k++)
        if (strcmp(STR(c->binds[k].name), name) == 0) return k;
    return -1;
}

int lang_find_param(const cx *c, const char *name)
{
    for (int k = 0; k < c->np; k++)
        if (strcmp(STR(c->params[k].name), name) == 0) return k;
    return -1;
}

/* A name the text gives to something (cell, input, state, binding, parameter): a
 * plain identifier that is no keyword, no size name and no function. */
static int check_new_name(cx *c, const tok *t, const char *what)
{
    char nm[L_MAX_NAME + 1];
    if (t->type != T_NAME) return lang_expected(c, what);
    if (t->len > L_MAX_NAME) return name_too_long(c, t);
    memcpy(nm, c->src + t->off, t->len);
    nm[t->len] = 0;
    if (t->primed)
        return lang_failat(c, t->line, t->col, "'%s'' here: expected %s without a prime (' marks a state's new value)",
                      nm, what);
    if (lang_is_keyword(nm))
        return lang_failat(c, t->line, t->col, "'%s' is a keyword: expected %s (any other name)", nm, what);
    if (strcmp(nm, "H") == 0 || strcmp(nm, "I") == 0)
        return lang_failat(c, t->line, t->col, "'%s' is reserved for the %s size: expected %s (any other name)", nm,
                      nm[0] == 'H' ? "hidden" : "input", what);
    if (lang_find_fn(nm) || lang_model_level(nm))
        return lang_failat(c, t->line, t->col, "'%s' is a function name: expected %s (any other name)", nm, what);
    return 0;
}

/* Adds a parameter record named by the pool string at `name`; its index or -1.
 * (The name is not copied: the pool does not move while expressions are checked.) */
int lang_add_param(cx *c, int name, int kind)
{
    lparam *q = lang_grow(c->params, &c->capp, c->np + 1, sizeof *c->params);
    if (!q) return lang_nomem(c);
    c->params = q;
    lparam *p = &c->params[c->np];
    memset(p, 0, sizeof *p);
    p->name = name;
    p->kind = kind;
    p->decl_size = -1;
    return c->np++;
}

static int p_header(cx *c)
{
    while (c->t.type == T_NL)
        if (lang_lex(c)) return -1;
    if (!lang_tok_is(c, &c->t, "cell"))
        return lang_expected(c, "the header 'cell NAME (INPUT) -> STATE, ...' as the first line");
    c->head_line = c->t.line;
    c->head_col = c->t.col;
    if (lang_lex(c)) return -1;
    if (check_new_name(c, &c->t, "the cell's name after 'cell'")) return -1;
    if ((c->cell = lang_pool_add(c, c->src + c->t.off, c->t.len)) < 0 || lang_lex(c)) return -1;
    if (c->t.type != T_LP) return lang_expected(c, "'(' and the input's name after 'cell NAME'");
    if (lang_lex(c)) return -1;
    if (check_new_name(c, &c->t, "the input's name in 'cell NAME (INPUT)'")) return -1;
    c->in_line = c->t.line;
    c->in_col = c->t.col;
    if ((c->input = lang_pool_add(c, c->src + c->t.off, c->t.len)) < 0 || lang_lex(c)) return -1;
    if (c->t.type != T_RP) return lang_expected(c, "')' after the input's name (a cell has one input)");
    if (lang_lex(c)) return -1;
    if (c->t.type != T_ARROW) return lang_expected(c, "'->' and the state names after 'cell NAME (INPUT)'");
    if (lang_lex(c)) return -1;
    for (;;) {
        tok t = c->t;
        if (check_new_name(c, &t, "a state's name")) return -1;
        char nm[L_MAX_NAME + 1];
        memcpy(nm, c->src + t.off, t.len);
        nm[t.len] = 0;
        if (strcmp(nm, STR(c->input)) == 0)
            return lang_failat(c, t.line, t.col, "'%s' is the input's name: expected a state name other than the input",
                          nm);
        int k = lang_find_state(c, nm);
        if (k >= 0)
            return lang_failat(c, t.line, t.col, "state '%s' is declared twice in the header (first at %d:%d): expected "
                          "distinct state names", nm, c->states[k].line, c->states[k].col);
        if (c->nst == L_MAX_STATES)
            return lang_failat(c, t.line, t.col, "too many states: expected at most %d", L_MAX_STATES);
        lstate *s = &c->states[c->nst];
        memset(s, 0, sizeof *s);
        if ((s->name = lang_pool_add(c, nm, t.len)) < 0) return -1;
        s->line = t.line;
        s->col = t.col;
        s->size_expr = -1;
        s->set_stmt = -1;
        c->nst++;
        if (lang_lex(c)) return -1;
        if (c->t.type != T_COMMA) break;
        if (lang_lex(c)) return -1;
    }
    return end_of_line(c, "the header's states (separate them with ',')");
}

/* hidden N */
static int p_hidden(cx *c, const tok *kw)
{
    if (c->hidden_line)
        return lang_failat(c, kw->line, kw->col, "a second 'hidden' line: expected one (the first is on line %d)",
                      c->hidden_line);
    if (lang_lex(c)) return -1;
    if (c->t.type != T_NUM || c->t.num != floor(c->t.num) || c->t.num < 1 || c->t.num > LANG_MAX_WIDTH)
        return lang_expected(c, "the hidden size after 'hidden' (a whole number from 1 to 16777216)");
    c->hidden = (int)c->t.num;
    c->hidden_line = kw->line;
    if (lang_lex(c)) return -1;
    return end_of_line(c, "'hidden N'");
}

/* weight NAME : SIZE, vector NAME : SIZE, state NAME : SIZE */
static int p_decl(cx *c, const tok *kw, const char *word)
{
    if (lang_lex(c)) return -1;
    tok t = c->t;
    char what[128], nm[L_MAX_NAME + 1];
    snprintf(what, sizeof what, "a name after '%s'", word);
    if (check_new_name(c, &t, what)) return -1;
    memcpy(nm, c->src + t.off, t.len);
    nm[t.len] = 0;
    if (lang_lex(c)) return -1;
    if (c->t.type != T_COLON) {
        snprintf(what, sizeof what, "':' and a size after '%s %s'", word, nm);
        return lang_expected(c, what);
    }
    if (lang_lex(c)) return -1;
    int size = p_expr(c);
    if (size < 0) return -1;
    if (word[0] == 's') {
        int k = lang_find_state(c, nm);
        if (k < 0)
            return lang_failat(c, t.line, t.col, "'%s' is not a state of the cell: expected one of the header's states",
                          nm);
        if (c->states[k].size_expr >= 0)
            return lang_failat(c, kw->line, kw->col, "the size of state '%s' is given twice (first on line %d): "
                          "expected one 'state %s : SIZE' line", nm, c->states[k].size_line, nm);
        c->states[k].size_expr = size;
        c->states[k].size_line = kw->line;
        c->states[k].size_col = kw->col;
    } else {
        int k = lang_find_param(c, nm);
        if (k >= 0)
            return lang_failat(c, t.line, t.col, "'%s' is declared twice (first on line %d): expected one declaration",
                          nm, c->params[k].decl_line);
        if (strcmp(nm, STR(c->input)) == 0 || lang_find_state(c, nm) >= 0)
            return lang_failat(c, t.line, t.col, "'%s' is the cell's %s: expected a parameter name", nm,
                          lang_find_state(c, nm) >= 0 ? "state" : "input");
        int off = lang_pool_add(c, nm, t.len);
        if (off < 0 || (k = lang_add_param(c, off, word[0] == 'w' ? P_WEIGHT : P_VECTOR)) < 0) return -1;
        c->params[k].decl_line = t.line;
        c->params[k].decl_col = t.col;
        c->params[k].decl_size = size;
    }
    snprintf(what, sizeof what, "'%s %s : SIZE'", word, nm);
    return end_of_line(c, what);
}

/* init NAME = [const] V | zeros | uniform A | glorot | orthogonal [A] | default */
static int p_number(cx *c, double *v, const char *what)
{
    int neg = 0;
    if (c->t.type == T_MINUS) {
        neg = 1;
        if (lang_lex(c)) return -1;
    }
    if (c->t.type != T_NUM) return lang_expected(c, what);
    *v = neg ? -c->t.num : c->t.num;
    return lang_lex(c);
}

static int p_init(cx *c, const tok *kw)
{
    if (lang_lex(c)) return -1;
    tok t = c->t;
    if (t.type != T_NAME || t.primed) return lang_expected(c, "a parameter's name after 'init'");
    if (t.len > L_MAX_NAME) return name_too_long(c, &t);
    if (lang_lex(c)) return -1;
    if (c->t.type != T_EQ) return lang_expected(c, "'=' after 'init NAME'");
    if (lang_lex(c)) return -1;
    linit in = { .line = t.line, .col = t.col, .kind = I_CONST };
    const char *spec = "a number, or const V, zeros, uniform A, glorot, orthogonal [A] or default after 'init NAME ='";
    if (c->t.type == T_NUM || c->t.type == T_MINUS) {
        if (p_number(c, &in.a, spec)) return -1;
    } else if (lang_tok_is(c, &c->t, "const") || lang_tok_is(c, &c->t, "uniform")) {
        in.kind = lang_tok_is(c, &c->t, "const") ? I_CONST : I_UNIFORM;
        if (lang_lex(c) || p_number(c, &in.a, in.kind == I_CONST ? "a number after 'const'" : "a number after 'uniform'"))
            return -1;
    } else if (lang_tok_is(c, &c->t, "orthogonal")) {
        in.kind = I_ORTHOGONAL;
        if (lang_lex(c)) return -1;
        if ((c->t.type == T_NUM || c->t.type == T_MINUS) && p_number(c, &in.a, "a gain after 'orthogonal'"))
            return -1;
    } else if (lang_tok_is(c, &c->t, "zeros") || lang_tok_is(c, &c->t, "glorot") || lang_tok_is(c, &c->t, "default")) {
        in.kind = lang_tok_is(c, &c->t, "zeros") ? I_ZEROS : lang_tok_is(c, &c->t, "glorot") ? I_GLOROT : I_DEFAULT;
        if (lang_lex(c)) return -1;
    } else return lang_expected(c, spec);
    (void)kw;
    if ((in.name = lang_pool_add(c, c->src + t.off, t.len)) < 0) return -1;
    linit *q = lang_grow(c->inits, &c->capi, c->ni + 1, sizeof *c->inits);
    if (!q) return lang_nomem(c);
    c->inits = q;
    c->inits[c->ni++] = in;
    return end_of_line(c, "'init NAME = ...'");
}

/* NAME = expr, or STATE' = expr */
static int p_assign(cx *c)
{
    tok t = c->t;
    if (t.len > L_MAX_NAME) return name_too_long(c, &t);
    char nm[L_MAX_NAME + 1];
    memcpy(nm, c->src + t.off, t.len);
    nm[t.len] = 0;
    if (lang_lex(c)) return -1;
    if (c->t.type != T_EQ) {
        char what[128];
        snprintf(what, sizeof what, "'=' after '%s%s' (a line is 'name = expression' or \"state' = expression\")",
                 nm, t.primed ? "'" : "");
        return lang_expected(c, what);
    }
    lstmt st = { .line = t.line, .col = t.col, .defer = 0 };
    if (t.primed) {
        int k = lang_find_state(c, nm);
        if (k < 0)
            return lang_failat(c, t.line, t.col, "'%s'' gives a new value, but '%s' is not a state: expected one of the "
                          "header's states, or 'name = ...' for a binding", nm, nm);
        if (c->states[k].set_stmt >= 0)
            return lang_failat(c, t.line, t.col, "state '%s' is assigned twice: expected one line %s' = ... (the first "
                          "is on line %d)", nm, nm, c->stmts[c->states[k].set_stmt].line);
        st.kind = S_SET;
        st.ref = k;
        c->states[k].set_stmt = c->ns;
    } else {
        if (lang_find_state(c, nm) >= 0)
            return lang_failat(c, t.line, t.col, "'%s' is a state: its new value is written %s' = ...", nm, nm);
        if (strcmp(nm, STR(c->input)) == 0)
            return lang_failat(c, t.line, t.col, "'%s' is the cell's input and cannot be bound: expected another name",
                          nm);
        if (check_new_name(c, &t, "a binding's name")) return -1;
        int k = lang_find_bind(c, nm);
        if (k >= 0)
            return lang_failat(c, t.line, t.col, "name '%s' is bound twice: expected one binding (the first is on line "
                          "%d)", nm, c->binds[k].line);
        lbind *q = lang_grow(c->binds, &c->capb, c->nb + 1, sizeof *c->binds);
        if (!q) return lang_nomem(c);
        c->binds = q;
        lbind *b = &c->binds[c->nb];
        memset(b, 0, sizeof *b);
        if ((b->name = lang_pool_add(c, nm, t.len)) < 0) return -1;
        b->line = t.line;
        b->col = t.col;
        b->stmt = c->ns;
        st.kind = S_LET;
        st.ref = c->nb++;
    }
    if (lang_lex(c)) return -1;
    if ((st.expr = p_expr(c)) < 0) return -1;
    lstmt *q = lang_grow(c->stmts, &c->caps, c->ns + 1, sizeof *c->stmts);
    if (!q) return lang_nomem(c);
    c->stmts = q;
    c->stmts[c->ns++] = st;
    char what[80];
    snprintf(what, sizeof what, "the expression of '%s%s'", nm, t.primed ? "'" : "");
    return end_of_line(c, what);
}

int lang_parse_file(cx *c)
{
    if (lang_lex(c) || p_header(c)) return -1;
    for (;;) {
        while (c->t.type == T_NL)
            if (lang_lex(c)) return -1;
        if (c->t.type == T_EOF) return 0;
        tok kw = c->t;
        int r;
        if (kw.type != T_NAME)
            return lang_expected(c, "a line 'name = expression', \"state' = expression\" or a declaration (hidden, "
                            "weight, vector, state, init)");
        if (lang_tok_is(c, &kw, "hidden")) r = p_hidden(c, &kw);
        else if (lang_tok_is(c, &kw, "weight")) r = p_decl(c, &kw, "weight");
        else if (lang_tok_is(c, &kw, "vector")) r = p_decl(c, &kw, "vector");
        else if (lang_tok_is(c, &kw, "state")) r = p_decl(c, &kw, "state");
        else if (lang_tok_is(c, &kw, "init")) r = p_init(c, &kw);
        else if (lang_tok_is(c, &kw, "cell"))
            r = lang_failat(c, kw.line, kw.col, "a second 'cell' header: expected one cell per text");
        else r = p_assign(c);
        if (r) return -1;
    }
}
