/* Mutations of cell-language cells for an architecture search, the check every
 * candidate passes, a canonical form and parameter counts (docs/CELLS.md "Mutations
 * and canonical form"; the map of the steps is in mutate.h).
 * This file: the public entry points (recur.h). The work is in mutate_tree.c (the
 * mutable form and its printer), mutate_ops.c (the mutation operators), mutate_check.c
 * (the candidate check, parameter counts) and mutate_canon.c (the canonical form).
 *
 * The search is the one of Jozefowicz, Zaremba & Sutskever 2015, "An empirical
 * exploration of recurrent network architectures" (ICML): candidates are made by
 * mutating the computation graph of a cell (LSTM, GRU and their descendants) and kept
 * when they train well; MUT1-3 (cells/lib/mut*.cell) came out of it. The operators
 * here are edits of the kinds they describe (a node's activation replaced, a node
 * replaced by an elementwise operation of it and another node) and the structural
 * differences between the cells they compare (gates added or removed, skips, operands
 * swapped, the z / 1 - z mixing of the GRU against the LSTM's separate gates).
 *
 * A mutation works on the expression trees of a checked program (mcell), keeps the
 * widths the checker gave every node, and is printed back to text; the text then goes
 * through lang_compile and cell_check_prog like any user's cell, so an edit that does
 * not check is simply rejected. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include "mutate_internal.h"

#include "recur.h"

/* ---- public API ------------------------------------------------------------------------- */

static const char *const KIND_NAMES[] = { "activation", "gate-add", "gate-remove", "skip-add",
                                          "skip-remove", "swap", "mix", "combine" };
#define NKINDS ((int)(sizeof KIND_NAMES / sizeof KIND_NAMES[0]))

const char *rc_mut_kind_name(unsigned kind)
{
    for (int k = 0; k < NKINDS; k++)
        if (kind == 1u << k) return KIND_NAMES[k];
    return "";
}

int rc_cell_mutate(const char *text, size_t len, int input_size, uint64_t seed, const rc_mutate_opts *o,
                   char **out_text, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!out_text) return mut_fail(err, errlen, "rc_cell_mutate: out_text is NULL");
    *out_text = NULL;
    if (input_size < 1) return mut_fail(err, errlen, "rc_cell_mutate: input size %d: expected at least 1", input_size);
    unsigned kinds = o && o->kinds ? o->kinds : RC_MUT_ALL;
    if (!(kinds & RC_MUT_ALL) || (kinds & ~RC_MUT_ALL))
        return mut_fail(err, errlen, "rc_cell_mutate: kinds %#x: expected RC_MUT_* bits (within %#x)", kinds, RC_MUT_ALL);
    int tries = o && o->max_tries > 0 ? o->max_tries : 64, I2 = o && o->input_size2 > 0 ? o->input_size2 : 0;
    lang_prog *p = lang_compile(text, len, "cell", 0, err, errlen, NULL);
    if (!p) return -1;
    uint64_t h0;
    if (cell_canonical(p, NULL, &h0, err, errlen)) {
        free(p);
        return -1;
    }
    char cell[L_MAX_NAME + 1];
    snprintf(cell, sizeof cell, "%s", lang_cell_name(p));
    unsigned list[NKINDS];
    int nk = 0;
    for (int k = 0; k < NKINDS; k++)
        if (kinds >> k & 1) list[nk++] = 1u << k;
    rng_t r;
    rng_seed(&r, seed);
    mut_env env = { p->hidden, input_size, I2 };
    char last[512] = "none";
    int got = -1, oom = 0;
    for (int t = 0; t < tries && got < 0 && !oom; t++) {
        unsigned kind = list[mut_rnd(&r, nk)];
        mcell *m = mcell_from_prog(p, err, errlen);
        if (!m) {
            oom = 1;
            break;
        }
        int ok = mcell_mutate(m, kind, &r, &env);
        char *txt = ok == 0 ? mcell_print(m, err, errlen) : NULL;
        mcell_free(m);
        if (ok == -2 || (ok == 0 && !txt)) {
            mut_fail(err, errlen, "rc_cell_mutate: out of memory");
            oom = 1;
            break;
        }
        if (ok != 0) {   /* no site for this kind in this cell: never pick it again */
            snprintf(last, sizeof last, "no place for a %s mutation", rc_mut_kind_name(kind));
            int j = 0;
            for (int k = 0; k < nk; k++)
                if (list[k] != kind) list[j++] = list[k];
            if ((nk = j) == 0) break;
            continue;
        }
        lang_prog *q = lang_compile(txt, strlen(txt), "candidate", 0, last, sizeof last, NULL);
        uint64_t h1 = 0;
        if (q && cell_check_prog(q, input_size, I2, last, sizeof last) == 0 &&
            cell_canonical(q, NULL, &h1, last, sizeof last) == 0) {
            if (h1 != h0) {
                *out_text = txt;
                txt = NULL;
                got = (int)kind;
            } else snprintf(last, sizeof last, "a %s mutation gave the same cell", rc_mut_kind_name(kind));
        }
        free(q);
        free(txt);
    }
    free(p);
    if (got < 0 && !oom)
        mut_fail(err, errlen, "cell '%s': no mutation passed the checks in %d tries; the last: %s", cell, tries, last);
    return got;
}

int rc_cell_check(const char *text, size_t len, int input_size, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    lang_prog *p = lang_compile(text, len, "cell", 0, err, errlen, NULL);
    if (!p) return -1;
    int r = cell_check_prog(p, input_size, 0, err, errlen);
    free(p);
    return r;
}

char *rc_cell_print(const char *text, size_t len, int hidden, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    lang_prog *p = lang_compile(text, len, "cell", hidden, err, errlen, NULL);
    if (!p) return NULL;
    mcell *m = mcell_from_prog(p, err, errlen);
    char *s = m ? mcell_print(m, err, errlen) : NULL;
    mcell_free(m);
    free(p);
    return s;
}

int rc_cell_canonical_hash(const char *text, size_t len, uint64_t *hash, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!hash) return mut_fail(err, errlen, "rc_cell_canonical_hash: hash is NULL");
    *hash = 0;
    lang_prog *p = lang_compile(text, len, "cell", 0, err, errlen, NULL);
    if (!p) return -1;
    int r = cell_canonical(p, NULL, hash, err, errlen);
    free(p);
    return r;
}

char *rc_cell_canonical_text(const char *text, size_t len, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    lang_prog *p = lang_compile(text, len, "cell", 0, err, errlen, NULL);
    if (!p) return NULL;
    char *s = NULL;
    cell_canonical(p, &s, NULL, err, errlen);
    free(p);
    return s;
}

long long rc_cell_param_count(const char *text, size_t len, int hidden, int input_size, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    lang_prog *p = lang_compile(text, len, "cell", hidden, err, errlen, NULL);
    if (!p) return -1;
    long long n = lang_validate(p, input_size, NULL, err, errlen) == 0 ? cell_prog_params(p, input_size) : -1;
    free(p);
    return n;
}

int mut_deferred_widths(const lang_prog *p, int k, lw *a, lw *b)
{
    const lnode *nd = pnodes(p);
    if (k < p->nnodes) {
        const lnode *n = &nd[k];
        if (!n->defer || (n->vk != V_ROW && n->vk != V_VEC)) return 0;
        if (n->kind == N_BIN || n->kind == N_MINMAX) *a = nd[n->a].w, *b = nd[n->b].w;
        else if (n->kind == N_MATMUL) *a = nd[n->a].w, *b = pparams(p)[n->ref].in;
        else return 0;
        return 1;
    }
    const lstmt *s = &pstmts(p)[k - p->nnodes];
    if (!s->defer) return 0;
    *a = nd[s->expr].w;
    *b = pstates(p)[s->ref].size;
    return 1;
}

/* The hidden size that widths deferred to the input size pin (H = I where x meets a
 * value of width H): 1 and *H when there is one; 0 when none; -1 when they cannot all
 * hold with input size I. */
static int pinned_hidden(const lang_prog *p, long long I, long long *H)
{
    int pinned = 0;
    for (int k = 0; k < p->nnodes + p->nstmts; k++) {
        lw a, b;
        if (!mut_deferred_widths(p, k, &a, &b)) continue;
        long long dh = a.h - b.h, num = -((a.i - b.i) * I + (a.c - b.c));
        if (dh == 0) continue;   /* holds for every H or for none: lang_validate decides */
        if (num % dh != 0 || num / dh < 1 || num / dh > LANG_MAX_WIDTH) return -1;
        if (pinned && *H != num / dh) return -1;
        *H = num / dh;
        pinned = 1;
    }
    return pinned;
}

/* The parameter count at hidden size H: exact from the program compiled at H, or (when
 * the text does not compile at H, e.g. H / 2 of an odd H) from the base program's
 * widths. *valid: the program compiles at H and builds with input size I. */
static long long count_at(const char *text, size_t len, const lang_prog *base, long long H, int I, int *valid,
                          char *err, size_t errlen)
{
    lang_prog *p = lang_compile(text, len, "cell", (int)H, err, errlen, NULL);
    if (!p) {
        *valid = 0;
        return mut_params_at(base, H, I);
    }
    *valid = lang_validate(p, I, NULL, err, errlen) == 0;
    long long n = cell_prog_params(p, I);
    free(p);
    return n;
}

int rc_cell_hidden_for_params(const char *text, size_t len, int input_size, long long target, long long *count,
                              char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (count) *count = 0;
    if (input_size < 1) return mut_fail(err, errlen, "rc_cell_hidden_for_params: input size %d: expected at least 1", input_size);
    if (target < 1) return mut_fail(err, errlen, "rc_cell_hidden_for_params: %lld parameters: expected at least 1", target);
    lang_prog *base = lang_compile(text, len, "cell", 0, NULL, 0, NULL);
    if (!base) base = lang_compile(text, len, "cell", input_size, err, errlen, NULL);
    if (!base) return -1;
    char cell[L_MAX_NAME + 1], msg[512] = "";
    snprintf(cell, sizeof cell, "%s", lang_cell_name(base));
    long long H = 0, n = 0;
    int valid = 0, pin = pinned_hidden(base, input_size, &H);
    if (pin < 0) {
        free(base);
        return mut_fail(err, errlen, "cell '%s': with input size I = %d no hidden size builds it (its widths tie H to I)",
                    cell, input_size);
    }
    if (pin == 0) {
        long long lo = 1, hi = 1;
        if (count_at(text, len, base, 1, input_size, &valid, msg, sizeof msg) < target) {
            while (hi < LANG_MAX_WIDTH && count_at(text, len, base, hi, input_size, &valid, msg, sizeof msg) < target) {
                lo = hi;
                hi = hi * 2 < LANG_MAX_WIDTH ? hi * 2 : LANG_MAX_WIDTH;
            }
            while (hi - lo > 1) {   /* count(lo) < target <= count(hi) */
                long long mid = lo + (hi - lo) / 2;
                if (count_at(text, len, base, mid, input_size, &valid, msg, sizeof msg) >= target) hi = mid;
                else lo = mid;
            }
            long long cl = count_at(text, len, base, lo, input_size, &valid, msg, sizeof msg);
            long long ch = count_at(text, len, base, hi, input_size, &valid, msg, sizeof msg);
            H = llabs(target - cl) <= llabs(ch - target) ? lo : hi;
            long long other = H == lo ? hi : lo;
            n = count_at(text, len, base, H, input_size, &valid, msg, sizeof msg);
            if (!valid) {
                H = other;
                n = count_at(text, len, base, H, input_size, &valid, msg, sizeof msg);
            }
        } else {
            H = 1;
            n = count_at(text, len, base, H, input_size, &valid, msg, sizeof msg);
        }
    } else n = count_at(text, len, base, H, input_size, &valid, msg, sizeof msg);
    free(base);
    if (!valid)
        return mut_fail(err, errlen, "cell '%s': no hidden size near %lld parameters builds with input size %d: %s", cell,
                    target, input_size, msg);
    if (count) *count = n;
    return (int)H;
}

